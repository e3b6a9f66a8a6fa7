// A fluent builder for test frames:
//   pkt().eth(dst, src).ipv4(src, dst).udp(1234, 8472).vxlan(1).eth(..).ipv4(..).tcp(80, 443)
// Lengths and checksums are filled in by bytes(); tests then break what they want.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_mbuf.h>

#include "dataplane/net/addr.h"

namespace twill::test {

ip4_addr ip4(const char* dotted);
mac_addr mac(const char* text);

struct ipv4_opts {
    uint8_t ttl = 64;
    uint8_t tos = 0;
    uint16_t id = 0x1234;
    uint16_t frag = 0x4000;  // DF
    std::vector<uint8_t> options;  // appended after the fixed header, padded to 4 bytes
};

class pkt {
public:
    pkt& eth(mac_addr dst, mac_addr src, uint16_t type = 0);  // 0 = from the next layer
    pkt& arp(uint16_t oper, mac_addr sha, ip4_addr spa, mac_addr tha, ip4_addr tpa);
    pkt& ipv4(ip4_addr src, ip4_addr dst, ipv4_opts o = {});
    pkt& udp(uint16_t sport, uint16_t dport);
    pkt& tcp(uint16_t sport, uint16_t dport, uint8_t flags = 0x02);
    pkt& icmp_echo(uint16_t id, uint16_t seq);
    // An ICMP error header (its second word: `mtu` for fragmentation needed); the packet
    // it is about follows as raw().
    pkt& icmp_error(uint8_t type, uint8_t code, uint16_t mtu = 0);
    pkt& vxlan(uint32_t vni, uint32_t flags = 0x08000000);
    pkt& payload(size_t n, uint8_t fill = 0xab);
    pkt& raw(const std::vector<uint8_t>& bytes);

    // The finished frame: lengths and checksums computed innermost first.
    std::vector<uint8_t> bytes() const;

private:
    enum class layer_type { eth, arp, ipv4, udp, tcp, icmp, vxlan, raw };
    struct layer {
        layer_type type;
        size_t offset;
    };
    void push(layer_type t, const std::vector<uint8_t>& b);

    std::vector<uint8_t> data_;
    std::vector<layer> layers_;
};

// An mbuf from the test pool holding `frame`.
rte_mbuf* to_mbuf(const std::vector<uint8_t>& frame);
// The frame in a chain of mbufs: segments of the given sizes, then the rest in segments
// as large as the pool's mbufs hold (as a port receiving with scatter fills them).
rte_mbuf* to_mbuf_chain(const std::vector<uint8_t>& frame, const std::vector<uint16_t>& first);
std::vector<uint8_t> from_mbuf(const rte_mbuf* m);

// "0000: 0a 00 ..." with the first differing byte marked, for failure messages.
std::string hex_diff(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want);

}  // namespace twill::test
