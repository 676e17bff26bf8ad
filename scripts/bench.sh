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
#
# A second part measures instant detection: with poll_secs=300 (so only
# `listen` can explain an event), the time from a login or logout on the
# simulator (`routeros-sim --control` prints when it took effect) to the
# agent's event log line, and the agent's CPU over BENCH_IDLE_SECS idle
# seconds with its listens open.
#
#   BENCH_LISTEN_USERS=1000 BENCH_LISTEN_ACTIVE=500 BENCH_LOGINS=10 BENCH_IDLE_SECS=20
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

L_USERS=${BENCH_LISTEN_USERS:-1000}
L_ACTIVE=${BENCH_LISTEN_ACTIVE:-500}
LOGINS=${BENCH_LOGINS:-10}
IDLE_SECS=${BENCH_IDLE_SECS:-20}

work=$(mktemp -d)
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${sim:-}" ] && kill "$sim" 2>/dev/null || true
  [ -n "${agent2:-}" ] && kill "$agent2" 2>/dev/null || true
  [ -n "${sim2:-}" ] && kill "$sim2" 2>/dev/null || true
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
kill "$agent" "$sim" 2>/dev/null || true
wait "$agent" "$sim" 2>/dev/null || true
agent='' sim=''

# ---- instant detection: login -> event latency, idle CPU with listens ----

mkfifo "$work/ctl"
target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
  --hotspot-users "$L_USERS" --hotspot-active "$L_ACTIVE" --control \
  <"$work/ctl" >"$work/sim2.out" &
sim2=$!
exec 3>"$work/ctl"
for _ in $(seq 100); do grep -q '^api: ' "$work/sim2.out" 2>/dev/null && break; sleep 0.1; done
port2=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim2.out")
[ -n "$port2" ] || { echo "bench: simulator did not start" >&2; exit 1; }

# The users exist before the agent's first poll: listen knows the users
# the last poll listed (one created since is found by the next poll).
for i in $(seq "$LOGINS"); do
  echo "add bench-$i voucher-1h" >&3
  grep -q "^add bench-$i " "$work/sim2.out" 2>/dev/null || sleep 0.05
done

# Every agent log line stamped on arrival (microseconds, no fork per line).
stamp() { while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done; }
MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port2 \
MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
MIKROTIK_EDGE_STATE_PATH="$work/state2.redb" MIKROTIK_EDGE_POLL_SECS=300 \
MIKROTIK_EDGE_LOG_LEVEL=debug \
  "$AGENT_BIN" run 2> >(stamp >"$work/agent2.log") &
agent2=$!
for _ in $(seq 600); do grep -q 'cycle: ' "$work/agent2.log" 2>/dev/null && break; sleep 0.05; done
grep -q 'listening on the active lists' "$work/agent2.log" || { echo "bench: no listen" >&2; tail "$work/agent2.log" >&2; exit 1; }

# Waits for the sim's reply to the last command; prints its time (ms).
sim_reply() {
  local want=$1
  for _ in $(seq 200); do
    local t
    t=$(grep "^$want " "$work/sim2.out" | tail -n 1 | awk '{print $3}')
    [ -n "$t" ] && { echo "$t"; return 0; }
    sleep 0.01
  done
  echo "bench: simulator did not answer $want" >&2; exit 1
}
# Waits for the agent's event line; prints when it arrived (ms).
event_at() {
  local type=$1 user=$2
  for _ in $(seq 1000); do
    local us
    us=$(grep "\"type\":\"$type\"" "$work/agent2.log" | grep "\"user\":\"$user\"" | head -n 1 | awk '{print $1}')
    [ -n "$us" ] && { echo $((us / 1000)); return 0; }
    sleep 0.005
  done
  echo "bench: no $type event for $user" >&2; tail "$work/agent2.log" >&2; exit 1
}
latencies=()
for i in $(seq "$LOGINS"); do
  u=bench-$i
  sleep 0.2
  echo "login $u 10.5.60.$i 02:00:00:00:60:$(printf %02X "$i")" >&3
  t0=$(sim_reply "login $u")
  latencies+=($(( $(event_at login "$u") - t0 )))
  echo "logout $u" >&3
  t0=$(sim_reply "logout $u")
  latencies+=($(( $(event_at logout "$u") - t0 )))
done
sorted=$(printf '%s\n' "${latencies[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
worst=$(echo "$sorted" | tail -n 1)

cpu_ticks2() { awk '{print $14 + $15}' "/proc/$agent2/stat"; }
sleep 1
idle_start=$(cpu_ticks2)
sleep "$IDLE_SECS"
idle_end=$(cpu_ticks2)
idle_ms=$(awk -v a="$idle_start" -v b="$idle_end" -v h="$ticks_per_sec" 'BEGIN {printf "%.0f", (b - a) * 1000 / h}')

echo "mikrotik-edge instant detection: $L_USERS hotspot users ($L_ACTIVE active), poll_secs=300, listens open"
echo "  login/logout -> event ($((LOGINS * 2)) changes):   median $median ms, worst $worst ms"
echo "  idle CPU over ${IDLE_SECS} s:                   $idle_ms ms ($(awk -v m="$idle_ms" -v s="$IDLE_SECS" 'BEGIN {printf "%.3f", m / s / 10}') % of one core)"
exec 3>&-
exit 0
