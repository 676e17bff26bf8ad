#!/usr/bin/env bash
# Runs the agent against the RouterOS simulator: no hardware needed.
#
#   scripts/demo.sh            # plain API, 50 vouchers, 20 PPPoE secrets, live activity,
#                              # 3 vouchers that expire 60, 90 and 120 s after start
#   DEMO_TLS=1 scripts/demo.sh # API-SSL with the simulator's self-signed cert pinned
#
# Environment: DEMO_PORT (API port, default 18728), DEMO_TLS_PORT (18729),
# DEMO_VOUCHERS (50), DEMO_SECRETS (20), DEMO_EXPIRING (3), DEMO_POLL_SECS (5),
# DEMO_USAGE_SECS (30), DEMO_LOG_LEVEL (info).
#
# Ctrl-C stops both. The agent's state file lives in a temp dir.
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
  [ -n "${sim_pid:-}" ] && kill "$sim_pid" 2>/dev/null || true
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

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

echo "== mikrotik-edge check" >&2
timeout 20 target/debug/mikrotik-edge check
echo "== mikrotik-edge run (Ctrl-C to stop)" >&2
target/debug/mikrotik-edge run &
agent_pid=$!
wait "$agent_pid"
