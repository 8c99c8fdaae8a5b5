# An NVMe/TCP target: the kernel's nvmet exporting /dev/vda (the host's image file) as namespace 1
# of subsystem vhostd.nqn= on port 4420 of 10.0.2.15 (QEMU's user network forwards a host port to
# it). Reports "nvmet PASS" once listening, then serves until the host kills the VM.
nqn=$(vm_param nqn nqn.2026-12.io.vhostd:target)
cfg=/sys/kernel/config/nvmet

load_nvmet() {
  while read -r m; do
    insmod "$m" || { DETAIL="insmod $m failed"; return 1; }
  done < /etc/vhostd/modules-nvmet
  DETAIL="$(wc -l < /etc/vhostd/modules-nvmet) modules"
}

setup_net() {
  ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || return 1
  DETAIL="eth0 10.0.2.15"
}

setup_nvmet() {
  mount -t configfs none /sys/kernel/config 2> /dev/null
  [ -d $cfg ] || { DETAIL="no $cfg"; return 1; }
  [ -b /dev/vda ] || { DETAIL="no /dev/vda"; return 1; }
  mkdir $cfg/subsystems/$nqn || return 1
  echo 1 > $cfg/subsystems/$nqn/attr_allow_any_host || return 1
  echo VHOSTD-NVMET > $cfg/subsystems/$nqn/attr_serial 2> /dev/null
  mkdir $cfg/subsystems/$nqn/namespaces/1 || return 1
  echo /dev/vda > $cfg/subsystems/$nqn/namespaces/1/device_path || return 1
  echo 1 > $cfg/subsystems/$nqn/namespaces/1/enable || return 1
  mkdir $cfg/ports/1 || return 1
  echo 10.0.2.15 > $cfg/ports/1/addr_traddr
  echo tcp > $cfg/ports/1/addr_trtype
  echo 4420 > $cfg/ports/1/addr_trsvcid
  echo ipv4 > $cfg/ports/1/addr_adrfam
  ln -s $cfg/subsystems/$nqn $cfg/ports/1/subsystems/$nqn || return 1
  DETAIL="listening nqn=$nqn size_sectors=$(cat /sys/block/vda/size)"
}

vm_step nvmet-modules load_nvmet && vm_step net setup_net && vm_step nvmet setup_nvmet
while :; do sleep 3600; done
