#include "dataplane/pipeline.h"

#include <rte_prefetch.h>

#include "dataplane/arp/arp.h"
#include "dataplane/forward.h"
#include "dataplane/icmp/icmp.h"
#include "dataplane/ipv4/fragment.h"
#include "dataplane/ipv4/ipv4.h"
#include "dataplane/policy/policy.h"
#include "dataplane/service/service.h"
#include "dataplane/vxlan/vxlan.h"

namespace twill {
namespace {

constexpr uint16_t prefetch_ahead = 3;

void prefetch_next(rte_mbuf** pkts, uint16_t i, uint16_t n) {
    if (i + prefetch_ahead < n) {
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i + prefetch_ahead], void*));
    }
}

// How far ahead of its packet the service stage's connection lookup is started.
constexpr uint16_t lookahead = 2;

// Sorts a burst by ethertype into the IPv4 and ARP stages; the lambdas inline. `ahead`
// runs on the packet `lookahead` places further on.
template <typename Ipv4, typename Arp, typename Ahead>
void by_ethertype(pipeline_ctx& ctx, rte_mbuf** pkts, uint16_t n, drop other, Ipv4&& ipv4,
                  Arp&& arp, Ahead&& ahead) {
    for (uint16_t i = 0; i < n; ++i) {
        prefetch_next(pkts, i, n);
        if (i + lookahead < n) {
            ahead(pkts[i + lookahead]);
        }
        rte_mbuf* m = pkts[i];
        if (m->data_len < sizeof(net::eth_hdr)) [[unlikely]] {
            ctx.drop_packet(m, drop::eth_truncated);
            continue;
        }
        if (!first_segment_ok(m)) [[unlikely]] {
            ctx.drop_packet(m, drop::segment_split);
            continue;
        }
        uint16_t type = rte_pktmbuf_mtod(m, const net::eth_hdr*)->type.get();
        if (type == net::ether_type_ipv4) [[likely]] {
            ipv4(m);
        } else if (type == net::ether_type_arp) {
            arp(m);
        } else {
            ctx.drop_packet(m, other);
        }
    }
}

// Node ports and external IPs: true when the service stage took the packet (sent,
// dropped, or translated and routed on).
bool underlay_service(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                      uint32_t total_len) {
    // Pods are reached through VXLAN: a pod address on the plain underlay is spoofed, and
    // would pass for a pod (no masquerade) or for a backend's reply.
    const ip4_addr src = ip->src_addr();
    if (ctx.params->cluster_cidr.contains(src) || is_martian(src)) [[unlikely]] {
        ctx.drop_packet(m, drop::underlay_cluster_source);
        return true;
    }
    if (!fragment_ok(ip, header_len, total_len)) [[unlikely]] {
        ctx.drop_packet(m, drop::fragment_attack);
        return true;
    }
    return service_took(ctx, m, ip, header_len, total_len, origin::underlay);
}

void underlay_ipv4(pipeline_ctx& ctx, rte_mbuf* m) {
    // A port that sees the whole segment (af_packet, promiscuous) also sees frames for
    // other hosts; the kernel ignores those, and so do we.
    if (rte_pktmbuf_mtod(m, const net::eth_hdr*)->dst != ctx.params->underlay_mac) [[unlikely]] {
        ctx.drop_packet(m, drop::underlay_other_host);
        return;
    }
    uint32_t header_len, total_len;
    net::ipv4_hdr* ip = accept_ipv4(ctx, m, header_len, total_len);
    if (ip == nullptr) [[unlikely]] {
        return;
    }
    const node_params& p = *ctx.params;
    if (ip->dst_addr() != p.node_ip) [[unlikely]] {
        // An external IP of a service, routed here by the underlay.
        if (services_active(ctx)) {
            trim_to(m, sizeof(net::eth_hdr) + total_len);
            if (underlay_service(ctx, m, ip, header_len, total_len)) {
                return;
            }
        }
        ctx.drop_packet(m, drop::underlay_not_for_dataplane);
        return;
    }
    // Not VXLAN: the node's own traffic (SSH, the kubelet, node ports), for its kernel.
    const bool udp_header = ip->proto == net::ip_proto_udp && !ip->is_later_fragment() &&
                            total_len >= header_len + sizeof(net::udp_hdr);
    const auto* udp =
        rte_pktmbuf_mtod_offset(m, const net::udp_hdr*, sizeof(net::eth_hdr) + header_len);
    if (!udp_header || udp->dst_port.get() != p.vxlan_port) [[unlikely]] {
        if (services_active(ctx)) {
            trim_to(m, sizeof(net::eth_hdr) + total_len);
            if (underlay_service(ctx, m, ip, header_len, total_len)) {
                return;
            }
        }
        if (p.has_host()) {
            trim_to(m, sizeof(net::eth_hdr) + total_len);
            pass_to_host(ctx, m);
            return;
        }
        ctx.drop_packet(m, ip->proto == net::ip_proto_udp && !udp_header ? drop::udp_truncated
                                                                          : drop::underlay_not_for_dataplane);
        return;
    }
    // VXLAN over a fragmented datagram: Linux would reassemble; flannel never sends one
    // (the overlay MTU leaves room for the headers).
    if (ip->is_fragment()) [[unlikely]] {
        ctx.drop_packet(m, drop::outer_fragment);
        return;
    }
    vxlan_decap(ctx, m, ip, header_len, total_len);
}

// A packet without DF too big for the overlay: its fragments, each through the TTL check
// and VXLAN like any packet.
void encap_fragments(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                     uint32_t total_len, const remote_node_entry& node) {
    if (ip->ttl <= 1) [[unlikely]] {
        icmp_error(ctx, m, ip, icmp::time_exceeded, icmp::code_ttl, 0, drop::ttl_expired);
        return;
    }
    rte_mbuf* frags[max_fragments];
    const uint16_t n = ipv4_fragment(ctx, m, ip, header_len, total_len, ctx.params->mtu, frags);
    if (n == 0) [[unlikely]] {
        ctx.drop_packet(m, drop::too_big);
        return;
    }
    rte_pktmbuf_free(m);
    ctx.counters->fragmented.add();
    for (uint16_t i = 0; i < n; ++i) {
        auto* f = rte_pktmbuf_mtod_offset(frags[i], net::ipv4_hdr*, sizeof(net::eth_hdr));
        net::decrement_ttl(*f);
        vxlan_encap(ctx, frags[i], f, header_len, f->total_length.get(), node);
    }
}

void pod_ipv4(pipeline_ctx& ctx, uint32_t pod, rte_mbuf* m) {
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    const node_params& p = *ctx.params;
    if (eth->dst != p.gateway_mac) [[unlikely]] {
        ctx.drop_packet(m, drop::pod_bad_dst_mac);
        return;
    }
    uint32_t header_len, total_len;
    net::ipv4_hdr* ip = accept_ipv4(ctx, m, header_len, total_len);
    if (ip == nullptr) [[unlikely]] {
        return;
    }
    const local_pod_entry& src = ctx.pods->pod(pod);
    if (ip->src_addr() != src.ip) [[unlikely]] {
        ctx.drop_packet(m, drop::pod_spoofed_ip);
        return;
    }
    if (!pod_mac_ok(ctx, src, eth->src)) [[unlikely]] {
        ctx.drop_packet(m, drop::pod_spoofed_mac);
        return;
    }
    trim_to(m, sizeof(net::eth_hdr) + total_len);

    // Tunnels of a pod's own would carry packets past every check here (Calico's
    // AllowIPIPPacketsFromWorkloads / AllowVXLANPacketsFromWorkloads, off by default).
    if (ip->proto == net::ip_proto_ipip ||
        (ip->proto == net::ip_proto_udp && !ip->is_later_fragment() && total_len >= header_len + 4 &&
         reinterpret_cast<const net::udp_hdr*>(reinterpret_cast<const uint8_t*>(ip) + header_len)
                 ->dst_port.get() == p.vxlan_port)) [[unlikely]] {
        ctx.drop_packet(m, drop::pod_tunnel);
        return;
    }
    route_ipv4(ctx, m, ip, header_len, total_len, origin::pod);
}

// From the node's kernel: to the gateway MAC, routed into the overlay; anything else is
// the kernel's own underlay traffic and leaves through the underlay port unchanged.
void host_frame(pipeline_ctx& ctx, rte_mbuf* m) {
    const node_params& p = *ctx.params;
    if (m->data_len < sizeof(net::eth_hdr)) [[unlikely]] {
        ctx.drop_packet(m, drop::eth_truncated);
        return;
    }
    if (!first_segment_ok(m)) [[unlikely]] {
        ctx.drop_packet(m, drop::segment_split);
        return;
    }
    const auto* eth = rte_pktmbuf_mtod(m, const net::eth_hdr*);
    const uint16_t type = eth->type.get();
    if (type == net::ether_type_ipv4 && eth->dst == p.gateway_mac) {
        uint32_t header_len, total_len;
        net::ipv4_hdr* ip = accept_ipv4(ctx, m, header_len, total_len);
        if (ip == nullptr) [[unlikely]] {
            return;
        }
        trim_to(m, sizeof(net::eth_hdr) + total_len);
        ctx.counters->from_host.add();
        route_ipv4(ctx, m, ip, header_len, total_len, origin::host);
        return;
    }
    if (type == net::ether_type_arp && arp_host_input(ctx, m)) {
        return;  // answered: a pod address, which the gateway MAC reaches
    }
    // The kernel answering on the underlay for a hostNetwork endpoint: the reply of a
    // node-port connection, which goes back out from the node port.
    if (type == net::ether_type_ipv4 && !ctx.ct->empty()) {
        uint32_t header_len, total_len;
        net::ipv4_hdr* ip = accept_ipv4(ctx, m, header_len, total_len);
        if (ip == nullptr) [[unlikely]] {
            return;
        }
        trim_to(m, sizeof(net::eth_hdr) + total_len);
        if (service_took(ctx, m, ip, header_len, total_len, origin::host)) {
            return;
        }
    }
    ctx.counters->host_to_underlay.add();
    ctx.send(p.underlay_port, m);
}

}  // namespace

// Routes an accepted IPv4 packet from a pod or from the node's kernel (`from_host`):
// to a local pod, through VXLAN to a remote one, or up to the kernel (the node's own
// addresses and everything outside the cluster, which the kernel routes or masquerades).
void route_ipv4(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                uint32_t total_len, origin from) {
    const node_params& p = *ctx.params;
    if (!fragment_ok(ip, header_len, total_len)) [[unlikely]] {
        ctx.drop_packet(m, drop::fragment_attack);
        return;
    }
    if (is_martian(ip->dst_addr())) [[unlikely]] {
        ctx.drop_packet(m, drop::martian);
        return;
    }
    if (from != origin::nat && services_active(ctx)) {
        switch (service_input(ctx, m, ip, header_len, total_len, from)) {
            case svc_verdict::pass:
                break;
            case svc_verdict::rewritten:
                // Translated, or a reset back to the sender (which may be the kernel).
                from = origin::nat;
                header_len = ip->header_length();
                total_len = ip->total_length.get();
                break;
            case svc_verdict::consumed:
                return;
        }
    }
    if (policy_active(ctx) && !policy_input(ctx, m, ip, header_len, total_len, from)) {
        return;
    }
    const bool from_host = from == origin::host;
    const ip4_addr dst = ip->dst_addr();
    if (p.pod_cidr.contains(dst)) {
        uint32_t to = ctx.pods->lookup(dst);
        if (to == no_index) [[unlikely]] {
            if (dst == p.pod_cidr.addr && p.has_host() && !from_host) {
                send_to_host(ctx, m);
                return;
            }
            ctx.drop_packet(m, dst == p.pod_cidr.addr ? drop::to_node_address : drop::no_local_pod);
            return;
        }
        deliver_local(ctx, m, ip, to);
        return;
    }
    const remote_node_entry* node = ctx.slices->lookup(dst);
    if (node == nullptr) [[unlikely]] {
        if (!p.cluster_cidr.contains(dst) && p.has_host() && !from_host) {
            send_to_host(ctx, m);
            return;
        }
        ctx.drop_packet(m, p.cluster_cidr.contains(dst) ? drop::no_remote_node : drop::no_route);
        return;
    }
    if (total_len > p.mtu) [[unlikely]] {
        // With DF the source learns the overlay MTU (path MTU discovery); without, the
        // packet is fragmented as the kernel does before flannel.1.
        if (ip->frag.get() & net::ipv4_hdr::flag_df) {
            icmp_error(ctx, m, ip, icmp::dest_unreachable, icmp::code_frag_needed, p.mtu, drop::too_big);
        } else {
            encap_fragments(ctx, m, ip, header_len, total_len, *node);
        }
        return;
    }
    // This hop is the router between the pod and flannel.1: one TTL decrement here, one
    // at the receiving node, as with the kernel path.
    if (ip->ttl <= 1) [[unlikely]] {
        icmp_error(ctx, m, ip, icmp::time_exceeded, icmp::code_ttl, 0, drop::ttl_expired);
        return;
    }
    net::decrement_ttl(*ip);
    vxlan_encap(ctx, m, ip, header_len, total_len, *node);
}

void host_input(pipeline_ctx& ctx, rte_mbuf** pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; ++i) {
        prefetch_next(pkts, i, n);
        host_frame(ctx, pkts[i]);
    }
}

void underlay_input(pipeline_ctx& ctx, rte_mbuf** pkts, uint16_t n) {
    const bool tracked = policy_active(ctx);
    by_ethertype(
        ctx, pkts, n, drop::underlay_other_ethertype,
        [&](rte_mbuf* m) { underlay_ipv4(ctx, m); },
        [&](rte_mbuf* m) { arp_underlay_input(ctx, m); },
        [&](const rte_mbuf* m) {
            // The inner frame of VXLAN (outer header without options), else node ports.
            const auto* eth = rte_pktmbuf_mtod(m, const uint8_t*);
            const bool vxlan = m->data_len >= 64 && eth[23] == net::ip_proto_udp &&
                               eth[14] == 0x45 && (eth[36] << 8 | eth[37]) == ctx.params->vxlan_port;
            service_lookahead(ctx, m, vxlan ? 64 : 14, tracked);
        });
}

void pod_input(pipeline_ctx& ctx, uint16_t port, rte_mbuf** pkts, uint16_t n) {
    uint32_t pod = ctx.pods->by_port(port);
    if (pod == no_index) [[unlikely]] {
        for (uint16_t i = 0; i < n; ++i) {
            ctx.drop_packet(pkts[i], drop::unknown_port);
        }
        return;
    }
    const bool tracked = policy_active(ctx);
    by_ethertype(
        ctx, pkts, n, drop::pod_other_ethertype,
        [&](rte_mbuf* m) { pod_ipv4(ctx, pod, m); },
        [&](rte_mbuf* m) { arp_pod_input(ctx, pod, m); },
        [&](const rte_mbuf* m) { service_lookahead(ctx, m, 14, tracked); });
}

void drop_parked(pipeline_ctx& ctx) {
    for (uint16_t i = 0; i < ctx.nparked; ++i) {
        ctx.drop_packet(ctx.parked[i].m,
                        ctx.parked[i].to_pod ? drop::pod_unknown_mac : drop::neighbour_unresolved);
    }
    ctx.nparked = 0;
}

void retry_parked(pipeline_ctx& ctx) {
    const uint64_t hz = ctx.params->tsc_hz;
    if (ctx.nparked == 0) {
        return;
    }
    const uint32_t epoch = ctx.learned->learn_epoch.load(std::memory_order_acquire);
    if (!ctx.parked_dirty && epoch == ctx.parked_epoch && ctx.now_tsc - ctx.parked[0].tsc < hz) {
        return;
    }
    ctx.parked_dirty = false;
    ctx.parked_epoch = epoch;
    // Compacted in place: what still waits moves to the front, oldest first. Sending
    // never parks again here, since a packet is sent only once its MAC is known.
    uint16_t kept = 0;
    for (uint16_t i = 0; i < ctx.nparked; ++i) {
        const pipeline_ctx::parked_packet p = ctx.parked[i];
        auto* ip = rte_pktmbuf_mtod_offset(p.m, net::ipv4_hdr*, sizeof(net::eth_hdr));
        const bool expired = ctx.now_tsc - p.tsc >= hz;
        mac_addr mac;
        if (p.to_pod) {
            const uint32_t pod = ctx.pods->lookup(ip->dst_addr());
            if (pod == no_index) {
                ctx.drop_packet(p.m, drop::no_local_pod);
            } else if (ctx.learned->pod_macs[ctx.pods->pod(pod).state].get(mac)) {
                send_to_pod(ctx, p.m, pod);
            } else if (expired) {
                ctx.drop_packet(p.m, drop::pod_unknown_mac);
            } else {
                ctx.parked[kept++] = p;
            }
            continue;
        }
        const remote_node_entry* node = ctx.slices->lookup(ip->dst_addr());
        if (node == nullptr) {
            ctx.drop_packet(p.m, drop::no_remote_node);
        } else if (ctx.learned->neighbours[node->neighbour].mac.get(mac)) {
            vxlan_encap(ctx, p.m, ip, ip->header_length(), ip->total_length.get(), *node);
        } else if (expired) {
            ctx.drop_packet(p.m, drop::neighbour_unresolved);
        } else {
            ctx.parked[kept++] = p;
        }
    }
    ctx.nparked = kept;
}

bool neighbour_maintenance(pipeline_ctx& ctx) {
    const uint16_t underlay = ctx.params->underlay_port;
    const slice_table& slices = *ctx.slices;
    for (uint32_t slot = 0, end = slices.slot_end(); slot < end; ++slot) {
        const remote_node_entry* node = slices.node(slot);
        if (node == nullptr) {
            continue;
        }
        if (!ctx.tx_room(underlay)) {
            return true;
        }
        const neighbour_slot& n = ctx.learned->neighbours[node->neighbour];
        mac_addr unused;
        if (!n.mac.get(unused) ||
            ctx.now_tsc - n.confirmed_tsc.load(std::memory_order_relaxed) >=
                neighbour_reachable_seconds * ctx.params->tsc_hz) {
            neighbour_solicit(ctx, *node);
        }
    }
    for (const local_pod_entry& pod : ctx.pods->pods()) {
        mac_addr unused;
        if (!ctx.learned->pod_macs[pod.state].get(unused)) {
            pod_solicit(ctx, pod);
        }
    }
    return false;
}

}  // namespace twill
