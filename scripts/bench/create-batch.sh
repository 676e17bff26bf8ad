#!/usr/bin/env bash
# create-batch benchmark: 5,000 vouchers (BENCH_BATCH_USERS) created against
# the simulator, each command answered BENCH_BATCH_DELAY_MS (default 2) ms
# late to stand for the router's work, by
#   - `mikrotik-edge create-batch` (one connection, at most
#     sync_max_in_flight = 16 commands in flight, no sleeps), and
#   - the original design's approach on node-routeros (50 adds in parallel,
#     then a fixed 1000 ms sleep; scripts/bench/node-batch.js).
# Wall time, and the most commands the simulator saw waiting at once.
# Run alone, or from scripts/bench.sh (BENCH_CREATE_BATCH=0 skips it there).
#
#   scripts/bench/create-batch.sh
#   AGENT_BIN=target/release/mikrotik-edge scripts/bench/create-batch.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${BENCH_BATCH_USERS:-5000}
DELAY=${BENCH_BATCH_DELAY_MS:-2}
if [ -z "${AGENT_BIN:-}" ]; then
  cargo build --quiet --release --no-default-features --bin mikrotik-edge
  AGENT_BIN=target/release/mikrotik-edge
fi
[ -x target/release/routeros-sim ] || cargo build --quiet --release --features sim --bin routeros-sim

bwork=$(mktemp -d)
bsim=''
bcleanup() {
  [ -n "$bsim" ] && kill "$bsim" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$bwork"
}
trap bcleanup EXIT

start_sim() {
  [ -n "$bsim" ] && { kill "$bsim" 2>/dev/null || true; wait "$bsim" 2>/dev/null || true; }
  target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
    --reply-delay-ms "$DELAY" >"$bwork/sim.out" &
  bsim=$!
  for _ in $(seq 100); do grep -q '^api: ' "$bwork/sim.out" 2>/dev/null && break; sleep 0.1; done
  bport=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$bwork/sim.out")
  [ -n "$bport" ] || { echo "bench: simulator did not start" >&2; exit 1; }
}
sim_max() { sleep 1.2; sed -n 's/^max-in-flight: //p' "$bwork/sim.out" | tail -n 1; }

{
  echo "service,name,password,profile,valid_hours,batch_id"
  for i in $(seq -w 1 "$N"); do echo "hotspot,BENCH$i,pw$i,voucher-1h,1,B-BENCH"; done
} >"$bwork/batch.csv"

start_sim
t0=$(date +%s.%N)
summary=$(MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$bport \
  MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
  "$AGENT_BIN" create-batch "$bwork/batch.csv" 2>/dev/null)
t1=$(date +%s.%N)
edge_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
edge_max=$(sim_max)

echo "mikrotik-edge create-batch bench: $N vouchers, simulator answering each command ${DELAY} ms late"
echo "  mikrotik-edge create-batch:      ${edge_s} s wall incl. start-up and the existing-names read, max ${edge_max:-?} commands in flight"
echo "    $summary"
if [ -z "${BENCH_SKIP_PEERS:-}" ] && command -v node >/dev/null && command -v npm >/dev/null \
   && (cd "$bwork" && npm install --silent --no-audit --no-fund --prefix "$bwork/node" node-routeros@1.6.9 >/dev/null 2>&1); then
  start_sim
  node_json=$(NODE_PATH="$bwork/node/node_modules" node scripts/bench/node-batch.js 127.0.0.1 "$bport" bench bench "$bwork/batch.csv")
  node_max=$(sim_max)
  node_s=$(sed -n 's/.*"wall_ms":\([0-9]*\).*/\1/p' <<<"$node_json" | awk '{printf "%.2f", $1 / 1000}')
  echo "  design (node-routeros, 50 per batch + 1 s sleep): ${node_s} s wall, max ${node_max:-?} commands in flight"
  echo "    $node_json"
  awk -v a="$edge_s" -v b="$node_s" 'BEGIN { if (a > 0) printf "  create-batch is %.0fx faster\n", b / a }'
else
  echo "  design (node-routeros): skipped (no node/npm, or BENCH_SKIP_PEERS)"
fi
