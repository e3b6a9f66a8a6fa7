// Hostile input: every truncation, broken lengths and headers, random bytes. Each is a
// counted drop (or correct forwarding), never a crash, never a leaked mbuf.
#include <catch2/catch.hpp>

#include <random>

#include "dataplane/net/headers.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::test;

namespace {

const mac_addr gw = default_gateway_mac;

std::vector<uint8_t> valid_vxlan() {
    return pkt().eth(underlay_mac, kernel_a_mac)
        .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0})
        .udp(45000, 8472)
        .vxlan(1)
        .eth(twill_b_vtep, kernel_a_vtep)
        .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2"))
        .udp(5000, 5001)
        .payload(8)
        .bytes();
}

std::vector<uint8_t> valid_pod() {
    return pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2")).udp(5000, 5001).payload(8).bytes();
}

}  // namespace

TEST_CASE("a VXLAN frame cut at every length is a counted drop", "[malformed]") {
    const auto full = valid_vxlan();
    for (size_t len = 0; len < full.size(); ++len) {
        INFO("truncated to " << len << " of " << full.size() << " bytes");
        test_node node;
        node.learn_pod_mac(pod_b1_port, pod_b1_mac);
        std::vector<uint8_t> cut(full.begin(), full.begin() + long(len));
        CHECK(node.underlay(cut).empty());
        CHECK(node.total_drops() == 1);
    }
    test_node node;
    node.learn_pod_mac(pod_b1_port, pod_b1_mac);
    CHECK(node.underlay(full).size() == 1);  // and the whole frame passes
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("a pod frame cut at every length is a counted drop", "[malformed]") {
    const auto full = valid_pod();
    for (size_t len = 0; len < full.size(); ++len) {
        INFO("truncated to " << len << " of " << full.size() << " bytes");
        test_node node;
        node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
        std::vector<uint8_t> cut(full.begin(), full.begin() + long(len));
        CHECK(node.pod(pod_b1_port, cut).empty());
        CHECK(node.total_drops() == 1);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("broken IPv4 headers are counted drops", "[malformed]") {
    struct row {
        const char* what;
        size_t offset;  // in the VXLAN frame
        uint8_t value;
        drop reason;
    };
    // Outer IPv4 at 14, inner IPv4 at 64. Checksums are left stale on purpose where the
    // header check must fail before or at the checksum.
    const row rows[] = {
        {"outer IHL 4", 14, 0x44, drop::ip_bad_header},
        {"outer IHL 15 (beyond the frame's header)", 14, 0x4f, drop::ip_bad_checksum},
        {"outer version 6", 14, 0x65, drop::ip_bad_header},
        {"outer total length larger than the frame", 16, 0x7f, drop::ip_truncated},
        {"outer total length below the header", 17, 0x00, drop::ip_truncated},
        {"outer checksum wrong", 24, 0x00, drop::ip_bad_checksum},
        {"UDP length beyond the IP packet", 38, 0x7f, drop::udp_truncated},
        {"inner IHL 3", 64, 0x43, drop::ip_bad_header},
        {"inner checksum wrong", 74, 0x00, drop::ip_bad_checksum},
    };
    for (const row& r : rows) {
        INFO(r.what);
        auto f = valid_vxlan();
        f[r.offset] = r.value;
        if (r.offset >= 64) {
            f[40] = f[41] = 0;  // the outer UDP checksum would catch it first
        }
        test_node node;
        node.learn_pod_mac(pod_b1_port, pod_b1_mac);
        CHECK(node.underlay(f).empty());
        CHECK(node.drops(r.reason) == 1);
        CHECK(node.total_drops() == 1);
    }
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("IP options and inner fragments are forwarded; padding is trimmed", "[malformed]") {
    test_node node;
    node.learn_pod_mac(pod_b1_port, pod_b1_mac);
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);

    // Outer header with options (record route, 8 bytes): Linux accepts it, so does twill.
    auto outer_opts = pkt().eth(underlay_mac, kernel_a_mac)
                          .ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"), {.frag = 0, .options = {7, 7, 4, 0, 0, 0, 0, 0}})
                          .udp(45000, 8472).vxlan(1).eth(twill_b_vtep, kernel_a_vtep)
                          .ipv4(ip4("172.25.1.2"), ip4("172.25.2.2")).udp(1, 2).payload(8).bytes();
    auto out = node.underlay(outer_opts);
    REQUIRE(out.size() == 1);
    CHECK(out[0].bytes.size() == outer_opts.size() - 58);

    // A pod's packet with options, and a later fragment: routed as they are.
    auto inner_opts = pkt().eth(gw, pod_b1_mac)
                          .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.options = {1, 1, 1, 1}})
                          .udp(1, 2).payload(8).bytes();
    CHECK(node.pod(pod_b1_port, inner_opts).size() == 1);
    auto fragment = pkt().eth(gw, pod_b1_mac)
                        .ipv4(ip4("172.25.2.2"), ip4("172.25.1.2"), {.frag = 0x0010})
                        .payload(40).bytes();
    CHECK(node.pod(pod_b1_port, fragment).size() == 1);

    // Ethernet padding behind a short packet is not carried into the tunnel.
    auto padded = pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.1.2")).udp(1, 2).bytes();
    size_t ip_len = padded.size() - 14;
    padded.resize(60, 0);
    out = node.pod(pod_b1_port, padded);
    REQUIRE(out.size() == 1);
    CHECK(out[0].bytes.size() == 50 + 14 + ip_len);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("random and mutated frames never crash or leak", "[malformed]") {
    std::mt19937 rng(20261129);
    test_node node;
    node.learn_pod_mac(pod_b1_port, pod_b1_mac);
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    const auto seeds = std::vector<std::vector<uint8_t>>{valid_vxlan(), valid_pod()};
    uint64_t frames = 0;
    for (int round = 0; round < 4000; ++round) {
        std::vector<uint8_t> f = seeds[round % 2];
        int flips = 1 + int(rng() % 4);
        for (int i = 0; i < flips; ++i) {
            f[rng() % f.size()] = uint8_t(rng());
        }
        if (rng() % 4 == 0) {
            f.resize(rng() % (f.size() + 1));
        }
        if (round % 2 == 0) {
            node.underlay(f);
        } else {
            node.pod(pod_b1_port, f);
        }
        ++frames;
    }
    for (int round = 0; round < 1000; ++round) {
        std::vector<uint8_t> f(rng() % 200);
        for (auto& b : f) {
            b = uint8_t(rng());
        }
        node.underlay(f);
        node.pod(pod_b2_port, f);
        frames += 2;
    }
    CHECK(frames == 6000);
    REQUIRE_NO_LEAKED_MBUFS();
}
