#!/usr/bin/env bash
# Install (or uninstall) mikrotik-edge as a systemd service.
#
#   sudo scripts/install.sh                      binary from dist/ for this machine
#   sudo scripts/install.sh --binary PATH        a binary built or downloaded elsewhere
#   sudo scripts/install.sh --instance site1     set up mikrotik-edge@site1 (several routers)
#   sudo scripts/install.sh --uninstall          remove everything but the state
#
# Options:
#   --binary PATH     the agent binary to install (default:
#                     dist/mikrotik-edge-<target> for `uname -m`)
#   --instance NAME   create /etc/mikrotik-edge/NAME/{config.toml,router-password}
#                     for the template unit mikrotik-edge@NAME instead of
#                     /etc/mikrotik-edge/{config.toml,router-password} for
#                     mikrotik-edge.service (repeatable)
#   --no-systemctl    do not run systemctl (daemon-reload, stop, disable)
#   --uninstall       stop and disable the units, remove the binary, the units
#                     and /etc/mikrotik-edge; keep the state in /var/lib
#   -h, --help        this text
#
# Installs /usr/local/bin/mikrotik-edge (0755), the units
# mikrotik-edge.service and mikrotik-edge@.service in /etc/systemd/system
# (0644), /etc/mikrotik-edge (0750) with config.example.toml (0644), and, only
# where they do not exist yet, config.toml (0600, from the example) and an
# empty router-password credential (0600). Idempotent: a second run changes
# nothing, and an edited config or a non-empty credential is never
# overwritten. Upgrading is rerunning it with the new binary.
#
# DESTDIR=/some/root installs below that root instead (for packaging and
# tests); it implies --no-systemctl and does not need root.
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
BINDIR=/usr/local/bin
UNITDIR=/etc/systemd/system
CONFDIR=/etc/mikrotik-edge
STATEDIR=/var/lib

BINARY=""
INSTANCES=()
SYSTEMCTL=1
UNINSTALL=0

die() {
    echo "install.sh: error: $*" >&2
    exit 1
}
say() { echo "  $*"; }

while [ "$#" -gt 0 ]; do
    case "$1" in
        --binary)
            [ "$#" -ge 2 ] || die "--binary needs a path"
            BINARY="$2"
            shift 2
            ;;
        --binary=*)
            BINARY="${1#--binary=}"
            shift
            ;;
        --instance)
            [ "$#" -ge 2 ] || die "--instance needs a name"
            INSTANCES+=("$2")
            shift 2
            ;;
        --instance=*)
            INSTANCES+=("${1#--instance=}")
            shift
            ;;
        --no-systemctl)
            SYSTEMCTL=0
            shift
            ;;
        --uninstall)
            UNINSTALL=1
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done

if [ -n "$DESTDIR" ]; then
    SYSTEMCTL=0
    DESTDIR="${DESTDIR%/}"
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0 $*), or set DESTDIR to install below another root"
fi
if [ "$SYSTEMCTL" -eq 1 ] && ! command -v systemctl >/dev/null; then
    die "systemctl not found: this script installs a systemd service (use --no-systemctl to only copy files)"
fi

for name in "${INSTANCES[@]}"; do
    # Instance names become directory names and systemd instance strings:
    # keep them to characters that need no escaping anywhere.
    [[ "$name" =~ ^[A-Za-z0-9_.-]{1,64}$ && "$name" != .* ]] ||
        die "instance name '$name': use 1-64 characters from A-Z a-z 0-9 _ . - (not starting with .)"
done

# install_file MODE SRC DST: copy SRC to DST unless DST already has the same
# content and mode; atomic (rename), so a running service never sees half a file.
install_file() {
    local mode="$1" src="$2" dst="$3"
    if [ -f "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c %a "$dst")" = "${mode#0}" ]; then
        say "unchanged  $dst"
        return
    fi
    local what=installed
    [ -e "$dst" ] && what=updated
    install -m "$mode" "$src" "$dst.tmp.$$"
    mv -f "$dst.tmp.$$" "$dst"
    say "$what  $dst"
}

# ensure_dir MODE DIR
ensure_dir() {
    local mode="$1" dir="$2"
    if [ -d "$dir" ]; then
        [ "$(stat -c %a "$dir")" = "${mode#0}" ] || {
            chmod "$mode" "$dir"
            say "chmod $mode  $dir"
        }
    else
        install -d -m "$mode" "$dir"
        say "created    $dir"
    fi
}

# ensure_mode MODE FILE: fix the mode of a file whose content is the operator's.
ensure_mode() {
    local mode="$1" file="$2"
    if [ "$(stat -c %a "$file")" != "${mode#0}" ]; then
        chmod "$mode" "$file"
        say "chmod $mode  $file"
    fi
}

# config_for DIR SITE: the config and credential of one agent in DIR.
config_for() {
    local dir="$1" site="$2"
    ensure_dir 0750 "$dir"
    if [ -e "$dir/config.toml" ]; then
        ensure_mode 0600 "$dir/config.toml"
        say "kept       $dir/config.toml"
    else
        local tmp
        tmp="$(mktemp)"
        sed "s/^site_id = \"default\"/site_id = \"$site\"/" "$HERE/systemd/config.example.toml" >"$tmp"
        install -m 0600 "$tmp" "$dir/config.toml"
        rm -f "$tmp"
        say "created    $dir/config.toml (edit it)"
        NEXT_EDIT+=("$dir/config.toml")
    fi
    if [ -e "$dir/router-password" ]; then
        ensure_mode 0600 "$dir/router-password"
        if [ -s "$dir/router-password" ]; then
            say "kept       $dir/router-password"
        else
            say "kept       $dir/router-password (still empty)"
            NEXT_PASSWORD+=("$dir/router-password")
        fi
    else
        install -m 0600 /dev/null "$dir/router-password"
        say "created    $dir/router-password (empty: put the router password in it)"
        NEXT_PASSWORD+=("$dir/router-password")
    fi
}

# Target triple of the dist/ binary for this machine.
dist_binary() {
    local arch
    arch="$(uname -m)"
    case "$arch" in
        aarch64 | arm64) echo "$HERE/dist/mikrotik-edge-aarch64-unknown-linux-musl" ;;
        armv7l | armv8l) echo "$HERE/dist/mikrotik-edge-armv7-unknown-linux-gnueabihf" ;;
        x86_64 | amd64) echo "$HERE/dist/mikrotik-edge-x86_64-unknown-linux-musl" ;;
        armv6l) die "ARMv6 (Raspberry Pi Zero/1) is not supported: no binary is built for it" ;;
        *) die "no binary is built for $arch; pass one with --binary PATH" ;;
    esac
}

uninstall() {
    echo "install.sh: uninstalling mikrotik-edge from ${DESTDIR:-/}"
    if [ "$SYSTEMCTL" -eq 1 ]; then
        local units=(mikrotik-edge.service)
        local link
        for link in "$UNITDIR"/*.wants/mikrotik-edge@*.service; do
            [ -L "$link" ] && units+=("$(basename "$link")")
        done
        while read -r unit _; do
            [ -n "$unit" ] && units+=("$unit")
        done < <(systemctl list-units --all --plain --no-legend 'mikrotik-edge@*.service' 2>/dev/null || true)
        mapfile -t units < <(printf '%s\n' "${units[@]}" | sort -u)
        for unit in "${units[@]}"; do
            systemctl disable --now "$unit" >/dev/null 2>&1 && say "stopped and disabled  $unit" || true
        done
    fi
    local path
    for path in "$DESTDIR$BINDIR/mikrotik-edge" \
        "$DESTDIR$UNITDIR/mikrotik-edge.service" "$DESTDIR$UNITDIR/mikrotik-edge@.service"; do
        if [ -e "$path" ]; then
            rm -f "$path"
            say "removed    $path"
        fi
    done
    # Drop-ins made with `systemctl edit`.
    for path in "$DESTDIR$UNITDIR"/mikrotik-edge.service.d "$DESTDIR$UNITDIR"/mikrotik-edge@*.service.d; do
        if [ -d "$path" ]; then
            rm -rf "$path"
            say "removed    $path/"
        fi
    done
    if [ -d "$DESTDIR$CONFDIR" ]; then
        rm -rf "$DESTDIR$CONFDIR"
        say "removed    $DESTDIR$CONFDIR/ (config and credentials)"
    fi
    if [ "$SYSTEMCTL" -eq 1 ]; then
        systemctl daemon-reload
        systemctl reset-failed 'mikrotik-edge*' >/dev/null 2>&1 || true
    fi
    echo
    echo "State kept (events not yet uploaded are in it):"
    echo "  $DESTDIR$STATEDIR/mikrotik-edge, $DESTDIR$STATEDIR/mikrotik-edge-<instance>"
    echo "  (with DynamicUser= the files live in $DESTDIR$STATEDIR/private/)"
    echo "Delete it too with:"
    echo "  rm -rf $DESTDIR$STATEDIR/mikrotik-edge $DESTDIR$STATEDIR/mikrotik-edge-* $DESTDIR$STATEDIR/private/mikrotik-edge $DESTDIR$STATEDIR/private/mikrotik-edge-*"
}

if [ "$UNINSTALL" -eq 1 ]; then
    [ -z "$BINARY" ] && [ "${#INSTANCES[@]}" -eq 0 ] || die "--uninstall takes no --binary or --instance"
    uninstall
    exit 0
fi

[ -n "$BINARY" ] || BINARY="$(dist_binary)"
[ -f "$BINARY" ] || die "binary $BINARY not found; build it with scripts/build.sh or pass --binary PATH"
# Refuse a binary for another architecture before it replaces a working one.
# (Not with DESTDIR: a packager may well stage a foreign binary.)
if [ -z "$DESTDIR" ]; then
    "$BINARY" --version >/dev/null 2>&1 || die "$BINARY does not run on this machine ($(uname -m)): wrong architecture?"
fi
for f in mikrotik-edge.service mikrotik-edge@.service config.example.toml; do
    [ -f "$HERE/systemd/$f" ] || die "$HERE/systemd/$f missing"
done

NEXT_EDIT=()
NEXT_PASSWORD=()
echo "install.sh: installing mikrotik-edge into ${DESTDIR:-/}"
ensure_dir 0755 "$DESTDIR$BINDIR"
ensure_dir 0755 "$DESTDIR$UNITDIR"
BIN_BEFORE="$(sha256sum "$DESTDIR$BINDIR/mikrotik-edge" 2>/dev/null || true)"
install_file 0755 "$BINARY" "$DESTDIR$BINDIR/mikrotik-edge"
BIN_AFTER="$(sha256sum "$DESTDIR$BINDIR/mikrotik-edge")"
install_file 0644 "$HERE/systemd/mikrotik-edge.service" "$DESTDIR$UNITDIR/mikrotik-edge.service"
install_file 0644 "$HERE/systemd/mikrotik-edge@.service" "$DESTDIR$UNITDIR/mikrotik-edge@.service"
ensure_dir 0750 "$DESTDIR$CONFDIR"
# The reference copy is ours: refreshed on upgrade to show new keys.
install_file 0644 "$HERE/systemd/config.example.toml" "$DESTDIR$CONFDIR/config.example.toml"
if [ "${#INSTANCES[@]}" -eq 0 ]; then
    config_for "$DESTDIR$CONFDIR" default
else
    for name in "${INSTANCES[@]}"; do
        config_for "$DESTDIR$CONFDIR/$name" "$name"
    done
fi

if [ "$SYSTEMCTL" -eq 1 ]; then
    systemctl daemon-reload
    say "systemctl daemon-reload"
fi

if [ "${#INSTANCES[@]}" -eq 0 ]; then
    UNITS=(mikrotik-edge)
else
    UNITS=()
    for name in "${INSTANCES[@]}"; do UNITS+=("mikrotik-edge@$name"); done
fi
echo
echo "Next steps:"
n=1
for f in "${NEXT_EDIT[@]}"; do
    echo "  $n. edit $f (router.host, router.user, site_id; TLS: see README.md)"
    n=$((n + 1))
done
for f in "${NEXT_PASSWORD[@]}"; do
    echo "  $n. put the router password in $f:"
    printf '       sudo sh -c '"'"'umask 077; printf "%%s\\n" "PASSWORD" > %s'"'"'\n' "$f"
    n=$((n + 1))
done
echo "  $n. check the router connection:"
echo "       sudo MIKROTIK_EDGE_ROUTER_PASSWORD_FILE=${CONFDIR}${INSTANCES:+/${INSTANCES[0]}}/router-password \\"
echo "         mikrotik-edge --config ${CONFDIR}${INSTANCES:+/${INSTANCES[0]}}/config.toml check"
n=$((n + 1))
echo "  $n. start it and follow its log:"
echo "       sudo systemctl enable --now ${UNITS[*]}"
echo "       journalctl -u ${UNITS[0]} -f"
if [ -n "$BIN_BEFORE" ] && [ "$BIN_BEFORE" != "$BIN_AFTER" ]; then
    echo
    echo "The binary was upgraded: restart running agents with"
    echo "  sudo systemctl try-restart 'mikrotik-edge.service' 'mikrotik-edge@*.service'"
fi
