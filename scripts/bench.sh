#!/usr/bin/env bash
# Benchmarks (never timed tests), side by side with what operators would
# otherwise run, on the same simulator data with replies written sentence
# by sentence (as a real router's arrive in separate TCP segments):
#
# - one poll cycle's CPU time and the agent's peak and steady memory with
#   10,000 hotspot users (5,000 active) and 2,000 PPPoE secrets (1,000
#   active), against the original design's Node.js monitoring cycle on
#   node-routeros (scripts/bench/node-monitor.js);
# - `mikrotik-edge api /ip/hotspot/user/print` of those users against
#   node-routeros and librouteros (Python) printing the same;
# - the codec's decode throughput (codec-bench) and the binary sizes.
#
#   scripts/bench.sh                 # defaults above, 20 measured cycles
#   BENCH_CYCLES=50 scripts/bench.sh
#   BENCH_SKIP_PEERS=1 scripts/bench.sh   # without Node.js / Python peers
#   BENCH_UPLOAD=0 scripts/bench.sh  # skip the upload benchmark
#   BENCH_CREATE_BATCH=0 scripts/bench.sh  # skip create-batch (scripts/bench/create-batch.sh)
#   BENCH_DESIRED_POLL=0 scripts/bench.sh  # skip central change -> router (scripts/bench/desired-poll.sh)
#   BENCH_RUNS=9 scripts/bench.sh    # runs per whole-command figure (median; default 5)
#   BENCH_NO_BUILD=1 BENCH_AGENT_BIN=/tmp/old-agent scripts/bench.sh  # no cargo build; another agent
#   scripts/bench.sh --scale         # only the scale figures: the edge's (below), then the central side's
#   scripts/bench.sh --scale edge    # only the edge at 10k/25k/50k users
#   scripts/bench.sh --scale central # only the central side at 1,000 sites (scripts/bench/ingest-direct.sh, central-scale.sh, fleet-page.sh)
#
# Upload benchmark (bench_upload below): a state file pre-filled with
# 100,000 events (BENCH_UPLOAD_EVENTS) by `outbox-fill`, drained by the
# release agent through a release `mikrotik-central` into a throwaway
# PostgreSQL (scripts/central/throwaway-pg.sh): events per second and the
# agent's peak RSS while draining.
#
# node-routeros and librouteros are installed into a temp dir with npm and
# pip (bench only, never a runtime dependency); without node or pip their
# rows say "skipped". CPU time comes from /proc/<pid>/stat (utime+stime)
# sampled at the agent's own "cycle:" log lines, or from wait4(2) for whole
# commands (scripts/bench/measure.py: median of BENCH_RUNS runs, to the
# microsecond); peak memory is VmHWM / GNU time's maximum RSS.
# The simulator runs in its own process, so its work is not counted.
#
# Router work (after the peers): the router's reply bytes and commands per
# hour at the default schedule against the design's cycle, counted by the
# simulator (BENCH_WORK_POLLS=120 agent polls, BENCH_WORK_CYCLES=5 design
# cycles; BENCH_WORK_USER_READ_SECS below).
#
# Instant detection (next part): with poll_secs=300 (so only `listen`
# can explain an event), the time from a login or logout on the simulator
# (`routeros-sim --control` prints when it took effect) to the agent's
# event log line, and the agent's CPU over BENCH_IDLE_SECS idle seconds with
# its listens open.
#
#   BENCH_LISTEN_USERS=1000 BENCH_LISTEN_ACTIVE=500 BENCH_LOGINS=10 BENCH_IDLE_SECS=20
#
# Scale (`scripts/bench.sh --scale edge`, only that part, a few minutes;
# `--scale` runs it before the central side's): a large site's mix (per N hotspot users: 40 % online, N/10 PPPoE secrets of which
# 40 % connected, so 50,000 / 20,000 / 5,000 / 2,000 at the top) at
# N = 10,000, 25,000 and 50,000 (BENCH_SCALE_SIZES): the first cycle on a
# fresh state file (it activates every online voucher), the first cycle
# after a restart on that state file (every list read in full, every
# session found again), the steady cycle's CPU and the peak RSS, and each
# figure's ratio to the smallest size's, against the ratio of sizes
# (linear growth has the two equal).
#
#   BENCH_SCALE_SIZES="10000 25000 50000" BENCH_CYCLES=20 scripts/bench.sh --scale edge
set -euo pipefail
# SCALE: empty (the default bench), or both, edge or central (--scale [PART]).
SCALE=
if [ "${1:-}" = --scale ]; then
  SCALE=${2:-both}
  case $SCALE in both | edge | central) ;; *) echo "bench: --scale [edge|central]" >&2; exit 2 ;; esac
fi
cd "$(dirname "$0")/.."
# The central side at 1,000 sites: ingest_batch alone (pgbench), then the
# load generator through several gateways in front of one PostgreSQL, then
# the fleet page with 10 million sessions (docs/scale.md).
central_scale() {
  scripts/bench/ingest-direct.sh
  echo
  scripts/bench/central-scale.sh
  echo
  scripts/bench/fleet-page.sh
}
if [ "$SCALE" = central ]; then
  central_scale
  exit 0
fi
# shellcheck source=central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh

USERS=${BENCH_USERS:-10000}
ACTIVE=${BENCH_ACTIVE:-5000}
SECRETS=${BENCH_SECRETS:-2000}
PPP_ACTIVE=${BENCH_PPP_ACTIVE:-1000}
CYCLES=${BENCH_CYCLES:-20}

# The shipped binary: static musl (its allocator, not glibc's per-thread
# arenas, is what runs on a router or a Pi).
TARGET=${BENCH_TARGET:-x86_64-unknown-linux-musl}
# BENCH_NO_BUILD=1: the binaries as last built; BENCH_AGENT_BIN: another
# agent binary (an earlier build, to compare two back to back).
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --quiet --release --no-default-features --bin mikrotik-edge --target "$TARGET"
AGENT_BIN=${BENCH_AGENT_BIN:-target/$TARGET/release/mikrotik-edge}
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --quiet --release --features sim --bin routeros-sim --bin codec-bench
if [ -z "${BENCH_NO_BUILD:-}" ] && [ -z "$SCALE" ] && [ "${BENCH_UPLOAD:-1}" != 0 ]; then
  cargo build --quiet --release --features sim --bin outbox-fill
  cargo build --quiet --release --features central --bin mikrotik-central
fi

L_USERS=${BENCH_LISTEN_USERS:-1000}
L_ACTIVE=${BENCH_LISTEN_ACTIVE:-500}
LOGINS=${BENCH_LOGINS:-10}
IDLE_SECS=${BENCH_IDLE_SECS:-20}

work=$(mktemp -d)
cleanup() {
  [ -n "${up_agent:-}" ] && kill "$up_agent" 2>/dev/null || true
  [ -n "${gateway:-}" ] && kill "$gateway" 2>/dev/null || true
  [ -n "${sim2:-}" ] && kill "$sim2" 2>/dev/null || true
  [ -n "${simw:-}" ] && kill "$simw" 2>/dev/null || true
  [ -z "$SCALE" ] && [ "${BENCH_UPLOAD:-1}" != 0 ] && pg_throwaway_stop
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null || true
  [ -n "${sim:-}" ] && kill "$sim" 2>/dev/null || true
  [ -n "${agent2:-}" ] && kill "$agent2" 2>/dev/null || true
  [ -n "${sim2:-}" ] && kill "$sim2" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
BENCH_DIR=$(pwd)/scripts/bench

# start_sim USERS ACTIVE SECRETS PPP_ACTIVE: a simulator on a free port;
# sets sim and port.
start_sim() {
  rm -f "$work/sim.out"
  target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
    --hotspot-users "$1" --hotspot-active "$2" \
    --pppoe-secrets "$3" --ppp-active "$4" ${BENCH_WHOLE_REPLIES:+--no-op} --per-sentence >"$work/sim.out" &
  sim=$!
  for _ in $(seq 1800); do grep -q "^api: " "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim.out")
  [ -n "$port" ] || { echo "bench: simulator did not start" >&2; exit 1; }
}
stop_sim() {
  kill "$sim" 2>/dev/null || true
  wait "$sim" 2>/dev/null || true
  sim=''
}

ticks_per_sec=$(getconf CLK_TCK)
# run_agent STATE USER_READ_SECS [keep]: runs `mikrotik-edge run` (poll
# 1 s) for CYCLES + 2 cycles on a new state file (on the one left by the
# last run with `keep`: a restart); sets first, steady_ms, wall, hwm, rss,
# code (the binary's own pages in memory: .cargo/order), events.
run_agent() {
  [ "${3:-}" = keep ] || rm -f "$1"
  MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port \
  MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
  MIKROTIK_EDGE_STATE_PATH="$1" MIKROTIK_EDGE_POLL_SECS=1 \
  MIKROTIK_EDGE_USER_READ_SECS="$2" MIKROTIK_EDGE_LOG_LEVEL=debug \
    "$AGENT_BIN" run 2>"$work/agent.log" &
  agent=$!
  wait_cycles 1
  first=$(cpu_ticks)
  wait_cycles 2
  local start end
  start=$(cpu_ticks)
  wait_cycles $((CYCLES + 2))
  end=$(cpu_ticks)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
  code=$(awk -v bin="$(readlink -f "$AGENT_BIN")" '/^[0-9a-f]+-/ {m = ($NF == bin)} /^Rss:/ && m {s += $2} END {print s + 0}' "/proc/$agent/smaps")
  events=$(grep -c 'event {' "$work/agent.log" || true)
  wall=$(grep 'cycle: [0-9]' "$work/agent.log" | tail -n "$CYCLES" | sed 's/.*, \([0-9]*\) ms$/\1/' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  steady_ms=$(awk -v a="$start" -v b="$end" -v n="$CYCLES" -v h="$ticks_per_sec" 'BEGIN {printf "%.1f", (b - a) * 1000 / h / n}')
  kill "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
  agent=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
# A completed cycle's line ("cycle: N hotspot users, ..."), not a failed
# poll's ("poll failed, skipping this cycle: ...").
cycles_seen() { grep -c 'cycle: [0-9]' "$work/agent.log" || true; }
wait_cycles() {
  local want=$1
  for _ in $(seq 6000); do
    [ "$(cycles_seen)" -ge "$want" ] && return 0
    kill -0 "$agent" 2>/dev/null || { echo "bench: agent exited" >&2; tail "$work/agent.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: timed out waiting for cycle $want" >&2; tail "$work/agent.log" >&2; exit 1
}

# ---- scale: 10k, 25k, 50k users, a large site's mix ----
if [ -n "$SCALE" ]; then
  sizes=${BENCH_SCALE_SIZES:-10000 25000 50000}
  ms() { awk -v t="$1" -v h="$ticks_per_sec" 'BEGIN {printf "%.0f", t * 1000 / h}'; }
  rows=()
  for n in $sizes; do
    start_sim "$n" $((n * 2 / 5)) $((n / 10)) $((n / 25))
    run_agent "$work/scale.redb" 300
    fresh_first=$(ms "$first") s_steady=$steady_ms s_wall=$wall s_hwm=$hwm
    # A restart: the same state file, every list read in full again.
    run_agent "$work/scale.redb" 300 keep
    rows+=("$n $fresh_first $(ms "$first") $s_steady $s_wall $(( s_hwm > hwm ? s_hwm : hwm ))")
    stop_sim
  done
  echo "mikrotik-edge scale bench: per N hotspot users 40 % online, N/10 PPPoE secrets 40 % connected, replies sentence by sentence, $CYCLES steady cycles"
  printf '  %-7s %16s %17s %15s %9s %10s\n' users "fresh 1st (ms)" "restart 1st (ms)" "steady (ms CPU)" "wall (ms)" "peak KiB"
  base=''
  for r in "${rows[@]}"; do
    read -r n f1 r1 st wl pk <<<"$r"
    printf '  %-7s %16s %17s %15s %9s %10s\n' "$n" "$f1" "$r1" "$st" "$wl" "$pk"
    [ -z "$base" ] && base="$r"
  done
  read -r n0 f0 r0 st0 _ pk0 <<<"$base"
  x() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }'; }
  echo "  ratios to $n0 users (linear or better: each figure's ratio at most the size ratio):"
  for r in "${rows[@]:1}"; do
    read -r n f1 r1 st _ pk <<<"$r"
    echo "    $n users: size x$(x "$n0" "$n"), fresh 1st x$(x "$f0" "$f1"), restart 1st x$(x "$r0" "$r1"), steady x$(x "$st0" "$st"), peak RSS x$(x "$pk0" "$pk")"
  done
  if [ "$SCALE" = both ]; then
    echo
    central_scale
  fi
  exit 0
fi

start_sim "$USERS" "$ACTIVE" "$SECRETS" "$PPP_ACTIVE"
# The default first (listen keeps the user lists current, a full read
# every 300 s), on a fresh router: its first cycle activates the vouchers.
# Then every poll reading the user lists in full (`user_read_secs = 0`), as
# a poll without their listens does; only its steady cycle is reported.
run_agent "$work/state.redb" 300
saved="$first $steady_ms $wall $hwm $rss $code $events"
run_agent "$work/state0.redb" 0
full_ms=$steady_ms
read -r first steady_ms wall hwm rss code events <<<"$saved"

# ---- peers: the original design's cycle on node-routeros; api print ----
node_json='' node_print='' py_print=''
if [ -z "${BENCH_SKIP_PEERS:-}" ] && command -v node >/dev/null && command -v npm >/dev/null; then
  if (cd "$work" && npm install --silent --no-audit --no-fund --prefix "$work/node" node-routeros@1.6.9 >/dev/null 2>&1); then
    export NODE_PATH="$work/node/node_modules"
    node_json=$(node "$BENCH_DIR/node-monitor.js" 127.0.0.1 "$port" bench bench "$CYCLES" 2>/dev/null || true)
    node_print=$(python3 "$BENCH_DIR/measure.py" node "$BENCH_DIR/node-print.js" 127.0.0.1 "$port" bench bench)
  fi
fi
if [ -z "${BENCH_SKIP_PEERS:-}" ] && command -v python3 >/dev/null; then
  if python3 -m pip install --quiet --disable-pip-version-check --target "$work/py" librouteros==4.2.2 >/dev/null 2>&1; then
    py_print=$(PYTHONPATH="$work/py" python3 "$BENCH_DIR/measure.py" python3 "$BENCH_DIR/py-print.py" 127.0.0.1 "$port" bench bench)
  fi
fi
edge_print=$(MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port \
  MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
  python3 "$BENCH_DIR/measure.py" "$AGENT_BIN" api /ip/hotspot/user/print)
field() { sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", b / a; else print "-" }'; }

echo "mikrotik-edge bench: $USERS hotspot users ($ACTIVE active), $SECRETS PPPoE secrets ($PPP_ACTIVE active), replies sentence by sentence"
echo "  first cycle incl. start-up and $events events: $(awk -v t="$first" -v h="$ticks_per_sec" 'BEGIN {printf "%.0f", t * 1000 / h}') ms CPU"
echo "  steady cycle (mean of $CYCLES):            $steady_ms ms CPU, median wall $wall ms"
echo "  steady cycle reading the user lists too:  $full_ms ms CPU (user_read_secs=0, every poll; by default 1 poll in 120 at poll_secs=30)"
echo "  peak memory (VmHWM):                      $((hwm / 1024)) MiB ($hwm KiB), RSS now $((rss / 1024)) MiB, of it the binary's own pages $code KiB"
echo "  state file:                               $(( $(stat -c %s "$work/state.redb") / 1024 )) KiB"
echo "  release binary ($TARGET):  $(stat -c %s "$AGENT_BIN") bytes"
for f in dist/mikrotik-edge-*; do
  [ -f "$f" ] && echo "  $f: $(stat -c %s "$f") bytes"
done
echo
echo "side by side (same simulator, same data):"
if [ -n "$node_json" ]; then
  node_ms=$(field "$node_json" steady_cycle_cpu_ms)
  echo "  steady poll cycle CPU:  mikrotik-edge $steady_ms ms, Node.js design on node-routeros $node_ms ms ($(ratio "$steady_ms" "$node_ms") less)"
  avg_ms=$(awk -v a="$steady_ms" -v b="$full_ms" 'BEGIN {printf "%.1f", (119 * a + b) / 120}')
  echo "    with the full user reads at the defaults (1 poll in 120): $avg_ms ms ($(ratio "$avg_ms" "$node_ms") less); every poll a full read: $full_ms ms ($(ratio "$full_ms" "$node_ms") less)"
  echo "  peak RSS:               mikrotik-edge $((hwm / 1024)) MiB, Node.js $(( $(field "$node_json" peak_rss_kib) / 1024 )) MiB"
else
  echo "  Node.js monitor: skipped (no node/npm, or BENCH_SKIP_PEERS)"
fi
edge_cpu=$(field "$edge_print" cpu_ms)
echo "  api print of $USERS users: mikrotik-edge $edge_cpu ms CPU, $(( $(field "$edge_print" peak_rss_kib) / 1024 )) MiB peak"
if [ -n "$node_print" ]; then
  echo "                         node-routeros $(field "$node_print" cpu_ms) ms CPU ($(ratio "$edge_cpu" "$(field "$node_print" cpu_ms)") more), $(( $(field "$node_print" peak_rss_kib) / 1024 )) MiB peak"
fi
if [ -n "$py_print" ]; then
  echo "                         librouteros $(field "$py_print" cpu_ms) ms CPU ($(ratio "$edge_cpu" "$(field "$py_print" cpu_ms)") more), $(( $(field "$py_print" peak_rss_kib) / 1024 )) MiB peak"
fi
echo "  $(target/release/codec-bench 10000 3)"


stop_sim

# ---- the router's API work per hour: the agent's schedule vs the design ----
# The same data on a simulator that counts its reply bytes and commands
# (`stats` on --control). The design's cycle (node-monitor.js: the four
# list reads every poll; or the same four prints through `mikrotik-edge
# api` without Node.js) per cycle, times 120 (poll_secs = 30). The agent
# with the default schedule compressed 30 times (poll_secs 1, usage_secs
# and active_read_secs 10, user_read_secs 120: the defaults'
# 30/300/300/3600),
# over WORK_POLLS polls after its first two (the first activates every
# voucher), per poll times 120. Keepalive probes (after 60 s of silence)
# never fire at a 30 s poll, so the compression leaves none out.
# 120 polls: one hour of the default schedule, so the hourly user-list
# read is in it once.
WORK_POLLS=${BENCH_WORK_POLLS:-120}
WORK_CYCLES=${BENCH_WORK_CYCLES:-5}
# The user lists' read interval as run (compressed 30 times: 120 is the
# default 3600 s). To see another setting's cost, e.g. user_read_secs =
# 300: BENCH_WORK_USER_READ_SECS=10.
WORK_USER_READ=${BENCH_WORK_USER_READ_SECS:-120}
mkfifo "$work/ctlw"
target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
  --hotspot-users "$USERS" --hotspot-active "$ACTIVE" \
  --pppoe-secrets "$SECRETS" --ppp-active "$PPP_ACTIVE" --per-sentence --control \
  <"$work/ctlw" >"$work/simw.out" &
simw=$!
exec 4>"$work/ctlw"
for _ in $(seq 100); do grep -q '^api: ' "$work/simw.out" 2>/dev/null && break; sleep 0.1; done
portw=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/simw.out")
[ -n "$portw" ] || { echo "bench: simulator did not start" >&2; exit 1; }
# Prints "BYTES COMMANDS" as the simulator counts them now.
sim_stats() {
  local before
  before=$(grep -c '^stats ' "$work/simw.out" || true)
  echo stats >&4
  for _ in $(seq 200); do
    [ "$(grep -c '^stats ' "$work/simw.out" || true)" -gt "$before" ] && break
    sleep 0.01
  done
  grep '^stats ' "$work/simw.out" | tail -n 1 | awk '{print $2, $3}'
}
read -r b0 c0 <<<"$(sim_stats)"
if [ -n "${NODE_PATH:-}" ]; then
  design_how="node-monitor.js on node-routeros"
  node "$BENCH_DIR/node-monitor.js" 127.0.0.1 "$portw" bench bench "$WORK_CYCLES" >/dev/null 2>&1
  design_cycles=$((WORK_CYCLES + 1))
else
  design_how="the design's four prints through mikrotik-edge api"
  for _ in $(seq "$WORK_CYCLES"); do
    for cmd in "/ip/hotspot/user/print =.proplist=.id,name,profile,comment,disabled" \
               "/ip/hotspot/active/print =.proplist=.id,user,address,mac-address,login-by,uptime,bytes-in,bytes-out" \
               "/ppp/secret/print =.proplist=.id,name,profile,comment,disabled" \
               "/ppp/active/print =.proplist=.id,name,service,caller-id,address,uptime,session-id"; do
      # shellcheck disable=SC2086
      MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$portw \
      MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
        "$AGENT_BIN" api $cmd >/dev/null
    done
  done
  design_cycles=$WORK_CYCLES
fi
read -r b1 c1 <<<"$(sim_stats)"
design_bytes_h=$(( (b1 - b0) * 120 / design_cycles ))
design_cmds_h=$(( (c1 - c0) * 120 / design_cycles ))
rm -f "$work/statew.redb"
MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$portw \
MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
MIKROTIK_EDGE_STATE_PATH="$work/statew.redb" MIKROTIK_EDGE_POLL_SECS=1 \
MIKROTIK_EDGE_USAGE_SECS=10 MIKROTIK_EDGE_USER_READ_SECS="$WORK_USER_READ" MIKROTIK_EDGE_ACTIVE_READ_SECS=10 \
MIKROTIK_EDGE_LOG_LEVEL=debug \
  "$AGENT_BIN" run 2>"$work/agent.log" &
agent=$!
wait_cycles 2
read -r b0 c0 <<<"$(sim_stats)"
# One poll at a time: wait_cycles gives up after 30 s.
for n in $(seq 3 $((2 + WORK_POLLS))); do wait_cycles "$n"; done
read -r b1 c1 <<<"$(sim_stats)"
polls=$(grep 'cycle: ' "$work/agent.log" | sed -n "3,$((2 + WORK_POLLS))p")
full_polls=$(grep -c 'active lists read' <<<"$polls" || true)
counter_polls=$(grep -c "active lists' counters read" <<<"$polls" || true)
kill "$agent" 2>/dev/null || true
wait "$agent" 2>/dev/null || true
agent=
exec 4>&-
kill "$simw" 2>/dev/null || true
wait "$simw" 2>/dev/null || true
edge_bytes_h=$(( (b1 - b0) * 120 / WORK_POLLS ))
edge_cmds_h=$(( (c1 - c0) * 120 / WORK_POLLS ))
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1000000}'; }
echo
echo "router API work per hour (poll 30 s; usage and active-list counters reads 300 s; user-list reads $((WORK_USER_READ * 30)) s), same data:"
echo "  design's cycle ($design_how): $(mb "$design_bytes_h") of replies, $design_cmds_h commands"
echo "  mikrotik-edge:                $(mb "$edge_bytes_h") of replies, $edge_cmds_h commands (of $WORK_POLLS polls, $counter_polls read the active lists' counters, $full_polls read them in full)"
echo "  ratio:                        $(ratio "$edge_bytes_h" "$design_bytes_h") fewer reply bytes, $(ratio "$edge_cmds_h" "$design_cmds_h") fewer commands"
echo

# ---- instant detection: login -> event latency, idle CPU with listens ----

mkfifo "$work/ctl"
target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench \
  --hotspot-users "$L_USERS" --hotspot-active "$L_ACTIVE" --control \
  <"$work/ctl" >"$work/sim2.out" &
sim2=$!
exec 3>"$work/ctl"
for _ in $(seq 100); do grep -q '^api: ' "$work/sim2.out" 2>/dev/null && break; sleep 0.1; done
port2=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim2.out")
[ -n "$port2" ] || { echo "bench: simulator did not start" >&2; exit 1; }

# The users exist before the agent's first poll: listen knows the users
# the last poll listed (one created since is found by the next poll).
for i in $(seq "$LOGINS"); do
  echo "add bench-$i voucher-1h" >&3
  grep -q "^add bench-$i " "$work/sim2.out" 2>/dev/null || sleep 0.05
done

# Every agent log line stamped on arrival (microseconds, no fork per line).
stamp() { while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done; }
MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port2 \
MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
MIKROTIK_EDGE_STATE_PATH="$work/state2.redb" MIKROTIK_EDGE_POLL_SECS=300 \
MIKROTIK_EDGE_LOG_LEVEL=debug \
  "$AGENT_BIN" run 2> >(stamp >"$work/agent2.log") &
agent2=$!
for _ in $(seq 600); do grep -q 'cycle: ' "$work/agent2.log" 2>/dev/null && break; sleep 0.05; done
grep -q 'listening on the active lists' "$work/agent2.log" || { echo "bench: no listen" >&2; tail "$work/agent2.log" >&2; exit 1; }

# Waits for the sim's reply to the last command; prints its time (ms).
sim_reply() {
  local want=$1
  for _ in $(seq 200); do
    local t
    t=$(grep "^$want " "$work/sim2.out" | tail -n 1 | awk '{print $3}')
    [ -n "$t" ] && { echo "$t"; return 0; }
    sleep 0.01
  done
  echo "bench: simulator did not answer $want" >&2; exit 1
}
# Waits for the agent's event line; prints when it arrived (ms).
event_at() {
  local type=$1 user=$2
  for _ in $(seq 1000); do
    local us
    us=$(grep "\"type\":\"$type\"" "$work/agent2.log" | grep "\"user\":\"$user\"" | head -n 1 | awk '{print $1}')
    [ -n "$us" ] && { echo $((us / 1000)); return 0; }
    sleep 0.005
  done
  echo "bench: no $type event for $user" >&2; tail "$work/agent2.log" >&2; exit 1
}
latencies=()
for i in $(seq "$LOGINS"); do
  u=bench-$i
  sleep 0.2
  echo "login $u 10.5.60.$i 02:00:00:00:60:$(printf %02X "$i")" >&3
  t0=$(sim_reply "login $u")
  latencies+=($(( $(event_at login "$u") - t0 )))
  echo "logout $u" >&3
  t0=$(sim_reply "logout $u")
  latencies+=($(( $(event_at logout "$u") - t0 )))
done
sorted=$(printf '%s\n' "${latencies[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
worst=$(echo "$sorted" | tail -n 1)

cpu_ticks2() { awk '{print $14 + $15}' "/proc/$agent2/stat"; }
sleep 1
idle_start=$(cpu_ticks2)
sleep "$IDLE_SECS"
idle_end=$(cpu_ticks2)
idle_ms=$(awk -v a="$idle_start" -v b="$idle_end" -v h="$ticks_per_sec" 'BEGIN {printf "%.0f", (b - a) * 1000 / h}')

echo "mikrotik-edge instant detection: $L_USERS hotspot users ($L_ACTIVE active), poll_secs=300, listens open"
echo "  login/logout -> event ($((LOGINS * 2)) changes):   median $median ms, worst $worst ms"
echo "  idle CPU over ${IDLE_SECS} s:                   $idle_ms ms ($(awk -v m="$idle_ms" -v s="$IDLE_SECS" 'BEGIN {printf "%.3f", m / s / 10}') % of one core)"
exec 3>&-
kill "$agent2" "$sim2" 2>/dev/null || true
wait "$agent2" "$sim2" 2>/dev/null || true
agent2='' sim2=''

# Upload: outbox -> mikrotik-central -> ingest_batch -> PostgreSQL.
bench_upload() {
  local n=${BENCH_UPLOAD_EVENTS:-100000} batch=${BENCH_BATCH_MAX:-500}
  pg_throwaway_start
  local gw_port=$(( PG_PORT + 1 ))
  target/release/mikrotik-central serve --listen "127.0.0.1:$gw_port" --database-url "$PG_URL"     --log-level info 2>"$work/gateway.log" &
  gateway=$!
  local token
  token=$(target/release/mikrotik-central add-site bench --database-url "$PG_URL")
  target/release/outbox-fill "$work/upload.redb" "$n" >/dev/null
  # An empty router, so the figures are the upload's alone.
  target/release/routeros-sim --listen 127.0.0.1:0 --user bench --password bench >"$work/sim2.out" &
  sim2=$!
  for _ in $(seq 100); do grep -q '^api: ' "$work/sim2.out" 2>/dev/null && break; sleep 0.1; done
  local port2
  port2=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim2.out")
  for _ in $(seq 100); do grep -q 'listening on' "$work/gateway.log" 2>/dev/null && break; sleep 0.1; done

  local t0 t1
  t0=$(date +%s.%N)
  MIKROTIK_EDGE_ROUTER_HOST=127.0.0.1 MIKROTIK_EDGE_ROUTER_PORT=$port2 \
  MIKROTIK_EDGE_ROUTER_USER=bench MIKROTIK_EDGE_ROUTER_PASSWORD=bench \
  MIKROTIK_EDGE_STATE_PATH="$work/upload.redb" MIKROTIK_EDGE_POLL_SECS=3600 \
  MIKROTIK_EDGE_SITE_ID=bench MIKROTIK_EDGE_BATCH_MAX=$batch \
  MIKROTIK_EDGE_CENTRAL_URL="http://127.0.0.1:$gw_port" MIKROTIK_EDGE_CENTRAL_TOKEN="$token" \
  MIKROTIK_EDGE_LOG_LEVEL=warn \
    "$AGENT_BIN" run 2>"$work/upload-agent.log" &
  up_agent=$!
  local peak=0 rss stored=0
  while :; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$up_agent/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    stored=$(pg_throwaway_psql "SELECT coalesce(max(stored_through), 0) FROM agent_streams WHERE site_id = 'bench'")
    [ "$stored" -ge "$n" ] && break
    kill -0 "$up_agent" 2>/dev/null || { echo "bench: agent exited" >&2; cat "$work/upload-agent.log" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$up_agent/status")
  kill "$up_agent"; wait "$up_agent" 2>/dev/null || true; up_agent=
  local rows
  rows=$(pg_throwaway_psql "SELECT count(*) FROM agent_events WHERE site_id = 'bench'")
  echo "mikrotik-edge upload bench: $n queued events, batches of $batch, agent -> mikrotik-central -> PostgreSQL $(basename "$(dirname "$PG_BIN")") (loopback)"
  echo "  drained in:                               $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s incl. start-up, $rows rows in agent_events"
  echo "  throughput:                               $(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.0f", n / (b - a)}') events/s"
  echo "  agent peak RSS while draining:            $((hwm / 1024)) MiB ($hwm KiB VmHWM; sampled max RSS $peak KiB)"
  kill "$gateway" "$sim2" 2>/dev/null || true; wait "$gateway" "$sim2" 2>/dev/null || true; gateway= sim2=
  pg_throwaway_stop
}
[ "${BENCH_UPLOAD:-1}" != 0 ] && bench_upload
# create-batch against the design's 50-per-batch-with-sleep (separate script).
if [ "${BENCH_CREATE_BATCH:-1}" != 0 ]; then
  echo
  AGENT_BIN="$AGENT_BIN" scripts/bench/create-batch.sh
fi
# A central voucher batch -> on the router, through the version poll.
if [ "${BENCH_DESIRED_POLL:-1}" != 0 ]; then
  echo
  AGENT_BIN="$AGENT_BIN" scripts/bench/desired-poll.sh
fi
exit 0
