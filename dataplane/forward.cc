#include "dataplane/forward.h"

#include "dataplane/arp/arp.h"
#include "dataplane/ipv4/ipv4.h"

namespace twill {

void deliver_local(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t pod) {
    const local_pod_entry& entry = ctx.pods->pod(pod);
    mac_addr pod_mac;
    if (!ctx.learned->pod_macs[entry.state].get(pod_mac)) [[unlikely]] {
        // A router would ARP and queue; the pod answers our request within a round trip.
        arp_send_request(ctx, entry.port_id, ctx.params->gateway_mac, pod_gateway_ip, entry.ip);
        ctx.drop_packet(m, drop::pod_unknown_mac);
        return;
    }
    if (ip->ttl <= 1) [[unlikely]] {
        ctx.drop_packet(m, drop::ttl_expired);
        return;
    }
    net::decrement_ttl(*ip);
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    eth->dst = pod_mac;
    eth->src = ctx.params->gateway_mac;
    ctx.counters->delivered_local.add();
    ctx.send(entry.port_id, m);
}

void overlay_input(pipeline_ctx& ctx, rte_mbuf* m) {
    if (m->data_len < sizeof(net::eth_hdr) + sizeof(net::ipv4_hdr)) [[unlikely]] {
        ctx.drop_packet(m, drop::inner_truncated);
        return;
    }
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    if (eth->dst != ctx.params->vtep_mac) [[unlikely]] {
        ctx.drop_packet(m, drop::inner_bad_dst_mac);
        return;
    }
    if (eth->type.get() != net::ether_type_ipv4) [[unlikely]] {
        ctx.drop_packet(m, drop::inner_not_ipv4);
        return;
    }
    uint32_t header_len, total_len;
    net::ipv4_hdr* ip = accept_ipv4(ctx, m, header_len, total_len);
    if (ip == nullptr) [[unlikely]] {
        return;
    }
    trim_to(m, sizeof(net::eth_hdr) + total_len);
    const node_params& p = *ctx.params;
    ip4_addr dst = ip->dst_addr();
    if (!p.pod_cidr.contains(dst)) [[unlikely]] {
        ctx.drop_packet(m, drop::decap_not_local);
        return;
    }
    if (dst == p.pod_cidr.addr) [[unlikely]] {
        ctx.drop_packet(m, drop::to_node_address);
        return;
    }
    uint32_t pod = ctx.pods->lookup(dst);
    if (pod == no_index) [[unlikely]] {
        ctx.drop_packet(m, drop::no_local_pod);
        return;
    }
    deliver_local(ctx, m, ip, pod);
}

}  // namespace twill
