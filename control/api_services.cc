#include "control/api_services.h"

#include <optional>

#include <fmt/format.h>
#include <rte_cycles.h>

#include "dataplane/net/headers.h"

namespace twill {

namespace {

using nlohmann::json;

std::string proto_name(uint8_t p) {
    switch (p) {
        case config::proto_tcp:
            return "TCP";
        case config::proto_udp:
            return "UDP";
        case config::proto_sctp:
            return "SCTP";
    }
    return std::to_string(p);
}

const char* sched_name(sched_kind k) {
    switch (k) {
        case sched_kind::rr:
            return "rr";
        case sched_kind::wrr:
            return "wrr";
        case sched_kind::lc:
            return "lc";
        case sched_kind::sh:
            return "sh";
        case sched_kind::mh:
            return "mh";
    }
    return "?";
}

// An address and port as stored in packets (network order).
std::string endpoint(uint32_t ip_raw, uint16_t port_raw) {
    return fmt::format("{}:{}", config::format_ip4(ip4_addr{net::bswap(ip_raw)}), net::bswap(port_raw));
}

const char* state_name(ct_state s) {
    switch (s) {
        case ct_state::syn:
            return "SYN_RECV";
        case ct_state::established:
            return "ESTABLISHED";
        case ct_state::fin:
            return "FIN_WAIT";
        case ct_state::closed:
            return "CLOSE";
        case ct_state::datagram:
            return "UDP";
        case ct_state::affinity:
            return "AFFINITY";
        case ct_state::free:
        case ct_state::dying:
        case ct_state::dead:
            break;  // never listed (for_each gives entries in use)
    }
    return "NONE";
}

// "a.b.c.d" or "a.b.c.d:port" -> (address, port or 0).
std::optional<std::pair<uint32_t, uint16_t>> parse_endpoint(const std::string& s) {
    const size_t colon = s.find(':');
    std::optional<ip4_addr> ip = config::parse_ip4(s.substr(0, colon));
    if (!ip) {
        return std::nullopt;
    }
    uint32_t port = 0;
    if (colon != std::string::npos) {
        const std::string p = s.substr(colon + 1);
        if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
            return std::nullopt;
        }
        port = uint32_t(std::stoul(p));
        if (port == 0 || port > 65535) {
            return std::nullopt;
        }
    }
    return std::pair(net::bswap(ip->value), net::bswap(uint16_t(port)));
}

}  // namespace

json get_services(const node_state& state) {
    json items = json::array();
    const service_table& table = state.services();
    for (const auto& [key, s] : state.desired().services()) {
        json frontends = json::array();
        for (const auto& f : state.service_frontends().frontends(key)) {
            const service_entry* e = table.entry(f.slot);
            if (e == nullptr) {
                continue;
            }
            json backends = json::array();
            for (const service_backend& b : e->backends) {
                const backend_state& bs = table.backend(b.state);
                backends.push_back({{"address", endpoint(b.ip, b.port)},
                                    {"weight", bs.weight.load(std::memory_order_relaxed)},
                                    {"local", b.local},
                                    {"activeConn", std::max(0, table.active(b.state))},
                                    {"inActConn", std::max(0, table.inactive(b.state))}});
            }
            json fe = {{"protocol", proto_name(e->proto)},
                       {"address", endpoint(e->vip, e->port)},
                       {"scheduler", sched_name(e->sched)},
                       {"masquerade", e->snat_outside},
                       {"backends", backends}};
            if (e->affinity) {
                fe["persistent"] = e->affinity_timeout;
            }
            frontends.push_back(fe);
        }
        items.push_back({{"namespace", s.ns}, {"name", s.name}, {"frontends", frontends}});
    }
    return items;
}

json get_conntrack(const node_state& state, const json& filters, std::string& error) {
    auto text = [&](const char* k) -> std::string {
        return filters.contains(k) && filters[k].is_string() ? filters[k].get<std::string>() : "";
    };
    struct match {
        std::optional<std::pair<uint32_t, uint16_t>> ep;
        bool set = false;
    };
    auto parse = [&](const char* k) {
        match m;
        const std::string s = text(k);
        if (s.empty()) {
            return m;
        }
        m.set = true;
        m.ep = parse_endpoint(s);
        if (!m.ep) {
            error = fmt::format("{}: '{}' is not a.b.c.d or a.b.c.d:port", k, s);
        }
        return m;
    };
    const match service = parse("service"), backend = parse("backend"), client = parse("client");
    uint8_t proto = 0;
    if (const std::string p = text("protocol"); !p.empty()) {
        proto = p == "TCP" || p == "tcp" ? config::proto_tcp
                : p == "UDP" || p == "udp" ? config::proto_udp
                : p == "SCTP" || p == "sctp" ? config::proto_sctp : 0;
        if (proto == 0) {
            error = fmt::format("protocol: '{}' is not TCP, UDP or SCTP", p);
        }
    }
    size_t limit = 1000;
    if (filters.contains("limit") && filters["limit"].is_number_unsigned()) {
        limit = filters["limit"].get<size_t>();
    }
    if (!error.empty()) {
        return nullptr;
    }
    auto ok = [](const match& m, uint32_t ip, uint16_t port) {
        return !m.set || (m.ep->first == ip && (m.ep->second == 0 || m.ep->second == port));
    };
    const uint32_t now = uint32_t(rte_rdtsc() / rte_get_tsc_hz());
    json items = json::array();
    size_t total = 0;
    state.connections().for_each([&](const ct_entry& e) {
        const bool affinity = e.state == ct_state::affinity;
        if ((proto != 0 && e.orig.proto != proto) || !ok(service, e.orig.dst, e.orig.dport) ||
            !ok(backend, e.reply.src, affinity ? uint16_t(0) : e.reply.sport) ||
            !ok(client, e.orig.src, e.orig.sport)) {
            return;
        }
        if (affinity && backend.set && backend.ep->second != 0 && backend.ep->second != e.reply.sport) {
            return;
        }
        ++total;
        if (items.size() >= limit) {
            return;
        }
        json item = {{"protocol", proto_name(e.orig.proto)},
                     {"client", affinity ? config::format_ip4(ip4_addr{net::bswap(e.orig.src)})
                                         : endpoint(e.orig.src, e.orig.sport)},
                     {"service", endpoint(e.orig.dst, e.orig.dport)},
                     {"backend", endpoint(e.reply.src, e.reply.sport)},
                     {"state", state_name(e.state)},
                     {"expiresIn", std::max<int32_t>(0, int32_t(e.expires.load(std::memory_order_relaxed) - now))}};
        if (e.flags & ct_entry::snat) {
            item["masquerade"] = endpoint(e.reply.dst, e.reply.dport);
        }
        if (e.flags & ct_entry::policy_only) {
            item["tracked"] = "policy";  // no service: kept for NetworkPolicy's replies
        }
        items.push_back(item);
    });
    return {{"items", items}, {"total", total}, {"capacity", state.connections().capacity()}};
}

}  // namespace twill
