// Packet tests for each stage: build a frame, run it, check every field that matters.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>

#include <rte_ip.h>

#include "dataplane/net/checksum.h"
#include "dataplane/net/headers.h"
#include "dataplane/vxlan/vxlan.h"
#include "dataplane/icmp/icmp.h"
#include "tests/unit/fixture.h"
#include "tests/unit/frames.h"

using namespace twill;
using namespace twill::test;

namespace {

const mac_addr gw = default_gateway_mac;
const mac_addr bcast = mac("ff:ff:ff:ff:ff:ff");

bool ipv4_checksum_ok(const std::vector<uint8_t>& f, size_t off) {
    const auto& ip = at<net::ipv4_hdr>(f, off);
    return rte_raw_cksum(&ip, ip.header_length()) == 0xffff;
}

bool l4_checksum_ok(const std::vector<uint8_t>& f, size_t ip_off) {
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(f.data() + ip_off);
    return rte_ipv4_udptcp_cksum_verify(ip, f.data() + ip_off + 20) == 0;
}

// A pod frame from pod-b1 to `dst`.
std::vector<uint8_t> from_b1(ip4_addr dst, ipv4_opts o = {}, uint16_t sport = 40000) {
    return pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), dst, o).udp(sport, 53).payload(32).bytes();
}

// VXLAN from kernel-a carrying a frame for `inner_dst`.
pkt vxlan_from_a(ip4_addr inner_dst, uint32_t vni = 1, uint16_t dport = 8472) {
    return std::move(pkt()
                         .eth(underlay_mac, kernel_a_mac)
                         .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.ttl = 64, .frag = 0})
                         .udp(45000, dport)
                         .vxlan(vni)
                         .eth(twill_b_vtep, kernel_a_vtep)
                         .ipv4(ip4("172.25.1.2"), inner_dst, {.ttl = 63})
                         .icmp_echo(7, 1)
                         .payload(56));
}

}  // namespace

TEST_CASE("ARP request for the node IP on the underlay is answered and teaches the neighbour",
          "[arp]") {
    test_node node;
    auto req = pkt().eth(bcast, kernel_a_mac)
                   .arp(1, kernel_a_mac, ip4("198.18.0.1"), mac("00:00:00:00:00:00"), ip4("198.18.0.2"))
                   .bytes();
    auto out = node.underlay(req);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    const auto& eth = at<net::eth_hdr>(out[0].bytes, 0);
    CHECK(eth.dst == kernel_a_mac);
    CHECK(eth.src == underlay_mac);
    CHECK(eth.type.get() == net::ether_type_arp);
    const auto& arp = at<net::arp_hdr>(out[0].bytes, 14);
    CHECK(arp.oper.get() == net::arp_hdr::reply);
    CHECK(arp.sha == underlay_mac);
    CHECK(arp.spa.get() == ip4("198.18.0.2").value);
    CHECK(arp.tha == kernel_a_mac);
    CHECK(arp.tpa.get() == ip4("198.18.0.1").value);
    CHECK(node.counters().neighbours_learned.get() == 1);

    // The learned neighbour is used at once: a pod packet to kernel-a's slice goes out.
    auto enc = node.pod(pod_b1_port, from_b1(ip4("172.25.1.2")));
    REQUIRE(enc.size() == 1);
    CHECK(at<net::eth_hdr>(enc[0].bytes, 0).dst == kernel_a_mac);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("underlay ARP that is not for the node is dropped; replies from nodes are learned",
          "[arp]") {
    test_node node;
    auto other = pkt().eth(bcast, kernel_a_mac)
                     .arp(1, kernel_a_mac, ip4("198.18.0.1"), mac("00:00:00:00:00:00"), ip4("198.18.0.9"))
                     .bytes();
    CHECK(node.underlay(other).empty());
    CHECK(node.drops(drop::arp_not_for_us) == 1);
    CHECK(node.counters().neighbours_learned.get() == 1);  // still learned from the sender

    auto reply = pkt().eth(underlay_mac, mac("02:00:00:00:03:03"))
                     .arp(2, mac("02:00:00:00:03:03"), ip4("198.18.0.3"), underlay_mac, ip4("198.18.0.2"))
                     .bytes();
    CHECK(node.underlay(reply).empty());
    CHECK(node.counters().neighbours_learned.get() == 2);
    CHECK(node.total_drops() == 1);

    auto truncated = pkt().eth(bcast, kernel_a_mac, 0x0806).payload(10).bytes();
    CHECK(node.underlay(truncated).empty());
    CHECK(node.drops(drop::arp_malformed) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("pod ARP is answered with the gateway MAC, Calico style", "[arp]") {
    test_node node;
    struct row {
        const char* what;
        const char* target;
        bool answered;
    } rows[] = {
        {"link-local gateway 169.254.1.1", "169.254.1.1", true},
        {"on-link neighbour in the /24", "172.25.2.3", true},
        {"host-local gateway .1", "172.25.2.1", true},
        {"remote pod", "172.25.1.2", true},
        {"the pod's own address (duplicate address detection)", "172.25.2.2", false},
    };
    for (const row& r : rows) {
        INFO(r.what);
        auto req = pkt().eth(bcast, pod_b1_mac)
                       .arp(1, pod_b1_mac, ip4("172.25.2.2"), mac("00:00:00:00:00:00"), ip4(r.target))
                       .bytes();
        auto out = node.pod(pod_b1_port, req);
        if (!r.answered) {
            CHECK(out.empty());
            continue;
        }
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == pod_b1_port);
        const auto& eth = at<net::eth_hdr>(out[0].bytes, 0);
        CHECK(eth.dst == pod_b1_mac);
        CHECK(eth.src == gw);
        const auto& arp = at<net::arp_hdr>(out[0].bytes, 14);
        CHECK(arp.oper.get() == net::arp_hdr::reply);
        CHECK(arp.sha == gw);
        CHECK(arp.spa.get() == ip4(r.target).value);
        CHECK(arp.tha == pod_b1_mac);
        CHECK(arp.tpa.get() == ip4("172.25.2.2").value);
    }
    // A pod may not claim another address in ARP either.
    auto spoof = pkt().eth(bcast, pod_b1_mac)
                     .arp(1, pod_b1_mac, ip4("172.25.2.9"), mac("00:00:00:00:00:00"), ip4("169.254.1.1"))
                     .bytes();
    CHECK(node.pod(pod_b1_port, spoof).empty());
    CHECK(node.drops(drop::pod_spoofed_ip) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("pod to remote pod is encapsulated as Linux flannel.1 does", "[vxlan][encap]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    auto in = pkt().eth(gw, pod_b1_mac)
                  .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.ttl = 64, .tos = 0x10})
                  .tcp(40000, 80)
                  .payload(100)
                  .bytes();
    auto out = node.pod(pod_b1_port, in);
    REQUIRE(out.size() == 1);
    const auto& f = out[0].bytes;
    CHECK(out[0].port == underlay_port);
    REQUIRE(f.size() == in.size() + 50);

    const auto& eth = at<net::eth_hdr>(f, 0);
    CHECK(eth.dst == kernel_a_mac);
    CHECK(eth.src == underlay_mac);
    CHECK(eth.type.get() == net::ether_type_ipv4);

    const auto& outer = at<net::ipv4_hdr>(f, 14);
    CHECK(outer.version_ihl == 0x45);
    CHECK(outer.tos == 0x00);  // DSCP not copied (tos 0), ECN not-ECT
    CHECK(outer.total_length.get() == f.size() - 14);
    CHECK(outer.frag.get() == 0);  // no DF, like flannel.1
    CHECK(outer.ttl == 64);
    CHECK(outer.proto == net::ip_proto_udp);
    CHECK(outer.src_addr() == ip4("198.18.0.2"));
    CHECK(outer.dst_addr() == ip4("198.18.0.1"));
    CHECK(ipv4_checksum_ok(f, 14));

    const auto& udp = at<net::udp_hdr>(f, 34);
    CHECK(udp.dst_port.get() == 8472);
    CHECK(udp.src_port.get() >= 32768);
    CHECK(udp.src_port.get() <= 60999);
    CHECK(udp.length.get() == f.size() - 34);
    CHECK(udp.checksum != 0);
    CHECK(l4_checksum_ok(f, 14));

    const auto& vx = at<net::vxlan_hdr>(f, 42);
    CHECK(vx.flags_word() == 0x08000000);
    CHECK(vx.vni() == 1);
    CHECK((vx.vni_reserved.get() & 0xff) == 0);

    const auto& inner_eth = at<net::eth_hdr>(f, 50);
    CHECK(inner_eth.dst == kernel_a_vtep);
    CHECK(inner_eth.src == twill_b_vtep);
    const auto& inner = at<net::ipv4_hdr>(f, 64);
    CHECK(inner.ttl == 63);
    CHECK(inner.tos == 0x10);
    CHECK(ipv4_checksum_ok(f, 64));
    CHECK(l4_checksum_ok(f, 64));
    // Everything past the inner IP header is the pod's, untouched.
    CHECK(std::equal(in.begin() + 34, in.end(), f.begin() + 84));
    CHECK(node.counters().encapsulated.get() == 1);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("the UDP source port follows the inner flow", "[vxlan][encap]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    auto sport_of = [&](uint16_t inner_sport) {
        auto out = node.pod(pod_b1_port, from_b1(ip4("172.25.1.2"), {}, inner_sport));
        REQUIRE(out.size() == 1);
        return at<net::udp_hdr>(out[0].bytes, 34).src_port.get();
    };
    CHECK(sport_of(40000) == sport_of(40000));
    std::set<uint16_t> seen;
    for (uint16_t s = 40000; s < 40064; ++s) {
        seen.insert(sport_of(s));
    }
    CHECK(seen.size() > 48);  // 64 flows spread over the range, few collisions
    CHECK(vxlan_source_port(0) == 32768);
    CHECK(vxlan_source_port(0xffffffff) == 60999);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("ECN is carried to the outer header as RFC 6040 says", "[vxlan][encap]") {
    CHECK(outer_tos(0x00) == 0x00);
    CHECK(outer_tos(0x01) == 0x01);
    CHECK(outer_tos(0x02) == 0x02);
    CHECK(outer_tos(0x03) == 0x02);  // CE inside: ECT(0) outside
    CHECK(outer_tos(0xb8) == 0x00);  // DSCP stays inside
}

TEST_CASE("an unresolved next hop is ARPed for, at most once a second", "[vxlan][arp]") {
    test_node node;
    auto out = node.pod(pod_b1_port, from_b1(ip4("172.25.1.2")));
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    const auto& arp = at<net::arp_hdr>(out[0].bytes, 14);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == bcast);
    CHECK(arp.oper.get() == net::arp_hdr::request);
    CHECK(arp.sha == underlay_mac);
    CHECK(arp.spa.get() == ip4("198.18.0.2").value);
    CHECK(arp.tpa.get() == ip4("198.18.0.1").value);
    CHECK(node.drops(drop::neighbour_unresolved) == 1);

    CHECK(node.pod(pod_b1_port, from_b1(ip4("172.25.1.2"))).empty());  // same second: no ARP
    CHECK(node.drops(drop::neighbour_unresolved) == 2);
    node.ctx().now_tsc += node.params().tsc_hz;
    CHECK(node.pod(pod_b1_port, from_b1(ip4("172.25.1.2"))).size() == 1);  // retried
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("VXLAN from a known node is decapsulated and delivered to the pod", "[vxlan][decap]") {
    test_node node;
    node.learn_pod_mac(pod_b1_port, pod_b1_mac);
    auto frame = vxlan_from_a(ip4("172.25.2.2")).bytes();
    auto out = node.underlay(frame);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    const auto& f = out[0].bytes;
    REQUIRE(f.size() == frame.size() - 50);
    CHECK(at<net::eth_hdr>(f, 0).dst == pod_b1_mac);
    CHECK(at<net::eth_hdr>(f, 0).src == gw);
    const auto& inner = at<net::ipv4_hdr>(f, 14);
    CHECK(inner.ttl == 62);
    CHECK(ipv4_checksum_ok(f, 14));
    CHECK(std::equal(frame.begin() + 50 + 34, frame.end(), f.begin() + 34));
    CHECK(node.counters().decapsulated.get() == 1);

    // Fixed-MAC pods need no learning; a zero UDP checksum means none (RFC 768).
    auto zero_csum = vxlan_from_a(ip4("172.25.2.3")).bytes();
    zero_csum[40] = zero_csum[41] = 0;
    out = node.underlay(zero_csum);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == pod_b2_mac);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("decapsulation: martian inner sources dropped; unknown senders only when allowed",
          "[vxlan][decap]") {
    {
        test_node node;
        auto f = pkt()
                     .eth(underlay_mac, kernel_a_mac)
                     .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0})
                     .udp(45000, 8472)
                     .vxlan(1)
                     .eth(twill_b_vtep, kernel_a_vtep)
                     .ipv4(ip4("127.0.0.1"), ip4("172.25.2.3"))
                     .udp(1, 2)
                     .bytes();
        CHECK(node.underlay(f).empty());
        CHECK(node.drops(drop::martian) == 1);
    }
    // From 198.18.0.9, which is no node: dropped by default, delivered when
    // cluster.vxlan.knownSourcesOnly is false (what Linux's flannel.1 does).
    auto from_stranger = pkt()
                             .eth(underlay_mac, mac("02:00:00:00:00:09"))
                             .ipv4(ip4("198.18.0.9"), ip4("198.18.0.2"), {.frag = 0})
                             .udp(45000, 8472)
                             .vxlan(1)
                             .eth(twill_b_vtep, mac("0e:00:00:00:09:00"))
                             .ipv4(ip4("172.25.1.2"), ip4("172.25.2.3"))
                             .udp(1, 2)
                             .bytes();
    {
        test_node node;
        CHECK(node.underlay(from_stranger).empty());
        CHECK(node.drops(drop::vxlan_unknown_source) == 1);
    }
    {
        std::string yaml = default_node_yaml;
        const std::string from = "vxlan: {vni: 1, port: 8472, mtu: 1450}";
        yaml.replace(yaml.find(from), from.size(),
                     "vxlan: {vni: 1, port: 8472, mtu: 1450, knownSourcesOnly: false}");
        test_node node(yaml);
        auto out = node.underlay(from_stranger);
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == pod_b2_port);
        CHECK(node.total_drops() == 0);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("a pod whose MAC is not known yet is ARPed for", "[vxlan][decap][arp]") {
    test_node node;
    auto out = node.underlay(vxlan_from_a(ip4("172.25.2.2")).bytes());
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    const auto& arp = at<net::arp_hdr>(out[0].bytes, 14);
    CHECK(arp.oper.get() == net::arp_hdr::request);
    CHECK(arp.sha == gw);
    CHECK(arp.spa.get() == ip4("169.254.1.1").value);
    CHECK(arp.tpa.get() == ip4("172.25.2.2").value);
    CHECK(node.drops(drop::pod_unknown_mac) == 1);

    // The pod's answer teaches its MAC; the next packet is delivered.
    auto reply = pkt().eth(gw, pod_b1_mac)
                     .arp(2, pod_b1_mac, ip4("172.25.2.2"), gw, ip4("169.254.1.1"))
                     .bytes();
    CHECK(node.pod(pod_b1_port, reply).empty());
    out = node.underlay(vxlan_from_a(ip4("172.25.2.2")).bytes());
    REQUIRE(out.size() == 1);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == pod_b1_mac);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("underlay and VXLAN input that is not for a local pod is a counted drop",
          "[vxlan][decap]") {
    struct row {
        const char* what;
        std::vector<uint8_t> frame;
        drop reason;
    };
    // Changes an inner byte; the outer UDP checksum is dropped so it does not catch it first.
    auto with = [](std::vector<uint8_t> f, size_t off, uint8_t value) {
        f[off] = value;
        f[40] = f[41] = 0;
        return f;
    };
    auto valid = vxlan_from_a(ip4("172.25.2.2")).bytes();
    auto bad_udp_csum = valid;
    bad_udp_csum[41] ^= 0xff;
    std::vector<row> rows = {
        {"wrong VNI", vxlan_from_a(ip4("172.25.2.2"), 2).bytes(), drop::vxlan_bad_vni},
        {"other UDP port", vxlan_from_a(ip4("172.25.2.2"), 1, 4789).bytes(),
         drop::underlay_not_for_dataplane},
        {"no I flag",
         pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0})
             .udp(45000, 8472).vxlan(1, 0).eth(twill_b_vtep, kernel_a_vtep)
             .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2")).payload(20).bytes(),
         drop::vxlan_bad_flags},
        {"reserved flag bits",
         pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0})
             .udp(45000, 8472).vxlan(1, 0x0c000000).eth(twill_b_vtep, kernel_a_vtep)
             .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2")).payload(20).bytes(),
         drop::vxlan_bad_flags},
        {"unknown source node",
         pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.77"), ip4("198.18.0.2"), {.frag = 0})
             .udp(45000, 8472).vxlan(1).eth(twill_b_vtep, kernel_a_vtep)
             .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2")).payload(20).bytes(),
         drop::vxlan_unknown_source},
        {"not addressed to the node IP",
         pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.9"), {.frag = 0})
             .udp(45000, 8472).vxlan(1).payload(40).bytes(),
         drop::underlay_not_for_dataplane},
        {"TCP to the node", pkt().eth(underlay_mac, kernel_a_mac)
                               .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2")).tcp(5000, 22).bytes(),
         drop::underlay_not_for_dataplane},
        {"outer UDP checksum wrong", bad_udp_csum, drop::udp_bad_checksum},
        {"inner dst MAC not our VTEP", with(valid, 50, 0x0a), drop::inner_bad_dst_mac},
        {"inner not IPv4", with(valid, 63, 0xdd), drop::inner_not_ipv4},
        {"inner for a pod that does not exist", vxlan_from_a(ip4("172.25.2.99")).bytes(),
         drop::no_local_pod},
        {"inner for another node's slice", vxlan_from_a(ip4("172.25.3.4")).bytes(),
         drop::decap_not_local},
        {"inner for the node's flannel address", vxlan_from_a(ip4("172.25.2.0")).bytes(),
         drop::to_node_address},
        {"IPv6 on the underlay", pkt().eth(underlay_mac, kernel_a_mac, 0x86dd).payload(60).bytes(),
         drop::underlay_other_ethertype},
        {"outer fragment",
         pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0x2000})
             .udp(45000, 8472).vxlan(1).eth(twill_b_vtep, kernel_a_vtep)
             .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2")).payload(20).bytes(),
         drop::outer_fragment},
    };
    for (const row& r : rows) {
        INFO(r.what);
        test_node node;
        node.learn_pod_mac(pod_b1_port, pod_b1_mac);
        CHECK(node.underlay(r.frame).empty());
        CHECK(node.drops(r.reason) == 1);
        CHECK(node.total_drops() == 1);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("pod to local pod is routed with one TTL decrement", "[forward]") {
    test_node node;
    node.learn_pod_mac(pod_b1_port, pod_b1_mac);
    auto in = pkt().eth(gw, pod_b2_mac).ipv4(ip4("172.25.2.3"), ip4("172.25.2.2")).icmp_echo(1, 1).payload(56).bytes();
    auto out = node.pod(pod_b2_port, in);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == pod_b1_mac);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).src == gw);
    CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).ttl == 63);
    CHECK(ipv4_checksum_ok(out[0].bytes, 14));
    CHECK(node.counters().delivered_local.get() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("pod input that may not pass is a counted drop", "[forward]") {
    struct row {
        const char* what;
        uint16_t port;
        std::vector<uint8_t> frame;
        drop reason;
        int icmp_type = -1;  // the ICMP error the source gets back, if any
    };
    std::vector<row> rows = {
        {"spoofed source IP", pod_b1_port,
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.9"), ip4("172.25.1.2")).udp(1, 2).bytes(),
         drop::pod_spoofed_ip},
        {"spoofed source MAC (configured MAC)", pod_b2_port,
         pkt().eth(gw, mac("0a:00:00:00:09:09")).ipv4(ip4("172.25.2.3"), ip4("172.25.1.2")).udp(1, 2).bytes(),
         drop::pod_spoofed_mac},
        {"not addressed to the gateway MAC", pod_b1_port,
         pkt().eth(mac("0a:11:22:33:44:55"), pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2")).udp(1, 2).bytes(),
         drop::pod_bad_dst_mac},
        {"TTL expires here", pod_b1_port, from_b1(ip4("172.25.1.2"), {.ttl = 1}), drop::ttl_expired,
         icmp::time_exceeded},
        {"TTL expires here (local)", pod_b1_port, from_b1(ip4("172.25.2.3"), {.ttl = 1}),
         drop::ttl_expired, icmp::time_exceeded},
        {"outside the cluster", pod_b1_port, from_b1(ip4("8.8.8.8")), drop::no_route},
        {"cluster slice with no node", pod_b1_port, from_b1(ip4("172.25.9.9")), drop::no_remote_node},
        {"no such local pod", pod_b1_port, from_b1(ip4("172.25.2.77")), drop::no_local_pod},
        {"the node's own flannel address", pod_b1_port, from_b1(ip4("172.25.2.0")),
         drop::to_node_address},
        {"larger than the overlay MTU", pod_b1_port,
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2")).udp(1, 2).payload(1500 - 28).bytes(),
         drop::too_big, icmp::dest_unreachable},
        {"IP-in-IP from a pod", pod_b1_port,
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"))
             .ipv4(ip4("172.25.2.2"), ip4("172.25.1.9")).udp(1, 2).bytes(),
         drop::pod_tunnel},
        {"VXLAN from a pod", pod_b1_port,
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2")).udp(40000, 8472).vxlan(1)
             .eth(twill_b_vtep, kernel_a_vtep).ipv4(ip4("172.25.1.2"), ip4("172.25.2.3")).udp(1, 2).bytes(),
         drop::pod_tunnel},
        {"TCP fragment at offset 8 bytes (RFC 1858)", pod_b1_port,
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.frag = 0x0001})
             .tcp(1, 2).bytes(),
         drop::fragment_attack},
        {"tiny first fragment: the TCP header split", pod_b1_port,
         [] {
             auto f = pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.frag = 0x2000})
                          .tcp(1, 2).bytes();
             f.resize(14 + 20 + 8);  // 8 bytes of TCP: ports, no flags
             f[16] = 0;
             f[17] = 28;  // total length
             f[24] = f[25] = 0;
             uint16_t c = rte_raw_cksum(f.data() + 14, 20);
             c = uint16_t(~c);
             std::memcpy(&f[24], &c, 2);
             return f;
         }(),
         drop::fragment_attack},
        {"to loopback", pod_b1_port, from_b1(ip4("127.0.0.1")), drop::martian},
        {"to multicast", pod_b1_port, from_b1(ip4("224.0.0.251")), drop::martian},
        {"to 0/8", pod_b1_port, from_b1(ip4("0.1.2.3")), drop::martian},
        {"IPv6 from a pod", pod_b1_port, pkt().eth(gw, pod_b1_mac, 0x86dd).payload(60).bytes(),
         drop::pod_other_ethertype},
        {"frame from a port with no pod", 7, from_b1(ip4("172.25.1.2")), drop::unknown_port},
    };
    for (const row& r : rows) {
        INFO(r.what);
        test_node node;
        node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
        auto out = node.pod(r.port, r.frame);
        if (r.icmp_type < 0) {
            CHECK(out.empty());
        } else {
            REQUIRE(out.size() == 1);
            CHECK(out[0].port == r.port);
            CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).proto == net::ip_proto_icmp);
            CHECK(out[0].bytes[34] == r.icmp_type);
        }
        CHECK(node.drops(r.reason) == 1);
        CHECK(node.total_drops() == 1);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("maintenance ARPs for unresolved next hops and unknown pod MACs", "[arp]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.3"), mac("02:00:00:00:03:03"));
    auto out = node.maintenance();
    std::set<std::pair<uint16_t, uint32_t>> asked;
    for (const auto& f : out) {
        asked.insert({f.port, at<net::arp_hdr>(f.bytes, 14).tpa.get()});
    }
    CHECK(asked == std::set<std::pair<uint16_t, uint32_t>>{
                       {underlay_port, ip4("198.18.0.1").value},  // kernel-c is resolved
                       {pod_b1_port, ip4("172.25.2.2").value},    // pod-b2's MAC is configured
                   });
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("a next hop silent for 30 s is asked again; its answer may move it", "[arp]") {
    test_node node;
    const uint64_t hz = node.params().tsc_hz;
    auto arp_from_c = [&](const mac_addr& m, uint16_t oper) {
        return pkt().eth(oper == net::arp_hdr::request ? mac("ff:ff:ff:ff:ff:ff") : underlay_mac, m)
            .arp(oper, m, ip4("198.18.0.3"), oper == net::arp_hdr::request ? mac_addr{} : underlay_mac,
                 ip4("198.18.0.2"))
            .bytes();
    };
    auto asks_c = [&] {
        for (const auto& f : node.maintenance()) {
            if (f.port == underlay_port && at<net::arp_hdr>(f.bytes, 14).tpa.get() == ip4("198.18.0.3").value) {
                return true;
            }
        }
        return false;
    };
    node.underlay(arp_from_c(mac("02:00:00:00:03:03"), net::arp_hdr::reply));  // heard now
    CHECK_FALSE(asks_c());
    node.ctx().now_tsc += 29 * hz;
    CHECK_FALSE(asks_c());
    node.ctx().now_tsc += 2 * hz;  // 31 s of silence
    CHECK(asks_c());
    CHECK_FALSE(asks_c());  // at most once a second
    node.ctx().now_tsc += hz;
    CHECK(asks_c());
    // Meanwhile traffic keeps the last MAC; the answer comes from a new one, which takes over.
    auto sent = node.pod(pod_b1_port, pkt().eth(default_gateway_mac, pod_b1_mac)
                                          .ipv4(ip4("172.25.2.2"), ip4("172.25.3.9")).udp(1, 2).bytes());
    REQUIRE(sent.size() == 1);
    CHECK(at<net::eth_hdr>(sent[0].bytes, 0).dst == mac("02:00:00:00:03:03"));
    node.underlay(arp_from_c(mac("02:00:00:00:03:04"), net::arp_hdr::reply));
    CHECK_FALSE(asks_c());
    sent = node.pod(pod_b1_port, pkt().eth(default_gateway_mac, pod_b1_mac)
                                     .ipv4(ip4("172.25.2.2"), ip4("172.25.3.9")).udp(1, 2).bytes());
    REQUIRE(sent.size() == 1);
    CHECK(at<net::eth_hdr>(sent[0].bytes, 0).dst == mac("02:00:00:00:03:04"));
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("twill to twill: what one node encapsulates the other delivers", "[vxlan]") {
    const std::string node_a_yaml = R"(
node: {name: kernel-a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}
cluster: {clusterCIDR: 172.25.0.0/16}
ports: {underlay: "underlay"}
nodes: [{name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}]
pods: [{name: pod-a1, ip: 172.25.1.2, port: "pa1", mac: "0a:00:00:00:01:02"}]
)";
    test_node a(node_a_yaml, kernel_a_mac);
    test_node b;
    a.learn_neighbour(ip4("198.18.0.2"), underlay_mac);
    b.learn_pod_mac(pod_b1_port, pod_b1_mac);
    auto in = pkt().eth(gw, mac("0a:00:00:00:01:02"))
                  .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2"))
                  .tcp(33000, 8080)
                  .payload(1000, 0x5a)
                  .bytes();
    auto wire = a.pod(1, in);
    REQUIRE(wire.size() == 1);
    auto delivered = b.underlay(wire[0].bytes);
    REQUIRE(delivered.size() == 1);
    CHECK(delivered[0].port == pod_b1_port);
    CHECK(at<net::ipv4_hdr>(delivered[0].bytes, 14).ttl == 62);
    CHECK(std::equal(in.begin() + 34, in.end(), delivered[0].bytes.begin() + 34));
    CHECK(a.total_drops() + b.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("ECN marks from the underlay reach the pod, as Linux decapsulates them", "[vxlan][decap]") {
    struct row {
        const char* what;
        uint8_t outer_tos, inner_tos;
        bool delivered;
        uint8_t delivered_tos;
    } rows[] = {
        {"outer CE, inner ECT(0): marked CE", 0x03, 0x02, true, 0x03},
        {"outer CE, inner ECT(1) with DSCP: marked CE, DSCP kept", 0x03, 0xb9, true, 0xbb},
        {"outer CE, inner not ECN-capable: dropped", 0x03, 0x00, false, 0},
        {"outer ECT(0), inner ECT(1): unchanged", 0x02, 0x01, true, 0x01},
        {"outer not-ECT, inner CE: unchanged", 0x00, 0x03, true, 0x03},
    };
    for (const row& r : rows) {
        INFO(r.what);
        test_node node;
        node.learn_pod_mac(pod_b1_port, pod_b1_mac);
        auto frame = pkt().eth(underlay_mac, kernel_a_mac)
                         .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.tos = r.outer_tos, .frag = 0})
                         .udp(45000, 8472)
                         .vxlan(1)
                         .eth(twill_b_vtep, kernel_a_vtep)
                         .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2"), {.ttl = 63, .tos = r.inner_tos})
                         .udp(1000, 2000)
                         .payload(20)
                         .bytes();
        auto out = node.underlay(frame);
        if (!r.delivered) {
            CHECK(out.empty());
            CHECK(node.drops(drop::ecn_ce_not_ect) == 1);
            continue;
        }
        REQUIRE(out.size() == 1);
        CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).tos == r.delivered_tos);
        CHECK(ipv4_checksum_ok(out[0].bytes, 14));
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("a pod with an unknown MAC is asked at most once a second", "[arp]") {
    test_node node;
    auto frame = vxlan_from_a(ip4("172.25.2.2")).bytes();
    CHECK(node.underlay(std::vector<std::vector<uint8_t>>(3, frame)).size() == 1);
    CHECK(node.drops(drop::pod_unknown_mac) == 3);
    CHECK(node.underlay(frame).empty());
    node.ctx().now_tsc += node.params().tsc_hz;
    CHECK(node.underlay(frame).size() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("neighbour maintenance with more nodes than a transmit queue holds", "[arp]") {
    std::string yaml = R"(
node: {name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster: {clusterCIDR: 172.16.0.0/12}
ports: {underlay: "underlay"}
nodes:
)";
    const int nodes = 300;
    for (int i = 0; i < nodes; ++i) {
        char line[160];
        snprintf(line, sizeof(line),
                 "  - {name: n%d, ip: 198.19.%d.%d, podCIDR: 172.%d.%d.0/24, "
                 "vtepMAC: \"0e:00:00:01:%02x:%02x\"}\n",
                 i, i / 200, i % 200 + 1, 16 + i / 256, i % 256, i / 256, i % 256);
        yaml += line;
    }
    test_node node(yaml);
    std::set<uint32_t> asked;
    int passes = 0;
    bool more = true;
    while (more && passes < 10) {
        more = neighbour_maintenance(node.ctx());
        ++passes;
        for (uint16_t i = 0; i < node.ctx().tx[underlay_port].n; ++i) {
            rte_mbuf* m = node.ctx().tx[underlay_port].pkts[i];
            asked.insert(rte_pktmbuf_mtod_offset(m, net::arp_hdr*, 14)->tpa.get());
            rte_pktmbuf_free(m);
        }
        node.ctx().tx[underlay_port].n = 0;
    }
    CHECK(asked.size() == size_t(nodes));  // every node asked once, none lost to a full queue
    CHECK(passes == 3);                    // 300 requests through a 128-packet queue
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("all fragments of a datagram take the same UDP source port", "[vxlan][encap]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    auto first = pkt().eth(gw, pod_b1_mac)
                     .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.id = 77, .frag = 0x2000})
                     .udp(40000, 53)
                     .payload(64)
                     .bytes();
    auto later = pkt().eth(gw, pod_b1_mac)
                     .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.id = 77, .frag = 0x0009})
                     .payload(40)
                     .bytes();
    later[14 + 9] = 17;  // protocol UDP, no UDP header in a later fragment
    later[14 + 10] = later[14 + 11] = 0;
    uint16_t c = uint16_t(~twill::net::raw_checksum(later.data() + 14, 20));
    std::memcpy(later.data() + 24, &c, 2);
    auto a = node.pod(pod_b1_port, first);
    auto b = node.pod(pod_b1_port, later);
    REQUIRE(a.size() == 1);
    REQUIRE(b.size() == 1);
    CHECK(at<net::udp_hdr>(a[0].bytes, 34).src_port.get() == at<net::udp_hdr>(b[0].bytes, 34).src_port.get());
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("ordinary fragments pass: a first one with its header, later ones", "[forward]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    std::vector<std::vector<uint8_t>> frags = {
        pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.id = 7, .frag = 0x2000})
            .udp(1, 2).payload(64).bytes(),
        pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.id = 7, .frag = 0x0009})
            .payload(64).bytes(),
        pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.id = 8, .frag = 0x0001})
            .payload(64).bytes(),  // offset 8 bytes, but UDP-less (proto 253): no TCP flags to hide
    };
    auto out = node.pod(pod_b1_port, frags);
    CHECK(out.size() == 3);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("too big without DF: fragmented as the kernel does, each fragment encapsulated", "[forward]") {
    for (uint16_t frag_in : {uint16_t(0), uint16_t(0x2000 | 100)}) {  // whole; a fragment with more after it
        INFO("frag field " << frag_in);
        test_node node;
        node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
        const auto big = pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.ttl = 64, .frag = frag_in})
                             .udp(1, 2).payload(1500 - 28).bytes();
        auto out = node.pod(pod_b1_port, big);
        REQUIRE(out.size() == 2);
        std::vector<uint8_t> joined;
        for (size_t i = 0; i < out.size(); ++i) {
            const auto& f = out[i].bytes;
            CHECK(out[i].port == underlay_port);
            CHECK(ipv4_checksum_ok(f, 14));
            CHECK(ipv4_checksum_ok(f, 64));
            const auto& inner = at<net::ipv4_hdr>(f, 64);
            CHECK(inner.ttl == 63);
            CHECK(inner.id.get() == 0x1234);
            CHECK(inner.total_length.get() <= 1450);
            const uint16_t fr = inner.frag.get();
            CHECK((fr & net::ipv4_hdr::offset_mask) == (frag_in & net::ipv4_hdr::offset_mask) + (i == 0 ? 0 : 1424 / 8));
            const bool mf_expected = i == 0 || (frag_in & net::ipv4_hdr::flag_mf);
            CHECK(bool(fr & net::ipv4_hdr::flag_mf) == mf_expected);
            joined.insert(joined.end(), f.begin() + 84, f.end());
        }
        CHECK(joined == std::vector<uint8_t>(big.begin() + 34, big.end()));  // the payload, in order
        CHECK(node.counters().fragmented.get() == 1);
        CHECK(node.total_drops() == 0);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("packets wait for their next hop's or pod's MAC, as in the kernel's neighbour queue",
          "[arp][park]") {
    SECTION("a next hop answers: the packet leaves, nothing is lost") {
        test_node node;
        node.params().park_unresolved = true;
        auto out = node.pod(pod_b1_port, from_b1(ip4("172.25.1.2")));
        REQUIRE(out.size() == 1);  // the ARP request; the packet waits
        CHECK(at<net::eth_hdr>(out[0].bytes, 0).type.get() == net::ether_type_arp);
        CHECK(node.parked().empty());  // nothing learned yet
        node.underlay(pkt().eth(underlay_mac, kernel_a_mac)
                          .arp(net::arp_hdr::reply, kernel_a_mac, ip4("198.18.0.1"), underlay_mac, ip4("198.18.0.2"))
                          .bytes());
        out = node.parked();
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == underlay_port);
        CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == kernel_a_mac);
        CHECK(at<net::ipv4_hdr>(out[0].bytes, 64).dst_addr() == ip4("172.25.1.2"));
        CHECK(node.total_drops() == 0);
    }
    SECTION("no answer within a second: dropped and counted") {
        test_node node;
        node.params().park_unresolved = true;
        node.pod(pod_b1_port, from_b1(ip4("172.25.1.2")));
        node.ctx().now_tsc += node.params().tsc_hz;
        CHECK(node.parked().empty());
        CHECK(node.drops(drop::neighbour_unresolved) == 1);
    }
    SECTION("a pod answers: the decapsulated packet is delivered") {
        test_node node;
        node.params().park_unresolved = true;
        auto out = node.underlay(vxlan_from_a(ip4("172.25.2.2")).bytes());
        REQUIRE(out.size() == 1);  // the ARP request to the pod
        node.pod(pod_b1_port, pkt().eth(gw, pod_b1_mac)
                                  .arp(2, pod_b1_mac, ip4("172.25.2.2"), gw, ip4("169.254.1.1"))
                                  .bytes());
        out = node.parked();
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == pod_b1_port);
        CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == pod_b1_mac);
        CHECK(node.total_drops() == 0);
    }
    SECTION("the destination goes away meanwhile: dropped as such") {
        test_node node;
        node.params().park_unresolved = true;
        node.pod(pod_b1_port, from_b1(ip4("172.25.1.2")));
        config::node_file next = node.cfg();
        next.nodes.erase(next.nodes.begin());  // kernel-a
        REQUIRE(node.state().apply(next).empty());
        node.snapshot();
        node.ctx().parked_dirty = true;
        CHECK(node.parked().empty());
        CHECK(node.drops(drop::no_remote_node) == 1);
    }
    SECTION("a full queue drops the rest; a worker's end drops what waits") {
        test_node node;
        node.params().park_unresolved = true;
        std::vector<std::vector<uint8_t>> many(pipeline_ctx::park_capacity + 1, from_b1(ip4("172.25.1.2")));
        node.pod(pod_b1_port, many);
        CHECK(node.ctx().nparked == pipeline_ctx::park_capacity);
        CHECK(node.drops(drop::neighbour_unresolved) == 1);
        drop_parked(node.ctx());
        CHECK(node.drops(drop::neighbour_unresolved) == pipeline_ctx::park_capacity + 1);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}
