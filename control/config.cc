// YAML -> node_file. Each key is checked on its own here (kind, syntax, range); checks that
// relate several keys are in config_validate.cc. Nothing stops at the first error: the user
// fixes a file in one round trip.
#include "control/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "control/config_parser.h"

namespace twill::config {

namespace detail {

std::string child(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

const char* kind_name(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "a scalar";
        case YAML::NodeType::Null:
            return "no value";
        case YAML::NodeType::Undefined:
            break;
    }
    return "nothing";
}

std::optional<map_view> parser::read_map(const field& f, const std::string& path,
                                         key_list allowed, bool open) {
    const YAML::Node& n = f.value;
    if (!n.IsMap()) {
        fail(path, f.where, fmt::format("expected a map, got {}", kind_name(n)));
        return std::nullopt;
    }
    map_view m{path, n, {}};
    for (auto it = n.begin(); it != n.end(); ++it) {
        // Copies: `it->` yields a proxy that dies with the expression.
        YAML::Node key = it->first;
        YAML::Node value = it->second;
        if (!key.IsScalar()) {
            fail(path, key, fmt::format("a key must be a plain string, got {}", kind_name(key)));
            continue;
        }
        std::string name = key.Scalar();
        std::string key_path = child(path, name);
        if (!open && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
            fail(key_path, key, unknown_key_message(name, allowed));
            continue;
        }
        YAML::Node where = value.IsNull() ? key : value;
        auto [first, inserted] = m.fields.try_emplace(name, field{key, value, where});
        if (!inserted) {
            fail(key_path, key,
                 fmt::format("duplicate key '{}' (first at line {})", name,
                             first->second.key.Mark().line + 1));
            continue;
        }
        out_.cfg.positions[key_path] = pos_of(where);
    }
    return m;
}

const field* parser::find(const map_view& m, std::string_view key, bool required) {
    auto it = m.fields.find(key);
    if (it != m.fields.end()) {
        return &it->second;
    }
    if (required) {
        // Point at the map that lacks the key: there is no better place.
        fail(child(m.path, key), m.node, "required key is missing");
    }
    return nullptr;
}

std::optional<std::string> parser::get_string(const map_view& m, std::string_view key,
                                              bool required) {
    const field* f = find(m, key, required);
    if (f == nullptr) {
        return std::nullopt;
    }
    const YAML::Node& v = f->value;
    if (!v.IsScalar()) {
        fail(child(m.path, key), at(m, key),
             fmt::format("expected a string, got {}", kind_name(v)));
        return std::nullopt;
    }
    return v.Scalar();
}

std::optional<std::string> parser::get_name(const map_view& m, std::string_view key, bool required,
                                            bool dots) {
    std::optional<std::string> s = get_string(m, key, required);
    size_t max_len = dots ? 253 : 63;
    if (s && !is_dns_name(*s, max_len, dots)) {
        fail(child(m.path, key), at(m, key),
             fmt::format("'{}' is not a valid name: use lowercase letters, digits and '-'{}, "
                         "start and end with a letter or digit, at most {} characters",
                         *s, dots ? " or '.'" : "", max_len));
        return std::nullopt;
    }
    return s;
}

std::optional<std::string> parser::get_devargs(const map_view& m, std::string_view key,
                                               bool required) {
    std::optional<std::string> s = get_string(m, key, required);
    if (s && s->empty()) {
        fail(child(m.path, key), at(m, key),
             "expected DPDK devargs (e.g. net_af_packet0,iface=eth0), got an empty string");
        return std::nullopt;
    }
    return s;
}

std::optional<bool> parser::get_bool(const map_view& m, std::string_view key) {
    std::optional<std::string> s = get_string(m, key, false);
    if (!s) {
        return std::nullopt;
    }
    if (*s == "true" || *s == "false") {
        return *s == "true";
    }
    fail(child(m.path, key), at(m, key), fmt::format("'{}' is not a boolean: write true or false", *s));
    return std::nullopt;
}

std::optional<int64_t> parser::get_int(const map_view& m, std::string_view key, int64_t min,
                                       int64_t max) {
    std::optional<std::string> s = get_string(m, key, false);
    if (!s) {
        return std::nullopt;
    }
    const YAML::Node& where = at(m, key);
    std::optional<int64_t> v = parse_int(*s);
    if (!v) {
        fail(child(m.path, key), where, fmt::format("'{}' is not an integer", *s));
        return std::nullopt;
    }
    if (*v < min || *v > max) {
        fail(child(m.path, key), where, fmt::format("{} is out of range {}..{}", *s, min, max));
        return std::nullopt;
    }
    return v;
}

std::optional<ip4_addr> parser::get_ip4(const map_view& m, std::string_view key) {
    std::optional<std::string> s = get_string(m, key, true);
    if (!s) {
        return std::nullopt;
    }
    std::optional<ip4_addr> a = parse_ip4(*s);
    if (!a) {
        fail(child(m.path, key), at(m, key),
             fmt::format("'{}' is not an IPv4 address (expected a.b.c.d)", *s));
    }
    return a;
}

std::optional<ip4_prefix> parser::get_cidr(const map_view& m, std::string_view key, bool required) {
    std::optional<std::string> s = get_string(m, key, required);
    if (!s) {
        return std::nullopt;
    }
    const YAML::Node& where = at(m, key);
    std::optional<ip4_prefix> p = parse_cidr(*s);
    if (!p) {
        fail(child(m.path, key), where,
             fmt::format("'{}' is not a CIDR (expected a.b.c.d/len, len 0..32)", *s));
        return std::nullopt;
    }
    ip4_prefix canonical{{p->addr.value & p->mask()}, p->len};
    if (canonical != *p) {
        fail(child(m.path, key), where,
             fmt::format("{} has host bits set; did you mean {}?", *s, format_prefix(canonical)));
        return std::nullopt;
    }
    return p;
}

std::optional<mac_addr> parser::get_mac(const map_view& m, std::string_view key, bool required) {
    std::optional<std::string> s = get_string(m, key, required);
    if (!s) {
        return std::nullopt;
    }
    const YAML::Node& where = at(m, key);
    std::optional<mac_addr> mac = parse_mac(*s);
    std::string problem;
    if (!mac) {
        problem = fmt::format("'{}' is not a MAC address (expected xx:xx:xx:xx:xx:xx)", *s);
    } else if (mac->to_u64() == 0xffffffffffff) {
        problem = fmt::format("{} is the broadcast MAC", *s);
    } else if (mac->is_multicast()) {
        problem = fmt::format("{} is a multicast MAC (the low bit of the first byte is set)", *s);
    } else if (mac->is_zero()) {
        problem = fmt::format("{} is the all-zero MAC", *s);
    }
    if (!problem.empty()) {
        fail(child(m.path, key), where, std::move(problem));
        return std::nullopt;
    }
    return mac;
}

std::optional<size_t> parser::get_choice(const map_view& m, std::string_view key,
                                         key_list choices) {
    std::optional<std::string> s = get_string(m, key, false);
    if (!s) {
        return std::nullopt;
    }
    auto it = std::find(choices.begin(), choices.end(), *s);
    if (it != choices.end()) {
        return size_t(it - choices.begin());
    }
    std::string hint;
    for (std::string_view c : choices) {
        if (c.size() == s->size() &&
            std::equal(c.begin(), c.end(), s->begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            hint = fmt::format("; did you mean '{}'?", c);
        }
    }
    fail(child(m.path, key), at(m, key),
         fmt::format("'{}' is not one of: {}{}", *s, fmt::join(choices, ", "), hint));
    return std::nullopt;
}

std::optional<ip4_addr> parser::item_ip4(const field& item, const std::string& path) {
    if (!item.value.IsScalar()) {
        fail(path, item.where, fmt::format("expected a string, got {}", kind_name(item.value)));
        return std::nullopt;
    }
    std::optional<ip4_addr> a = parse_ip4(item.value.Scalar());
    if (!a) {
        fail(path, item.where,
             fmt::format("'{}' is not an IPv4 address (expected a.b.c.d)", item.value.Scalar()));
    }
    return a;
}

std::optional<ip4_prefix> parser::item_cidr(const field& item, const std::string& path) {
    if (!item.value.IsScalar()) {
        fail(path, item.where, fmt::format("expected a string, got {}", kind_name(item.value)));
        return std::nullopt;
    }
    const std::string& s = item.value.Scalar();
    std::optional<ip4_prefix> p = parse_cidr(s);
    if (!p) {
        fail(path, item.where,
             fmt::format("'{}' is not a CIDR (expected a.b.c.d/len, len 0..32)", s));
        return std::nullopt;
    }
    ip4_prefix canonical{{p->addr.value & p->mask()}, p->len};
    if (canonical != *p) {
        fail(path, item.where,
             fmt::format("{} has host bits set; did you mean {}?", s, format_prefix(canonical)));
        return std::nullopt;
    }
    return p;
}

bool has_key(const YAML::Node& map, std::string_view key) {
    if (!map.IsMap()) {
        return false;
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (it->first.IsScalar() && it->first.Scalar() == key) {
            return true;
        }
    }
    return false;
}

std::string empty_file_message(bool objects_only) {
    return objects_only ? "the file is empty; expected a map with nodes, pods, services, "
                          "endpointSlices, namespaces or networkPolicies, or a Service, "
                          "EndpointSlice, NetworkPolicy, Namespace or List manifest"
                        : "the file is empty; expected a map with keys node, cluster and ports";
}

void parser::parse_document(const YAML::Node& root) {
    if (root.IsNull()) {
        fail("", root, empty_file_message(objects_only_));
        return;
    }
    const field whole{root, root, root};
    if (objects_only_ && (has_key(root, "apiVersion") || has_key(root, "kind"))) {
        parse_manifest_file(whole);
        return;
    }
    std::optional<map_view> m =
        objects_only_
            ? read_map(whole, "",
                       {"nodes", "pods", "services", "endpointSlices", "namespaces",
                        "networkPolicies"})
            : read_map(whole, "",
                       {"node", "cluster", "dpdk", "ports", "conntrack", "nodes", "pods",
                        "services", "endpointSlices", "namespaces", "networkPolicies", "policy"});
    if (!m) {
        return;
    }
    if (!objects_only_) {
        if (const field* f = find(*m, "node", true)) {
            parse_node(*f);
        }
        if (const field* f = find(*m, "cluster", true)) {
            parse_cluster(*f);
        }
        if (const field* f = find(*m, "dpdk", false)) {
            parse_dpdk(*f);
        }
        if (const field* f = find(*m, "ports", true)) {
            if (std::optional<map_view> ports = read_map(*f, "ports", {"underlay", "host"})) {
                set(out_.cfg.underlay_port, get_devargs(*ports, "underlay", true));
                set(out_.cfg.host_port, get_devargs(*ports, "host", false));
            }
        }
        if (const field* f = find(*m, "conntrack", false)) {
            parse_conntrack(*f);
        }
        if (const field* f = find(*m, "policy", false)) {
            parse_policy_settings(*f);
        }
    }
    // Entries are kept even when broken so that nodes[i] / pods[i] keep their indexes.
    for_each_item(*m, "nodes", [&](const field& item, const std::string& path) {
        out_.cfg.nodes.emplace_back();
        parse_remote_node(item, path);
    });
    for_each_item(*m, "pods", [&](const field& item, const std::string& path) {
        out_.cfg.pods.emplace_back();
        parse_pod(item, path);
    });
    for_each_item(*m, "services", [&](const field& item, const std::string& path) {
        parse_service(item, path);
    });
    for_each_item(*m, "endpointSlices", [&](const field& item, const std::string& path) {
        parse_slice(item, path);
    });
    for_each_item(*m, "namespaces", [&](const field& item, const std::string& path) {
        parse_namespace(item, path);
    });
    for_each_item(*m, "networkPolicies", [&](const field& item, const std::string& path) {
        parse_policy(item, path);
    });
}

void parser::parse_node(const field& f) {
    std::optional<map_view> m = read_map(f, "node", {"name", "ip", "podCIDR", "vtepMAC"});
    if (!m) {
        return;
    }
    node_config& node = out_.cfg.node;
    set(node.name, get_name(*m, "name", true, true));
    set(node.ip, get_ip4(*m, "ip"));
    set(node.pod_cidr, get_cidr(*m, "podCIDR", true));
    if (m->fields.contains("vtepMAC")) {
        set(node.vtep_mac, get_mac(*m, "vtepMAC", false));
    } else {
        node.vtep_mac = generated_vtep_mac(node.name);
    }
}

void parser::parse_cluster(const field& f) {
    std::optional<map_view> m = read_map(f, "cluster", {"clusterCIDR", "serviceCIDR", "vxlan"});
    if (!m) {
        return;
    }
    set(out_.cfg.cluster_cidr, get_cidr(*m, "clusterCIDR", true));
    if (std::optional<ip4_prefix> p = get_cidr(*m, "serviceCIDR", false)) {
        out_.cfg.service_cidr = *p;
    }
    const field* vf = find(*m, "vxlan", false);
    if (vf == nullptr) {
        return;
    }
    std::optional<map_view> vx =
        read_map(*vf, "cluster.vxlan", {"vni", "port", "mtu", "knownSourcesOnly"});
    if (!vx) {
        return;
    }
    vxlan_config& out = out_.cfg.vxlan;
    if (auto vni = get_int(*vx, "vni", 0, (1 << 24) - 1)) {
        out.vni = uint32_t(*vni);
    }
    if (auto port = get_int(*vx, "port", 1, 65535)) {
        out.port = uint16_t(*port);
    }
    // Up to a jumbo underlay's: 9216 bytes less the 50 of VXLAN. Above what one 2 KB mbuf
    // holds, packets travel in chained mbufs (ports receive with scatter).
    if (auto mtu = get_int(*vx, "mtu", 68, 9166)) {
        out.mtu = uint16_t(*mtu);
    }
    if (auto known = get_bool(*vx, "knownSourcesOnly")) {
        out.known_sources_only = *known;
    }
}

void parser::parse_dpdk(const field& f) {
    std::optional<map_view> m = read_map(f, "dpdk", {"eal", "workers", "workerLcores"});
    if (!m) {
        return;
    }
    for_each_item(*m, "eal", [&](const field& arg, const std::string& path) {
        if (!arg.value.IsScalar()) {
            fail(path, arg.where, fmt::format("expected a string, got {}", kind_name(arg.value)));
            return;
        }
        out_.cfg.eal.push_back(arg.value.Scalar());
    });
    if (auto workers = get_int(*m, "workers", 1, max_workers)) {
        out_.cfg.workers = uint32_t(*workers);
    }
    for_each_item(*m, "workerLcores", [&](const field& lc, const std::string& path) {
        int64_t id = -1;
        if (lc.value.IsScalar()) {
            try {
                id = lc.value.as<int64_t>();
            } catch (const YAML::Exception&) {
            }
        }
        if (id < 1 || id > 1023) {
            fail(path, lc.where, "expected an lcore id 1..1023 (0 is the main lcore)");
            return;
        }
        for (uint32_t seen : out_.cfg.worker_lcores) {
            if (seen == uint32_t(id)) {
                fail(path, lc.where, fmt::format("lcore {} is named twice", id));
                return;
            }
        }
        out_.cfg.worker_lcores.push_back(uint32_t(id));
    });
    if (!out_.cfg.worker_lcores.empty()) {
        if (m->fields.count("workers") == 0) {
            out_.cfg.workers = uint32_t(out_.cfg.worker_lcores.size());
        } else if (out_.cfg.workers != out_.cfg.worker_lcores.size()) {
            fail("dpdk.workerLcores", at(*m, "workerLcores"),
                 fmt::format("names {} lcores for {} workers", out_.cfg.worker_lcores.size(),
                             out_.cfg.workers));
        }
    }
}

void parser::parse_remote_node(const field& f, const std::string& path) {
    std::optional<map_view> m = read_map(f, path, {"name", "ip", "podCIDR", "vtepMAC"});
    if (!m) {
        return;
    }
    remote_node& node = out_.cfg.nodes.back();
    set(node.name, get_name(*m, "name", true, true));
    set(node.ip, get_ip4(*m, "ip"));
    set(node.pod_cidr, get_cidr(*m, "podCIDR", true));
    set(node.vtep_mac, get_mac(*m, "vtepMAC", true));
}

void parser::parse_pod(const field& f, const std::string& path) {
    std::optional<map_view> m = read_map(
        f, path, {"name", "namespace", "ip", "port", "mac", "labels", "containerPorts"});
    if (!m) {
        return;
    }
    pod& p = out_.cfg.pods.back();
    set(p.name, get_name(*m, "name", true, true));
    set(p.ns, get_name(*m, "namespace", false, false));
    set(p.ip, get_ip4(*m, "ip"));
    set(p.port, get_devargs(*m, "port", false));
    if (m->fields.contains("mac")) {
        p.mac = get_mac(*m, "mac", false);
    }
    parse_pod_policy_keys(*m, p);
}

}  // namespace detail

namespace {

// Where the first documents start (at most 3). YAML::LoadAll is not used: in yaml-cpp 0.7
// it loops forever, allocating, on input such as "," (jbeder/yaml-cpp#1040), because the
// parser returns empty documents without consuming anything. Such a stall shows here as two
// documents starting at the same place.
std::vector<YAML::Mark> document_starts(const std::string& text) {
    struct recorder : YAML::EventHandler {
        std::vector<YAML::Mark> starts;
        void OnDocumentStart(const YAML::Mark& m) override { starts.push_back(m); }
        void OnDocumentEnd() override {}
        void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
        void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
        void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                      const std::string&) override {}
        void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                             YAML::EmitterStyle::value) override {}
        void OnSequenceEnd() override {}
        void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                        YAML::EmitterStyle::value) override {}
        void OnMapEnd() override {}
    };
    std::istringstream in(text);
    YAML::Parser parser(in);
    recorder r;
    while (r.starts.size() < 3 && parser.HandleNextDocument(r)) {
    }
    return r.starts;
}

}  // namespace

std::string to_string(const error& e) {
    std::string out = e.path.empty() ? e.message : fmt::format("{}: {}", e.path, e.message);
    if (e.pos.line > 0) {
        return fmt::format("{} ({}:{}:{})", out, e.pos.file, e.pos.line, e.pos.column);
    }
    if (!e.pos.file.empty()) {
        return fmt::format("{} ({})", out, e.pos.file);
    }
    return out;
}

namespace {

parse_result parse_text(const std::string& text, const std::string& name, bool objects_only) {
    parse_result r;
    detail::parser p(name, r, objects_only);
    auto syntax_error = [&](std::string message, const YAML::Mark& m) {
        r.errors.push_back({"", std::move(message), {name, m.line + 1, m.column + 1}});
    };
    try {
        std::vector<YAML::Mark> starts = document_starts(text);
        if (starts.empty()) {
            r.errors.push_back({"", detail::empty_file_message(objects_only), {name, 1, 1}});
            return r;
        }
        for (size_t i = 1; i < starts.size(); ++i) {
            if (starts[i].pos == starts[i - 1].pos) {
                size_t at = size_t(starts[i].pos);
                syntax_error(at < text.size()
                                 ? fmt::format("invalid YAML: unexpected '{}'", text[at])
                                 : std::string("invalid YAML"),
                             starts[i]);
                return r;
            }
        }
        if (starts.size() > 1) {
            syntax_error("the file holds several YAML documents; expected one", starts[1]);
        }
        p.parse_document(YAML::Load(text));
    } catch (const YAML::Exception& e) {
        // Syntax errors, and nesting too deep for the parser.
        syntax_error(fmt::format("invalid YAML: {}", e.msg), e.mark);
        return r;
    } catch (const std::exception& e) {
        r.errors.push_back({"", fmt::format("cannot parse: {}", e.what()), {name, 0, 0}});
        return r;
    }
    if (!objects_only) {
        detail::validate(r.cfg, p.unusable(), r.errors);
    }
    // Read top to bottom, like the file.
    std::stable_sort(r.errors.begin(), r.errors.end(), [](const error& a, const error& b) {
        return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
    });
    return r;
}

}  // namespace

parse_result parse_yaml(const std::string& text, const std::string& name) {
    return parse_text(text, name, false);
}

parse_result parse_objects_yaml(const std::string& text, const std::string& name) {
    return parse_text(text, name, true);
}

std::vector<error> validate(const node_file& cfg) {
    std::vector<error> errors;
    detail::validate(cfg, {}, errors);
    return errors;
}

parse_result load_file(const std::string& path) {
    auto fail = [&](int err) {
        parse_result r;
        r.errors.push_back({"", fmt::format("cannot read {}: {}", path, std::strerror(err)), {}});
        return r;
    };
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) {
        return fail(errno);
    }
    std::string text;
    char buf[65536];
    while (size_t n = std::fread(buf, 1, sizeof buf, f.get())) {
        text.append(buf, n);
    }
    // A directory opens fine and fails here, with EISDIR.
    if (std::ferror(f.get())) {
        return fail(errno);
    }
    return parse_yaml(text, path);
}

std::vector<std::string> default_eal() {
    return {"--no-huge", "-m", "512", "--no-pci"};
}

}  // namespace twill::config
