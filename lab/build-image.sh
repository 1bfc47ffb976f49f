#!/usr/bin/env bash
# Builds the sesdf.esus lab image: a Debian 12 UBS local server with systemd as PID 1 and the
# PEC e-SUS test double's installers under /srv/pec-installers. No container registry is used:
#   1. base image  = debootstrap of Debian 12 + lab/packages.txt, imported with `podman import`
#   2. lab image   = lab/Containerfile on top of the base: builds the PEC double from tests/pec_double
# Each stage is cached by a hash of its inputs; a second run with unchanged inputs does nothing.
# Usage: lab/build-image.sh [--print-image]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export CONTAINERS_CONF="$here/containers.conf"
suite=${LAB_SUITE:-bookworm}
mirror=${LAB_MIRROR:-http://deb.debian.org/debian}
build_dir=${LAB_BUILD_DIR:-$repo/build/lab}
base_repo=localhost/sesdf-esus-base
lab_repo=localhost/sesdf-esus-lab

log() { printf '[lab] %s\n' "$*" >&2; }

need_pkgs=()
command -v podman >/dev/null || need_pkgs+=(podman)
command -v runc >/dev/null || need_pkgs+=(runc)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]} with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

packages=$(grep -Ev '^\s*(#|$)' "$here/packages.txt" | tr '\n' ' ')
base_hash=$( { echo "$suite $mirror"; cat "$here/packages.txt"; sed -n '/^# --- base stage ---/,/^# --- end base stage ---/p' "$0"; } \
  | sha256sum | cut -c1-16)
lab_hash=$( { echo "$base_hash"; cat "$here/Containerfile";
  (cd "$repo" && find tests/pec_double -type f ! -path '*/out/*' ! -name '*.class' | LC_ALL=C sort | xargs sha256sum); } \
  | sha256sum | cut -c1-16)

if [[ "${1:-}" == "--print-image" ]]; then echo "$lab_repo:$lab_hash"; exit 0; fi

if podman image exists "$lab_repo:$lab_hash"; then
  podman tag "$lab_repo:$lab_hash" "$lab_repo:latest"
  log "lab image up to date: $lab_repo:$lab_hash"
  exit 0
fi

# --- base stage ---
if ! podman image exists "$base_repo:$base_hash"; then
  rootfs="$build_dir/rootfs-$base_hash"
  log "debootstrap $suite into $rootfs (a few minutes)"
  rm -rf "$rootfs"; mkdir -p "$build_dir"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" >"$build_dir/debootstrap.log" 2>&1 \
    || { tail -20 "$build_dir/debootstrap.log" >&2; log "debootstrap failed: see $build_dir/debootstrap.log"; exit 1; }
  cat >"$rootfs/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SRC
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
  log "installing lab packages: $packages"
  chroot "$rootfs" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages" \
    >"$build_dir/apt.log" 2>&1 || { tail -30 "$build_dir/apt.log" >&2; log "package install failed"; exit 1; }
  umount "$rootfs/proc"; trap - EXIT
  chroot "$rootfs" /bin/sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d; : > /etc/machine-id'
  rm -f "$rootfs/etc/resolv.conf"
  log "importing base image $base_repo:$base_hash"
  # --one-file-system: a pseudo file system still mounted in the tree (proc) is never archived
  tar -C "$rootfs" --numeric-owner --one-file-system -c . | podman import --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' - "$base_repo:$base_hash" >/dev/null
  rm -rf "$rootfs"
fi
# --- end base stage ---

log "building lab image $lab_repo:$lab_hash"
mkdir -p "$build_dir"
podman build --network=host --build-arg "BASE=$base_repo:$base_hash" -f "$here/Containerfile" \
  -t "$lab_repo:$lab_hash" "$repo/tests/pec_double" >"$build_dir/build.log" 2>&1 \
  || { tail -30 "$build_dir/build.log" >&2; log "lab image build failed: see $build_dir/build.log"; exit 1; }
podman tag "$lab_repo:$lab_hash" "$lab_repo:latest"
log "lab image ready: $lab_repo:$lab_hash (also $lab_repo:latest)"
