#!/usr/bin/env bash
# Measures the cluster side by side in one run: nginx + N nodes, one node directly, and nginx's
# own `return 202` as the ceiling of this machine, with wrk and ab -k. Then drains the cluster
# and checks that PostgreSQL holds exactly the number of increments the tools saw acknowledged.
#
#   loadtest/run.sh [--nodes N] [--seconds S] [--connections C]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nodes=3 seconds=10 connections=64
while (($#)); do
    case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) sed -n '2,7p' "$0" >&2; exit 2 ;;
    esac
done

run=$(mktemp -d /tmp/increment-load.XXXXXX)
chmod 755 "$run"  # the postgres user runs the server in it
"$root/scripts/install-deps.sh"
database_url=$("$root/scripts/pg.sh" start "$run/pg")
cleanup() {
    RUN_DIR="$run/cluster" "$root/scripts/cluster.sh" stop >/dev/null 2>&1 || true
    [[ -f "$run/ceiling.pid" ]] && kill "$(cat "$run/ceiling.pid")" 2>/dev/null || true
    "$root/scripts/pg.sh" stop "$run/pg"
}
trap cleanup EXIT

RUN_DIR="$run/cluster" DATABASE_URL="$database_url" LOG_LEVEL=warning "$root/scripts/cluster.sh" \
    --nodes "$nodes" --detach

# nginx answering 202 itself: what this machine and these tools can do at all.
mkdir -p "$run/ceiling"
cat >"$run/ceiling/nginx.conf" <<CONF
worker_processes auto; pid $run/ceiling/nginx.pid; error_log $run/ceiling/error.log;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $run/ceiling; proxy_temp_path $run/ceiling;
  fastcgi_temp_path $run/ceiling; uwsgi_temp_path $run/ceiling; scgi_temp_path $run/ceiling;
  server { listen 127.0.0.1:3399; keepalive_requests 100000; location / { return 202; } } }
CONF
"$(command -v nginx || echo /usr/sbin/nginx)" -p "$run/ceiling" -c "$run/ceiling/nginx.conf"
echo "$(cat "$run/ceiling/nginx.pid")" >"$run/ceiling.pid"

declare -A results
acknowledged=0
measured_runs=0
measure() {
    local name=$1 url=$2 output
    output=$(env ${3:-} wrk -t2 -c"$connections" -d"${seconds}s" -s "$root/loadtest/increment.lua" "$url" 2>&1)
    results[$name]=$(awk '/Requests\/sec/ {print $2}' <<<"$output")
    if [[ $url != *3399* ]]; then
        acknowledged=$((acknowledged + $(awk -F= '/^acknowledged=/ {print $2}' <<<"$output")))
        measured_runs=$((measured_runs + 1))
    fi
    echo "== $name ($url)"
    grep -E "Latency|Requests/sec|wrk:" <<<"$output"
}
measure "nginx return 202 (ceiling)" http://127.0.0.1:3399
measure "cluster: nginx + $nodes nodes" http://127.0.0.1:3333
measure "one node directly" http://127.0.0.1:8081
# Every request with its own Idempotency-Key: the cost of exactly-once for clients.
measure "cluster, Idempotency-Key" http://127.0.0.1:3333 IDEMPOTENCY=1
measure "one node, Idempotency-Key" http://127.0.0.1:8081 IDEMPOTENCY=1

echo "== ab -k -c $connections -n 50000 through nginx"
echo '{"key":"ab-key","value":1}' >"$run/body.json"
ab_output=$(ab -k -q -c "$connections" -n 50000 -p "$run/body.json" -T application/json \
    http://127.0.0.1:3333/increment)
grep -E "Complete requests|Failed requests|Non-2xx|Requests per second|Time per request.*mean\)" <<<"$ab_output"
ab_complete=$(awk '/Complete requests/ {print $3}' <<<"$ab_output")
ab_non2xx=$(awk '/Non-2xx responses/ {print $3}' <<<"$ab_output")
acknowledged=$((acknowledged + ab_complete - ${ab_non2xx:-0}))

RUN_DIR="$run/cluster" "$root/scripts/cluster.sh" stop >/dev/null 2>&1
total=$(psql "$database_url" -Atc "SELECT coalesce(sum(value), 0) FROM counters")
echo "== after draining: PostgreSQL holds $total increments; the tools saw $acknowledged acknowledged"
# wrk stops with up to one request in flight per connection, which a node may have accepted.
slack=$((measured_runs * connections))
if ((total < acknowledged || total > acknowledged + slack)); then
    echo "MISMATCH: expected between $acknowledged and $((acknowledged + slack))" >&2
    exit 1
fi

echo
echo "summary (requests per second, same run, same machine):"
for name in "nginx return 202 (ceiling)" "cluster: nginx + $nodes nodes" "one node directly" \
    "cluster, Idempotency-Key" "one node, Idempotency-Key"; do
    printf "  %-32s %s\n" "$name" "${results[$name]}"
done
