#include "dataplane/icmp/icmp.h"

#include <algorithm>
#include <cstring>

#include "dataplane/forward.h"
#include "dataplane/net/checksum.h"
#include "dataplane/vxlan/vxlan.h"

namespace twill {
namespace {

using net::icmp_hdr;

constexpr uint32_t max_error_len = 576;  // RFC 1812 4.3.2.3

bool informational(uint8_t type) {
    return type == 0 || type == 8 || type == 13 || type == 14 || type == 17 || type == 18;
}

bool may_answer(pipeline_ctx& ctx, const net::ipv4_hdr* ip) {
    const node_params& p = *ctx.params;
    const ip4_addr src = ip->src_addr();
    if (ip->is_later_fragment() || !p.cluster_cidr.contains(src) || src == p.pod_cidr.addr ||
        src.value >= 0xe0000000) {
        return false;
    }
    if (ip->proto == net::ip_proto_icmp && ip->total_length.get() > ip->header_length()) {
        const uint8_t type = reinterpret_cast<const uint8_t*>(ip)[ip->header_length()];
        if (!informational(type)) {
            return false;  // never an error about an error
        }
    }
    // Token bucket: `burst` at once, `per_second` sustained.
    const uint64_t refill = (ctx.now_tsc - ctx.icmp_refill_tsc) * icmp::per_second / p.tsc_hz;
    if (refill > 0) {
        ctx.icmp_tokens = uint32_t(std::min<uint64_t>(icmp::burst, ctx.icmp_tokens + refill));
        ctx.icmp_refill_tsc = ctx.now_tsc;
    }
    if (ctx.icmp_tokens == 0) {
        ctx.counters->icmp_errors_rate_limited.add();
        return false;
    }
    --ctx.icmp_tokens;
    return true;
}

// A packet the node originates: to a local pod directly, to a remote one through VXLAN.
void send_from_node(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip) {
    const node_params& p = *ctx.params;
    const ip4_addr dst = ip->dst_addr();
    const uint32_t len = ip->total_length.get();
    if (p.pod_cidr.contains(dst)) {
        uint32_t pod = ctx.pods->lookup(dst);
        if (pod == no_index) {
            ctx.drop_packet(m, drop::no_local_pod);
            return;
        }
        send_to_pod(ctx, m, pod);
        return;
    }
    const remote_node_entry* node = ctx.slices->lookup(dst);
    if (node == nullptr) {
        ctx.drop_packet(m, drop::no_remote_node);
        return;
    }
    vxlan_encap(ctx, m, ip, sizeof(net::ipv4_hdr), len, *node);
}

}  // namespace

void icmp_error(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* ip, uint8_t type,
                uint8_t code, uint16_t mtu, drop reason) {
    rte_mbuf* out = nullptr;
    if (may_answer(ctx, ip)) {
        out = rte_pktmbuf_alloc(ctx.pool);
    }
    net::ipv4_hdr* oip = nullptr;
    if (out != nullptr) {
        const uint32_t quote = std::min<uint32_t>(
            ip->total_length.get(), max_error_len - sizeof(net::ipv4_hdr) - sizeof(icmp_hdr));
        const uint32_t ip_len = sizeof(net::ipv4_hdr) + sizeof(icmp_hdr) + quote;
        auto* frame = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(out, uint16_t(sizeof(net::eth_hdr) + ip_len)));
        auto* eth = reinterpret_cast<net::eth_hdr*>(frame);
        eth->type.set(net::ether_type_ipv4);
        oip = reinterpret_cast<net::ipv4_hdr*>(frame + sizeof(net::eth_hdr));
        oip->version_ihl = 0x45;
        oip->tos = 0xc0;  // internetwork control, as Linux sends its ICMP errors
        oip->total_length.set(uint16_t(ip_len));
        oip->id.set(ctx.ip_id++);
        oip->frag.set(0);
        oip->ttl = 64;
        oip->proto = net::ip_proto_icmp;
        oip->checksum = 0;
        oip->src.set(ctx.params->pod_cidr.addr.value);
        oip->dst.set(ip->src.get());
        oip->checksum = uint16_t(~net::raw_checksum(oip, sizeof(net::ipv4_hdr)));
        auto* h = reinterpret_cast<icmp_hdr*>(oip + 1);
        h->type = type;
        h->code = code;
        h->checksum = 0;
        h->unused.set(0);
        h->mtu.set(type == icmp::dest_unreachable && code == icmp::code_frag_needed ? mtu : 0);
        // The quote may run past the first segment of a multi-segment packet.
        const auto off = uint32_t(reinterpret_cast<const uint8_t*>(ip) - rte_pktmbuf_mtod(m, const uint8_t*));
        const void* from = rte_pktmbuf_read(m, off, quote, h + 1);
        if (from != h + 1) {
            std::memcpy(h + 1, from, quote);
        }
        h->checksum = uint16_t(~net::raw_checksum(h, sizeof(icmp_hdr) + quote));
    }
    ctx.drop_packet(m, reason);  // `ip` points into `m`: nothing reads it from here on
    if (oip != nullptr) {
        ctx.counters->icmp_errors_sent.add();
        send_from_node(ctx, out, oip);
    }
}

}  // namespace twill
