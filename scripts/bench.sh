#!/usr/bin/env bash
# Benchmarks (never timed tests): one poll cycle's CPU time and the agent's
# peak memory against the simulator with 10,000 hotspot users (5,000 active)
# and 2,000 PPPoE secrets (1,000 active), plus the release binary size.
#
#   scripts/bench.sh                 # defaults above, 20 measured cycles
#   BENCH_CYCLES=50 scripts/bench.sh
#
# CPU time comes from /proc/<pid>/stat (utime+stime, clock ticks) sampled at
# the agent's own "cycle:" log lines; peak memory is VmHWM from
# /proc/<pid>/status. The simulator runs in its own process, so its work is
# not counted.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${BENCH_USERS:-10000}
ACTIVE=${BENCH_ACTIVE:-5000}
SECRETS=${BENCH_SECRETS:-2000}
PPP_ACTIVE=${BENCH_PPP_ACTIVE:-1000}
CYCLES=${BENCH_CYCLES:-20}

# The shipped binary: static musl (its allocator, not glibc's per-thread
# arenas, is what runs on a router or a Pi).
TARGET=${BENCH_TARGET:-x86_64-unknown-linux-musl}
cargo build --quiet --release --no-default-features --bin mikrotik-edge --target "$TARGET"
AGENT_BIN=target/$TARGET/release/mikrotik-edge
cargo build --quiet --release --features sim --bin routeros-sim

work=$(mktemp -d)
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${sim:-}" ] && kill "$sim" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
  --hotspot-users "$USERS" --hotspot-active "$ACTIVE" \
  --pppoe-secrets "$SECRETS" --ppp-active "$PPP_ACTIVE" --per-sentence >"$work/sim.out" &
sim=$!
for _ in $(seq 100); do grep -q '^api: ' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim.out")
[ -n "$port" ] || { echo "bench: simulator did not start" >&2; exit 1; }

MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port \
MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
MIKROTIK_EDGE_STATE_PATH="$work/state.redb" MIKROTIK_EDGE_POLL_SECS=1 \
MIKROTIK_EDGE_LOG_LEVEL=debug \
  "$AGENT_BIN" run 2>"$work/agent.log" &
agent=$!

ticks_per_sec=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
cycles_seen() { grep -c 'cycle: ' "$work/agent.log" || true; }
wait_cycles() {
  local want=$1
  for _ in $(seq 600); do
    [ "$(cycles_seen)" -ge "$want" ] && return 0
    kill -0 "$agent" 2>/dev/null || { echo "bench: agent exited" >&2; tail "$work/agent.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: timed out waiting for cycle $want" >&2; tail "$work/agent.log" >&2; exit 1
}

wait_cycles 1
first=$(cpu_ticks)
wait_cycles 2
start=$(cpu_ticks)
wait_cycles $((CYCLES + 2))
end=$(cpu_ticks)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
events=$(grep -c 'event {' "$work/agent.log" || true)
wall=$(grep 'cycle: ' "$work/agent.log" | tail -n "$CYCLES" | sed 's/.*, \([0-9]*\) ms$/\1/' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

echo "mikrotik-edge bench: $USERS hotspot users ($ACTIVE active), $SECRETS PPPoE secrets ($PPP_ACTIVE active)"
echo "  first cycle incl. start-up and $events events: $(awk -v t="$first" -v h="$ticks_per_sec" 'BEGIN {printf "%.0f", t * 1000 / h}') ms CPU"
echo "  steady cycle (mean of $CYCLES):            $(awk -v a="$start" -v b="$end" -v n="$CYCLES" -v h="$ticks_per_sec" 'BEGIN {printf "%.1f", (b - a) * 1000 / h / n}') ms CPU, median wall $wall ms"
echo "  peak memory (VmHWM):                      $((hwm / 1024)) MiB ($hwm KiB), RSS now $((rss / 1024)) MiB"
echo "  state file:                               $(( $(stat -c %s "$work/state.redb") / 1024 )) KiB"
echo "  release binary ($TARGET):  $(stat -c %s "$AGENT_BIN") bytes"
for f in dist/mikrotik-edge-*; do
  [ -f "$f" ] && echo "  $f: $(stat -c %s "$f") bytes"
done
exit 0
