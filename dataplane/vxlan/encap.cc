#include <rte_ip.h>

#include "dataplane/arp/arp.h"
#include "dataplane/ipv4/ipv4.h"
#include "dataplane/vxlan/vxlan.h"

namespace twill {

void vxlan_encap(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* inner_ip,
                 uint32_t header_len, uint32_t total_len, const remote_node_entry& node) {
    const node_params& p = *ctx.params;
    mac_addr next_hop;
    if (!neighbour_resolve(ctx, node, next_hop)) [[unlikely]] {
        ctx.drop_packet(m, drop::neighbour_unresolved);
        return;
    }
    uint16_t sport = vxlan_source_port(flow_hash(inner_ip, header_len, total_len));
    uint8_t tos = outer_tos(inner_ip->tos);

    // The pod's Ethernet header becomes the inner one: VTEP to VTEP, as flannel.1 sends.
    auto* inner_eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    inner_eth->dst = node.vtep_mac;
    inner_eth->src = p.vtep_mac;

    auto* h = reinterpret_cast<net::vxlan_encap_hdr*>(rte_pktmbuf_prepend(m, net::vxlan_overhead));
    if (h == nullptr) [[unlikely]] {
        ctx.drop_packet(m, drop::too_big);  // no headroom: not from a pool of ours
        return;
    }
    uint32_t inner_frame_len = m->pkt_len - net::vxlan_overhead;

    h->eth.dst = next_hop;
    h->eth.src = p.underlay_mac;
    h->eth.type.set(net::ether_type_ipv4);

    h->ip.version_ihl = 0x45;
    h->ip.tos = tos;
    h->ip.total_length.set(uint16_t(inner_frame_len + sizeof(net::ipv4_hdr) +
                                    sizeof(net::udp_hdr) + sizeof(net::vxlan_hdr)));
    h->ip.id.set(ctx.ip_id++);
    h->ip.frag.set(0);  // Linux flannel.1 leaves DF clear (vxlan df unset)
    h->ip.ttl = 64;
    h->ip.proto = net::ip_proto_udp;
    h->ip.checksum = 0;
    h->ip.src.set(p.node_ip.value);
    h->ip.dst.set(node.ip.value);

    h->udp.src_port.set(sport);
    h->udp.dst_port.set(p.vxlan_port);
    h->udp.length.set(uint16_t(inner_frame_len + sizeof(net::udp_hdr) + sizeof(net::vxlan_hdr)));
    h->udp.checksum = 0;
    h->vxlan.set(p.vni);

    auto* rte_ip = reinterpret_cast<rte_ipv4_hdr*>(&h->ip);
    h->ip.checksum = rte_ipv4_cksum(rte_ip);
    h->udp.checksum = rte_ipv4_udptcp_cksum_mbuf(m, rte_ip, sizeof(net::eth_hdr) + sizeof(net::ipv4_hdr));

    ctx.counters->encapsulated.add();
    ctx.send(p.underlay_port, m);
}

}  // namespace twill
