# Shell helpers shared by the project's scripts; source it, do not run it.

# Prints the path of COMMAND from PyPI PACKAGE, installing the package if needed. PyPI tools
# land in this interpreter's scripts folder, which need not be on PATH.
python_tool() {
    local command=$1 package=$2 scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    [[ -x "$scripts/$command" ]] \
        || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$package" >/dev/null
    echo "$scripts/$command"
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
