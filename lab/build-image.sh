#!/usr/bin/env bash
# Builds the lab's systemd base image from Debian's archive with debootstrap
# and imports it into the local Docker engine. No registry is involved.
# The image carries a label with the hash of this recipe: when it matches,
# the existing image is reused and nothing is built.
set -euo pipefail

readonly IMAGE=${FLOATIP_IMAGE:-floatip-base:bookworm}
readonly SUITE=bookworm
readonly INCLUDE=python3,python3-apt,iproute2,procps,systemd,systemd-sysv,dbus,iputils-ping,ca-certificates
readonly HOST_SOURCES=/etc/apt/sources.list.d/debian.sources

die() { printf 'floatip: %s\n' "$*" >&2; exit 1; }
say() { printf 'floatip: %s\n' "$*"; }

recipe_hash() {
  { cat "$0"; [ -r "$HOST_SOURCES" ] && cat "$HOST_SOURCES"; } | sha256sum | cut -c1-16
}

# The first Debian archive URI this machine already uses, unless given.
debian_mirror() {
  if [ -n "${FLOATIP_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$FLOATIP_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$( { [ -r "$HOST_SOURCES" ] && awk '$1 == "URIs:" { print $2 }' "$HOST_SOURCES"
           cat /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" && $0 !~ /security/ { print $2 }'
         } | grep -v -- '-security' | head -n 1 || true)
  [ -n "$uri" ] || die "no Debian archive found in $HOST_SOURCES or /etc/apt/sources.list; set FLOATIP_DEBIAN_MIRROR to a Debian mirror URI"
  printf '%s\n' "$uri"
}

want=$(recipe_hash)
have=$(docker image inspect --format '{{ index .Config.Labels "floatip.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$want" ]; then
  say "image $IMAGE is up to date (recipe $want)"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "building the base image needs root (debootstrap); run it as root"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing; run 'lab/host-setup.sh packages' first"
mirror=$(debian_mirror)
root=$(mktemp -d /var/tmp/floatip-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

say "building $IMAGE from $SUITE with debootstrap (about a minute)"
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 ||
  { tail -n 20 "$root.log" >&2; rm -f "$root.log"; die "debootstrap failed (last lines above)"; }
rm -f "$root.log"

# Inside the lab, apt uses the same archive (with updates and security) as
# this machine, so roles install packages as they would on a real server.
if [ -r "$HOST_SOURCES" ]; then
  cp "$HOST_SOURCES" "$root/etc/apt/sources.list.d/debian.sources"
  : >"$root/etc/apt/sources.list"
fi
# A container has no consoles or hardware to wait for.
for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
            systemd-remount-fs.service sys-kernel-debug.mount; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# Docker mounts /proc/sys read-only; a real server's is writable, and roles
# set (network-namespaced) sysctls there. Remount it early in boot, before
# systemd-sysctl applies /etc/sysctl.d.
cat >"$root/etc/systemd/system/floatip-lab-procsys.service" <<'UNIT'
[Unit]
Description=Make /proc/sys writable as on a real host (floatip lab)
DefaultDependencies=no
Before=systemd-sysctl.service sysinit.target

[Service]
Type=oneshot
ExecStart=/bin/mount -o remount,rw /proc/sys

[Install]
WantedBy=sysinit.target
UNIT
ln -sf ../floatip-lab-procsys.service "$root/etc/systemd/system/sysinit.target.wants/floatip-lab-procsys.service"
: >"$root/etc/machine-id"
# No package lists in the image, and their folder dated to the epoch, so a
# role's apt cache_valid_time sees a cache that was never updated.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
touch -d @0 "$root/var/lib/apt/lists"

tar -C "$root" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -c 'ENV container=docker' \
  -c "LABEL floatip.recipe=$want" \
  - "$IMAGE" >/dev/null
# The image this one replaces is left untagged: drop it (only ours carry
# the label).
docker image prune -f --filter label=floatip.recipe >/dev/null
say "image $IMAGE built (recipe $want)"
