#!/usr/bin/env bash
# Central change -> router benchmark: the time from a central INSERT of a
# batch of 100 vouchers (BENCH_POLL_VOUCHERS, one statement, as the
# operator API writes it) to all of them present on the simulator, with the
# agent at its defaults (desired_poll_secs = 10, sync_secs = 300): the
# version poll sees the counter move and runs a full sync at once.
# BENCH_POLL_ROUNDS batches (default 5), each inserted after a random pause
# of 0-10 s, so the insert falls anywhere in the poll interval; median and
# worst. Release agent, release `mikrotik-central`, a throwaway PostgreSQL
# (scripts/central/throwaway-pg.sh), an empty simulated router; the
# router's list is read every 50 ms with `mikrotik-edge api`.
# Run alone, or from scripts/bench.sh (BENCH_DESIRED_POLL=0 skips it there).
#
#   scripts/bench/desired-poll.sh
#   AGENT_BIN=target/x86_64-unknown-linux-musl/release/mikrotik-edge scripts/bench/desired-poll.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh
N=${BENCH_POLL_VOUCHERS:-100}
ROUNDS=${BENCH_POLL_ROUNDS:-5}
if [ -z "${AGENT_BIN:-}" ]; then
  cargo build --quiet --release --no-default-features --bin mikrotik-edge
  AGENT_BIN=target/release/mikrotik-edge
fi
cargo build --quiet --release --features sim --bin routeros-sim
cargo build --quiet --release --features central --bin mikrotik-central

pwork=$(mktemp -d)
psim='' pgw='' pagent=''
pcleanup() {
  [ -n "$pagent" ] && kill "$pagent" 2>/dev/null || true
  [ -n "$pgw" ] && kill "$pgw" 2>/dev/null || true
  [ -n "$psim" ] && kill "$psim" 2>/dev/null || true
  wait 2>/dev/null || true
  pg_throwaway_stop 2>/dev/null || true
  rm -rf "$pwork"
}
trap pcleanup EXIT

pg_throwaway_start
pg_throwaway_gateway target/release/mikrotik-central bench "$pwork/gateway.log"
pgw=$GW_PID gw_port=$GW_PORT token=$GW_TOKEN
target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench >"$pwork/sim.out" &
psim=$!
for _ in $(seq 100); do grep -q '^api: ' "$pwork/sim.out" 2>/dev/null && break; sleep 0.1; done
sport=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$pwork/sim.out")
[ -n "$sport" ] || { echo "bench: simulator did not start" >&2; exit 1; }

export MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$sport \
  MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench
MIKROTIK_EDGE_STATE_PATH="$pwork/state.redb" MIKROTIK_EDGE_SITE_ID=bench \
MIKROTIK_EDGE_HTTP_LISTEN=off \
MIKROTIK_EDGE_CENTRAL_URL="http://127.0.0.1:$gw_port" MIKROTIK_EDGE_CENTRAL_TOKEN="$token" \
  "$AGENT_BIN" run 2>"$pwork/agent.log" &
pagent=$!
for _ in $(seq 300); do grep -q ' actions (' "$pwork/agent.log" 2>/dev/null && break; sleep 0.1; done
grep -q ' actions (' "$pwork/agent.log" || { echo "bench: no sync at start" >&2; tail "$pwork/agent.log" >&2; exit 1; }

# Users on the router whose name starts with $1.
on_router() {
  "$AGENT_BIN" api /ip/hotspot/user/print .proplist=name 2>/dev/null | grep -c "\"name\":\"$1" || true
}

times=()
for r in $(seq "$ROUNDS"); do
  sleep "$(awk -v s="$RANDOM" 'BEGIN {printf "%.2f", s % 1000 / 100}')"
  t0=$(date +%s.%N)
  pg_throwaway_psql "INSERT INTO vouchers (site_id, code, password, profile_name, valid_hours, status, batch_id, mikrotik_comment)
    SELECT 'bench', 'R$r-' || lpad(g::text, 4, '0'), 'pw' || g, 'voucher-1h', 24, 'created', 'B-R$r',
           'VOUCHER_SYSTEM|B-R$r|5000|3500|24|V1|$(date -u +%F)|bench||'
      FROM generate_series(1, $N) g" >/dev/null
  for _ in $(seq 1200); do
    [ "$(on_router "R$r-")" -ge "$N" ] && break
    kill -0 "$pagent" 2>/dev/null || { echo "bench: agent exited" >&2; tail "$pwork/agent.log" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  [ "$(on_router "R$r-")" -ge "$N" ] || { echo "bench: round $r: vouchers not on the router after 60 s" >&2; tail "$pwork/agent.log" >&2; exit 1; }
  times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
worst=$(echo "$sorted" | tail -n 1)
by_poll=$(grep -c '): syncing now' "$pwork/agent.log" || true)
echo "mikrotik-edge central change -> router bench: $ROUNDS batches of $N vouchers inserted centrally, agent defaults (desired_poll_secs=10, sync_secs=300)"
echo "  insert -> all $N on the router:          median $median s, worst $worst s (each: ${times[*]} s)"
echo "  full syncs started by the version poll:  $by_poll (of $ROUNDS batches)"
