// The node file: examples parse, every rule is enforced with a precise path and position,
// and no input makes the parser throw.
#include <algorithm>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "control/config.h"

using namespace twill;
using namespace twill::config;

namespace {

// A valid file whose values tests replace; line numbers below refer to this text.
const std::string base_yaml = R"(node:
  name: n1
  ip: 198.18.0.2
  podCIDR: 172.25.2.0/24
cluster:
  clusterCIDR: 172.25.0.0/16
ports:
  underlay: net_null0
)";

parse_result parse(const std::string& text) {
    return parse_yaml(text, "t.yaml");
}

// base_yaml with the first `from` replaced by `to`.
std::string edit(const std::string& from, const std::string& to) {
    std::string s = base_yaml;
    size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
}

std::string all_errors(const parse_result& r) {
    std::string out;
    for (const error& e : r.errors) {
        out += to_string(e) + "\n";
    }
    return out;
}

// Requires an error at `path` whose message contains `fragment`, at line:column.
void require_error(const parse_result& r, const std::string& path, const std::string& fragment,
                   int line, int column) {
    INFO("errors:\n" << all_errors(r));
    INFO("expected " << path << ": ..." << fragment << "... at " << line << ":" << column);
    auto it = std::find_if(r.errors.begin(), r.errors.end(), [&](const error& e) {
        return e.path == path && e.message.find(fragment) != std::string::npos;
    });
    REQUIRE(it != r.errors.end());
    CHECK(it->pos.file == "t.yaml");
    CHECK(it->pos.line == line);
    CHECK(it->pos.column == column);
}

// Requires exactly one error, as described.
void require_only_error(const parse_result& r, const std::string& path, const std::string& fragment,
                        int line, int column) {
    require_error(r, path, fragment, line, column);
    INFO("errors:\n" << all_errors(r));
    CHECK(r.errors.size() == 1);
}

}  // namespace

TEST_CASE("example configs parse", "[config]") {
    SECTION("lab-twill.yaml") {
        parse_result r = load_file(TWILL_CONFIG_DIR "/lab-twill.yaml");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        const node_file& c = r.cfg;
        CHECK(c.node.name == "twill-b");
        CHECK(c.node.ip == ip4_addr::from_octets(198, 18, 0, 2));
        CHECK(c.node.pod_cidr == ip4_prefix{ip4_addr::from_octets(172, 25, 2, 0), 24});
        CHECK(c.node.vtep_mac == *parse_mac("0e:00:00:00:02:00"));
        CHECK(c.cluster_cidr == *parse_cidr("172.25.0.0/16"));
        CHECK(c.service_cidr == parse_cidr("10.96.0.0/12"));
        CHECK(c.vxlan.vni == 1);
        CHECK(c.vxlan.port == 8472);
        CHECK(c.vxlan.mtu == 1450);
        CHECK(c.eal == default_eal());
        CHECK(c.underlay_port == "net_af_packet0,iface=ul0");
        REQUIRE(c.nodes.size() == 1);
        CHECK(c.nodes[0].name == "kernel-a");
        CHECK(c.nodes[0].vtep_mac == *parse_mac("0e:00:00:00:01:00"));
        REQUIRE(c.pods.size() == 3);
        CHECK(c.pods[0].port == "net_af_packet1,iface=pb1");
        CHECK_FALSE(c.pods[0].mac.has_value());
        CHECK(c.pods[1].mac == parse_mac("0a:00:00:00:02:03"));
        CHECK(c.pods[2].name == "pod-a1");
        CHECK(c.pods[2].ns == "default");
        CHECK(c.pods[2].port.empty());
        CHECK(c.positions.at("pods[1].mac").line > 0);
    }
    SECTION("minimal.yaml") {
        parse_result r = load_file(TWILL_CONFIG_DIR "/minimal.yaml");
        INFO(all_errors(r));
        REQUIRE(r.ok());
    }
}

TEST_CASE("defaults are applied", "[config]") {
    parse_result r = parse(base_yaml);
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK(r.cfg.vxlan.vni == 1);
    CHECK(r.cfg.vxlan.port == 8472);
    CHECK(r.cfg.vxlan.mtu == 1450);
    CHECK(r.cfg.eal.empty());
    CHECK_FALSE(r.cfg.service_cidr.has_value());
    CHECK(r.cfg.nodes.empty());
    CHECK(r.cfg.pods.empty());
    CHECK(r.cfg.node.vtep_mac == generated_vtep_mac("n1"));

    parse_result p = parse(base_yaml + "pods:\n  - {name: a, ip: 172.25.1.5}\n");
    REQUIRE(p.ok());
    CHECK(p.cfg.pods[0].ns == "default");
    CHECK(default_eal() == std::vector<std::string>{"--no-huge", "-m", "512", "--no-pci"});
}

TEST_CASE("positions are recorded 1-based", "[config]") {
    parse_result r = parse(base_yaml + "pods:\n  - name: a\n    ip: 172.25.1.5\n");
    REQUIRE(r.ok());
    const auto& pos = r.cfg.positions;
    CHECK(pos.at("node.ip").line == 3);
    CHECK(pos.at("node.ip").column == 7);
    CHECK(pos.at("node.ip").file == "t.yaml");
    CHECK(pos.at("cluster.clusterCIDR").line == 6);
    CHECK(pos.at("pods[0]").line == 10);
    CHECK(pos.at("pods[0].ip").line == 11);
    CHECK(pos.at("pods[0].ip").column == 9);
}

TEST_CASE("generated vtepMAC is deterministic and locally administered", "[config]") {
    mac_addr a = generated_vtep_mac("twill-b");
    CHECK(a == generated_vtep_mac("twill-b"));
    CHECK(a != generated_vtep_mac("twill-c"));
    CHECK(a.bytes[0] == 0x02);  // locally administered, unicast
    CHECK_FALSE(a.is_multicast());
    CHECK_FALSE(a.is_zero());
}

TEST_CASE("error format", "[config]") {
    CHECK(to_string({"pods[1].ip", "bad", {"lab.yaml", 31, 9}}) ==
          "pods[1].ip: bad (lab.yaml:31:9)");
    CHECK(to_string({"", "bad", {"lab.yaml", 2, 3}}) == "bad (lab.yaml:2:3)");
    CHECK(to_string({"", "bad", {}}) == "bad");
}

TEST_CASE("address syntax is strict", "[config]") {
    CHECK(parse_ip4("0.0.0.0") == ip4_addr{0});
    CHECK(parse_ip4("255.255.255.255") == ip4_addr{0xffffffff});
    CHECK(parse_ip4("10.1.2.3") == ip4_addr::from_octets(10, 1, 2, 3));
    for (const char* bad :
         {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "+1.2.3.4", "1.2.3.4 ", " 1.2.3.4", "01.2.3.4",
          "1..2.3", "1.2.3.4/8", "a.b.c.d", "1.2.3.-4", "1234.1.1.1"}) {
        INFO(bad);
        CHECK_FALSE(parse_ip4(bad).has_value());
    }
    CHECK(parse_cidr("0.0.0.0/0") == ip4_prefix{{0}, 0});
    CHECK(parse_cidr("172.25.3.1/24") == ip4_prefix{ip4_addr::from_octets(172, 25, 3, 1), 24});
    for (const char* bad :
         {"1.2.3.0", "1.2.3.0/", "1.2.3.0/33", "1.2.3.0/08", "1.2.3.0/-1", "1.2.3.0/24x", "/24"}) {
        INFO(bad);
        CHECK_FALSE(parse_cidr(bad).has_value());
    }
    CHECK(parse_mac("0A:bc:00:00:00:01") == mac_addr{{0x0a, 0xbc, 0, 0, 0, 1}});
    for (const char* bad : {"", "0a:bc:00:00:00", "0a:bc:00:00:00:01:02", "0a-bc-00-00-00-01",
                            "0a:bc:00:00:00:0g", "0abc.0000.0001"}) {
        INFO(bad);
        CHECK_FALSE(parse_mac(bad).has_value());
    }
    CHECK(format_mac(*parse_mac("0A:BC:00:00:00:01")) == "0a:bc:00:00:00:01");
    CHECK(format_prefix(*parse_cidr("10.96.0.0/12")) == "10.96.0.0/12");
}

TEST_CASE("syntax and kinds", "[config]") {
    SECTION("unknown keys") {
        require_only_error(parse(base_yaml + "foo: 1\n"), "foo", "unknown key 'foo'", 9, 1);
        require_only_error(parse(edit("  ip: 198", "  gateway: 1.2.3.4\n  ip: 198")),
                           "node.gateway", "expected one of: name, ip, podCIDR, vtepMAC", 3, 3);
        parse_result typo = parse(edit("podCIDR", "podCidr"));
        require_error(typo, "node.podCidr", "did you mean 'podCIDR'?", 4, 3);
        require_error(typo, "node.podCIDR", "required key is missing", 2, 3);
        CHECK(typo.errors.size() == 2);
        // Too short to guess from: no hint.
        require_only_error(parse(edit("  ip: 198", "  x: 1\n  ip: 198")), "node.x",
                           "unknown key 'x'; expected one of", 3, 3);
        require_only_error(parse(base_yaml + "pods:\n  - {name: a, ip: 172.25.1.5, labels: {}}\n"),
                           "pods[0].labels", "unknown key 'labels'", 10, 31);
    }
    SECTION("missing required keys point at the enclosing map") {
        require_only_error(parse(edit("  ip: 198.18.0.2\n", "")), "node.ip",
                           "required key is missing", 2, 3);
        require_only_error(parse(edit("ports:\n  underlay: net_null0\n", "")), "ports",
                           "required key is missing", 1, 1);
        parse_result r = parse(base_yaml + "nodes:\n  - {name: x}\n");
        require_error(r, "nodes[0].ip", "required key is missing", 10, 5);
        require_error(r, "nodes[0].podCIDR", "required key is missing", 10, 5);
        require_error(r, "nodes[0].vtepMAC", "required key is missing", 10, 5);
        CHECK(r.errors.size() == 3);
    }
    SECTION("wrong kinds") {
        require_only_error(parse(edit("name: n1", "name: {a: 1}")), "node.name",
                           "expected a string, got a map", 2, 9);
        require_only_error(parse(edit("name: n1", "name:")), "node.name",
                           "expected a string, got no value", 2, 3);
        require_only_error(parse(edit("ports:\n  underlay: net_null0\n", "ports:\n")), "ports",
                           "expected a map, got no value", 7, 1);
        require_only_error(parse(base_yaml + "pods: {name: a}\n"), "pods",
                           "expected a list, got a map", 9, 7);
        require_only_error(parse(base_yaml + "dpdk: {eal: --no-huge}\n"), "dpdk.eal",
                           "expected a list, got a scalar", 9, 13);
        require_only_error(parse(base_yaml + "dpdk: {eal: [-m, [1]]}\n"), "dpdk.eal[1]",
                           "expected a string, got a list", 9, 18);
        require_only_error(parse(base_yaml + "nodes: [1]\n"), "nodes[0]",
                           "expected a map, got a scalar", 9, 9);
        require_only_error(parse("[1, 2]\n"), "", "expected a map, got a list", 1, 1);
        require_only_error(parse(base_yaml + "? [a]\n: 1\n"), "", "a key must be a plain string", 9,
                           3);
    }
    SECTION("duplicate keys") {
        require_only_error(parse(edit("  ip: 198.18.0.2\n", "  ip: 198.18.0.2\n  ip: 1.1.1.1\n")),
                           "node.ip", "duplicate key 'ip' (first at line 3)", 4, 3);
    }
    SECTION("empty file and several documents") {
        for (const char* text : {"", "# only a comment\n", "---\n"}) {
            parse_result r = parse(text);
            REQUIRE(r.errors.size() == 1);
            CHECK(r.errors[0].message.find("the file is empty") != std::string::npos);
        }
        // Points at the "---" that starts the second document.
        require_only_error(parse(base_yaml + "---\nnode: {}\n"), "", "several YAML documents", 9,
                           1);
    }
    SECTION("input that stalls yaml-cpp 0.7's LoadAll is a syntax error") {
        require_only_error(parse(","), "", "invalid YAML: unexpected ','", 1, 1);
    }
    SECTION("YAML syntax error has a position") {
        parse_result r = parse(edit("ip: 198.18.0.2", "ip: [198.18.0.2"));
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].path.empty());
        CHECK(r.errors[0].message.find("invalid YAML") == 0);
        CHECK(r.errors[0].pos.line >= 3);
        CHECK(r.errors[0].pos.column >= 1);
        CHECK(to_string(r.errors[0]).find("(t.yaml:") != std::string::npos);

        parse_result f = load_file(TWILL_TEST_DATA "/bad/syntax.yaml");
        REQUIRE(f.errors.size() == 1);
        CHECK(f.errors[0].pos.line == 4);
    }
    SECTION("unreadable file") {
        parse_result r = load_file(TWILL_TEST_DATA "/bad/does-not-exist.yaml");
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].message.find("No such file or directory") != std::string::npos);
        parse_result d = load_file(TWILL_TEST_DATA);
        REQUIRE(d.errors.size() == 1);
        CHECK(d.errors[0].message.find("Is a directory") != std::string::npos);
    }
}

TEST_CASE("values", "[config]") {
    SECTION("names") {
        require_only_error(parse(edit("name: n1", "name: Node_1")), "node.name",
                           "'Node_1' is not a valid name", 2, 9);
        require_only_error(parse(edit("name: n1", "name: -n1")), "node.name", "not a valid", 2, 9);
        require_only_error(parse(edit("name: n1", "name: " + std::string(254, 'a'))), "node.name",
                           "at most 253", 2, 9);
        require_only_error(parse(base_yaml + "pods: [{name: a, namespace: a.b, ip: 172.25.1.5}]\n"),
                           "pods[0].namespace", "at most 63", 9, 29);
    }
    SECTION("addresses") {
        require_only_error(parse(edit("198.18.0.2", "198.18.0.256")), "node.ip",
                           "'198.18.0.256' is not an IPv4 address", 3, 7);
        require_only_error(parse(edit("172.25.2.0/24", "172.25.2.0/33")), "node.podCIDR",
                           "is not a CIDR", 4, 12);
        require_only_error(parse(edit("172.25.2.0/24", "172.25.3.1/24")), "node.podCIDR",
                           "172.25.3.1/24 has host bits set; did you mean 172.25.3.0/24?", 4, 12);
    }
    SECTION("MACs") {
        auto with_mac = [](const std::string& mac) {
            return parse(edit("  podCIDR", "  vtepMAC: \"" + mac + "\"\n  podCIDR"));
        };
        require_only_error(with_mac("0e:00:00:00:02"), "node.vtepMAC", "is not a MAC address", 4,
                           12);
        require_only_error(with_mac("01:00:5e:00:00:01"), "node.vtepMAC", "multicast", 4, 12);
        require_only_error(with_mac("ff:ff:ff:ff:ff:ff"), "node.vtepMAC", "broadcast", 4, 12);
        require_only_error(with_mac("00:00:00:00:00:00"), "node.vtepMAC", "all-zero", 4, 12);
        parse_result ok = with_mac("0E:00:00:00:02:00");
        REQUIRE(ok.ok());
        CHECK(ok.cfg.node.vtep_mac == mac_addr{{0x0e, 0, 0, 0, 2, 0}});
    }
    SECTION("integers") {
        auto with_vxlan = [](const std::string& v) {
            return parse(edit("ports:", "  vxlan: {" + v + "}\nports:"));
        };
        require_only_error(with_vxlan("port: 70000"), "cluster.vxlan.port",
                           "70000 is out of range 1..65535", 7, 17);
        require_only_error(with_vxlan("port: 0"), "cluster.vxlan.port", "out of range", 7, 17);
        require_only_error(with_vxlan("vni: 16777216"), "cluster.vxlan.vni",
                           "16777216 is out of range 0..16777215", 7, 16);
        require_only_error(with_vxlan("mtu: 67"), "cluster.vxlan.mtu", "out of range 68..1984", 7,
                           16);
        require_only_error(with_vxlan("mtu: 9001"), "cluster.vxlan.mtu", "out of range", 7, 16);
        require_only_error(with_vxlan("mtu: -1"), "cluster.vxlan.mtu", "-1 is out of range", 7, 16);
        require_only_error(with_vxlan("mtu: 99999999999999999999999"), "cluster.vxlan.mtu",
                           "99999999999999999999999 is out of range", 7, 16);
        for (const char* bad : {"1.5", "0x10", "+1", "1e3", "abc", "\"\""}) {
            INFO(bad);
            require_only_error(with_vxlan(std::string("mtu: ") + bad), "cluster.vxlan.mtu",
                               "is not an integer", 7, 16);
        }
        for (const char* bad : {"yes", "on", "1", "True"}) {
            INFO(bad);
            require_only_error(with_vxlan(std::string("knownSourcesOnly: ") + bad),
                               "cluster.vxlan.knownSourcesOnly", "is not a boolean: write true or false",
                               7, 29);
        }
        CHECK(with_vxlan("mtu: 1450").cfg.vxlan.known_sources_only);
        CHECK_FALSE(with_vxlan("knownSourcesOnly: false").cfg.vxlan.known_sources_only);
        require_only_error(with_vxlan("mtu: 1985"), "cluster.vxlan.mtu", "out of range 68..1984", 7, 16);
        parse_result ok = with_vxlan("vni: 0, port: 4789, mtu: 1984");
        REQUIRE(ok.ok());
        CHECK(ok.cfg.vxlan.vni == 0);
        CHECK(ok.cfg.vxlan.port == 4789);
        CHECK(ok.cfg.vxlan.mtu == 1984);
    }
    SECTION("dpdk") {
        parse_result ok = parse(base_yaml + "dpdk: {eal: [-l, \"0\"], workers: 1}\n");
        REQUIRE(ok.ok());
        CHECK(ok.cfg.eal == std::vector<std::string>{"-l", "0"});
        require_only_error(parse(base_yaml + "dpdk: {workers: 2}\n"), "dpdk.workers",
                           "only 1 worker is supported in this version", 9, 17);
        require_only_error(parse(base_yaml + "dpdk: {workers: two}\n"), "dpdk.workers",
                           "'two' is not an integer", 9, 17);
    }
    SECTION("devargs") {
        require_only_error(parse(edit("underlay: net_null0", "underlay: \"\"")), "ports.underlay",
                           "empty string", 8, 13);
    }
}

TEST_CASE("address plan", "[config]") {
    SECTION("clusterCIDR and serviceCIDR") {
        parse_result r = parse(edit("172.25.0.0/16", "160.0.0.0/3"));
        require_error(r, "cluster.clusterCIDR", "the prefix length must be at least 8", 6, 16);
        require_only_error(
            parse(edit("  clusterCIDR: 172.25.0.0/16\n",
                       "  clusterCIDR: 172.25.0.0/16\n  serviceCIDR: 172.0.0.0/8\n")),
            "cluster.serviceCIDR", "overlaps cluster.clusterCIDR 172.25.0.0/16", 7, 16);
    }
    SECTION("node.podCIDR") {
        require_only_error(parse(edit("172.25.2.0/24", "10.0.2.0/24")), "node.podCIDR",
                           "10.0.2.0/24 is outside cluster.clusterCIDR 172.25.0.0/16", 4, 12);
        std::string big = edit("172.25.0.0/16", "172.0.0.0/8");
        big.replace(big.find("172.25.2.0/24"), 13, "172.24.0.0/15");
        require_only_error(parse(big), "node.podCIDR", "the prefix length must be at least 16", 4,
                           12);
    }
    SECTION("slice size relative to clusterCIDR") {
        std::string text = edit("172.25.0.0/16", "10.0.0.0/8");
        text.replace(text.find("172.25.2.0/24"), 13, "10.0.2.0/29");
        require_only_error(parse(text), "node.podCIDR",
                           "slices of cluster.clusterCIDR 10.0.0.0/8 must be /28 or larger", 4, 12);
        text = edit("172.25.0.0/16", "10.0.0.0/8");
        text.replace(text.find("172.25.2.0/24"), 13, "10.0.2.0/28");
        CHECK(parse(text).ok());
    }
    SECTION("remote slices") {
        auto with_node = [](const std::string& cidr) {
            return parse(base_yaml + "nodes:\n  - {name: a, ip: 198.18.0.1, podCIDR: " + cidr +
                         ", vtepMAC: 0e:00:00:00:01:00}\n");
        };
        require_only_error(with_node("172.25.2.128/25"), "nodes[0].podCIDR",
                           "172.25.2.128/25 overlaps node.podCIDR 172.25.2.0/24", 10, 40);
        require_only_error(with_node("172.25.0.0/16"), "nodes[0].podCIDR", "overlaps node.podCIDR",
                           10, 40);
        require_only_error(with_node("172.26.1.0/24"), "nodes[0].podCIDR",
                           "outside cluster.clusterCIDR", 10, 40);
        CHECK(with_node("172.25.1.0/24").ok());
        parse_result two = parse(
            base_yaml +
            "nodes:\n"
            "  - {name: a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: 0e:00:00:00:01:00}\n"
            "  - {name: c, ip: 198.18.0.3, podCIDR: 172.25.1.0/25, vtepMAC: 0e:00:00:00:03:00}\n");
        require_only_error(two, "nodes[1].podCIDR", "overlaps nodes[0].podCIDR 172.25.1.0/24", 11,
                           40);
    }
}

TEST_CASE("uniqueness", "[config]") {
    parse_result r = load_file(TWILL_TEST_DATA "/bad/duplicates.yaml");
    auto has = [&](const std::string& path, const std::string& fragment, int line, int column) {
        INFO(all_errors(r));
        auto it = std::find_if(r.errors.begin(), r.errors.end(), [&](const error& e) {
            return e.path == path && e.message.find(fragment) != std::string::npos &&
                   e.pos.line == line && e.pos.column == column;
        });
        CHECK(it != r.errors.end());
    };
    has("nodes[0].name", "duplicate node name 'twill-b' (also node.name)", 12, 12);
    has("nodes[0].ip", "duplicate node IP 198.18.0.2 (also node.ip)", 12, 25);
    has("nodes[0].vtepMAC", "duplicate MAC 0e:00:00:00:02:00 (also node.vtepMAC)", 12, 70);
    has("pods[0].port", "(also ports.underlay)", 14, 39);
    has("pods[1].name", "duplicate pod default/web (also pods[0].name)", 15, 12);
    has("pods[1].ip", "duplicate pod IP 172.25.2.2 (also pods[0].ip)", 15, 21);
    has("pods[2].port", "(also pods[1].port)", 16, 38);
    has("pods[2].mac", "duplicate MAC 0e:00:00:00:02:00 (also node.vtepMAC)", 16, 71);
    CHECK(r.errors.size() == 8);

    // Same name in another namespace is another pod.
    CHECK(parse(base_yaml + "pods:\n  - {name: a, ip: 172.25.1.5}\n"
                            "  - {name: a, namespace: b, ip: 172.25.1.6}\n")
              .ok());
}

TEST_CASE("pod placement", "[config]") {
    auto with_pod = [](const std::string& fields) {
        return parse(base_yaml + "pods:\n  - {name: p, " + fields + "}\n");
    };
    CHECK(with_pod("ip: 172.25.2.2, port: net_null1").ok());
    CHECK(with_pod("ip: 172.25.2.254, port: net_null1").ok());
    CHECK(with_pod("ip: 172.25.7.1").ok());
    require_only_error(with_pod("ip: 172.25.9.4, port: net_null1"), "pods[0].ip",
                       "172.25.9.4 is outside node.podCIDR 172.25.2.0/24", 10, 19);
    require_only_error(with_pod("ip: 172.25.2.0, port: net_null1"), "pods[0].ip",
                       "network address of node.podCIDR", 10, 19);
    require_only_error(with_pod("ip: 172.25.2.255, port: net_null1"), "pods[0].ip",
                       "broadcast address of node.podCIDR", 10, 19);
    require_only_error(with_pod("ip: 10.1.1.1"), "pods[0].ip",
                       "10.1.1.1 is outside cluster.clusterCIDR 172.25.0.0/16", 10, 19);
    require_only_error(with_pod("ip: 172.25.2.9"), "pods[0].ip", "needs a 'port'", 10, 19);
    require_only_error(with_pod("ip: 172.25.2.2, port: net_null0"), "pods[0].port",
                       "duplicate port 'net_null0' (also ports.underlay)", 10, 37);
}

TEST_CASE("one mistake gives one error", "[config]") {
    // A broken value must not also trip the checks that use it.
    require_only_error(parse(edit("172.25.0.0/16", "172.25.0.0/99")), "cluster.clusterCIDR",
                       "is not a CIDR", 6, 16);
    require_only_error(parse(base_yaml + "pods: [{name: p, ip: 172.25.2.300, port: x}]\n"),
                       "pods[0].ip", "not an IPv4 address", 9, 22);
    require_only_error(parse(base_yaml + "pods: [{name: p, ip: 172.25.2.3, port: [x]}]\n"),
                       "pods[0].port", "expected a string", 9, 40);
}

TEST_CASE("every error in a file is reported", "[config]") {
    parse_result r = load_file(TWILL_TEST_DATA "/bad/many-errors.yaml");
    INFO(all_errors(r));
    REQUIRE(r.errors.size() == 5);
    const std::string file = TWILL_TEST_DATA "/bad/many-errors.yaml";
    CHECK(to_string(r.errors[0]) ==
          "node.gatway: unknown key 'gatway'; expected one of: name, ip, podCIDR, vtepMAC (" +
              file + ":6:3)");
    CHECK(to_string(r.errors[1]) ==
          "cluster.vxlan.vni: 16777216 is out of range 0..16777215 (" + file + ":9:16)");
    CHECK(to_string(r.errors[2]) ==
          "nodes[0].podCIDR: 172.25.2.0/25 overlaps node.podCIDR 172.25.2.0/24 (" + file +
              ":13:47)");
    CHECK(to_string(r.errors[3]) ==
          "pods[0].ip: 172.25.9.4 is outside node.podCIDR 172.25.2.0/24 (" + file + ":15:24)");
    CHECK(to_string(r.errors[4]) ==
          "pods[1].mac: duplicate MAC 0e:00:00:00:01:00 (also nodes[0].vtepMAC) (" + file +
              ":16:75)");

    // Every bad example fails, each with several errors.
    for (const char* name : {"addresses", "duplicates", "kinds", "many-errors"}) {
        INFO(name);
        parse_result b = load_file(std::string(TWILL_TEST_DATA "/bad/") + name + ".yaml");
        CHECK(b.errors.size() >= 5);
        for (const error& e : b.errors) {
            CHECK(e.pos.line > 0);
        }
    }
}

TEST_CASE("no input makes the parser throw", "[config]") {
    std::vector<std::string> inputs = {
        "[",
        "{",
        "]",
        "}",
        ":",
        "- - -",
        "&a [*a]",
        "*unknown",
        "!!binary x",
        "\t\tx: 1",
        "node: &n {name: a}\ncluster: *n\n",
        ",",
        "a: 1\n,",
        "- !+(.,.)",
        "{# ke\ny{:",
        "? ? ?",
        "%YAML 9.9\n---\nx",
        "\xff\xfe\x00\x01",
        std::string(100000, '['),
        std::string(100000, '{'),
        std::string(20000, '-') + " x",
        "node: {name: a, ip: 1.2.3.4, podCIDR: 1.2.3.0/24}\ncluster: []\nports: 1\n"};
    std::mt19937 rng(42);
    const std::string alphabet = "abcdef0123456789:-[]{},.?*&!|>'\"#/ \n\t";
    for (int i = 0; i < 300; ++i) {
        std::string s(rng() % 200, '\0');
        for (char& c : s) {
            c = i % 2 ? char(rng()) : alphabet[rng() % alphabet.size()];
        }
        inputs.push_back(s);
    }
    // Mutations of a valid file reach deeper than random bytes.
    for (int i = 0; i < 300; ++i) {
        std::string s = base_yaml;
        for (int k = 0; k < 3; ++k) {
            s[rng() % s.size()] = alphabet[rng() % alphabet.size()];
        }
        inputs.push_back(s);
    }
    for (const std::string& in : inputs) {
        parse_result r;
        REQUIRE_NOTHROW(r = parse_yaml(in, "fuzz.yaml"));
        for (const error& e : r.errors) {
            CHECK_FALSE(e.message.empty());
        }
    }
}
