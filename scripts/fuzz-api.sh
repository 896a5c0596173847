#!/usr/bin/env bash
# Fuzzes a node against its own OpenAPI description with schemathesis, first at the node, then
# through nginx in front of it (the cluster's configuration): no request may get a 5xx, and every
# response must match the description (status, headers, body schema). Answers that depend on
# state (422 when a total would leave bigint) are the contract, so the "schema-valid request
# rejected" check is left out.
#
#   scripts/fuzz-api.sh POSTGRES_URL [--release]
# POSTGRES_URL names the server; a fresh database "api_fuzz" is made on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
server_url=${1:?usage: scripts/fuzz-api.sh POSTGRES_URL [--release]}
configuration=debug
[[ "${2:-}" == --release ]] && configuration=release

source "$root/scripts/lib.sh"
schemathesis=$(python_tool schemathesis schemathesis)

psql "$server_url" -qc "DROP DATABASE IF EXISTS api_fuzz" -c "CREATE DATABASE api_fuzz"
database_url=${server_url/\/postgres\?/\/api_fuzz?}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)

(cd "$root" && swift build -c "$configuration" --product increment-node >/dev/null)
nginx_run=$(mktemp -d)
DATABASE_URL="$database_url" PORT=$port LOG_LEVEL=error FLUSH_SPILL_DIR="$nginx_run/spill" "$root/.build/$configuration/increment-node" &
node=$!
trap 'stop_nginx "$nginx_run"; rm -rf "$nginx_run"; kill -TERM $node 2>/dev/null; wait $node 2>/dev/null || true' EXIT
wait_until_ready "$port" "$node"
nginx_port=$(free_port)
start_nginx "$nginx_run" "127.0.0.1:$nginx_port" "$port"

for target in "$port" "$nginx_port"; do
    if [[ $target == "$port" ]]; then echo "schemathesis at the node"; else echo "schemathesis through nginx"; fi
    "$schemathesis" run "http://127.0.0.1:$port/openapi.yaml" --url "http://127.0.0.1:$target" \
        --max-examples 50 --seed 20261123 \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
done
