#!/usr/bin/env bash
# Installs the Debian packages the project runs and tests with, where they are missing:
# PostgreSQL (server and client), nginx, PgBouncer (the fault suite runs a node through it),
# iproute2 (the fault suite cuts a node's network link), Python with venv (test scripts, and the
# project's own .venv for PyPI tools), and the load tools ab and wrk. With --for-tests also
# Chromium, which the cluster test opens the status page in, and HAProxy, the stable endpoint of
# the fault suite's failover case; with --for-load the alternatives loadtest/report.py measures
# beside the cluster (redis, h2load; pgbench comes with postgresql-contrib); with --for-compose
# what the compose system test runs on: Debian's Docker engine (docker.io), debootstrap (its
# stand-in images) and Docker Compose v2 (Debian 12 has only the old 1.29: v2 comes from
# trixie's docker-compose package, whose Go binary needs nothing newer than Debian 12's libc).
# The Swift toolchain is not a Debian package: see the README.
set -euo pipefail

need=()
need_with_recommends=()
compose=0
compose_plugin=/usr/libexec/docker/cli-plugins/docker-compose
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
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)  # the project's own Python for PyPI tools
for purpose in "$@"; do
    case "$purpose" in
    --for-tests)
        command -v chromium >/dev/null || need+=(chromium)  # the status page, headless
        [[ -x /usr/sbin/haproxy ]] || command -v haproxy >/dev/null || need+=(haproxy)  # the failover case's endpoint
        ;;
    --for-compose)
        # With its recommends, as tried here (cgroupfs-mount, ca-certificates, xz-utils, git).
        command -v dockerd >/dev/null || need_with_recommends+=(docker.io)
        command -v debootstrap >/dev/null || need+=(debootstrap)
        compose=1
        ;;
    --for-load)
        command -v redis-server >/dev/null || need+=(redis-server)
        command -v redis-benchmark >/dev/null || need+=(redis-tools)
        command -v h2load >/dev/null || need+=(nghttp2-client)
        ;;
    *) echo "usage: scripts/install-deps.sh [--for-tests] [--for-load] [--for-compose]" >&2; exit 2 ;;
    esac
done

# Compose v2 from trixie, through an apt configuration of its own: the system's sources stay as
# they are.
install_compose_v2() {
    local apt_dir
    apt_dir=$(mktemp -d)
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${DEBIAN_MIRROR:-http://deb.debian.org/debian} trixie main" \
        >"$apt_dir/sources.list"
    local options=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root
        -o Acquire::Check-Valid-Until=false)
    echo "installing: docker-compose (v2, from trixie)" >&2
    apt-get "${options[@]}" update -qq
    (cd "$apt_dir" && apt-get "${options[@]}" download -qq docker-compose)
    dpkg -i "$apt_dir"/docker-compose_*.deb >/dev/null
    rm -rf "$apt_dir"
}

missing_compose() { ((compose == 1)) && [[ ! -x "$compose_plugin" ]]; }

if ((${#need[@]} == 0 && ${#need_with_recommends[@]} == 0)) && ! missing_compose; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    all=("${need[@]}" "${need_with_recommends[@]}")
    ((${#all[@]} == 0)) || echo "missing packages: ${all[*]}; install them with: sudo apt-get install -y ${all[*]}" >&2
    missing_compose && echo "missing: Docker Compose v2 (https://docs.docker.com/compose/install/)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ((${#need[@]} + ${#need_with_recommends[@]} > 0)); then
    echo "installing: ${need[*]} ${need_with_recommends[*]}" >&2
    apt-get update -qq
    ((${#need[@]} == 0)) || apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    ((${#need_with_recommends[@]} == 0)) || apt-get install -y -qq "${need_with_recommends[@]}" >/dev/null
fi
if missing_compose; then
    install_compose_v2
fi
# Debian starts a system cluster and nginx on install; this project runs its own on free ports.
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl stop nginx postgresql pgbouncer redis-server haproxy docker containerd >/dev/null 2>&1 || true
fi
