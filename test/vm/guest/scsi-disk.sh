# Scenario scsi-disk: the first SCSI disk (/dev/sd?) through virtio-scsi.
# Kernel command line: vhostd.size_sectors=N (required), vhostd.marker=S,
# vhostd.marker_lba=N, vhostd.fio_size=32M, vhostd.discard=1|0 (device must
# offer UNMAP).
. /lib/vhostd/disk-checks.sh

scsi_inq() {
  sg_inq "$DEV" || vm_fail "sg_inq exited $?" || return 1
  grep -q 'PDT=0 ' /tmp/log/sg_inq.log || vm_fail "peripheral device type is not 0 (disk)" || return 1
  DETAIL="vendor='$(sed -n 's/^ *Vendor identification: *//p' /tmp/log/sg_inq.log | sed 's/ *$//')'"
  DETAIL="$DETAIL product='$(sed -n 's/^ *Product identification: *//p' /tmp/log/sg_inq.log | sed 's/ *$//')'"
  DETAIL="$DETAIL $(grep -oE 'version=0x[0-9a-f]+ *\[[^]]*\]' /tmp/log/sg_inq.log | tr -d ' ')"
}

# scsi_vpd PAGE: the page must be served; key fields are checked per page.
scsi_vpd() {
  vm_log=/tmp/log/sg_vpd_$1.log
  sg_vpd -p "0x$1" "$DEV" || vm_fail "sg_vpd -p 0x$1 exited $?: $(tail -n 1 "$vm_log")" || return 1
  case $1 in
    b0)
      grep -q 'Maximum transfer length' "$vm_log" || vm_fail "no Maximum transfer length" || return 1
      DETAIL=$(grep -E 'Maximum transfer length|Maximum unmap LBA count' "$vm_log" | sed 's/^ *//' | tr '\n' ';')
      ;;
    b1)
      grep -qE 'rotation rate|Non-rotating medium' "$vm_log" || vm_fail "no rotation rate" || return 1
      DETAIL=$(grep -E 'rotation rate|Non-rotating medium' "$vm_log" | head -n 1 | sed 's/^ *//')
      ;;
    b2)
      if [ "$(vm_param discard 1)" = 1 ]; then
        grep -q 'Unmap command supported (LBPU): 1' "$vm_log" || vm_fail "LBPU is not 1" || return 1
      fi
      DETAIL=$(grep -E 'LBPU|LBPRZ|Provisioning type' "$vm_log" | sed 's/^ *//' | tr '\n' ';')
      ;;
    83)
      grep -q 'designator type' "$vm_log" || vm_fail "no designation descriptor" || return 1
      DETAIL="$(grep -c 'designator type' "$vm_log") designators"
      ;;
  esac
}

scsi_readcap() {
  sg_readcap -l "$DEV" || vm_fail "sg_readcap -l exited $?" || return 1
  vm_last=$(sed -n 's/.*Last LBA=\([0-9]*\).*/\1/p' /tmp/log/sg_readcap.log)
  vm_bs=$(sed -n 's/.*Logical block length=\([0-9]*\) bytes.*/\1/p' /tmp/log/sg_readcap.log)
  case $vm_bs in 512|4096) ;; *) vm_fail "logical block length '$vm_bs' is not 512 or 4096"; return 1 ;; esac
  vm_bytes=$(( (vm_last + 1) * vm_bs ))
  vm_want=$(( $(vm_param size_sectors 0) * 512 ))
  [ "$vm_bytes" = "$vm_want" ] || vm_fail "last LBA $vm_last x $vm_bs = $vm_bytes bytes, expected $vm_want" || return 1
  grep -q 'lbprz=1' /tmp/log/sg_readcap.log && DISCARD_ZEROES=1
  DETAIL="last_lba=$vm_last block=$vm_bs $(grep -oE 'lbpme=[01], lbprz=[01]' /tmp/log/sg_readcap.log)"
}

scsi_luns() {
  sg_luns "$DEV" || vm_fail "sg_luns exited $?" || return 1
  # sg3-utils spells it "imples"; match loosely.
  vm_n=$(sed -n 's/.*imp[a-z]* \([0-9]*\) lun entr.*/\1/p' /tmp/log/sg_luns.log)
  [ "${vm_n:-0}" -ge 1 ] || vm_fail "REPORT LUNS lists no LUN" || return 1
  DETAIL="luns=$vm_n"
}

scsi_turs() {
  sg_turs -n 4 -t "$DEV" || vm_fail "sg_turs exited $?" || return 1
  DETAIL="4 TEST UNIT READY ok"
}

# UNMAP straight from user space, beyond what the file system uses.
scsi_unmap() {
  vm_lba=$(( $(vm_param size_sectors 0) * 512 / 4096 / 2 ))
  sg_unmap --force --lba="$vm_lba" --num=8 "$DEV" || vm_fail "sg_unmap exited $?" || return 1
  DETAIL="lba=$vm_lba num=8"
}

if vm_step disk disk_find 'sd[a-z]'; then
  vm_step size disk_size
  [ -z "$(vm_param feature '')" ] || vm_step feature disk_feature
  vm_step sg_inq scsi_inq
  vm_step sg_turs scsi_turs
  vm_step sg_luns scsi_luns
  vm_step sg_readcap scsi_readcap
  for vm_page in b0 b1 b2 83; do vm_step "sg_vpd_$vm_page" scsi_vpd $vm_page; done
  [ "$(vm_param discard 1)" = 1 ] && vm_step sg_unmap scsi_unmap
  disk_common_steps
fi
