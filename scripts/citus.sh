#!/usr/bin/env bash
# A throwaway Citus cluster on loopback: a coordinator and two workers, each a scripts/pg.sh
# server in a directory of its own under DIR.
#
#   scripts/citus.sh start DIR   start (initialising what is new); prints the coordinator's DATABASE_URL
#   scripts/citus.sh stop DIR    stop the three servers (a later start restarts them, on the same ports)
#   scripts/citus.sh available   exit 0 if this machine's PostgreSQL has the citus extension
#
# Needs the citus extension installed into the PostgreSQL that scripts/pg.sh runs; this project
# neither ships nor builds it. The nodes connect to the coordinator only (see deploy/SCALING.md).
# CITUS_WORKERS sets the number of workers (default 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
command=${1:-}
dir=${2:-}
workers=${CITUS_WORKERS:-2}

available() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    # Debian's layout: the server's modules are in lib/ beside bin/.
    [[ -n "$bin" && -f "${bin%/bin}/lib/citus.so" ]]
}

psql_at() {
    local url=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" psql "$url" -v ON_ERROR_STOP=1 -qAt "$@"
}

servers() {
    echo coordinator
    for ((i = 1; i <= workers; i++)); do echo "worker$i"; done
}

case "$command" in
available)
    available
    ;;
start)
    [[ -n "$dir" ]] || { sed -n '2,11p' "$0" >&2; exit 2; }
    available || { echo "citus.sh: this machine's PostgreSQL has no citus extension" >&2; exit 1; }
    mkdir -p "$dir"
    for server in $(servers); do
        # A restart keeps each server's port: the coordinator's metadata names the workers by it.
        PG_OPTIONS="-c shared_preload_libraries=citus ${PG_OPTIONS:-}" \
            "$here/pg.sh" start "$dir/$server" $(cat "$dir/$server/port" 2>/dev/null) >"$dir/$server.url"
        psql_at "$(cat "$dir/$server.url")" -c "CREATE EXTENSION IF NOT EXISTS citus"
    done
    coordinator=$(cat "$dir/coordinator.url")
    port() { cat "$dir/$1/port"; }
    psql_at "$coordinator" -c "SELECT citus_set_coordinator_host('127.0.0.1', $(port coordinator))" >/dev/null
    for ((i = 1; i <= workers; i++)); do
        psql_at "$coordinator" -c "SELECT 1 FROM pg_dist_node WHERE nodeport = $(port "worker$i")" | grep -q 1 \
            || psql_at "$coordinator" -c "SELECT citus_add_node('127.0.0.1', $(port "worker$i"))" >/dev/null
    done
    echo "$coordinator"
    ;;
stop)
    [[ -n "$dir" ]] || { sed -n '2,11p' "$0" >&2; exit 2; }
    for server in $(servers); do
        [[ -d "$dir/$server" ]] && "$here/pg.sh" stop "$dir/$server" || true
    done
    ;;
*)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
