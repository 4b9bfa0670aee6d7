#!/usr/bin/env bash
# Prepares the control machine for the lab and the tests: checks the
# prerequisites, installs what is missing from the distribution's archive
# and makes sure a Docker engine answers. Safe to run any number of times.
#   lab/host-setup.sh packages   host packages (python3-venv, docker.io, debootstrap, haproxy, mercurial, nftables)
#   lab/host-setup.sh engine     a running Docker engine
set -euo pipefail

readonly MIN_FREE_GIB=${FLOATIP_MIN_FREE_GIB:-8}
readonly DOCKERD_LOG=${FLOATIP_DOCKERD_LOG:-/var/log/floatip-dockerd.log}

die() { printf 'floatip: %s\n' "$*" >&2; exit 1; }
say() { printf 'floatip: %s\n' "$*"; }

engine_answers() { docker info >/dev/null 2>&1; }

is_debian_like() {
  [ -r /etc/os-release ] && . /etc/os-release && case " ${ID:-} ${ID_LIKE:-} " in
    *" debian "*|*" ubuntu "*) return 0 ;;
  esac
  return 1
}

check_root() {
  [ "$(id -u)" -eq 0 ] || die "this needs root (it installs packages and runs the Docker engine); run it as root, e.g. 'sudo make $*'"
}

check_disk() {
  local free_kib
  free_kib=$(df -Pk "${1:-/var/lib}" | awk 'NR == 2 { print $4 }')
  [ "$free_kib" -ge $((MIN_FREE_GIB * 1024 * 1024)) ] ||
    die "only $((free_kib / 1024 / 1024)) GiB free under ${1:-/var/lib}; the lab needs ${MIN_FREE_GIB} GiB (images, containers, virtualenv)"
}

# Debian's python3 imports ensurepip without python3-venv but cannot make a
# virtualenv with pip: only a real attempt tells.
can_make_venv() {
  local dir rc
  dir=$(mktemp -d)
  python3 -m venv "$dir/venv" >/dev/null 2>&1 && rc=0 || rc=1
  rm -rf "$dir"
  return "$rc"
}

# Packages this machine lacks, by the command or file that shows each one.
missing_packages() {
  local missing=()
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  # The haproxy modules' tests run a real haproxy on this machine.
  command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
  # The config sync's tests run a real Mercurial on this machine.
  command -v hg >/dev/null 2>&1 || missing+=(mercurial)
  # The firewall module's tests load its table with a real nft.
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
  can_make_venv || missing+=(python3-venv)
  if ! engine_answers && ! command -v dockerd >/dev/null 2>&1; then
    missing+=(docker.io)
  fi
  printf '%s\n' "${missing[@]}"
}

packages() {
  local missing
  check_disk /var/lib
  mapfile -t missing < <(missing_packages | sed '/^$/d')
  [ "${#missing[@]}" -eq 0 ] && { say "host packages present"; return 0; }
  check_root packages
  is_debian_like || die "missing ${missing[*]} and this is not Debian or Ubuntu: install them (or a Docker engine) yourself, then run this again"
  say "installing ${missing[*]} from the distribution's archive"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null ||
    die "apt-get update failed: the Debian archive in /etc/apt/sources.list* is not reachable from here"
  # Without systemd on the host the package's own service start fails
  # harmlessly; 'engine' starts dockerd itself.
  apt-get install -y -qq "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed (see the messages above)"
}

# Every systemd in a lab container takes inotify instances from root's
# share on this machine, 128 by Debian's default: with some twenty
# containers up (make bench: six failover labs and a Molecule lab) a new
# one's systemd fails "to create inotify object: Too many open files" and
# never finishes booting. Raised for the running kernel, never lowered.
readonly INOTIFY_INSTANCES=1024
inotify_room() {
  local have
  have=$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 0)
  [ "$have" -ge "$INOTIFY_INSTANCES" ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    sysctl -q -w fs.inotify.max_user_instances="$INOTIFY_INSTANCES"
    say "fs.inotify.max_user_instances raised from $have to $INOTIFY_INSTANCES for the lab's containers"
  else
    say "warning: fs.inotify.max_user_instances is $have; with many lab containers up, set it to $INOTIFY_INSTANCES as root"
  fi
}

engine() {
  inotify_room
  if engine_answers; then
    say "Docker engine answers"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || die "no Docker engine answers and dockerd is not installed; run 'lab/host-setup.sh packages' first"
  check_root engine
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd runs but does not answer yet; waiting"
  else
    say "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the engine must outlive the make run that started it.
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    engine_answers && { say "Docker engine answers"; return 0; }
    sleep 1
  done
  die "dockerd did not answer within 60 s; see $DOCKERD_LOG"
}

case "${1:-}" in
  packages) packages ;;
  engine) engine ;;
  *) die "usage: $0 packages|engine" ;;
esac
