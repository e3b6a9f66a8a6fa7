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

ip4_addr ip4(const char* s) {
    std::optional<ip4_addr> a = parse_ip4(s);
    REQUIRE(a.has_value());
    return *a;
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


// Line and column (1-based) of the first `marker` in `text` after the node's settings.
std::pair<int, int> where(const std::string& text, const std::string& marker) {
    size_t settings_end = text.find("underlay: net_null0\n");
    size_t at = text.find(marker, settings_end == std::string::npos ? 0 : settings_end);
    REQUIRE(at != std::string::npos);
    size_t line_start = text.rfind('\n', at);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    return {int(std::count(text.begin(), text.begin() + long(at), '\n')) + 1,
            int(at - line_start) + 1};
}

// Requires an error at `path` containing `fragment`, placed at the first `marker` of `text`.
void require_error_at(const parse_result& r, const std::string& text, const std::string& path,
                      const std::string& fragment, const std::string& marker) {
    auto [line, column] = where(text, marker);
    require_error(r, path, fragment, line, column);
}

// base_yaml with cluster.serviceCIDR 10.96.0.0/12, then `rest` (from line 10).
std::string with_service_cidr(const std::string& rest) {
    return edit("  clusterCIDR: 172.25.0.0/16\n",
                "  clusterCIDR: 172.25.0.0/16\n  serviceCIDR: 10.96.0.0/12\n") +
           rest;
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
    SECTION("services.yaml: both forms") {
        parse_result r = load_file(TWILL_CONFIG_DIR "/services.yaml");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        const node_file& c = r.cfg;
        CHECK(c.conntrack == conntrack_config{262144, 900, 120, 300});
        REQUIRE(c.services.size() == 5);
        REQUIRE(c.service_origins.size() == 5);
        const service& web = c.services[0];
        CHECK(web.name == "web");
        CHECK(web.ns == "default");
        CHECK(web.node_port);
        CHECK(web.cluster_ip == ip4("10.96.0.80"));
        CHECK(web.external_ips == std::vector<ip4_addr>{ip4("198.18.0.100")});
        REQUIRE(web.ports.size() == 2);
        CHECK(web.ports[0] == service_port{"http", proto_tcp, 80, 8080, 30080});
        CHECK(web.ports[1] == service_port{"https", proto_tcp, 443, 8443, 30443});
        CHECK(web.sched == scheduler::mh);
        CHECK_FALSE(web.affinity_client_ip);
        CHECK_FALSE(web.local_traffic);
        REQUIRE(web.endpoints.size() == 2);
        CHECK(web.endpoints[1] == endpoint{ip4("172.25.2.6"), 0, 2, true, false});
        CHECK_FALSE(c.service_origins[0].manifest);
        CHECK(c.service_origins[0].path == "services[0]");

        const service& cache = c.services[1];
        CHECK_FALSE(cache.node_port);
        CHECK(cache.ports[0] == service_port{"", proto_tcp, 6379, 0, 0});
        CHECK(cache.sched == scheduler::wrr);
        CHECK(cache.affinity_client_ip);
        CHECK(cache.affinity_timeout == 600);
        CHECK(cache.endpoints[0] == endpoint{ip4("172.25.2.20"), 6380, 3, true, false});
        CHECK(cache.endpoints[1] == endpoint{ip4("172.25.2.21"), 6380, 1, true, true});
        CHECK_FALSE(c.services[2].cluster_ip.has_value());  // headless

        const service& dns = c.services[3];
        CHECK(c.service_origins[3].manifest);
        CHECK(dns.name == "kube-dns");
        CHECK(dns.ns == "kube-system");
        CHECK(dns.sched == scheduler::sh);
        CHECK(dns.cluster_ip == ip4("10.96.0.10"));
        REQUIRE(dns.ports.size() == 3);
        CHECK(dns.ports[0] == service_port{"dns", proto_udp, 53, 53, 0});
        CHECK(dns.ports[1] == service_port{"dns-tcp", proto_tcp, 53, 53, 0});
        CHECK(dns.endpoints.empty());
        const service& shop = c.services[4];
        CHECK(shop.sched == scheduler::rr);
        CHECK(shop.local_traffic);
        CHECK(shop.ports[0] == service_port{"http", proto_tcp, 80, 0, 31000});  // named targetPort

        REQUIRE(c.endpoint_slices.size() == 2);
        const endpoint_slice& s = c.endpoint_slices[0];
        CHECK(s.name == "kube-dns-x7k2p");
        CHECK(s.ns == "kube-system");
        CHECK(s.service == "kube-dns");
        REQUIRE(s.ports.size() == 3);
        CHECK(s.ports[1] == slice_port{"dns", proto_udp, 53});
        REQUIRE(s.endpoints.size() == 2);
        CHECK(s.endpoints[0] == endpoint{ip4("172.25.3.10"), 0, 1, true, false});
        // Terminating but still serving: ready, draining.
        CHECK(c.endpoint_slices[1].endpoints[1] == endpoint{ip4("172.25.2.21"), 0, 1, true, true});
        CHECK(c.slice_origins[1].path == "endpointSlices[1]");
        CHECK(c.positions.at("services[3].spec.clusterIP").line > 0);
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
        require_only_error(parse(base_yaml + "pods:\n  - {name: a, ip: 172.25.1.5, annotations: {}}\n"),
                           "pods[0].annotations", "unknown key 'annotations'", 10, 31);
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
        require_only_error(with_vxlan("mtu: 67"), "cluster.vxlan.mtu", "out of range 68..9166", 7,
                           16);
        require_only_error(with_vxlan("mtu: 10000"), "cluster.vxlan.mtu", "out of range", 7, 16);
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
        require_only_error(with_vxlan("mtu: 9167"), "cluster.vxlan.mtu", "out of range 68..9166", 7, 16);
        parse_result ok = with_vxlan("vni: 0, port: 4789, mtu: 8950");
        REQUIRE(ok.ok());
        CHECK(ok.cfg.vxlan.vni == 0);
        CHECK(ok.cfg.vxlan.port == 4789);
        CHECK(ok.cfg.vxlan.mtu == 8950);
    }
    SECTION("dpdk") {
        parse_result ok = parse(base_yaml + "dpdk: {eal: [-l, \"0\"], workers: 1}\n");
        REQUIRE(ok.ok());
        CHECK(ok.cfg.eal == std::vector<std::string>{"-l", "0"});
        CHECK(ok.cfg.workers == 1);
        CHECK(parse(base_yaml + "dpdk: {workers: 2}\n").cfg.workers == 2);
        parse_result named = parse(base_yaml + "dpdk: {workerLcores: [2, 1]}\n");
        REQUIRE(named.ok());
        CHECK(named.cfg.workers == 2);
        CHECK(named.cfg.worker_lcores == std::vector<uint32_t>{2, 1});
        require_only_error(parse(base_yaml + "dpdk: {workers: 17}\n"), "dpdk.workers",
                           "17 is out of range 1..16", 9, 17);
        require_only_error(parse(base_yaml + "dpdk: {workers: 0}\n"), "dpdk.workers",
                           "0 is out of range 1..16", 9, 17);
        require_only_error(parse(base_yaml + "dpdk: {workers: 3, workerLcores: [1, 2]}\n"),
                           "dpdk.workerLcores", "names 2 lcores for 3 workers", 9, 34);
        require_only_error(parse(base_yaml + "dpdk: {workerLcores: [1, 0]}\n"), "dpdk.workerLcores[1]",
                           "expected an lcore id 1..1023 (0 is the main lcore)", 9, 26);
        require_only_error(parse(base_yaml + "dpdk: {workerLcores: [1, 1]}\n"), "dpdk.workerLcores[1]",
                           "lcore 1 is named twice", 9, 26);
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
    for (const char* name :
         {"addresses", "duplicates", "kinds", "many-errors", "services", "policies"}) {
        INFO(name);
        parse_result b = load_file(std::string(TWILL_TEST_DATA "/bad/") + name + ".yaml");
        CHECK(b.errors.size() >= 5);
        for (const error& e : b.errors) {
            CHECK(e.pos.line > 0);
        }
    }
}

TEST_CASE("services: each key of the compact form", "[config][services]") {
    struct row {
        const char* what;
        const char* item;  // one service, a line of its own
        const char* path;
        const char* fragment;  // the only error; empty = valid
        const char* marker;    // where it points: the first occurrence in the line
    };
    const row rows[] = {
        {"a valid service", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}]}", "", "", ""},
        {"type LoadBalancer", "{name: a, type: LoadBalancer, clusterIP: 10.96.0.1, ports: [{port: 80}]}",
         "services[0].type", "type LoadBalancer is not supported: twill has no load balancer",
         "LoadBalancer"},
        {"type ExternalName", "{name: a, type: ExternalName, clusterIP: 10.96.0.1, ports: [{port: 80}]}",
         "services[0].type", "type ExternalName is not supported", "ExternalName"},
        {"type in the wrong case", "{name: a, type: clusterip, clusterIP: 10.96.0.1, ports: [{port: 80}]}",
         "services[0].type", "'clusterip' is not one of: ClusterIP, NodePort; did you mean 'ClusterIP'?",
         "clusterip"},
        {"no clusterIP", "{name: a, ports: [{port: 80}]}", "services[0].clusterIP",
         "required key is missing: twill does not allocate cluster IPs", "{name"},
        {"an empty clusterIP", "{name: a, clusterIP: \"\", ports: [{port: 80}]}",
         "services[0].clusterIP", "an empty clusterIP asks for one to be allocated", "\"\""},
        {"a bad clusterIP", "{name: a, clusterIP: 10.96.0.300, ports: [{port: 80}]}",
         "services[0].clusterIP",
         "'10.96.0.300' is not an IPv4 address (expected a.b.c.d, or None for a headless service)",
         "10.96.0.300"},
        {"a bad external IP", "{name: a, clusterIP: 10.96.0.1, externalIPs: [1.2.3], ports: [{port: 80}]}",
         "services[0].externalIPs[0]", "'1.2.3' is not an IPv4 address", "1.2.3"},
        {"port out of range", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 70000}]}",
         "services[0].ports[0].port", "70000 is out of range 1..65535", "70000"},
        {"no port", "{name: a, clusterIP: 10.96.0.1, ports: [{name: x}]}",
         "services[0].ports[0].port", "required key is missing", "{name: x}"},
        {"a named targetPort", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80, targetPort: web}]}",
         "services[0].ports[0].targetPort",
         "named target ports ('web') are not supported: give the pod's port number", "web}"},
        {"targetPort 0", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80, targetPort: 0}]}",
         "services[0].ports[0].targetPort", "0 is out of range 1..65535", "0}"},
        {"nodePort out of range",
         "{name: a, type: NodePort, clusterIP: 10.96.0.1, ports: [{port: 80, nodePort: 29999}]}",
         "services[0].ports[0].nodePort", "29999 is out of range 30000..32767", "29999"},
        {"protocol in the wrong case", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80, protocol: tcp}]}",
         "services[0].ports[0].protocol", "'tcp' is not one of: TCP, UDP, SCTP; did you mean 'TCP'?", "tcp"},
        {"a bad port name", "{name: a, clusterIP: 10.96.0.1, ports: [{name: Web, port: 80}]}",
         "services[0].ports[0].name", "'Web' is not a valid port name", "Web"},
        {"a scheduler IPVS lacks", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], scheduler: maglev}",
         "services[0].scheduler", "'maglev' is not one of: rr, wrr, lc, sh, mh", "maglev"},
        {"affinity in the wrong case",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], sessionAffinity: clientip}",
         "services[0].sessionAffinity", "did you mean 'ClientIP'?", "clientip"},
        {"an affinity timeout too long",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], sessionAffinity: ClientIP, "
         "sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}}",
         "services[0].sessionAffinityConfig.clientIP.timeoutSeconds", "86401 is out of range 1..86400",
         "86401"},
        {"an affinity timeout without affinity",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], "
         "sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}}",
         "services[0].sessionAffinityConfig", "only used with sessionAffinity: ClientIP",
         "sessionAffinityConfig"},
        {"a traffic policy Kubernetes lacks",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], externalTrafficPolicy: Global}",
         "services[0].externalTrafficPolicy", "'Global' is not one of: Cluster, Local", "Global"},
        {"an endpoint weight too large",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], endpoints: [{ip: 172.25.1.5, weight: 65536}]}",
         "services[0].endpoints[0].weight", "65536 is out of range 0..65535", "65536"},
        {"an endpoint readiness that is not a boolean",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], endpoints: [{ip: 172.25.1.5, ready: yes}]}",
         "services[0].endpoints[0].ready", "'yes' is not a boolean", "yes"},
        {"an endpoint without an address",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], endpoints: [{port: 8080}]}",
         "services[0].endpoints[0].ip", "required key is missing", "{port: 8080}"},
        {"a manifest's key in the compact form",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], selector: {app: a}}",
         "services[0].selector", "unknown key 'selector'; expected one of: name, namespace, type",
         "selector"},
    };
    for (const row& rr : rows) {
        INFO(rr.what);
        const std::string text = with_service_cidr(std::string("services:\n  - ") + rr.item + "\n");
        parse_result r = parse(text);
        if (*rr.fragment == 0) {
            INFO(all_errors(r));
            CHECK(r.ok());
            continue;
        }
        require_error_at(r, text, rr.path, rr.fragment, rr.marker);
        INFO(all_errors(r));
        CHECK(r.errors.size() == 1);
    }
}

TEST_CASE("services: the rules of one service", "[config][services]") {
    struct row {
        const char* what;
        const char* item;
        const char* path;
        const char* fragment;  // the only error; empty = valid
        const char* marker;
    };
    const row rows[] = {
        {"a clusterIP outside serviceCIDR", "{name: a, clusterIP: 10.0.0.1, ports: [{port: 80}]}",
         "services[0].clusterIP", "10.0.0.1 is outside cluster.serviceCIDR 10.96.0.0/12", "10.0.0.1"},
        {"a headless service has no node ports",
         "{name: a, type: NodePort, clusterIP: None, ports: [{port: 80}]}", "services[0].type",
         "a headless service (clusterIP None) cannot be of type NodePort", "NodePort"},
        {"a headless service has no external IPs",
         "{name: a, clusterIP: None, externalIPs: [198.18.0.100], ports: [{port: 80}]}",
         "services[0].externalIPs", "a headless service (clusterIP None) has no virtual address",
         "[198"},
        {"a headless service without ports", "{name: a, clusterIP: None}", "", "", ""},
        {"a clusterIP needs a port", "{name: a, clusterIP: 10.96.0.1}", "services[0].ports",
         "a service with a cluster IP needs at least one port", "{name"},
        {"a nodePort without type NodePort",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80, nodePort: 30080}]}",
         "services[0].ports[0].nodePort", "only a service of type NodePort has node ports", "30080"},
        {"type NodePort without a nodePort",
         "{name: a, type: NodePort, clusterIP: 10.96.0.1, ports: [{name: x, port: 80, nodePort: 30080}, "
         "{name: y, port: 81}]}",
         "services[0].ports[1].nodePort",
         "required with type NodePort, on every port: twill does not allocate node ports", "{name: y"},
        {"two nodePorts alike",
         "{name: a, type: NodePort, clusterIP: 10.96.0.1, ports: [{name: x, port: 80, nodePort: 30080}, "
         "{name: y, port: 81, nodePort: 30080}]}",
         "services[0].ports[1].nodePort",
         "duplicate nodePort TCP 30080 (also services[0].ports[0].nodePort)", "30080}]"},
        {"an unnamed port among several",
         "{name: a, clusterIP: 10.96.0.1, ports: [{name: x, port: 80}, {port: 81}]}",
         "services[0].ports[1].name", "required when a service has more than one port", "{port: 81}"},
        {"two ports of one name",
         "{name: a, clusterIP: 10.96.0.1, ports: [{name: x, port: 80}, {name: x, port: 81}]}",
         "services[0].ports[1].name", "duplicate port name 'x' (also services[0].ports[0].name)",
         "x, port: 81"},
        {"one port twice", "{name: a, clusterIP: 10.96.0.1, ports: [{name: x, port: 80}, {name: y, port: 80}]}",
         "services[0].ports[1].port", "duplicate port TCP 80 (also services[0].ports[0].port)", "80}]"},
        {"one number for TCP and UDP",
         "{name: a, clusterIP: 10.96.0.1, ports: [{name: x, port: 53}, {name: y, port: 53, protocol: UDP}]}",
         "", "", ""},
        {"an external IP in the pods' range",
         "{name: a, clusterIP: 10.96.0.1, externalIPs: [172.25.9.9], ports: [{port: 80}]}",
         "services[0].externalIPs[0]", "172.25.9.9 is inside cluster.clusterCIDR 172.25.0.0/16", "172"},
        {"an external IP that is the clusterIP",
         "{name: a, clusterIP: 10.96.0.1, externalIPs: [10.96.0.1], ports: [{port: 80}]}",
         "services[0].externalIPs[0]", "10.96.0.1 is the service's clusterIP already", "10.96.0.1]"},
        {"an external IP twice",
         "{name: a, clusterIP: 10.96.0.1, externalIPs: [198.18.0.9, 198.18.0.9], ports: [{port: 80}]}",
         "services[0].externalIPs[1]", "duplicate external IP 198.18.0.9 (also services[0].externalIPs[0])",
         "198.18.0.9]"},
        {"the node's address as external IP",
         "{name: a, clusterIP: 10.96.0.1, externalIPs: [198.18.0.2], ports: [{port: 80}]}", "", "", ""},
        {"Local traffic policy with nothing from outside",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], externalTrafficPolicy: Local}",
         "services[0].externalTrafficPolicy",
         "Local only concerns traffic from outside the cluster: it needs type NodePort or externalIPs",
         "Local"},
        {"Local traffic policy with external IPs",
         "{name: a, clusterIP: 10.96.0.1, externalIPs: [198.18.0.9], ports: [{port: 80}], "
         "externalTrafficPolicy: Local}",
         "", "", ""},
        {"one endpoint port for several ports",
         "{name: a, clusterIP: 10.96.0.1, ports: [{name: x, port: 80}, {name: y, port: 81}], "
         "endpoints: [{ip: 172.25.1.5, port: 8080}]}",
         "services[0].endpoints[0].port",
         "the service has 2 ports, which one port cannot serve all of: give targetPort per port instead",
         "8080"},
        {"a loopback endpoint", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], endpoints: [{ip: 127.0.0.1}]}",
         "services[0].endpoints[0].ip", "127.0.0.1 is not a unicast address", "127.0.0.1"},
        {"a multicast endpoint", "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], endpoints: [{ip: 239.1.1.1}]}",
         "services[0].endpoints[0].ip", "239.1.1.1 is not a unicast address", "239.1.1.1"},
        {"one endpoint twice",
         "{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}], endpoints: [{ip: 172.25.1.5}, {ip: 172.25.1.5, port: 81}]}",
         "services[0].endpoints[1].ip",
         "duplicate endpoint 172.25.1.5 of service default/a (also services[0].endpoints[0].ip)",
         "172.25.1.5, port"},
    };
    for (const row& rr : rows) {
        INFO(rr.what);
        const std::string text = with_service_cidr(std::string("services:\n  - ") + rr.item + "\n");
        parse_result r = parse(text);
        if (*rr.fragment == 0) {
            INFO(all_errors(r));
            CHECK(r.ok());
            continue;
        }
        require_error_at(r, text, rr.path, rr.fragment, rr.marker);
        INFO(all_errors(r));
        CHECK(r.errors.size() == 1);
    }

    SECTION("without serviceCIDR: any unicast address outside the pods' and the node's") {
        auto one = [](const std::string& ip) {
            return parse(base_yaml + "services: [{name: a, clusterIP: " + ip + ", ports: [{port: 80}]}]\n");
        };
        CHECK(one("192.0.2.1").ok());
        require_only_error(one("198.18.0.2"), "services[0].clusterIP",
                           "198.18.0.2 is this node's address (node.ip)", 9, 33);
        require_only_error(one("0.1.2.3"), "services[0].clusterIP", "is not a unicast address", 9, 33);
        require_only_error(one("172.25.2.9"), "services[0].clusterIP", "inside cluster.clusterCIDR", 9, 33);
    }
    SECTION("a broken value is reported once") {
        // The port is broken: neither the port name rule nor the endpoint's port rule piles on.
        const std::string text = with_service_cidr(
            "services:\n  - {name: a, clusterIP: 10.96.0.1, ports: [{port: x}], endpoints: [{ip: 172.25.1.5, port: 8080}]}\n");
        require_only_error(parse(text), "services[0].ports[0].port", "'x' is not an integer", 11, 52);
        // No clusterIP: not taken for headless.
        const std::string none = with_service_cidr(
            "services:\n  - {name: a, type: NodePort, externalIPs: [198.18.0.9], ports: [{port: 80}]}\n");
        require_only_error(parse(none), "services[0].clusterIP", "required key is missing", 11, 5);
    }
}

TEST_CASE("services: between services, slices and the node", "[config][services]") {
    SECTION("names, frontends and node ports are unique") {
        const std::string text = with_service_cidr(R"(services:
  - {name: a, type: NodePort, clusterIP: 10.96.0.1, externalIPs: [198.18.0.100],
     ports: [{port: 80, nodePort: 30080}]}
  - {name: a, clusterIP: 10.96.0.2, ports: [{port: 80}]}
  - {name: a, namespace: other, clusterIP: 10.96.0.1, ports: [{port: 81}]}
  - {name: b, clusterIP: 10.96.0.1, ports: [{port: 80}]}
  - {name: c, clusterIP: 10.96.0.3, externalIPs: [198.18.0.100], ports: [{port: 80}]}
  - {name: d, type: NodePort, clusterIP: 10.96.0.4, ports: [{name: x, port: 80, nodePort: 30080},
                                                            {name: y, port: 80, protocol: UDP, nodePort: 30080}]}
  - {name: e, clusterIP: 10.96.0.5, externalIPs: [198.18.0.2], ports: [{port: 30080}]}
)");
        parse_result r = parse(text);
        require_error_at(r, text, "services[1].name", "duplicate service default/a (also services[0].name)",
                         "a, clusterIP: 10.96.0.2");
        require_error_at(r, text, "services[3].clusterIP",
                         "TCP 10.96.0.1:80 is already used by service default/a (services[0].clusterIP)",
                         "10.96.0.1, ports: [{port: 80}]}\n  - {name: c");
        require_error_at(r, text, "services[4].externalIPs[0]",
                         "TCP 198.18.0.100:80 is already used by service default/a "
                         "(services[0].externalIPs[0])",
                         "198.18.0.100], ports: [{port: 80}]}\n  - {name: d");
        require_error_at(r, text, "services[5].ports[0].nodePort",
                         "nodePort TCP 30080 is already used by service default/a "
                         "(services[0].ports[0].nodePort)",
                         "30080},");
        require_error_at(r, text, "services[6].externalIPs[0]",
                         "TCP 198.18.0.2:30080 is already used by service default/a "
                         "(services[0].ports[0].nodePort), a node port",
                         "198.18.0.2]");
        INFO(all_errors(r));
        CHECK(r.errors.size() == 5);  // other/a shares 10.96.0.1 on another port; UDP 30080 is free
    }
    SECTION("EndpointSlices: their service, its ports, endpoints unique per service") {
        const std::string text = with_service_cidr(R"(services:
  - {name: a, clusterIP: 10.96.0.1, ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}],
     endpoints: [{ip: 172.25.1.5}]}
endpointSlices:
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
    addressType: IPv4
    endpoints: [{addresses: [172.25.1.6]}, {addresses: [172.25.1.5]}]
    ports: [{name: http, port: 8080}, {name: dns, port: 53}, {name: metrics, port: 9100}]
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: a-1, labels: {kubernetes.io/service-name: b}}
    addressType: IPv4
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: a-2, namespace: other, labels: {kubernetes.io/service-name: a}}
    addressType: IPv4
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: a-3, labels: {kubernetes.io/service-name: a}}
    addressType: IPv4
    endpoints: [{addresses: [172.25.1.6]}]
)");
        parse_result r = parse(text);
        require_error_at(r, text, "endpointSlices[0].endpoints[1].addresses[0]",
                         "duplicate endpoint 172.25.1.5 of service default/a (also services[0].endpoints[0].ip)",
                         "172.25.1.5]}]");
        require_error_at(r, text, "endpointSlices[0].ports[1].name",
                         "port 'dns' is TCP here but UDP in service default/a", "dns, port: 53}");
        require_error_at(r, text, "endpointSlices[0].ports[2].name",
                         "port 'metrics' matches no port of service default/a (its ports: 'http' TCP, "
                         "'dns' UDP)",
                         "metrics, port");
        require_error_at(r, text, "endpointSlices[1].metadata.name",
                         "duplicate EndpointSlice default/a-1 (also endpointSlices[0].metadata.name)",
                         "a-1, labels: {kubernetes.io/service-name: b");
        require_error_at(r, text, "endpointSlices[1].metadata.labels.kubernetes.io/service-name",
                         "service default/b does not exist", "b}}");
        require_error_at(r, text, "endpointSlices[2].metadata.labels.kubernetes.io/service-name",
                         "service other/a does not exist", "a}}\n    addressType: IPv4\n  - api");
        require_error_at(r, text, "endpointSlices[3].endpoints[0].addresses[0]",
                         "duplicate endpoint 172.25.1.6 of service default/a (also "
                         "endpointSlices[0].endpoints[0].addresses[0])",
                         "172.25.1.6]}]");
        INFO(all_errors(r));
        CHECK(r.errors.size() == 7);
    }
}

TEST_CASE("services: Kubernetes manifests", "[config][services]") {
    auto manifest = [](const std::string& spec, const std::string& metadata = "{name: web}") {
        return with_service_cidr("services:\n  - apiVersion: v1\n    kind: Service\n    metadata: " +
                                 metadata + "\n    spec:\n" + spec);
    };
    SECTION("accepted and ignored: status, metadata's bookkeeping, selector, hints") {
        const std::string text = manifest(R"(      type: ClusterIP
      clusterIPs: [10.96.0.7, "fd00::7"]
      ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
      selector: {app: web}
      publishNotReadyAddresses: false
      ipFamilies: [IPv4, IPv6]
      ipFamilyPolicy: PreferDualStack
      internalTrafficPolicy: Cluster
    status: {loadBalancer: {}}
)",
                                          "{name: web, uid: x, labels: {a: b}, annotations: {twill.dev/scheduler: lc, other: x}, "
                                          "managedFields: [{manager: kubectl}]}");
        parse_result r = parse(text);
        INFO(all_errors(r));
        REQUIRE(r.ok());
        const service& s = r.cfg.services[0];
        CHECK(s.cluster_ip == ip4("10.96.0.7"));  // the first of clusterIPs
        CHECK(s.sched == scheduler::lc);
        CHECK(s.ports[0] == service_port{"http", proto_tcp, 80, 0, 0});
        // Messages about it name the manifest's keys.
        const source_pos& at = r.cfg.positions.at("services[0].spec.clusterIP");
        CHECK(at.line == 16);
        CHECK(at.column == 20);
    }
    SECTION("each error with the manifest's path") {
        struct row {
            const char* what;
            std::string text;
            const char* path;
            const char* fragment;
            const char* marker;
        };
        const row rows[] = {
            {"another API version",
             with_service_cidr("services:\n  - {apiVersion: apps/v1, kind: Service, metadata: {name: a}, "
                               "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}}\n"),
             "services[0].apiVersion", "'apps/v1' is not the API version of a Service: expected v1", "apps/v1"},
            {"a slice among services",
             with_service_cidr("services:\n  - {apiVersion: v1, kind: EndpointSlice, metadata: {name: a}, "
                               "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}}\n"),
             "services[0].kind", "expected kind Service, got 'EndpointSlice'; EndpointSlices go in endpointSlices",
             "EndpointSlice"},
            {"no metadata",
             with_service_cidr("services:\n  - {apiVersion: v1, kind: Service, spec: {clusterIP: 10.96.0.1, "
                               "ports: [{port: 80}]}}\n"),
             "services[0].metadata", "required key is missing", "{apiVersion"},
            {"no name", manifest("      clusterIP: 10.96.0.1\n      ports: [{port: 80}]\n", "{namespace: a}"),
             "services[0].metadata.name", "required key is missing", "{namespace"},
            {"no spec",
             with_service_cidr("services:\n  - {apiVersion: v1, kind: Service, metadata: {name: a}}\n"),
             "services[0].spec", "required key is missing", "{apiVersion"},
            {"a key no ServiceSpec has", manifest("      clusterIP: 10.96.0.1\n      ports: [{port: 80}]\n      endpoints: []\n"),
             "services[0].spec.endpoints", "unknown key 'endpoints'", "endpoints"},
            {"clusterIPs that disagree", manifest("      clusterIP: 10.96.0.1\n      clusterIPs: [10.96.0.2]\n      ports: [{port: 80}]\n"),
             "services[0].spec.clusterIPs[0]",
             "'10.96.0.2' disagrees with clusterIP '10.96.0.1': the first of clusterIPs is the clusterIP",
             "10.96.0.2"},
            {"two IPv4 clusterIPs", manifest("      clusterIPs: [10.96.0.1, 10.96.0.2]\n      ports: [{port: 80}]\n"),
             "services[0].spec.clusterIPs[1]", "further clusterIPs may only be IPv6 ones", "10.96.0.2"},
            {"a bad clusterIPs entry", manifest("      clusterIPs: [10.96.0.300]\n      ports: [{port: 80}]\n"),
             "services[0].spec.clusterIPs[0]", "'10.96.0.300' is not an IPv4 address", "10.96.0.300"},
            {"IPv6 only", manifest("      clusterIP: 10.96.0.1\n      ipFamilies: [IPv6]\n      ports: [{port: 80}]\n"),
             "services[0].spec.ipFamilies", "an IPv6-only service is not supported", "[IPv6]"},
            {"an address family Kubernetes lacks", manifest("      clusterIP: 10.96.0.1\n      ipFamilies: [IPv5]\n      ports: [{port: 80}]\n"),
             "services[0].spec.ipFamilies[0]", "'IPv5' is not one of: IPv4, IPv6", "IPv5"},
            {"internal Local traffic", manifest("      clusterIP: 10.96.0.1\n      internalTrafficPolicy: Local\n      ports: [{port: 80}]\n"),
             "services[0].spec.internalTrafficPolicy", "Local (only this node's endpoints for traffic from pods) is not supported",
             "Local"},
            {"a scheduler annotation IPVS lacks",
             manifest("      clusterIP: 10.96.0.1\n      ports: [{port: 80}]\n",
                      "{name: web, annotations: {twill.dev/scheduler: fair}}"),
             "services[0].metadata.annotations.twill.dev/scheduler", "'fair' is not one of: rr, wrr, lc, sh, mh",
             "fair"},
            {"a rule: clusterIP outside serviceCIDR", manifest("      clusterIP: 10.0.0.1\n      ports: [{port: 80}]\n"),
             "services[0].spec.clusterIP", "10.0.0.1 is outside cluster.serviceCIDR", "10.0.0.1"},
            {"a rule: clusterIP taken from clusterIPs", manifest("      clusterIPs: [10.0.0.1]\n      ports: [{port: 80}]\n"),
             "services[0].spec.clusterIP", "10.0.0.1 is outside cluster.serviceCIDR", "10.0.0.1"},
            {"a rule: node port type", manifest("      clusterIP: 10.96.0.1\n      ports: [{port: 80, nodePort: 30000}]\n"),
             "services[0].spec.ports[0].nodePort", "only a service of type NodePort has node ports", "30000"},
        };
        for (const row& rr : rows) {
            INFO(rr.what);
            parse_result r = parse(rr.text);
            require_error_at(r, rr.text, rr.path, rr.fragment, rr.marker);
            INFO(all_errors(r));
            CHECK(r.errors.size() == 1);
        }
    }
}

TEST_CASE("EndpointSlices: each key", "[config][services]") {
    auto slice = [](const std::string& body,
                    const std::string& metadata = "{name: a-1, labels: {kubernetes.io/service-name: a}}") {
        return with_service_cidr(
            "services: [{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}]}]\n"
            "endpointSlices:\n  - apiVersion: discovery.k8s.io/v1\n    kind: EndpointSlice\n"
            "    metadata: " + metadata + "\n" + body);
    };
    SECTION("conditions: absent ready is ready; a terminating endpoint is ready while serving") {
        parse_result r = parse(slice(R"(    addressType: IPv4
    ports: [{name: "", port: 8080, protocol: TCP, appProtocol: http}]
    endpoints:
      - {addresses: [172.25.1.5], nodeName: n2, zone: z, hints: {forZones: []}, targetRef: {kind: Pod}}
      - {addresses: [172.25.1.6], conditions: {ready: false}}
      - {addresses: [172.25.1.7], conditions: {ready: false, serving: true, terminating: true}}
      - {addresses: [172.25.1.8], conditions: {ready: false, serving: false, terminating: true}}
)"));
        INFO(all_errors(r));
        REQUIRE(r.ok());
        const endpoint_slice& s = r.cfg.endpoint_slices[0];
        CHECK(s.service == "a");
        CHECK(s.ports == std::vector<slice_port>{{"", proto_tcp, 8080}});
        REQUIRE(s.endpoints.size() == 4);
        CHECK(s.endpoints[0] == endpoint{ip4("172.25.1.5"), 0, 1, true, false});
        CHECK(s.endpoints[1] == endpoint{ip4("172.25.1.6"), 0, 1, false, false});
        CHECK(s.endpoints[2] == endpoint{ip4("172.25.1.7"), 0, 1, true, true});
        CHECK(s.endpoints[3] == endpoint{ip4("172.25.1.8"), 0, 1, false, true});
    }
    struct row {
        const char* what;
        std::string text;
        const char* path;
        const char* fragment;
        const char* marker;
    };
    const row rows[] = {
        {"an older API version",
         slice("    addressType: IPv4\n").replace(slice("").find("discovery.k8s.io/v1"), 19,
                                             "discovery.k8s.io/v1beta1"),
         "endpointSlices[0].apiVersion",
         "'discovery.k8s.io/v1beta1' is not the API version of a EndpointSlice: expected discovery.k8s.io/v1",
         "discovery.k8s.io/v1beta1"},
        {"no labels", slice("    addressType: IPv4\n", "{name: a-1, uid: x}"),
         "endpointSlices[0].metadata.labels.kubernetes.io/service-name", "required label is missing",
         "{name: a-1"},
        {"no service label", slice("    addressType: IPv4\n", "{name: a-1, labels: {app: a}}"),
         "endpointSlices[0].metadata.labels.kubernetes.io/service-name",
         "required label is missing: it names the service whose endpoints these are", "{app: a}"},
        {"IPv6", slice("    addressType: IPv6\n"), "endpointSlices[0].addressType",
         "IPv6 slices are not supported: twill is IPv4-only", "IPv6"},
        {"FQDN", slice("    addressType: FQDN\n"), "endpointSlices[0].addressType",
         "FQDN slices are not supported", "FQDN"},
        {"no address type", slice("    endpoints: []\n"), "endpointSlices[0].addressType",
         "required key is missing", "apiVersion: discovery"},
        {"two addresses", slice("    addressType: IPv4\n    endpoints: [{addresses: [172.25.1.5, 172.25.1.6]}]\n"),
         "endpointSlices[0].endpoints[0].addresses", "2 addresses; an IPv4 endpoint has exactly one",
         "[172.25.1.5"},
        {"no address", slice("    addressType: IPv4\n    endpoints: [{addresses: []}]\n"),
         "endpointSlices[0].endpoints[0].addresses", "0 addresses", "[]"},
        {"a bad address", slice("    addressType: IPv4\n    endpoints: [{addresses: [fd00::1]}]\n"),
         "endpointSlices[0].endpoints[0].addresses[0]", "'fd00::1' is not an IPv4 address", "fd00::1"},
        {"a broadcast address", slice("    addressType: IPv4\n    endpoints: [{addresses: [255.255.255.255]}]\n"),
         "endpointSlices[0].endpoints[0].addresses[0]", "is not a unicast address", "255"},
        {"a condition that is not a boolean",
         slice("    addressType: IPv4\n    endpoints: [{addresses: [172.25.1.5], conditions: {ready: True}}]\n"),
         "endpointSlices[0].endpoints[0].conditions.ready", "'True' is not a boolean", "True"},
        {"an endpoint key Kubernetes lacks",
         slice("    addressType: IPv4\n    endpoints: [{addresses: [172.25.1.5], weight: 2}]\n"),
         "endpointSlices[0].endpoints[0].weight", "unknown key 'weight'", "weight"},
        {"a port without a number", slice("    addressType: IPv4\n    ports: [{name: \"\"}]\n"),
         "endpointSlices[0].ports[0].port", "required key is missing", "{name: \"\"}"},
        {"two unnamed ports", slice("    addressType: IPv4\n    ports: [{port: 1}, {port: 2}]\n"),
         "endpointSlices[0].ports[1].name", "duplicate port name '' (unnamed) (also endpointSlices[0].ports[0].name)",
         "{port: 2}"},
    };
    for (const row& rr : rows) {
        INFO(rr.what);
        parse_result r = parse(rr.text);
        require_error_at(r, rr.text, rr.path, rr.fragment, rr.marker);
        INFO(all_errors(r));
        CHECK(r.errors.size() == 1);
    }
}

TEST_CASE("conntrack settings", "[config][services]") {
    parse_result d = parse(base_yaml);
    CHECK(d.cfg.conntrack == conntrack_config{});
    const std::string text = base_yaml + "conntrack: {capacity: 1023, tcpTimeout: 2592001, udpTimeout: 5}\n";
    parse_result r = parse(text);
    require_error_at(r, text, "conntrack.capacity", "1023 is out of range 1024..16777216", "1023");
    require_error_at(r, text, "conntrack.tcpTimeout", "2592001 is out of range 1..2592000", "2592001");
    CHECK(r.errors.size() == 2);
    CHECK(r.cfg.conntrack.udp_timeout == 5);
    require_only_error(parse(base_yaml + "conntrack: {tcpFinTimout: 3}\n"), "conntrack.tcpFinTimout",
                       "did you mean 'tcpFinTimeout'?", 9, 13);
}

TEST_CASE("objects to apply: lists, one manifest, or a List of them", "[config][services]") {
    auto objects = [](const std::string& text) { return parse_objects_yaml(text, "t.yaml"); };
    const std::string service = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}
)";
    const std::string slice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [172.25.1.5]}]
ports: [{port: 8080}]
)";
    SECTION("the objects' lists") {
        parse_result r = objects("services: [{name: a, clusterIP: 10.96.0.1, ports: [{port: 80}]}]\n"
                                 "endpointSlices: []\n");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        CHECK(r.cfg.services.size() == 1);
        require_only_error(objects("conntrack: {capacity: 2048}\n"), "conntrack",
                           "unknown key 'conntrack'; expected one of: nodes, pods, services, endpointSlices, "
                           "namespaces, networkPolicies",
                           1, 1);
    }
    SECTION("one Service") {
        parse_result r = objects(service);
        INFO(all_errors(r));
        REQUIRE(r.ok());
        REQUIRE(r.cfg.services.size() == 1);
        CHECK(r.cfg.services[0].ns == "shop");
        CHECK(r.cfg.service_origins[0].path.empty());
        CHECK(r.cfg.service_origins[0].manifest);
        CHECK(r.cfg.positions.at("spec.clusterIP").line == 4);
    }
    SECTION("one EndpointSlice") {
        parse_result r = objects(slice);
        INFO(all_errors(r));
        REQUIRE(r.ok());
        REQUIRE(r.cfg.endpoint_slices.size() == 1);
        CHECK(r.cfg.endpoint_slices[0].service == "web");
    }
    SECTION("a List, as kubectl get -o yaml prints several objects") {
        auto indent = [](const std::string& s) {
            std::string out;
            bool first = true;
            for (size_t at = 0; at < s.size();) {
                size_t end = s.find('\n', at);
                out += (first ? "- " : "  ") + s.substr(at, end - at + 1);
                first = false;
                at = end + 1;
            }
            return out;
        };
        const std::string text = "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n" +
                                 indent(service) + indent(slice) +
                                 "- {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}}\n";
        parse_result r = objects(text);
        require_only_error(r, "items[2].kind",
                           "kind 'Deployment' cannot be applied: expected Service, EndpointSlice, "
                           "NetworkPolicy or Namespace",
                           where(text, "Deployment").first, where(text, "Deployment").second);
        REQUIRE(r.cfg.services.size() == 1);
        REQUIRE(r.cfg.endpoint_slices.size() == 1);
        CHECK(r.cfg.service_origins[0].path == "items[0]");
        CHECK(r.cfg.slice_origins[0].path == "items[1]");
        // A mistake inside an item has the item's path.
        std::string bad = text;
        bad.replace(bad.find("port: 8080"), 10, "port: 0");
        require_error(objects(bad), "items[1].ports[0].port", "0 is out of range 1..65535",
                      where(bad, "port: 0").first, where(bad, "port: 0").second + 6);
    }
    SECTION("kinds that cannot be applied") {
        require_only_error(objects("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"), "kind",
                           "kind 'Pod' cannot be applied: expected Service, EndpointSlice, "
                           "NetworkPolicy or Namespace, or a List of them",
                           2, 7);
        require_only_error(objects("apiVersion: v1\nmetadata: {name: a}\n"), "kind",
                           "required key is missing", 1, 1);
        parse_result empty = objects("");
        REQUIRE(empty.errors.size() == 1);
        CHECK_THAT(empty.errors[0].message,
                   Catch::Contains("nodes, pods, services, endpointSlices, namespaces or "
                                   "networkPolicies, or a Service, EndpointSlice, NetworkPolicy, "
                                   "Namespace or List manifest"));
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
    // Mutations of valid files reach deeper than random bytes.
    const std::string services = with_service_cidr(R"(services:
  - {name: a, type: NodePort, clusterIP: 10.96.0.1, ports: [{name: x, port: 80, nodePort: 30080}],
     endpoints: [{ip: 172.25.1.5, weight: 2}]}
  - apiVersion: v1
    kind: Service
    metadata: {name: b, annotations: {twill.dev/scheduler: mh}}
    spec: {clusterIPs: [10.96.0.2], ports: [{name: y, port: 53, protocol: UDP}]}
endpointSlices:
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: b-1, labels: {kubernetes.io/service-name: b}}
    addressType: IPv4
    endpoints: [{addresses: [172.25.1.6], conditions: {ready: true}}]
    ports: [{name: y, port: 53, protocol: UDP}]
)");
    REQUIRE(parse(services).ok());
    for (int i = 0; i < 600; ++i) {
        std::string s = i % 2 ? services : base_yaml;
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
        REQUIRE_NOTHROW(r = parse_objects_yaml(in, "fuzz.yaml"));
    }
}
