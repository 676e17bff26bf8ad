#!/usr/bin/env bash
# ingest_batch alone, without HTTP: pgbench calls it from BENCH_CLIENTS
# connections with batches of 100 agent-shaped events (a session's login,
# 3 usage updates, logout and the voucher's activation, per user) for
# BENCH_SITES sites, BENCH_BATCHES batches in all, into a throwaway
# PostgreSQL. Prints events/s stored, the statements' times
# (pg_stat_statements) and the bytes stored per million events. This is the
# database's share of scripts/bench/central-scale.sh (docs/scale.md).
#   scripts/bench/ingest-direct.sh      # BENCH_SITES=1000 BENCH_BATCHES=3000 BENCH_CLIENTS=2
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh
SITES=${BENCH_SITES:-1000} BATCHES=${BENCH_BATCHES:-3000} CLIENTS=${BENCH_CLIENTS:-2}
work=$(mktemp -d)
trap 'pg_throwaway_stop 2>/dev/null || true; rm -rf "$work"' EXIT
pg_throwaway_start
for setting in "shared_buffers = '1GB'" "max_wal_size = '4GB'" "shared_preload_libraries = 'pg_stat_statements'"; do
  pg_throwaway_psql "ALTER SYSTEM SET $setting" >/dev/null
done
pg_throwaway_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 restart -l "$PG_DIR/postgres.log" >/dev/null
"$PG_BIN/psql" -X -q -d "$PG_URL" -v ON_ERROR_STOP=1 -f scripts/central/schema.sql >/dev/null
pg_throwaway_psql "CREATE EXTENSION pg_stat_statements" >/dev/null
pg_throwaway_psql "ALTER SYSTEM SET pg_stat_statements.track = 'all'" >/dev/null
pg_throwaway_psql "SELECT pg_reload_conf()" >/dev/null
# One stream per site; each batch continues it (seq/prev chain), so the
# per-site counter lives in a table the script reads and bumps.
pg_throwaway_psql "CREATE TABLE bench_next (site int PRIMARY KEY, seq bigint NOT NULL DEFAULT 0);
  INSERT INTO bench_next SELECT g FROM generate_series(1, $SITES) g" >/dev/null
cat >"$work/ingest.sql" <<'SQL'
\set site random(1, :sites)
UPDATE bench_next SET seq = seq + 100 WHERE site = :site RETURNING seq - 100 AS base \gset
SELECT ingest_batch('site-' || :site, json_build_object('stream', md5('site-' || :site),
  'events', (SELECT json_agg(json_strip_nulls(json_build_object(
      'stream', md5('site-' || :site), 'seq', :base + g, 'prev', :base + g - 1,
      'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'site', 'site-' || :site,
      'type', t, 'service', 'hotspot', 'user', u, 'active_id', '*' || ((:base + g) / 6),
      'session_id', '', 'address', CASE WHEN t = 'login' THEN '10.5.' || (g % 250) || '.7' END,
      'mac', CASE WHEN t IN ('login', 'voucher_activated') THEN 'AA:BB:CC:00:10:01' END,
      'caller_id', CASE WHEN t = 'login' THEN '' END, 'login_by', CASE WHEN t = 'login' THEN 'http-chap' END,
      'profile', CASE WHEN t = 'login' THEN 'voucher-1d' END,
      'seen_at_start', CASE WHEN t = 'login' THEN false END,
      'bytes_in', CASE WHEN t IN ('usage', 'logout') THEN (:base + g) * 12345 END,
      'bytes_out', CASE WHEN t IN ('usage', 'logout') THEN (:base + g) * 54321 END,
      'uptime_secs', CASE WHEN t IN ('usage', 'logout') THEN g * 60 END,
      'unseen', CASE WHEN t = 'usage' THEN false END, 'reason', CASE WHEN t = 'logout' THEN 'gone' END,
      'batch_id', CASE WHEN t = 'voucher_activated' THEN 'LOAD-1' END,
      'valid_hours', CASE WHEN t = 'voucher_activated' THEN 24 END,
      'first_login_at', CASE WHEN t = 'voucher_activated' THEN to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END,
      'expires_at', CASE WHEN t = 'voucher_activated' THEN to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END,
      'comment', CASE WHEN t = 'voucher_activated' THEN 'VOUCHER_SYSTEM|LOAD-1|5000|4000|24|v1|2026-01-01|load||' END))
      ORDER BY g)
    FROM generate_series(1, 100) AS g,
         LATERAL (SELECT (ARRAY['voucher_activated', 'login', 'usage', 'usage', 'usage', 'logout'])[((:base + g) % 6) + 1] AS t,
                         'V' || lpad((((:base + g) / 6) % 300)::text, 5, '0') AS u) AS x)));
SQL
echo "ingest_batch direct: $SITES sites, $BATCHES batches of 100 events, $CLIENTS connections, $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# PostgreSQL's CPU: the postmaster's and its exited children's (the
# pgbench connections' backends), in clock ticks.
pm=$(head -1 "$PG_DIR/data/postmaster.pid")
pg_cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"; }
c0=$(pg_cpu)
t0=$(date +%s.%N)
"$PG_BIN/pgbench" -n -f "$work/ingest.sql" -D sites="$SITES" -c "$CLIENTS" -j "$CLIENTS" -t $(( BATCHES / CLIENTS )) \
  -h 127.0.0.1 -p "$PG_PORT" -U postgres edge 2>&1 | grep -E "latency average|tps|failed" | sed 's/^/  pgbench: /'
t1=$(date +%s.%N)
sleep 1  # the backends exit and are reaped
c1=$(pg_cpu)
events=$(pg_throwaway_psql "SELECT count(*) FROM agent_events")
tck=$(getconf CLK_TCK)
echo "  PostgreSQL CPU: $(awk -v a="$c0" -v b="$c1" -v t="$tck" -v n="$events" 'BEGIN {printf "%.1f s for %d events = %.0f events per CPU-second (what one free core would store per second)", (b - a) / t, n, n / ((b - a) / t)}')"
echo "  $events events stored in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s: $(awk -v a="$t0" -v b="$t1" -v n="$events" 'BEGIN {printf "%.0f", n / (b - a)}') events/s; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  exactly once: $(pg_throwaway_psql "SELECT CASE WHEN bool_and(s.stored_through = n.seq AND c.n = n.seq AND c.d = n.seq) THEN 'OK' ELSE 'FAILED' END
  FROM bench_next n JOIN agent_streams s ON s.site_id = 'site-' || n.site
  JOIN (SELECT site_id, count(*) AS n, count(DISTINCT seq) AS d FROM agent_events GROUP BY site_id) c ON c.site_id = s.site_id")"
echo "  top statements (total ms, calls, ms per call):"
pg_throwaway_psql "SELECT round(total_exec_time) || ' | ' || calls || ' | ' || round((total_exec_time / calls)::numeric, 3) || ' | '
    || left(regexp_replace(query, '\s+', ' ', 'g'), 80)
  FROM pg_stat_statements WHERE query !~ 'pg_stat_statements|bench_next' ORDER BY total_exec_time DESC LIMIT 14" | sed 's/^/    /'
pg_throwaway_psql "VACUUM ANALYZE" >/dev/null
echo "  storage (table + indexes + TOAST, all partitions):"
pg_throwaway_psql "SELECT format('    %-22s %7s MB  %5s bytes/event', t, round(b / 1e6, 1), round(b / (SELECT count(*) FROM agent_events)))
  FROM (SELECT coalesce(p.relname, c.relname) AS t, sum(pg_total_relation_size(c.oid)) AS b
          FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
         WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND c.relname <> 'bench_next'
         GROUP BY 1) AS x
 WHERE b > 200000 ORDER BY b DESC"
total=$(pg_throwaway_psql "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname <> 'bench_next'")
echo "  in all: $(awk -v b="$total" -v n="$events" 'BEGIN {printf "%.0f MB per million events", b / n}')"
