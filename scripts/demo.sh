#!/usr/bin/env bash
# Runs the agent against the RouterOS simulator: no hardware needed.
#
#   scripts/demo.sh            # plain API, 50 vouchers, 20 PPPoE secrets, live activity,
#                              # 3 vouchers that expire 60, 90 and 120 s after start
#   DEMO_TLS=1 scripts/demo.sh # API-SSL with the simulator's self-signed cert pinned
#   DEMO_CENTRAL=0 scripts/demo.sh  # without the central side
#
# Environment: DEMO_PORT (API port, default 18728), DEMO_TLS_PORT (18729),
# DEMO_VOUCHERS (50), DEMO_SECRETS (20), DEMO_EXPIRING (3), DEMO_POLL_SECS (5),
# DEMO_USAGE_SECS (30), DEMO_LOG_LEVEL (info).
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
# A port already in use would make the simulator fail while `check` talks
# to whatever holds the port: stop at once instead.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" ${DEMO_TLS:+"$tls_port"}; do
  if port_busy "$p"; then
    echo "demo: port $p on 127.0.0.1 is already in use; set DEMO_PORT (and DEMO_TLS_PORT) to free ports" >&2
    exit 1
  fi
done

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
  local gw_port=${DEMO_CENTRAL_PORT:-18090}
  target/debug/mikrotik-central serve --listen "127.0.0.1:$gw_port" --database-url "$PG_URL" \
    2>"$work/central.log" &
  central_pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$work/central.log" 2>/dev/null && break; sleep 0.1; done
  export MIKROTIK_EDGE_SITE_ID=demo
  export MIKROTIK_EDGE_CENTRAL_URL="http://127.0.0.1:$gw_port"
  MIKROTIK_EDGE_CENTRAL_TOKEN=$(target/debug/mikrotik-central add-site demo --database-url "$PG_URL")
  export MIKROTIK_EDGE_CENTRAL_TOKEN
  echo "   PostgreSQL $PG_URL, gateway $MIKROTIK_EDGE_CENTRAL_URL (log: $work/central.log)" >&2
}

# Every 5 s, prints the rows of `sessions` and `vouchers` that are new or
# changed since the last look.
central_watch() {
  local prev="$work/central.prev" cur="$work/central.cur"
  : >"$prev"
  while sleep "${DEMO_WATCH_SECS:-5}"; do
    {
      pg_throwaway_psql "SELECT 'sessions: ' || service || ' ' || username || ' from ' || coalesce(to_char(started_at, 'HH24:MI:SS'), '?') || coalesce(' to ' || to_char(ended_at, 'HH24:MI:SS') || ' (' || end_reason || ')', ' (open)') || coalesce(', ' || bytes_in || ' bytes in', '') FROM sessions ORDER BY id"
      pg_throwaway_psql "SELECT 'vouchers: ' || code || ' ' || status || coalesce(', expires ' || to_char(expires_at, 'YYYY-MM-DD HH24:MI:SS'), '') FROM vouchers ORDER BY id"
    } 2>/dev/null | sort >"$cur" || continue
    comm -13 "$prev" "$cur" | sed 's/^/central  /'
    mv "$cur" "$prev"
    echo "central  == $(pg_throwaway_psql "SELECT count(*) FROM agent_events") events stored, $(pg_throwaway_psql "SELECT count(*) FROM sessions") sessions, $(pg_throwaway_psql "SELECT count(*) FROM vouchers") vouchers" 2>/dev/null
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
target/debug/mikrotik-edge run &
agent_pid=$!
wait "$agent_pid"
