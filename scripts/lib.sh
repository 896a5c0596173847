# Shell helpers shared by the project's scripts; source it, do not run it.

project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Stops with how to get Swift when no toolchain is on PATH.
require_swift() {
    command -v swift >/dev/null && return 0
    cat >&2 <<'MSG'
No Swift toolchain on PATH. This project needs Swift 6.1 or newer (developed with 6.3).
Install it with swiftly, as https://www.swift.org/install/linux/ describes:
  curl -O "https://download.swift.org/swiftly/linux/swiftly-$(uname -m).tar.gz"
  tar zxf "swiftly-$(uname -m).tar.gz" && ./swiftly init --quiet-shell-followup
  . "${SWIFTLY_HOME_DIR:-$HOME/.local/share/swiftly}/env.sh" && hash -r
then run this command again.
MSG
    exit 1
}

# Prints the path of the project's own Python (.venv, ignored by git), creating it if needed:
# PyPI tools go there, since Debian's system Python takes no pip installs (PEP 668).
project_python() {
    local venv="$project_root/.venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv" >&2 || {
            rm -rf "$venv"
            echo "python3 -m venv failed: install Debian's python3-venv (scripts/install-deps.sh does)" >&2
            return 1
        }
    fi
    echo "$venv/bin/python"
}

# Prints the path of COMMAND from PyPI PACKAGE, installing it into the project's Python if needed.
python_tool() {
    local command=$1 package=$2 python
    python=$(project_python) || return 1
    [[ -x "$(dirname "$python")/$command" ]] \
        || "$python" -m pip install -q --disable-pip-version-check "$package" >&2 || return 1
    echo "$(dirname "$python")/$command"
}

nginx_binary() { command -v nginx || echo /usr/sbin/nginx; }

# Starts nginx from nginx/local.conf.template in RUN_DIR, listening on LISTEN (address:port), in
# front of the comma-separated UPSTREAMS (see scripts/render-nginx.py), with an optional RATE_LIMIT.
start_nginx() {
    local run=$1 listen=$2 upstreams=$3 rate_limit=${4:-}
    mkdir -p "$run/nginx-tmp"
    "$project_root/scripts/render-nginx.py" "$project_root/nginx/local.conf.template" "$run/nginx.conf" "$run" \
        "$listen" "$upstreams" "$rate_limit"
    "$(nginx_binary)" -p "$run" -c "$run/nginx.conf" -t 2>"$run/nginx-test.log" \
        || { cat "$run/nginx-test.log" >&2; return 1; }
    "$(nginx_binary)" -p "$run" -c "$run/nginx.conf"
}

# Stops the nginx started by start_nginx in RUN_DIR, if it runs, and waits for it to exit.
stop_nginx() {
    local run=$1
    [[ -f "$run/nginx.pid" ]] || return 0
    "$(nginx_binary)" -p "$run" -c "$run/nginx.conf" -s quit 2>/dev/null || true
    for _ in $(seq 50); do [[ -f "$run/nginx.pid" ]] || break; sleep 0.1; done
}

# Waits up to 60 s for the node with process id PID to answer /readyz on PORT; on failure
# prints LOG's tail (if given) and returns 1.
wait_until_ready() {
    local port=$1 pid=$2 log=${3:-}
    for _ in $(seq 600); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the node on port $port exited" >&2
            [[ -n "$log" ]] && tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the node on port $port did not become ready in 60 s" >&2
    return 1
}

# Prints the path of promtool: the system's, or one taken out of Debian's prometheus package into
# the project's .tools/ (ignored by git), so that checking rules starts no Prometheus server.
promtool_binary() {
    if command -v promtool >/dev/null; then
        command -v promtool
        return
    fi
    local tools="$project_root/.tools/prometheus"
    if [[ ! -x "$tools/usr/bin/promtool" ]]; then
        local download
        download=$(mktemp -d)
        (cd "$download" && apt-get download -qq prometheus >&2) || { rm -rf "$download"; return 1; }
        mkdir -p "$tools"
        dpkg-deb -x "$download"/prometheus_*.deb "$tools"
        rm -rf "$download"
    fi
    echo "$tools/usr/bin/promtool"
}
