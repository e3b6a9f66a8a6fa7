// The NetworkPolicy compiler against Kubernetes' semantics evaluated directly: random small
// clusters (fixed seed), every (source, destination, protocol, port) probed through the
// compiled tables and through a plain reading of the NetworkPolicy spec, in both directions.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>

#include <fmt/format.h>

#include "control/desired.h"
#include "control/policy_publisher.h"
#include "dataplane/policy/policy_table.h"
#include "tests/unit/policy_helpers.h"

using namespace twill;
using namespace twill::test::netpol;
using op = config::label_requirement::op;

namespace {

// The spec, read plainly: no classes, no tables.
class oracle {
  public:
    oracle(const std::vector<config::namespace_def>& defs, const std::vector<config::pod>& pods,
           const std::vector<config::network_policy>& pols)
        : pods_(pods), pols_(pols) {
        for (const auto& d : defs) {
            ns_labels_[d.name] = d.labels;
        }
        for (const auto& p : pods) {
            ns_labels_[p.ns];
        }
        for (auto& [name, labels] : ns_labels_) {
            labels["kubernetes.io/metadata.name"] = name;
        }
    }

    bool egress_allowed(ip4_addr src, ip4_addr dst, uint8_t proto, uint16_t port) const {
        return allowed(pod_at(src), dst, proto, port, true, pod_at(dst));
    }
    bool ingress_allowed(ip4_addr src, ip4_addr dst, uint8_t proto, uint16_t port) const {
        return allowed(pod_at(dst), src, proto, port, false, pod_at(dst));
    }

  private:
    static bool sel(const config::label_selector& s, const config::label_map& l) {
        for (const auto& [k, v] : s.match_labels) {
            if (!l.count(k) || l.at(k) != v) {
                return false;
            }
        }
        for (const auto& r : s.match_expressions) {
            const bool has = l.count(r.key) > 0;
            const bool in = has && std::count(r.values.begin(), r.values.end(), l.at(r.key)) > 0;
            const bool ok = r.oper == op::in       ? in
                            : r.oper == op::not_in ? !in
                            : r.oper == op::exists ? has
                                                   : !has;
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    const config::pod* pod_at(ip4_addr a) const {
        for (const auto& p : pods_) {
            if (p.ip == a) {
                return &p;
            }
        }
        return nullptr;
    }

    bool peer_matches(const config::network_policy& pol, const config::policy_peer& peer,
                      ip4_addr a) const {
        if (peer.block) {
            if (!peer.block->cidr.contains(a)) {
                return false;
            }
            for (const auto& e : peer.block->except) {
                if (e.contains(a)) {
                    return false;
                }
            }
            return true;
        }
        const config::pod* p = pod_at(a);
        if (!p) {
            return false;
        }
        const bool pod_ok = !peer.pod_selector || sel(*peer.pod_selector, p->labels);
        if (peer.namespace_selector) {
            return sel(*peer.namespace_selector, ns_labels_.at(p->ns)) && pod_ok;
        }
        return peer.pod_selector && p->ns == pol.ns && pod_ok;
    }

    static bool port_matches(const config::policy_port& pp, uint8_t proto, uint16_t port,
                             const config::pod* named_on) {
        if (pp.protocol != proto) {
            return false;
        }
        if (!pp.name.empty()) {
            if (!named_on) {
                return false;
            }
            for (const auto& cp : named_on->container_ports) {
                if (cp.name == pp.name && cp.protocol == proto) {
                    return cp.port == port;
                }
            }
            return false;
        }
        return !pp.port || (*pp.port <= port && port <= pp.end_port.value_or(*pp.port));
    }

    // Is traffic between `self` (the pod the policies would select) and `peer` allowed in
    // that direction of `self`?
    bool allowed(const config::pod* self, ip4_addr peer, uint8_t proto, uint16_t port, bool egress,
                 const config::pod* named_on) const {
        if (!self || self->port.empty()) {
            return true;  // only local pods are enforced here
        }
        bool isolated = false;
        for (const auto& pol : pols_) {
            if (pol.ns != self->ns || !sel(pol.pod_selector, self->labels) ||
                !(egress ? pol.egress : pol.ingress)) {
                continue;
            }
            isolated = true;
            for (const auto& r : egress ? pol.egress_rules : pol.ingress_rules) {
                bool peer_ok = r.peers.empty();
                for (const auto& pe : r.peers) {
                    peer_ok = peer_ok || peer_matches(pol, pe, peer);
                }
                bool port_ok = r.ports.empty();
                for (const auto& pp : r.ports) {
                    port_ok = port_ok || port_matches(pp, proto, port, named_on);
                }
                if (peer_ok && port_ok) {
                    return true;
                }
            }
        }
        return !isolated;
    }

    const std::vector<config::pod>& pods_;
    const std::vector<config::network_policy>& pols_;
    std::map<std::string, config::label_map> ns_labels_;
};

struct gen {
    std::mt19937 rng;
    uint32_t below(uint32_t n) { return rng() % n; }
    bool chance(int percent) { return below(100) < uint32_t(percent); }
    template <typename T>
    const T& pick(const std::vector<T>& v) {
        return v[below(uint32_t(v.size()))];
    }

    const std::vector<std::string> namespaces{"a", "b", "c"};
    const std::vector<std::string> keys{"app", "tier", "team", "kubernetes.io/metadata.name"};
    const std::vector<std::string> values{"a", "b", "c", "x"};
    const std::vector<uint16_t> ports{53, 80, 81, 443, 8080, 9090};

    config::label_map labels(const std::vector<std::string>& ks) {
        config::label_map l;
        for (const auto& k : ks) {
            if (chance(60)) {
                l[k] = pick(values);
            }
        }
        return l;
    }

    config::label_selector selector() {
        config::label_selector s;
        if (chance(25)) {
            return s;
        }
        for (int i = int(below(2)); i > 0; --i) {
            s.match_labels[pick(keys)] = pick(values);
        }
        for (int i = int(below(3)); i > 0; --i) {
            config::label_requirement r{pick(keys), op(below(4)), {}};
            if (r.oper == op::in || r.oper == op::not_in) {
                for (int j = 1 + int(below(2)); j > 0; --j) {
                    r.values.push_back(pick(values));
                }
            }
            s.match_expressions.push_back(std::move(r));
        }
        return s;
    }

    ip4_prefix prefix_in(const ip4_prefix& outer, uint8_t min_len) {
        ip4_prefix p;
        p.len = uint8_t(std::max<int>(min_len, outer.len) +
                        below(uint32_t(33 - std::max<int>(min_len, outer.len))));
        p.addr.value = (outer.addr.value | (rng() & ~outer.mask())) & p.mask();
        return p;
    }

    config::policy_peer peer() {
        config::policy_peer p;
        switch (below(4)) {
            case 0:
                p.pod_selector = selector();
                break;
            case 1:
                p.namespace_selector = selector();
                break;
            case 2:
                p.pod_selector = selector();
                p.namespace_selector = selector();
                break;
            default: {
                const ip4_prefix outer = chance(15) ? ip4_prefix{} : ip4_prefix{ip("10.0.0.0"), 24};
                config::ip_block b{prefix_in(outer, 22), {}};
                for (int i = int(below(3)); i > 0 && b.cidr.len < 32; --i) {
                    b.except.push_back(prefix_in(b.cidr, uint8_t(b.cidr.len + 1)));
                }
                p.block = b;
            }
        }
        return p;
    }

    config::policy_port port() {
        config::policy_port p;
        p.protocol = pick(std::vector<uint8_t>{6, 6, 17, 132});
        switch (below(4)) {
            case 0:
                p.port = pick(ports);
                break;
            case 1:
                p.port = pick(ports);
                p.end_port = uint16_t(*p.port + below(120));
                break;
            case 2:
                p.name = pick(std::vector<std::string>{"http", "dns", "metrics", "nope"});
                break;
            default:
                break;  // the whole protocol
        }
        return p;
    }

    std::vector<config::policy_rule> rules() {
        std::vector<config::policy_rule> out(below(4));
        for (auto& r : out) {
            r.peers.resize(chance(30) ? 0 : 1 + below(2));
            for (auto& p : r.peers) {
                p = peer();
            }
            r.ports.resize(chance(30) ? 0 : 1 + below(3));
            for (auto& p : r.ports) {
                p = port();
            }
        }
        return out;
    }

    std::vector<config::container_port> container_ports() {
        const std::vector<std::vector<config::container_port>> choices{
            {},
            {{"http", 6, 80}},
            {{"http", 6, 8080}, {"dns", 17, 53}},
            {{"http", 17, 81}, {"metrics", 6, 9090}},
            {{"dns", 132, 53}, {"http", 6, 80}},
        };
        return pick(choices);
    }
};

struct cluster {
    std::vector<config::namespace_def> defs;
    std::vector<config::pod> pods;
    std::vector<config::network_policy> pols;
};

cluster random_cluster(gen& g) {
    cluster c;
    for (const auto& ns : g.namespaces) {
        if (g.chance(75)) {
            c.defs.push_back({ns, g.labels({"team", "tier"})});
        }
    }
    std::set<uint32_t> used;
    const int n = 4 + int(g.below(7));
    for (int i = 0; i < n; ++i) {
        uint32_t host;
        do {
            host = 1 + g.below(254);
        } while (!used.insert(host).second);
        config::pod p;
        p.name = fmt::format("p{}", i);
        p.ns = g.pick(g.namespaces);
        p.ip = ip4_addr{ip("10.0.0.0").value | host};
        p.port = g.chance(60) ? "net_null" + p.name : "";
        p.labels = g.labels({"app", "tier"});
        p.container_ports = g.container_ports();
        c.pods.push_back(std::move(p));
    }
    for (int i = int(1 + g.below(4)); i > 0; --i) {
        config::network_policy p;
        p.name = fmt::format("pol{}", i);
        p.ns = g.pick(g.namespaces);
        p.pod_selector = g.selector();
        p.ingress = g.chance(70);
        p.egress = !p.ingress || g.chance(40);
        p.ingress_rules = g.rules();
        p.egress_rules = g.rules();
        c.pols.push_back(std::move(p));
    }
    return c;
}

// Every pod, edges of every prefix the policies name, and a few others.
std::vector<ip4_addr> probe_addresses(gen& g, const cluster& c) {
    std::set<uint32_t> out{ip("10.0.0.0").value, ip("10.0.0.255").value, ip("10.0.1.0").value,
                           ip("192.0.2.1").value};
    for (const auto& p : c.pods) {
        out.insert(p.ip.value);
    }
    for (const auto& pol : c.pols) {
        for (const auto* rules : {&pol.ingress_rules, &pol.egress_rules}) {
            for (const auto& r : *rules) {
                for (const auto& pe : r.peers) {
                    if (!pe.block) {
                        continue;
                    }
                    std::vector<ip4_prefix> ps = pe.block->except;
                    ps.push_back(pe.block->cidr);
                    for (const auto& p : ps) {
                        const uint32_t last = p.addr.value | ~p.mask();
                        out.insert({p.addr.value, last, p.addr.value - 1, last + 1});
                    }
                }
            }
        }
    }
    for (int i = 0; i < 6; ++i) {
        out.insert(ip("10.0.0.0").value | g.below(256));
    }
    std::vector<ip4_addr> v;
    for (uint32_t a : out) {
        v.push_back({a});
    }
    return v;
}

std::string describe(const cluster& c) {
    std::string s;
    for (const auto& p : c.pods) {
        s += fmt::format("pod {}/{} {} {}\n", p.ns, p.name, config::format_ip4(p.ip),
                         p.port.empty() ? "remote" : "local");
    }
    for (const auto& p : c.pols) {
        s += fmt::format("policy {}/{} in={} eg={} rules {}+{}\n", p.ns, p.name, p.ingress,
                         p.egress, p.ingress_rules.size(), p.egress_rules.size());
    }
    return s;
}

// What the compiled form promises whatever the input.
void check_shape(const policy::compiled& c) {
    REQUIRE(!c.infos.empty());
    CHECK(c.infos[0] == policy::address_info{});
    for (size_t i = 0; i < c.infos.size(); ++i) {
        CHECK(c.infos[i].peer_class < c.classes);
        CHECK(c.infos[i].ingress_slot < c.slots.size());
        CHECK(c.infos[i].egress_slot < c.slots.size());
        for (size_t j = 0; j < i; ++j) {
            CHECK_FALSE(c.infos[i] == c.infos[j]);
        }
    }
    for (const auto& [p, i] : c.prefixes) {
        CHECK(i < c.infos.size());
        CHECK((p.addr.value & ~p.mask()) == 0);
    }
    for (const auto& [key, ranges] : c.allow) {
        CHECK(key.first >= 1);
        CHECK(key.first < c.slots.size());
        CHECK((key.second == policy::any_class || key.second < c.classes));
        CHECK(!ranges.empty());
        CHECK(std::is_sorted(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
            return std::tie(a.proto, a.lo, a.hi, a.rule) < std::tie(b.proto, b.lo, b.hi, b.rule);
        }));
        for (const auto& r : ranges) {
            CHECK(r.rule < c.rules.size());
            CHECK(r.lo <= r.hi);
        }
    }
}

// The rule the compiled form credits for (slot, class): its list's first match, or -1.
int32_t first_rule(const policy::compiled& c, uint32_t slot, uint32_t cls, uint8_t proto, uint16_t port) {
    auto it = c.allow.find({slot, cls});
    if (it == c.allow.end()) {
        it = c.allow.find({slot, policy::any_class});
    }
    if (it != c.allow.end()) {
        for (const auto& r : it->second) {
            if ((r.proto == policy::any_proto || r.proto == proto) && r.lo <= port && port <= r.hi) {
                return int32_t(r.rule);
            }
        }
    }
    return -1;
}

}  // namespace

TEST_CASE("policy: compiled lookups agree with the spec on random clusters", "[policy]") {
    gen g{std::mt19937(20261129)};
    const std::vector<uint8_t> protos{6, 17, 132, 1};
    const std::vector<uint16_t> ports{0, 53, 80, 81, 100, 443, 8080, 8100, 9090};
    // Probes where a policy decides (an isolated end), and how many of those it allows.
    size_t probes = 0, decided = 0, allowed = 0, slots = 0;
    for (int iter = 0; iter < 300; ++iter) {
        const cluster cl = random_cluster(g);
        const auto c = policy::compile(cl.defs, cl.pods, cl.pols);
        INFO("iteration " << iter << "\n" << describe(cl));
        check_shape(c);
        slots += c.slots.size() - 1;
        const oracle o(cl.defs, cl.pods, cl.pols);
        const auto addrs = probe_addresses(g, cl);
        // Every third cluster also through the table the workers read (shadowed ranges
        // left out, alike columns shared): the same rule answers every probe.
        std::unique_ptr<policy_table> table;
        if (iter % 3 == 0) {
            std::string error;
            table = policy_table::build(make_policy_spec(c, true), 1, error);
            REQUIRE(table != nullptr);
        }
        for (ip4_addr src : addrs) {
            for (ip4_addr dst : addrs) {
                for (uint8_t proto : protos) {
                    for (uint16_t port : ports) {
                        const bool want_e = o.egress_allowed(src, dst, proto, port);
                        const bool want_i = o.ingress_allowed(src, dst, proto, port);
                        const bool got_e = egress_ok(c, src, dst, proto, port);
                        const bool got_i = ingress_ok(c, src, dst, proto, port);
                        ++probes;
                        if (info(c, src).egress_slot || info(c, dst).ingress_slot) {
                            ++decided;
                            allowed += want_e && want_i;
                        }
                        if (table != nullptr) {
                            const policy_address& ts = table->info(src);
                            const policy_address& td = table->info(dst);
                            const auto& cs = info(c, src);
                            const auto& cd = info(c, dst);
                            REQUIRE(ts.egress_slot == cs.egress_slot);
                            REQUIRE(td.ingress_slot == cd.ingress_slot);
                            const int32_t te =
                                ts.egress_slot ? table->allows(ts.egress_slot, td.peer_class, proto, port) : -2;
                            const int32_t ti =
                                td.ingress_slot ? table->allows(td.ingress_slot, ts.peer_class, proto, port) : -2;
                            const int32_t ce =
                                cs.egress_slot ? first_rule(c, cs.egress_slot, cd.peer_class, proto, port) : -2;
                            const int32_t ci =
                                cd.ingress_slot ? first_rule(c, cd.ingress_slot, cs.peer_class, proto, port) : -2;
                            if (te != ce || ti != ci) {
                                FAIL_CHECK(fmt::format("{} -> {} proto {} port {}: table rules {}/{}, compiled {}/{}",
                                                       config::format_ip4(src), config::format_ip4(dst), proto,
                                                       port, te, ti, ce, ci));
                                return;
                            }
                        }
                        if (got_e != want_e || got_i != want_i) {
                            FAIL_CHECK(fmt::format(
                                "{} -> {} proto {} port {}: egress {} want {}, ingress {} want {}",
                                config::format_ip4(src), config::format_ip4(dst), proto, port,
                                got_e, want_e, got_i, want_i));
                            return;
                        }
                    }
                }
            }
        }
    }
    INFO(probes << " probes, " << decided << " with an isolated end, " << allowed
                << " of them allowed; " << slots << " slots");
    CHECK(decided > probes / 20);   // the cases isolate pods ...
    CHECK(allowed > decided / 20);  // ... and allow some of that traffic,
    CHECK(allowed < decided / 2);   // not most of it
}

// desired_state::policy_touched lets a change through without a compile only when the
// tables would judge alike: random changes to random clusters, and wherever it says
// "untouched", the tables compiled before and after give the same verdicts everywhere.
TEST_CASE("policy: a change found not to touch policy compiles to the same verdicts", "[policy]") {
    gen g{std::mt19937(20261130)};
    const std::vector<uint8_t> protos{6, 17, 132};
    const std::vector<uint16_t> ports{53, 80, 81, 443, 8080, 9090};
    int untouched = 0, touched = 0;
    for (int iter = 0; iter < 400; ++iter) {
        const cluster before = random_cluster(g);
        config::node_file nf;
        nf.namespaces = before.defs;
        nf.pods = before.pods;
        nf.network_policies = before.pols;
        const desired_state d(nf);
        const auto c0 = policy::compile(before.defs, before.pods, before.pols);
        const std::set<pod_key> enforced = enforced_policies(c0);
        // One change: a pod relabelled, given other ports, moved, made local or remote,
        // added, deleted or moved to another namespace; a policy added, deleted or
        // rewritten; or two or three pod edits at once.
        cluster after = before;
        object_change change;
        std::set<uint32_t> used_hosts;
        for (const config::pod& x : before.pods) {
            used_hosts.insert(x.ip.value & 0xff);
        }
        auto free_ip = [&]() {
            uint32_t host;
            do {
                host = 1 + g.below(254);
            } while (!used_hosts.insert(host).second);
            return ip4_addr{ip("10.0.0.0").value | host};
        };
        auto edit = [&](config::pod& p, uint32_t kind) {
            switch (kind) {
                case 0: p.labels = g.labels({"app", "tier"}); break;
                case 1: p.labels[g.pick(g.keys)] = g.pick(g.values); break;
                case 2: p.container_ports = g.container_ports(); break;
                case 3: p.ip = free_ip(); break;
                default: p.port = p.port.empty() ? "net_null" + p.name : ""; break;
            }
            change.pods.push_back(p);
        };
        auto random_policy = [&](std::string name, std::string ns) {
            config::network_policy np;
            np.name = std::move(name);
            np.ns = std::move(ns);
            np.pod_selector = g.selector();
            np.ingress = g.chance(70);
            np.egress = !np.ingress || g.chance(40);
            np.ingress_rules = g.rules();
            np.egress_rules = g.rules();
            return np;
        };
        const uint32_t pick = g.below(uint32_t(after.pods.size()));
        config::pod& p = after.pods[pick];
        const uint32_t kind = g.below(12);
        switch (kind) {
            case 5: {
                config::pod fresh;
                fresh.name = "fresh";
                fresh.ns = g.pick(g.namespaces);
                fresh.ip = free_ip();
                fresh.port = g.chance(60) ? "net_nullfresh" : "";
                fresh.labels = g.labels({"app", "tier"});
                fresh.container_ports = g.container_ports();
                after.pods.push_back(fresh);
                change.pods = {fresh};
                break;
            }
            case 6:
                change.delete_pods = {{p.ns, p.name}};
                after.pods.erase(after.pods.begin() + pick);
                break;
            case 7: {
                const config::network_policy np = random_policy("extra", g.pick(g.namespaces));
                change.network_policies = {np};
                after.pols.push_back(np);
                break;
            }
            case 8: {
                config::network_policy& gone = after.pols[g.below(uint32_t(after.pols.size()))];
                change.delete_network_policies = {{gone.ns, gone.name}};
                after.pols.erase(after.pols.begin() + (&gone - after.pols.data()));
                break;
            }
            case 9: {
                config::network_policy& np = after.pols[g.below(uint32_t(after.pols.size()))];
                np = random_policy(np.name, np.ns);
                change.network_policies = {np};
                break;
            }
            case 10: {  // another namespace: the old pod deleted, a new one added
                std::string ns;
                do {
                    ns = g.pick(g.namespaces);
                } while (ns == p.ns);
                change.delete_pods = {{p.ns, p.name}};
                p.ns = ns;
                change.pods = {p};
                break;
            }
            case 11: {  // edits to two or three pods
                std::vector<uint32_t> order(after.pods.size());
                for (uint32_t i = 0; i < order.size(); ++i) {
                    order[i] = i;
                }
                std::shuffle(order.begin(), order.end(), g.rng);
                for (uint32_t i = 0; i < std::min<size_t>(order.size(), 2 + g.below(2)); ++i) {
                    edit(after.pods[order[i]], g.below(5));
                }
                break;
            }
            default:
                edit(p, kind);
        }
        if (d.policy_touched(change, enforced)) {
            ++touched;
            continue;
        }
        ++untouched;
        const auto c1 = policy::compile(after.defs, after.pods, after.pols);
        INFO("iteration " << iter << " change " << kind << "\n" << describe(before));
        std::vector<ip4_addr> addrs = probe_addresses(g, before);
        for (const config::pod& x : after.pods) {
            addrs.push_back(x.ip);
        }
        for (ip4_addr src : addrs) {
            for (ip4_addr dst : addrs) {
                for (uint8_t proto : protos) {
                    for (uint16_t port : ports) {
                        if (egress_ok(c0, src, dst, proto, port) != egress_ok(c1, src, dst, proto, port) ||
                            ingress_ok(c0, src, dst, proto, port) != ingress_ok(c1, src, dst, proto, port)) {
                            FAIL_CHECK(fmt::format("{} -> {} proto {} port {}: verdicts differ after a change found "
                                                   "untouched",
                                                   config::format_ip4(src), config::format_ip4(dst), proto, port));
                            return;
                        }
                    }
                }
            }
        }
    }
    INFO(untouched << " changes untouched, " << touched << " touched");
    CHECK(untouched > 50);
    CHECK(touched > 50);
}
