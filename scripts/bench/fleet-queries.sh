#!/usr/bin/env bash
# The fleet page's per-site aggregates over all sites, each under EXPLAIN
# ANALYZE (plan + time), for docs/scale.md:
#   scripts/bench/fleet-queries.sh DATABASE_URL [PSQL]
# With BENCH_FLEET_SESSIONS=N (default 0), first adds N closed sessions
# spread over the last 60 days across the existing sites (the "10 million
# sessions stored" case), then ANALYZE.
set -euo pipefail
url=$1 psql=${2:-psql}
cd "$(dirname "$0")/../.."
q() { "$psql" -X -q -At -d "$url" -v ON_ERROR_STOP=1 -c "$1"; }
n=${BENCH_FLEET_SESSIONS:-0}
if [ "$n" -gt 0 ]; then
  t0=$(date +%s.%N)
  q "INSERT INTO sessions (site_id, service, username, active_id, started_at, ended_at, bytes_in, bytes_out, uptime_secs, end_reason, login_seq, logout_seq, last_seq)
     SELECT s.site_id, 'hotspot', 'F' || (g % 5000), '*' || g, t, t + interval '40 min', g, g, 2400, 'gone', g, g, g
       FROM (SELECT site_id, row_number() OVER (ORDER BY site_id) AS k, count(*) OVER () AS m FROM sites) AS s
       JOIN generate_series(1, $n) AS g ON g % s.m = s.k - 1
       CROSS JOIN LATERAL (SELECT now() - (g % 86400) * interval '60 s' AS t) AS x" >/dev/null
  q "ANALYZE" >/dev/null
  echo "added $n closed sessions in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}') s; sessions now $(q "SELECT count(*) FROM sessions")"
fi
explain() {
  echo "-- $1"
  q "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $2" | grep -vE '^\s*(Buffers|Planning:|  Buffers)' 
}
explain "per site: last upload" \
  "SELECT site_id, last_upload_at FROM sites ORDER BY site_id"
explain "per site: active sessions" \
  "SELECT site_id, count(*) FROM sessions WHERE ended_at IS NULL GROUP BY site_id"
explain "per site: activations today" \
  "SELECT site_id, count(*) FROM vouchers WHERE first_login_at >= date_trunc('day', now()) GROUP BY site_id"
explain "per site: alerts of the last 24 h" \
  "SELECT site_id, count(*) FROM alerts WHERE at >= now() - interval '24 hours' GROUP BY site_id"
# The page's own query, read from the source so the plan is the one served.
explain "per site: 24 h sparkline (page_queries::online_per_hour)" "$(sed -n '/"SELECT site_id, i, /,/GROUP BY site_id, i"/p' \
  src/bin/mikrotik-central/page_queries.rs | sed 's/^ *"//; s/",$//; s/"$//')"
