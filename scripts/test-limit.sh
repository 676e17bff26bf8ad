#!/usr/bin/env bash
# Cargo's test runner in scripts/test.sh: runs one test binary (under
# qemu when the first argument names it) with a time limit, so a test that
# hangs fails its step with its name on record instead of eating the
# whole CI budget.
#
#   scripts/test-limit.sh [qemu-…-static] TEST-BINARY [ARGS…]
#
# TEST_LIMIT_SECS (default 900) bounds one test binary; the slowest takes
# about 150 s under qemu. `timeout` runs the binary in its own process group
# and signals the whole group, so agents, gateways and PostgreSQL servers the
# tests started go with it. libtest names each test still running after
# 60 s ("has been running for over 60 seconds"): that line says which one hung.
set -uo pipefail

limit="${TEST_LIMIT_SECS:-900}"
timeout --kill-after=20 "$limit" "$@"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    bin="$1"
    case "$bin" in qemu-*) bin="${2:-$1}" ;; esac
    echo "test-limit.sh: $(basename "$bin") ran past ${limit}s and was stopped;" \
        "the tests still running are named above" >&2
fi
exit "$status"
