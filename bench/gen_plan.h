// The benchmark harness's address plan and the frames twill-gen sends, per scenario kind.
// Every device under test (twilld, testpmd, Open vSwitch, the kernel) is configured to
// this plan by scripts/bench.sh; bench/README.md draws it.
//
//   generator pod link (the local pods)     DUT      generator underlay link (remote nodes)
//   pod-a 172.25.0.10 02:74:00:00:02:0a --> [ ] --> 198.18.0.2 02:74:00:00:01:02
//            gateway ee:ee:ee:ee:ee:ee  [ ] 198.18.0.1 02:74:00:00:01:01, VTEP ..:00:01
//
// Remote node 198.18.0.2 has VTEP MAC 02:74:00:00:00:02 and slice 172.25.1.0/24 (pod
// 172.25.1.20). With `nodes`, remote node k is 198.19.0.0 + k + 1 with slice
// 172.16.0.0/24 + k (k < 2048), VTEP MAC 02:74:01:00:k. Services are those of
// bench/service_flows.h (10.96.0.1 + s, UDP 53, endpoints on 172.25.1.0/24). For `local`
// the underlay link plays pod-b 172.25.0.11 (02:74:00:00:02:0b) instead.
#pragma once

#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/frames.h"
#include "bench/service_flows.h"
#include "dataplane/net/addr.h"

namespace twill::bench {

constexpr mac_addr plan_mac(uint8_t a, uint8_t b, uint8_t c) {
    return mac_addr{{0x02, 0x74, 0x00, a, b, c}};
}
constexpr mac_addr pod_mac = plan_mac(0, 2, 0x0a);
constexpr mac_addr pod_b_mac = plan_mac(0, 2, 0x0b);
// The pods' gateway: twill's (and Calico's) ee:ee:ee:ee:ee:ee.
constexpr mac_addr gateway_mac{{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}};
constexpr mac_addr dut_underlay_mac = plan_mac(0, 1, 0x01);
constexpr mac_addr remote_underlay_mac = plan_mac(0, 1, 0x02);
constexpr mac_addr dut_vtep_mac = plan_mac(0, 0, 0x01);
constexpr mac_addr remote_vtep_mac = plan_mac(0, 0, 0x02);

constexpr uint32_t pod_ip = ip4(172, 25, 0, 10);
constexpr uint32_t pod_b_ip = ip4(172, 25, 0, 11);
constexpr uint32_t remote_pod_ip = ip4(172, 25, 1, 20);
constexpr uint32_t dut_underlay_ip = ip4(198, 18, 0, 1);
constexpr uint32_t remote_underlay_ip = ip4(198, 18, 0, 2);
constexpr uint32_t underlay_net = ip4(198, 18, 0, 0);  // /15
constexpr uint16_t vxlan_port = 8472;
constexpr uint32_t vni = 1;
constexpr uint16_t pod_dport = 5000;
constexpr uint32_t max_nodes = 2048;

constexpr uint32_t node_slice(uint32_t k) {
    return ip4(172, 16, 0, 0) + (k << 8);
}

// The stamp (gen.cc) follows the UDP header: 42 bytes in, or 92 inside VXLAN.
constexpr unsigned stamp_bytes = 16;
constexpr uint16_t stamp_magic = 0x7477;
constexpr unsigned plain_stamp_off = 42;
constexpr unsigned vxlan_bytes = 50;
constexpr unsigned vxlan_stamp_off = plain_stamp_off + vxlan_bytes;

struct frame_template {
    std::vector<uint8_t> bytes;
    unsigned stamp_off = plain_stamp_off;
};

struct frame_plan {
    enum class kind { encap, decap, local, svc_hit, svc_new, nodes } k = kind::encap;
    std::vector<frame_template> templates;  // one per frame size
    std::vector<uint8_t> order;             // template of packet i: order[i % size]
    bool new_flows = false;
    uint32_t services = 1, nodes = 1, flows = 1;

    const frame_template& pick(uint64_t i) const { return templates[order[i % order.size()]]; }

    double mean_bytes() const {
        double sum = 0;
        for (uint8_t t : order) {
            sum += double(templates[t].bytes.size());
        }
        return sum / double(order.size());
    }

    // Points frame `f` (a copy of a template) at flow `i`.
    void set_flow(uint8_t* f, uint64_t i) const {
        switch (k) {
        case kind::encap:
        case kind::local:
            put16(f + udp_off, uint16_t(first_sport + i % sports));
            break;
        case kind::decap:
            put16(f + udp_off, uint16_t(49152 + i % 16384));
            put16(f + vxlan_bytes + udp_off, uint16_t(first_sport + i % sports));
            break;
        case kind::svc_hit: {
            // Up to one flow per source port; beyond, the new-flow sequence's first ones.
            const flow fl = flows <= sports ? hit_flow(uint32_t(i), services)
                                            : new_flow(i, services);
            bench::set_flow(f, service_vip(fl.service), fl.sport);
            break;
        }
        case kind::svc_new: {
            const flow fl = new_flow(i % new_flow_limit(services), services);
            bench::set_flow(f, service_vip(fl.service), fl.sport);
            break;
        }
        case kind::nodes:
            bench::set_flow(f, node_slice(uint32_t(i % nodes)) + 20,
                            uint16_t(first_sport + (i / nodes) % sports));
            break;
        }
    }
};

// A plain UDP frame of `len` bytes (>= 60) from pod-a, without a UDP checksum.
inline std::vector<uint8_t> pod_frame(unsigned len, mac_addr dst_mac, uint32_t dst,
                                      uint16_t dport) {
    std::vector<uint8_t> f =
        udp_frame(len, dst_mac, pod_mac, pod_ip, dst, uint16_t(first_sport), dport);
    put16(&f[udp_off + 6], 0);
    return f;
}

// What the remote node sends pod-a: a frame of `inner` bytes inside VXLAN.
inline std::vector<uint8_t> vxlan_frame(unsigned inner) {
    std::vector<uint8_t> in = udp_frame(inner, dut_vtep_mac, remote_vtep_mac, remote_pod_ip,
                                        pod_ip, uint16_t(first_sport), pod_dport);
    put16(&in[udp_off + 6], 0);
    std::vector<uint8_t> f = udp_frame(inner + vxlan_bytes, dut_underlay_mac,
                                       remote_underlay_mac, remote_underlay_ip,
                                       dut_underlay_ip, 49152, vxlan_port);
    put16(&f[udp_off + 6], 0);  // as Linux sends VXLAN: no outer UDP checksum
    uint8_t* vx = &f[42];
    std::memset(vx, 0, 8);
    vx[0] = 0x08;
    put32(vx + 4, vni << 8);
    std::memcpy(vx + 8, in.data(), in.size());
    return f;
}

// `frame` is "64" (60 bytes, the 64-byte frame less its FCS) or "imix" (7:4:1 of 60, 566
// and 1464 bytes, the simple IMIX with its largest frame cut to the pods' MTU of 1450).
// The sizes are of the frame the pod sends or receives; VXLAN adds 50 on the underlay.
inline frame_plan make_plan(const std::string& kind, const std::string& frame,
                            uint32_t services, uint32_t nodes, uint32_t flows) {
    frame_plan p;
    p.flows = flows;
    p.services = services;
    p.nodes = nodes;
    std::vector<unsigned> sizes = {60};
    if (frame == "imix") {
        sizes = {60, 566, 1464};
        p.order = {0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 1, 0};
    } else {
        p.order = {0};
    }
    for (unsigned len : sizes) {
        frame_template t;
        if (kind == "encap") {
            p.k = frame_plan::kind::encap;
            t.bytes = pod_frame(len, gateway_mac, remote_pod_ip, pod_dport);
        } else if (kind == "decap") {
            p.k = frame_plan::kind::decap;
            t.bytes = vxlan_frame(len);
            t.stamp_off = vxlan_stamp_off;
        } else if (kind == "local") {
            p.k = frame_plan::kind::local;
            t.bytes = pod_frame(len, gateway_mac, pod_b_ip, pod_dport);
        } else if (kind == "svc-hit" || kind == "svc-new") {
            p.k = kind == "svc-hit" ? frame_plan::kind::svc_hit : frame_plan::kind::svc_new;
            p.new_flows = kind == "svc-new";
            t.bytes = pod_frame(len, gateway_mac, service_vip(0), service_port);
        } else if (kind == "nodes") {
            p.k = frame_plan::kind::nodes;
            t.bytes = pod_frame(len, gateway_mac, node_slice(0) + 20, pod_dport);
        } else {
            throw std::invalid_argument("unknown kind " + kind);
        }
        p.templates.push_back(std::move(t));
    }
    return p;
}

}  // namespace twill::bench
