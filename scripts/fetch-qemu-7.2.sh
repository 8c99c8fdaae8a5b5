#!/bin/bash
# Unpacks Debian bookworm's QEMU 7.2 into build/qemu-7.2, beside the system's
# QEMU 10 (bookworm-backports), so the VM tests can run both. Nothing is
# installed: the .debs are fetched with `apt-get download` and unpacked with
# `dpkg -x`. Libraries 7.2 needs that the host lacks go to build/qemu-7.2/libs
# (test/vm/qemu.ts puts that on LD_LIBRARY_PATH).
#
#   scripts/fetch-qemu-7.2.sh [--out DIR] [--force]
#
# Run it as:  build/qemu-7.2/usr/bin/qemu-system-x86_64
#   with QEMU_MODULE_DIR=build/qemu-7.2/usr/lib/x86_64-linux-gnu/qemu (TCG is a
#   module in Debian's 7.2 and must come from the same build)
#   and -L build/qemu-7.2/usr/share/qemu -L build/qemu-7.2/usr/share/seabios
# Idempotent: does nothing when DIR already holds a working 7.2.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/build/qemu-7.2"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fetch-qemu-7.2: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() { echo "fetch-qemu-7.2: $*" >&2; exit 1; }

suite=bookworm
packages=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
moddir_rel=usr/lib/x86_64-linux-gnu/qemu

# run_qemu DIR ARGS...: run the unpacked QEMU with the environment it needs.
run_qemu() {
  local dir=$1; shift
  QEMU_MODULE_DIR="$dir/$moddir_rel" LD_LIBRARY_PATH="$dir/libs" "$dir/usr/bin/qemu-system-x86_64" "$@"
}

# missing_libs DIR: sonames ldd cannot resolve for the binary and its TCG module.
missing_libs() {
  local dir=$1 f
  for f in "$dir/usr/bin/qemu-system-x86_64" "$dir/$moddir_rel"/accel-tcg-x86_64.so; do
    LD_LIBRARY_PATH="$dir/libs" ldd "$f" | awk '/not found/ { print $1 }'
  done | sort -u
}

if [ $force = 0 ] && [ -x "$out/usr/bin/qemu-system-x86_64" ] &&
  version=$(run_qemu "$out" --version 2> /dev/null) && [[ $version == *"version 7.2"* ]]; then
  echo "fetch-qemu-7.2: $out already holds: ${version%%$'\n'*}"
  exit 0
fi

command -v apt-get > /dev/null || die "apt-get not found (Debian only)"
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$out.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root/libs"

# -o APT::Sandbox::User=root: as root, apt's _apt user cannot write here.
download() {
  (cd "$work/debs" && apt-get download -q -o APT::Sandbox::User=root "$@") ||
    die "apt-get download $* failed (is the $suite suite in apt's sources, and apt-get update done?)"
}
pins=()
for p in "${packages[@]}"; do pins+=("$p/$suite"); done
download "${pins[@]}"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
[ -x "$work/root/usr/bin/qemu-system-x86_64" ] || die "qemu-system-x86 did not unpack a qemu-system-x86_64"

# Runtime libraries the host lacks: fetch the 7.2 package's library
# dependencies that are not installed and keep only their shared objects.
if [ -n "$(missing_libs "$work/root")" ]; then
  deps=$(dpkg-deb -f "$work"/debs/qemu-system-x86_*.deb Depends | tr ',' '\n' |
    sed -E 's/\(.*\)//; s/\|.*//; s/ //g' | grep -E '^(lib|zlib)' || true)
  need=()
  for d in $deps; do
    dpkg-query -W -f '${Status}' "$d" 2> /dev/null | grep -q 'install ok installed' || need+=("$d/$suite")
  done
  if [ ${#need[@]} -gt 0 ]; then
    mkdir -p "$work/libdebs" "$work/libroot"
    (cd "$work/libdebs" && apt-get download -q -o APT::Sandbox::User=root "${need[@]}") ||
      die "apt-get download ${need[*]} failed"
    for deb in "$work"/libdebs/*.deb; do dpkg -x "$deb" "$work/libroot"; done
    find "$work/libroot" -name '*.so*' \( -type f -o -type l \) -exec cp -a {} "$work/root/libs/" \;
  fi
  still=$(missing_libs "$work/root")
  [ -z "$still" ] || die "QEMU 7.2 still lacks: $(echo $still)"
fi

version=$(run_qemu "$work/root" --version) || die "the unpacked QEMU does not run"
[[ $version == *"version 7.2"* ]] || die "unpacked QEMU is not 7.2: ${version%%$'\n'*}"
run_qemu "$work/root" -accel help | grep -q tcg || die "the unpacked QEMU has no TCG accelerator"

rm -rf "$out"
mv "$work/root" "$out"
echo "fetch-qemu-7.2: $out: ${version%%$'\n'*}"
