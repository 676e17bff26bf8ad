#!/usr/bin/env bash
# The fleet page at scale (issue 23; docs/scale.md): a throwaway PostgreSQL
# with BENCH_SITES sites (default 1,000) and BENCH_SESSIONS closed sessions
# (default 10,000,000, spread in time order over the last BENCH_DAYS days,
# default 45; 40 per site still open), vouchers activated today, a connection log and alerts;
# then `mikrotik-central serve`, an operator logged in to the pages, and
# BENCH_GETS (default 10) timed GETs of the fleet page (`/`) with curl.
# Prints the times (median, worst) and the plans of the page's two queries.
#
#   scripts/bench/fleet-page.sh
#   BIN_DIR=target/release BENCH_SITES=1000 BENCH_SESSIONS=10000000 scripts/bench/fleet-page.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh

SITES=${BENCH_SITES:-1000}
SESSIONS=${BENCH_SESSIONS:-10000000}
GETS=${BENCH_GETS:-10}
DAYS=${BENCH_DAYS:-45}
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --quiet --release --features central --bin mikrotik-central
  BIN_DIR=target/release
fi
gw=""
work=$(mktemp -d)
cleanup() {
  [ -n "$gw" ] && kill "$gw" 2>/dev/null || true
  wait 2>/dev/null || true
  pg_throwaway_stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

PG_FSYNC=off pg_throwaway_start
pg_throwaway_psql "ALTER SYSTEM SET shared_buffers = '1GB'" >/dev/null
pg_throwaway_psql "ALTER SYSTEM SET max_wal_size = '4GB'" >/dev/null
pg_throwaway_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 restart -l "$PG_DIR/postgres.log" >/dev/null
"$PG_BIN/psql" -X -q -d "$PG_URL" -v ON_ERROR_STOP=1 -f scripts/central/schema.sql >/dev/null
pg_throwaway_psql "SELECT count(*) FROM edge_maintain_partitions()" >/dev/null

t0=$(date +%s.%N)
pg_throwaway_psql "INSERT INTO sites (site_id, token_hash, last_upload_at)
  SELECT 'site-' || lpad(k::text, 4, '0'), md5(k::text) || md5('t' || k), now() - (k % 7) * interval '5 min'
    FROM generate_series(0, $SITES - 1) AS k" >/dev/null
# Closed sessions in the order they would have arrived; 1M per statement.
chunk=1000000 done_n=0
while [ "$done_n" -lt "$SESSIONS" ]; do
  n=$(( SESSIONS - done_n < chunk ? SESSIONS - done_n : chunk ))
  pg_throwaway_psql "INSERT INTO sessions (site_id, service, username, active_id, started_at, ended_at,
                       bytes_in, bytes_out, uptime_secs, end_reason, login_seq, logout_seq, last_seq)
    SELECT 'site-' || lpad((g % $SITES)::text, 4, '0'), 'hotspot', 'u' || (g % 5000), '*' || g, t,
           t + (10 + g % 110) * interval '1 min', g, g, 2400, 'gone', g, g, g
      FROM generate_series($done_n + 1, $done_n + $n) AS g
     CROSS JOIN LATERAL (SELECT now() - interval '$DAYS days' - interval '2 hours'
                                + (g::float8 / $SESSIONS) * interval '$DAYS days' AS t) AS x" >/dev/null
  done_n=$(( done_n + n ))
done
pg_throwaway_psql "INSERT INTO sessions (site_id, service, username, active_id, started_at, login_seq, last_seq)
  SELECT s.site_id, 'hotspot', 'open' || i, '*o' || i, now() - (i * 7) * interval '1 min', i, i
    FROM sites s CROSS JOIN generate_series(1, 40) AS i" >/dev/null
pg_throwaway_psql "INSERT INTO vouchers (site_id, code, status, first_login_at, sell)
  SELECT s.site_id, 'V' || i, 'active', now() - (i % 600) * interval '1 min', 5000
    FROM sites s CROSS JOIN generate_series(1, 100) AS i" >/dev/null
pg_throwaway_psql "INSERT INTO mikrotik_connection_log (site_id, event, created_at)
  SELECT s.site_id, CASE WHEN i % 2 = 0 THEN 'connect' ELSE 'disconnect' END, now() - i * interval '1 hour'
    FROM sites s CROSS JOIN generate_series(1, 20) AS i" >/dev/null
pg_throwaway_psql "INSERT INTO alerts (site_id, name, message, at)
  SELECT s.site_id, 'router', 'test', now() - i * interval '3 hours'
    FROM sites s CROSS JOIN generate_series(1, 3) AS i" >/dev/null
pg_throwaway_psql "VACUUM ANALYZE" >/dev/null
echo "loaded $SITES sites, $(pg_throwaway_psql "SELECT count(*) FROM sessions") sessions" \
     "($(pg_throwaway_psql "SELECT pg_size_pretty(pg_total_relation_size('sessions'::regclass) + coalesce((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'sessions'::regclass), 0))") with indexes) in $(secs "$t0") s"

port=$(( PG_PORT + 1 ))
"$BIN_DIR/mikrotik-central" serve --listen "127.0.0.1:$port" --database-url "$PG_URL" \
  --log-level warn >"$work/gw.log" 2>&1 &
gw=$!
token=$("$BIN_DIR/mikrotik-central" add-operator bench --database-url "$PG_URL" 2>/dev/null)
base="http://127.0.0.1:$port"
deadline=$(( $(date +%s) + 30 ))
until curl -s -o /dev/null "$base/login"; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/gw.log" >&2; exit 1; }
  sleep 0.2
done
curl -s -o /dev/null -c "$work/jar" -H "Origin: $base" --data-urlencode "token=$token" "$base/login"
times=()
for _ in $(seq "$GETS"); do
  read -r code t < <(curl -s -o "$work/page.html" -b "$work/jar" -w '%{http_code} %{time_total}\n' "$base/")
  [ "$code" = 200 ] || { echo "fleet page: HTTP $code" >&2; exit 1; }
  times+=("$t")
done
rows=$(grep -o '<tr' "$work/page.html" | wc -l)
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$GETS" -v rows="$rows" '
  { t[NR] = $1 } END { printf "fleet page (%d table rows): median %.3f s, worst %.3f s over %d GETs\n", rows, t[int((n + 1) / 2)], t[n], n }'

explain() {
  echo "-- $1"
  pg_throwaway_psql "EXPLAIN (ANALYZE, COSTS OFF) $2"
}
explain "sparkline (page_queries::online_per_hour)" "$(sed -n '/"SELECT site_id, i, /,/GROUP BY site_id, i"/p' \
  src/bin/mikrotik-central/page_queries.rs | sed 's/^ *"//; s/",$//; s/"$//')"
explain "fleet summary (fleet.rs QUERY)" "$(sed -n '/^const QUERY/,/ORDER BY s.site_id";/p' \
  src/bin/mikrotik-central/fleet.rs | sed '1s/.*"//; s/";$//' \
  | sed 's/\$1::text/NULL::text/; s/\$1/NULL/; s/\$2/120/; s/\$3/900/')"
