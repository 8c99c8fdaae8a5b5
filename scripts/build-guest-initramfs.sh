#!/bin/bash
# Builds the test guest: an initramfs made from this host's Debian packages
# (busybox-static, fio, sg3-utils, e2fsprogs, util-linux, the kernel's modules)
# plus test/vm/guest/, and a copy of the kernel it belongs to.
#
#   scripts/build-guest-initramfs.sh [--out DIR] [--kernel VERSION] [--force]
#
# Output (default DIR = build/vm): DIR/vmlinuz, DIR/initramfs.cpio.gz and
# DIR/initramfs.inputs (hash of every input). Rebuilds only when the hash of the
# inputs (this script, the guest scripts, the kernel version, the versions of
# the packages copied in) changed. Prints the two paths on success.
# Exit status: 0 built or up to date, 3 a prerequisite is missing, 1 other errors.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/build/vm"
kver=""
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --kernel) kver=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build-guest-initramfs: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

die() { echo "build-guest-initramfs: $*" >&2; exit 1; }
# Exit status 3 = a prerequisite is not installed (the tests skip locally on it).
missing() { echo "build-guest-initramfs: $*" >&2; exit 3; }

# The newest kernel in /boot (version sort: 6.10 after 6.9).
if [ -z "$kver" ]; then
  newest=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$newest" ] || missing "no /boot/vmlinuz-*: install linux-image-amd64"
  kver=${newest#/boot/vmlinuz-}
fi
kernel=/boot/vmlinuz-$kver
[ -r "$kernel" ] || missing "$kernel is missing or unreadable"
[ -d "/lib/modules/$kver" ] || missing "/lib/modules/$kver is missing"

guest="$repo/test/vm/guest"
# Tools copied into the guest: name -> must resolve on this host.
tools=(fio sg_inq sg_vpd sg_readcap sg_luns sg_unmap sg_turs mkfs.ext4 mke2fs fstrim blkdiscard)
# Drivers the guest needs (nvmet for the NVMe/TCP target guest of test/integration/nvmet-target.ts); their dependencies are added from modinfo. Soft
# dependencies are not followed (some need CPU features TCG lacks), so the
# crypto providers ext4 and crc-t10dif ask for are named here.
root_modules=(virtio_pci virtio_scsi virtio_blk scsi_common scsi_mod crc-t10dif crc64-rocksoft
  t10-pi sd_mod crc16 mbcache jbd2 crc32c_generic crct10dif_generic libcrc32c ext4)
# Loaded only by the nvmet-target scenario (the NVMe/TCP target guest of
# test/integration/nvmf-targets.ts), so the other guests boot as before.
nvmet_modules=(virtio_net nvmet nvmet_tcp)

for t in "${tools[@]}"; do
  command -v "$t" > /dev/null || missing "'$t' not found: install fio sg3-utils e2fsprogs util-linux"
done
command -v busybox > /dev/null || missing "busybox not found: install busybox-static"
busybox_path=$(command -v busybox)
ldd "$busybox_path" > /dev/null 2>&1 && missing "$busybox_path is dynamically linked: install busybox-static"
for t in cpio gzip modinfo ldd sha256sum flock; do
  command -v "$t" > /dev/null || missing "'$t' not found"
done

hash=$(
  {
    cat "${BASH_SOURCE[0]}" "$guest"/*
    echo "kernel=$kver"
    sha256sum "$kernel"
    dpkg-query -W busybox-static fio sg3-utils e2fsprogs util-linux libc6 2> /dev/null || true
  } | sha256sum | cut -d' ' -f1
)

mkdir -p "$out"
exec 9> "$out/.build.lock"
flock 9
if [ $force = 0 ] && [ -f "$out/initramfs.cpio.gz" ] && [ -f "$out/vmlinuz" ] &&
  [ "$(cat "$out/initramfs.inputs" 2> /dev/null)" = "$hash" ]; then
  echo "$out/vmlinuz"
  echo "$out/initramfs.cpio.gz"
  exit 0
fi

start=$(date +%s)
stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,mnt,etc/vhostd,lib/vhostd,tests}

# busybox and its applets; the real tools below go to /usr/{s,}bin, which come
# first in the guest's PATH.
cp "$busybox_path" "$root/bin/busybox"
for applet in $("$busybox_path" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done

# copy_with_libs FILE DEST: FILE as DEST in the guest, plus every library ldd
# lists, each at the path ldd gave.
copy_with_libs() {
  local file=$1 dest=$2 lib
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$file" "$root$dest"
  for lib in $(ldd "$file" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'); do
    if [ ! -e "$root$lib" ]; then
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    fi
  done
  if ldd "$file" | grep -q 'not found'; then
    missing "$file needs libraries this host lacks: $(ldd "$file" | grep 'not found' | tr -s ' \t' ' ')"
  fi
}
for t in "${tools[@]}"; do
  # Under its own name in /usr/bin (mkfs.ext4 is a link to mke2fs on the host).
  copy_with_libs "$(readlink -f "$(command -v "$t")")" "/usr/bin/$t"
done
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"

# Kernel modules in dependency order (each after what it depends on).
declare -A seen=()
module_order=()
add_module() {
  local name=$1 deps file dep
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  file=$(modinfo -k "$kver" -F filename "$name" 2> /dev/null | head -n 1) ||
    die "module '$name' not found for kernel $kver"
  [ -n "$file" ] || die "module '$name' not found for kernel $kver"
  # Built-in modules have no file to load.
  case "$file" in (builtin*|"(builtin)") return 0 ;; esac
  deps=$(modinfo -k "$kver" -F depends "$name")
  for dep in ${deps//,/ }; do add_module "$dep"; done
  module_order+=("$file")
}
# install_modules LIST: copies module_order's files in and lists them, in order, in LIST.
install_modules() {
  local list=$1 file rel dest
  : > "$root$list"
  for file in "${module_order[@]}"; do
    rel=${file#/lib/modules/$kver/}
    rel=${rel#/usr/lib/modules/$kver/}
    case "$file" in
      *.ko) dest="/lib/modules/$kver/$rel" ;;
      *.ko.xz) dest="/lib/modules/$kver/${rel%.xz}" ;;
      *.ko.zst) dest="/lib/modules/$kver/${rel%.zst}" ;;
      *.ko.gz) dest="/lib/modules/$kver/${rel%.gz}" ;;
      *) die "unexpected module file name $file" ;;
    esac
    mkdir -p "$root$(dirname "$dest")"
    case "$file" in
      *.ko) cp "$file" "$root$dest" ;;
      *.ko.xz) xz -dc "$file" > "$root$dest" ;;
      *.ko.zst) zstd -qdc "$file" > "$root$dest" ;;
      *.ko.gz) gzip -dc "$file" > "$root$dest" ;;
    esac
    echo "$dest" >> "$root$list"
  done
}
for m in "${root_modules[@]}"; do add_module "$m"; done
install_modules /etc/vhostd/modules
module_count=${#module_order[@]}
# Only what the root modules did not already bring.
module_order=()
for m in "${nvmet_modules[@]}"; do add_module "$m"; done
install_modules /etc/vhostd/modules-nvmet
module_count=$((module_count + ${#module_order[@]}))

# The guest's own scripts.
install -m 0755 "$guest/init" "$root/init"
for f in "$guest"/*.sh; do
  case "$(basename "$f")" in
    report.sh|disk-checks.sh) install -m 0644 "$f" "$root/lib/vhostd/" ;;
    *) install -m 0644 "$f" "$root/tests/" ;;
  esac
done
echo "$kver" > "$root/etc/vhostd/kernel"
echo "$hash" > "$root/etc/vhostd/inputs"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) > "$stage/initramfs.cpio.gz"
cp "$kernel" "$stage/vmlinuz"
mv -f "$stage/vmlinuz" "$out/vmlinuz"
mv -f "$stage/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "$hash" > "$out/initramfs.inputs"

size=$(du -k "$out/initramfs.cpio.gz" | cut -f1)
echo "build-guest-initramfs: kernel $kver, ${module_count} modules, ${size} KiB, $(($(date +%s) - start))s" >&2
echo "$out/vmlinuz"
echo "$out/initramfs.cpio.gz"
