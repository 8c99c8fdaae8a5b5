# Shared by /init and the scenarios (sourced, POSIX sh for busybox ash).
# The host parses only lines starting with VHOSTD-: keep them on one line each.

# vm_param NAME DEFAULT: value of vhostd.NAME=... on the kernel command line.
vm_param() {
  for vm_word in $(cat /proc/cmdline); do
    case "$vm_word" in
      "vhostd.$1="*) echo "${vm_word#*=}"; return 0 ;;
    esac
  done
  echo "$2"
}

# vm_result NAME PASS|FAIL DETAIL...
vm_result() {
  vm_name=$1; vm_status=$2; shift 2
  echo "VHOSTD-RESULT $vm_name $vm_status $(printf '%s' "$*" | tr '\n\r\t' '   ')"
}

# vm_step NAME FUNCTION [ARGS...]: run one check, its output to /tmp/log/NAME.log.
# The function sets DETAIL; a failing step also copies its log to the console
# (prefixed so the host can show it) because the log dies with the VM.
vm_step() {
  vm_sname=$1; shift
  DETAIL=
  mkdir -p /tmp/log
  vm_t0=$(cut -d' ' -f1 /proc/uptime)
  if "$@" > "/tmp/log/$vm_sname.log" 2>&1; then
    vm_rc=0
  else
    vm_rc=1
  fi
  vm_t1=$(cut -d' ' -f1 /proc/uptime)
  vm_secs=$(awk -v a="$vm_t0" -v b="$vm_t1" 'BEGIN { printf "%.2f", b - a }')
  if [ $vm_rc -eq 0 ]; then
    vm_result "$vm_sname" PASS "$DETAIL (${vm_secs}s)"
  else
    [ -n "$DETAIL" ] || DETAIL=$(tail -n 3 "/tmp/log/$vm_sname.log")
    vm_result "$vm_sname" FAIL "$DETAIL (${vm_secs}s)"
    tail -n 40 "/tmp/log/$vm_sname.log" | sed "s/^/VHOSTD-LOG $vm_sname: /"
  fi
  return $vm_rc
}

# vm_fail DETAIL: make the current step fail with DETAIL.
vm_fail() {
  DETAIL=$*
  return 1
}
