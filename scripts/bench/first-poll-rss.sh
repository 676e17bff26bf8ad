#!/bin/bash
# The agent's peak memory at a fresh install and at a restart, and when
# it is reached: a simulator with the given mix, `mikrotik-edge run` (poll
# 1 s) on a new state file until CYCLES polls, then again on that file.
# Prints each run's VmHWM and the time and cycle the RSS peaked in (RSS
# sampled every 10 ms). Not part of scripts/bench.sh (the scale part there
# reports the same peaks); for finding where a peak comes from.
#
#   scripts/bench/first-poll-rss.sh [AGENT_BIN] [USERS ACTIVE SECRETS PPP_ACTIVE [CYCLES]]
#   scripts/bench/first-poll-rss.sh target/x86_64-unknown-linux-musl/release/mikrotik-edge 10000 5000 2000 1000 4
set -euo pipefail
BIN=${1:-target/x86_64-unknown-linux-musl/release/mikrotik-edge}
USERS=${2:-10000} ACTIVE=${3:-5000} SECRETS=${4:-2000} PPP_ACTIVE=${5:-1000} CYCLES=${6:-4}
SIM=${BENCH_SIM_BIN:-target/release/routeros-sim}
[ -x "$BIN" ] && [ -x "$SIM" ] || { echo "first-poll-rss: build $BIN and $SIM first (scripts/bench.sh builds both)" >&2; exit 2; }
d=$(mktemp -d)
sim='' ag=''
trap '[ -n "$ag" ] && kill "$ag" 2>/dev/null; [ -n "$sim" ] && kill "$sim" 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
"$SIM" --listen 127.0.0.1:0 --user bench --password bench --hotspot-users "$USERS" --hotspot-active "$ACTIVE" \
  --pppoe-secrets "$SECRETS" --ppp-active "$PPP_ACTIVE" --per-sentence >"$d/sim.out" &
sim=$!
for _ in $(seq 300); do grep -q '^api: ' "$d/sim.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$d/sim.out")
[ -n "$port" ] || { echo "first-poll-rss: simulator did not start" >&2; exit 1; }
echo "first-poll-rss: $USERS hotspot users ($ACTIVE online), $SECRETS PPPoE secrets ($PPP_ACTIVE online), $CYCLES polls each"
for run in fresh restart; do
  MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port MIKROTIK_EDGE_ROUTER_USER=bench \
  MIKROTIK_EDGE_ROUTER_PASSWORD=bench MIKROTIK_EDGE_STATE_PATH="$d/state.redb" MIKROTIK_EDGE_POLL_SECS=1 \
  MIKROTIK_EDGE_HTTP_LISTEN=off MIKROTIK_EDGE_LOG_LEVEL=debug "$BIN" run 2>"$d/$run.log" &
  ag=$!
  : >"$d/$run.rss"
  for _ in $(seq 6000); do
    [ "$(grep -c 'cycle: [0-9]' "$d/$run.log" || true)" -ge "$CYCLES" ] && break
    kill -0 "$ag" 2>/dev/null || { echo "first-poll-rss: agent exited" >&2; tail "$d/$run.log" >&2; exit 1; }
    echo "$(date +%s.%N) $(grep -c 'cycle: [0-9]' "$d/$run.log" || true) $(awk '/VmRSS/ {print $2}' "/proc/$ag/status")" >>"$d/$run.rss"
    sleep 0.01
  done
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$ag/status")
  read -r _ cycle rss <<<"$(sort -k3 -n "$d/$run.rss" | tail -n 1)"
  echo "  $run: peak $hwm KiB (sampled peak $rss KiB while $cycle polls were done), RSS now $(awk '/VmRSS/ {print $2}' "/proc/$ag/status") KiB"
  [ -n "${KEEP_LOGS:-}" ] && cp "$d/$run.log" "$KEEP_LOGS.$run.log"
  kill "$ag"; wait "$ag" 2>/dev/null || true; ag=''
done
