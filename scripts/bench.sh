#!/usr/bin/env bash
# Benchmarks (never timed tests): one poll cycle's CPU time and the agent's
# peak memory against the simulator with 10,000 hotspot users (5,000 active)
# and 2,000 PPPoE secrets (1,000 active), plus the release binary size.
#
#   scripts/bench.sh                 # defaults above, 20 measured cycles
#   BENCH_CYCLES=50 scripts/bench.sh
#   BENCH_UPLOAD=0 scripts/bench.sh  # skip the upload benchmark
#
# Upload benchmark (bench_upload below): a state file pre-filled with
# 100,000 events (BENCH_UPLOAD_EVENTS) by `outbox-fill`, drained by the
# release agent through a release `mikrotik-central` into a throwaway
# PostgreSQL (scripts/central/throwaway-pg.sh): events per second and the
# agent's peak RSS while draining.
#
# CPU time comes from /proc/<pid>/stat (utime+stime, clock ticks) sampled at
# the agent's own "cycle:" log lines; peak memory is VmHWM from
# /proc/<pid>/status. The simulator runs in its own process, so its work is
# not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh

USERS=${BENCH_USERS:-10000}
ACTIVE=${BENCH_ACTIVE:-5000}
SECRETS=${BENCH_SECRETS:-2000}
PPP_ACTIVE=${BENCH_PPP_ACTIVE:-1000}
CYCLES=${BENCH_CYCLES:-20}

cargo build --quiet --release --no-default-features --bin mikrotik-edge
cargo build --quiet --release --features sim --bin routeros-sim
if [ "${BENCH_UPLOAD:-1}" != 0 ]; then
  cargo build --quiet --release --features sim --bin outbox-fill
  cargo build --quiet --release --features central --bin mikrotik-central
fi

work=$(mktemp -d)
cleanup() {
  [ -n "${up_agent:-}" ] && kill "$up_agent" 2>/dev/null || true
  [ -n "${gateway:-}" ] && kill "$gateway" 2>/dev/null || true
  [ -n "${sim2:-}" ] && kill "$sim2" 2>/dev/null || true
  [ "${BENCH_UPLOAD:-1}" != 0 ] && pg_throwaway_stop
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${sim:-}" ] && kill "$sim" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
  --hotspot-users "$USERS" --hotspot-active "$ACTIVE" \
  --pppoe-secrets "$SECRETS" --ppp-active "$PPP_ACTIVE" >"$work/sim.out" &
sim=$!
for _ in $(seq 100); do grep -q '^api: ' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim.out")
[ -n "$port" ] || { echo "bench: simulator did not start" >&2; exit 1; }

MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port \
MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
MIKROTIK_EDGE_STATE_PATH="$work/state.redb" MIKROTIK_EDGE_POLL_SECS=1 \
MIKROTIK_EDGE_LOG_LEVEL=debug \
  target/release/mikrotik-edge run 2>"$work/agent.log" &
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
echo "  release binary (x86_64, $(rustc -vV | sed -n 's/^host: //p')):  $(stat -c %s target/release/mikrotik-edge) bytes"
for f in dist/mikrotik-edge-*; do
  [ -f "$f" ] && echo "  $f: $(stat -c %s "$f") bytes"
done
kill "$agent" 2>/dev/null || true
wait "$agent" 2>/dev/null || true
agent=

# Upload: outbox -> mikrotik-central -> ingest_batch -> PostgreSQL.
bench_upload() {
  local n=${BENCH_UPLOAD_EVENTS:-100000} batch=${BENCH_BATCH_MAX:-500}
  pg_throwaway_start
  local gw_port=$(( PG_PORT + 1 ))
  target/release/mikrotik-central serve --listen "127.0.0.1:$gw_port" --database-url "$PG_URL"     --log-level info 2>"$work/gateway.log" &
  gateway=$!
  local token
  token=$(target/release/mikrotik-central add-site bench --database-url "$PG_URL")
  target/release/outbox-fill "$work/upload.redb" "$n" >/dev/null
  # An empty router, so the figures are the upload's alone.
  target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench >"$work/sim2.out" &
  sim2=$!
  for _ in $(seq 100); do grep -q '^api: ' "$work/sim2.out" 2>/dev/null && break; sleep 0.1; done
  local port2
  port2=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim2.out")
  for _ in $(seq 100); do grep -q 'listening on' "$work/gateway.log" 2>/dev/null && break; sleep 0.1; done

  local t0 t1
  t0=$(date +%s.%N)
  MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port2 \
  MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
  MIKROTIK_EDGE_STATE_PATH="$work/upload.redb" MIKROTIK_EDGE_POLL_SECS=3600 \
  MIKROTIK_EDGE_SITE_ID=bench MIKROTIK_EDGE_BATCH_MAX=$batch \
  MIKROTIK_EDGE_CENTRAL_URL="http://127.0.0.1:$gw_port" MIKROTIK_EDGE_CENTRAL_TOKEN="$token" \
  MIKROTIK_EDGE_LOG_LEVEL=warn \
    target/release/mikrotik-edge run 2>"$work/upload-agent.log" &
  up_agent=$!
  local peak=0 rss stored=0
  while :; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$up_agent/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    stored=$(pg_throwaway_psql "SELECT coalesce(max(stored_through), 0) FROM agent_streams WHERE site_id = 'bench'")
    [ "$stored" -ge "$n" ] && break
    kill -0 "$up_agent" 2>/dev/null || { echo "bench: agent exited" >&2; cat "$work/upload-agent.log" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$up_agent/status")
  kill "$up_agent"; wait "$up_agent" 2>/dev/null || true; up_agent=
  local rows
  rows=$(pg_throwaway_psql "SELECT count(*) FROM agent_events WHERE site_id = 'bench'")
  echo "mikrotik-edge upload bench: $n queued events, batches of $batch, agent -> mikrotik-central -> PostgreSQL $(basename "$(dirname "$PG_BIN")") (loopback)"
  echo "  drained in:                               $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s incl. start-up, $rows rows in agent_events"
  echo "  throughput:                               $(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.0f", n / (b - a)}') events/s"
  echo "  agent peak RSS while draining:            $((hwm / 1024)) MiB ($hwm KiB VmHWM; sampled max RSS $peak KiB)"
  kill "$gateway" "$sim2" 2>/dev/null || true; wait "$gateway" "$sim2" 2>/dev/null || true; gateway= sim2=
  pg_throwaway_stop
}
[ "${BENCH_UPLOAD:-1}" != 0 ] && bench_upload
exit 0
