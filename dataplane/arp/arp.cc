#include "dataplane/arp/arp.h"

#include "dataplane/forward.h"
#include "dataplane/net/headers.h"

namespace twill {
namespace {

constexpr mac_addr broadcast_mac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
constexpr uint32_t arp_frame_len = sizeof(net::eth_hdr) + sizeof(net::arp_hdr);

net::arp_hdr* arp_header(rte_mbuf* m) {
    if (m->data_len < arp_frame_len) [[unlikely]] {
        return nullptr;
    }
    auto* arp = rte_pktmbuf_mtod_offset(m, net::arp_hdr*, sizeof(net::eth_hdr));
    return arp->is_ether_ipv4() ? arp : nullptr;
}

// Turns the request in `m` into the reply from (`mac`, the request's target) and sends it
// back out of `port`: no allocation, the request's buffer is reused.
void reply_in_place(pipeline_ctx& ctx, rte_mbuf* m, net::arp_hdr* arp, const mac_addr& mac,
                    uint16_t port) {
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    uint32_t target = arp->tpa.raw;
    eth->dst = arp->sha;
    eth->src = mac;
    arp->oper.set(net::arp_hdr::reply);
    arp->tha = arp->sha;
    arp->tpa.raw = arp->spa.raw;
    arp->sha = mac;
    arp->spa.raw = target;
    ctx.counters->arp_replies_sent.add();
    ctx.send(port, m);
}

}  // namespace

void arp_underlay_input(pipeline_ctx& ctx, rte_mbuf* m) {
    net::arp_hdr* arp = arp_header(m);
    if (arp == nullptr) [[unlikely]] {
        ctx.drop_packet(m, drop::arp_malformed);
        return;
    }
    // Learn the next hop's MAC from anything it says, request or reply.
    const remote_node_entry* node = ctx.slices->node_by_ip({arp->spa.get()});
    if (node != nullptr && !arp->sha.is_multicast() && !arp->sha.is_zero()) {
        neighbour_slot& n = ctx.learned->neighbours[node->neighbour];
        if (n.mac.set(arp->sha)) {
            ctx.counters->neighbours_learned.add();
            ctx.mac_learned();
        }
        n.confirmed_tsc.store(ctx.now_tsc, std::memory_order_relaxed);
    }
    const node_params& p = *ctx.params;
    uint16_t oper = arp->oper.get();
    if (oper == net::arp_hdr::request && arp->tpa.get() == p.node_ip.value) {
        reply_in_place(ctx, m, arp, p.underlay_mac, p.underlay_port);
        return;
    }
    // A reply to the node's address answers the kernel's question as much as ours.
    if (oper == net::arp_hdr::reply && arp->tpa.get() == p.node_ip.value && p.has_host()) {
        pass_to_host(ctx, m);
        return;
    }
    if (oper == net::arp_hdr::reply && node != nullptr) {
        rte_pktmbuf_free(m);  // consumed: it taught us the next hop
        return;
    }
    ctx.drop_packet(m, drop::arp_not_for_us);
}

bool arp_host_input(pipeline_ctx& ctx, rte_mbuf* m) {
    net::arp_hdr* arp = arp_header(m);
    const node_params& p = *ctx.params;
    if (arp == nullptr || arp->oper.get() != net::arp_hdr::request) {
        return false;
    }
    const ip4_addr target{arp->tpa.get()};
    // Pod addresses, local or remote, are behind the gateway, as behind flannel.1; the
    // node's own flannel address is the kernel's.
    if (!p.cluster_cidr.contains(target) || target == p.pod_cidr.addr) {
        return false;
    }
    reply_in_place(ctx, m, arp, p.gateway_mac, p.host_port);
    return true;
}

void arp_pod_input(pipeline_ctx& ctx, uint32_t pod, rte_mbuf* m) {
    net::arp_hdr* arp = arp_header(m);
    if (arp == nullptr) [[unlikely]] {
        ctx.drop_packet(m, drop::arp_malformed);
        return;
    }
    const local_pod_entry& entry = ctx.pods->pod(pod);
    uint32_t spa = arp->spa.get();
    // An ARP probe (sender 0.0.0.0) may come before the pod uses its address.
    if (spa != entry.ip.value && spa != 0) [[unlikely]] {
        ctx.drop_packet(m, drop::pod_spoofed_ip);
        return;
    }
    // A probe's sender MAC is checked like any other, but only learned from a pod that
    // already owns its address.
    if (!(spa == 0 && !entry.mac_fixed) && !pod_mac_ok(ctx, entry, arp->sha)) [[unlikely]] {
        ctx.drop_packet(m, drop::pod_spoofed_mac);
        return;
    }
    uint32_t tpa = arp->tpa.get();
    // Calico-style proxy ARP: every address but the pod's own is behind the gateway.
    // Not answering for its own address keeps duplicate address detection working.
    if (arp->oper.get() == net::arp_hdr::request && tpa != entry.ip.value) {
        reply_in_place(ctx, m, arp, ctx.params->gateway_mac, entry.port_id);
        return;
    }
    if (arp->oper.get() == net::arp_hdr::reply && spa == entry.ip.value) {
        rte_pktmbuf_free(m);  // the answer to our own request: MAC learned above
        return;
    }
    ctx.drop_packet(m, drop::arp_not_for_us);
}

void arp_send_request(pipeline_ctx& ctx, uint16_t port, const mac_addr& src_mac, ip4_addr src_ip,
                      ip4_addr target) {
    rte_mbuf* m = rte_pktmbuf_alloc(ctx.pool);
    if (m == nullptr) [[unlikely]] {
        ctx.counters->drop(drop::arp_alloc_failed);
        return;
    }
    auto* eth = reinterpret_cast<net::eth_hdr*>(rte_pktmbuf_append(m, arp_frame_len));
    eth->dst = broadcast_mac;
    eth->src = src_mac;
    eth->type.set(net::ether_type_arp);
    auto* arp = reinterpret_cast<net::arp_hdr*>(eth + 1);
    arp->htype.set(1);
    arp->ptype.set(net::ether_type_ipv4);
    arp->hlen = 6;
    arp->plen = 4;
    arp->oper.set(net::arp_hdr::request);
    arp->sha = src_mac;
    arp->spa.set(src_ip.value);
    arp->tha = mac_addr{};
    arp->tpa.set(target.value);
    ctx.counters->arp_requests_sent.add();
    ctx.send(port, m);
}

namespace {

// One request per `last` per second; the stamp is taken only when the request can go out.
bool may_ask(pipeline_ctx& ctx, std::atomic<uint64_t>& last, uint16_t port) {
    uint64_t prev = last.load(std::memory_order_relaxed);
    return ctx.now_tsc - prev >= ctx.params->tsc_hz && ctx.tx_room(port) &&
           last.compare_exchange_strong(prev, ctx.now_tsc, std::memory_order_relaxed);
}

}  // namespace

void neighbour_solicit(pipeline_ctx& ctx, const remote_node_entry& node) {
    const node_params& p = *ctx.params;
    if (may_ask(ctx, ctx.learned->neighbours[node.neighbour].last_request_tsc, p.underlay_port)) {
        arp_send_request(ctx, p.underlay_port, p.underlay_mac, p.node_ip, node.ip);
    }
}

void pod_solicit(pipeline_ctx& ctx, const local_pod_entry& pod) {
    if (may_ask(ctx, ctx.learned->pod_last_request[pod.state], pod.port_id)) {
        arp_send_request(ctx, pod.port_id, ctx.params->gateway_mac, pod_gateway_ip, pod.ip);
    }
}

}  // namespace twill
