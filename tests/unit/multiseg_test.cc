// Multi-segment packets (a port receiving with scatter, for a jumbo MTU): each packet
// given in one mbuf and in a chain must come out the same, byte for byte, with the same
// counters; a jumbo packet, which only a chain holds, goes through encap and decap whole;
// a chain whose first segment does not hold the headers is a counted drop.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include <rte_ip.h>

#include "dataplane/net/checksum.h"
#include "dataplane/net/crc32c.h"
#include "tests/unit/fixture.h"
#include "tests/unit/frames.h"
#include "tests/unit/tcp_node.h"

using namespace twill;
using namespace twill::test;

namespace {

constexpr uint8_t syn = 0x02;

const std::string services = std::string(default_node_yaml) + R"(services:
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: 172.25.1.2}]
  - name: sig
    clusterIP: 10.96.0.11
    ports: [{protocol: SCTP, port: 3868, targetPort: 3869}]
    endpoints: [{ip: 172.25.1.2}]
)";

// A pod's SCTP packet to the SCTP service, `chunk_bytes` of DATA after the header.
std::vector<uint8_t> sctp_to_service(size_t chunk_bytes) {
    std::vector<uint8_t> sctp = {0x9c, 0x40, 0x0f, 0x1c, 0, 0, 0, 1, 0, 0, 0, 0};
    sctp.push_back(0);  // DATA
    sctp.push_back(3);
    const auto len = uint16_t(16 + chunk_bytes);
    sctp.push_back(uint8_t(len >> 8));
    sctp.push_back(uint8_t(len));
    sctp.insert(sctp.end(), 12, 0);
    for (size_t i = 0; i < chunk_bytes; ++i) {
        sctp.push_back(uint8_t(i * 7));
    }
    const uint32_t crc = ~net::crc32c(sctp.data(), sctp.size(), 0xffffffff);
    std::memcpy(&sctp[8], &crc, 4);
    std::vector<uint8_t> f = pkt().eth(default_gateway_mac, pod_b1_mac)
                                 .ipv4(ip4("172.25.2.2"), ip4("10.96.0.11"))
                                 .raw(sctp)
                                 .bytes();
    f[14 + 9] = 132;
    f[14 + 10] = f[14 + 11] = 0;
    const uint16_t ipsum = uint16_t(~net::raw_checksum(&f[14], 20));
    std::memcpy(&f[14 + 10], &ipsum, 2);
    return f;
}

struct input {
    const char* what;
    bool from_underlay;
    std::vector<uint8_t> frame;
};

std::vector<input> inputs() {
    std::vector<input> v;
    v.push_back({"pod -> remote pod, 1400-byte UDP (encap)", false,
                 pkt().eth(default_gateway_mac, pod_b1_mac)
                     .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"))
                     .udp(4000, 5000)
                     .payload(1400 - 28)
                     .bytes()});
    v.push_back({"remote pod -> pod, 1400-byte TCP (decap)", true,
                 pkt().eth(underlay_mac, kernel_a_mac)
                     .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"))
                     .udp(40000, 8472)
                     .vxlan(1)
                     .eth(twill_b_vtep, kernel_a_vtep)
                     .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2"))
                     .tcp(80, 40000, 0x10)
                     .payload(1400 - 40)
                     .bytes()});
    v.push_back({"pod -> service, TCP SYN with 1000 bytes (NAT, encap)", false,
                 pkt().eth(default_gateway_mac, pod_b1_mac)
                     .ipv4(ip4("172.25.2.2"), ip4("10.96.0.10"))
                     .tcp(40001, 80, syn)
                     .payload(1000)
                     .bytes()});
    v.push_back({"pod -> SCTP service, 1200 bytes (NAT, CRC32c over the chain)", false,
                 sctp_to_service(1200)});
    ipv4_opts ttl1;
    ttl1.ttl = 1;
    v.push_back({"pod -> remote pod, TTL 1, 1400 bytes (ICMP time exceeded quoting 548)", false,
                 pkt().eth(default_gateway_mac, pod_b1_mac)
                     .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), ttl1)
                     .udp(4000, 5000)
                     .payload(1400 - 28)
                     .bytes()});
    ipv4_opts no_df;
    no_df.frag = 0;
    v.push_back({"pod -> remote pod, 1480 bytes without DF (fragmented for MTU 1450)", false,
                 pkt().eth(default_gateway_mac, pod_b1_mac)
                     .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), no_df)
                     .udp(4000, 5000)
                     .payload(1480 - 28)
                     .bytes()});
    std::vector<uint8_t> padded = pkt().eth(default_gateway_mac, pod_b1_mac)
                                      .ipv4(ip4("172.25.2.2"), ip4("172.25.2.3"))
                                      .udp(4000, 5000)
                                      .payload(600)
                                      .bytes();
    padded.insert(padded.end(), 300, 0xee);  // past the IPv4 packet: cut off
    v.push_back({"pod -> local pod with 300 bytes of trailer (trimmed across segments)", false,
                 padded});
    return v;
}

}  // namespace

TEST_CASE("multi-segment: a packet in a chain comes out as it does in one mbuf", "[multiseg]") {
    const std::vector<std::vector<uint16_t>> splits = {{256}, {300, 64, 64}, {1024, 100}};
    for (const input& in : inputs()) {
        for (const auto& split : splits) {
            INFO(in.what << ", first segments " << split[0] << "...");
            tcp_node flat(services), chained(services);
            chained.segments(split);
            for (tcp_node* n : {&flat, &chained}) {
                n->learn_pod_mac(pod_b2_port, pod_b2_mac);
            }
            auto want = in.from_underlay ? flat.underlay(in.frame) : flat.pod(pod_b1_port, in.frame);
            auto got = in.from_underlay ? chained.underlay(in.frame) : chained.pod(pod_b1_port, in.frame);
            REQUIRE(!want.empty());
            REQUIRE(got.size() == want.size());
            for (size_t i = 0; i < got.size(); ++i) {
                CHECK(got[i].port == want[i].port);
                INFO(hex_diff(got[i].bytes, want[i].bytes));
                CHECK(got[i].bytes == want[i].bytes);
            }
            CHECK(chained.total_drops() == flat.total_drops());
            CHECK(chained.counters().encapsulated.get() == flat.counters().encapsulated.get());
            CHECK(chained.counters().fragmented.get() == flat.counters().fragmented.get());
            CHECK(chained.counters().icmp_errors_sent.get() == flat.counters().icmp_errors_sent.get());
        }
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("multi-segment: jumbo overlay (MTU 8950) through encap and decap", "[multiseg]") {
    std::string yaml = default_node_yaml;
    const std::string from = "mtu: 1450";
    yaml.replace(yaml.find(from), from.size(), "mtu: 8950");
    tcp_node node(yaml);
    node.segments({2048 - 128});  // as a port fills 2 KB mbufs
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);

    // Pod b1's 8950-byte packet to kernel-a's pod: one 9014-byte VXLAN frame out.
    std::vector<uint8_t> inner = pkt().eth(default_gateway_mac, pod_b1_mac)
                                     .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"))
                                     .udp(4000, 5000)
                                     .payload(8950 - 28)
                                     .bytes();
    auto out = node.pod(pod_b1_port, inner);
    REQUIRE(out.size() == 1);
    const std::vector<uint8_t>& f = out[0].bytes;
    REQUIRE(f.size() == 14 + 50 + 8950);
    const auto* oip = reinterpret_cast<const rte_ipv4_hdr*>(f.data() + 14);
    CHECK(rte_raw_cksum(oip, 20) == 0xffff);
    CHECK(rte_be_to_cpu_16(oip->total_length) == 50 + 8950);
    CHECK(rte_ipv4_udptcp_cksum_verify(oip, f.data() + 34) == 0);
    // The inner packet is the pod's, its TTL one less.
    std::vector<uint8_t> sent(f.begin() + 64, f.end()), orig(inner.begin() + 14, inner.end());
    CHECK(sent[8] == orig[8] - 1);
    sent[8] = orig[8];
    sent[10] = orig[10];
    sent[11] = orig[11];
    CHECK(sent == orig);

    // kernel-a's pod's 8950-byte packet to pod b2 through VXLAN: delivered whole.
    std::vector<uint8_t> vx = pkt().eth(underlay_mac, kernel_a_mac)
                                  .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"))
                                  .udp(40000, 8472)
                                  .vxlan(1)
                                  .eth(twill_b_vtep, kernel_a_vtep)
                                  .ipv4(ip4("172.25.1.2"), ip4("172.25.2.3"))
                                  .udp(5000, 4000)
                                  .payload(8950 - 28)
                                  .bytes();
    out = node.underlay(vx);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    REQUIRE(out[0].bytes.size() == 14 + 8950);
    CHECK(std::equal(out[0].bytes.begin() + 14 + 20, out[0].bytes.end(), vx.begin() + 64 + 20));
    const auto* iip = reinterpret_cast<const rte_ipv4_hdr*>(out[0].bytes.data() + 14);
    CHECK(rte_raw_cksum(iip, 20) == 0xffff);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("multi-segment: a first segment short of the headers is a counted drop", "[multiseg]") {
    tcp_node node(services);
    node.segments({40});  // the IPv4 header ends at 34, the UDP header at 42
    auto out = node.pod(pod_b1_port, pkt().eth(default_gateway_mac, pod_b1_mac)
                                         .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"))
                                         .udp(4000, 5000)
                                         .payload(1000)
                                         .bytes());
    CHECK(out.empty());
    CHECK(node.drops(drop::segment_split) == 1);
    // A short frame wholly in a short first segment is fine.
    node.segments({100});
    out = node.pod(pod_b1_port, pkt().eth(default_gateway_mac, pod_b1_mac)
                                    .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"))
                                    .udp(4000, 5000)
                                    .payload(20)
                                    .bytes());
    CHECK(out.size() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}
