#!/usr/bin/env bash
# The central side at 1,000 sites (issue 23; docs/scale.md): `central-load`
# speaks the agent's upload contract as BENCH_SITES sites at once, each with
# its own token and stream, through BENCH_GATEWAYS `mikrotik-central`
# processes in front of one throwaway PostgreSQL. Prints, per phase, events/s
# stored, batch latency p50/p99, 503s and the exactly-once check; then the
# bytes stored per million events, the top statements (pg_stat_statements)
# and the plans of the fleet page's queries.
#
#   scripts/bench/central-scale.sh            # or: scripts/bench.sh --scale
#   BENCH_SITES=1000 BENCH_GATEWAYS=2 BENCH_POOL=8 BENCH_SECS=60 \
#   BENCH_STEADY_BATCH=100 BENCH_BURST_BATCH=200 scripts/bench/central-scale.sh
#   BIN_DIR=target/debug scripts/bench/central-scale.sh   # binaries already built
#
# Phases: "steady" (each site one batch of BENCH_STEADY_BATCH events every
# 5 s: 1,000 sites x 100 events / 5 s = 20,000 events/s offered) and
# "burst" (each site sends its next batch as soon as the last is acked).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh

SITES=${BENCH_SITES:-1000}
GATEWAYS=${BENCH_GATEWAYS:-2}
POOL=${BENCH_POOL:-8}
SECS=${BENCH_SECS:-60}
STEADY_BATCH=${BENCH_STEADY_BATCH:-100}
BURST_BATCH=${BENCH_BURST_BATCH:-200}
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --quiet --release --features central --bin mikrotik-central --bin central-load
  BIN_DIR=target/release
fi
work=$(mktemp -d)
gws=()
cleanup() {
  for g in "${gws[@]}"; do kill "$g" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_throwaway_stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

pg_throwaway_start
# A small dedicated server's settings (24 GB box here; PostgreSQL's
# defaults are for 128 MB): more shared buffers and WAL, statistics on.
for setting in "shared_buffers = '1GB'" "max_wal_size = '4GB'" \
    "shared_preload_libraries = 'pg_stat_statements'"; do
  pg_throwaway_psql "ALTER SYSTEM SET $setting" >/dev/null
done
pg_throwaway_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 restart -l "$PG_DIR/postgres.log" >/dev/null
"$PG_BIN/psql" -X -q -d "$PG_URL" -v ON_ERROR_STOP=1 -f scripts/central/schema.sql >/dev/null
pg_throwaway_psql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
# Statements inside ingest_batch too, not only the call.
pg_throwaway_psql "ALTER SYSTEM SET pg_stat_statements.track = 'all'" >/dev/null
pg_throwaway_psql "SELECT pg_reload_conf()" >/dev/null

addrs=""
for i in $(seq "$GATEWAYS"); do
  port=$(( PG_PORT + i ))
  "$BIN_DIR/mikrotik-central" serve --listen "127.0.0.1:$port" --database-url "$PG_URL" \
    --pool-size "$POOL" --log-level warn 2>"$work/gateway$i.log" &
  gws+=($!)
  addrs="${addrs:+$addrs,}127.0.0.1:$port"
done
for i in $(seq "$GATEWAYS"); do
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$(( PG_PORT + i ))") 2>/dev/null && break
    sleep 0.1
  done
done

echo "central at scale: $SITES sites, $GATEWAYS gateways (pool $POOL each), PostgreSQL $(basename "$(dirname "$PG_BIN")"), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
phase() {
  local name=$1; shift
  pg_throwaway_psql "SELECT pg_stat_statements_reset()" >/dev/null
  local c0
  c0=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5}' /proc/stat)
  echo "[$name] $BIN_DIR/central-load --sites $SITES --gateway $addrs $*"
  "$BIN_DIR/central-load" --database-url "$PG_URL" --gateway "$addrs" --sites "$SITES" --secs "$SECS" "$@" \
    | sed 's/^/  /' || echo "  central-load: FAILED (exit $?)"
  local c1
  c1=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5}' /proc/stat)
  echo "  machine CPU busy during the phase: $(echo "$c0 $c1" | awk '{b = $3 - $1; i = $4 - $2; printf "%.0f%%", 100 * b / (b + i)}'), load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  top statements by total time:"
  pg_throwaway_psql "SELECT round(total_exec_time)::text || ' ms total, ' || calls || ' calls, '
      || round((total_exec_time / greatest(calls, 1))::numeric, 2) || ' ms/call: '
      || left(regexp_replace(query, '\s+', ' ', 'g'), 90)
    FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
    ORDER BY total_exec_time DESC LIMIT 8" | sed 's/^/    /'
}
phase steady --batch "$STEADY_BATCH" --interval-ms 5000
phase burst --batch "$BURST_BATCH" --interval-ms 0

pg_throwaway_psql "VACUUM ANALYZE" >/dev/null
echo "storage after both phases:"
pg_throwaway_psql "WITH t AS (
    SELECT c.relname AS parent, sum(pg_total_relation_size(c2.oid)) AS bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      JOIN LATERAL (SELECT c.oid UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = c.oid) AS p(oid) ON true
      JOIN pg_class c2 ON c2.oid = p.oid
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
     GROUP BY c.relname)
  SELECT format('  %-24s %8s MB', parent, round(bytes / 1e6, 1)) FROM t WHERE bytes > 1e6 ORDER BY bytes DESC"
events=$(pg_throwaway_psql "SELECT count(*) FROM agent_events")
total=$(pg_throwaway_psql "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind IN ('r', 't', 'i', 'm') AND relnamespace = 'public'::regnamespace")
echo "  $events events stored; all tables and indexes: $(awk -v b="$total" -v n="$events" 'BEGIN {printf "%.0f MB in total, %.0f MB per million events", b / 1e6, b / 1e6 / (n / 1e6)}')"

echo "fleet page queries on this data (EXPLAIN ANALYZE, docs/scale.md):"
scripts/bench/fleet-queries.sh "$PG_URL" "$PG_BIN/psql" | sed 's/^/  /'
