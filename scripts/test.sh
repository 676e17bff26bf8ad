#!/usr/bin/env bash
# The project's test command.
#
#   scripts/test.sh           setup (scripts/setup.sh), format, lint, rustdoc, release cross builds,
#                             native tests, aarch64 tests under qemu, RouterOS container images
#   scripts/test.sh --quick   format, lint, rustdoc, native tests only
#
# Stops at the first failing step with a non-zero exit status. Checks that
# could not run (a missing tool outside CI) are listed at the end; with CI
# set they fail instead. Test output goes to target/test-logs/ and is shown
# only for a failing step. Cross tools come from scripts/setup.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "test.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

AARCH64=aarch64-unknown-linux-musl
STEP=0
TOTAL=$((QUICK ? 4 : 8))
SUMMARY=()

# Tests that cannot run a check append a `SKIPPED: test: why` line here
# (tests/deploy.rs); printed at the end, so a skip is never a silent pass.
SKIPPED_FILE="$(mktemp)"
export MIKROTIK_EDGE_SKIPPED_FILE="$SKIPPED_FILE"
# Test binaries stopped at their time limit (scripts/test-limit.sh).
HUNG_FILE="$(mktemp)"
export TEST_LIMIT_REPORT="$HUNG_FILE"
trap 'rm -f "$SKIPPED_FILE" "$HUNG_FILE"' EXIT
LOGS=target/test-logs
mkdir -p "$LOGS"

skipped_summary() {
    if [ -s "$HUNG_FILE" ]; then
        echo "== test binaries stopped at their time limit (scripts/test-limit.sh):"
        sed 's/^/   /' "$HUNG_FILE"
    fi
    if [ -s "$SKIPPED_FILE" ]; then
        echo "== skipped checks ($(sort -u "$SKIPPED_FILE" | wc -l)); install what they name (scripts/setup.sh):"
        sort -u "$SKIPPED_FILE" | sed 's/^/   /'
    else
        echo "== no check skipped"
    fi
}

# step NAME CMD...: print a header, run CMD, stop on failure, record timing.
step() {
    local name="$1"
    shift
    STEP=$((STEP + 1))
    echo
    echo "================================================================"
    echo "== [$STEP/$TOTAL] $name"
    echo "== \$ $*"
    echo "================================================================"
    local start=$SECONDS
    if ! "$@"; then
        echo
        echo "test.sh: FAILED at step $STEP/$TOTAL: $name ($((SECONDS - start))s)" >&2
        skipped_summary >&2
        exit 1
    fi
    SUMMARY+=("$(printf '%4ds  %s' $((SECONDS - start)) "$name")")
}

# logged NAME CMD...: runs CMD with its output in $LOGS/NAME.log; prints
# only the test result lines; when CMD fails, the failing test binary's
# output (its failed tests' agent logs included).
logged() {
    local log="$LOGS/$1.log"
    shift
    echo "(full output: $log)"
    if "$@" >"$log" 2>&1; then
        grep -E '^(test result:|SKIPPED:)' "$log" || true
        return 0
    fi
    # The failing test binary's part: its failures with their agent logs.
    awk '/^ +Running /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$log"
    echo "test.sh: the whole output is in $log" >&2
    return 1
}

# The RouterOS images of the three dist/ binaries: build them, take each
# image's binary back out of its layer and run it (under qemu for arm64/arm).
container_images() {
    local out=target/container
    scripts/build-container.sh --out "$out" || return 1
    local arch runner bin version
    for arch in arm64 arm amd64; do
        case "$arch" in
            arm64) runner=qemu-aarch64-static ;;
            arm) runner=qemu-arm-static ;;
            amd64) runner="" ;;
        esac
        bin="$out/mikrotik-edge-$arch.bin"
        tar -xOf "$out/mikrotik-edge-$arch.tar" --wildcards '*/layer.tar' |
            tar -xOf - mikrotik-edge >"$bin" || return 1
        chmod 0755 "$bin"
        version="$(${runner:+"$runner"} "$bin" --version)" || return 1
        echo "  $arch: $version${runner:+ (under $runner)}"
        rm -f "$bin"
    done
}

if [ "$QUICK" -eq 0 ]; then
    # Idempotent: installs cross compilers, qemu and rustup targets once.
    scripts/setup.sh
fi
step "rustfmt" cargo fmt --all -- --check
step "clippy (all targets, all features)" cargo clippy --all-targets --all-features -- -D warnings
# The module tour and its links (a link to a private item is a warning).
step "rustdoc" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

if [ "$QUICK" -eq 0 ]; then
    # Before the tests: tests/deploy.rs checks the images of dist/ binaries
    # (with CI set, a missing dist/ is a failure).
    step "release builds (scripts/build.sh)" scripts/build.sh
fi
# Every test binary runs under a time limit (scripts/test-limit.sh): a hang
# fails its step, naming the test, instead of stalling CI.
LIMIT="$PWD/scripts/test-limit.sh"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
HOST_RUNNER="CARGO_TARGET_$(echo "$HOST" | tr 'a-z-' 'A-Z_')_RUNNER"
step "tests, native" logged native env "$HOST_RUNNER=$LIMIT" cargo test --all-features

if [ "$QUICK" -eq 0 ]; then
    missing=()
    [ -d "$(rustc --print sysroot)/lib/rustlib/$AARCH64/lib" ] || missing+=("rust target $AARCH64")
    command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(aarch64-linux-gnu-gcc)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-aarch64-static)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "test.sh: missing for the $AARCH64 steps: ${missing[*]}" >&2
        echo "test.sh: run scripts/setup.sh (or use --quick to skip cross steps)" >&2
        exit 1
    fi
    # Test binaries run under qemu via the runner in .cargo/config.toml;
    # integration tests prefix the binaries they spawn with this variable.
    export MIKROTIK_EDGE_TEST_RUNNER=qemu-aarch64-static
    step "tests, $AARCH64: build" cargo test --all-features --target "$AARCH64" --no-run
    step "tests, $AARCH64: run under qemu" logged "$AARCH64" \
        env "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=$LIMIT qemu-aarch64-static" \
        cargo test --all-features --target "$AARCH64"
    unset MIKROTIK_EDGE_TEST_RUNNER
    step "container images" container_images
fi

echo
echo "================================================================"
echo "== all $TOTAL steps passed"
printf '   %s\n' "${SUMMARY[@]}"
skipped_summary
echo "================================================================"
