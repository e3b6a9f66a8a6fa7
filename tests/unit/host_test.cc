// The host port: the node's kernel reaches pods through twill and keeps its underlay
// traffic; pods reach the node and what lies beyond it.
#include <catch2/catch.hpp>

#include "tests/unit/fixture.h"
#include "tests/unit/frames.h"

using namespace twill;
using namespace twill::test;

namespace {

constexpr uint16_t host_port = 5;
const mac_addr gw = default_gateway_mac;

struct host_node : test_node {
    host_node() {
        params().host_port = host_port;
        learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
        learn_pod_mac(pod_b1_port, pod_b1_mac);
    }
};

}  // namespace

TEST_CASE("host port: the kernel reaches local and remote pods through the gateway MAC", "[host]") {
    host_node node;
    auto out = node.host(pkt().eth(gw, underlay_mac).ipv4(ip4("198.18.0.2"), ip4("172.25.2.2"), {.ttl = 64})
                              .icmp_echo(1, 1).bytes());  // collects the queues
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == pod_b1_mac);
    CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).ttl == 63);

    out = node.host(pkt().eth(gw, underlay_mac).ipv4(ip4("172.25.2.0"), ip4("172.25.1.2")).udp(1, 2).bytes());
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).dst_addr() == ip4("198.18.0.1"));
    CHECK(at<net::ipv4_hdr>(out[0].bytes, 64).src_addr() == ip4("172.25.2.0"));

    // Outside the cluster from the kernel: not bounced back to it.
    CHECK(node.host(pkt().eth(gw, underlay_mac).ipv4(ip4("198.18.0.2"), ip4("8.8.8.8")).udp(1, 2).bytes()).empty());
    CHECK(node.drops(drop::no_route) == 1);
    CHECK(node.counters().from_host.get() == 3);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("host port: ARP for pod addresses answered, the kernel's own frames passed through",
          "[host]") {
    host_node node;
    auto who_has = [](const char* target) {
        return pkt().eth(mac("ff:ff:ff:ff:ff:ff"), underlay_mac)
            .arp(net::arp_hdr::request, underlay_mac, ip4("198.18.0.2"), mac_addr{}, ip4(target))
            .bytes();
    };
    for (const char* pod : {"172.25.2.2", "172.25.1.2", "172.25.9.9"}) {
        INFO(pod);
        auto out = node.host(who_has(pod));
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == host_port);
        const auto& arp = at<net::arp_hdr>(out[0].bytes, 14);
        CHECK(arp.oper.get() == net::arp_hdr::reply);
        CHECK(arp.sha == gw);
        CHECK(arp.spa.get() == ip4(pod).value);
    }
    // The kernel's underlay life: its ARP for another host, its TCP to it, IPv6: as they are.
    const std::vector<std::vector<uint8_t>> own = {
        who_has("198.18.0.1"),
        pkt().eth(kernel_a_mac, underlay_mac).ipv4(ip4("198.18.0.2"), ip4("198.18.0.1")).tcp(22, 40000).bytes(),
        pkt().eth(mac("33:33:00:00:00:01"), underlay_mac, 0x86dd).payload(60).bytes(),
    };
    for (const auto& f : own) {
        auto out = node.host(f);
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == underlay_port);
        CHECK(out[0].bytes == f);
    }
    CHECK(node.counters().host_to_underlay.get() == 3);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("host port: the node's underlay traffic and ARP answers go up to its kernel", "[host]") {
    host_node node;
    const auto ssh = pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"))
                         .tcp(40000, 22).payload(10).bytes();
    auto out = node.underlay(ssh);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == host_port);
    CHECK(out[0].bytes == ssh);
    // An ARP reply to the node's address teaches twill the next hop and reaches the kernel.
    const auto reply = pkt().eth(underlay_mac, mac("02:00:00:00:03:03"))
                           .arp(net::arp_hdr::reply, mac("02:00:00:00:03:03"), ip4("198.18.0.3"),
                                underlay_mac, ip4("198.18.0.2"))
                           .bytes();
    out = node.underlay(reply);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == host_port);
    CHECK(node.counters().neighbours_learned.get() == 1);
    // UDP to the node that is not VXLAN: the kernel's too.
    out = node.underlay(pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"))
                            .udp(5000, 53).payload(8).bytes());
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == host_port);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("host port: pods reach the node's addresses and the world beyond through its kernel",
          "[host]") {
    for (const char* dst : {"198.18.0.2", "172.25.2.0", "8.8.8.8"}) {
        INFO(dst);
        host_node node;
        auto out = node.pod(pod_b1_port, pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4(dst), {.ttl = 64})
                                             .udp(1, 2).bytes());
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == host_port);
        CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == underlay_mac);
        CHECK(at<net::eth_hdr>(out[0].bytes, 0).src == gw);
        CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).ttl == 64);  // the kernel is the next router
        CHECK(node.counters().to_host.get() == 1);
    }
    // From a remote pod through VXLAN to the node's flannel address.
    host_node node;
    auto out = node.underlay(pkt()
                                 .eth(underlay_mac, kernel_a_mac)
                                 .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0})
                                 .udp(45000, 8472)
                                 .vxlan(1)
                                 .eth(twill_b_vtep, kernel_a_vtep)
                                 .ipv4(ip4("172.25.1.2"), ip4("172.25.2.0"))
                                 .icmp_echo(1, 1)
                                 .bytes());
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == host_port);
    CHECK(at<net::ipv4_hdr>(out[0].bytes, 14).src_addr() == ip4("172.25.1.2"));
    REQUIRE_NO_LEAKED_MBUFS();
}
