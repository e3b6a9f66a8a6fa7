// A test node with TCP segments at hand: from local pods b1 and b2, and through VXLAN from
// kernel-a (any inner source on its side). kernel-a's MAC and b1's are learned; the clock
// reads 1000 s. Shared by the service and policy packet tests.
#pragma once

#include <string>
#include <vector>

#include "tests/unit/fixture.h"

namespace twill::test {

struct tcp_node : test_node {
    static constexpr uint8_t syn = 0x02;

    explicit tcp_node(const std::string& yaml) : test_node(yaml) {
        learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
        learn_pod_mac(pod_b1_port, pod_b1_mac);
        ctx().now_s = 1000;
    }
    // From local pod b1 (172.25.2.2).
    std::vector<out_frame> from_b1(const char* dst, uint16_t sport, uint16_t dport, uint8_t flags = syn) {
        return pod(pod_b1_port, pkt().eth(default_gateway_mac, pod_b1_mac)
                                    .ipv4(ip4("172.25.2.2"), ip4(dst)).tcp(sport, dport, flags).bytes());
    }
    // From local pod b2 (172.25.2.3).
    std::vector<out_frame> from_b2(const char* dst, uint16_t sport, uint16_t dport, uint8_t flags = syn) {
        return pod(pod_b2_port, pkt().eth(default_gateway_mac, pod_b2_mac)
                                    .ipv4(ip4("172.25.2.3"), ip4(dst)).tcp(sport, dport, flags).bytes());
    }
    // From `src` behind kernel-a, through VXLAN.
    std::vector<out_frame> from_kernel_a(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                                         uint8_t flags = syn) {
        return underlay(pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"))
                            .udp(40000, 8472).vxlan(1).eth(twill_b_vtep, kernel_a_vtep)
                            .ipv4(ip4(src), ip4(dst)).tcp(sport, dport, flags).bytes());
    }
};

}  // namespace twill::test
