// IPv4 checks and helpers shared by every stage that reads an IPv4 header.
#pragma once

#include <algorithm>
#include <cstdint>

#include <rte_ip.h>
#include <rte_mbuf.h>

#include "dataplane/counters.h"
#include "dataplane/net/checksum.h"
#include "dataplane/net/headers.h"
#include "dataplane/worker/ctx.h"

namespace twill {

// A frame in several segments (a port receiving into chained mbufs, for a jumbo MTU)
// must hold in its first segment every header the pipeline reads in place: all of a
// short frame, else at least this much (outer and inner headers, an ICMP error's quoted
// header). Ports fill whole segments, so only a malformed chain falls short.
inline constexpr uint32_t min_first_segment = 256;
inline bool first_segment_ok(const rte_mbuf* m) {
    return m->nb_segs == 1 || m->data_len >= std::min<uint32_t>(m->pkt_len, min_first_segment);
}

// Checks the header at `ip`, of which `avail` bytes are in the frame, `first` of them in
// its first segment (the header must be there). On success `header_len` and `total_len`
// hold the header's lengths.
inline drop check_ipv4(const net::ipv4_hdr* ip, uint32_t avail, uint32_t first,
                       uint32_t& header_len, uint32_t& total_len) {
    if (first < sizeof(net::ipv4_hdr)) [[unlikely]] {
        return drop::ip_truncated;
    }
    header_len = ip->header_length();
    if (ip->version() != 4 || header_len < sizeof(net::ipv4_hdr)) [[unlikely]] {
        return drop::ip_bad_header;
    }
    total_len = ip->total_length.get();
    if (header_len > first || total_len > avail || total_len < header_len) [[unlikely]] {
        return drop::ip_truncated;
    }
    if (net::raw_checksum(ip, header_len) != 0xffff) [[unlikely]] {
        return drop::ip_bad_checksum;
    }
    return drop::none;
}

// The IPv4 header behind the Ethernet header of `m` if it is well-formed; otherwise the
// packet is dropped with the reason and nullptr returned.
inline net::ipv4_hdr* accept_ipv4(pipeline_ctx& ctx, rte_mbuf* m, uint32_t& header_len,
                                  uint32_t& total_len) {
    auto* ip = rte_pktmbuf_mtod_offset(m, net::ipv4_hdr*, sizeof(net::eth_hdr));
    if (drop d = check_ipv4(ip, m->pkt_len - sizeof(net::eth_hdr), m->data_len - sizeof(net::eth_hdr),
                            header_len, total_len);
        d != drop::none) [[unlikely]] {
        ctx.drop_packet(m, d);
        return nullptr;
    }
    return ip;
}

// Drops Ethernet padding (and anything else past the IP packet) from the frame's tail.
// RFC 1858 / RFC 3128: a TCP fragment at offset 8 bytes can overwrite the first
// fragment's flags, and a first fragment too short for the transport header can move
// its ports or flags into the next one; both slip past anything that inspects first
// fragments only, and no legitimate stack sends either.
inline bool fragment_ok(const net::ipv4_hdr* ip, uint32_t header_len, uint32_t total_len) {
    const uint16_t frag = ip->frag.get();
    if ((frag & (net::ipv4_hdr::flag_mf | net::ipv4_hdr::offset_mask)) == 0) [[likely]] {
        return true;
    }
    const uint16_t offset = frag & net::ipv4_hdr::offset_mask;
    if (offset == 1 && ip->proto == net::ip_proto_tcp) {
        return false;
    }
    if (offset == 0) {
        const uint32_t need = ip->proto == net::ip_proto_tcp ? 16
                              : ip->proto == net::ip_proto_udp || ip->proto == net::ip_proto_icmp ? 8
                                                                                                 : 0;
        return total_len - header_len >= need;
    }
    return true;
}

// Cuts the frame to `frame_len` bytes, in however many segments it ends.
inline void trim_to(rte_mbuf* m, uint32_t frame_len) {
    if (m->pkt_len <= frame_len) [[likely]] {
        return;
    }
    if (m->nb_segs == 1) [[likely]] {
        rte_pktmbuf_trim(m, uint16_t(m->pkt_len - frame_len));
        return;
    }
    uint32_t kept = 0;
    rte_mbuf* seg = m;
    while (kept + seg->data_len < frame_len) {
        kept += seg->data_len;
        seg = seg->next;
    }
    seg->data_len = uint16_t(frame_len - kept);
    if (seg->next != nullptr) {
        rte_mbuf* rest = seg->next;
        seg->next = nullptr;
        uint16_t gone = 0;
        for (rte_mbuf* s = rest; s != nullptr; s = s->next) {
            ++gone;
        }
        m->nb_segs = uint16_t(m->nb_segs - gone);
        rte_pktmbuf_free(rest);
    }
    m->pkt_len = frame_len;
}

// A hash of the inner flow: addresses, protocol and, except for fragments (like Linux's
// flow dissector, so all fragments of a datagram take one path), ports.
inline uint32_t flow_hash(const net::ipv4_hdr* ip, uint32_t header_len, uint32_t total_len) {
    uint64_t h = (uint64_t(ip->src.raw) << 32 | ip->dst.raw) * 0x9e3779b97f4a7c15ull;
    h ^= ip->proto;
    bool has_ports = (ip->proto == net::ip_proto_tcp || ip->proto == net::ip_proto_udp) &&
                     !ip->is_fragment() && total_len >= header_len + 4;
    if (has_ports) {
        uint32_t ports;
        std::memcpy(&ports, reinterpret_cast<const uint8_t*>(ip) + header_len, 4);
        h ^= uint64_t(ports) << 16;
    }
    h *= 0xff51afd7ed558ccdull;
    return uint32_t(h >> 32) ^ uint32_t(h);
}

}  // namespace twill
