// ICMP errors the node sends: field by field, routed back to where the source is, never
// about an error or a later fragment, and rate-limited.
#include <catch2/catch.hpp>

#include <rte_ip.h>

#include "dataplane/icmp/icmp.h"
#include "tests/unit/fixture.h"
#include "tests/unit/frames.h"

using namespace twill;
using namespace twill::test;

namespace {

const mac_addr gw = default_gateway_mac;

uint16_t sum(const std::vector<uint8_t>& f, size_t off, size_t len) {
    return rte_raw_cksum(f.data() + off, len);
}

std::vector<uint8_t> b1_to(ip4_addr dst, ipv4_opts o, size_t payload = 32) {
    return pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), dst, o).udp(40000, 53).payload(payload).bytes();
}

// VXLAN from kernel-a, inner source `src`, to pod-b2, with inner TTL `ttl`.
std::vector<uint8_t> from_a(ip4_addr src, uint8_t ttl) {
    return pkt()
        .eth(underlay_mac, kernel_a_mac)
        .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0})
        .udp(45000, 8472)
        .vxlan(1)
        .eth(twill_b_vtep, kernel_a_vtep)
        .ipv4(src, ip4("172.25.2.3"), {.ttl = ttl})
        .udp(7, 9)
        .payload(16)
        .bytes();
}

}  // namespace

TEST_CASE("too big with DF: fragmentation needed with the overlay MTU, to the pod", "[icmp]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    const std::vector<uint8_t> big = b1_to(ip4("172.25.1.2"), {}, 1500 - 28);  // DF set
    auto out = node.pod(pod_b1_port, big);
    REQUIRE(out.size() == 1);
    const auto& f = out[0].bytes;
    CHECK(out[0].port == pod_b1_port);
    CHECK(at<net::eth_hdr>(f, 0).dst == pod_b1_mac);
    CHECK(at<net::eth_hdr>(f, 0).src == gw);
    const auto& ip = at<net::ipv4_hdr>(f, 14);
    CHECK(ip.version_ihl == 0x45);
    CHECK(ip.tos == 0xc0);
    CHECK(ip.ttl == 64);
    CHECK(ip.proto == net::ip_proto_icmp);
    CHECK(ip.src_addr() == ip4("172.25.2.0"));  // the node's flannel address
    CHECK(ip.dst_addr() == ip4("172.25.2.2"));
    CHECK(ip.total_length.get() == 576);  // quotes as much as fits in 576 bytes
    CHECK(f.size() == 14 + 576);
    CHECK(sum(f, 14, 20) == 0xffff);
    const auto& h = at<net::icmp_hdr>(f, 34);
    CHECK(h.type == icmp::dest_unreachable);
    CHECK(h.code == icmp::code_frag_needed);
    CHECK(h.mtu.get() == 1450);
    CHECK(sum(f, 34, 576 - 20) == 0xffff);
    CHECK(std::equal(f.begin() + 42, f.end(), big.begin() + 14));  // the original, from its IP header
    CHECK(node.drops(drop::too_big) == 1);
    CHECK(node.counters().icmp_errors_sent.get() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("TTL expiring on decapsulation: time exceeded, encapsulated back to the source's node",
          "[icmp]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    const std::vector<uint8_t> in = from_a(ip4("172.25.1.2"), 1);
    auto out = node.underlay(in);
    REQUIRE(out.size() == 1);
    const auto& f = out[0].bytes;
    CHECK(out[0].port == underlay_port);
    CHECK(at<net::eth_hdr>(f, 0).dst == kernel_a_mac);
    CHECK(at<net::ipv4_hdr>(f, 14).dst_addr() == ip4("198.18.0.1"));
    CHECK(at<net::udp_hdr>(f, 34).dst_port.get() == 8472);
    CHECK(at<net::eth_hdr>(f, 50).dst == kernel_a_vtep);
    const auto& ip = at<net::ipv4_hdr>(f, 64);
    CHECK(ip.src_addr() == ip4("172.25.2.0"));
    CHECK(ip.dst_addr() == ip4("172.25.1.2"));
    CHECK(ip.proto == net::ip_proto_icmp);
    const size_t quoted = in.size() - 64;  // the whole inner packet fits
    CHECK(ip.total_length.get() == 28 + quoted);
    const auto& h = at<net::icmp_hdr>(f, 84);
    CHECK(h.type == icmp::time_exceeded);
    CHECK(h.code == icmp::code_ttl);
    CHECK(h.mtu.get() == 0);
    CHECK(sum(f, 84, 8 + quoted) == 0xffff);
    CHECK(std::equal(f.begin() + 92, f.end(), in.begin() + 64));
    CHECK(node.drops(drop::ttl_expired) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("no ICMP error about an error, a later fragment or a source outside the cluster",
          "[icmp]") {
    struct row {
        const char* what;
        std::vector<uint8_t> frame;
        bool answered;
    };
    const ipv4_opts ttl1{.ttl = 1};
    std::vector<row> rows = {
        {"an echo request: answered",
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), ttl1).icmp_echo(1, 1).bytes(), true},
        {"an ICMP error: not", [&] {
             auto f = pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), ttl1)
                          .icmp_echo(1, 1).payload(28).bytes();
             f[34] = icmp::dest_unreachable;  // port unreachable, as a pod would send it
             f[35] = 3;
             return f;
         }(),
         false},
        {"a later fragment: not",
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.ttl = 1, .frag = 0x0010})
             .payload(40).bytes(),
         false},
        {"a first fragment: answered",
         pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.ttl = 1, .frag = 0x2000})
             .udp(1, 2).payload(40).bytes(),
         true},
    };
    for (const row& r : rows) {
        INFO(r.what);
        test_node node;
        node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
        CHECK(node.pod(pod_b1_port, r.frame).size() == (r.answered ? 1u : 0u));
        CHECK(node.drops(drop::ttl_expired) == 1);
    }
    // From the overlay, a source outside the cluster gets nothing.
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    CHECK(node.underlay(from_a(ip4("10.9.9.9"), 1)).empty());
    CHECK(node.drops(drop::ttl_expired) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("ICMP errors are rate-limited: a burst of 50, then 1000 a second", "[icmp]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    const std::vector<uint8_t> expiring = b1_to(ip4("172.25.1.2"), {.ttl = 1});
    std::vector<std::vector<uint8_t>> frames(30, expiring);
    size_t answered = node.pod(pod_b1_port, frames).size();
    answered += node.pod(pod_b1_port, frames).size();
    answered += node.pod(pod_b1_port, frames).size();
    CHECK(answered == icmp::burst);
    CHECK(node.counters().icmp_errors_rate_limited.get() == 90 - icmp::burst);
    node.ctx().now_tsc += node.params().tsc_hz / 100;  // 10 ms: 10 more
    CHECK(node.pod(pod_b1_port, frames).size() == 10);
    CHECK(node.drops(drop::ttl_expired) == 120);
    REQUIRE_NO_LEAKED_MBUFS();
}
