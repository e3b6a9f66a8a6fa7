#include <cstring>

#include <rte_ip.h>

#include "dataplane/arp/arp.h"
#include "dataplane/ipv4/ipv4.h"
#include "dataplane/net/checksum.h"
#include "dataplane/vxlan/vxlan.h"

namespace twill {

void vxlan_encap(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* inner_ip,
                 uint32_t header_len, uint32_t total_len, const remote_node_entry& node) {
    const node_params& p = *ctx.params;
    mac_addr next_hop;
    if (!neighbour_resolve(ctx, node, next_hop)) [[unlikely]] {
        if (!ctx.park(m, false)) {
            ctx.drop_packet(m, drop::neighbour_unresolved);
        }
        return;
    }
    const vxlan_rewrite& rw = node.rewrite;
    // The source port spreads flows over the receiving node's queues: from the hash the
    // receiving port computed over the inner packet when it gave one, as Linux takes
    // skb->hash, else from our own.
    const uint32_t hash = (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH)
                              ? m->hash.rss
                              : flow_hash(inner_ip, header_len, total_len);
    const uint16_t sport = vxlan_source_port(hash);
    const uint8_t tos = outer_tos(inner_ip->tos);
    const uint16_t udp_len = uint16_t(total_len + sizeof(net::eth_hdr) + sizeof(net::udp_hdr) +
                                      sizeof(net::vxlan_hdr));
    const uint16_t ip_len = uint16_t(udp_len + sizeof(net::ipv4_hdr));
    const uint16_t id = ctx.ip_id++;

    // The UDP checksum covers the whole inner frame, as Linux sends it (udpcsum). Of the
    // inner frame only the transport part is summed from memory: the Ethernet header is
    // the rewrite's, and a valid IPv4 header sums to zero, before and after the TTL
    // decrement alike.
    // A port that offloads the checksums is handed the pseudo-header's sum instead, and
    // puts the same bytes on the wire.
    const bool offload = ctx.layout != nullptr && ctx.layout->ports[p.underlay_port].tx_cksum;
    const bool contiguous = m->nb_segs == 1;
    uint32_t payload = 0;
    if (contiguous && !offload) [[likely]] {
        const auto* l4 = reinterpret_cast<const uint8_t*>(inner_ip) + header_len;
        payload = net::bswap(net::checksum_fold(net::checksum_add(0, l4, total_len - header_len)));
    }

    auto* h = reinterpret_cast<uint8_t*>(
        rte_pktmbuf_prepend(m, net::vxlan_overhead));  // the pod's Ethernet header is overwritten
    if (h == nullptr) [[unlikely]] {
        ctx.drop_packet(m, drop::too_big);  // no headroom: not from a pool of ours
        return;
    }
    std::memcpy(h, &rw, sizeof(net::vxlan_encap_hdr) + sizeof(net::eth_hdr));
    auto* outer = reinterpret_cast<net::vxlan_encap_hdr*>(h);
    outer->eth.dst = next_hop;
    outer->ip.tos = tos;
    outer->ip.total_length.set(ip_len);
    outer->ip.id.set(id);
    outer->udp.src_port.set(sport);
    outer->udp.length.set(udp_len);
    if (offload) {
        m->l2_len = sizeof(net::eth_hdr);
        m->l3_len = sizeof(net::ipv4_hdr);
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
        outer->ip.checksum = 0;
        outer->udp.checksum = net::checksum_fold(
            net::pseudo_header_sum(outer->ip.src.raw, outer->ip.dst.raw, net::ip_proto_udp, udp_len));
        ctx.counters->encapsulated.add();
        ctx.send(p.underlay_port, m);
        return;
    }
    outer->ip.checksum = net::bswap(uint16_t(~net::fold16(rw.ip_sum + tos + ip_len + id)));
    if (contiguous) [[likely]] {
        uint16_t c = uint16_t(~net::fold16(rw.udp_sum + 2u * udp_len + sport + payload));
        outer->udp.checksum = net::bswap(c == 0 ? uint16_t(0xffff) : c);
    } else {
        outer->udp.checksum = rte_ipv4_udptcp_cksum_mbuf(
            m, reinterpret_cast<rte_ipv4_hdr*>(&outer->ip), sizeof(net::eth_hdr) + sizeof(net::ipv4_hdr));
    }

    ctx.counters->encapsulated.add();
    ctx.send(p.underlay_port, m);
}

}  // namespace twill
