#!/usr/bin/env bash
# A Docker engine of the tests' own, in a throwaway directory: never the one a user may run.
#
#   scripts/docker-engine.sh start DIR   start dockerd with its data, state and socket in DIR;
#                                        prints the DOCKER_HOST to use
#   scripts/docker-engine.sh stop DIR    remove every container, network, volume and image it
#                                        holds, stop it and delete DIR
#   scripts/docker-engine.sh stop DIR --keep-images
#                                        the same, but the images and DIR stay for a later start
#
# Root only (dockerd is). The engine has a bridge of its own (DOCKER_ENGINE_BRIDGE, default
# incr-docker0, on DOCKER_ENGINE_BRIDGE_CIDR, default 10.213.255.1/24) and takes its networks
# from DOCKER_ENGINE_POOL (default 10.214.0.0/16): its containers reach Debian's mirror (builds
# run apt-get). Needs Debian's docker.io
# (scripts/install-deps.sh --for-compose).
set -euo pipefail

command=${1:-}
dir=${2:-}
[[ -n "$command" && -n "$dir" ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "docker-engine.sh: dockerd runs as root" >&2; exit 1; }

bridge=${DOCKER_ENGINE_BRIDGE:-incr-docker0}
bridge_cidr=${DOCKER_ENGINE_BRIDGE_CIDR:-10.213.255.1/24}
pool=${DOCKER_ENGINE_POOL:-10.214.0.0/16}

socket() { echo "unix://$dir/docker.sock"; }

case "$command" in
start)
    command -v dockerd >/dev/null || { echo "dockerd not found; run scripts/install-deps.sh --for-compose" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -e "$dir/dockerd.pid" ]] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
        socket
        exit 0
    fi
    if ! ip link show "$bridge" >/dev/null 2>&1; then
        ip link add "$bridge" type bridge
        ip addr add "$bridge_cidr" dev "$bridge"
    fi
    ip link set "$bridge" up
    mkdir -p "$dir/data" "$dir/exec"
    nohup dockerd \
        --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        -H "$(socket)" --bridge "$bridge" --default-address-pool "base=$pool,size=24" \
        --log-level warn \
        >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 300); do
        if DOCKER_HOST=$(socket) docker version >/dev/null 2>&1; then
            socket
            exit 0
        fi
        sleep 0.1
    done
    echo "dockerd did not answer within 30 s; its log:" >&2
    tail -n 30 "$dir/dockerd.log" >&2
    exit 1
    ;;
stop)
    [[ -d "$dir" ]] || exit 0
    dir=$(cd "$dir" && pwd)
    if [[ -e "$dir/dockerd.pid" ]] && pid=$(cat "$dir/dockerd.pid") && kill -0 "$pid" 2>/dev/null; then
        export DOCKER_HOST
        DOCKER_HOST=$(socket)
        containers=$(docker ps -aq 2>/dev/null || true)
        # shellcheck disable=SC2086 # one id per word
        [[ -z "$containers" ]] || docker rm -f $containers >/dev/null 2>&1 || true
        if [[ "${3:-}" == --keep-images ]]; then
            docker container prune -f >/dev/null 2>&1 || true
            docker volume prune -f >/dev/null 2>&1 || true
            docker network prune -f >/dev/null 2>&1 || true
        else
            docker system prune -af --volumes >/dev/null 2>&1 || true
        fi
        kill "$pid"
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    # Whatever the engine left mounted under its directory, deepest first.
    { grep -o " $dir/[^ ]*" /proc/mounts || true; } | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
    [[ "${3:-}" == --keep-images ]] || rm -rf "$dir"
    if ip link show "$bridge" >/dev/null 2>&1 && ! pgrep -f "dockerd.*--bridge $bridge" >/dev/null; then
        ip link delete "$bridge" || true
    fi
    ;;
*)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
