# shellcheck shell=bash
# Sourced by the benchmark scripts (bench/run.sh, scripts/bench.sh): reserve_hugepages N
# adds N 2 MB hugepages for the run and mounts hugetlbfs if it is not, and gives both back
# when the script exits.
reserve_hugepages() {
  hp_before=$(cat /proc/sys/vm/nr_hugepages)
  hp_mounted=0
  hp_give_back() {
    if ((hp_mounted)); then umount /dev/hugepages || true; fi
    echo "$hp_before" >/proc/sys/vm/nr_hugepages
  }
  trap hp_give_back EXIT
  echo $((hp_before + $1)) >/proc/sys/vm/nr_hugepages
  if ! mountpoint -q /dev/hugepages; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages
    hp_mounted=1
  fi
}
