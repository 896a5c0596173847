#!/usr/bin/env bash
# A throwaway PostgreSQL in a directory of its own, on a free loopback port.
#
#   scripts/pg.sh start DIR [PORT]   initialise DIR (if new) and start; prints the DATABASE_URL
#   scripts/pg.sh stop DIR           stop the server whose data is in DIR
#   scripts/pg.sh url DIR            print the DATABASE_URL of the server in DIR
#   scripts/pg.sh promote DIR        promote the standby whose data is in DIR
#
# As root, the server runs as the postgres user (initdb refuses root).
# PG_DURABLE=0 turns fsync off, for tests. PG_EXTRA_ADDRESS=A also listens on address A and
# trusts clients on its subnet (the fault suite's network-namespace case). PG_OPTIONS adds server
# options (`-c name=value ...`), after the others.
set -euo pipefail

bin_dir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$dir" ]]; then
        echo "PostgreSQL server binaries not found; run scripts/install-deps.sh" >&2
        exit 1
    fi
    echo "$dir"
}

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A free port below the kernel's ephemeral range (where outgoing connections take their local
# ports, so a port picked there can be taken between the check and the server's bind).
free_port() {
    local port low
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
    for port in $(shuf -i 10000-$((low - 1)) -n 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free port found" >&2
    exit 1
}

command=${1:-}
dir=${2:-}
[[ -n "$command" && -n "$dir" ]] || { sed -n '2,13p' "$0" >&2; exit 2; }

case "$command" in
start)
    bin=$(bin_dir)
    port=${3:-$(free_port)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres:postgres "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "the postgres user cannot reach $dir (a parent directory is private); use a directory under /tmp" >&2
            exit 1
        fi
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    addresses=127.0.0.1
    if [[ -n "${PG_EXTRA_ADDRESS:-}" ]]; then
        addresses+=",$PG_EXTRA_ADDRESS"
        grep -q '^host all all samenet trust' "$dir/data/pg_hba.conf" \
            || echo 'host all all samenet trust' >>"$dir/data/pg_hba.conf"
    fi
    options="-p $port -k $dir -c listen_addresses=$addresses -c max_connections=300"
    if [[ "${PG_DURABLE:-1}" == 0 ]]; then
        # Tests only: a crash of this throwaway server may lose its last commits.
        options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    options+=" ${PG_OPTIONS:-}"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$options" \
        >/dev/null || { tail -n 30 "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
stop)
    bin=$(bin_dir)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
promote)
    as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -w promote >/dev/null
    ;;
url)
    echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres?sslmode=disable"
    ;;
*)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
