// Byte-for-byte comparison with frames the Linux kernel's vxlan driver produced in the
// lab (scripts/lab.sh capture-golden): a kernel flannel node's pod sent three packets to a
// pod behind twill; tests/data/kernel_pod_tx.pcap holds them as the pod sent them and
// tests/data/kernel_encap.pcap as flannel.1 put them on the underlay.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>

#include <rte_ip.h>

#include "dataplane/net/headers.h"
#include "dataplane/vxlan/vxlan.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::test;

namespace {

std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(b.size() >= 24);
    uint32_t magic;
    std::memcpy(&magic, b.data(), 4);
    REQUIRE((magic == 0xa1b2c3d4 || magic == 0xa1b23c4d));  // little-endian, us or ns
    std::vector<std::vector<uint8_t>> frames;
    for (size_t off = 24; off + 16 <= b.size();) {
        uint32_t caplen;
        std::memcpy(&caplen, b.data() + off + 8, 4);
        off += 16;
        REQUIRE(off + caplen <= b.size());
        frames.emplace_back(b.begin() + long(off), b.begin() + long(off + caplen));
        off += caplen;
    }
    return frames;
}

// The kernel node (kernel-a) as a twill config: same addresses, MACs and peer.
const char* const kernel_a_as_twill = R"(
node: {name: kernel-a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}
cluster: {clusterCIDR: 172.25.0.0/16, vxlan: {vni: 1, port: 8472, mtu: 1450}}
ports: {underlay: "underlay"}
nodes: [{name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}]
pods: [{name: pod-a1, ip: 172.25.1.2, port: "pa1", mac: "0a:00:00:00:01:02"}]
)";

const char* const what[] = {"ICMP echo request", "UDP datagram", "TCP SYN"};

}  // namespace

TEST_CASE("encapsulation matches the Linux kernel's flannel.1 byte for byte", "[golden][encap]") {
    auto pod_tx = read_pcap(std::string(TWILL_TEST_DATA) + "/kernel_pod_tx.pcap");
    auto wire = read_pcap(std::string(TWILL_TEST_DATA) + "/kernel_encap.pcap");
    REQUIRE(pod_tx.size() == 3);
    REQUIRE(wire.size() == 3);

    test_node node(kernel_a_as_twill, kernel_a_mac);
    const auto& first = *reinterpret_cast<const net::eth_hdr*>(wire[0].data());
    node.learn_neighbour(ip4("198.18.0.2"), first.dst);  // twill-b's underlay MAC
    node.params().gateway_mac = reinterpret_cast<const net::eth_hdr*>(pod_tx[0].data())->dst;

    for (size_t i = 0; i < 3; ++i) {
        INFO(what[i]);
        auto out = node.pod(1, pod_tx[i]);
        REQUIRE(out.size() == 1);
        std::vector<uint8_t> got = out[0].bytes;
        std::vector<uint8_t> want = wire[i];
        REQUIRE(got.size() == want.size());

        // Ours must be valid on their own: header and UDP checksums, port range.
        const auto* ip4 = reinterpret_cast<const rte_ipv4_hdr*>(got.data() + 14);
        CHECK(rte_raw_cksum(ip4, 20) == 0xffff);
        CHECK(rte_ipv4_udptcp_cksum_verify(ip4, got.data() + 34) == 0);
        const auto& udp = *reinterpret_cast<const net::udp_hdr*>(got.data() + 34);
        CHECK(udp.src_port.get() >= 32768);
        CHECK(udp.src_port.get() <= 60999);
        // The kernel's too, with a UDP checksum (udpcsum), which twill also sends.
        const auto* kip = reinterpret_cast<const rte_ipv4_hdr*>(want.data() + 14);
        CHECK(reinterpret_cast<const net::udp_hdr*>(want.data() + 34)->checksum != 0);
        CHECK(rte_ipv4_udptcp_cksum_verify(kip, want.data() + 34) == 0);

        // The only bytes that may differ are per packet or per flow by design: the outer
        // IP ID (a counter), the UDP source port (a hash of the inner flow) and the two
        // checksums that cover them.
        for (size_t off : {18, 19, 24, 25, 34, 35, 40, 41}) {
            got[off] = want[off] = 0;
        }
        INFO(hex_diff(got, want));
        CHECK(got == want);
    }
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

// A port that offloads the outer checksums gets the same bytes onto the wire as software
// would have written (its NIC emulated by the fixture), and the inner ones are untouched.
TEST_CASE("encapsulation with checksum offload puts the same bytes on the wire", "[golden][encap]") {
    auto pod_tx = read_pcap(std::string(TWILL_TEST_DATA) + "/kernel_pod_tx.pcap");
    test_node soft(kernel_a_as_twill, kernel_a_mac), offload(kernel_a_as_twill, kernel_a_mac);
    offload.offload_checksums();
    for (test_node* n : {&soft, &offload}) {
        n->learn_neighbour(ip4("198.18.0.2"), underlay_mac);
        n->params().gateway_mac = reinterpret_cast<const net::eth_hdr*>(pod_tx[0].data())->dst;
    }
    for (size_t i = 0; i < pod_tx.size(); ++i) {
        INFO(what[i]);
        auto want = soft.pod(1, pod_tx[i]);
        auto got = offload.pod(1, pod_tx[i]);
        REQUIRE(want.size() == 1);
        REQUIRE(got.size() == 1);
        INFO(hex_diff(got[0].bytes, want[0].bytes));
        CHECK(got[0].bytes == want[0].bytes);
    }
    CHECK(soft.offloaded() == 0);
    CHECK(offload.offloaded() == pod_tx.size());
    REQUIRE_NO_LEAKED_MBUFS();
}

// The source port comes from the hash the receiving port gave, when it gave one: one
// flow keeps one port, and the hash spreads flows over the range.
TEST_CASE("encapsulation takes the source port from the port's receive hash", "[encap]") {
    auto pod_tx = read_pcap(std::string(TWILL_TEST_DATA) + "/kernel_pod_tx.pcap");
    test_node node(kernel_a_as_twill, kernel_a_mac);
    node.learn_neighbour(ip4("198.18.0.2"), underlay_mac);
    node.params().gateway_mac = reinterpret_cast<const net::eth_hdr*>(pod_tx[0].data())->dst;
    auto sport = [](const out_frame& f) {
        return reinterpret_cast<const net::udp_hdr*>(f.bytes.data() + 34)->src_port.get();
    };
    for (uint32_t hash : {0u, 0x12345678u, 0xffffffffu}) {
        auto out = node.pod_with_hash(1, pod_tx[0], hash);
        REQUIRE(out.size() == 1);
        CHECK(sport(out[0]) == vxlan_source_port(hash));
        const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(out[0].bytes.data() + 14);
        CHECK(rte_ipv4_udptcp_cksum_verify(ip, out[0].bytes.data() + 34) == 0);
    }
    // Without a hash, twill's own over the inner flow: the same for every packet of it.
    auto plain = node.pod(1, pod_tx[0]);
    REQUIRE(plain.size() == 1);
    CHECK(sport(plain[0]) == sport(node.pod(1, pod_tx[0]).at(0)));
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("frames the kernel encapsulated are delivered as the kernel would", "[golden][decap]") {
    auto pod_tx = read_pcap(std::string(TWILL_TEST_DATA) + "/kernel_pod_tx.pcap");
    auto wire = read_pcap(std::string(TWILL_TEST_DATA) + "/kernel_encap.pcap");
    REQUIRE(wire.size() == 3);
    const auto& first = *reinterpret_cast<const net::eth_hdr*>(wire[0].data());
    test_node node(default_node_yaml, first.dst);
    node.learn_pod_mac(pod_b1_port, pod_b1_mac);
    for (size_t i = 0; i < 3; ++i) {
        INFO(what[i]);
        auto out = node.underlay(wire[i]);
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == pod_b1_port);
        const auto& got = out[0].bytes;
        const auto& sent = pod_tx[i];
        REQUIRE(got.size() == sent.size());
        // Two routers on the way (the kernel node and twill): TTL down by two.
        CHECK(got[14 + 8] == sent[14 + 8] - 2);
        CHECK(rte_raw_cksum(got.data() + 14, 20) == 0xffff);
        // Past the IP header, the pod's bytes arrive untouched.
        CHECK(std::equal(sent.begin() + 34, sent.end(), got.begin() + 34));
    }
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}
