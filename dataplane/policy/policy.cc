#include "dataplane/policy/policy.h"

#include <cstring>

namespace twill {
namespace {

using net::has_ports;
using net::tcp_rst;
using net::tcp_syn;

// One direction of a connection, statelessly: egress of `s` (if isolated) to `d`, and
// ingress of `d` (if isolated) from `s`, on `proto`/`dport` (host order). On a denial,
// `slot` is the slot that denied. The allowing rules are counted in worker `w`'s set.
bool allowed(const policy_table& t, uint32_t w, const policy_address& s, const policy_address& d,
             uint8_t proto, uint16_t dport, uint32_t& slot) {
    int32_t e = 0, i = 0;
    if (s.egress_slot != 0 && (e = t.allows_row(s.egress_row, d.peer_class, proto, dport)) < 0) {
        slot = s.egress_slot;
        return false;
    }
    if (d.ingress_slot != 0 && (i = t.allows_row(d.ingress_row, s.peer_class, proto, dport)) < 0) {
        slot = d.ingress_slot;
        return false;
    }
    if (s.egress_slot != 0) {
        t.count_rule(w, e);
    }
    if (d.ingress_slot != 0) {
        t.count_rule(w, i);
    }
    return true;
}

// An ICMP error (destination unreachable, time exceeded, parameter problem) about a
// packet of a tracked connection, sent back towards that packet's source: related to the
// connection, as a conntrack-first firewall (Calico's RELATED) lets it through. Path MTU
// discovery to and from isolated pods needs it.
bool related_icmp_error(const pipeline_ctx& ctx, const net::ipv4_hdr* ip, uint32_t header_len,
                        uint32_t total_len) {
    const auto* icmp = reinterpret_cast<const uint8_t*>(ip) + header_len;
    if (ip->is_fragment() || total_len < header_len + 8 + 20 + 8 ||
        (icmp[0] != 3 && icmp[0] != 11 && icmp[0] != 12)) {
        return false;
    }
    const auto* inner = reinterpret_cast<const net::ipv4_hdr*>(icmp + 8);
    const uint32_t inner_len = inner->header_length();
    if (inner->version() != 4 || inner_len < 20 || total_len < header_len + 8 + inner_len + 8 ||
        inner->is_later_fragment() || !has_ports(inner->proto) || inner->src.raw != ip->dst.raw) {
        return false;
    }
    flow_key k;
    k.src = inner->src.raw;
    k.dst = inner->dst.raw;
    k.proto = inner->proto;
    const auto* l4 = reinterpret_cast<const uint8_t*>(inner) + inner_len;
    std::memcpy(&k.sport, l4, 2);
    std::memcpy(&k.dport, l4 + 2, 2);
    const conntrack::hit h = ctx.ct->find(k);
    return h.entry != conntrack::no_entry && !conntrack_expired(ctx, ctx.ct->entry(h.entry));
}

bool node_address(const node_params& p, ip4_addr a) {
    return a == p.node_ip || a == p.pod_cidr.addr;
}

// The original direction of a tracked connection as the policy judges it: from the
// client (or the masquerade address) to the backend. A pod and itself (hairpin), a pod
// and its own node (masqueraded clients among them): allowed.
bool connection_allowed(const node_params& p, const policy_table& t, uint32_t w, const ct_entry& e,
                        uint32_t& slot) {
    const ip4_addr client{net::bswap(e.reply.dst)}, backend{net::bswap(e.reply.src)};
    if (client == backend || e.orig.src == e.reply.src || node_address(p, client) ||
        node_address(p, backend)) {
        return true;
    }
    const policy_address& s = t.info(client);
    const policy_address& d = t.info(backend);
    if ((s.egress_slot | d.ingress_slot) == 0) {
        return true;
    }
    return allowed(t, w, s, d, e.orig.proto, net::bswap(e.reply.sport), slot);
}

void deny(pipeline_ctx& ctx, const policy_table& t, rte_mbuf* m, uint32_t slot) {
    t.count_denied(ctx.worker, slot);
    ctx.drop_packet(m, drop::policy_denied);
}

void cut(pipeline_ctx& ctx, const policy_table& t, rte_mbuf* m, uint32_t entry, uint32_t slot) {
    t.count_cut(ctx.worker, slot);
    conntrack_forget(ctx, entry);
    ctx.drop_packet(m, drop::policy_cut);
}

// A packet the service stage translated by connection `entry`.
bool service_connection(pipeline_ctx& ctx, const policy_table& t, rte_mbuf* m) {
    const uint32_t entry = ctx.svc_entry;
    ct_entry& e = ctx.ct->entry(entry);
    if (e.policy_gen == t.gen()) {
        return true;
    }
    uint32_t slot = 0;
    if (connection_allowed(*ctx.params, t, ctx.worker, e, slot)) {
        e.policy_gen = t.gen();
        return true;
    }
    if (ctx.svc_new) {  // a new connection, never allowed: not kept
        t.count_denied(ctx.worker, slot);
        conntrack_forget(ctx, entry);
        ctx.drop_packet(m, drop::policy_denied);
        return false;
    }
    if (t.cut_established()) {
        cut(ctx, t, m, entry, slot);
        return false;
    }
    e.policy_gen = t.gen();
    return true;
}

}  // namespace

bool policy_allows(const policy_table& t, ip4_addr src, ip4_addr dst, uint8_t proto, uint16_t dport) {
    uint32_t slot;
    return allowed(t, 0, t.info(src), t.info(dst), proto, dport, slot);
}

bool policy_input(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                  uint32_t total_len, origin from) {
    const policy_table& t = *ctx.policy;
    const ip4_addr src = ip->src_addr(), dst = ip->dst_addr();
    const node_params& p = *ctx.params;
    if (from == origin::nat && ctx.svc_entry != conntrack::no_entry) {
        return service_connection(ctx, t, m);
    }
    // A pod and itself, a pod and its own node: allowed. Never for what comes out of a
    // tunnel, where such a source can only be spoofed.
    if (from != origin::overlay &&
        (src == dst || node_address(p, src) || node_address(p, dst))) {
        return true;
    }
    const policy_address& si = t.info(src);
    const policy_address& di = t.info(dst);
    const bool forward = (si.egress_slot | di.ingress_slot) != 0;
    const bool reverse = (di.egress_slot | si.ingress_slot) != 0;
    if (!forward && !reverse) {
        return true;
    }
    const uint8_t proto = ip->proto;
    if (proto == net::ip_proto_icmp && related_icmp_error(ctx, ip, header_len, total_len)) {
        ctx.counters->policy_related.add();
        return true;
    }
    flow_key k;
    k.src = ip->src.raw;
    k.dst = ip->dst.raw;
    k.proto = proto;
    uint8_t flags = 0;
    if (has_ports(proto)) {
        const auto* l4 = reinterpret_cast<const uint8_t*>(ip) + header_len;
        if (ip->is_later_fragment()) {
            frag_ports::ports fp;
            if (!ctx.frags.find(k.src, k.dst, proto, ip->id.raw, ctx.now_s, fp)) {
                ctx.drop_packet(m, drop::policy_fragment);
                return false;
            }
            k.sport = fp.sport;
            k.dport = fp.dport;
        } else {
            if (total_len < header_len + 4) {
                ctx.drop_packet(m, drop::policy_fragment);
                return false;
            }
            std::memcpy(&k.sport, l4, 2);
            std::memcpy(&k.dport, l4 + 2, 2);
            if (proto == net::ip_proto_tcp && total_len >= header_len + 14) {
                flags = l4[13];
            }
        }
    }
    // The rules are read only when the connection table does not answer: a packet of a
    // connection judged under this policy version costs the same whatever the rules.
    uint32_t slot = 0;
    int8_t verdict = -1;
    auto ok = [&]() {
        if (verdict < 0) {
            verdict = !forward || allowed(t, ctx.worker, si, di, proto, net::bswap(k.dport), slot);
        }
        return verdict == 1;
    };
    // A first fragment let through (by the rules or by its connection) leaves its ports
    // for the later fragments of its datagram.
    const bool first_fragment = ip->is_fragment() && !ip->is_later_fragment() && has_ports(proto);
    auto pass = [&]() {
        if (first_fragment &&
            !ctx.frags.remember(k.src, k.dst, proto, ip->id.raw, {k.sport, k.dport}, ctx.now_s)) {
            ctx.drop_packet(m, drop::fragment_attack);
            return false;
        }
        return true;
    };
    // Stateful from here, as conntrack-first firewalls are: the connection table says
    // whether the packet belongs to a connection that was allowed.
    conntrack& ct = *ctx.ct;
    const conntrack::hit h = ct.find(k);
    if (h.entry != conntrack::no_entry) {
        ct_entry& e = ct.entry(h.entry);
        if (!(e.flags & ct_entry::policy_only)) {
            // A service's connection met untranslated (its frontend is the backend
            // itself): judged by the rules.
            if (!ok()) {
                deny(ctx, t, m, slot);
                return false;
            }
            return pass();
        }
        const bool reopens = !h.reply && proto == net::ip_proto_tcp && net::tcp_opens(flags) &&
                             (e.state == ct_state::fin || e.state == ct_state::closed);
        if (reopens || conntrack_expired(ctx, e)) {
            conntrack_forget(ctx, h.entry);  // timed out (not swept yet), or a new SYN on a closed tuple
        } else if (e.policy_gen == t.gen()) {
            // Judged under this version: its opening direction was allowed (or kept).
            conntrack_seen(ctx, h.entry, e, h.reply, proto, flags);
            return pass();
        } else {
            bool keep = true;
            if (!h.reply && !ok()) {
                keep = false;  // its own direction is no longer allowed
            } else if (h.reply) {
                // The policy changed since the connection was last judged.
                const policy_address& os = t.info(ip4_addr{net::bswap(e.orig.src)});
                const policy_address& od = t.info(ip4_addr{net::bswap(e.orig.dst)});
                keep = allowed(t, ctx.worker, os, od, proto, net::bswap(e.orig.dport), slot);
            }
            if (!keep && t.cut_established()) {
                cut(ctx, t, m, h.entry, slot);
                return false;
            }
            e.policy_gen = t.gen();
            conntrack_seen(ctx, h.entry, e, h.reply, proto, flags);
            return pass();
        }
    }
    bool picked_up = false;
    if (!ok()) {
        // A TCP segment (not a SYN) of a connection opened before a pod on its way was
        // isolated has no record. It is taken up mid-stream, as the reply of a connection
        // the other side opened, when its source port is the lower one (the server's
        // side, by the usual port choice) and that other side's connection is allowed.
        const uint16_t sport = net::bswap(k.sport), dport = net::bswap(k.dport);
        uint32_t other = 0;
        if (proto != net::ip_proto_tcp || (flags & (tcp_syn | tcp_rst)) != 0 || sport >= dport ||
            !allowed(t, ctx.worker, di, si, proto, sport, other)) {
            deny(ctx, t, m, slot);
            return false;
        }
        picked_up = true;
    }
    // A connection is tracked from the packet that opens it (a TCP SYN, any datagram), so
    // that its direction is the one the policy judged; a TCP segment of a connection not
    // tracked (opened before the policy isolated a pod, say) passes on the rules alone.
    if (!picked_up && proto == net::ip_proto_tcp && !net::tcp_opens(flags)) {
        return pass();
    }
    // The other direction's key must be free too (a service's connection may hold it):
    // else the packet passes untracked.
    const flow_key back{k.dst, k.src, k.dport, k.sport, proto, flow_key::connection, 0};
    if (ct.find(back).entry != conntrack::no_entry) {
        return pass();
    }
    const uint32_t e = ct.allocate(ctx.worker);
    if (e == conntrack::no_entry) {
        ctx.counters->ct_full.add();
        return pass();  // allowed; its replies are judged by the rules alone
    }
    ct_entry& ent = ct.entry(e);
    ct.write_begin(ent);
    ent.orig = picked_up ? back : k;
    ent.reply = picked_up ? k : back;
    ent.backend = 0;
    ent.frontend = ~uint32_t(0);
    ent.state = proto != net::ip_proto_tcp ? ct_state::datagram
                : picked_up                    ? ct_state::established
                                               : ct_state::syn;
    ent.flags = ct_entry::policy_only;
    ent.policy_gen = t.gen();
    ent.expires.store(ctx.now_s + conntrack_timeout(p, ent.state), std::memory_order_relaxed);
    if (!ct.insert(e)) {
        ent.state = ct_state::free;
        ct.write_end(ent);
        ct.release(e);
        ctx.counters->ct_full.add();
        return pass();
    }
    ct.write_end(ent);
    ctx.counters->policy_tracked.add();
    return pass();
}

}  // namespace twill
