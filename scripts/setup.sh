#!/usr/bin/env bash
# Install the cross toolchain for scripts/build.sh and scripts/test.sh on
# Debian 12 (bookworm). Idempotent and quiet: reruns only check, and output
# is shown only when something fails. Needs root or sudo for apt-get, and
# rustup (https://rustup.rs) for the Rust parts.
set -euo pipefail

cd "$(dirname "$0")/.."

# Every package the build and the tests need, named explicitly: with
# --no-install-recommends apt would skip the cross libc headers that `ring`
# needs (bits/libc-header-start.h), so they are listed here.
APT_PACKAGES=(
    build-essential pkg-config
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    musl-tools qemu-user-static file openssl ca-certificates
    postgresql postgresql-client
    chromium
    systemd
    time                # GNU time: peak RSS of whole commands in scripts/bench.sh
)
RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
RUST_COMPONENTS=(rustfmt clippy)

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

die() {
    echo "setup.sh: error: $*" >&2
    exit 1
}

# Run quietly; on failure show the command's output and stop.
quiet() {
    if ! "$@" >"$LOG" 2>&1; then
        echo "setup.sh: command failed: $*" >&2
        cat "$LOG" >&2
        exit 1
    fi
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null; then
    SUDO=(sudo)
else
    SUDO=()
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

APT_UPDATED=0
apt_install() {
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "need root or sudo to install: $*"
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        quiet "${SUDO[@]}" apt-get update -q
        APT_UPDATED=1
    fi
    quiet "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"
}

command -v dpkg-query >/dev/null || die "this script supports Debian/Ubuntu (dpkg/apt) only"
command -v rustup >/dev/null || die "rustup not found; install it from https://rustup.rs first"

# 1. apt packages, only those not yet installed.
missing=()
for p in "${APT_PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# 2. rustup components and targets for the active toolchain.
have_components="$(rustup component list --installed)"
for c in "${RUST_COMPONENTS[@]}"; do
    if ! grep -q "^$c" <<<"$have_components"; then
        echo "setup.sh: rustup component add $c"
        quiet rustup component add "$c"
    fi
done

have_targets="$(rustup target list --installed)"
for t in "${RUST_TARGETS[@]}"; do
    grep -qx "$t" <<<"$have_targets" && continue
    echo "setup.sh: rustup target add $t"
    quiet rustup target add "$t"
done

exit 0
