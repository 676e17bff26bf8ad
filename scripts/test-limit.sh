#!/usr/bin/env bash
# Cargo's test runner in scripts/test.sh: runs one test binary (under
# qemu when the first argument names it) with a time limit, so a test that
# hangs cannot eat the whole CI budget without a name.
#
#   scripts/test-limit.sh [qemu-…-static] TEST-BINARY [ARGS…]
#
# TEST_LIMIT_SECS (default 600) bounds one run of a test binary; the
# slowest takes about 150 s under qemu. `timeout` runs it in its own
# process group and signals the whole group, so agents, gateways and
# PostgreSQL servers the tests started go with it. libtest names each test
# still running after 60 s ("has been running for over 60 seconds").
#
# A binary stopped at the limit runs once more. Both outcomes are written
# to TEST_LIMIT_REPORT (a file scripts/test.sh prints at the end, with the
# tests that were still running), so a hang that passed the second time is
# on record, never silent; a second hang fails the step.
set -uo pipefail

limit="${TEST_LIMIT_SECS:-600}"
report="${TEST_LIMIT_REPORT:-/dev/null}"
bin="$1"
case "$bin" in qemu-*) bin="${2:-$1}" ;; esac
name="$(basename "$bin")"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

for attempt in 1 2; do
    timeout --kill-after=20 "$limit" "$@" | tee "$out"
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 124 ] && [ "$status" -ne 137 ]; then
        [ "$attempt" -eq 2 ] && echo "HUNG ONCE: $name passed its second run (status $status)" >>"$report"
        exit "$status"
    fi
    # Named as slow, with no result line since: still running at the stop.
    running="$(sed -n 's/^test \(.*\) has been running for over 60 seconds$/\1/p' "$out" |
        while read -r t; do grep -q "^test $t \.\.\. " "$out" || printf '%s ' "$t"; done)"
    echo "test-limit.sh: $name ran past ${limit}s (attempt $attempt) and was stopped;" \
        "still running: ${running:-unknown}" >&2
    echo "HUNG: $name past ${limit}s (attempt $attempt); still running: ${running:-unknown}" >>"$report"
done
exit 124
