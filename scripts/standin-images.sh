#!/usr/bin/env bash
# Builds, from Debian's packages, local stand-ins for the public images the Dockerfile and the
# compose file name, for a machine that reaches Debian's mirror but no image registry (the
# compose system test). Each goes under the project's own name, never a public one:
#
#   increment-standin/debian:bookworm   debian:bookworm-slim   (debootstrap minbase)
#   increment-standin/swift:6.3         swift:6.3-bookworm     (+ this machine's Swift toolchain
#                                                               and its offline package copies)
#   increment-standin/postgres:18       postgres:17-alpine     (sid's PostgreSQL; the entrypoint
#                                                               honours POSTGRES_PASSWORD,
#                                                               POSTGRES_DB and PGDATA)
#   increment-standin/nginx:1.30        nginx:1.27.4-alpine    (sid's nginx; `server … resolve`)
#   increment-standin/prometheus:3      prom/prometheus        (sid's Prometheus 3)
#
# Grafana is not in Debian: its provisioning files stay checked by scripts/check-deploy.sh.
#
# Usage: DOCKER_HOST=… scripts/standin-images.sh WORKDIR
# Prints the variables that point the compose file at them (SWIFT_IMAGE=… one per line).
# Images already present are kept. Needs root (debootstrap) and scripts/install-deps.sh --for-compose.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:?usage: scripts/standin-images.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
swift_root=$(cd "$(dirname "$(command -v swift)")/../.." && pwd)  # /opt/swift: usr/bin/swift
packages=${SWIFT_PACKAGE_COPIES:-/opt/swift-packages}

log() { echo "standin-images: $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

# A minbase root file system of SUITE imported as IMAGE.
base_image() {
    local suite=$1 image=$2 root="$work/rootfs-$1"
    have "$image" && return 0
    log "debootstrap $suite"
    rm -rf "$root"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap-$suite.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap-$suite.log" >&2; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # The mirror may serve a suite whose Release file is past its Valid-Until date (a frozen
    # snapshot): the packages are still signed, so the images' own builds accept it.
    echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99increment-standin"
    tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
    rm -rf "$root"
}

# docker build of a generated Dockerfile (stdin) in CONTEXT as IMAGE.
build() {
    local image=$1 context=$2
    have "$image" && return 0
    log "build $image"
    docker build -q --force-rm -t "$image" -f - "$context" >/dev/null
}

base_image bookworm increment-standin/debian:bookworm
base_image sid increment-standin/debian:sid

# The Swift image: Debian 12, what the toolchain links and builds with, the toolchain in /usr as
# in the official image, and git pointed at the package copies (no network reaches GitHub).
if ! have increment-standin/swift:6.3; then
    context="$work/swift-context"
    rm -rf "$context"
    mkdir -p "$context"
    # Hard links: no copy of the 3 GB toolchain. Debuggers, editors' servers and the embedded
    # runtime are left out; the build does not run them.
    cp -al "$swift_root/usr" "$context/usr"
    rm -rf "$context"/usr/lib/swift/embedded "$context"/usr/bin/{lldb*,sourcekit-lsp,clangd,docc,swift-format,wasmkit} \
        "$context"/usr/lib/liblldb* "$context"/usr/lib/libsourcekitdInProc.so
    cp -al "$packages" "$context/swift-packages"
    build increment-standin/swift:6.3 "$context" <<'DOCKERFILE'
FROM increment-standin/debian:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       binutils ca-certificates gcc git libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev \
       libicu72 libncurses6 libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-4 pkg-config tzdata \
       uuid-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
COPY usr /usr
COPY swift-packages /opt/swift-packages
RUN git config --system url./opt/swift-packages/.insteadOf https://github.com/ \
    && swift --version
DOCKERFILE
    rm -rf "$context"
fi

# PostgreSQL with the official image's interface: an empty data directory is initialised with
# POSTGRES_PASSWORD (scram) and POSTGRES_DB, then the server runs as postgres on every address.
if ! have increment-standin/postgres:18; then
    context="$work/postgres-context"
    rm -rf "$context"
    mkdir -p "$context"
    cat >"$context/entrypoint.sh" <<'ENTRYPOINT'
#!/bin/bash
set -euo pipefail
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    printf '%s\n' "$POSTGRES_PASSWORD" >/run/postgresql/pwfile
    chown postgres /run/postgresql/pwfile
    as_postgres initdb -D "$PGDATA" -U postgres --pwfile=/run/postgresql/pwfile --auth-host=scram-sha-256 --auth-local=trust >/dev/null
    rm /run/postgresql/pwfile
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [[ -n "${POSTGRES_DB:-}" && "$POSTGRES_DB" != postgres ]]; then
        as_postgres psql -v ON_ERROR_STOP=1 -U postgres -d postgres -q -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' "$@"
ENTRYPOINT
    chmod 755 "$context/entrypoint.sh"
    build increment-standin/postgres:18 "$context" <<'DOCKERFILE'
FROM increment-standin/debian:sid
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-18 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/18/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
DOCKERFILE
    rm -rf "$context"
fi

# nginx reading /etc/nginx/nginx.conf, in the foreground.
mkdir -p "$work/empty-context"
build increment-standin/nginx:1.30 "$work/empty-context" <<'DOCKERFILE'
FROM increment-standin/debian:sid
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && nginx -v
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
DOCKERFILE

# Prometheus with the official image's defaults: /etc/prometheus/prometheus.yml, data in /prometheus.
build increment-standin/prometheus:3 "$work/empty-context" <<'DOCKERFILE'
FROM increment-standin/debian:sid
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus && chown prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
DOCKERFILE

cat <<VARIABLES
SWIFT_IMAGE=increment-standin/swift:6.3
RUNTIME_IMAGE=increment-standin/debian:bookworm
POSTGRES_IMAGE=increment-standin/postgres:18
NGINX_IMAGE=increment-standin/nginx:1.30
PROMETHEUS_IMAGE=increment-standin/prometheus:3
VARIABLES
