// twillctl: talks to twilld's control socket. Verbs and kinds are a contract for scripts.
//   twillctl [--socket PATH] apply -f FILE
//   twillctl [--socket PATH] get nodes|pods|neighbours|services|policies|stats [-o json|yaml]
//   twillctl [--socket PATH] get conntrack [--service VIP[:PORT]] [--backend IP[:PORT]]
//                                          [--client IP[:PORT]] [--protocol P] [--limit N]
//   twillctl [--socket PATH] delete node|namespace NAME
//   twillctl [--socket PATH] delete pod|service|endpointslice|networkpolicy [NAMESPACE/]NAME
//                                   [-n NAMESPACE]
//   twillctl [--socket PATH] version | status
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "control/control_socket.h"

namespace {

using nlohmann::json;

constexpr const char* usage =
    "usage: twillctl [--socket PATH] apply -f FILE   (nodes, pods, services, EndpointSlices,\n"
    "                                                 namespaces, NetworkPolicies)\n"
    "       twillctl [--socket PATH] get nodes|pods|neighbours|services|policies|stats [-o json|yaml]\n"
    "       twillctl [--socket PATH] get conntrack [--service VIP[:PORT]] [--backend IP[:PORT]]\n"
    "                [--client IP[:PORT]] [--protocol TCP|UDP|SCTP] [--limit N] [-o json|yaml]\n"
    "       twillctl [--socket PATH] delete node|namespace NAME\n"
    "       twillctl [--socket PATH] delete pod|service|endpointslice|networkpolicy "
    "[NAMESPACE/]NAME [-n NAMESPACE]\n"
    "                (netpol for networkpolicy, ns for namespace)\n"
    "       twillctl [--socket PATH] version | status\n";

int usage_error(const std::string& why) {
    fmt::print(stderr, "twillctl: {}\n{}", why, usage);
    return 2;
}

YAML::Node to_yaml(const json& j) {
    if (j.is_object()) {
        YAML::Node n(YAML::NodeType::Map);
        for (const auto& [k, v] : j.items()) {
            n[k] = to_yaml(v);
        }
        return n;
    }
    if (j.is_array()) {
        YAML::Node n(YAML::NodeType::Sequence);
        for (const auto& v : j) {
            n.push_back(to_yaml(v));
        }
        return n;
    }
    if (j.is_string()) {
        return YAML::Node(j.get<std::string>());
    }
    return YAML::Node(j.dump());
}

std::string cell(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Columns in order; each row's missing keys print as "-".
void print_table(const json& items, const std::vector<std::pair<std::string, std::string>>& cols) {
    std::vector<std::vector<std::string>> rows;
    std::vector<size_t> width;
    std::vector<std::string> head;
    for (const auto& [title, key] : cols) {
        head.push_back(title);
        width.push_back(title.size());
    }
    for (const json& it : items) {
        std::vector<std::string> row;
        for (size_t c = 0; c < cols.size(); ++c) {
            std::string v = it.contains(cols[c].second) ? cell(it[cols[c].second]) : "-";
            v = v.empty() ? "-" : v;
            width[c] = std::max(width[c], v.size());
            row.push_back(v);
        }
        rows.push_back(row);
    }
    auto print_row = [&](const std::vector<std::string>& r) {
        std::string line;
        for (size_t c = 0; c < r.size(); ++c) {
            line += c + 1 < r.size() ? fmt::format("{:<{}}  ", r[c], width[c]) : r[c];
        }
        fmt::print("{}\n", line);
    };
    print_row(head);
    for (const auto& r : rows) {
        print_row(r);
    }
}

void print_human(const std::string& verb, const std::string& kind, const json& reply) {
    if (verb == "version") {
        fmt::print("{}\n", cell(reply["version"]));
    } else if (verb == "status") {
        fmt::print("node {}: running, {} remote nodes, {} local pods ({})\n", cell(reply["node"]),
                   cell(reply["remoteNodes"]), cell(reply["localPods"]), cell(reply["version"]));
    } else if (verb == "delete") {
        fmt::print("{} {} deleted\n", cell(reply["deleted"]["kind"]), cell(reply["deleted"]["name"]));
        if (reply.contains("alsoDeleted")) {
            for (const json& o : reply["alsoDeleted"]) {
                fmt::print("{} {} deleted\n", cell(o["kind"]), cell(o["name"]));
            }
        }
    } else if (verb == "apply") {
        const json& a = reply["applied"];
        fmt::print(
            "applied: {} nodes, {} pods, {} services, {} endpoint slices, {} namespaces, {} "
            "network policies\n",
            cell(a["nodes"]), cell(a["pods"]), cell(a["services"]), cell(a["endpointSlices"]),
            cell(a.value("namespaces", json(0))), cell(a.value("networkPolicies", json(0))));
    } else if (kind == "nodes") {
        print_table(reply["items"], {{"NAME", "name"}, {"IP", "ip"}, {"POD CIDR", "podCIDR"},
                                     {"VTEP MAC", "vtepMAC"}, {"SELF", "self"}});
    } else if (kind == "pods") {
        print_table(reply["items"], {{"NAMESPACE", "namespace"}, {"NAME", "name"}, {"IP", "ip"},
                                     {"LOCAL", "local"}, {"PORT", "portId"}, {"MAC", "mac"},
                                     {"MAC SOURCE", "macSource"}});
    } else if (kind == "neighbours") {
        print_table(reply["items"], {{"IP", "ip"}, {"NODE", "node"}, {"MAC", "mac"}, {"STATE", "state"}});
    } else if (kind == "services") {
        // As `ipvsadm -Ln` prints its table.
        fmt::print("Prot LocalAddress:Port Scheduler Flags\n");
        fmt::print("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
        for (const json& svc : reply["items"]) {
            for (const json& f : svc["frontends"]) {
                std::string flags = f.contains("persistent") ? fmt::format(" persistent {}", cell(f["persistent"])) : "";
                fmt::print("{:<4} {:<21} {}{}\n", cell(f["protocol"]), cell(f["address"]),
                           cell(f["scheduler"]), flags);
                for (const json& b : f["backends"]) {
                    fmt::print("  -> {:<28} {:<7} {:<6} {:<10} {}\n", cell(b["address"]),
                               b.value("local", false) ? "Local" : "Masq", cell(b["weight"]),
                               cell(b["activeConn"]), cell(b["inActConn"]));
                }
            }
        }
    } else if (kind == "policies" || kind == "networkpolicies" || kind == "netpol") {
        // Each policy: what it selects, its rules with what they allowed (connections as
        // they open, and packets judged without one).
        for (const json& p : reply["items"]) {
            std::vector<std::string> pods;
            for (const json& s : p["selects"]) {
                pods.push_back(cell(s["pod"]) + (s.value("local", false) ? "" : " (remote)"));
            }
            fmt::print("{}/{}  podSelector {}  {}  denied {}  cut {}\n", cell(p["namespace"]),
                       cell(p["name"]), cell(p["podSelector"]),
                       fmt::format("{}", fmt::join(p["policyTypes"].get<std::vector<std::string>>(), "+")),
                       cell(p["deniedAtSelectedPods"]), cell(p["connectionsCut"]));
            fmt::print("  selects: {}{}\n", pods.empty() ? std::string("(no pod)") : fmt::format("{}", fmt::join(pods, ", ")),
                       p.value("enforcedHere", false) ? "" : "  (no local pod: enforced at other nodes)");
            for (const char* dir : {"ingress", "egress"}) {
                for (const json& r : p[dir]) {
                    const json& peers = r[std::string(dir) == "ingress" ? "from" : "to"];
                    fmt::print("  {} {} {}  ports {}  allowed {}\n", dir,
                               std::string(dir) == "ingress" ? "from" : "to",
                               fmt::format("{}", fmt::join(peers.get<std::vector<std::string>>(), " | ")),
                               fmt::format("{}", fmt::join(r["ports"].get<std::vector<std::string>>(), ",")),
                               cell(r["allowed"]));
                }
            }
        }
        const json& c = reply["compiled"];
        fmt::print("compiled: generation {}, {} address classes, {} isolated pod directions, {} rules, "
                   "{} prefixes, {} allow lists, in {:.1f} ms ({} compiles); cutEstablished {}\n",
                   cell(c["generation"]), cell(c["addressClasses"]), cell(c["isolatedPodDirections"]),
                   cell(c["rules"]), cell(c["prefixes"]), cell(c["allowLists"]),
                   c["compileMs"].get<double>(), cell(c["compiles"]), cell(c["cutEstablished"]));
    } else if (kind == "conntrack") {
        print_table(reply["items"], {{"PRO", "protocol"}, {"CLIENT", "client"}, {"SERVICE", "service"},
                                     {"BACKEND", "backend"}, {"MASQUERADE", "masquerade"},
                                     {"STATE", "state"}, {"EXPIRES", "expiresIn"}});
        fmt::print("{} of {} connections listed (capacity {})\n", reply["items"].size(),
                   cell(reply["total"]), cell(reply["capacity"]));
    } else if (kind == "stats") {
        const json& s = reply["stats"];
        print_table(s["ports"], {{"PORT", "id"}, {"ROLE", "role"}, {"DEVICE", "device"},
                                 {"RX PKTS", "rxPackets"}, {"RX BYTES", "rxBytes"},
                                 {"TX PKTS", "txPackets"}, {"TX BYTES", "txBytes"},
                                 {"TX FAIL", "txFailed"}});
        fmt::print("\nencapsulated {}  decapsulated {}  delivered locally {}\n",
                   cell(s["encapsulated"]), cell(s["decapsulated"]), cell(s["deliveredLocal"]));
        if (s.contains("conntrack")) {
            const json& c = s["conntrack"];
            fmt::print("connections: created {}  translated packets {}  expired {}  untracked (table full) {}  "
                       "resets sent {}\n",
                       cell(c["created"]), cell(c["hits"]), cell(c["expired"]), cell(c["untrackedFull"]),
                       cell(c["resetsSent"]));
        }
        if (s.contains("policy")) {
            fmt::print("NetworkPolicy: connections tracked {}  related ICMP errors let through {}\n",
                       cell(s["policy"]["tracked"]), cell(s["policy"]["relatedIcmp"]));
        }
        bool any = false;
        for (const auto& [name, n] : s["drops"].items()) {
            if (n.get<uint64_t>() != 0) {
                fmt::print("{}drop {}: {}\n", any ? "" : "\n", name, cell(n));
                any = true;
            }
        }
        if (!any) {
            fmt::print("\nno drops\n");
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string socket_path = twill::default_socket_path;
    std::string output = "table";
    std::string ns = "default";
    std::string file;
    std::vector<std::string> words;
    json filters = json::object();
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> std::string {
            return i + 1 < args.size() ? args[++i] : std::string();
        };
        if (a == "--socket") {
            socket_path = value();
        } else if (a == "-o" || a == "--output") {
            output = value();
        } else if (a == "-f" || a == "--filename") {
            file = value();
        } else if (a == "-n" || a == "--namespace") {
            ns = value();
        } else if (a == "--service" || a == "--backend" || a == "--client" || a == "--protocol") {
            filters[a.substr(2)] = value();
        } else if (a == "--limit") {
            const std::string v = value();
            if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
                return usage_error(fmt::format("--limit takes a count, got '{}'", v));
            }
            filters["limit"] = std::stoul(v);
        } else if (a == "-h" || a == "--help") {
            fmt::print("{}", usage);
            return 0;
        } else {
            words.push_back(a);
        }
    }
    if (output != "table" && output != "json" && output != "yaml") {
        return usage_error(fmt::format("unknown output '{}': table, json or yaml", output));
    }
    if (words.empty()) {
        return usage_error("no verb");
    }
    const std::string verb = words[0];
    json req = {{"verb", verb}};
    std::string kind;
    if (verb == "apply") {
        if (words.size() != 1 || file.empty()) {
            return usage_error("apply needs -f FILE");
        }
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            fmt::print(stderr, "twillctl: cannot read {}: {}\n", file, std::strerror(errno));
            return 2;
        }
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        req["yaml"] = text;
        req["source"] = file;
    } else if (verb == "get") {
        if (words.size() != 2) {
            return usage_error("get needs one kind: nodes, pods, neighbours, services, policies, conntrack or stats");
        }
        kind = words[1];
        req["kind"] = kind;
        if (!filters.empty()) {
            if (kind != "conntrack") {
                return usage_error("--service, --backend, --client, --protocol and --limit are for get conntrack");
            }
            req["filters"] = filters;
        }
    } else if (verb == "delete") {
        if (words.size() != 3) {
            return usage_error(
                "delete needs a kind (node, pod, service, endpointslice, networkpolicy or "
                "namespace) and a name");
        }
        // kubectl's short names.
        const std::string kind_word = words[1] == "netpol" ? "networkpolicy"
                                      : words[1] == "ns"   ? "namespace"
                                                           : words[1];
        // NAMESPACE/NAME, as kubectl prints objects; names never hold a '/'.
        std::string name = words[2];
        if (size_t slash = name.find('/');
            slash != std::string::npos && kind_word != "node" && kind_word != "namespace") {
            ns = name.substr(0, slash);
            name = name.substr(slash + 1);
        }
        req["kind"] = kind_word;
        req["name"] = name;
        req["namespace"] = ns;
    } else if (verb != "version" && verb != "status") {
        return usage_error(fmt::format("unknown verb '{}'", verb));
    } else if (words.size() != 1) {
        return usage_error(fmt::format("{} takes no arguments", verb));
    }

    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket sock(io);
    boost::system::error_code ec;
    sock.connect(boost::asio::local::stream_protocol::endpoint(socket_path), ec);
    if (ec) {
        fmt::print(stderr, "twillctl: cannot reach twilld at {}: {} (is it running? --socket PATH)\n",
                   socket_path, ec.message());
        return 3;
    }
    std::string line = req.dump() + "\n";
    boost::asio::write(sock, boost::asio::buffer(line), ec);
    boost::asio::streambuf buf;
    size_t n = ec ? 0 : boost::asio::read_until(sock, buf, '\n', ec);
    if (ec) {
        fmt::print(stderr, "twillctl: {}: {}\n", socket_path, ec.message());
        return 3;
    }
    std::string text(boost::asio::buffers_begin(buf.data()), boost::asio::buffers_begin(buf.data()) + long(n));
    json reply = json::parse(text, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) {
        fmt::print(stderr, "twillctl: twilld sent something that is not JSON\n");
        return 3;
    }
    if (!reply.value("ok", false)) {
        const json& e = reply["error"];
        fmt::print(stderr, "twillctl: {}: {}\n", cell(e["code"]), cell(e["message"]));
        for (const json& d : e["details"]) {
            fmt::print(stderr, "  {}\n", cell(d));
        }
        return 1;
    }
    if (output == "json") {
        fmt::print("{}\n", reply.dump(2));
    } else if (output == "yaml") {
        YAML::Emitter out;
        out << to_yaml(reply);
        fmt::print("{}\n", out.c_str());
    } else {
        print_human(verb, kind, reply);
    }
    return 0;
}
