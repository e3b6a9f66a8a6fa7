// Test frames of the benchmarks that build them byte by byte (twill-bench,
// twill-workers-bench).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bench/service_flows.h"
#include "dataplane/net/addr.h"

namespace twill::bench {

// The Internet checksum of `n` bytes, added to `sum` (a pseudo-header's), folded and
// complemented.
inline uint16_t csum(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        sum += uint32_t(p[i]) << 8 | p[i + 1];
    }
    if (n & 1) {
        sum += uint32_t(p[n - 1]) << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(~sum);
}

// Ethernet + IPv4 + UDP of `len` bytes in all (>= 42), both checksums set.
inline std::vector<uint8_t> udp_frame(unsigned len, mac_addr dst, mac_addr src, uint32_t sip,
                                      uint32_t dip, uint16_t sport, uint16_t dport,
                                      uint8_t ttl = 64) {
    std::vector<uint8_t> f(len, 0xab);
    std::memcpy(f.data(), dst.bytes.data(), 6);
    std::memcpy(f.data() + 6, src.bytes.data(), 6);
    put16(&f[12], 0x0800);
    uint8_t* ip = &f[14];
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, uint16_t(len - 14));
    put16(ip + 4, 1);
    put16(ip + 6, 0);
    ip[8] = ttl;
    ip[9] = 17;
    put16(ip + 10, 0);
    put32(ip + 12, sip);
    put32(ip + 16, dip);
    put16(ip + 10, csum(ip, 20));
    uint8_t* udp = ip + 20;
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, uint16_t(len - 34));
    put16(udp + 6, 0);
    uint32_t pseudo = (sip >> 16) + (sip & 0xffff) + (dip >> 16) + (dip & 0xffff) + 17 + (len - 34);
    uint16_t c = csum(udp, len - 34, pseudo);
    put16(udp + 6, c == 0 ? 0xffff : c);
    return f;
}

}  // namespace twill::bench
