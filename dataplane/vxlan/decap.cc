#include <rte_ip.h>

#include "dataplane/forward.h"
#include "dataplane/ipv4/ipv4.h"
#include "dataplane/net/checksum.h"
#include "dataplane/vxlan/vxlan.h"

namespace twill {
namespace {

bool udp_checksum_ok(const rte_mbuf* m, const net::ipv4_hdr* ip, const net::udp_hdr* udp,
                     uint32_t udp_len) {
    if (m->nb_segs != 1) [[unlikely]] {
        return rte_ipv4_udptcp_cksum_mbuf_verify(
                   m, reinterpret_cast<const rte_ipv4_hdr*>(ip),
                   uint16_t(reinterpret_cast<const uint8_t*>(udp) - rte_pktmbuf_mtod(m, const uint8_t*))) == 0;
    }
    uint64_t sum = net::pseudo_header_sum(ip->src.raw, ip->dst.raw, net::ip_proto_udp, uint16_t(udp_len));
    return net::checksum_fold(net::checksum_add(sum, udp, udp_len)) == 0xffff;
}

}  // namespace

void vxlan_decap(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* ip, uint32_t header_len,
                 uint32_t total_len) {
    const node_params& p = *ctx.params;
    constexpr uint32_t udp_vxlan = sizeof(net::udp_hdr) + sizeof(net::vxlan_hdr);
    const uint32_t l4 = sizeof(net::eth_hdr) + header_len;
    const auto* udp = rte_pktmbuf_mtod_offset(m, const net::udp_hdr*, l4);
    uint32_t udp_len = udp->length.get();
    if (udp_len < udp_vxlan || udp_len > total_len - header_len) [[unlikely]] {
        ctx.drop_packet(m, drop::udp_truncated);
        return;
    }
    if (p.vxlan_known_sources_only && ctx.slices->node_by_ip(ip->src_addr()) == nullptr)
        [[unlikely]] {
        ctx.drop_packet(m, drop::vxlan_unknown_source);
        return;
    }
    // A zero checksum means "none" (RFC 768); otherwise trust the NIC's verdict when it
    // gave one, and check in software when it did not.
    if (udp->checksum != 0) {
        uint64_t flags = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
        if (flags == RTE_MBUF_F_RX_L4_CKSUM_BAD ||
            (flags != RTE_MBUF_F_RX_L4_CKSUM_GOOD && !udp_checksum_ok(m, ip, udp, udp_len)))
            [[unlikely]] {
            ctx.drop_packet(m, drop::udp_bad_checksum);
            return;
        }
    }
    const auto* vx = reinterpret_cast<const net::vxlan_hdr*>(udp + 1);
    // Like Linux without extensions: exactly the I flag, reserved bits zero.
    if (vx->flags_word() != net::vxlan_hdr::flag_i || (vx->vni_reserved.get() & 0xff) != 0)
        [[unlikely]] {
        ctx.drop_packet(m, drop::vxlan_bad_flags);
        return;
    }
    if (vx->vni() != p.vni) [[unlikely]] {
        ctx.drop_packet(m, drop::vxlan_bad_vni);
        return;
    }
    const uint8_t outer_tos = ip->tos;  // the outer header is gone after adj
    const uint32_t inner_off = l4 + udp_vxlan;
    const uint32_t inner_len = udp_len - udp_vxlan;
    rte_pktmbuf_adj(m, uint16_t(inner_off));
    // The port's hash and checksum verdicts were about the outer headers.
    m->ol_flags &=
        ~(RTE_MBUF_F_RX_RSS_HASH | RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
    trim_to(m, inner_len);
    ctx.counters->decapsulated.add();
    overlay_input(ctx, m, outer_tos);
}

}  // namespace twill
