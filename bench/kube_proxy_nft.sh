# shellcheck shell=bash
# Sourced by bench/kernel_nat.sh and bench/peers/kernel.sh: kube-proxy's nftables
# ruleset for the services of bench/service_flows.h (N services of 10 endpoints).
#
# The ruleset of kube-proxy's nftables mode (NAT part: service-ips verdict map, a chain
# per service choosing an endpoint with numgen, a chain per endpoint with its DNAT), in
# flat `add` commands. phase=chains: table, map and every (empty) chain; else the rules
# and map elements of services s0..s1-1.
ruleset() {
  awk -v n="$1" -v k=10 -v phase="$2" -v s0="${3:-0}" -v s1="${4:-0}" '
    function ip(a) { return int(a / 16777216) "." int(a / 65536) % 256 "." int(a / 256) % 256 "." a % 256 }
    function ep_ip(s, j) { return "172.25.1." (10 + (s % 24) * k + j) }
    function svc(s) { return "service-" s "-default/svc-" s "/udp/dns" }
    function ep(s, j) { return "endpoint-" s "-" j "-default/svc-" s "/udp/dns__" ep_ip(s, j) "/" (1024 + int(s / 24)) }
    BEGIN {
      base = 10 * 16777216 + 96 * 65536 + 1  # 10.96.0.1, service_vip(0)
      T = "ip kube-proxy"
      if (phase == "chains") {
        print "add table " T
        print "add map " T " service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }"
        print "add chain " T " services"
        print "add chain " T " nat-prerouting { type nat hook prerouting priority dstnat; policy accept; }"
        print "add chain " T " nat-output { type nat hook output priority -100; policy accept; }"
        print "add chain " T " nat-postrouting { type nat hook postrouting priority srcnat; policy accept; }"
        print "add chain " T " mark-for-masquerade"
        print "add chain " T " masquerading"
        for (s = 0; s < n; s++) {
          print "add chain " T " " svc(s)
          for (j = 0; j < k; j++) print "add chain " T " " ep(s, j)
        }
        exit
      }
      if (s0 == 0) {
        print "add rule " T " services ip daddr . meta l4proto . th dport vmap @service-ips"
        print "add rule " T " nat-prerouting jump services"
        print "add rule " T " nat-output jump services"
        print "add rule " T " nat-postrouting jump masquerading"
        print "add rule " T " mark-for-masquerade meta mark set meta mark or 0x4000"
        print "add rule " T " masquerading meta mark & 0x4000 == 0 return"
        print "add rule " T " masquerading meta mark set meta mark ^ 0x4000"
        print "add rule " T " masquerading masquerade fully-random"
      }
      for (s = s0; s < s1 && s < n; s++) {
        port = 1024 + int(s / 24)
        print "add rule " T " " svc(s) " ip daddr " ip(base + s) " udp dport 53 ip saddr != 172.25.0.0/16 jump mark-for-masquerade"
        line = "add rule " T " " svc(s) " numgen random mod " k " vmap { "
        for (j = 0; j < k; j++) line = line (j ? ", " : "") j " : goto " ep(s, j)
        print line " }"
        for (j = 0; j < k; j++) {
          print "add rule " T " " ep(s, j) " ip saddr " ep_ip(s, j) " jump mark-for-masquerade"
          print "add rule " T " " ep(s, j) " meta l4proto udp dnat to " ep_ip(s, j) ":" port
        }
        print "add element " T " service-ips { " ip(base + s) " . udp . 53 : goto " svc(s) " }"
      }
    }'
}
