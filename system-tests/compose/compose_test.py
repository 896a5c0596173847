#!/usr/bin/env python3
"""The compose front door, for real: `docker compose up --build --scale node=N` on a Docker
engine of the test's own, through nginx on the published :3333, each step with its figures.

The engine (scripts/docker-engine.sh) and every container, network, volume and image in it are
removed at the end, also when a step fails or the test is interrupted. Without a registry, the
images the files name are replaced by stand-ins built from Debian's packages
(scripts/standin-images.sh), through the variables whose defaults are the official images.

Steps: up --scale 3 under the cluster test's kind of load, exact; --scale 5 (the new replicas
take traffic) and --scale 2 (no 502, exact) under load; a replica
SIGKILLed under load (nothing applied twice); PostgreSQL stopped under load, then the nodes (their batches spill to the volume and the
next `up` applies them once); `down` then `up` (every counter still there); the monitoring
profile's Prometheus scraping every replica with the project's alerting rules loaded. Between the
first two, schemathesis sends bad input through the front (the same JSON errors as locally).

Usage: system-tests/compose/compose_test.py [--full] [--keep-images DIR] [--scale-rounds N]
                                           (prints "N passed, N failed")
  --full             builds the node image as shipped, in release; without it (the bounded mode
                     scripts/test.sh runs) the image's build stage builds debug, in about half the time
  --keep-images DIR  keeps the engine's images in DIR between runs (a later run builds nothing
                     that has not changed); without it everything is removed at the end.
  --scale-rounds N   runs the --scale 5 / --scale 2 step N times in a row (1 unless given).
"""
import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "system-tests", "faults"))
from fault_suite import Load, request, wait_for  # noqa: E402  (the same load and checks as the fault suite)

PORT = 3333  # what the compose file publishes
PROJECT = "increment-compose-test"


def run(command, timeout=600, check=True, env=None):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}: {result.stderr[-3000:]}")
    return result


def flush_barrier():
    """POST /flush through nginx: everything every live replica accepted so far is committed."""
    status, body = request(PORT, "POST", "/flush")
    assert status == 200, (status, body)


class Compose:
    """`docker compose` of the project's own file, on the test's engine, with stand-in images."""

    def __init__(self, docker_host, images):
        self.env = dict(os.environ, DOCKER_HOST=docker_host, COMPOSE_PROJECT_NAME=PROJECT, PUBLISH_ADDRESS="127.0.0.1",
                        **images)
        self.env.pop("DOCKER_CONTEXT", None)

    def __call__(self, *args, timeout=900, check=True):
        return run(["docker", "compose", "-f", os.path.join(ROOT, "docker-compose.yml"), *args],
                   timeout=timeout, check=check, env=self.env)

    def docker(self, *args, timeout=120, check=True):
        return run(["docker", *args], timeout=timeout, check=check, env=self.env)

    def containers(self, service, all_states=False):
        out = self("ps", "-q", *(["-a"] if all_states else []), service).stdout
        return [line for line in out.split() if line]

    def inspect(self, container, template):
        return self.docker("inspect", "-f", template, container).stdout.strip()

    def healthy(self, count):
        ids = self.containers("node")
        return len(ids) == count and all(self.inspect(i, "{{.State.Health.Status}}") == "healthy" for i in ids)

    def counters(self, prefix):
        """The stored counters whose key starts with prefix. One JSON object, so that keys with any
        character (the bad-input step stores keys holding "|" and newlines) come back whole."""
        sql = ("SELECT coalesce(json_object_agg(key, value), '{}') FROM counters "
               f"WHERE starts_with(key, '{prefix}')")
        out = self("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "increment", "-Atc", sql).stdout
        return {key: int(value) for key, value in json.loads(out).items()}

    def accepted(self, container):
        """The node's increment_accepted_total, read inside its container."""
        out = self.docker("exec", container, "curl", "-fs", "http://127.0.0.1:8080/metrics").stdout
        return sum(float(m) for m in re.findall(r"^increment_accepted_total(?:\{[^}]*\})? (\S+)$", out, re.M))


def cluster_view():
    status, text = request(PORT, "GET", "/cluster")
    assert status == 200, (status, text)
    return json.loads(text)


def step_up_scale_3(compose, figures):
    started = time.monotonic()
    compose("up", "-d", "--build", "--scale", "node=3", timeout=3600)
    built = time.monotonic() - started
    wait_for(lambda: compose.healthy(3), 120, "3 healthy node replicas")
    healthy = time.monotonic() - started
    wait_for(lambda: cluster_view().get("live") == 3, 60, "GET /cluster listing 3 live nodes")
    with Load(PORT, "c3-", clients=8, commit_share=0.1) as load:
        time.sleep(6)
    # Batches, idempotent retries and a strong read beside the load.
    items = [{"key": f"c3-batch-{i % 7}", "value": i} for i in range(50)]
    status, _ = request(PORT, "POST", "/increments", {"increments": items})
    assert status == 202, status
    for key in {item["key"] for item in items}:
        load.acknowledged[key] = load.acknowledged.get(key, 0) + sum(i["value"] for i in items if i["key"] == key)
    answers = [request(PORT, "POST", "/increment?wait=commit", {"key": "c3-idem", "value": 5},
                       headers={"Idempotency-Key": '"compose-once"'}) for _ in range(5)]
    assert {status for status, _ in answers} == {200}, answers
    assert len({text for _, text in answers}) == 1, answers
    load.acknowledged["c3-idem"] = 5
    status, strong = request(PORT, "GET", "/counters/c3-batch-3?consistency=strong")
    assert status == 200 and json.loads(strong)["value"] == load.acknowledged["c3-batch-3"], strong
    status, refused = request(PORT, "POST", "/increment", {"key": "", "value": 1})
    assert status == 400 and json.loads(refused)["error"], (status, refused)
    flush_barrier()
    outcome = load.check(compose.counters("c3-"), exact=True)
    assert set(load.statuses) <= {200, 202}, load.statuses
    view = cluster_view()
    hostnames = {compose.inspect(i, "{{.Config.Hostname}}") for i in compose.containers("node")}
    addresses = {node["address"].rsplit(":", 1)[0] for node in view["nodes"] if node["status"] == "live"}
    assert view["live"] == 3 and addresses == hostnames, (view, hostnames)
    figures.append(f"up --build --scale node=3: images built and started in {built:.0f} s, every replica healthy "
                   f"after {healthy:.0f} s; {outcome}; exact; GET /cluster lists the 3 containers")


def step_bad_input_through_the_front(compose, figures):
    """schemathesis at :3333 against the node's own OpenAPI description, as scripts/fuzz-api.sh
    runs it locally: no 5xx, every answer as described (JSON errors from the one catalogue)."""
    schemathesis = run(["bash", "-c", f"source {ROOT}/scripts/lib.sh && python_tool schemathesis schemathesis"],
                       timeout=600).stdout.strip()
    started = time.monotonic()
    fuzz = run([schemathesis, "run", f"http://127.0.0.1:{PORT}/openapi.yaml", "--url", f"http://127.0.0.1:{PORT}",
                "--max-examples", "30", "--seed", "20261202", "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_headers_conformance,response_schema_conformance"], timeout=900, check=False)
    summary = [line for line in fuzz.stdout.splitlines() if re.search(r"\b(passed|failed|errored)\b", line)]
    assert fuzz.returncode == 0, "schemathesis through the compose front:\n" + fuzz.stdout[-3000:]
    figures.append(f"schemathesis at :{PORT} in {time.monotonic() - started:.0f} s: "
                   f"{summary[-1].strip(' =') if summary else 'passed'}")


SCALE_ROUNDS = itertools.count(1)


def step_scale_out_and_in(compose, figures):
    # Each round (--scale-rounds) counts keys of its own.
    prefix = f"sc{next(SCALE_ROUNDS)}-"
    resent_before = compose("logs", "--no-color", "nginx").stdout.count("nginx resent a request")
    with Load(PORT, prefix, clients=8, commit_share=0.1) as load:
        time.sleep(2)
        before = set(compose.containers("node"))
        started = time.monotonic()
        compose("up", "-d", "--no-recreate", "--scale", "node=5")
        new = [c for c in compose.containers("node") if c not in before]
        assert len(new) == 5 - len(before), new
        wait_for(lambda: all(compose.accepted(c) > 0 for c in new), 90, "the new replicas taking traffic")
        taking = time.monotonic() - started
        counts = {c[:12]: int(compose.accepted(c)) for c in compose.containers("node")}
        started = time.monotonic()
        compose("up", "-d", "--no-recreate", "--scale", "node=2", timeout=300)
        drained = time.monotonic() - started
        time.sleep(3)
    wait_for(lambda: compose.healthy(2), 60, "2 healthy replicas")
    flush_barrier()
    # nginx keeps a removed replica in its upstream until its next look-up in Docker's DNS: the
    # replica refuses new connections from its SIGTERM on (nginx retries them elsewhere), and once
    # it has exited its address times out. A request still trying replicas when the look-up changes
    # the upstream gets "no live upstreams" from nginx's round robin; nginx/docker.conf sends such a
    # request (which no replica received) once more, and logs it. A stopping replica's last
    # moment before it closes its listener is safe as well: the listener keeps only the loopback
    # interface first, so nginx's new connections are refused (and retried elsewhere) instead of
    # being completed and then reset with a request sent.
    outcome = load.check(compose.counters(prefix), exact=True)
    resent = compose("logs", "--no-color", "nginx").stdout.count("nginx resent a request") - resent_before
    assert set(load.statuses) <= {200, 202}, f"statuses while scaling: {load.statuses}"
    figures.append(f"--scale node=5 under load: the {len(new)} new replicas took traffic {taking:.1f} s after the command "
                   f"(accepted per replica {counts}); --scale node=2: 3 replicas stopped in {drained:.1f} s; "
                   f"statuses {load.statuses}; {resent} requests resent by nginx after the "
                   f"upstream changed; slowest answer "
                   f"{load.slowest:.2f} s; exact; {outcome}")


def step_sigkill(compose, figures):
    with Load(PORT, "kill-", clients=8, commit_share=0.1) as load:
        time.sleep(2)
        victim = compose.containers("node")[0]
        compose.docker("kill", "-s", "KILL", victim)
        time.sleep(2)
        compose("up", "-d", "--no-recreate", "--scale", "node=2")
        wait_for(lambda: compose.healthy(2), 90, "2 healthy replicas after the kill")
        time.sleep(1)
    flush_barrier()
    lost = load.check_after_a_kill(compose.counters("kill-"))
    figures.append(f"SIGKILL of a replica under load, then up: {load.requests()} requests, statuses {load.statuses}; "
                   f"nothing applied twice, every 200 stands; {lost} acknowledged 202 units lost with the killed "
                   f"replica's last flush window")


def step_postgres_stopped_then_nodes(compose, figures):
    with Load(PORT, "out-", clients=8, commit_share=0.0) as load:
        time.sleep(2)
        compose("stop", "postgres")
        time.sleep(3)
    ids = compose.containers("node")
    started = time.monotonic()
    compose("stop", "node", timeout=300)
    stopped = time.monotonic() - started
    codes = sorted(int(compose.inspect(i, "{{.State.ExitCode}}")) for i in ids)
    assert codes and all(code in (0, 75) for code in codes), f"node exit codes {codes}"
    compose("up", "-d", "--scale", "node=2")
    wait_for(lambda: compose.healthy(2), 120, "2 healthy replicas after the outage")
    wait_for(lambda: request(PORT, "POST", "/flush")[0] == 200, 60, "a flush barrier after the outage")
    stored = compose.counters("out-")
    outcome = load.check(stored)
    missing = {k: v for k, v in load.acknowledged.items() if stored.get(k, 0) < v}
    assert not missing, f"acknowledged increments lost: {list(missing.items())[:5]}"
    figures.append(f"postgres stopped under load, then the nodes: they stopped in {stopped:.1f} s with exit codes "
                   f"{codes} (75: spilled to the volume); the next up applied every batch once: {outcome}")


def step_down_up(compose, figures):
    before = compose.counters("")
    started = time.monotonic()
    compose("down", timeout=300)
    compose("up", "-d", "--scale", "node=3")
    wait_for(lambda: compose.healthy(3), 120, "3 healthy replicas after down/up")
    after = compose.counters("")
    assert after == before, f"{len(before)} counters before down, {len(after)} after; differing: " \
        f"{[(k, before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)][:5]}"
    figures.append(f"down (volumes kept), then up --scale node=3: {len(after)} counters all there, "
                   f"healthy again after {time.monotonic() - started:.0f} s")


def step_monitoring_profile(compose, figures):
    """Prometheus of the monitoring profile (Grafana's image is not in Debian: its files are
    checked by scripts/check-deploy.sh)."""
    compose("--profile", "monitoring", "up", "-d", "--scale", "node=3", "prometheus")
    replicas = {compose.inspect(c, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
                for c in compose.containers("node")}

    def prometheus(path):
        return json.loads(request(9090, "GET", path, timeout=10)[1])

    def scraped():
        try:
            targets = prometheus("/api/v1/targets")["data"]["activeTargets"]
        except (OSError, ValueError, http.client.HTTPException):
            return False
        up = {t["labels"]["instance"].rsplit(":", 1)[0] for t in targets if t["health"] == "up"}
        return up == replicas

    started = time.monotonic()
    wait_for(scraped, 90, "Prometheus scraping every replica")
    rules = [rule["name"] for group in prometheus("/api/v1/rules")["data"]["groups"] for rule in group["rules"]]
    with open(os.path.join(ROOT, "deploy/prometheus/alerts.yml")) as shipped:
        expected = {m.group(1) for m in re.finditer(r"- alert: (\w+)", shipped.read())}
    assert set(rules) == expected, (rules, expected)
    figures.append(f"--profile monitoring: Prometheus scraped all {len(replicas)} replicas up after "
                   f"{time.monotonic() - started:.0f} s, {len(rules)} alerting rules loaded")


STEPS = [step_up_scale_3, step_bad_input_through_the_front, step_scale_out_and_in, step_sigkill, step_postgres_stopped_then_nodes, step_down_up,
         step_monitoring_profile]


def main():
    if os.geteuid() != 0:
        print("compose test: skipped, it starts a Docker engine of its own and that needs root")
        return
    keep = sys.argv[sys.argv.index("--keep-images") + 1] if "--keep-images" in sys.argv else None
    engine_dir = keep or tempfile.mkdtemp(prefix="increment-docker.", dir="/tmp")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    passed = failed = 0
    compose = None
    try:
        docker_host = run([f"{ROOT}/scripts/docker-engine.sh", "start", engine_dir], timeout=120).stdout.strip()
        started = time.monotonic()
        images_out = run([f"{ROOT}/scripts/standin-images.sh", os.path.join(engine_dir, "standin")],
                         timeout=2400, env=dict(os.environ, DOCKER_HOST=docker_host)).stdout
        images = dict(line.split("=", 1) for line in images_out.split() if "=" in line)
        print(f"stand-in images ready in {time.monotonic() - started:.0f} s: {', '.join(images.values())}", flush=True)
        configuration = "release" if "--full" in sys.argv else "debug"
        print(f"node image: {configuration} build", flush=True)
        compose = Compose(docker_host, dict(images, SWIFT_CONFIGURATION=configuration))
        rounds = int(sys.argv[sys.argv.index("--scale-rounds") + 1]) if "--scale-rounds" in sys.argv else 1
        steps = [repeated for step in STEPS for repeated in [step] * (rounds if step is step_scale_out_and_in else 1)]
        for index, step in enumerate(steps):
            started = time.monotonic()
            figures = []
            try:
                step(compose, figures)
                passed += 1
                print(f"PASS {step.__name__} ({time.monotonic() - started:.0f} s): {'; '.join(figures)}", flush=True)
            except Exception as error:  # noqa: BLE001 (each step reports and the next one runs)
                failed += 1
                print(f"FAIL {step.__name__} ({time.monotonic() - started:.0f} s): {error}", flush=True)
                # What the engine did to each container meanwhile: a replica's exit code (75: it
                # spilled its batches) or a kill signal says where acknowledged increments went.
                events = compose.docker(
                    "events", "--since", f"{int(time.time() - (time.monotonic() - started)) - 1}",
                    "--until", f"{int(time.time())}", "--filter", "type=container", "--filter", "event=die",
                    "--filter", "event=kill", "--format",
                    "{{.Action}} {{.Actor.Attributes.name}} exitCode={{.Actor.Attributes.exitCode}} "
                    "signal={{.Actor.Attributes.signal}}", check=False).stdout
                print("\n".join("      " + line for line in events.splitlines()), flush=True)
                # nginx's own lines first: its error log says why a request got a 502 or 504.
                for service in ("nginx", "node"):
                    logs = compose("logs", "--no-color", "--tail", "30", service, check=False).stdout
                    print("\n".join("      " + line for line in logs.splitlines()[-40:]), flush=True)
                # Each step starts from where the last one left the cluster.
                skipped = len(steps) - index - 1
                if skipped:
                    failed += skipped
                    print(f"SKIP the {skipped} later steps", flush=True)
                break
    finally:
        if compose is not None:
            compose("down", "-v", "--remove-orphans", timeout=300, check=False)
        # Containers, networks and volumes go; with --keep-images the images stay for the next run.
        stopped = run([f"{ROOT}/scripts/docker-engine.sh", "stop", engine_dir, *(["--keep-images"] if keep else [])],
                      check=False, timeout=300)
        if stopped.returncode != 0:
            failed += 1
            print(f"FAIL stopping the engine in {engine_dir}: {stopped.stderr[-2000:]}", flush=True)
    print(f"compose test: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
