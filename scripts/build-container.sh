#!/usr/bin/env bash
# Build RouterOS container images of the agent, one tarball per architecture,
# from the static binaries that scripts/build.sh puts in dist/.
#
#   scripts/build-container.sh                     arm64, arm and amd64
#   scripts/build-container.sh arm64              one architecture
#   scripts/build-container.sh --binary amd64=PATH --out DIR amd64
#
# Options:
#   --binary ARCH=PATH   use PATH as the binary for ARCH (default
#                        dist/mikrotik-edge-<target>, see below)
#   --out DIR            where to write the tarballs (default dist/)
#   --tag NAME:TAG       image name (default mikrotik-edge:<Cargo.toml version>)
#   -h, --help           this text
#
#   ARCH    target (binary)                   image architecture
#   arm64   aarch64-unknown-linux-musl        arm64 (variant v8)
#   arm     armv7-unknown-linux-gnueabihf     arm (variant v7)
#   amd64   x86_64-unknown-linux-musl         amd64
#
# Output: DIR/mikrotik-edge-<ARCH>.tar, a `docker save` style archive
# (manifest.json, repositories, the image config, one layer.tar) that
# RouterOS imports with `/container add file=mikrotik-edge-<ARCH>.tar`, as
# does `docker load`. Built with bash, GNU tar and sha256sum only: no Docker
# daemon, no network. Deterministic: the same binary gives the same bytes
# (mtime 0, numeric owners, sorted entries, compact JSON).
#
# The image: /mikrotik-edge (root-owned, 0755) and /data (65534:65534, 0700),
# running as user 65534:65534 with Entrypoint ["/mikrotik-edge","run"]. The
# config comes from environment variables (RouterOS /container/envs); state
# is /data/state.redb on the /data volume (RouterOS /container/mounts).
set -euo pipefail

cd "$(dirname "$0")/.."

ALL_ARCHES=(arm64 arm amd64)
USER_ID=65534
OUT=dist
TAG=""
declare -A BINARY=()

die() {
    echo "build-container.sh: error: $*" >&2
    exit 1
}

target_for() {
    case "$1" in
        arm64) echo aarch64-unknown-linux-musl ;;
        arm) echo armv7-unknown-linux-gnueabihf ;;
        amd64) echo x86_64-unknown-linux-musl ;;
        *) return 1 ;;
    esac
}
variant_for() {
    case "$1" in
        arm64) echo v8 ;;
        arm) echo v7 ;;
        *) echo "" ;;
    esac
}
# ELF e_machine of each architecture: EM_AARCH64, EM_ARM, EM_X86_64.
elf_machine_for() {
    case "$1" in
        arm64) echo 183 ;;
        arm) echo 40 ;;
        amd64) echo 62 ;;
    esac
}

# add_binary ARCH=PATH
add_binary() {
    local arch="${1%%=*}" path="${1#*=}"
    [ "$arch" != "$1" ] && [ -n "$path" ] || die "--binary expects ARCH=PATH, got '$1'"
    target_for "$arch" >/dev/null || die "unknown architecture '$arch' in --binary (one of: ${ALL_ARCHES[*]})"
    BINARY[$arch]="$path"
}

ARCHES=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --binary | --out | --tag)
            [ "$#" -ge 2 ] || die "$1 needs a value"
            case "$1" in
                --binary) add_binary "$2" ;;
                --out) OUT="$2" ;;
                --tag) TAG="$2" ;;
            esac
            shift 2
            ;;
        --binary=*) add_binary "${1#--binary=}" && shift ;;
        --out=*) OUT="${1#--out=}" && shift ;;
        --tag=*) TAG="${1#--tag=}" && shift ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*) die "unknown option '$1' (try --help)" ;;
        *)
            target_for "$1" >/dev/null || die "unknown architecture '$1' (one of: ${ALL_ARCHES[*]})"
            ARCHES+=("$1")
            shift
            ;;
    esac
done
[ "${#ARCHES[@]}" -gt 0 ] || ARCHES=("${ALL_ARCHES[@]}")

command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
tar --version 2>/dev/null | grep -q "GNU tar" || die "GNU tar is needed (for --sort, --mtime, --owner)"

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[ -n "$VERSION" ] || die "no version in Cargo.toml"
[ -n "$TAG" ] || TAG="mikrotik-edge:$VERSION"
[[ "$TAG" =~ ^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "bad --tag '$TAG' (expected name:tag)"
REPO="${TAG%:*}"
TAGNAME="${TAG##*:}"

# Deterministic tar: no timestamps, numeric owners, sorted names, ustar.
TAR_FLAGS=(--format=ustar --sort=name --mtime=@0 --numeric-owner --no-acls --no-xattrs --no-selinux)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$OUT"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

build_one() {
    local arch="$1"
    local target bin variant machine
    target="$(target_for "$arch")"
    variant="$(variant_for "$arch")"
    machine="$(elf_machine_for "$arch")"
    bin="${BINARY[$arch]:-dist/mikrotik-edge-$target}"
    [ -f "$bin" ] || die "$bin not found (build it with scripts/build.sh $target, or pass --binary $arch=PATH)"

    # Refuse a binary of the wrong architecture: RouterOS would only say
    # "exec format error" at start.
    [ "$(head -c 4 "$bin" | od -An -c | tr -d ' \n')" = "177ELF" ] || die "$bin is not an ELF binary"
    local got
    got="$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')"
    [ "$got" = "$machine" ] || die "$bin is not a $arch binary (ELF machine $got, expected $machine)"
    if command -v file >/dev/null; then
        case "$(file -b "$bin")" in
            *"statically linked"* | *"static-pie linked"*) ;;
            *) echo "build-container.sh: warning: $bin is not statically linked; it will not run in the image on a router" >&2 ;;
        esac
    fi

    local dir="$WORK/$arch"
    mkdir -p "$dir/rootfs/data" "$dir/image"
    cp "$bin" "$dir/rootfs/mikrotik-edge"
    chmod 0755 "$dir/rootfs/mikrotik-edge"
    chmod 0700 "$dir/rootfs/data"

    # The layer: the binary owned by root, /data by the agent's user.
    tar "${TAR_FLAGS[@]}" --owner=0 --group=0 -C "$dir/rootfs" -cf "$dir/layer.tar" mikrotik-edge
    tar "${TAR_FLAGS[@]}" --owner="$USER_ID" --group="$USER_ID" -C "$dir/rootfs" -rf "$dir/layer.tar" data
    local layer_id
    layer_id="$(sha256 "$dir/layer.tar")"

    local created='"1970-01-01T00:00:00Z"'
    local variant_json=""
    [ -n "$variant" ] && variant_json=",\"variant\":\"$variant\""
    local config_body
    config_body="{\"User\":\"$USER_ID:$USER_ID\""
    config_body+=",\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"MIKROTIK_EDGE_STATE_PATH=/data/state.redb\",\"MIKROTIK_EDGE_HTTP_LISTEN=0.0.0.0:8080\"]"
    config_body+=",\"Entrypoint\":[\"/mikrotik-edge\",\"run\"]"
    config_body+=",\"WorkingDir\":\"/data\""
    config_body+=",\"Volumes\":{\"/data\":{}}"
    config_body+=",\"ExposedPorts\":{\"8080/tcp\":{}}"
    config_body+=",\"Labels\":{\"org.opencontainers.image.title\":\"mikrotik-edge\",\"org.opencontainers.image.version\":\"$VERSION\"}}"

    printf '%s' "{\"architecture\":\"$arch\",\"os\":\"linux\"$variant_json,\"created\":$created,\"config\":$config_body,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer_id\"]},\"history\":[{\"created\":$created,\"created_by\":\"scripts/build-container.sh\"}]}" >"$dir/config.json"
    local config_id
    config_id="$(sha256 "$dir/config.json")"

    # docker save layout: manifest.json is what RouterOS and `docker load`
    # read; repositories and <layer>/{VERSION,json} are the older format's
    # files, kept for importers that still look for them.
    local img="$dir/image"
    mkdir -p "$img/$layer_id"
    mv "$dir/config.json" "$img/$config_id.json"
    mv "$dir/layer.tar" "$img/$layer_id/layer.tar"
    printf '1.0' >"$img/$layer_id/VERSION"
    printf '%s' "{\"id\":\"$layer_id\",\"created\":$created,\"os\":\"linux\",\"architecture\":\"$arch\"$variant_json,\"config\":$config_body}" >"$img/$layer_id/json"
    printf '%s' "[{\"Config\":\"$config_id.json\",\"RepoTags\":[\"$TAG\"],\"Layers\":[\"$layer_id/layer.tar\"]}]" >"$img/manifest.json"
    printf '%s' "{\"$REPO\":{\"$TAGNAME\":\"$layer_id\"}}" >"$img/repositories"
    find "$img" -type d -exec chmod 0755 {} +
    find "$img" -type f -exec chmod 0644 {} +

    local out="$OUT/mikrotik-edge-$arch.tar"
    (cd "$img" && tar "${TAR_FLAGS[@]}" --owner=0 --group=0 -cf "$WORK/out.tar" manifest.json repositories "$config_id.json" "$layer_id")
    mv "$WORK/out.tar" "$out"
    local size
    size="$(stat -c %s "$out")"
    printf '  %-36s %9d bytes  %s/%s%s  sha256:%s\n' "$out" "$size" linux "$arch" "${variant:+/$variant}" "$(sha256 "$out")"
}

echo "==> container images ($TAG) in $OUT/"
for arch in "${ARCHES[@]}"; do
    build_one "$arch"
done
