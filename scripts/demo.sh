#!/usr/bin/env bash
# Runs the agent against the RouterOS simulator: no hardware needed.
#
#   scripts/demo.sh            # plain API, 50 vouchers, 20 PPPoE secrets, live activity,
#                              # 3 vouchers that expire 60, 90 and 120 s after start
#   DEMO_TLS=1 scripts/demo.sh # API-SSL with the simulator's self-signed cert pinned
#   DEMO_CENTRAL=0 scripts/demo.sh  # without the central side
#
# Environment: DEMO_PORT (the simulator's API port, default 18728),
# DEMO_TLS_PORT (18729), DEMO_HTTP_PORT (the agent's status page and API,
# 18080), DEMO_CENTRAL_PORT (mikrotik-central, 18090), DEMO_VOUCHERS (50),
# DEMO_SECRETS (20), DEMO_EXPIRING (3), DEMO_POLL_SECS (5), DEMO_USAGE_SECS
# (30), DEMO_LOG_LEVEL (info), DEMO_CENTRAL (1), DEMO_ALL_EVENTS (0: the
# sync's `user_adopted` events, one per existing voucher and secret, are
# counted in one line instead of shown; 1 shows every event).
# Every port is checked first: a busy one stops the demo at once.
#
# Unless DEMO_CENTRAL=0, it also starts a throwaway PostgreSQL with the
# schema and `mikrotik-central` in front of it, points the agent at it, and
# prints rows as they arrive in `sessions` and `vouchers` (the central_*
# functions below). Ctrl-C stops and removes everything. The agent's state
# file lives in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "demo: cargo not found (install rustup first)" >&2; exit 1; }
echo "== building agent and simulator" >&2
cargo build --quiet --features sim --bins

port=${DEMO_PORT:-18728}
tls_port=${DEMO_TLS_PORT:-18729}
http_port=${DEMO_HTTP_PORT:-18080}
central_port=${DEMO_CENTRAL_PORT:-18090}
# A port already in use would make the simulator (or the agent's HTTP
# endpoint, or the gateway) fail while the demo talks to whatever holds the
# port: stop at once instead.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
check_port() { # PORT VARIABLE
  if port_busy "$1"; then
    echo "demo: port $1 on 127.0.0.1 is already in use; set $2 to a free port" >&2
    exit 1
  fi
}
check_port "$port" DEMO_PORT
if [ -n "${DEMO_TLS:-}" ]; then check_port "$tls_port" DEMO_TLS_PORT; fi
check_port "$http_port" DEMO_HTTP_PORT
if [ "${DEMO_CENTRAL:-1}" != 0 ]; then check_port "$central_port" DEMO_CENTRAL_PORT; fi

work=$(mktemp -d)
sim_out="$work/sim.out"
cleanup() {
  central_cleanup
  [ -n "${sim_pid:-}" ] && kill "$sim_pid" 2>/dev/null || true
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# ---- central side: throwaway PostgreSQL + mikrotik-central (DEMO_CENTRAL=0 skips)
# shellcheck source=central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh

central_start() {
  echo "== central: throwaway PostgreSQL, schema, mikrotik-central" >&2
  PG_FSYNC=off pg_throwaway_start
  local gw_port=$central_port
  target/debug/mikrotik-central serve --listen "127.0.0.1:$gw_port" --database-url "$PG_URL" \
    2>"$work/central.log" &
  central_pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$work/central.log" 2>/dev/null && break; sleep 0.1; done
  export MIKROTIK_EDGE_SITE_ID=demo
  export MIKROTIK_EDGE_CENTRAL_URL="http://127.0.0.1:$gw_port"
  MIKROTIK_EDGE_CENTRAL_TOKEN=$(target/debug/mikrotik-central add-site demo --database-url "$PG_URL" 2>/dev/null)
  export MIKROTIK_EDGE_CENTRAL_TOKEN
  echo "   PostgreSQL $PG_URL, gateway $MIKROTIK_EDGE_CENTRAL_URL (log: $work/central.log)" >&2
  echo "   site demo, its new token (shown once, given to the agent): $MIKROTIK_EDGE_CENTRAL_TOKEN" >&2
  local op_token
  op_token=$(target/debug/mikrotik-central add-operator demo --database-url "$PG_URL" 2>/dev/null)
  echo "   fleet page: http://127.0.0.1:$gw_port/ (log in with operator demo's token: $op_token)" >&2
}

# Every 5 s, prints the rows of `sessions` and `vouchers` that are new or
# changed since the last look. Vouchers the sync adopted as they were
# (status `migrated`) are only counted, until they change (activation,
# expiry).
central_watch() {
  local prev="$work/central.prev" cur="$work/central.cur"
  : >"$prev"
  while sleep "${DEMO_WATCH_SECS:-5}"; do
    {
      pg_throwaway_psql "SELECT 'sessions: ' || service || ' ' || username || ' from ' || coalesce(to_char(started_at, 'HH24:MI:SS'), '?') || coalesce(' to ' || to_char(ended_at, 'HH24:MI:SS') || ' (' || end_reason || ')', ' (open)') || coalesce(', ' || bytes_in || ' bytes in', '') FROM sessions ORDER BY id"
      pg_throwaway_psql "SELECT 'vouchers: ' || code || ' ' || status || coalesce(', expires ' || to_char(expires_at, 'YYYY-MM-DD HH24:MI:SS'), '') FROM vouchers WHERE status <> 'migrated' ORDER BY id"
    } 2>/dev/null | sort >"$cur" || continue
    comm -13 "$prev" "$cur" | sed 's/^/central  /'
    mv "$cur" "$prev"
    echo "central  == $(pg_throwaway_psql "SELECT count(*) FROM agent_events") events stored, $(pg_throwaway_psql "SELECT count(*) FROM sessions") sessions, $(pg_throwaway_psql "SELECT count(*) FROM vouchers") vouchers ($(pg_throwaway_psql "SELECT count(*) FROM vouchers WHERE status = 'migrated'") adopted as they were, not listed until they change)" 2>/dev/null
  done
}

central_cleanup() {
  [ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null || true
  [ -n "${central_pid:-}" ] && kill "$central_pid" 2>/dev/null || true
  pg_throwaway_stop
}
# ----

sim_args=(--listen "127.0.0.1:$port" --user admin --password demo-secret
          --hotspot-users "${DEMO_VOUCHERS:-50}" --pppoe-secrets "${DEMO_SECRETS:-20}"
          --expiring "${DEMO_EXPIRING:-3}" --activity)
if [ -n "${DEMO_TLS:-}" ]; then
  sim_args+=(--tls-listen "127.0.0.1:$tls_port" --cert-out "$work/router.pem")
fi
target/debug/routeros-sim "${sim_args[@]}" >"$sim_out" &
sim_pid=$!
for _ in $(seq 100); do
  grep -q 127.0.0.1 "$sim_out" 2>/dev/null && break
  if ! kill -0 "$sim_pid" 2>/dev/null; then
    echo "demo: the simulator failed to start:" >&2
    cat "$sim_out" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q 127.0.0.1 "$sim_out" || { echo "demo: the simulator did not come up" >&2; exit 1; }
echo "== simulator:" >&2
sed 's/^/   /' "$sim_out" >&2

export MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1
export MIKROTIK_EDGE_ROUTER_PORT=$port
export MIKROTIK_EDGE_ROUTER_USER=admin
export MIKROTIK_EDGE_ROUTER_PASSWORD=demo-secret
export MIKROTIK_EDGE_STATE_PATH="$work/state.redb"
export MIKROTIK_EDGE_POLL_SECS=${DEMO_POLL_SECS:-5}
export MIKROTIK_EDGE_USAGE_SECS=${DEMO_USAGE_SECS:-30}
export MIKROTIK_EDGE_LOG_LEVEL=${DEMO_LOG_LEVEL:-info}
export MIKROTIK_EDGE_HTTP_LISTEN=127.0.0.1:$http_port
if [ -n "${DEMO_TLS:-}" ]; then
  export MIKROTIK_EDGE_ROUTER_TLS=true MIKROTIK_EDGE_ROUTER_PORT=$tls_port
  MIKROTIK_EDGE_ROUTER_CERT_SHA256=$(grep -i 'sha-\?256' "$sim_out" | grep -oE '([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}' | head -n1)
  export MIKROTIK_EDGE_ROUTER_CERT_SHA256
fi

if [ "${DEMO_CENTRAL:-1}" != 0 ]; then
  central_start
  central_watch &
  watch_pid=$!
fi

echo "== mikrotik-edge check" >&2
timeout 20 target/debug/mikrotik-edge check
echo "== mikrotik-edge run (Ctrl-C to stop)" >&2
echo "   status page: http://127.0.0.1:$http_port/   (metrics: http://127.0.0.1:$http_port/metrics)" >&2
echo "   watch the event lines: login, logout, usage, voucher_activated, voucher_expired" >&2

# The first sync adopts every voucher and secret the simulator was seeded
# with (one `user_adopted` event each): counted in one line, not shown,
# unless DEMO_ALL_EVENTS=1. Everything else passes through unchanged.
quiet_adoptions() {
  if [ "${DEMO_ALL_EVENTS:-0}" = 1 ]; then
    cat
    return
  fi
  # A shell loop, not awk: mawk reads a pipe in blocks and would hold the
  # log back.
  local line n=0
  while IFS= read -r line; do
    case $line in
      *'"type":"user_adopted"'*) n=$((n + 1)); continue ;;
    esac
    if [ "$n" -gt 0 ]; then
      echo "   ($n user_adopted events: the sync adopted the vouchers and secrets already on the router; stored and uploaded, not shown; DEMO_ALL_EVENTS=1 shows them)"
      n=0
    fi
    printf '%s\n' "$line"
  done
}
target/debug/mikrotik-edge run 2> >(quiet_adoptions >&2) &
agent_pid=$!
wait "$agent_pid"
