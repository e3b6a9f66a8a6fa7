#include "dataplane/service/service.h"

#include <cstring>

#include <rte_hash_crc.h>

#include "dataplane/icmp/icmp.h"
#include "dataplane/ipv4/ipv4.h"
#include "dataplane/net/checksum.h"
#include "dataplane/net/crc32c.h"

namespace twill {
namespace {

using net::tcp_ack;
using net::tcp_fin;
using net::tcp_rst;
using net::tcp_syn;
constexpr uint8_t proto_sctp = net::ip_proto_sctp;
// IPVS's CLOSE and SYN_RECV timeouts.
constexpr uint32_t closed_timeout = 10;
constexpr uint32_t syn_timeout = 60;
// Masquerade source ports, picked by a hash of the flow (a few tries on a collision),
// below Linux's ephemeral range (32768-60999): the node's kernel uses the same overlay
// address for its own connections into the cluster, and a reply to one of those must
// never match a masqueraded connection.
constexpr uint16_t snat_port_first = 1024;
constexpr uint16_t snat_port_last = 32767;
constexpr uint32_t snat_tries = 64;

struct l4_ref {
    uint8_t* p;
    uint32_t len;
    uint8_t proto;
    const rte_mbuf* m;  // the packet, for what runs past its first segment
};

uint32_t min_l4_len(uint8_t proto) {
    return proto == net::ip_proto_tcp ? 20 : proto == net::ip_proto_udp ? 8 : 12;
}

uint16_t update32(uint16_t check, uint32_t old_v, uint32_t new_v) {
    check = net::checksum_update16(check, uint16_t(old_v), uint16_t(new_v));
    return net::checksum_update16(check, uint16_t(old_v >> 16), uint16_t(new_v >> 16));
}

// Rewrites the destination (or source) address and port, patching the IPv4 and TCP/UDP
// checksums incrementally (RFC 1624); an SCTP packet's CRC is redone by the caller.
void rewrite(net::ipv4_hdr* ip, const l4_ref& l4, bool dst, uint32_t new_ip, uint16_t new_port) {
    const uint32_t old_ip = dst ? ip->dst.raw : ip->src.raw;
    uint8_t* port_at = l4.p + (dst ? 2 : 0);
    uint16_t old_port;
    std::memcpy(&old_port, port_at, 2);
    if (dst) {
        ip->dst.raw = new_ip;
    } else {
        ip->src.raw = new_ip;
    }
    ip->checksum = update32(ip->checksum, old_ip, new_ip);
    std::memcpy(port_at, &new_port, 2);
    if (l4.proto == proto_sctp) {
        return;
    }
    uint8_t* check_at = l4.p + (l4.proto == net::ip_proto_tcp ? 16 : 6);
    uint16_t check;
    std::memcpy(&check, check_at, 2);
    if (l4.proto == net::ip_proto_udp && check == 0) {
        return;  // sent without a checksum (RFC 768): stays without
    }
    check = net::checksum_update16(update32(check, old_ip, new_ip), old_port, new_port);
    if (l4.proto == net::ip_proto_udp && check == 0) {
        check = 0xffff;
    }
    std::memcpy(check_at, &check, 2);
}

// RFC 4960 appendix B: CRC32c over the packet with the checksum field zero.
void sctp_checksum(const l4_ref& l4) {
    std::memset(l4.p + 8, 0, 4);
    uint32_t crc;
    if (l4.m == nullptr || l4.m->nb_segs == 1) [[likely]] {
        crc = ~net::crc32c(l4.p, l4.len, 0xffffffff);
    } else {
        // Over every segment of a multi-segment packet, from the header on.
        const rte_mbuf* seg = l4.m;
        auto off = uint32_t(l4.p - rte_pktmbuf_mtod(seg, const uint8_t*));
        uint32_t left = l4.len;
        crc = 0xffffffff;
        while (left != 0 && seg != nullptr) {
            const uint32_t n = std::min<uint32_t>(left, seg->data_len - off);
            crc = net::crc32c(rte_pktmbuf_mtod_offset(seg, const uint8_t*, off), n, crc);
            left -= n;
            off = 0;
            seg = seg->next;
        }
        crc = ~crc;
    }
    std::memcpy(l4.p + 8, &crc, 4);
}

}  // namespace

uint32_t conntrack_timeout(const node_params& p, ct_state s) {
    switch (s) {
        case ct_state::syn:
            return syn_timeout;
        case ct_state::established:
            return p.ct_tcp_timeout;
        case ct_state::fin:
            return p.ct_tcp_fin_timeout;
        case ct_state::closed:
            return closed_timeout;
        default:
            return p.ct_udp_timeout;
    }
}

// A connection counts as active once established, as IPVS counts it; affinity records
// are not connections.
namespace {

// With several workers, the two directions of a connection may come in on different ones.
void count_other_worker(pipeline_ctx& ctx, uint32_t entry) {
    if (!ctx.ct->owns(ctx.worker, entry)) {
        ctx.counters->ct_other_worker.add();
    }
}

uint32_t timeout_of(const node_params& p, ct_state s) {
    return conntrack_timeout(p, s);
}

// `e` counted in (+1) or out (-1) of its backend's connections as in state `s`.
void account(const pipeline_ctx& ctx, const ct_entry& e, ct_state s, int32_t delta) {
    if (s == ct_state::affinity || (e.flags & ct_entry::policy_only)) {
        return;
    }
    const backend_state& b = ctx.services->backend(e.backend);
    if (uint16_t(b.gen.load(std::memory_order_relaxed)) != e.backend_gen) {
        return;  // the slot went to another backend
    }
    // This worker's own count: no other writes it.
    conn_counts& c = ctx.services->counts(ctx.worker, e.backend);
    std::atomic<int32_t>& n = s == ct_state::established ? c.active : c.inactive;
    n.store(n.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

// Ends a connection (unless another worker just did).
void forget(pipeline_ctx& ctx, uint32_t e) {
    ctx.ct->erase(e, ctx.worker, [&](const ct_entry& ent, ct_state s) {
        account(ctx, ent, s, -1);
        ctx.counters->ct_expired.add();
    });
}

// Moves `e` to next(its state), by compare-and-swap: the other direction's worker may be
// moving it too, and each move is judged on the state it replaces.
template <typename Next>
void transition(pipeline_ctx& ctx, ct_entry& e, Next&& next) {
    ct_state s = e.state;
    for (;;) {
        if (!ct_live(s)) {
            return;  // being ended
        }
        const ct_state to = next(s);
        if (to == s) {
            return;
        }
        if (e.state.replace(s, to)) {
            account(ctx, e, s, -1);
            account(ctx, e, to, +1);
            return;
        }
    }
}

void refresh(const pipeline_ctx& ctx, ct_entry& e, uint32_t timeout) {
    const uint32_t expires = ctx.now_s + timeout;
    if (e.expires.load(std::memory_order_relaxed) != expires) {
        e.expires.store(expires, std::memory_order_relaxed);
    }
}

// A reply to a client on the underlay goes back to the MAC its packets came from.
void send_to_peer(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, const uint8_t* peer_mac) {
    if (ip->ttl <= 1) [[unlikely]] {
        ctx.drop_packet(m, drop::ttl_expired);
        return;
    }
    net::decrement_ttl(*ip);
    auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
    std::memcpy(eth->dst.bytes.data(), peer_mac, 6);
    eth->src = ctx.params->underlay_mac;
    ctx.send(ctx.params->underlay_port, m);
}

// Turns a TCP segment into the reset a closed port answers with (RFC 9293 3.10.7.1),
// from the frontend to the sender.
svc_verdict reset(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, const l4_ref& l4, origin from) {
    const uint8_t flags = l4.p[13];
    if (flags & tcp_rst) {
        ctx.drop_packet(m, drop::service_no_endpoint);
        return svc_verdict::consumed;
    }
    uint32_t seq, ack;
    std::memcpy(&seq, l4.p + 4, 4);
    std::memcpy(&ack, l4.p + 8, 4);
    const uint32_t tcp_header_len = uint32_t(l4.p[12] >> 4) * 4;
    const uint32_t data_len = l4.len > tcp_header_len ? l4.len - tcp_header_len : 0;
    auto* tcp = reinterpret_cast<uint8_t*>(ip) + sizeof(net::ipv4_hdr);
    uint16_t sport, dport;
    std::memcpy(&sport, l4.p, 2);
    std::memcpy(&dport, l4.p + 2, 2);
    const uint32_t src = ip->src.raw, dst = ip->dst.raw;
    // The new segment: 20 bytes behind a 20-byte IPv4 header, options dropped.
    std::memmove(tcp, l4.p, 20);
    std::memcpy(tcp, &dport, 2);
    std::memcpy(tcp + 2, &sport, 2);
    uint32_t new_seq = 0, new_ack = 0;
    if (flags & tcp_ack) {
        new_seq = ack;
        tcp[13] = tcp_rst;
    } else {
        new_ack = __builtin_bswap32(__builtin_bswap32(seq) + data_len + ((flags & tcp_syn) ? 1 : 0) +
                                    ((flags & tcp_fin) ? 1 : 0));
        tcp[13] = tcp_rst | tcp_ack;
    }
    std::memcpy(tcp + 4, &new_seq, 4);
    std::memcpy(tcp + 8, &new_ack, 4);
    tcp[12] = 5 << 4;
    std::memset(tcp + 14, 0, 6);  // window, checksum, urgent pointer
    ip->version_ihl = 0x45;
    ip->tos = 0;
    ip->total_length.set(40);
    ip->id.set(ctx.ip_id++);
    ip->frag.set(net::ipv4_hdr::flag_df);
    ip->ttl = 64;
    ip->src.raw = dst;
    ip->dst.raw = src;
    ip->checksum = 0;
    ip->checksum = uint16_t(~net::raw_checksum(ip, sizeof(net::ipv4_hdr)));
    const uint16_t check = uint16_t(~net::checksum_fold(
        net::checksum_add(net::pseudo_header_sum(ip->src.raw, ip->dst.raw, net::ip_proto_tcp, 20), tcp, 20)));
    std::memcpy(tcp + 16, &check, 2);
    trim_to(m, sizeof(net::eth_hdr) + 40);
    ctx.counters->service_resets.add();
    ctx.counters->drop(drop::service_no_endpoint);
    if (from == origin::underlay) {
        auto* eth = rte_pktmbuf_mtod(m, net::eth_hdr*);
        const mac_addr peer = eth->src;
        eth->src = ctx.params->underlay_mac;
        eth->dst = peer;
        ctx.send(ctx.params->underlay_port, m);
        return svc_verdict::consumed;
    }
    return svc_verdict::rewritten;
}

svc_verdict no_backend(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, const l4_ref& l4,
                       const service_entry& svc, origin from) {
    if (!svc.reject_when_empty) {
        ctx.drop_packet(m, drop::service_no_local_endpoint);
        return svc_verdict::consumed;
    }
    if (l4.proto == net::ip_proto_tcp) {
        return reset(ctx, m, ip, l4, from);
    }
    if (l4.proto == net::ip_proto_udp) {
        icmp_error(ctx, m, ip, icmp::dest_unreachable, icmp::code_port_unreachable, 0,
                   drop::service_no_endpoint);
        return svc_verdict::consumed;
    }
    ctx.drop_packet(m, drop::service_no_endpoint);
    return svc_verdict::consumed;
}

uint32_t source_hash(const flow_key& k, bool with_port) {
    return rte_hash_crc_4byte(k.src, with_port ? rte_hash_crc_2byte(k.sport, 0x5bd1e995) : 0x5bd1e995);
}

// The backend (index into svc.backends) a new flow gets, or -1 when none may take it.
// `stateless`: the flow will not be tracked, so every packet of it must get the same
// answer: a hash of the flow stands in for round-robin and least-connection.
int pick(const pipeline_ctx& ctx, const service_entry& svc, const flow_key& k, bool stateless) {
    const size_t n = svc.schedule.size();
    if (n == 0) {
        return -1;
    }
    uint32_t i;
    switch (svc.sched) {
        case sched_kind::sh:
            i = source_hash(k, false) % n;
            break;
        case sched_kind::mh:
            i = source_hash(k, true) % n;
            break;
        case sched_kind::lc: {
            if (stateless) {
                i = source_hash(k, true) % n;
                break;
            }
            // IPVS's overhead: active connections weigh 256 inactive ones.
            int64_t best = INT64_MAX;
            i = 0;
            for (size_t j = 0; j < n; ++j) {
                const uint32_t slot = svc.backends[svc.schedule[j]].state;
                const int64_t cost = int64_t(ctx.services->active(slot)) * 256 +
                                     ctx.services->inactive(slot);
                if (cost < best) {
                    best = cost;
                    i = uint32_t(j);
                }
            }
            break;
        }
        default:
            if (stateless) {
                i = source_hash(k, true) % n;
                break;
            }
            std::atomic<uint32_t>& next = ctx.services->rr_next(ctx.worker, svc.slot);
            i = next.load(std::memory_order_relaxed);
            if (i >= n) {
                i = 0;
            }
            next.store(i + 1 == n ? 0 : i + 1, std::memory_order_relaxed);
            break;
    }
    const uint16_t b = svc.schedule[i];
    return b == 0xffff ? -1 : int(b);
}

// The backend of the client's affinity record, if it still takes new connections.
int affine_backend(pipeline_ctx& ctx, const service_entry& svc, const flow_key& k) {
    const flow_key ak{k.src, k.dst, 0, k.dport, k.proto, flow_key::affinity, 0};
    const conntrack::hit h = ctx.ct->find(ak);
    if (h.entry == conntrack::no_entry) {
        return -1;
    }
    ct_entry& a = ctx.ct->entry(h.entry);
    const backend_state& b = ctx.services->backend(a.backend);
    if (conntrack_expired(ctx, a) || uint16_t(b.gen.load(std::memory_order_relaxed)) != a.backend_gen ||
        b.weight.load(std::memory_order_relaxed) == 0) {
        forget(ctx, h.entry);
        return -1;
    }
    for (size_t i = 0; i < svc.backends.size(); ++i) {
        if (svc.backends[i].state == a.backend) {
            refresh(ctx, a, svc.affinity_timeout);
            return int(i);
        }
    }
    forget(ctx, h.entry);
    return -1;
}

void remember_affinity(pipeline_ctx& ctx, const service_entry& svc, const flow_key& k,
                       const service_backend& b) {
    const flow_key ak{k.src, k.dst, 0, k.dport, k.proto, flow_key::affinity, 0};
    if (ctx.ct->find(ak).entry != conntrack::no_entry) {
        return;  // refreshed by affine_backend
    }
    const uint32_t e = ctx.ct->allocate(ctx.worker);
    if (e == conntrack::no_entry) {
        return;
    }
    ct_entry& a = ctx.ct->entry(e);
    ctx.ct->write_begin(a);
    a.orig = ak;
    a.reply = flow_key{b.ip, 0, b.port, 0, k.proto, flow_key::affinity, 0};
    a.backend = b.state;
    a.backend_gen = uint16_t(ctx.services->backend(b.state).gen.load(std::memory_order_relaxed));
    a.frontend = svc.slot;
    a.state = ct_state::affinity;
    a.flags = 0;
    a.expires.store(ctx.now_s + svc.affinity_timeout, std::memory_order_relaxed);
    ctx.ct->write_end(a);
    if (!ctx.ct->insert(e)) {
        ctx.ct->write_begin(a);
        a.state = ct_state::free;
        ctx.ct->write_end(a);
        ctx.ct->release(e);
    }
}

// The original direction of a connection: to the backend, from the masquerade address.
void translate_orig(net::ipv4_hdr* ip, const l4_ref& l4, const ct_entry& e) {
    rewrite(ip, l4, true, e.reply.src, e.reply.sport);
    if (e.flags & ct_entry::snat) {
        rewrite(ip, l4, false, e.reply.dst, e.reply.dport);
    }
    if (l4.proto == proto_sctp) {
        sctp_checksum(l4);
    }
}

// The reply direction: from the frontend, to the client.
void translate_reply(net::ipv4_hdr* ip, const l4_ref& l4, const ct_entry& e) {
    rewrite(ip, l4, false, e.orig.dst, e.orig.dport);
    if (e.flags & ct_entry::snat) {
        rewrite(ip, l4, true, e.orig.src, e.orig.sport);
    }
    if (l4.proto == proto_sctp) {
        sctp_checksum(l4);
    }
}

svc_verdict new_flow(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, const l4_ref& l4,
                     const flow_key& k, const service_entry& svc, origin from) {
    const node_params& p = *ctx.params;
    const uint8_t flags = l4.proto == net::ip_proto_tcp ? l4.p[13] : 0;
    const bool opens = l4.proto != net::ip_proto_tcp || net::tcp_opens(flags);
    conntrack& ct = *ctx.ct;
    const bool full = ct.full(ctx.worker);
    if (!opens && !full) {
        ctx.drop_packet(m, drop::service_no_connection);
        return svc_verdict::consumed;
    }
    int b = svc.affinity && !full ? affine_backend(ctx, svc, k) : -1;
    if (b < 0) {
        b = pick(ctx, svc, k, full);
    }
    if (b < 0) {
        return no_backend(ctx, m, ip, l4, svc, from);
    }
    const service_backend& be = svc.backends[size_t(b)];
    const ip4_addr src{net::bswap(k.src)};
    // The node itself as the endpoint (a hostNetwork pod) takes the packet as the kernel
    // takes a local DNAT: the client's address stays, and the kernel's reply comes back
    // through the host port.
    const bool to_node = be.ip == net::bswap(p.node_ip.value);
    const bool snat = (svc.snat_outside && !to_node && !p.cluster_cidr.contains(src)) || k.src == be.ip;

    uint32_t e = ct.allocate(ctx.worker);
    if (e == conntrack::no_entry) {
        // Full: the flow still gets its backend, without a record, as long as nothing
        // needs one to translate its replies back.
        ctx.counters->ct_full.add();
        // Replies find their service again only through the cluster IP that alone owns
        // the backend (service_table::reverse); anything else needs its record.
        if (snat || !svc.cluster_ip) {
            ctx.drop_packet(m, drop::service_full_masquerade);
            return svc_verdict::consumed;
        }
        ct_entry tmp;
        tmp.reply.src = be.ip;
        tmp.reply.sport = be.port;
        translate_orig(ip, l4, tmp);
        return svc_verdict::rewritten;
    }
    ct_entry& ent = ct.entry(e);
    ct.write_begin(ent);
    ent.orig = k;
    ent.reply = flow_key{be.ip, k.src, be.port, k.sport, k.proto, flow_key::connection, 0};
    if (snat) {
        ent.reply.dst = net::bswap(p.pod_cidr.addr.value);
    }
    bool free_tuple = false;
    constexpr uint32_t snat_range = snat_port_last + 1 - snat_port_first;
    const uint32_t start = rte_hash_crc_4byte(0, hash_flow(k)) % snat_range;
    for (uint32_t t = 0; t < (snat ? snat_tries : 1); ++t) {
        if (snat) {
            // Hashed tries first, then the ports after the first one in turn.
            uint32_t off = t < snat_tries / 2 ? rte_hash_crc_4byte(t, hash_flow(k)) % snat_range
                                             : (start + t * 61) % snat_range;
            // Each worker masquerades with its own ports (those equal to its number modulo
            // the workers), so two workers never pick one reply tuple at once.
            if (const uint32_t n = ct.workers(); n > 1) {
                off = off - off % n + ctx.worker;
                off = off < snat_range ? off : off - n;
            }
            ent.reply.dport = net::bswap(uint16_t(snat_port_first + off));
        }
        const uint32_t other = ct.find(ent.reply).entry;
        if (other != conntrack::no_entry) {
            const ct_entry& o = ct.entry(other);
            // The same reply tuple as a connection that is closing or over (the client
            // reused its port towards another frontend, or directly): that one gives
            // way, as does a NetworkPolicy record of the same flow.
            const bool done = o.state == ct_state::fin || o.state == ct_state::closed || conntrack_expired(ctx, o);
            if (done || (!snat && (o.flags & ct_entry::policy_only))) {
                forget(ctx, other);
            } else {
                continue;
            }
        }
        free_tuple = true;
        break;
    }
    ent.backend = be.state;
    // The epoch first: a backend ended after it is seen by the generation, or checked
    // again at the next epoch.
    ent.checked = uint16_t(ctx.services->epoch());
    ent.backend_gen = uint16_t(ctx.services->backend(be.state).gen.load(std::memory_order_relaxed));
    ent.frontend = svc.slot;
    ent.policy_gen = 0;  // not judged by NetworkPolicy yet (the entry may be reused)
    ent.state = l4.proto == net::ip_proto_tcp ? ct_state::syn : ct_state::datagram;
    ent.flags = uint8_t((snat ? ct_entry::snat : 0) | (from == origin::underlay ? ct_entry::from_underlay : 0));
    if (from == origin::underlay) {
        std::memcpy(ent.peer_mac, rte_pktmbuf_mtod(m, const net::eth_hdr*)->src.bytes.data(), 6);
    }
    ent.expires.store(ctx.now_s + timeout_of(p, ent.state), std::memory_order_relaxed);
    if (!free_tuple || !ct.insert(e)) {
        ent.state = ct_state::free;
        ct.write_end(ent);
        ct.release(e);
        ctx.drop_packet(m, drop::service_tuple_in_use);
        return svc_verdict::consumed;
    }
    ct.write_end(ent);
    account(ctx, ent, ent.state, +1);
    ctx.counters->ct_created.add();
    ctx.svc_entry = e;
    ctx.svc_new = true;
    if (svc.affinity) {
        remember_affinity(ctx, svc, k, be);
    }
    translate_orig(ip, l4, ent);
    return svc_verdict::rewritten;
}

// A first fragment of a service packet: its ports kept for the later fragments (false,
// and `m` dropped, when the datagram cannot be translated fragment by fragment).
bool track_first_fragment(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* ip, const flow_key& k) {
    if (k.proto == proto_sctp) {
        // SCTP's CRC32c covers the whole datagram: a fragment's cannot be redone.
        ctx.drop_packet(m, drop::service_fragment);
        return false;
    }
    if (!ctx.frags.remember(k.src, k.dst, k.proto, ip->id.raw, {k.sport, k.dport}, ctx.now_s)) {
        ctx.drop_packet(m, drop::fragment_attack);  // the same datagram's header, other ports
        return false;
    }
    return true;
}

// A later fragment: translated as its datagram's connection says, addresses only (its
// first fragment carried the ports and the transport checksum).
svc_verdict later_fragment(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip) {
    frag_ports::ports fp;
    if (!ctx.frags.find(ip->src.raw, ip->dst.raw, ip->proto, ip->id.raw, ctx.now_s, fp)) {
        return svc_verdict::pass;  // its datagram was not seen: untranslated, as it came
    }
    const flow_key k{ip->src.raw, ip->dst.raw, fp.sport, fp.dport, ip->proto, flow_key::connection, 0};
    const conntrack::hit h = !ctx.ct->empty() ? ctx.ct->find(k) : conntrack::hit{};
    if (h.entry == conntrack::no_entry) {
        // The first fragment went to a frontend but was not tracked (dropped, or let
        // through untracked by a full table): the rest cannot follow it.
        if (ctx.services->lookup(k.dst, k.proto, k.dport) != nullptr) {
            ctx.drop_packet(m, drop::service_fragment);
            return svc_verdict::consumed;
        }
        return svc_verdict::pass;
    }
    const ct_entry& e = ctx.ct->entry(h.entry);
    if (e.flags & ct_entry::policy_only) {
        return svc_verdict::pass;
    }
    ctx.svc_entry = h.entry;
    ctx.svc_new = false;
    if (conntrack_expired(ctx, e) ||
        uint16_t(ctx.services->backend(e.backend).gen.load(std::memory_order_relaxed)) != e.backend_gen) {
        ctx.drop_packet(m, drop::service_backend_gone);
        return svc_verdict::consumed;
    }
    const bool snat = e.flags & ct_entry::snat;
    auto set_addr = [&](bool dst, uint32_t v) {
        const uint32_t old_v = dst ? ip->dst.raw : ip->src.raw;
        (dst ? ip->dst.raw : ip->src.raw) = v;
        ip->checksum = update32(ip->checksum, old_v, v);
    };
    ctx.counters->ct_hits.add();
    count_other_worker(ctx, h.entry);
    if (!h.reply) {
        set_addr(true, e.reply.src);
        if (snat) {
            set_addr(false, e.reply.dst);
        }
        return svc_verdict::rewritten;
    }
    set_addr(false, e.orig.dst);
    if (snat) {
        set_addr(true, e.orig.src);
    }
    if (e.flags & ct_entry::from_underlay) {
        send_to_peer(ctx, m, ip, e.peer_mac);
        return svc_verdict::consumed;
    }
    return svc_verdict::rewritten;
}

}  // namespace

svc_verdict service_input(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                          uint32_t total_len, origin from) {
    ctx.svc_entry = conntrack::no_entry;
    const uint8_t proto = ip->proto;
    if (!net::has_ports(proto)) {
        return svc_verdict::pass;
    }
    auto* l4p = reinterpret_cast<uint8_t*>(ip) + header_len;
    if (ip->is_later_fragment()) [[unlikely]] {
        return later_fragment(ctx, m, ip);
    }
    if (total_len < header_len + min_l4_len(proto)) [[unlikely]] {
        // A datagram this short has no room for what a service rewrites; a first fragment
        // this short (RFC 1858 lets TCP's through from 16 bytes) could hide it.
        if (ip->is_fragment() && total_len >= header_len + 4) {
            uint16_t dport;
            std::memcpy(&dport, l4p + 2, 2);
            if (ctx.services->lookup(ip->dst.raw, proto, dport) != nullptr || !ctx.ct->empty()) {
                ctx.drop_packet(m, drop::service_fragment);
                return svc_verdict::consumed;
            }
        }
        return svc_verdict::pass;
    }
    const l4_ref l4{l4p, total_len - header_len, proto, m};
    flow_key k;
    k.src = ip->src.raw;
    k.dst = ip->dst.raw;
    std::memcpy(&k.sport, l4p, 2);
    std::memcpy(&k.dport, l4p + 2, 2);
    k.proto = proto;

    if (ip->is_fragment() &&
        ctx.frags.conflicts(k.src, k.dst, proto, ip->id.raw, {k.sport, k.dport}, ctx.now_s)) [[unlikely]] {
        ctx.drop_packet(m, drop::fragment_attack);  // a service datagram's header, other ports
        return svc_verdict::consumed;
    }
    // Only a frontend, a backend or the masquerade address can be in a connection.
    if (!ctx.services->may_match(k.src, k.dst, proto, k.sport, k.dport) &&
        k.dst != net::bswap(ctx.params->pod_cidr.addr.value)) {
        return svc_verdict::pass;
    }
    conntrack& ct = *ctx.ct;
    if (!ct.empty()) {
        conntrack::hit h = ct.find(k, hash_flow(k));
        if (h.entry != conntrack::no_entry && (ct.entry(h.entry).flags & ct_entry::policy_only)) {
            // NetworkPolicy's, not translated; unless its destination has become a
            // frontend since, which then takes the flow.
            if (h.reply || ctx.services->lookup(k.dst, proto, k.dport) == nullptr) {
                return svc_verdict::pass;
            }
            forget(ctx, h.entry);
            h = {};
        }
        if (h.entry != conntrack::no_entry) {
            if (ip->is_fragment() && !track_first_fragment(ctx, m, ip, k)) [[unlikely]] {
                return svc_verdict::consumed;
            }
            ct_entry& e = ct.entry(h.entry);
            const uint8_t flags = proto == net::ip_proto_tcp ? l4p[13] : 0;
            const bool opens = net::tcp_opens(flags);
            // The backend's slot is read only when a backend has ended since this
            // connection last looked.
            bool gone = false;
            if (const uint16_t epoch = uint16_t(ctx.services->epoch()); e.checked != epoch) [[unlikely]] {
                gone = uint16_t(ctx.services->backend(e.backend).gen.load(std::memory_order_relaxed)) !=
                       e.backend_gen;
                if (!gone) {
                    e.checked = epoch;
                }
            }
            if (conntrack_expired(ctx, e) || gone ||
                (opens && !h.reply && (e.state == ct_state::fin || e.state == ct_state::closed))) {
                forget(ctx, h.entry);
                // A removed endpoint's connections end (IPVS's expire_nodest_conn); a new
                // SYN or datagram is scheduled anew, like a SYN reusing a closed tuple. A
                // reply to a connection that timed out has nothing to be translated by.
                if (gone && (h.reply || (proto == net::ip_proto_tcp && !opens))) {
                    ctx.drop_packet(m, drop::service_backend_gone);
                    return svc_verdict::consumed;
                }
                if (h.reply) {
                    ctx.drop_packet(m, drop::service_no_connection);
                    return svc_verdict::consumed;
                }
            } else {
                conntrack_seen(ctx, h.entry, e, h.reply, proto, flags);
                ctx.counters->ct_hits.add();
                ctx.svc_entry = h.entry;
                ctx.svc_new = false;
                if (!h.reply) {
                    translate_orig(ip, l4, e);
                    return svc_verdict::rewritten;
                }
                translate_reply(ip, l4, e);
                if (e.flags & ct_entry::from_underlay) {
                    send_to_peer(ctx, m, ip, e.peer_mac);
                    return svc_verdict::consumed;
                }
                return svc_verdict::rewritten;
            }
        }
    }
    if (ct.any_full()) [[unlikely]] {
        // A reply of a flow that got its backend untracked: from the service it belongs to.
        // While the table is full this also takes a backend's replies to direct
        // connections to its service port.
        const uint32_t slot = ctx.services->reverse(k.src, proto, k.sport);
        if (const service_entry* e = slot == frontend_map::not_found ? nullptr : ctx.services->entry(slot)) {
            rewrite(ip, l4, false, e->vip, e->port);
            if (proto == proto_sctp) {
                sctp_checksum(l4);
            }
            return svc_verdict::rewritten;
        }
    }
    const service_entry* svc = ctx.services->lookup(k.dst, proto, k.dport);
    if (svc == nullptr) {
        return svc_verdict::pass;
    }
    if (ip->is_fragment() && !track_first_fragment(ctx, m, ip, k)) [[unlikely]] {
        return svc_verdict::consumed;
    }
    return new_flow(ctx, m, ip, l4, k, *svc, from);
}

void conntrack_seen(pipeline_ctx& ctx, uint32_t index, ct_entry& e, bool reply, uint8_t proto,
                    uint8_t tcp_flags) {
    count_other_worker(ctx, index);
    if (proto == net::ip_proto_tcp) {
        transition(ctx, e, [&](ct_state s) {
            if (tcp_flags & tcp_rst) {
                return ct_state::closed;
            }
            if (tcp_flags & tcp_fin) {
                return s == ct_state::closed ? s : ct_state::fin;
            }
            return s == ct_state::syn && reply && (tcp_flags & tcp_ack) ? ct_state::established : s;
        });
    }
    refresh(ctx, e, timeout_of(*ctx.params, e.state));
}

void conntrack_forget(pipeline_ctx& ctx, uint32_t e) {
    forget(ctx, e);
}

void conntrack_sweep(pipeline_ctx& ctx, uint32_t budget) {
    ctx.ct->sweep(ctx.worker, ctx.now_s, budget, [&](const ct_entry& e, ct_state s) {
        account(ctx, e, s, -1);
        ctx.counters->ct_expired.add();
    });
}

}  // namespace twill
