#!/usr/bin/env python3
"""One performance report: the cluster beside every alternative, measured in one run.

Starts a throwaway PostgreSQL, three release nodes and nginx fronts for 1, 2 and 3 of them (one of
them also speaking HTTP/2 cleartext), nginx answering 202 by itself (the machine's ceiling), the
floor (loadtest/floor: a bare SwiftNIO server answering 202 from its channel handler, and the same
parsing the body into one of 16 mutex-guarded dictionaries) and a redis-server; then runs every
scenario with the same tool settings, one after another:

  the ceiling; the floor, bare and parsing; one node directly; nginx + 1, 2, 3 nodes; many keys,
  one hot key, a Zipf mix; GET /counters/{key} over 10,000 stored keys at one node and through
  nginx, beside pgbench's prepared SELECT of one key and redis GET;
  wait=commit; /increments with 100 and 1,000 items (and 1,000 at one node directly); ab -k as
  users run it; per-request INSERT ... ON CONFLICT with pgbench (same key mixes and
  concurrency); redis INCR plain and pipelined (redis-benchmark); HTTP/2 with h2load at 1, 10 and
  100 streams per connection beside h2load --h1; one flush of 1M keys beside the bare upsert of
  the same keys, and SIGTERM to a node holding 1M pending keys beside the bare statement in psql.

Per scenario: requests/s and increments/s, p50/p99/p99.9, errors, ratio to the ceiling, CPU per
request of the servers under test (nodes, nginx, the floor: utime + stime from /proc over the run)
and of PostgreSQL, PostgreSQL commits/s and rows written/s, node RSS, and for the cluster's
scenarios the exactness check: per
key, stored <= sent and, over all keys, sent - stored <= one request in flight per connection.
Writes REPORT.md and SVG plots to --out (default loadtest/report).

Usage: loadtest/report.py [--smoke] [--seconds S] [--connections C] [--out DIR] [--debug]
  --smoke  one second per scenario and a few scenarios: a check that the command works (CI)
"""
import argparse
from http.client import HTTPConnection
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "system-tests"))
from ports import free_port  # noqa: E402
SCENARIO_LUA = os.path.join(ROOT, "loadtest", "scenario.lua")
READ_PREFIX = "read-"  # the 10,000 keys the read scenarios ask for, stored before them


def run(args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def cpu_seconds(pid, children=False):
    """utime + stime of `pid` (and of its reaped children: cutime + cstime), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def child_pids(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def built(product, debug):
    """Builds one of the package's executables and returns its path."""
    configuration = "debug" if debug else "release"
    subprocess.run(["swift", "build", "-c", configuration, "--product", product], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build", configuration, product)


def psql(url, sql):
    return [line.split("|") for line in run(["psql", url, "-Atc", sql]).splitlines() if line]


def psql_seconds(url, sql):
    """The statement's time as psql measures it (\\timing: the round trip, not psql's own start)."""
    out = run(["psql", url, "-At", "-c", "\\timing on", "-c", sql])
    return float(re.findall(r"Time: ([\d.]+) ms", out)[-1]) / 1000


def http(method, url, timeout=30):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def project_python():
    """The project's own Python (scripts/lib.sh makes the virtual environment), with matplotlib."""
    python = run(["bash", "-c", f"source {ROOT}/scripts/lib.sh && project_python"]).strip()
    if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "matplotlib"], check=True)
    return python


# MARK: keys, as scenario.lua makes them


def zipf_cdf(keys):
    weights = [1 / rank ** 1.1 for rank in range(1, keys + 1)]
    # The same order of additions as the Lua script, so both agree to the last bit.
    total, running, table = 0.0, 0.0, []
    for w in weights:
        total += w
    for w in weights:
        running += w
        table.append(running / total)
    return table


def key_index(mode, keys, cdf, thread, n):
    if mode == "hot":
        return 0
    if mode == "zipf":
        u = ((n * 2654435761 + thread * 40503) % 4294967296) / 4294967296
        low, high = 1, keys
        while low < high:
            middle = (low + high) // 2
            if cdf[middle - 1] < u:
                low = middle + 1
            else:
                high = middle
        return low - 1
    return ((n + thread * 104729) * 7919) % keys


def sent_per_key(mode, keys, prefix, sent):
    cdf = zipf_cdf(keys) if mode == "zipf" else None
    counts = {}
    for thread, count in sent:
        for n in range(1, count + 1):
            key = f"{prefix}{key_index(mode, keys, cdf, thread, n)}"
            counts[key] = counts.get(key, 0) + 1
    return counts


# MARK: the processes


class Stack:
    """PostgreSQL, nodes, nginx fronts, the ceiling and redis, all on free loopback ports."""

    def __init__(self, nodes, debug):
        self.dir = tempfile.mkdtemp(prefix="increment-report.")
        os.chmod(self.dir, 0o755)
        self.processes, self.nginx_dirs = [], []
        self.database_url = run([f"{ROOT}/scripts/pg.sh", "start", f"{self.dir}/pg"]).strip()
        binary = self.binary = built("increment-node", debug)
        self.node_ports, self.node_pids = [], []
        for index in range(nodes):
            port = free_port()
            env = dict(os.environ, DATABASE_URL=self.database_url, PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="error",
                       FLUSH_SPILL_DIR=f"{self.dir}/spill")
            process = subprocess.Popen([binary], env=env, stdout=open(f"{self.dir}/node-{index}.log", "w"),
                                       stderr=subprocess.STDOUT)
            self.processes.append(process)
            self.node_ports.append(port)
            self.node_pids.append(process.pid)
        # One more node with the read cache off, for reads beside the cached ones; no front has it.
        self.uncached_port = free_port()
        env = dict(os.environ, DATABASE_URL=self.database_url, PORT=str(self.uncached_port), HOST="127.0.0.1",
                   LOG_LEVEL="error", FLUSH_SPILL_DIR=f"{self.dir}/spill", READ_CACHE_STALENESS_MS="0")
        process = subprocess.Popen([binary], env=env, stdout=open(f"{self.dir}/node-uncached.log", "w"),
                                   stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.uncached_pid = process.pid
        for port in self.node_ports + [self.uncached_port]:
            self.wait_ready(port)
        # nginx in front of the first 1, 2 and 3 nodes; the last also listens for HTTP/2 cleartext.
        self.fronts = {}
        for count in range(1, nodes + 1):
            self.fronts[count] = self.start_front(self.node_ports[:count], http2=count == nodes)
        self.ceiling = self.start_ceiling()
        self.floor = {mode: self.start_floor(mode, debug) for mode in ("bare", "parsing")}
        self.redis_port = free_port()
        self.processes.append(subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)

    def wait_ready(self, port):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if http("GET", f"http://127.0.0.1:{port}/readyz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node on port {port} never became ready")

    def start_front(self, ports, http2):
        run_dir = tempfile.mkdtemp(dir=self.dir, prefix="nginx.")
        os.makedirs(f"{run_dir}/nginx-tmp")
        port = free_port()
        run([f"{ROOT}/scripts/render-nginx.py", f"{ROOT}/nginx/local.conf.template", f"{run_dir}/nginx.conf", run_dir,
             f"127.0.0.1:{port}", ",".join(map(str, ports))])
        h2_port = None
        if http2:
            h2_port = free_port()
            conf = open(f"{run_dir}/nginx.conf").read()
            listen = f"listen 127.0.0.1:{port} backlog=4096;"
            assert listen in conf, "the nginx template's listen line changed"
            # HTTP/2 cleartext (prior knowledge) on a port of its own, beside HTTP/1.1.
            conf = conf.replace(listen, f"{listen}\n        listen 127.0.0.1:{h2_port} http2;")
            open(f"{run_dir}/nginx.conf", "w").write(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-p", run_dir, "-c", f"{run_dir}/nginx.conf"], check=True)
        self.nginx_dirs.append(run_dir)
        return {"port": port, "h2_port": h2_port, "dir": run_dir}

    def start_ceiling(self):
        run_dir = tempfile.mkdtemp(dir=self.dir, prefix="ceiling.")
        port = free_port()
        with open(f"{run_dir}/nginx.conf", "w") as f:
            f.write(f"""worker_processes auto; pid {run_dir}/nginx.pid; error_log {run_dir}/error.log;
events {{ worker_connections 8192; }}
http {{ access_log off; client_body_temp_path {run_dir}; proxy_temp_path {run_dir};
  fastcgi_temp_path {run_dir}; uwsgi_temp_path {run_dir}; scgi_temp_path {run_dir};
  server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_requests 100000; location / {{ return 202; }} }} }}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-p", run_dir, "-c", f"{run_dir}/nginx.conf"], check=True)
        self.nginx_dirs.append(run_dir)
        self.ceiling_dir = run_dir
        return port

    def start_floor(self, mode, debug):
        """The bare SwiftNIO server of loadtest/floor, on a port of its own: its port and pid."""
        package = os.path.join(ROOT, "loadtest", "floor")
        configuration = "debug" if debug else "release"
        subprocess.run(["swift", "build", "-c", configuration, "--package-path", package], check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        process = subprocess.Popen([os.path.join(package, ".build", configuration, "increment-floor"), str(port)]
                                   + (["--parse"] if mode == "parsing" else []), stdout=subprocess.DEVNULL)
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        return {"port": port, "pid": process.pid}

    def nginx_pids(self, run_dir):
        with open(f"{run_dir}/nginx.pid") as f:
            master = int(f.read().strip())
        return [master] + child_pids(master)

    def front_pids(self, count):
        return self.node_pids[:count] + self.nginx_pids(self.fronts[count]["dir"])

    def postgres_cpu(self):
        """Every PostgreSQL process's CPU so far: the postmaster with its reaped backends, and the live ones."""
        with open(f"{self.dir}/pg/data/postmaster.pid") as f:
            postmaster = int(f.readline())
        total = cpu_seconds(postmaster, children=True)
        for pid in child_pids(postmaster):
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass  # ended meanwhile: counted in the postmaster's next reading
        return total

    def rss_mib(self):
        sizes = []
        for pid in self.node_pids:
            with open(f"/proc/{pid}/status") as f:
                kib = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            sizes.append(round(kib / 1024))
        return sizes

    def pg_counters(self):
        commits, rows = psql(self.database_url, "SELECT xact_commit, tup_inserted + tup_updated FROM pg_stat_database "
                                                "WHERE datname = current_database()")[0]
        return int(commits), int(rows)

    def stop(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        for run_dir in self.nginx_dirs:
            subprocess.run([nginx, "-p", run_dir, "-c", f"{run_dir}/nginx.conf", "-s", "quit"], check=False,
                           stderr=subprocess.DEVNULL)
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run([f"{ROOT}/scripts/pg.sh", "stop", f"{self.dir}/pg"], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# MARK: scenarios


class Report:
    def __init__(self, stack, seconds, connections):
        self.stack, self.seconds, self.connections = stack, seconds, connections
        self.rows = []
        self.scenario_number = 0
        self.failures = []  # the exactness checks that did not hold

    def record(self, name, group, requests_per_s, items, p50=None, p99=None, p999=None, errors=0, pg=None,
               exact=None, nodes=None, cpu=None):
        row = {"name": name, "group": group, "requests_per_s": requests_per_s, "increments_per_s": requests_per_s * items,
               "p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "errors": errors, "exact": exact, "nodes": nodes,
               "server_cpu_us": None, "pg_cpu_us": None}
        if cpu:
            row.update(cpu)
        if pg:
            row.update(pg)
        row["rss_mib"] = self.stack.rss_mib()
        self.rows.append(row)
        figures = f"{requests_per_s:,.0f} req/s"
        if items > 1:
            figures += f" = {requests_per_s * items:,.0f} increments/s"
        if p99 is not None:
            figures += f", p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        if row["server_cpu_us"] is not None:
            figures += f", server CPU {row['server_cpu_us']:.1f} µs/request"
        if row["pg_cpu_us"] is not None:
            figures += f", PostgreSQL CPU {row['pg_cpu_us']:.1f} µs/request"
        print(f"  {name}: {figures}, errors {errors}" + (f", exact: {exact}" if exact else ""), flush=True)

    def wrk(self, name, group, port, mode="uniform", items=0, wait=False, keys=10_000, nodes=None, counted=True,
            servers=(), read_prefix=None):
        """One wrk run; `servers`: the pids whose CPU per request is reported; `read_prefix`: GET
        /counters/{read_prefix}{k} instead of writes."""
        self.scenario_number += 1
        prefix = read_prefix or f"r{self.scenario_number}-"
        env = dict(os.environ, MODE=mode, KEYS=str(keys), PREFIX=prefix, ITEMS=str(items), WAIT="1" if wait else "0",
                   READ="1" if read_prefix else "0")
        before = self.stack.pg_counters()
        cpu_before = [cpu_seconds(pid) for pid in servers], self.stack.postgres_cpu()
        started = time.monotonic()
        out = run(["wrk", "-t2", f"-c{self.connections}", f"-d{self.seconds}s", "-s", SCENARIO_LUA,
                   f"http://127.0.0.1:{port}"], env=env)
        elapsed = time.monotonic() - started
        cpu_after = [cpu_seconds(pid) for pid in servers], self.stack.postgres_cpu()
        result = json.loads(out.split("report: ", 1)[1].splitlines()[0])
        seconds = result["duration_us"] / 1e6
        requests_per_s = result["requests"] / seconds
        errors = result["status_errors"] + result["socket_errors"]
        requests = max(result["requests"], 1)
        cpu = {"server_cpu_us": (sum(cpu_after[0]) - sum(cpu_before[0])) / requests * 1e6 if servers else None,
               "pg_cpu_us": (cpu_after[1] - cpu_before[1]) / requests * 1e6}
        if read_prefix:
            counted = False
        pg, exact = None, None
        if counted:
            self.flush_cluster()
            time.sleep(0.6)  # statistics reach pg_stat_database about once a second
            after = self.stack.pg_counters()
            pg = {"commits_per_s": (after[0] - before[0]) / elapsed, "rows_per_s": (after[1] - before[1]) / elapsed}
            exact = self.check(mode, keys, prefix, result, max(items, 1))
        self.record(name, group, requests_per_s, max(items, 1), result["p50_us"] / 1000, result["p99_us"] / 1000,
                    result["p999_us"] / 1000, errors, pg, exact, nodes, cpu)

    def flush_cluster(self, bound=120):
        """POST /flush until every node has written what it accepted: after a heavy scenario a node's
        backlog can take longer than one barrier's timeout (503 barrier_timeout), so ask again."""
        url = f"http://127.0.0.1:{self.stack.fronts[max(self.stack.fronts)]['port']}/flush"
        started = time.monotonic()
        while True:
            try:
                http("POST", url)
                break
            except urllib.error.HTTPError as error:
                if error.code != 503 or time.monotonic() - started > bound:
                    raise
        waited = time.monotonic() - started
        if waited > 5:
            print(f"    (the cluster took {waited:.1f} s to write its backlog)", flush=True)

    def check(self, mode, keys, prefix, result, items):
        """Per key: stored <= sent; in all: sent - stored <= one request in flight per connection."""
        sent = sent_per_key(mode, keys, prefix, result["sent"])
        stored = {k: int(v) for k, v in psql(self.stack.database_url,
                                             f"SELECT key, value FROM counters WHERE key LIKE '{prefix}%'")}
        over = [k for k, v in stored.items() if v > sent.get(k, 0)]
        missing = sum(sent.values()) - sum(stored.values())
        slack = self.connections * items
        ok = not over and 0 <= missing <= slack and result["status_errors"] + result["socket_errors"] == 0
        verdict = (f"yes ({len(stored):,} keys; {missing} of {sum(sent.values()):,} sent were in flight at the stop, "
                   f"at most {slack})") if ok else f"NO ({len(over)} keys over, {missing} missing, slack {slack})"
        if not ok:
            self.failures.append(verdict)
        return verdict

    def ab(self, port):
        body = os.path.join(self.stack.dir, "ab-body.json")
        with open(body, "w") as f:
            f.write('{"key":"ab-key","value":1}')
        requests = max(2_000, int(self.seconds * 5_000))
        before = self.stack.pg_counters()
        started = time.monotonic()
        out = run(["ab", "-k", "-q", "-c", str(self.connections), "-n", str(requests), "-p", body, "-T", "application/json",
                   f"http://127.0.0.1:{port}/increment"])
        elapsed = time.monotonic() - started
        rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        non2xx = int((re.search(r"Non-2xx responses:\s+(\d+)", out) or re.search("()", "")).group(1) or 0)
        p50 = float(re.search(r"\n\s+50%\s+(\d+)", out).group(1))
        p99 = float(re.search(r"\n\s+99%\s+(\d+)", out).group(1))
        http("POST", f"http://127.0.0.1:{port}/flush")
        time.sleep(0.6)
        after = self.stack.pg_counters()
        stored = int((psql(self.stack.database_url, "SELECT coalesce(sum(value), 0) FROM counters WHERE key = 'ab-key'")
                      or [["0"]])[0][0])
        exact = "yes (ab waits for every answer)" if stored == requests - non2xx - failed else f"NO ({stored} of {requests})"
        if not exact.startswith("yes"):
            self.failures.append(exact)
        self.record(f"ab -k -c{self.connections} through nginx + 3 nodes", "cluster", rate, 1, p50, p99, None,
                    failed + non2xx, {"commits_per_s": (after[0] - before[0]) / elapsed,
                                      "rows_per_s": (after[1] - before[1]) / elapsed}, exact)

    def pgbench(self, name, mode, keys=10_000, read_prefix=None, group="alternative"):
        """pgbench, prepared: the per-request upsert, or with `read_prefix` a SELECT of one stored key."""
        url = self.stack.database_url
        psql(url, "CREATE TABLE IF NOT EXISTS bench_counters (key text PRIMARY KEY, value bigint NOT NULL)")
        pick = {"uniform": f"\\set k random(0, {keys - 1})", "hot": "\\set k 0",
                "zipf": f"\\set k random_zipfian(0, {keys - 1}, 1.1)"}[mode]
        script = os.path.join(self.stack.dir, f"pgbench-{mode}{'-read' if read_prefix else ''}.sql")
        with open(script, "w") as f:
            if read_prefix:
                f.write(f"{pick}\nSELECT value FROM counters WHERE key = '{read_prefix}' || :k;\n")
            else:
                f.write(f"{pick}\nINSERT INTO bench_counters (key, value) VALUES ('k' || :k, 1) "
                        f"ON CONFLICT (key) DO UPDATE SET value = bench_counters.value + 1;\n")
        before = self.stack.pg_counters()
        pg_before = self.stack.postgres_cpu()
        out = run(["pgbench", "-n", "-M", "prepared", "-c", str(self.connections), "-j", "2", "-T", str(self.seconds),
                   "-f", script, url])
        after = self.stack.pg_counters()
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
        transactions = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
        latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
        self.record(name, group, tps, 1, latency, None, None, 0,
                    {"commits_per_s": (after[0] - before[0]) / self.seconds,
                     "rows_per_s": (after[1] - before[1]) / self.seconds},
                    cpu={"pg_cpu_us": (self.stack.postgres_cpu() - pg_before) / max(transactions, 1) * 1e6})

    def redis(self, name, pipeline, command="incr", group="alternative"):
        requests = max(100_000, int(self.seconds * (400_000 if pipeline > 1 else 60_000)))
        out = run(["redis-benchmark", "-p", str(self.stack.redis_port), "-t", command, "-c", str(self.connections),
                   "-n", str(requests), "-r", "10000", "-P", str(pipeline), "--csv"])
        row = [line for line in out.splitlines() if line.startswith(f'"{command.upper()}"')][0]
        fields = [field.strip('"') for field in row.split(",")]
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",...
        self.record(name, group, float(fields[1]), 1, float(fields[4]), float(fields[6]))

    def h2load(self, name, port, streams, h1=False):
        body = os.path.join(self.stack.dir, "h2-body.json")
        with open(body, "w") as f:
            f.write('{"key":"h2-key","value":1}')
        requests = max(5_000, int(self.seconds * 20_000))
        args = ["h2load", "-n", str(requests), "-c", str(self.connections), "-t", "2", "-m", str(streams), "-d", body,
                "-H", "content-type: application/json"]
        if h1:
            args.append("--h1")
        out = run(args + [f"http://127.0.0.1:{port}/increment"])
        rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
        statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        errors = requests - int(statuses.group(1))
        mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
        mean_ms = float(mean[:-2]) if mean.endswith("ms") else float(mean[:-2]) / 1000 if mean.endswith("us") else float(mean[:-1]) * 1000
        self.record(name, "http2", rate, 1, mean_ms, None, None, errors)


# MARK: output


def read_cache_staleness(stack, trials):
    """How long a node's read cache serves the value from before another node's commit: node 1
    reads a key (cached), node 0 commits an increment of it (`wait=commit`), then node 1 is read
    until it answers the new value. Times from node 0's answer to node 1's first new value."""
    writer = HTTPConnection("127.0.0.1", stack.node_ports[0], timeout=10)
    reader = HTTPConnection("127.0.0.1", stack.node_ports[1], timeout=10)

    def call(connection, method, path, body=None):
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()

    delays, stale_reads = [], 0
    for trial in range(trials):
        key = f"staleness-{trial}"
        call(writer, "POST", "/increment?wait=commit", json.dumps({"key": key, "value": 1}))
        for _ in range(3):  # queried once, then served from the cache
            call(reader, "GET", f"/counters/{key}")
        status, _ = call(writer, "POST", "/increment?wait=commit", json.dumps({"key": key, "value": 1}))
        assert status == 200, status
        committed = time.monotonic()
        while True:
            status, body = call(reader, "GET", f"/counters/{key}")
            if status == 200 and json.loads(body)["value"] == 2:
                delays.append(time.monotonic() - committed)
                break
            stale_reads += 1
            if time.monotonic() - committed > 5:
                raise RuntimeError(f"node 1 still served the old value of {key} 5 s after the commit")
    delays.sort()
    hits = sum(int(line.split()[-1]) for line in http("GET", f"http://127.0.0.1:{stack.node_ports[1]}/metrics")[1]
               .decode().splitlines() if line.startswith("increment_read_cache_hits_total "))
    quantile = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000  # noqa: E731
    return "\n".join([
        "| read cache: another node's commit seen | trials | p50 | p99 | max | reads answered the old value | cache hits at node 1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| from node 0's `wait=commit` `200` to node 1's first new value | {trials} | {quantile(0.5):.2f} ms | "
        f"{quantile(0.99):.2f} ms | {delays[-1] * 1000:.2f} ms | {stale_reads} | {hits} |",
    ])


def one_flush(stack, keys, debug):
    """The node's flush of `keys` distinct keys beside the bare statements, as a Markdown table."""
    binary = built("increment-flush-bench", debug)
    print(f"  one flush of {keys:,} keys ...", flush=True)
    table = run([binary, stack.database_url, "--one-flush", str(keys)])
    print(table, flush=True)
    return table.strip()


def shutdown_with_pending(stack, keys):
    """SIGTERM to a node holding `keys` pending keys (sent as /increments of 1,000): seconds to its exit,
    beside the bare INSERT ... SELECT of as many keys in psql, as a Markdown table."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=stack.database_url, PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="error",
               FLUSH_SPILL_DIR=f"{stack.dir}/spill", FLUSH_INTERVAL_MS="600000", FLUSH_EARLY_KEYS=str(keys + 1), BUFFER_MAX_PENDING_KEYS=str(keys + 1),
               FLUSH_SHUTDOWN_TIMEOUT_MS="60000", SHUTDOWN_DRAIN_MS="0")
    node = subprocess.Popen([stack.binary], env=env, stdout=open(f"{stack.dir}/node-shutdown.log", "w"),
                            stderr=subprocess.STDOUT)
    stack.wait_ready(port)
    print(f"  SIGTERM with {keys:,} pending keys ...", flush=True)
    connection = HTTPConnection("127.0.0.1", port, timeout=30)
    for first in range(0, keys, 1000):
        body = json.dumps({"increments": [{"key": f"shutdown-{i}", "value": 1} for i in range(first, min(first + 1000, keys))]})
        connection.request("POST", "/increments", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            raise RuntimeError(f"POST /increments answered {response.status}")
    connection.close()
    started = time.monotonic()
    node.send_signal(signal.SIGTERM)
    status = node.wait(timeout=90)
    exited = time.monotonic() - started
    stored = psql(stack.database_url, "SELECT count(*), coalesce(sum(value), 0) FROM counters WHERE key LIKE 'shutdown-%'")[0]
    started = time.monotonic()
    psql(stack.database_url, "INSERT INTO counters AS c (key, value, updated_at) SELECT 'shutdown-bare-' || g, 1, now() "
         f"FROM generate_series(1, {keys}) AS g ON CONFLICT (key) DO UPDATE SET value = c.value + EXCLUDED.value, "
         "updated_at = EXCLUDED.updated_at")
    bare = time.monotonic() - started
    exact = stored == [str(keys), str(keys)]
    if not exact:
        raise RuntimeError(f"after the shutdown PostgreSQL holds {stored} for {keys} keys of value 1")
    print(f"  exit {status} after {exited:.2f} s; bare statement {bare:.2f} s; stored {stored[0]} keys, exact", flush=True)
    return "\n".join([
        f"| SIGTERM with {keys:,} pending keys | seconds | ratio |", "| --- | ---: | ---: |",
        f"| node: signal to exit (status {status}; drain window `SHUTDOWN_DRAIN_MS=0`), all {keys:,} keys stored exactly | {exited:.2f} | {exited / bare:.2f} |",
        f"| bare `INSERT … SELECT FROM generate_series ON CONFLICT` of as many keys in psql | {bare:.2f} | 1.00 |",
    ])


def counter_lifecycle(report, stack, smoke):
    """Deletes and listings on a large table (1M rows; 20k with --smoke), through nginx + 3 nodes,
    each beside the bare statement in psql; and the cluster's write rate while prefix deletes run,
    beside a run without: a Markdown table, and two rows of the main table."""
    url = stack.database_url
    front = f"http://127.0.0.1:{stack.fronts[max(stack.fronts)]['port']}"
    family = 1_000 if smoke else 10_000  # one prefix round's worth of keys
    families = 18 if smoke else 90
    listed = 2_000 if smoke else 100_000
    print(f"  counter lifecycle on {families * family + listed:,} rows ...", flush=True)
    psql(url, "DELETE FROM counters")
    psql(url, f"INSERT INTO counters (key, value) SELECT 'bulk:' || lpad((g / {family})::text, 3, '0') || ':' || g, 1 "
              f"FROM generate_series(0, {families * family - 1}) AS g")
    psql(url, f"INSERT INTO counters (key, value) SELECT 'tenant:7:' || lpad(g::text, 7, '0'), g FROM generate_series(1, {listed}) AS g")
    psql(url, "VACUUM ANALYZE counters")

    def timed(method, path):
        started = time.monotonic()
        status, body = http(method, front + path)
        return time.monotonic() - started, json.loads(body) if body else None

    def median(values):
        return sorted(values)[len(values) // 2]

    barrier = [timed("POST", "/flush")[0] for _ in range(20)]
    def bulk_key(n, offset):
        """A stored key of the families the prefix rounds delete last."""
        g = (4 + n % (families - 4)) * family + 2 * n + offset
        return f"bulk:{g // family:03d}:{g}"

    singles, bare_single = [], []
    for n in range(40):
        took, answer = timed("DELETE", f"/counters/{bulk_key(n, 0)}")
        assert answer["value"] == 1, answer
        singles.append(took)
        bare_single.append(psql_seconds(url, f"DELETE FROM counters WHERE key = '{bulk_key(n, 1)}'"))
    rounds = []
    for number in range(3):
        took, answer = timed("DELETE", f"/counters?prefix=bulk:{number:03d}:")
        assert answer["more"] is False and answer["deleted"] >= family - 3, answer
        rounds.append(took)
    bare_round = psql_seconds(url, "DELETE FROM counters WHERE key COLLATE \"C\" >= 'bulk:003:' AND key COLLATE \"C\" < 'bulk:003;'")

    # Writes with and without prefix deletes, side by side.
    report.wrk("nginx + 3 nodes, beside the prefix-delete run", "lifecycle", stack.fronts[max(stack.fronts)]["port"], nodes=3)
    stop, deleted, during = threading.Event(), [0], []

    def delete_prefixes():
        for number in range(4, families):
            if stop.is_set():
                return
            took, answer = timed("DELETE", f"/counters?prefix=bulk:{number:03d}:")
            deleted[0] += answer["deleted"]
            during.append(took)

    deleter = threading.Thread(target=delete_prefixes, daemon=True)
    deleter.start()
    report.wrk("nginx + 3 nodes, while prefix deletes run", "lifecycle", stack.fronts[max(stack.fronts)]["port"], nodes=3)
    stop.set()
    deleter.join()
    print(f"    {len(during)} prefix rounds ran meanwhile ({deleted[0]:,} rows, median {median(during) * 1000:.0f} ms)", flush=True)

    pages, rows, after = 0, 0, None
    started = time.monotonic()
    while True:
        query = "/counters?prefix=tenant%3A7%3A&limit=1000" + (f"&after={urllib.parse.quote(after)}" if after else "")
        _, page = timed("GET", query)
        pages += 1
        rows += len(page["counters"])
        after = page["next"]
        if after is None:
            break
    listing = time.monotonic() - started
    assert rows == listed, (rows, listed)
    bare_listing = psql_seconds(url, "SELECT key, value FROM counters WHERE key COLLATE \"C\" >= 'tenant:7:' "
                                     "AND key COLLATE \"C\" < 'tenant:7;' ORDER BY key COLLATE \"C\"")
    total = families * family + listed
    print(f"    delete p50 {median(singles) * 1000:.1f} ms, prefix round {median(rounds) * 1000:.0f} ms, "
          f"listing {rows / listing:,.0f} rows/s", flush=True)
    return "\n".join([
        f"| on a {total:,}-row table, through nginx + 3 nodes | median | beside | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| `DELETE /counters/{{key}}` (barrier, shard lock, delete), 40 keys | {median(singles) * 1000:.1f} ms | "
        f"barrier alone (`POST /flush`) {median(barrier) * 1000:.1f} ms | {median(singles) / median(barrier):.2f} |",
        f"| bare `DELETE … WHERE key = …` in psql (`\\timing`), 40 keys | {median(bare_single) * 1000:.1f} ms | | |",
        f"| `DELETE /counters?prefix=` round of {family:,} keys, 3 rounds | {median(rounds) * 1000:.0f} ms | "
        f"bare range `DELETE` of {family:,} keys in psql (`\\timing`) {bare_round * 1000:.0f} ms | {median(rounds) / bare_round:.2f} |",
        f"| prefix rounds while wrk wrote (see the two `lifecycle` rows above) | {median(during) * 1000:.0f} ms | "
        f"{len(during)} rounds, {deleted[0]:,} rows | |",
        f"| listing {listed:,} keys of one prefix, pages of 1,000 | {rows / listing:,.0f} rows/s ({pages} pages, "
        f"{listing:.2f} s) | bare ordered range `SELECT` of them all in psql (`\\timing`) {bare_listing:.2f} s | {listing / bare_listing:.2f} |",
    ])


def machine():
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} cores ({cpu}), {int(memory) // 1024 // 1024} GiB, {platform.system()} {platform.release()}"


def targets(rows):
    """The performance targets, each checked against this run's rows, as Markdown table lines."""
    by_name = {r["name"]: r for r in rows}

    def row(name):
        return by_name.get(name)

    node, floor = row("one node directly"), row("bare SwiftNIO server answering 202 (floor)")
    two, ceiling = row("nginx + 2 nodes"), row("nginx answering 202 itself (ceiling)")
    node_read, front_read = row("one node directly, GET /counters/{key}"), row("nginx + 3 nodes, GET /counters/{key}")
    front, pgbench = row("nginx + 3 nodes"), row("pgbench prepared SELECT of one key")
    checks = []
    if node and floor:
        ratio = node["requests_per_s"] / floor["requests_per_s"]
        checks.append(("one node, POST /increment: req/s ≥ 0.8 × the floor's", f"{ratio:.3f}", ratio >= 0.8))
        if node["server_cpu_us"] and floor["server_cpu_us"]:
            ratio = node["server_cpu_us"] / floor["server_cpu_us"]
            checks.append(("one node: CPU per request ≤ 1.5 × the floor's", f"{ratio:.3f}", ratio <= 1.5))
    if two and ceiling:
        ratio = two["requests_per_s"] / ceiling["requests_per_s"]
        checks.append(("nginx + 2 nodes: req/s ≥ 0.3 × the ceiling's", f"{ratio:.3f}", ratio >= 0.3))
        checks.append(("nginx + 2 nodes: p99 ≤ 10 ms", f"{two['p99_ms']:.2f} ms", two["p99_ms"] <= 10))
        checks.append(("nginx + 2 nodes: no error", str(two["errors"]), two["errors"] == 0))
    if node_read and node:
        ratio = node_read["requests_per_s"] / node["requests_per_s"]
        checks.append(("one node: GET req/s ≥ 0.8 × its POST req/s", f"{ratio:.3f}", ratio >= 0.8))
    if node_read and pgbench:
        ratio = node_read["requests_per_s"] / pgbench["requests_per_s"]
        checks.append(("one node: GET req/s above pgbench's prepared SELECT", f"{ratio:.3f}", ratio > 1))
    if node_read and node_read["pg_cpu_us"] is not None:
        # 167-178 µs of PostgreSQL CPU per read were measured before reads were coalesced.
        checks.append(("one node: PostgreSQL CPU per read ≤ 1/5 of 167 µs", f"{node_read['pg_cpu_us']:.1f} µs",
                       node_read["pg_cpu_us"] <= 167 / 5))
    if front_read and front:
        ratio = front_read["requests_per_s"] / front["requests_per_s"]
        checks.append(("nginx + 3 nodes: GET req/s ≥ 0.8 × its POST req/s", f"{ratio:.3f}", ratio >= 0.8))
    if front_read and front_read["pg_cpu_us"] is not None:
        checks.append(("nginx + 3 nodes: PostgreSQL CPU per read ≤ 1/5 of 167 µs", f"{front_read['pg_cpu_us']:.1f} µs",
                       front_read["pg_cpu_us"] <= 167 / 5))
    return [f"| {name} | {value} | {'yes' if met else 'no'} |" for name, value, met in checks]


def write_report(rows, out, seconds, connections, plots_python, flush_table=None, lifecycle_table=None,
                 staleness_table=None):
    os.makedirs(out, exist_ok=True)
    ceiling = next(r["requests_per_s"] for r in rows if r["group"] == "ceiling")
    alternatives = {r["name"]: r["increments_per_s"] for r in rows if r["group"] == "alternative"}
    lines = [
        "# Performance report", "",
        f"Made by `loadtest/report.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {machine()}. "
        f"The load tools, nginx, the nodes, PostgreSQL and redis share these cores. Every scenario ran for "
        f"{seconds} s with {connections} connections and 2 threads, one after another, in one run; keys are 10,000 "
        "unless the scenario says otherwise.", "",
        "| scenario | requests/s | increments/s | p50 ms | p99 ms | p99.9 ms | errors | ratio to ceiling | "
        "server CPU µs/req | PG CPU µs/req | PG commits/s | PG rows/s | node RSS MiB | exact |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]

    def number(value, digits=0):
        return "" if value is None else f"{value:,.{digits}f}"

    for r in rows:
        lines.append(
            f"| {r['name']} | {number(r['requests_per_s'])} | {number(r['increments_per_s'])} | {number(r['p50_ms'], 2)} | "
            f"{number(r['p99_ms'], 2)} | {number(r['p999_ms'], 2)} | {r['errors']} | {r['requests_per_s'] / ceiling:.2f} | "
            f"{number(r.get('server_cpu_us'), 1)} | {number(r.get('pg_cpu_us'), 1)} | {number(r.get('commits_per_s'))} | {number(r.get('rows_per_s'))} | {', '.join(map(str, r['rss_mib']))} | "
            f"{r['exact'] or ''} |")
    lines += ["", "Ratios of each cluster scenario's increments/s to each alternative's:", "",
              "| scenario | " + " | ".join(alternatives) + " |", "| --- |" + " ---: |" * len(alternatives)]
    for r in rows:
        if r["group"] == "cluster":
            lines.append(f"| {r['name']} | " + " | ".join(f"{r['increments_per_s'] / v:.2f}" for v in alternatives.values()) + " |")
    lines += ["", "## Targets", "", "Each a ratio of two rows above, measured in this run.", "",
              "| target | measured | met |", "| --- | ---: | --- |"] + targets(rows)
    lines += ["", "pgbench rows: one `INSERT ... ON CONFLICT DO UPDATE` per transaction, prepared, same key mix; the "
              "latency column there is pgbench's average. redis rows: `redis-benchmark -t incr -r 10000`; its p50/p99 "
              "columns are redis-benchmark's. HTTP/2 rows: h2load against nginx's HTTP/2 cleartext port (prior "
              "knowledge) at 1, 10 and 100 streams per connection, beside `h2load --h1` against its HTTP/1.1 port; "
              "their latency column is h2load's mean. Server CPU: utime + stime of the processes answering (the "
              "node; nginx's master and workers and the nodes behind it; the floor; nginx for the ceiling) over the "
              "run, divided by its requests; PostgreSQL CPU likewise over every server process, the barrier polls and "
              "heartbeats of the three idle nodes included. pgbench's SELECT row: prepared, one stored key per "
              "transaction; redis GET: `redis-benchmark -t get -r 10000` after as many SETs. At 100 streams, 64 connections carry 6,400 requests at once, past "
              "nginx's limit of 1,000 requests in progress per client address, and nginx answers the rest 429: the "
              "errors there are that limit at work. HTTP/2 is not part of the shipped nginx configuration: it did not "
              "help (see the rows). "
              "PostgreSQL commits/s count read-only transactions too: each node polls the flush-barrier sequence every "
              "`BARRIER_POLL_MS` (20 ms, 50 a second) and heartbeats twice a second, so about 170 of them come from "
              "three idle nodes; the rows/s column is what the flushes write.", "",
              "![throughput](throughput.svg)", "", "![latency](latency.svg)", "", "![nodes](nodes.svg)", ""]
    if flush_table:
        lines += ["## One large flush", "",
                  "`increment-flush-bench DATABASE_URL --one-flush N` against the same PostgreSQL after the scenarios: "
                  "the node's flush transaction (cluster-shard locks, ledger claim, the one upsert, commit) beside the "
                  "bare upsert of the same keys, each first for new keys, then again for the same keys now stored; and "
                  "the node's own work before it (draining the buffer, sorting the batch by key bytes). Then a "
                  "node holding that many pending keys is sent SIGTERM: the time to its exit (drain, batch, flush, "
                  "stop) beside the bare statement in psql.", "",
                  flush_table, ""]
    if lifecycle_table:
        lines += ["## Deleting and listing counters", "",
                  "A table of 1M counters (20,000 with `--smoke`; prefix families of 10,000 keys, and one prefix of 100,000 for the listing), "
                  "through nginx + 3 nodes: a delete passes a flush barrier first, so its figure stands beside the "
                  "barrier alone (`POST /flush`); a prefix round and a listing stand beside the bare statement in psql.", "",
                  lifecycle_table, ""]
    if staleness_table:
        lines += ["## The read cache's staleness", "",
                  "Plain reads may be answered from a node's cache of committed values, at most "
                  "`READ_CACHE_STALENESS_MS` (200 ms) behind PostgreSQL. How far behind in practice: node 1 has a key "
                  "cached, node 0 commits an increment of it, node 1 is read again and again until it answers the new value.", "",
                  staleness_table, ""]
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    subprocess.run([plots_python, "-c", PLOTS, out], check=True)


PLOTS = r"""
import json, os, sys
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
out = sys.argv[1]
rows = json.load(open(os.path.join(out, "results.json")))
plt.rcParams["svg.hashsalt"] = "increment"  # the same file for the same figures
names = [r["name"] for r in rows][::-1]
fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1))
ax.barh(names, [r["increments_per_s"] for r in rows][::-1], color="#3b6ea5")
ax.set_xscale("log"); ax.set_xlabel("increments per second (log)"); ax.set_title("Throughput per scenario (same run)")
fig.tight_layout(); fig.savefig(os.path.join(out, "throughput.svg"))
timed = [r for r in rows if r["p99_ms"] is not None]
fig, ax = plt.subplots(figsize=(10, 0.32 * len(timed) + 1))
labels = [r["name"] for r in timed][::-1]
for offset, field, color in ((-0.25, "p50_ms", "#9ec5e8"), (0, "p99_ms", "#3b6ea5"), (0.25, "p999_ms", "#1d3557")):
    ax.barh([i + offset for i in range(len(timed))], [r[field] or 0 for r in timed][::-1], height=0.25, color=color,
            label=field.replace("_ms", ""))
ax.set_yticks(range(len(timed))); ax.set_yticklabels(labels); ax.set_xscale("log"); ax.set_xlabel("ms (log)")
ax.legend(); ax.set_title("Latency percentiles"); fig.tight_layout(); fig.savefig(os.path.join(out, "latency.svg"))
scaled = sorted((r for r in rows if r.get("nodes")), key=lambda r: r["nodes"])
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot([r["nodes"] for r in scaled], [r["requests_per_s"] for r in scaled], marker="o")
ax.set_xlabel("nodes behind nginx"); ax.set_ylabel("requests per second"); ax.set_xticks([r["nodes"] for r in scaled])
ax.set_ylim(bottom=0); ax.set_title("Throughput against nodes (one machine)")
fig.tight_layout(); fig.savefig(os.path.join(out, "nodes.svg"))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", default=os.path.join(ROOT, "loadtest", "report"))
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--lifecycle", action="store_true",
                        help="only the section on deleting and listing counters: print its figures, write nothing")
    options = parser.parse_args()
    seconds = 1 if options.smoke else options.seconds
    subprocess.run([f"{ROOT}/scripts/install-deps.sh", "--for-load"], check=True)
    plots_python = project_python()
    stack = Stack(3, options.debug)
    report = Report(stack, seconds, options.connections)
    if options.lifecycle:
        try:
            print(counter_lifecycle(report, stack, options.smoke))
        finally:
            stack.stop()
        return
    try:
        fronts = stack.fronts
        print("scenarios:", flush=True)
        report.wrk("nginx answering 202 itself (ceiling)", "ceiling", stack.ceiling, counted=False,
                   servers=stack.nginx_pids(stack.ceiling_dir))
        report.wrk("bare SwiftNIO server answering 202 (floor)", "floor", stack.floor["bare"]["port"], counted=False,
                   servers=[stack.floor["bare"]["pid"]])
        report.wrk("bare SwiftNIO server, parsing into 16 locked dictionaries", "floor", stack.floor["parsing"]["port"],
                   counted=False, servers=[stack.floor["parsing"]["pid"]])
        report.wrk("one node directly", "cluster", stack.node_ports[0], nodes=None, servers=stack.node_pids[:1])
        for count in sorted(fronts):
            report.wrk(f"nginx + {count} node{'s' if count > 1 else ''}", "cluster", fronts[count]["port"], nodes=count,
                       servers=stack.front_pids(count))
        big = fronts[max(fronts)]["port"]
        psql(stack.database_url, f"INSERT INTO counters (key, value) SELECT '{READ_PREFIX}' || g, g "
                                 "FROM generate_series(0, 9999) AS g ON CONFLICT (key) DO NOTHING")
        report.wrk("one node directly, GET /counters/{key}", "reads", stack.node_ports[0], read_prefix=READ_PREFIX,
                   servers=stack.node_pids[:1])
        report.wrk("nginx + 3 nodes, GET /counters/{key}", "reads", big, read_prefix=READ_PREFIX,
                   servers=stack.front_pids(max(fronts)))
        report.wrk("one node directly, GET /counters/{key}, read cache off", "reads", stack.uncached_port,
                   read_prefix=READ_PREFIX, servers=[stack.uncached_pid])
        staleness_table = read_cache_staleness(stack, 50 if options.smoke else 500)
        print(staleness_table, flush=True)
        report.pgbench("pgbench prepared SELECT of one key", "uniform", read_prefix=READ_PREFIX, group="read alternative")
        run(["redis-benchmark", "-p", str(stack.redis_port), "-t", "set", "-n", "20000", "-r", "10000", "-q"])
        report.redis("redis GET", 1, command="get", group="read alternative")
        report.wrk("nginx + 3 nodes, one hot key", "cluster", big, mode="hot")
        report.wrk("nginx + 3 nodes, Zipf mix (s = 1.1)", "cluster", big, mode="zipf")
        report.wrk("nginx + 3 nodes, wait=commit", "cluster", big, wait=True)
        report.wrk("nginx + 3 nodes, /increments × 100", "cluster", big, items=100)
        if not options.smoke:
            report.wrk("nginx + 3 nodes, /increments × 1,000", "cluster", big, items=1000, keys=100_000)
            report.wrk("one node directly, /increments × 1,000", "cluster", stack.node_ports[0], items=1000, keys=100_000)
        report.ab(big)
        report.pgbench("pgbench per-request upsert, many keys", "uniform")
        if not options.smoke:
            report.pgbench("pgbench per-request upsert, one hot key", "hot")
            report.pgbench("pgbench per-request upsert, Zipf mix", "zipf")
        report.redis("redis INCR", 1)
        report.redis("redis INCR, pipelined -P16", 16)
        h2 = fronts[max(fronts)]["h2_port"]
        report.h2load("h2load --h1 (HTTP/1.1 baseline)", big, 1, h1=True)
        for streams in ((1, 10, 100) if not options.smoke else (10,)):
            report.h2load(f"h2load HTTP/2 cleartext, {streams} stream{'s' if streams > 1 else ''} per connection", h2, streams)
        # The big flushes before the lifecycle section: its million deleted rows would leave them
        # a table of dead tuples to upsert into (a 1M-key flush then outlasted its 20 s deadline).
        flush_table = one_flush(stack, 10_000 if options.smoke else 1_000_000, options.debug)
        flush_table += "\n\n" + shutdown_with_pending(stack, 10_000 if options.smoke else 1_000_000)
        lifecycle_table = counter_lifecycle(report, stack, options.smoke)
    finally:
        stack.stop()
    write_report(report.rows, options.out, seconds, options.connections, plots_python, flush_table, lifecycle_table,
                 staleness_table)
    print(f"report: {os.path.join(options.out, 'REPORT.md')}")
    if report.failures:
        print(f"exactness: {len(report.failures)} scenario(s) failed: {report.failures}", file=sys.stderr)
        sys.exit(1)
    print("report: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
