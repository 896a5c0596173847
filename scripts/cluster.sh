#!/usr/bin/env bash
# Runs the increment cluster on this machine: a throwaway PostgreSQL, N nodes and nginx on
# 127.0.0.1:3333. Ctrl-C (or `scripts/cluster.sh stop` from another shell) drains every node,
# which flushes what it holds, then stops nginx and PostgreSQL.
#
#   scripts/cluster.sh [--nodes N] [--port P] [--rate-limit R] [--detach] [--debug]
#   scripts/cluster.sh stop
#
#   --nodes N       nodes to run (default 3), on ports 8081, 8082, ...
#   --port P        nginx's public port (default 3333)
#   --rate-limit R  nginx limit_req per client address, requests per second (default: off)
#   --detach        start everything and return; stop later with `scripts/cluster.sh stop`
#   --debug         use a debug build (faster to build, slower to run)
#
# DATABASE_URL set: use that PostgreSQL instead of starting one.
# Any other environment (FLUSH_INTERVAL_MS, LOG_LEVEL, ...) passes through to the nodes;
# see `.build/release/increment-node --help`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run="${RUN_DIR:-$root/.run}"

nodes=3
public_port=3333
node_base_port=${NODE_BASE_PORT:-8081}
rate_limit=""
detach=0
configuration=release

source "$root/scripts/lib.sh"

log() { echo "cluster: $*" >&2; }

stop_cluster() {
    local pids=() pid
    if [[ -f "$run/nodes.pids" ]]; then
        read -r -a pids <"$run/nodes.pids" || true
        if ((${#pids[@]} > 0)); then
            log "draining ${#pids[@]} node(s) (final flush)..."
            kill -TERM "${pids[@]}" 2>/dev/null || true
            for pid in "${pids[@]}"; do
                while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
            done
        fi
        rm -f "$run/nodes.pids"
    fi
    stop_nginx "$run"
    if [[ -f "$run/pg.path" ]]; then
        "$root/scripts/pg.sh" stop "$(cat "$run/pg.path")"
        rm -rf "$(cat "$run/pg.path")" "$run/pg.path"
    fi
    log "stopped"
}

if [[ "${1:-}" == stop ]]; then
    stop_cluster
    exit 0
fi

while (($#)); do
    case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --port) public_port=$2; shift 2 ;;
    --rate-limit) rate_limit=$2; shift 2 ;;
    --detach) detach=1; shift ;;
    --debug) configuration=debug; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed -E 's/^# ?//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$nodes" =~ ^[1-9][0-9]*$ ]] || { echo "--nodes takes a positive number" >&2; exit 2; }

if [[ -f "$run/nodes.pids" || -f "$run/nginx.pid" ]]; then
    log "a cluster from $run seems to be running; stopping it first"
    stop_cluster
fi

require_swift
"$root/scripts/install-deps.sh"
mkdir -p "$run/nginx-tmp" "$run/logs"

log "building increment-node ($configuration)..."
(cd "$root" && swift build -c "$configuration" --product increment-node >&2)
binary="$root/.build/$configuration/increment-node"

trap 'stop_cluster' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${DATABASE_URL:-}" ]]; then
    # Under /tmp: the postgres user must reach it, and a checkout may sit in a private home.
    pg_dir=$(mktemp -d /tmp/increment-pg.XXXXXX)
    chmod 755 "$pg_dir"
    echo "$pg_dir" >"$run/pg.path"
    DATABASE_URL=$("$root/scripts/pg.sh" start "$pg_dir")
    log "PostgreSQL: $DATABASE_URL (throwaway, in $pg_dir)"
fi
export DATABASE_URL
# What PostgreSQL cannot take at shutdown is kept here and applied by the next start.
export FLUSH_SPILL_DIR="${FLUSH_SPILL_DIR:-$run/spill}"
# glibc's default of 8 malloc arenas per core lets RSS climb for minutes under reads; two keep it flat.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
log "spill directory: $FLUSH_SPILL_DIR"

pids=()
for ((index = 0; index < nodes; index++)); do
    port=$((node_base_port + index))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is taken; set NODE_BASE_PORT to another first port"
        exit 1
    fi
    PORT=$port HOST=127.0.0.1 "$binary" >"$run/logs/node-$((index + 1)).log" 2>&1 &
    pids+=($!)
done
echo "${pids[*]}" >"$run/nodes.pids"

for ((index = 0; index < nodes; index++)); do
    wait_until_ready $((node_base_port + index)) "${pids[$index]}" "$run/logs/node-$((index + 1)).log" || exit 1
done

ports=$(seq -s, "$node_base_port" $((node_base_port + nodes - 1)))
start_nginx "$run" "127.0.0.1:$public_port" "$ports" "$rate_limit"

cat >&2 <<MSG
cluster: ready: $nodes node(s) behind nginx on http://127.0.0.1:$public_port
  curl -i -X POST 127.0.0.1:$public_port/increment -d '{"key":"page:home","value":1}'
  curl 127.0.0.1:$public_port/counters/page:home
  logs: $run/logs/
MSG
if ((detach)); then
    log "detached; stop with: scripts/cluster.sh stop"
    trap - EXIT
    exit 0
fi
log "Ctrl-C to drain and stop"
wait "${pids[@]}" || true
