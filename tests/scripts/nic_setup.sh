#!/usr/bin/env bash
# scripts/nic-setup.sh without a NIC to spare: every run is --dry-run (or fails before
# changing anything) and reads this machine's PCI devices and routes only. Checks the
# refusals (default-route interface, virtual interface, unknown device, bad arguments),
# the plan for a device it may take, and that nothing was written.
# Ends with "N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script=$root/scripts/nic-setup.sh
state=$(mktemp -d)
rmdir "$state"  # must stay absent: a dry run writes no state
export TWILL_NIC_STATE=$state
passed=0
failed=0

# expect DESCRIPTION EXIT_CODE PATTERN ARGS...: the script's exit code and a line of its
# output (stdout and stderr) matching the extended regex.
expect() {
  local what=$1 want=$2 pattern=$3 out rc
  shift 3
  out=$("$script" "$@" 2>&1) && rc=0 || rc=$?
  if ((rc == want)) && grep -qE -- "$pattern" <<<"$out"; then
    echo "ok - $what"
    passed=$((passed + 1))
  else
    echo "FAIL - $what: exit $rc (want $want), output:"
    sed 's/^/    /' <<<"$out"
    failed=$((failed + 1))
  fi
}

expect "bad arguments are refused" 2 "--hugepages wants" --hugepages many 0000:00:00.0
expect "unknown option is refused" 2 "unknown option" --frobnicate
expect "no device: usage" 2 "nic-setup.sh" --dry-run
expect "a virtual interface is not a PCI device" 1 "not on a PCI device" --dry-run lo
expect "an unknown interface is named" 1 "neither a PCI address nor a network interface" --dry-run twl-no-such0
expect "an absent PCI address is named" 1 "no such PCI device" --dry-run 0000:fe:1f.7
expect "nothing to restore without state" 0 "nothing to restore" --restore --dry-run

# The default route's interface, when this machine has one on a PCI device.
route_dev=$(ip -4 route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
if [[ -n $route_dev && -e /sys/class/net/$route_dev/device ]] &&
  [[ $(readlink -f "/sys/class/net/$route_dev/device") =~ [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] ]]; then
  expect "the default route's interface ($route_dev) is refused" 2 "carries the default route" --dry-run "$route_dev"
  expect "... and taken with --force (dry run)" 0 "would run: dpdk-devbind.py -b vfio-pci" --force --dry-run "$route_dev"
else
  echo "ok - default route not on a PCI interface here: refusal not exercised (skipped)"
  passed=$((passed + 1))
fi

# A PCI device with no network interface: the plan names the bind and the state kept.
spare=""
for d in /sys/bus/pci/devices/*; do
  if ! compgen -G "$d/net/*" >/dev/null && ! compgen -G "$d/*/net/*" >/dev/null; then
    spare=$(basename "$d")
    break
  fi
done
if [[ -n $spare ]]; then
  expect "a spare PCI device gets a bind plan" 0 "would run: dpdk-devbind.py -b vfio-pci $spare" --dry-run "$spare"
  expect "... with its driver remembered" 0 "would remember driver .* for $spare" --dry-run "$spare"
  expect "... and hugepages reserved" 0 "would (write 1024 to .*nr_hugepages|remember hugepages)" --dry-run "$spare"
  short=${spare#0000:}
  expect "a PCI address without its domain, another driver" 0 "dpdk-devbind.py -b uio_pci_generic $spare" --dry-run --driver uio_pci_generic "$short"
fi

if [[ -e $state ]]; then
  echo "FAIL - a dry run wrote state in $state"
  failed=$((failed + 1))
  rm -rf "$state"
else
  echo "ok - dry runs wrote no state"
  passed=$((passed + 1))
fi
echo "$passed passed, $failed failed"
((failed == 0))
