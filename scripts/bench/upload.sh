#!/bin/bash
# The upload part of scripts/bench.sh (bench_upload), on its own, with the
# binaries and schema.sql in BIN_DIR (mikrotik-edge, mikrotik-central,
# outbox-fill, routeros-sim), for before/after comparisons of two builds:
#   scripts/bench/upload.sh DIR LABEL   # prints "LABEL: S s, N events/s, ..."
# BENCH_UPLOAD_EVENTS (100000) and BENCH_BATCH_MAX (500) as in bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$1 LABEL=$2
. scripts/central/throwaway-pg.sh
work=$(mktemp -d)
n=${BENCH_UPLOAD_EVENTS:-100000} batch=${BENCH_BATCH_MAX:-500}
pg_throwaway_start
"$PG_BIN/psql" -q -d "$PG_URL" -v ON_ERROR_STOP=1 -f "$BIN/schema.sql" >/dev/null
gw_port=$(( PG_PORT + 1 ))
"$BIN/mikrotik-central" serve --listen "127.0.0.1:$gw_port" --database-url "$PG_URL" --log-level info 2>"$work/gateway.log" &
gateway=$!
token=$("$BIN/mikrotik-central" add-site bench --database-url "$PG_URL" 2>/dev/null)
"$BIN/outbox-fill" "$work/upload.redb" "$n" >/dev/null
"$BIN/routeros-sim" --listen 127.0.0.1:0 --user bench --password bench >"$work/sim2.out" &
sim2=$!
for _ in $(seq 100); do grep -q '^api: ' "$work/sim2.out" 2>/dev/null && break; sleep 0.1; done
port2=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim2.out")
for _ in $(seq 100); do grep -q 'listening on' "$work/gateway.log" 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s.%N)
MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port2 \
MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
MIKROTIK_EDGE_STATE_PATH="$work/upload.redb" MIKROTIK_EDGE_POLL_SECS=3600 \
MIKROTIK_EDGE_SITE_ID=bench MIKROTIK_EDGE_BATCH_MAX=$batch \
MIKROTIK_EDGE_CENTRAL_URL="http://127.0.0.1:$gw_port" MIKROTIK_EDGE_CENTRAL_TOKEN="$token" \
MIKROTIK_EDGE_LOG_LEVEL=warn MIKROTIK_EDGE_HTTP_LISTEN=off \
  "$BIN/mikrotik-edge" run 2>"$work/upload-agent.log" &
up_agent=$!
while :; do
  stored=$(pg_throwaway_psql "SELECT coalesce(max(stored_through), 0) FROM agent_streams WHERE site_id = 'bench'")
  [ "$stored" -ge "$n" ] && break
  kill -0 "$up_agent" 2>/dev/null || { echo "agent exited"; cat "$work/upload-agent.log"; break; }
  sleep 0.1
done
t1=$(date +%s.%N)
a_cpu=$(awk '{print $14 + $15}' /proc/$up_agent/stat); g_cpu=$(awk '{print $14 + $15}' /proc/$gateway/stat)
kill "$up_agent" "$gateway" "$sim2"; wait 2>/dev/null || true
echo "$LABEL: $(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.2f s, %.0f events/s", b - a, n / (b - a)}'), agent cpu ${a_cpu} ticks, gateway cpu ${g_cpu} ticks, load $(cut -d' ' -f1 /proc/loadavg)"
pg_throwaway_stop
rm -rf "$work"
