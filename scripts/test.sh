#!/usr/bin/env bash
# Runs every test: installs what is missing, starts a throwaway PostgreSQL, runs `swift test`,
# and stops the server again whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
require_swift
scripts/install-deps.sh --for-tests --for-load --for-compose

work=$(mktemp -d /tmp/increment-test.XXXXXX)
chmod 755 "$work"  # the postgres user runs the server in it
cleanup() {
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

export TEST_DATABASE_URL
TEST_DATABASE_URL=$(PG_DURABLE=0 scripts/pg.sh start "$work/pg")
echo "test PostgreSQL: $TEST_DATABASE_URL"

# Each step has a bound well past its usual time, so a hang fails the run naming the step
# instead of holding it until CI's own limit.
bounded() {
    local seconds=$1
    shift
    local status=0
    timeout --kill-after=30 "$seconds" "$@" || status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "test.sh: '$*' did not finish within ${seconds} s" >&2
    fi
    return "$status"
}

swift build --build-tests
bounded 900 swift test --skip-build "$@"

# A node fuzzed against its OpenAPI description, the deployment files checked offline, the
# cluster (nginx + 3 nodes) end to end, the fault suite in its bounded mode
# (system-tests/faults/fault_suite.py --full for the long one), 20 s of libFuzzer on the decoders,
# a smoke run of the performance report, and the compose test.
bounded 900 scripts/fuzz-api.sh "$TEST_DATABASE_URL"
bounded 900 system-tests/fuzz/run.sh 20
scripts/check-deploy.sh
# A seconds-long smoke of the performance report (loadtest/report.py for the real one).
bounded 600 loadtest/report.py --smoke --debug --out "$work/report"
bounded 1200 system-tests/cluster/cluster_test.py --debug
bounded 1800 system-tests/faults/fault_suite.py --debug
# docker compose of the shipped files on a Docker engine of its own; the image's release build
# is most of its time.
bounded 3600 system-tests/compose/compose_test.py
