#!/usr/bin/env bash
# Build static release binaries of the agent and copy them to dist/.
#
#   scripts/build.sh                       # all three targets
#   scripts/build.sh aarch64-unknown-linux-musl
#
# armv7 is the glibc target linked with +crt-static: rustup does not carry
# rust-std for armv7-unknown-linux-musleabihf everywhere (this workplace's
# mirror lacks it). The binary is still fully static; it resolves host names
# through glibc's NSS, so give it the router's IP address on armv7.
#
# Output: dist/mikrotik-edge-<target>. Only the `mikrotik-edge` binary is
# built, with no cargo features, so the simulator (feature `sim`) can never
# end up in a shipped binary. Linkers, C compilers for ring and qemu runners
# come from .cargo/config.toml; scripts/setup.sh installs them.
set -euo pipefail

cd "$(dirname "$0")/.."

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

die() {
    echo "build.sh: error: $*" >&2
    exit 1
}

# Per target: C compiler (also the linker on armv7; the musl targets link
# with rust-lld), archiver,
# and the runner for a smoke test.
tools_for() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "musl-gcc ar" ;;
        aarch64-unknown-linux-musl) echo "aarch64-linux-gnu-gcc aarch64-linux-gnu-ar" ;;
        armv7-unknown-linux-gnueabihf) echo "arm-linux-gnueabihf-gcc arm-linux-gnueabihf-ar" ;;
        *) return 1 ;;
    esac
}
runner_for() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "" ;;
        aarch64-unknown-linux-musl) echo "qemu-aarch64-static" ;;
        armv7-unknown-linux-gnueabihf) echo "qemu-arm-static" ;;
    esac
}

command -v cargo >/dev/null || die "cargo not found; install rustup (https://rustup.rs) and run scripts/setup.sh"
command -v file >/dev/null || die "'file' not found; run scripts/setup.sh"
SYSROOT="$(rustc --print sysroot)"
HOST="$(rustc -vV | sed -n 's/^host: //p')"

# Check everything first so a missing piece fails before a long build.
missing=()
NATIVE=()
for t in "${TARGETS[@]}"; do
    tools="$(tools_for "$t")" || die "unsupported target '$t' (supported: ${ALL_TARGETS[*]})"
    for tool in $tools; do
        command -v "$tool" >/dev/null || missing+=("$tool (for $t)")
    done
    # The musl targets link with rust-lld (.cargo/config.toml: identical code
    # folding, the function order file), part of rustup's rustc.
    if [[ "$t" == *-musl ]] && [ ! -x "$SYSROOT/lib/rustlib/$HOST/bin/rust-lld" ]; then
        missing+=("rust-lld (for $t; ships with rustup's rustc)")
    fi
    if [ -d "$SYSROOT/lib/rustlib/$t/lib" ]; then
        NATIVE+=("$t")
    else
        missing+=("rust target $t (rustup target add $t)")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "build.sh: missing toolchain pieces:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    die "run scripts/setup.sh to install them"
fi

export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

if [ "${#NATIVE[@]}" -gt 0 ]; then
    # One cargo invocation for all targets lets cargo overlap their builds.
    target_args=()
    for t in "${NATIVE[@]}"; do target_args+=(--target "$t"); done
    # aarch64 only, and only here (not in .cargo/config.toml, which test
    # builds share and whose panics must unwind): the shipped binary drops
    # its unwind tables (.eh_frame and its index, -362 KB; see
    # .cargo/no-unwind-tables.ld). cargo appends these to the config's flags.
    AARCH64_SHIP="target.aarch64-unknown-linux-musl.rustflags=['-C', 'link-arg=-T$PWD/.cargo/no-unwind-tables.ld', '-C', 'link-arg=--no-eh-frame-hdr']"
    echo "==> cargo build --release --no-default-features --bin mikrotik-edge ${target_args[*]}"
    cargo build --release --no-default-features --bin mikrotik-edge "${target_args[@]}" --config "$AARCH64_SHIP"
fi

mkdir -p dist
echo
echo "==> dist/"
for t in "${TARGETS[@]}"; do
    src="target/$t/release/mikrotik-edge"
    dst="dist/mikrotik-edge-$t"
    [ -f "$src" ] || die "$src was not produced"
    cp "$src" "$dst"
    info="$(file -b "$dst")"
    case "$info" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) die "$dst is not statically linked: $info" ;;
    esac
    # Smoke test: the binary starts on its architecture (under qemu if foreign).
    runner="$(runner_for "$t")"
    if [ -n "$runner" ] && ! command -v "$runner" >/dev/null; then
        smoke="skipped ($runner not installed)"
    elif $runner "$dst" --version >/dev/null; then
        smoke="--version ok${runner:+ under $runner}"
    else
        die "$dst --version failed${runner:+ under $runner}"
    fi
    size="$(stat -c %s "$dst")"
    printf '  %-48s %9d bytes (%4d KiB)  %s\n' "$dst" "$size" $(((size + 1023) / 1024)) "$smoke"
    # The design's budget: a RouterOS container on a small arm64 router.
    if [ "$t" = aarch64-unknown-linux-musl ] && [ "$size" -ge 3000000 ]; then
        die "$dst is $size bytes: the aarch64 budget is under 3,000,000"
    fi
done
