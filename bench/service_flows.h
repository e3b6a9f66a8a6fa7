// The services and flows of the service benchmarks, shared by twill-service-bench (twill)
// and twill-pktgen (the kernel's nftables NAT, bench/kernel_nat.sh), so that both see the
// same services, endpoints and tuples.
//
// Service s (0-based) has cluster IP 10.96.0.1 + s, one UDP port 53, and 10 endpoints on
// the remote node's slice 172.25.1.0/24. Every (service, endpoint) pair gets its own
// address and port, so two flows from one client source port to two services never share
// a reply tuple (a clash would be a drop, in twill and in the kernel alike, and the
// benchmark would measure it instead of the NAT).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace twill::bench {

constexpr uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d;
}

constexpr uint32_t client_ip = ip4(172, 25, 2, 2);  // the local pod
constexpr uint16_t service_port = 53;
constexpr unsigned endpoints_per_service = 10;
constexpr uint32_t max_services = 1u << 20;  // inside 10.96.0.0/12
// Client source ports 1024..65535.
constexpr uint32_t first_sport = 1024;
constexpr uint32_t sports = 65536 - first_sport;
// Flows of the conntrack-hit scenario: distinct source ports, services spread over all N.
constexpr uint32_t default_hit_flows = 4096;

constexpr uint32_t service_vip(uint32_t s) {
    return ip4(10, 96, 0, 1) + s;
}
// 24 services share an endpoint address block of 10; their target ports differ.
constexpr uint16_t target_port(uint32_t s) {
    return uint16_t(1024 + s / 24);
}
constexpr uint32_t endpoint_ip(uint32_t s, unsigned j) {
    return ip4(172, 25, 1, uint8_t(10 + (s % 24) * endpoints_per_service + j));
}

struct flow {
    uint32_t service;
    uint16_t sport;
};

// Hit flow i of `flows` (<= sports): a source port of its own, service i * 7919 mod n
// (a prime stride, so consecutive flows land far apart in every table).
constexpr flow hit_flow(uint32_t i, uint32_t n) {
    return {uint32_t(uint64_t(i) * 7919 % n), uint16_t(first_sport + i)};
}

// New flow i: all distinct for i < new_flow_limit(n). Round r = i / sports uses every
// source port once, with services shifted by r, so a port repeats only with another
// service.
constexpr uint64_t new_flow_limit(uint32_t n) {
    return uint64_t(sports) * n;
}
constexpr flow new_flow(uint64_t i, uint32_t n) {
    const uint32_t p = uint32_t(i % sports);
    const uint64_t r = i / sports;
    return {uint32_t((r + uint64_t(p) * 7919) % n), uint16_t(first_sport + p)};
}

// ---- frames ----------------------------------------------------------------------------

constexpr unsigned ip_off = 14;
constexpr unsigned udp_off = 34;

inline void put16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
inline void put32(uint8_t* p, uint32_t v) {
    put16(p, uint16_t(v >> 16));
    put16(p + 2, uint16_t(v));
}

inline uint16_t ip_checksum(const uint8_t* ip) {
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2) {
        sum += uint32_t(ip[i]) << 8 | ip[i + 1];
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

// Points a frame from udp_template at service `vip`, from source port `sport`. The UDP
// checksum stays 0 (none, RFC 768), so only the IPv4 header checksum is redone.
inline void set_flow(uint8_t* frame, uint32_t vip, uint16_t sport) {
    uint8_t* ip = frame + ip_off;
    put32(ip + 16, vip);
    put16(ip + 10, 0);
    put16(ip + 10, ip_checksum(ip));
    put16(frame + udp_off, sport);
}

// Ethernet + IPv4 + UDP, `len` bytes in all (>= 42), from client_ip to port 53 of
// service 0, without a UDP checksum.
inline std::vector<uint8_t> udp_template(unsigned len, const uint8_t* dst_mac,
                                         const uint8_t* src_mac) {
    std::vector<uint8_t> f(len, 0xab);
    std::memcpy(f.data(), dst_mac, 6);
    std::memcpy(f.data() + 6, src_mac, 6);
    put16(&f[12], 0x0800);
    uint8_t* ip = &f[ip_off];
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, uint16_t(len - ip_off));
    put16(ip + 4, 1);
    put16(ip + 6, 0);
    ip[8] = 64;
    ip[9] = 17;
    put32(ip + 12, client_ip);
    uint8_t* udp = &f[udp_off];
    put16(udp + 2, service_port);
    put16(udp + 4, uint16_t(len - udp_off));
    put16(udp + 6, 0);
    set_flow(f.data(), service_vip(0), uint16_t(first_sport));
    return f;
}

}  // namespace twill::bench
