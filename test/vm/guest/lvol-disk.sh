# Scenario lvol-disk: the first virtio-blk disk (/dev/vd?) is a thin logical volume (or a clone of
# one of its snapshots); vhostd.phase= says which part of the story this boot plays.
#
# Regions (fio, 4 KiB blocks, verify=pattern with the block's offset in the pattern, so a block
# of the wrong generation, a misplaced block and a never-written (zero) block all fail verify):
#   A  [0, fio_size)                   generation a1 before the snapshot, a2 after it (every other block)
#   B  [b_offset, b_offset + fio_size) generation b3, written while the host takes the snapshot
#   C  [c_offset, c_offset + fio_size) generation c4, written by the clone only
#
# Phases:
#   origin        write + verify A/a1; start B (rate limited, in the background) and report
#                 write-b-running once it has written 1 MiB: the host takes the snapshot then;
#                 wait for B (fio verifies it after writing); overwrite every other block of A
#                 with a2 (copy-on-write of clusters the snapshot holds), verify a2 and the a1 blocks left
#   clone         verify A/a1 (the data before the snapshot), a2 must not be there; write + verify C/c4
#   origin-again  after a daemon restart: A holds a2 and a1 alternately, B is whole
#   clone-again   after a daemon restart: A/a1, no a2, C/c4
# Kernel command line: vhostd.size_sectors= (required), vhostd.phase=, vhostd.fio_size= (16M),
# vhostd.b_offset= (32M), vhostd.c_offset= (64M), vhostd.b_rate= (write IOPS limit of B, 800).
. /lib/vhostd/disk-checks.sh

# lvol_fio MODE REGION GEN [fio options...]: MODE write | verify | write+verify. GEN is one
# byte in hex; it starts the pattern, so each generation has its own data.
lvol_fio() {
  vm_mode=$1; vm_region=$2; vm_gen=$3; shift 3
  vm_size=$(vm_param fio_size 16M)
  case $vm_region in
    A) vm_off=0 ;;
    B) vm_off=$(vm_param b_offset 32M) ;;
    C) vm_off=$(vm_param c_offset 64M) ;;
  esac
  vm_out=/tmp/fio-$vm_region-$vm_gen-$vm_mode.out
  vm_extra=$*
  set -- --name=lvol --filename="$DEV" --bs=4k --iodepth=16 --ioengine=libaio --direct=1 \
    --rw=randwrite --offset="$vm_off" --size="$vm_size" --verify=pattern --verify_pattern="0x${vm_gen}5c3e9d17%o" "$@"
  case $vm_mode in
    write) fio "$@" --do_verify=0 > "$vm_out" 2>&1 ;;
    write+verify) fio "$@" --do_verify=1 > "$vm_out" 2>&1 ;;
    verify) fio "$@" --verify_only > "$vm_out" 2>&1 ;;
  esac
  vm_rc=$?
  cat "$vm_out"
  DETAIL="region $vm_region gen $vm_gen offset=$vm_off size=$vm_size${vm_extra:+ $vm_extra} $(grep -oE '(read|write): IOPS=[^,]*' "$vm_out" | tr '\n' ' ')"
  return $vm_rc
}

# lvol_check MODE REGION GEN [fio options...]: lvol_fio, failing the step when fio fails.
lvol_check() {
  lvol_fio "$@" || vm_fail "fio $1 of region $2 gen $3 exited $vm_rc: $(grep -iE 'error|bad|fail' "$vm_out" | head -n 3)"
}

# lvol_absent REGION GEN [fio options...]: verifying generation GEN must fail (the data is not there).
lvol_absent() {
  if lvol_fio verify "$@"; then
    vm_fail "region $1 holds generation $2, which must not be there"
    return 1
  fi
  grep -q 'verify failed' "$vm_out" || vm_fail "fio failed, but not on a pattern mismatch: $(tail -n 3 "$vm_out")" || return 1
  DETAIL="region $1 gen $2 absent: $(grep -m 1 -oE 'got pattern [^.]*' "$vm_out")"
}

# Written sectors of the disk so far (field 7 of /sys/block/X/stat).
lvol_written_sectors() {
  set -- $(cat "/sys/block/$DISK/stat")
  echo "$7"
}

# lvol_b_start: region B in the background; passes once 1 MiB of it reached the disk, so the
# snapshot the host takes on this line lands while B is being written.
lvol_b_start() {
  vm_base=$(lvol_written_sectors)
  ( lvol_fio write+verify B b3 --rate_iops=,"$(vm_param b_rate 800)" > /tmp/fio-b.log 2>&1; echo $? > /tmp/fio-b.rc ) &
  vm_tries=0
  while [ $vm_tries -lt 600 ]; do
    vm_now=$(lvol_written_sectors)
    if [ $((vm_now - vm_base)) -ge 2048 ]; then
      DETAIL="$(((vm_now - vm_base) / 2)) KiB of region B written after $((vm_tries / 10)).$((vm_tries % 10))s"
      return 0
    fi
    [ ! -f /tmp/fio-b.rc ] || vm_fail "fio of region B ended early: $(tail -n 3 /tmp/fio-b.log)" || return 1
    sleep 0.1
    vm_tries=$((vm_tries + 1))
  done
  vm_fail "region B: only $((vm_now - vm_base)) sectors written after 60s"
}

# lvol_b_wait: the background fio of region B ends; its verify pass read back every block.
lvol_b_wait() {
  wait
  cat /tmp/fio-b.log
  vm_rc=$(cat /tmp/fio-b.rc 2> /dev/null)
  [ "$vm_rc" = 0 ] || vm_fail "fio write+verify of region B exited ${vm_rc:-?}: $(grep -iE 'error|bad|fail' /tmp/fio-b.log | head -n 3)" || return 1
  DETAIL="region B written and verified: $(grep -oE '(read|write): IOPS=[^,]*' /tmp/fio-b.log | tr '\n' ' ')"
}

# Every other block of A, starting at 0 (a2) or at 4k (the a1 blocks a2 left alone).
A_EVEN="--rw=write:4k"
A_ODD="--rw=write:4k --offset=4k"

if vm_step disk disk_find 'vd[a-z]'; then
  vm_step size disk_size
  case $(vm_param phase none) in
    origin)
      vm_step write-a1 lvol_check write A a1 &&
        vm_step verify-a1 lvol_check verify A a1 &&
        vm_step write-b-running lvol_b_start &&
        vm_step write-b lvol_b_wait &&
        vm_step write-a2 lvol_check write A a2 $A_EVEN &&
        vm_step verify-a2 lvol_check verify A a2 $A_EVEN &&
        vm_step verify-a1-odd lvol_check verify A a1 $A_ODD
      ;;
    clone)
      vm_step verify-a1 lvol_check verify A a1
      vm_step no-a2 lvol_absent A a2 $A_EVEN
      vm_step write-c4 lvol_check write+verify C c4
      ;;
    origin-again)
      vm_step verify-a2 lvol_check verify A a2 $A_EVEN
      vm_step verify-a1-odd lvol_check verify A a1 $A_ODD
      vm_step verify-b lvol_check verify B b3
      ;;
    clone-again)
      vm_step verify-a1 lvol_check verify A a1
      vm_step no-a2 lvol_absent A a2 $A_EVEN
      vm_step verify-c4 lvol_check verify C c4
      ;;
    *)
      vm_result phase FAIL "unknown vhostd.phase=$(vm_param phase none)"
      ;;
  esac
fi
