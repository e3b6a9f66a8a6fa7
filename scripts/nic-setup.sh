#!/usr/bin/env bash
# From the lab to a real node: readies this machine for twilld on a physical NIC, and
# gives it all back.
#
#   scripts/nic-setup.sh [--hugepages N] [--driver vfio-pci] [--noiommu] [--force] [--dry-run] DEVICE...
#   scripts/nic-setup.sh --restore [--dry-run] [DEVICE...]
#
# DEVICE is a PCI address (0000:3b:00.0, or 3b:00.0 in domain 0) or the name of the
# kernel interface on it (ens1f0). Setting up:
#   1. reserves N 2 MB hugepages (default 1024, i.e. 2 GiB; never fewer than are
#      reserved already) and mounts hugetlbfs on /dev/hugepages if nothing is mounted;
#   2. loads the driver's module (vfio-pci; with --noiommu, vfio's unsafe no-IOMMU mode,
#      for machines without an IOMMU);
#   3. for each device: refuses it when one of its interfaces carries a default route
#      (IPv4 or IPv6) unless --force, takes its interfaces down, and binds it to the
#      driver with dpdk-devbind.py, remembering the kernel driver it had.
# --restore binds every device it set up (or those named) back to its kernel driver and
# gives the hugepages and the mount back as they were. State lives in $TWILL_NIC_STATE
# (default /run/twill/nic-setup): one file per device, one for the hugepages.
# --dry-run prints what would be done and changes nothing. Exit: 0 done, 1 failed,
# 2 refused or bad arguments.
set -euo pipefail

state_dir=${TWILL_NIC_STATE:-/run/twill/nic-setup}
sysfs=/sys
hugepages=1024
driver=vfio-pci
noiommu=0
force=0
dry=0
restore=0
devices=()

usage() {
  sed -n '5,6p' "$0" | sed 's/^# *//' >&2
  exit 2
}
die() { echo "nic-setup: $*" >&2; exit 1; }
refuse() { echo "nic-setup: $*" >&2; exit 2; }
run() {  # run COMMAND...: does it, or says it under --dry-run
  if ((dry)); then echo "would run: $*"; else "$@"; fi
}
write() {  # write VALUE FILE
  if ((dry)); then echo "would write $1 to $2"; else echo "$1" >"$2"; fi
}

while (($#)); do
  case $1 in
    --hugepages) [[ ${2:-} =~ ^[0-9]+$ ]] || refuse "--hugepages wants a count of 2 MB pages"; hugepages=$2; shift 2 ;;
    --driver) [[ -n ${2:-} ]] || refuse "--driver wants a module name"; driver=$2; shift 2 ;;
    --noiommu) noiommu=1; shift ;;
    --force) force=1; shift ;;
    --dry-run) dry=1; shift ;;
    --restore) restore=1; shift ;;
    -h | --help) usage ;;
    -*) refuse "unknown option $1" ;;
    *) devices+=("$1"); shift ;;
  esac
done

# The PCI address (with its domain) of a device given as an address or an interface.
pci_of() {
  local dev=$1 path
  if [[ $dev =~ ^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]]; then
    [[ $dev == *:*:* ]] || dev=0000:$dev
    dev=${dev,,}
    [[ -d $sysfs/bus/pci/devices/$dev ]] || die "$1: no such PCI device ($sysfs/bus/pci/devices/$dev)"
    echo "$dev"
    return
  fi
  [[ -e $sysfs/class/net/$dev ]] || die "$dev: neither a PCI address nor a network interface here"
  [[ -e $sysfs/class/net/$dev/device ]] || die "$dev: not on a PCI device (a virtual interface?)"
  path=$(readlink -f "$sysfs/class/net/$dev/device")
  # The innermost PCI address on the device's path (virtio NICs sit under theirs).
  local pci=""
  local part
  IFS=/ read -ra parts <<<"$path"
  for part in "${parts[@]}"; do
    [[ $part =~ ^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$ ]] && pci=$part
  done
  [[ -n $pci ]] || die "$dev: not on a PCI device ($path)"
  echo "$pci"
}

# The kernel interfaces on a PCI device (directly, or under a virtio child).
interfaces_of() {
  local pci=$1 d
  for d in "$sysfs"/bus/pci/devices/"$pci"/net/* "$sysfs"/bus/pci/devices/"$pci"/*/net/*; do
    [[ -e $d ]] && basename "$d"
  done
  return 0
}

driver_of() {
  local link=$sysfs/bus/pci/devices/$1/driver
  if [[ -e $link ]]; then basename "$(readlink -f "$link")"; fi
  return 0
}

default_route_devs() {
  { ip -4 route show default 2>/dev/null; ip -6 route show default 2>/dev/null; } |
    sed -n 's/.* dev \([^ ]*\).*/\1/p' | sort -u
}

hugepage_count=$sysfs/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages

if ((restore)); then
  shopt -s nullglob
  files=()
  if ((${#devices[@]})); then
    for d in "${devices[@]}"; do files+=("$state_dir/$(pci_of "$d").driver"); done
  else
    files=("$state_dir"/*.driver)
  fi
  if ((${#files[@]} == 0)) && [[ ! -f $state_dir/hugepages ]]; then
    echo "nic-setup: nothing to restore (no state in $state_dir)"
    exit 0
  fi
  for f in "${files[@]}"; do
    [[ -f $f ]] || die "$(basename "$f" .driver): not set up by nic-setup (no $f)"
    pci=$(basename "$f" .driver)
    old=$(cat "$f")
    if [[ -n $old ]]; then
      run dpdk-devbind.py -b "$old" "$pci"
    else
      run dpdk-devbind.py -u "$pci"
    fi
    ((dry)) || rm -f "$f"
    echo "nic-setup: $pci back to ${old:-no driver}"
  done
  # Hugepages and the mount go back once no device is left set up.
  left=("$state_dir"/*.driver)
  if [[ -f $state_dir/hugepages ]] && { ((dry)) || ((${#left[@]} == 0)); }; then
    read -r pages mounted <"$state_dir/hugepages"
    if ((mounted)); then run umount /dev/hugepages; fi
    write "$pages" "$hugepage_count"
    ((dry)) || rm -f "$state_dir/hugepages"
    echo "nic-setup: hugepages back to $pages"
  fi
  exit 0
fi

((${#devices[@]})) || usage
command -v dpdk-devbind.py >/dev/null || die "dpdk-devbind.py not found: run scripts/install-deps.sh (package dpdk)"

# Resolve and check every device before changing anything.
pcis=()
routed=$(default_route_devs)
for d in "${devices[@]}"; do
  pci=$(pci_of "$d")
  for ifc in $(interfaces_of "$pci"); do
    if grep -qx "$ifc" <<<"$routed"; then
      if ((force)); then
        echo "nic-setup: $pci ($ifc) carries the default route; going on (--force)" >&2
      else
        refuse "$pci ($ifc) carries the default route: binding it to $driver would cut this machine off. Use another port, or --force"
      fi
    fi
  done
  pcis+=("$pci")
done

((dry)) || mkdir -p "$state_dir"
# 1. Hugepages, remembered once (the first setup's values are what --restore gives back).
if [[ ! -f $state_dir/hugepages ]]; then
  had=$(cat "$hugepage_count")
  mounted=0
  if ! grep -q " /dev/hugepages hugetlbfs " /proc/mounts; then
    run mkdir -p /dev/hugepages
    run mount -t hugetlbfs nodev /dev/hugepages
    mounted=1
  fi
  if ((hugepages > had)); then
    write "$hugepages" "$hugepage_count"
    if ((!dry)); then
      got=$(cat "$hugepage_count")
      ((got >= hugepages)) || echo "nic-setup: only $got of $hugepages hugepages could be reserved (memory fragmented?)" >&2
    fi
  fi
  if ((dry)); then echo "would remember hugepages $had, mounted $mounted"; else echo "$had $mounted" >"$state_dir/hugepages"; fi
fi

# 2. The driver.
if ((noiommu)); then
  run modprobe vfio enable_unsafe_noiommu_mode=1
  [[ ! -e $sysfs/module/vfio/parameters/enable_unsafe_noiommu_mode ]] ||
    write 1 "$sysfs/module/vfio/parameters/enable_unsafe_noiommu_mode"
elif [[ $driver == vfio-pci && -z $(ls -A "$sysfs/kernel/iommu_groups" 2>/dev/null) ]]; then
  echo "nic-setup: this machine shows no IOMMU groups; vfio-pci will refuse the device unless the IOMMU is on (intel_iommu=on / amd_iommu=on) or --noiommu is given" >&2
fi
run modprobe "$driver"

# 3. The devices.
for pci in "${pcis[@]}"; do
  old=$(driver_of "$pci")
  if [[ $old == "$driver" ]]; then
    echo "nic-setup: $pci already on $driver"
    continue
  fi
  for ifc in $(interfaces_of "$pci"); do run ip link set dev "$ifc" down; done
  # Remember the kernel driver before it is gone (not overwritten by a second run).
  if [[ ! -f $state_dir/$pci.driver ]]; then
    if ((dry)); then echo "would remember driver ${old:-none} for $pci"; else echo "$old" >"$state_dir/$pci.driver"; fi
  fi
  run dpdk-devbind.py -b "$driver" "$pci"
  echo "nic-setup: $pci (was ${old:-without a driver}) on $driver; in the node file: ports.underlay: \"$pci\""
done
