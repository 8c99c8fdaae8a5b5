# Scenario restart-disk: the first virtio-blk (vhostd.bus=blk) or SCSI (bus=scsi) disk, while the
# host kills its vhostd (SIGKILL) and starts a new one on the same socket, a few times; QEMU
# reconnects each time.
#
# fio-running  two fio runs start in the background: the writer (randwrite 4k, 2 jobs at QD 32
#              on disjoint halves, crc32c, a verify pass after the writes) and a reader (randread
#              4k, 8 jobs at QD 1 for read_s seconds, no verify: reads in flight at the kills too).
#              Passes once running_mib MiB are written: the host starts killing the daemon then.
# fio-write    the writer ends without an error: every write completed (none lost or failed across
#              the restarts) and its verify pass read each block back intact
# fio-read     the reader ends without an error (no read lost or failed)
# fio-verify   a second, read-only verify pass over the written blocks (fio --verify_only)
# io-errors    the kernel logged nothing about I/O errors or the virtio/SCSI device since fio began
#
# A lost request never completes (virtio-blk has no timeout): each fio gets fio_timeout seconds,
# then its step fails with the disk's in-flight counters, so the VM still reports and powers off.
# Kernel command line: vhostd.size_sectors= (required), vhostd.bus= (blk), vhostd.job_size= (64M,
# per job; job 2 starts there), vhostd.running_mib= (32), vhostd.read_s= (25),
# vhostd.fio_timeout= (60).
. /lib/vhostd/disk-checks.sh

# rs_fio_start MODE: fio in the background. MODE write = writes, then fio's verify pass; verify =
# the read-only verify pass (same seeds, so the same offsets and data); read = the reader.
rs_fio_start() {
  vm_mode=$1
  vm_size=$(vm_param job_size 64M)
  set -- --filename="$DEV" --bs=4k --ioengine=libaio --direct=1
  case $vm_mode in
    # Eight readers at QD 1 drift apart (one at QD 4 submits in bursts).
    read) set -- "$@" --name=reader --rw=randread --iodepth=1 --numjobs=8 --group_reporting --time_based --runtime="$(vm_param read_s 25)" ;;
    *)
      # Global options first, then two jobs on disjoint halves (numjobs= would warn that the
      # jobs may overwrite each other's blocks); on 2 vCPUs they use both queues.
      set -- "$@" --rw=randwrite --iodepth=32 --verify=crc32c --size="$vm_size" --group_reporting
      if [ "$vm_mode" = write ]; then set -- "$@" --do_verify=1; else set -- "$@" --verify_only; fi
      set -- "$@" --name=low --offset=0 --name=high --offset="$vm_size"
      ;;
  esac
  rm -f "/tmp/fio-$vm_mode.rc"
  cut -d. -f1 /proc/uptime > "/tmp/fio-$vm_mode.t0"
  # Started from a step's function, whose output goes to its log: fio writes its own files.
  ( fio "$@" > "/tmp/fio-$vm_mode.out" 2>&1; echo $? > "/tmp/fio-$vm_mode.rc" ) &
}

# rs_fio_wait MODE: waits for a background fio, at most fio_timeout seconds from its start.
rs_fio_wait() {
  vm_limit=$(vm_param fio_timeout 60)
  vm_t0=$(cat "/tmp/fio-$1.t0")
  while [ ! -f "/tmp/fio-$1.rc" ]; do
    if [ $(($(cut -d. -f1 /proc/uptime) - vm_t0)) -ge "$vm_limit" ]; then
      tail -n 20 "/tmp/fio-$1.out"
      vm_fail "fio $1 still running after ${vm_limit}s (lost requests?): in flight (reads writes) $(tr -s ' ' < "/sys/block/$DISK/inflight")"
      return 1
    fi
    sleep 0.2
  done
  cat "/tmp/fio-$1.out"
  vm_rc=$(cat "/tmp/fio-$1.rc")
  [ "$vm_rc" = 0 ] || vm_fail "fio $1 exited $vm_rc: $(grep -iE 'error|bad|verify' "/tmp/fio-$1.out" | head -n 3)" || return 1
  # The longest completion latency shows the stalls across the restarts.
  DETAIL="$(grep -oE '(read|write): IOPS=[^,]*' "/tmp/fio-$1.out" | tr '\n' ' ')$(grep -m 2 -oE 'clat \([num]sec\): min=[^,]*, max=[^,]*' "/tmp/fio-$1.out" | tr '\n' ' ')"
}

# Written sectors of the disk so far (field 7 of /sys/block/X/stat).
rs_written_sectors() {
  set -- $(cat "/sys/block/$DISK/stat")
  echo "$7"
}

# rs_running: starts the writer and the reader; passes once running_mib MiB are written.
rs_running() {
  dmesg | wc -l > /tmp/dmesg.base
  vm_base=$(rs_written_sectors)
  vm_want=$(($(vm_param running_mib 32) * 2048))
  rs_fio_start write
  rs_fio_start read
  vm_tries=0
  while [ $vm_tries -lt 600 ]; do
    vm_now=$(rs_written_sectors)
    if [ $((vm_now - vm_base)) -ge "$vm_want" ]; then
      DETAIL="$(((vm_now - vm_base) / 2048)) MiB written after $((vm_tries / 10)).$((vm_tries % 10))s, in flight (reads writes) $(tr -s ' ' < "/sys/block/$DISK/inflight")"
      return 0
    fi
    [ ! -f /tmp/fio-write.rc ] || vm_fail "fio ended early: $(tail -n 3 /tmp/fio-write.out)" || return 1
    sleep 0.1
    vm_tries=$((vm_tries + 1))
  done
  vm_fail "only $(((vm_now - vm_base) / 2)) KiB written after 60s"
}

rs_verify() {
  rs_fio_start verify
  rs_fio_wait verify
}

# rs_io_errors: kernel messages since fio started that name I/O errors or the disk's driver.
rs_io_errors() {
  vm_new=$(dmesg | tail -n +$(($(cat /tmp/dmesg.base) + 1)))
  printf '%s\n' "$vm_new"
  # A restarted SCSI target reports a power-on unit attention (SPC), as a disk that lost power
  # would; the kernel logs it and retries the command. Not an error.
  vm_bad=$(printf '%s\n' "$vm_new" | grep -v 'Power-on or device reset occurred' | grep -iE 'i/o error|blk_update_request|virtio|vd[a-z]|sd [0-9]|scsi|blocked for')
  [ -z "$vm_bad" ] || vm_fail "kernel: $(printf '%s\n' "$vm_bad" | head -n 3)" || return 1
  # grep -c exits 1 when it counts 0: the status of this assignment would fail the step.
  vm_count=$(printf '%s\n' "$vm_new" | grep -c .)
  DETAIL="$vm_count new kernel messages, none about I/O errors or the disk"
}

case $(vm_param bus blk) in
  scsi) vm_glob='sd[a-z]' ;;
  *) vm_glob='vd[a-z]' ;;
esac
if vm_step disk disk_find "$vm_glob"; then
  vm_step size disk_size
  if vm_step fio-running rs_running; then
    # A lost request hangs the disk: after a failed step the next one would only wait too.
    vm_step fio-write rs_fio_wait write && vm_step fio-read rs_fio_wait read && vm_step fio-verify rs_verify
    vm_step io-errors rs_io_errors
  fi
fi
