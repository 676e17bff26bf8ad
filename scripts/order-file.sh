#!/usr/bin/env bash
# Regenerates the linker's function order files (.cargo/order/<target>.txt):
# the functions a running agent executes, which rust-lld places next to each
# other (--symbol-ordering-file, .cargo/config.toml). Why: the kernel maps a
# binary's code 64 KiB around every page a process touches, so the ~1 MB
# the agent runs, spread over ~2.8 MB of code, kept nearly all of it
# resident (2.5 of a 10 MB peak); grouped, much less is
# (docs/benchmarks.md, "Code in memory").
#
#   scripts/order-file.sh        # needs valgrind, perf, curl, python3, PostgreSQL; ~20 min
#
# How: the x86_64 release agent, built exactly as shipped but not stripped
# (`-C strip=none` in RUSTFLAGS: the profile's `strip` changes symbol
# names, RUSTFLAGS do not), runs under callgrind against the simulator; the
# functions callgrind saw are the file, in two groups so that what every
# agent runs is packed together: (1) monitoring as installed, the HTTP
# endpoint listening but idle (fresh start with activations, listens,
# activity, counters, usage and full reads, expiries, SIGTERM, a restart on
# the state file), then what (2) HTTP requests and a central side (uploads,
# full sync, version poll, a central voucher batch) add. Then monitoring
# runs natively under `perf record -e page-faults` for what callgrind
# cannot see (below). aarch64 cannot run under callgrind here: its file
# takes the same functions by name from its own build (names carry a
# per-target hash; the rest of each name is the same). A function missing
# from a file (renamed, new) is only placed elsewhere: the link neither
# fails nor warns. Regenerate after larger changes (the script touches
# src/main.rs: cargo does not see the files change, and the next release
# build must relink); scripts/bench.sh prints the code kept in memory next
# to the peak.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=central/throwaway-pg.sh
. scripts/central/throwaway-pg.sh
for tool in valgrind curl python3 nm; do
  command -v "$tool" >/dev/null || { echo "order-file: $tool not found" >&2; exit 2; }
done
X86=x86_64-unknown-linux-musl ARM=aarch64-unknown-linux-musl
dir=target/order
# The build reads the files (.cargo/config.toml): present, if empty, on a
# first run.
mkdir -p .cargo/order
touch ".cargo/order/$X86.txt" ".cargo/order/$ARM.txt"
# The shipped aarch64 flags (scripts/build.sh) plus no stripping; cargo
# appends these to .cargo/config.toml's.
cargo build --release --no-default-features --bin mikrotik-edge --target-dir "$dir" \
  --target "$X86" --target "$ARM" \
  --config "target.$X86.rustflags=['-C', 'strip=none']" \
  --config "target.$ARM.rustflags=['-C', 'strip=none', '-C', 'link-arg=-T$PWD/.cargo/no-unwind-tables.ld', '-C', 'link-arg=--no-eh-frame-hdr']"
cargo build --release --features sim --bin routeros-sim
cargo build --release --features central --bin mikrotik-central
agent=$dir/$X86/release/mikrotik-edge
sim=target/release/routeros-sim

work=$(mktemp -d)
sim_pid='' agent_pid='' gw_pid=''
cleanup() {
  for p in "$agent_pid" "$gw_pid" "$sim_pid"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pg_throwaway_stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# A mid-sized router (large enough for the sorts' and tables' large-input
# paths; callgrind is ~50x slower): activations on the first poll, random
# logins, logouts and traffic for the listens, vouchers expiring meanwhile.
"$sim" --listen 127.0.0.1:0 --user order --password order --hotspot-users 3000 --hotspot-active 1500 \
  --pppoe-secrets 600 --ppp-active 300 --expiring 3 --activity --per-sentence >"$work/sim.out" &
sim_pid=$!
for _ in $(seq 300); do grep -q '^api: ' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^api: .*:\([0-9]*\)$/\1/p' "$work/sim.out")
[ -n "$port" ] || { echo "order-file: simulator did not start" >&2; exit 1; }
pg_throwaway_start
pg_throwaway_gateway target/release/mikrotik-central order "$work/gateway.log"
gw_pid=$GW_PID
http=127.0.0.1:$(( PG_PORT + 2 ))

# config NAME HTTP_LISTEN EXTRA: a config file as deployments write it, the
# schedule compressed so that counters, usage and full user reads all happen.
config() {
  cat >"$work/$1.toml" <<EOF
state_path = "$work/$1.redb"
poll_secs = 1
usage_secs = 4
active_read_secs = 4
user_read_secs = 6
log_level = "debug"
http_listen = "$2"
$3
[router]
host = "127.0.0.1"
port = $port
user = "order"
password = "order"
EOF
}
# Monitoring as installed: the HTTP endpoint listens (the default), idle.
config core "$http" ''
config full "$http" "site_id = \"order\"
http_token = \"order-file-token\"
central_url = \"http://127.0.0.1:$GW_PORT\"
central_token = \"$GW_TOKEN\"
desired_poll_secs = 2
sync_secs = 20"

# run_agent CONFIG OUT POLLS [http]: the agent under callgrind until POLLS
# polls are logged (with `http`: the endpoints asked and a central voucher
# batch meanwhile), then SIGTERM.
run_agent() {
  valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$work/$2" \
    "$agent" --config "$work/$1.toml" run 2>"$work/$2.log" &
  agent_pid=$!
  local polls
  for _ in $(seq 3000); do
    polls=$(grep -c 'cycle: [0-9]' "$work/$2.log" || true)
    [ "$polls" -ge "$3" ] && break
    kill -0 "$agent_pid" 2>/dev/null || { echo "order-file: agent exited" >&2; tail "$work/$2.log" >&2; exit 1; }
    sleep 0.2
  done
  if [ "${4:-}" = http ]; then
    local auth="Authorization: Bearer order-file-token"
    for path in / /healthz /metrics /api/mikrotik/users/active /api/mikrotik/users/active?filter=pppoe \
      /api/mikrotik/stats/summary /api/mikrotik/monitoring/status /api/mikrotik/test-connection /nope; do
      curl -s -o /dev/null -H "$auth" "http://$http$path" || true
    done
    curl -s -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
      -d '{"name":"order-1","password":"x","profile":"default"}' "http://$http/api/mikrotik/users/hotspot" || true
    curl -s -o /dev/null -H "$auth" -X DELETE "http://$http/api/mikrotik/users/hotspot/order-1" || true
    curl -s -o /dev/null -H "$auth" -X POST "http://$http/api/mikrotik/sync/force" || true
    pg_throwaway_psql "INSERT INTO vouchers (site_id, code, password, profile_name, valid_hours, status, batch_id, mikrotik_comment)
      SELECT 'order', 'ORD-' || g, 'pw' || g, 'default', 24, 'created', 'ORD',
             'VOUCHER_SYSTEM|ORD|5000|3500|24|V1|$(date -u +%F)|order||' FROM generate_series(1, 20) g" >/dev/null
    for _ in $(seq 600); do
      grep -qE '\(20 created' "$work/$2.log" && break
      sleep 0.2
    done
    sleep 5
  fi
  kill -TERM "$agent_pid"
  wait "$agent_pid" 2>/dev/null || true
  agent_pid=''
}
echo "order-file: (1) monitoring, fresh start, under callgrind (minutes)"
run_agent core core-fresh.cg 8
echo "order-file: (1) monitoring, restart on the state file"
run_agent core core-restart.cg 4
echo "order-file: (2) with HTTP requests and a central side"
run_agent full full.cg 8 http

cat >"$work/order.py" <<'PY'
"""order.py WORK DIR X86 ARM STEP: callgrind (the x86_64 file from the
callgrind runs), faults FILE (adds the functions that page-faulted outside
the file, from `perf script`, to the monitoring group), arm (the aarch64 file
by name)."""
import re, subprocess, sys
work, dir_, x86, arm, step = sys.argv[1:6]

def text_symbols(target):
    """(address, size, name) of the binary's functions (assembly ones have
    no size)."""
    out = subprocess.run(["nm", "-S", "--defined-only", f"{dir_}/{target}/release/mikrotik-edge"],
                         capture_output=True, text=True, check=True).stdout
    syms = []
    for p in (l.split() for l in out.splitlines()):
        if len(p) == 4 and p[2] in "tTwW":
            syms.append((int(p[0], 16), int(p[1], 16), p[3]))
        elif len(p) == 3 and p[1] in "tTwW":
            syms.append((int(p[0], 16), 0, p[2]))
    return syms

def unhashed(name):
    return re.sub(r"17h[0-9a-f]{16}E$", "", name)

def path(target):
    return f".cargo/order/{target}.txt"

def write(target, names):
    with open(path(target), "w") as f:
        f.write("\n".join(names) + "\n")

if step == "callgrind":
    x86_syms = text_symbols(x86)
    x86_names = {s[2] for s in x86_syms}

    def ran(*files):
        """The functions callgrind saw. It names a function valgrind
        replaces with its own (memcpy, strlen, ...) by address."""
        fns = set()
        for name in files:
            for line in open(f"{work}/{name}", errors="replace"):
                m = re.match(r"c?fn=\(\d+\) (.+)$", line)
                if not m:
                    continue
                fn = m.group(1)
                if re.fullmatch(r"0x[0-9a-f]+", fn):
                    at = int(fn, 16)
                    fns.update(s[2] for s in x86_syms if s[0] <= at < s[0] + max(s[1], 1))
                else:
                    fns.add(fn)
        fns &= x86_names
        # Code chosen by CPU features (xxh3's avx2/avx512 paths, ...):
        # valgrind's CPU is not the machine's, so every variant of one that ran.
        variant = re.compile(r"avx512|avx2|avx|sse4[12]|ssse3|sse2|neon")
        keys = {variant.sub("*", unhashed(n)) for n in fns if variant.search(n)}
        fns |= {n for n in x86_names if variant.search(n) and variant.sub("*", unhashed(n)) in keys}
        return fns

    core = ran("core-fresh.cg", "core-restart.cg")
    extra = ran("full.cg") - core
    write(x86, sorted(core) + sorted(extra))
    with open(f"{work}/core.txt", "w") as f:
        f.write("\n".join(sorted(core)) + "\n")
    print(f"order-file: x86_64: {len(core)} functions run by monitoring (HTTP idle), {len(extra)} more with HTTP requests and central")
elif step == "faults":
    names = {s[2] for s in text_symbols(x86)}
    listed = [l.strip() for l in open(path(x86)) if l.strip()]
    core = [l.strip() for l in open(f"{work}/core.txt") if l.strip()]
    faulted = set()
    for line in open(sys.argv[6], errors="replace"):
        p = line.split()
        if len(p) >= 3 and p[-1].endswith("mikrotik-edge)"):
            faulted.add(p[1].split("+")[0])
    new = sorted((faulted & names) - set(listed))
    core += new
    in_core = set(core)
    write(x86, core + [n for n in listed if n not in in_core])
    with open(f"{work}/core.txt", "w") as f:
        f.write("\n".join(core) + "\n")
    print(f"order-file: {len(new)} functions faulted outside the block natively" + (": " + " ".join(new[:8]) if new else ""))
    sys.exit(0 if new else 3)
elif step == "arm":
    by_key = {}
    for _, _, s in text_symbols(arm):
        by_key.setdefault(unhashed(s), []).append(s)
    out, seen = [], set()
    for n in (l.strip() for l in open(path(x86)) if l.strip()):
        for s in sorted(by_key.get(unhashed(n), [])):
            if s not in seen:
                seen.add(s)
                out.append(s)
    write(arm, out)
    print(f"order-file: {path(x86)}: {sum(1 for _ in open(path(x86)))} functions, {path(arm)}: {len(out)}")
PY
order() { python3 "$work/order.py" "$work" "$dir" "$X86" "$ARM" "$@"; }
order callgrind

# What callgrind cannot see: code run natively only (valgrind's own
# memcpy, signal returns, timing). Monitoring runs natively, relinked with
# the file, under `perf record -e page-faults`; a function that faults
# outside the file (the first one touched in each 64 KiB window there)
# joins the monitoring group; again until none does (at most 4 rounds).
relink() {
  touch src/main.rs
  cargo build --quiet --release --no-default-features --bin mikrotik-edge --target-dir "$dir" \
    --target "$X86" --config "target.$X86.rustflags=['-C', 'strip=none']"
}
if command -v perf >/dev/null; then
  for round in 1 2 3 4; do
    relink
    for run in fresh restart; do
      [ "$run" = fresh ] && rm -f "$work/core.redb"
      perf record -q -e page-faults -c 1 -o "$work/faults.$run" \
        "$agent" --config "$work/core.toml" run 2>"$work/native.log" &
      agent_pid=$!
      for _ in $(seq 600); do
        [ "$(grep -c 'cycle: [0-9]' "$work/native.log" || true)" -ge 10 ] && break
        sleep 0.1
      done
      kill -TERM "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=''
    done
    { perf script --no-demangle -F ip,sym,dso -i "$work/faults.fresh"
      perf script --no-demangle -F ip,sym,dso -i "$work/faults.restart"; } >"$work/faults.txt" 2>/dev/null
    order faults "$work/faults.txt" || break
  done
else
  echo "order-file: perf not found: no native round (code callgrind cannot see stays outside)"
fi
order arm
# cargo does not see the files change: the next release build relinks.
touch src/main.rs
