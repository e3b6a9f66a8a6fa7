#include "dataplane/forward.h"

#include "dataplane/arp/arp.h"
#include "dataplane/icmp/icmp.h"
#include "dataplane/ipv4/ipv4.h"
#include "dataplane/policy/policy.h"

namespace twill {

bool service_took(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                  uint32_t total_len, origin from) {
    switch (service_input(ctx, m, ip, header_len, total_len, from)) {
        case svc_verdict::pass:
            return false;
        case svc_verdict::rewritten:
            route_ipv4(ctx, m, ip, ip->header_length(), ip->total_length.get(), origin::nat);
            return true;
        case svc_verdict::consumed:
            return true;
    }
    return true;
}

void deliver_local(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t pod) {
    if (ip->ttl <= 1) [[unlikely]] {
        icmp_error(ctx, m, ip, icmp::time_exceeded, icmp::code_ttl, 0, drop::ttl_expired);
        return;
    }
    net::decrement_ttl(*ip);
    send_to_pod(ctx, m, pod);
}

void send_to_pod(pipeline_ctx& ctx, rte_mbuf* m, uint32_t pod) {
    const local_pod_entry& entry = ctx.pods->pod(pod);
    mac_addr pod_mac;
    if (!ctx.learned->pod_macs[entry.state].get(pod_mac)) [[unlikely]] {
        // Ask, and hold the packet until the pod answers (within a round trip).
        pod_solicit(ctx, entry);
        if (!ctx.park(m, true)) {
            ctx.drop_packet(m, drop::pod_unknown_mac);
        }
        return;
    }
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    eth->dst = pod_mac;
    eth->src = ctx.params->gateway_mac;
    ctx.counters->delivered_local.add();
    ctx.send(entry.port_id, m);
}

void send_to_host(pipeline_ctx& ctx, rte_mbuf* m) {
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    eth->dst = ctx.params->underlay_mac;
    eth->src = ctx.params->gateway_mac;
    pass_to_host(ctx, m);
}

void overlay_input(pipeline_ctx& ctx, rte_mbuf* m, uint8_t outer_tos) {
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
    // ECN decapsulation as Linux's IP_ECN_decapsulate: congestion marked on the way
    // between nodes reaches the pod; a CE mark on a packet that cannot carry it is dropped.
    if ((outer_tos & 0x03) == 0x03 && (ip->tos & 0x03) != 0x03) [[unlikely]] {
        if ((ip->tos & 0x03) == 0) {
            ctx.drop_packet(m, drop::ecn_ce_not_ect);
            return;
        }
        net::set_ecn_ce(*ip);
    }
    trim_to(m, sizeof(net::eth_hdr) + total_len);
    const node_params& p = *ctx.params;
    if (is_martian(ip->src_addr())) [[unlikely]] {
        ctx.drop_packet(m, drop::martian);
        return;
    }
    if (!fragment_ok(ip, ip->header_length(), total_len)) [[unlikely]] {
        ctx.drop_packet(m, drop::fragment_attack);
        return;
    }
    // Replies of connections this node translated: to a local client, the node's
    // kernel, or a client on the underlay.
    if (services_active(ctx) &&
        service_took(ctx, m, ip, ip->header_length(), total_len, origin::overlay)) {
        return;
    }
    ip4_addr dst = ip->dst_addr();
    if (!p.pod_cidr.contains(dst)) [[unlikely]] {
        ctx.drop_packet(m, drop::decap_not_local);
        return;
    }
    if (dst == p.pod_cidr.addr) [[unlikely]] {
        if (p.has_host()) {
            send_to_host(ctx, m);
            return;
        }
        ctx.drop_packet(m, drop::to_node_address);
        return;
    }
    uint32_t pod = ctx.pods->lookup(dst);
    if (pod == no_index) [[unlikely]] {
        ctx.drop_packet(m, drop::no_local_pod);
        return;
    }
    if (policy_active(ctx) && !policy_input(ctx, m, ip, ip->header_length(), total_len, origin::overlay)) {
        return;
    }
    deliver_local(ctx, m, ip, pod);
}

}  // namespace twill
