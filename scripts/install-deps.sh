#!/usr/bin/env bash
# Installs the Debian packages the project runs and tests with, where they are missing:
# PostgreSQL (server and client), nginx, PgBouncer (the fault suite runs a node through it),
# iproute2 (the fault suite cuts a node's network link), Python with venv (test scripts, and the
# project's own .venv for PyPI tools), docker-compose (checks the compose file offline), and the
# load tools ab and wrk. With --for-tests also Chromium, which the cluster test opens the status
# page in, and HAProxy, the stable endpoint of the fault suite's failover case; with --for-load the alternatives loadtest/report.py measures beside the cluster (redis,
# h2load; pgbench comes with postgresql-contrib). The Swift toolchain is not a Debian package: see
# the README.
set -euo pipefail

need=()
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[[ -n "$(pg_bin_dir)" && -x "$(pg_bin_dir)/initdb" ]] || need+=(postgresql postgresql-contrib)
command -v psql >/dev/null || need+=(postgresql-client)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v ab >/dev/null || need+=(apache2-utils)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
[[ -x /usr/sbin/pgbouncer ]] || command -v pgbouncer >/dev/null || need+=(pgbouncer)
command -v ip >/dev/null || need+=(iproute2)  # ip netns, ss: the fault suite
command -v pkill >/dev/null || need+=(procps)
command -v docker-compose >/dev/null || need+=(docker-compose)  # validates the compose file offline
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)  # the project's own Python for PyPI tools
for purpose in "$@"; do
    case "$purpose" in
    --for-tests)
        command -v chromium >/dev/null || need+=(chromium)  # the status page, headless
        [[ -x /usr/sbin/haproxy ]] || command -v haproxy >/dev/null || need+=(haproxy)  # the failover case's endpoint
        ;;
    --for-load)
        command -v redis-server >/dev/null || need+=(redis-server)
        command -v redis-benchmark >/dev/null || need+=(redis-tools)
        command -v h2load >/dev/null || need+=(nghttp2-client)
        ;;
    *) echo "usage: scripts/install-deps.sh [--for-tests] [--for-load]" >&2; exit 2 ;;
    esac
done

if ((${#need[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
fi
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a system cluster and nginx on install; this project runs its own on free ports.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl stop nginx postgresql pgbouncer redis-server haproxy >/dev/null 2>&1 || true
fi
