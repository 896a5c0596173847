#!/usr/bin/env python3
"""Cluster tests: PostgreSQL, 3 nodes and nginx started by the project's own scripts.

Many concurrent clients send a known set of increments through nginx (many keys, a few very
hot ones, some with wait=commit, some as batches); the nodes are then drained, and the totals
in PostgreSQL must equal the sums acknowledged, exactly. The second test sends one node
SIGTERM in the middle of the load.

Usage: system-tests/cluster/cluster_test.py [--debug] [--citus]   (prints "N passed, N failed")
  --citus  the nodes' PostgreSQL is a Citus coordinator with two workers (scripts/citus.sh; needs
           the extension installed)
"""
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "system-tests"))
from ports import free_port, free_port_range  # noqa: E402

CLIENTS = 16
REQUESTS_PER_CLIENT = 1500
HOT_KEYS = [f"hot-{i}" for i in range(4)]


def psql(url, sql):
    out = subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


class Client(threading.Thread):
    """One keep-alive connection sending increments; records what was acknowledged."""

    def __init__(self, port, prefix, seed, stop_after):
        super().__init__(daemon=True)
        self.port, self.prefix, self.random, self.stop_after = port, prefix, random.Random(seed), stop_after
        self.acknowledged = {}
        self.status_counts = {}
        self.commit_answers = 0

    def key(self):
        if self.random.random() < 0.5:
            return f"{self.prefix}-{self.random.choice(HOT_KEYS)}"
        return f"{self.prefix}-key-{self.random.randrange(2000)}"

    def send(self, connection, path, body):
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        self.status_counts[response.status] = self.status_counts.get(response.status, 0) + 1
        return response.status, data

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        for index in range(self.stop_after):
            choice = self.random.random()
            try:
                if choice < 0.05:
                    items = [{"key": self.key(), "value": self.random.randint(-5, 20)} for _ in range(20)]
                    status, _ = self.send(connection, "/increments", {"increments": items})
                    if status == 202:
                        for item in items:
                            self.acknowledged[item["key"]] = self.acknowledged.get(item["key"], 0) + item["value"]
                    continue
                key, value = self.key(), self.random.randint(-5, 20)
                wait = choice < 0.10
                status, data = self.send(connection, "/increment?wait=commit" if wait else "/increment",
                                         {"key": key, "value": value})
                if status in (200, 202):
                    self.acknowledged[key] = self.acknowledged.get(key, 0) + value
                if status == 200:
                    answer = json.loads(data)
                    assert answer["key"] == key and isinstance(answer["value"], int), answer
                    self.commit_answers += 1
            except (ConnectionError, http.client.HTTPException, OSError):
                self.status_counts["connection error"] = self.status_counts.get("connection error", 0) + 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


class Cluster:
    def __init__(self, database_url, debug):
        self.run_dir = tempfile.mkdtemp(prefix="increment-cluster.")
        self.port = free_port()
        self.database_url = database_url
        self.debug = debug

    def start(self):
        self.base_port = free_port_range(3)
        env = dict(os.environ, RUN_DIR=self.run_dir, DATABASE_URL=self.database_url,
                   NODE_BASE_PORT=str(self.base_port), FLUSH_INTERVAL_MS="200",
                   LOG_LEVEL="warning")
        args = [os.path.join(ROOT, "scripts/cluster.sh"), "--nodes", "3", "--port", str(self.port), "--detach"]
        if self.debug:
            args.append("--debug")
        subprocess.run(args, check=True, env=env)

    def node_pids(self):
        with open(os.path.join(self.run_dir, "nodes.pids")) as f:
            return [int(p) for p in f.read().split()]

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts/cluster.sh"), "stop"], check=True,
                       env=dict(os.environ, RUN_DIR=self.run_dir))


def run_load(cluster, prefix, during=None):
    clients = [Client(cluster.port, prefix, seed, REQUESTS_PER_CLIENT) for seed in range(CLIENTS)]
    started = time.monotonic()
    for client in clients:
        client.start()
    if during:
        during()
    for client in clients:
        client.join()
    elapsed = time.monotonic() - started
    acknowledged, statuses, commits = {}, {}, 0
    for client in clients:
        for key, value in client.acknowledged.items():
            acknowledged[key] = acknowledged.get(key, 0) + value
        for status, count in client.status_counts.items():
            statuses[status] = statuses.get(status, 0) + count
        commits += client.commit_answers
    requests = sum(statuses.values())
    print(f"  {prefix}: {requests} requests from {CLIENTS} clients in {elapsed:.1f}s "
          f"({requests / elapsed:.0f} req/s); statuses {statuses}; {commits} wait=commit answers; "
          f"{len(acknowledged)} keys")
    return acknowledged, statuses


def totals(database_url, prefix):
    return {key: int(value) for key, value in
            psql(database_url, f"SELECT key, value FROM counters WHERE key LIKE '{prefix}-%'")}


def compare(expected, actual):
    expected = {k: v for k, v in expected.items()}
    missing = {k: v for k, v in expected.items() if actual.get(k, 0) != v}
    extra = {k: v for k, v in actual.items() if k not in expected and v != 0}
    if missing or extra:
        sample = list(missing.items())[:5]
        raise AssertionError(f"{len(missing)} keys differ (expected vs actual: "
                             f"{[(k, v, actual.get(k)) for k, v in sample]}), {len(extra)} unexpected keys")


def test_exact_totals_through_nginx(database_url, debug):
    cluster = Cluster(database_url, debug)
    cluster.start()
    try:
        acknowledged, statuses = run_load(cluster, "steady")
        assert set(statuses) <= {200, 202}, f"unexpected statuses {statuses}"
    finally:
        cluster.stop()
    compare(acknowledged, totals(database_url, "steady"))


def test_exact_totals_when_a_node_is_terminated_mid_load(database_url, debug):
    cluster = Cluster(database_url, debug)
    cluster.start()
    victim = cluster.node_pids()[1]

    def terminate_one_node():
        time.sleep(1.0)
        os.kill(victim, signal.SIGTERM)
        print(f"  sent SIGTERM to node pid {victim}")

    try:
        acknowledged, statuses = run_load(cluster, "sigterm", during=terminate_one_node)
        try:
            os.kill(victim, 0)
            raise AssertionError("the terminated node is still running")
        except ProcessLookupError:
            pass
    finally:
        cluster.stop()
    # Refused or failed requests (e.g. 502 on a connection the draining node closed) were not
    # acknowledged; every acknowledged increment must be there exactly once.
    compare(acknowledged, totals(database_url, "sigterm"))


def test_status_page_in_headless_chromium(database_url, debug):
    """GET / through nginx, opened in headless Chromium while load runs: the page lists every
    node and shows live figures; a screenshot is kept for a person to look at."""
    cluster = Cluster(database_url, debug)
    cluster.start()
    stop = threading.Event()

    def trickle():
        connection = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
        while not stop.is_set():
            connection.request("POST", "/increment", body=json.dumps({"key": "page-load", "value": 1}))
            connection.getresponse().read()
            time.sleep(0.002)

    loader = threading.Thread(target=trickle, daemon=True)
    try:
        loader.start()
        time.sleep(5)  # a few heartbeats with the load's rates, and samples of them for the charts
        browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--virtual-time-budget=5000", "--window-size=1400,600"]
        url = f"http://127.0.0.1:{cluster.port}/"
        browser[-1] = "--window-size=1400,900"
        dom = subprocess.run(browser + ["--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout
        screenshot = os.path.join(tempfile.gettempdir(), "increment-status-page.png")
        subprocess.run(browser + [f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    finally:
        stop.set()
        loader.join()
        cluster.stop()
    addresses = [f"127.0.0.1:{cluster.base_port + index}" for index in range(3)]
    for address in addresses:
        assert address in dom, f"node {address} not on the page"
    assert dom.count('class="live">live<') == len(addresses), "not every node shown live"
    figures = {name: dom.split(f'id="{name}">', 1)[1].split("<", 1)[0] for name in ("live", "requests", "increments")}
    assert figures["live"] == str(len(addresses)), figures
    assert float(figures["requests"].replace(",", "")) > 0 and float(figures["increments"].replace(",", "")) > 0, figures
    charts = {}
    for name in ("requests", "increments", "pending", "flush"):
        tag = re.search(rf'<svg id="chart-{name}"[^>]*>', dom)
        assert tag, f"no {name} chart on the page"
        points, peak = re.search(r'data-points="(\d+)"', tag.group(0)), re.search(r'data-max="([\d.e+-]+)"', tag.group(0))
        assert points and peak, f"the {name} chart was never drawn: {tag.group(0)}"
        charts[name] = (int(points.group(1)), float(peak.group(1)))
    for name in ("requests", "increments"):
        assert charts[name][0] >= 2 * len(addresses) and charts[name][1] > 0, f"the {name} chart has no data: {charts}"
    assert dom.count("<polyline") >= 2 * len(addresses), "fewer lines than nodes in the charts"
    assert 'id="lookup-key"' in dom, "no look-up box"
    assert os.path.getsize(screenshot) > 10_000, "the screenshot is empty"
    print(f"  page shows {figures}; charts (points, max): {charts}; screenshot {screenshot}")


def main():
    debug = "--debug" in sys.argv
    server = os.path.join(ROOT, "scripts/citus.sh" if "--citus" in sys.argv else "scripts/pg.sh")
    pg_dir = tempfile.mkdtemp(prefix="increment-cluster-pg.")
    os.chmod(pg_dir, 0o755)
    database_url = subprocess.run([server, "start", pg_dir], check=True, capture_output=True, text=True,
                                  env=dict(os.environ, PG_DURABLE="0")).stdout.strip().splitlines()[-1]
    passed = failed = 0
    try:
        for test in (test_exact_totals_through_nginx, test_exact_totals_when_a_node_is_terminated_mid_load,
                     test_status_page_in_headless_chromium):
            print(f"cluster test {test.__name__}")
            try:
                test(database_url, debug)
                passed += 1
                print(f"  ok")
            except Exception as error:  # report and go on to the next test
                failed += 1
                print(f"  FAILED: {error!r}")
    finally:
        subprocess.run([server, "stop", pg_dir], check=False)
    print(f"cluster: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
