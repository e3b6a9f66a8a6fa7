// Wire headers as the datapath reads and writes them: packed structs with byte-order
// accessors, so no caller ever swaps bytes by hand.
#pragma once

#include <cstdint>

#include "dataplane/net/addr.h"

namespace twill::net {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "wire accessors assume little-endian");

constexpr uint16_t bswap(uint16_t v) { return __builtin_bswap16(v); }
constexpr uint32_t bswap(uint32_t v) { return __builtin_bswap32(v); }

// A big-endian field: stored as on the wire, read and written in host order.
template <typename T>
struct [[gnu::packed]] be {
    T raw;
    constexpr T get() const { return bswap(raw); }
    constexpr void set(T v) { raw = bswap(v); }
};

inline constexpr uint16_t ether_type_ipv4 = 0x0800;
inline constexpr uint16_t ether_type_arp = 0x0806;

struct [[gnu::packed]] eth_hdr {
    mac_addr dst;
    mac_addr src;
    be<uint16_t> type;
};
static_assert(sizeof(eth_hdr) == 14);

// RFC 826, Ethernet + IPv4 only.
struct [[gnu::packed]] arp_hdr {
    be<uint16_t> htype;  // 1 = Ethernet
    be<uint16_t> ptype;  // 0x0800
    uint8_t hlen;        // 6
    uint8_t plen;        // 4
    be<uint16_t> oper;   // 1 request, 2 reply
    mac_addr sha;
    be<uint32_t> spa;
    mac_addr tha;
    be<uint32_t> tpa;

    static constexpr uint16_t request = 1;
    static constexpr uint16_t reply = 2;
    bool is_ether_ipv4() const {
        return htype.get() == 1 && ptype.get() == ether_type_ipv4 && hlen == 6 && plen == 4;
    }
};
static_assert(sizeof(arp_hdr) == 28);

inline constexpr uint8_t ip_proto_icmp = 1;
inline constexpr uint8_t ip_proto_ipip = 4;
inline constexpr uint8_t ip_proto_tcp = 6;
inline constexpr uint8_t ip_proto_udp = 17;
inline constexpr uint8_t ip_proto_sctp = 132;

// The protocols whose first four bytes are a source and a destination port.
constexpr bool has_ports(uint8_t proto) {
    return proto == ip_proto_tcp || proto == ip_proto_udp || proto == ip_proto_sctp;
}

inline constexpr uint8_t tcp_fin = 0x01;
inline constexpr uint8_t tcp_syn = 0x02;
inline constexpr uint8_t tcp_rst = 0x04;
inline constexpr uint8_t tcp_ack = 0x10;

// A segment that opens a connection: SYN without ACK or RST.
constexpr bool tcp_opens(uint8_t flags) {
    return (flags & (tcp_syn | tcp_ack | tcp_rst)) == tcp_syn;
}

struct [[gnu::packed]] ipv4_hdr {
    uint8_t version_ihl;
    uint8_t tos;
    be<uint16_t> total_length;
    be<uint16_t> id;
    be<uint16_t> frag;  // flags (3 bits) + fragment offset (13 bits)
    uint8_t ttl;
    uint8_t proto;
    uint16_t checksum;  // kept in network order: checksum arithmetic is byte-order neutral
    be<uint32_t> src;
    be<uint32_t> dst;

    static constexpr uint16_t flag_df = 0x4000;
    static constexpr uint16_t flag_mf = 0x2000;
    static constexpr uint16_t offset_mask = 0x1fff;

    uint8_t version() const { return version_ihl >> 4; }
    uint32_t header_length() const { return uint32_t(version_ihl & 0x0f) * 4; }
    bool is_fragment() const { return (frag.get() & (flag_mf | offset_mask)) != 0; }
    bool is_later_fragment() const { return (frag.get() & offset_mask) != 0; }
    ip4_addr src_addr() const { return {src.get()}; }
    ip4_addr dst_addr() const { return {dst.get()}; }
};
static_assert(sizeof(ipv4_hdr) == 20);

struct [[gnu::packed]] udp_hdr {
    be<uint16_t> src_port;
    be<uint16_t> dst_port;
    be<uint16_t> length;
    uint16_t checksum;  // network order
};
static_assert(sizeof(udp_hdr) == 8);

// An ICMP error's header: the second word is unused except by "fragmentation needed".
struct [[gnu::packed]] icmp_hdr {
    uint8_t type;
    uint8_t code;
    uint16_t checksum;  // network order
    be<uint16_t> unused;
    be<uint16_t> mtu;  // "fragmentation needed": the next-hop MTU (RFC 1191)
};
static_assert(sizeof(icmp_hdr) == 8);

struct [[gnu::packed]] tcp_ports {
    be<uint16_t> src_port;
    be<uint16_t> dst_port;
};

/*
 * RFC 7348, section 5:
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|R|R|R|I|R|R|R|            Reserved                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                VXLAN Network Identifier (VNI) |   Reserved    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
struct [[gnu::packed]] vxlan_hdr {
    be<uint32_t> flags_reserved;
    be<uint32_t> vni_reserved;

    static constexpr uint32_t flag_i = 0x08000000;

    uint32_t flags_word() const { return flags_reserved.get(); }
    uint32_t vni() const { return vni_reserved.get() >> 8; }
    void set(uint32_t vni) {
        flags_reserved.set(flag_i);
        vni_reserved.set(vni << 8);
    }
};
static_assert(sizeof(vxlan_hdr) == 8);

// Outer Ethernet + IPv4 (no options) + UDP + VXLAN, as Linux builds it for flannel.
inline constexpr uint32_t vxlan_overhead =
    sizeof(eth_hdr) + sizeof(ipv4_hdr) + sizeof(udp_hdr) + sizeof(vxlan_hdr);
static_assert(vxlan_overhead == 50);

struct [[gnu::packed]] vxlan_encap_hdr {
    eth_hdr eth;
    ipv4_hdr ip;
    udp_hdr udp;
    vxlan_hdr vxlan;
};
static_assert(sizeof(vxlan_encap_hdr) == vxlan_overhead);

// RFC 1624 incremental update of a ones'-complement checksum when a 16-bit word
// changes from `old_word` to `new_word` (both in network order, as stored).
constexpr uint16_t checksum_update16(uint16_t checksum, uint16_t old_word, uint16_t new_word) {
    uint32_t sum = uint16_t(~checksum) + uint32_t(uint16_t(~old_word)) + new_word;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(~sum);
}

// Marks an ECN-capable packet Congestion Experienced and patches the checksum.
inline void set_ecn_ce(ipv4_hdr& ip) {
    uint16_t old_word = uint16_t(ip.version_ihl | ip.tos << 8);  // stored order, little-endian
    ip.tos |= 0x03;
    uint16_t new_word = uint16_t(ip.version_ihl | ip.tos << 8);
    ip.checksum = checksum_update16(ip.checksum, old_word, new_word);
}

// Decrements the TTL and patches the header checksum in place (RFC 1141, as Linux's
// ip_decrease_ttl): the TTL is the high byte of its word, so the checksum gains 0x0100.
// No read of the byte just written, which would stall on store forwarding.
inline void decrement_ttl(ipv4_hdr& ip) {
    uint32_t check = ip.checksum;
    check += bswap(uint16_t(0x0100));
    ip.checksum = uint16_t(check + (check >= 0xffff));
    --ip.ttl;
}

}  // namespace twill::net
