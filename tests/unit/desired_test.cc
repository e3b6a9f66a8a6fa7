// The desired state's incremental checks (what `twillctl apply` runs instead of merging
// and revalidating everything), the reload diff, and the in-place tables under them.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "control/desired.h"
#include "control/service_rules.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::test;

namespace {

config::node_file base() {
    config::parse_result r = config::parse_yaml(default_node_yaml, "node.yaml");
    REQUIRE(r.ok());
    return r.cfg;
}

config::node_file objects(const std::string& yaml) {
    config::parse_result r = config::parse_objects_yaml(yaml, "objs.yaml");
    INFO(yaml);
    for (const auto& e : r.errors) {
        UNSCOPED_INFO(config::to_string(e));
    }
    REQUIRE(r.ok());
    return r.cfg;
}

std::vector<std::string> errors(const desired_state& d, const std::string& yaml) {
    std::vector<std::string> out;
    for (const config::error& e : d.check(objects(yaml))) {
        out.push_back(config::to_string(e));
    }
    return out;
}

}  // namespace

TEST_CASE("apply checks: each object against what stays, and the objects among themselves",
          "[desired]") {
    desired_state d(base());
    struct row {
        const char* what;
        const char* yaml;
        const char* expect;  // a substring of the only error; empty = valid
    };
    const row rows[] = {
        {"a new node", "nodes:\n  - {name: n4, ip: 198.18.0.4, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n", ""},
        {"a node address in use",
         "nodes:\n  - {name: n4, ip: 198.18.0.3, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n",
         "nodes[0].ip: duplicate node IP 198.18.0.3 (also node 'kernel-c') (objs.yaml:2:"},
        {"this node's address",
         "nodes:\n  - {name: n4, ip: 198.18.0.2, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n",
         "duplicate node IP 198.18.0.2 (also node.ip)"},
        {"a slice in use",
         "nodes:\n  - {name: n4, ip: 198.18.0.4, podCIDR: 172.25.3.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n",
         "nodes[0].podCIDR: 172.25.3.0/24 overlaps node 'kernel-c' 172.25.3.0/24"},
        {"a slice covering others",
         "nodes:\n  - {name: n4, ip: 198.18.0.4, podCIDR: 172.25.0.0/22, vtepMAC: \"0e:00:00:00:04:00\"}\n",
         "172.25.0.0/22 overlaps node 'kernel-a' 172.25.1.0/24"},
        {"a slice smaller than the node's",
         "nodes:\n  - {name: n4, ip: 198.18.0.4, podCIDR: 172.25.4.0/25, vtepMAC: \"0e:00:00:00:04:00\"}\n",
         "is smaller than this node's slice 172.25.2.0/24"},
        {"a VTEP MAC in use",
         "nodes:\n  - {name: n4, ip: 198.18.0.4, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:01:00\"}\n",
         "duplicate MAC 0e:00:00:00:01:00 (also node 'kernel-a')"},
        {"this node's name", "nodes:\n  - {name: twill-b, ip: 198.18.0.4, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:44:00\"}\n",
         "duplicate node name 'twill-b' (also node.name)"},
        {"two objects, one slice",
         "nodes:\n  - {name: n4, ip: 198.18.0.4, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n"
         "  - {name: n5, ip: 198.18.0.5, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:05:00\"}\n",
         "nodes[1].podCIDR: 172.25.4.0/24 overlaps nodes[0].podCIDR"},
        {"replacing a node keeps its own values free",
         "nodes:\n  - {name: kernel-c, ip: 198.18.0.3, podCIDR: 172.25.3.0/24, vtepMAC: \"0e:00:00:00:03:99\"}\n", ""},
        {"two nodes trade addresses in one change",
         "nodes:\n  - {name: kernel-a, ip: 198.18.0.3, podCIDR: 172.25.1.0/24, vtepMAC: \"0e:00:00:00:01:00\"}\n"
         "  - {name: kernel-c, ip: 198.18.0.1, podCIDR: 172.25.3.0/24, vtepMAC: \"0e:00:00:00:03:00\"}\n", ""},
        {"a remote pod", "pods:\n  - {name: web, namespace: shop, ip: 172.25.3.7}\n", ""},
        {"a pod address in use", "pods:\n  - {name: web, ip: 172.25.1.2}\n",
         "pods[0].ip: duplicate pod IP 172.25.1.2 (also pod default/pod-a1)"},
        {"a local pod outside the node's slice", "pods:\n  - {name: web, ip: 172.25.3.7, port: p9}\n",
         "172.25.3.7 is outside node.podCIDR 172.25.2.0/24"},
        {"a remote pod inside the node's slice", "pods:\n  - {name: web, ip: 172.25.2.9}\n",
         "so the pod runs on this node and needs a 'port'"},
        {"the underlay's port", "pods:\n  - {name: web, ip: 172.25.2.9, port: underlay}\n",
         "duplicate port 'underlay' (also ports.underlay)"},
        {"another pod's port", "pods:\n  - {name: web, ip: 172.25.2.9, port: pb1}\n",
         "duplicate port 'pb1' (also pod default/pod-b1)"},
        {"a pod MAC that is a VTEP MAC",
         "pods:\n  - {name: web, ip: 172.25.2.9, port: p9, mac: \"0e:00:00:00:02:00\"}\n",
         "duplicate MAC 0e:00:00:00:02:00 (also node.vtepMAC)"},
        {"a pod moved to a free address", "pods:\n  - {name: pod-b1, ip: 172.25.2.9, port: pb1}\n", ""},
    };
    for (const row& r : rows) {
        INFO(r.what);
        std::vector<std::string> got = errors(d, r.yaml);
        if (*r.expect == 0) {
            CHECK(got.empty());
            for (const auto& e : got) {
                UNSCOPED_INFO(e);
            }
        } else {
            REQUIRE(got.size() == 1);
            CHECK_THAT(got[0], Catch::Contains(r.expect));
        }
    }
}

TEST_CASE("apply checks: every error at once, capacity counted after the change", "[desired]") {
    desired_state d(base());
    std::vector<std::string> got = errors(
        d, "nodes:\n  - {name: n4, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n"
           "pods:\n  - {name: web, ip: 172.25.9.9, port: pb2}\n");
    CHECK(got.size() == 4);  // IP, slice; pod outside the slice, port in use

    std::string many = "pods:\n";
    for (int i = 0; i < 40; ++i) {
        many += fmt::format("  - {{name: p{}, ip: 172.25.2.{}, port: \"q{}\"}}\n", i, 10 + i, i);
    }
    got = errors(d, many);
    REQUIRE(got.size() == 1);
    CHECK_THAT(got[0], Catch::Contains("42 pods with a port after this change; this build attaches at most"));
}

TEST_CASE("a reload is the difference: unchanged objects are not touched", "[desired]") {
    desired_state d(base());
    config::node_file next = base();
    next.nodes[1].vtep_mac = mac("0e:00:00:00:03:99");     // kernel-c changed
    next.pods.erase(next.pods.begin() + 2);               // pod-a1 gone
    next.pods.push_back({.name = "web", .ip = ip4("172.25.3.7")});
    object_change c = d.diff(next);
    REQUIRE(c.nodes.size() == 1);
    CHECK(c.nodes[0].name == "kernel-c");
    CHECK(c.delete_nodes.empty());
    REQUIRE(c.pods.size() == 1);
    CHECK(c.pods[0].name == "web");
    REQUIRE(c.delete_pods.size() == 1);
    CHECK(c.delete_pods[0] == pod_key("default", "pod-a1"));
    d.record(c);
    CHECK(d.diff(next).empty());
    CHECK(d.pods().contains(pod_key("default", "web")));
    CHECK_FALSE(d.pods().contains(pod_key("default", "pod-a1")));
}

TEST_CASE("ip4_map: in place for readers, tombstones reused, full means rebuild", "[tables]") {
    ip4_map m(16);
    CHECK(m.find(ip4("10.0.0.1")) == ip4_map::not_found);
    m.insert(ip4("10.0.0.1"), 7);
    m.insert(ip4("10.0.0.2"), 8);
    CHECK(m.find(ip4("10.0.0.1")) == 7);
    m.insert(ip4("10.0.0.1"), 9);  // a new value in place
    CHECK(m.find(ip4("10.0.0.1")) == 9);
    CHECK(m.size() == 2);
    CHECK(m.erase(ip4("10.0.0.1")));
    CHECK_FALSE(m.erase(ip4("10.0.0.1")));
    CHECK(m.find(ip4("10.0.0.1")) == ip4_map::not_found);
    CHECK(m.find(ip4("10.0.0.2")) == 8);
    CHECK(m.find(ip4("0.0.0.0")) == ip4_map::not_found);
    CHECK(m.find(ip4("255.255.255.255")) == ip4_map::not_found);
    // Churn through the same addresses: tombstones are reused, so there is always room.
    for (int i = 0; i < 1000; ++i) {
        ip4_addr a{ip4("10.1.0.0").value + uint32_t(i % 5)};
        REQUIRE(m.room());
        m.insert(a, uint32_t(i));
        CHECK(m.find(a) == uint32_t(i));
        m.erase(a);
    }
    CHECK(m.size() == 1);
}

TEST_CASE("slice table: entries in place, address map rebuilt when full, old ones retired",
          "[tables]") {
    slice_table t({ip4("10.0.0.0"), 8}, 24, 1 << 12);
    node_params p;
    int rebuilds = 0;
    for (uint32_t i = 0; i < 3000; ++i) {
        auto e = std::make_unique<remote_node_entry>();
        e->ip = ip4_addr{ip4("192.0.0.1").value + i};
        e->neighbour = i;
        CHECK(t.set_node(i, std::move(e)) == nullptr);  // nothing was there
        rebuilds += t.map_ip(ip4_addr{ip4("192.0.0.1").value + i}, i) != nullptr;
        t.set_cells({ip4_addr{ip4("10.0.0.0").value + (i << 8)}, 24}, i);
    }
    CHECK(rebuilds > 3);
    CHECK(rebuilds < 12);  // doubling: a logarithmic number
    CHECK(t.slot_end() == 3000);
    for (uint32_t i = 0; i < 3000; i += 97) {
        const remote_node_entry* e = t.lookup(ip4_addr{ip4("10.0.0.9").value + (i << 8)});
        REQUIRE(e != nullptr);
        CHECK(e->neighbour == i);
        CHECK(t.node_by_ip(ip4_addr{ip4("192.0.0.1").value + i}) == e);
    }
    // A slice shrinking from /23 to the /24 it keeps: the rest of it is cleared.
    const ip4_prefix wide{ip4("10.200.0.0"), 23}, narrow{ip4("10.200.0.0"), 24};
    t.set_cells(wide, 5);
    t.set_cells(wide, no_index, &narrow);
    CHECK(t.lookup(ip4("10.200.0.1")) == t.node(5));
    CHECK(t.lookup(ip4("10.200.1.1")) == nullptr);
    CHECK(t.lookup(ip4("11.0.0.1")) == nullptr);
    // A removed node: cells first, then the entry, which comes back to be freed after the
    // grace period.
    t.set_cells(narrow, no_index);
    CHECK(t.lookup(ip4("10.200.0.1")) == nullptr);
    CHECK(t.set_node(5, nullptr) != nullptr);
    CHECK(t.node(5) == nullptr);
}

namespace {

// A node with services of both kinds: compact ones with their endpoints, and kube-dns
// with two EndpointSlices.
const char* const service_node_yaml = R"(
node: {name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster: {clusterCIDR: 172.25.0.0/16, serviceCIDR: 10.96.0.0/12}
ports: {underlay: "underlay"}
services:
  - {name: web, type: NodePort, clusterIP: 10.96.0.10, externalIPs: [198.18.0.100],
     ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}, {name: https, port: 443, nodePort: 30443}],
     endpoints: [{ip: 172.25.1.5}, {ip: 172.25.1.6, weight: 0}]}
  - {name: api, type: NodePort, clusterIP: 10.96.0.11, ports: [{port: 80, nodePort: 30081}]}
  - {name: one, clusterIP: 10.96.0.20, ports: [{port: 6379, targetPort: 6380}],
     endpoints: [{ip: 172.25.1.7}, {ip: 172.25.1.8, port: 7000}]}
  - {name: dns, namespace: kube-system, clusterIP: 10.96.0.53,
     ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53}]}
endpointSlices:
  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
     metadata: {name: dns-b, namespace: kube-system, labels: {kubernetes.io/service-name: dns}},
     endpoints: [{addresses: [172.25.3.10], conditions: {ready: false}}],
     ports: [{name: dns, port: 53, protocol: UDP}]}
  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
     metadata: {name: dns-a, namespace: kube-system, labels: {kubernetes.io/service-name: dns}},
     endpoints: [{addresses: [172.25.1.10]}],
     ports: [{name: dns, port: 5353, protocol: UDP}, {name: dns-tcp, port: 5354}]}
)";

config::node_file service_base() {
    config::parse_result r = config::parse_yaml(service_node_yaml, "node.yaml");
    for (const auto& e : r.errors) {
        UNSCOPED_INFO(config::to_string(e));
    }
    REQUIRE(r.ok());
    return r.cfg;
}

// An EndpointSlice of kube-system/dns in one line.
std::string dns_slice(const std::string& name, const std::string& ip, const std::string& ports) {
    return "{apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4, metadata: {name: " +
           name + ", namespace: kube-system, labels: {kubernetes.io/service-name: dns}}, endpoints: "
           "[{addresses: [" + ip + "]}], ports: " + ports + "}";
}

}  // namespace

TEST_CASE("apply checks: services and EndpointSlices against what stays, and each other",
          "[desired][services]") {
    desired_state d(service_base());
    const std::string dns_ports = "[{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53}]";
    struct row {
        const char* what;
        std::string yaml;
        const char* expect;  // a substring of the only error; empty = valid
    };
    const row rows[] = {
        {"a new service", "services:\n  - {name: x, clusterIP: 10.96.0.30, ports: [{port: 80}]}\n", ""},
        {"a frontend in use",
         "services:\n  - {name: x, clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
         "services[0].clusterIP: TCP 10.96.0.10:80 is already used by service default/web (objs.yaml:2:"},
        {"another port of an address in use",
         "services:\n  - {name: x, clusterIP: 10.96.0.10, ports: [{port: 81}]}\n", ""},
        {"an external address in use",
         "services:\n  - {name: x, clusterIP: 10.96.0.30, externalIPs: [198.18.0.100], ports: [{port: 443}]}\n",
         "services[0].externalIPs[0]: TCP 198.18.0.100:443 is already used by service default/web"},
        {"a node port in use",
         "services:\n  - {name: x, type: NodePort, clusterIP: 10.96.0.30, ports: [{port: 80, nodePort: 30443}]}\n",
         "services[0].ports[0].nodePort: nodePort TCP 30443 is already used by service default/web"},
        {"the node's address on a node port",
         "services:\n  - {name: x, clusterIP: 10.96.0.30, externalIPs: [198.18.0.2], ports: [{port: 30080}]}\n",
         "TCP 198.18.0.2:30080 is already used by service default/web, a node port"},
        {"the other protocol's node port",
         "services:\n  - {name: x, type: NodePort, clusterIP: 10.96.0.30, ports: [{port: 80, protocol: UDP, nodePort: 30080}]}\n",
         ""},
        {"a rule of the service's own",
         "services:\n  - {name: x, clusterIP: 10.0.0.1, ports: [{port: 80}]}\n",
         "services[0].clusterIP: 10.0.0.1 is outside cluster.serviceCIDR 10.96.0.0/12"},
        {"replacing a service keeps its own values free",
         "services:\n  - {name: api, type: NodePort, clusterIP: 10.96.0.11, ports: [{port: 80, nodePort: 30081}], "
         "endpoints: [{ip: 172.25.1.9}]}\n",
         ""},
        {"a node port another service holds",
         "services:\n  - {name: api, type: NodePort, clusterIP: 10.96.0.11, ports: [{port: 80, nodePort: 30080}]}\n",
         "nodePort TCP 30080 is already used by service default/web"},
        {"two services trade node ports in one change",
         "services:\n  - {name: api, type: NodePort, clusterIP: 10.96.0.11, ports: [{port: 80, nodePort: 30080}]}\n"
         "  - {name: web, type: NodePort, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, nodePort: 30081}, "
         "{name: https, port: 443, nodePort: 30443}]}\n",
         ""},
        {"one service twice", "services:\n  - {name: x, clusterIP: 10.96.0.30, ports: [{port: 80}]}\n"
                              "  - {name: x, clusterIP: 10.96.0.31, ports: [{port: 80}]}\n",
         "services[1].name: duplicate service default/x (also services[0].name)"},
        {"two new services, one frontend",
         "services:\n  - {name: x, clusterIP: 10.96.0.30, ports: [{port: 80}]}\n"
         "  - {name: y, clusterIP: 10.96.0.30, ports: [{port: 80}]}\n",
         "services[1].clusterIP: TCP 10.96.0.30:80 is already used by service default/x (services[0].clusterIP)"},
        {"an endpoint of a service twice",
         "services:\n  - {name: dns, namespace: kube-system, clusterIP: 10.96.0.53, ports: " + dns_ports +
             ", endpoints: [{ip: 172.25.1.10}]}\n",
         "services[0].endpoints[0].ip: duplicate endpoint 172.25.1.10 of service kube-system/dns (also "
         "EndpointSlice kube-system/dns-a)"},
        {"a service losing a port its slice uses",
         "services:\n  - {name: dns, namespace: kube-system, clusterIP: 10.96.0.53, ports: [{name: dns, port: 53, protocol: UDP}]}\n",
         "services[0].ports: EndpointSlice kube-system/dns-a: port 'dns-tcp' matches no port of service "
         "kube-system/dns"},
        {"... and the slice losing it in the same change",
         "services:\n  - {name: dns, namespace: kube-system, clusterIP: 10.96.0.53, ports: [{name: dns, port: 53, protocol: UDP}]}\n"
         "endpointSlices:\n  - " + dns_slice("dns-a", "172.25.1.10", "[{name: dns, port: 5353, protocol: UDP}]") + "\n",
         ""},
        {"a slice of no service",
         "endpointSlices:\n  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4, "
         "metadata: {name: s, labels: {kubernetes.io/service-name: nope}}}\n",
         "endpointSlices[0].metadata.labels.kubernetes.io/service-name: service default/nope does not exist: "
         "apply it before its EndpointSlices, or with them"},
        {"a slice with its new service",
         "services:\n  - {name: x, clusterIP: 10.96.0.30, ports: [{port: 80}]}\n"
         "endpointSlices:\n  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4, "
         "metadata: {name: s, labels: {kubernetes.io/service-name: x}}, ports: [{port: 8080}], "
         "endpoints: [{addresses: [172.25.1.5]}]}\n",
         ""},
        {"a slice's port the service lacks",
         "endpointSlices:\n  - " + dns_slice("dns-c", "172.25.1.11", "[{name: metrics, port: 9153}]") + "\n",
         "endpointSlices[0].ports[0].name: port 'metrics' matches no port of service kube-system/dns (its "
         "ports: 'dns' UDP, 'dns-tcp' TCP)"},
        {"a slice's endpoint in another slice",
         "endpointSlices:\n  - " + dns_slice("dns-c", "172.25.1.10", "[]") + "\n",
         "endpointSlices[0].endpoints[0].addresses[0]: duplicate endpoint 172.25.1.10 of service "
         "kube-system/dns (also EndpointSlice kube-system/dns-a)"},
        {"a slice replaced, keeping its endpoint",
         "endpointSlices:\n  - " + dns_slice("dns-a", "172.25.1.10", "[{name: dns, port: 53, protocol: UDP}]") + "\n",
         ""},
        {"two slices trade endpoints",
         "endpointSlices:\n  - " + dns_slice("dns-a", "172.25.3.10", "[]") + "\n  - " +
             dns_slice("dns-b", "172.25.1.10", "[]") + "\n",
         ""},
        {"two new slices, one endpoint",
         "endpointSlices:\n  - " + dns_slice("dns-c", "172.25.1.20", "[]") + "\n  - " +
             dns_slice("dns-d", "172.25.1.20", "[]") + "\n",
         "endpointSlices[1].endpoints[0].addresses[0]: duplicate endpoint 172.25.1.20 of service "
         "kube-system/dns (also endpointSlices[0].endpoints[0].addresses[0])"},
        {"a manifest file: paths of its own",
         "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 80}]\n",
         "spec.clusterIP: TCP 10.96.0.10:80 is already used by service default/web (objs.yaml:5:14)"},
        {"a List: each item's path",
         "apiVersion: v1\nkind: List\nitems:\n"
         "  - {apiVersion: v1, kind: Service, metadata: {name: x}, spec: {clusterIP: 10.96.0.30, ports: [{port: 80}]}}\n"
         "  - {apiVersion: v1, kind: Service, metadata: {name: y}, spec: {clusterIP: 10.96.0.30, ports: [{port: 80}]}}\n",
         "items[1].spec.clusterIP: TCP 10.96.0.30:80 is already used by service default/x (items[0].spec.clusterIP)"},
    };
    for (const row& r : rows) {
        INFO(r.what);
        std::vector<std::string> got = errors(d, r.yaml);
        for (const auto& e : got) {
            UNSCOPED_INFO(e);
        }
        if (*r.expect == 0) {
            CHECK(got.empty());
        } else {
            REQUIRE(got.size() == 1);
            CHECK_THAT(got[0], Catch::Contains(r.expect));
        }
    }
}

TEST_CASE("apply checks: objects with errors of their own are left out", "[desired][services]") {
    desired_state d(service_base());
    config::parse_result r = config::parse_objects_yaml(
        "services:\n  - {name: x, clusterIP: 10.96.0.300, ports: [{port: 80}]}\n"
        "endpointSlices:\n  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4, "
        "metadata: {name: s, labels: {kubernetes.io/service-name: x}}, endpoints: [{addresses: [172.25.1.5]}]}\n",
        "objs.yaml");
    REQUIRE(r.errors.size() == 1);
    // The broken service is skipped, and its slice is not told that it does not exist.
    CHECK(d.check(r.cfg, {"services[0]"}).empty());
}

TEST_CASE("apply checks: at most 65535 endpoints per service, counted after the change",
          "[desired][services]") {
    config::node_file cfg = service_base();
    config::service& one = cfg.services[2];
    one.endpoints.clear();
    for (uint32_t i = 0; i < config::max_service_endpoints; ++i) {
        one.endpoints.push_back({.ip = ip4_addr{ip4("10.0.0.0").value + i}});
    }
    desired_state d(cfg);
    const std::string slice =
        "endpointSlices:\n  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4, "
        "metadata: {name: one-1, labels: {kubernetes.io/service-name: one}}, endpoints: [{addresses: [172.25.1.5]}]}\n";
    std::vector<std::string> got = errors(d, slice);
    REQUIRE(got.size() == 1);
    CHECK_THAT(got[0], Catch::Contains("endpointSlices[0]: service default/one would have 65536 endpoints, its "
                                       "own and its EndpointSlices'; at most 65535 are supported"));
    // The same slice with the service losing one of its own.
    std::string both = "services:\n  - {name: one, clusterIP: 10.96.0.20, ports: [{port: 6379}], endpoints: [";
    for (uint32_t i = 1; i < config::max_service_endpoints; ++i) {
        both += fmt::format("{}{{ip: {}}}", i > 1 ? ", " : "",
                            config::format_ip4(ip4_addr{ip4("10.0.0.0").value + i}));
    }
    both += "]}\n" + slice;
    CHECK(errors(d, both).empty());
}

TEST_CASE("endpoints of a service: backend port per service port", "[desired][services]") {
    desired_state d(service_base());
    auto ports_of = [&](const pod_key& key) {
        std::vector<std::pair<std::string, std::vector<uint16_t>>> out;
        for (const desired_state::resolved_endpoint& r : d.endpoints_of(key)) {
            out.emplace_back(config::format_ip4(r.ep.ip), r.ports);
        }
        return out;
    };
    using list = std::vector<std::pair<std::string, std::vector<uint16_t>>>;
    // Compact: targetPort, else the port itself.
    CHECK(ports_of({"default", "web"}) == list{{"172.25.1.5", {8080, 443}}, {"172.25.1.6", {8080, 443}}});
    // Compact with a port of the endpoint's own (a one-port service).
    CHECK(ports_of({"default", "one"}) == list{{"172.25.1.7", {6380}}, {"172.25.1.8", {7000}}});
    // Slices, in name order: the slice's port of the service port's name and protocol; 0 where
    // a slice has none.
    CHECK(ports_of({"kube-system", "dns"}) == list{{"172.25.1.10", {5353, 5354}}, {"172.25.3.10", {53, 0}}});
    std::vector<desired_state::resolved_endpoint> dns = d.endpoints_of({"kube-system", "dns"});
    CHECK(dns[0].ep.ready);
    CHECK_FALSE(dns[1].ep.ready);
    CHECK(d.endpoints_of({"default", "api"}).empty());
    CHECK(d.endpoints_of({"default", "nope"}).empty());
    CHECK(d.slices_of({"kube-system", "dns"}) == std::vector<pod_key>{{"kube-system", "dns-a"}, {"kube-system", "dns-b"}});
}

TEST_CASE("a reload's services: the difference, and the services it touches", "[desired][services]") {
    desired_state d(service_base());
    config::node_file next = service_base();
    next.services[0].endpoints.pop_back();                       // web changed
    next.services.erase(next.services.begin() + 1);              // api gone
    next.endpoint_slices[0].service = "web";                     // dns-b moves to web...
    next.endpoint_slices[0].ns = "default";                      // ...as default/dns-b
    next.endpoint_slices[0].ports = {{"http", config::proto_tcp, 8081}};
    object_change c = d.diff(next);
    REQUIRE(c.services.size() == 1);
    CHECK(c.services[0].name == "web");
    CHECK(c.delete_services == std::vector<pod_key>{{"default", "api"}});
    REQUIRE(c.endpoint_slices.size() == 1);
    CHECK(c.endpoint_slices[0].name == "dns-b");
    CHECK(c.delete_endpoint_slices == std::vector<pod_key>{{"kube-system", "dns-b"}});
    CHECK(d.services_touched(c) ==
          std::set<pod_key>{{"default", "web"}, {"default", "api"}, {"kube-system", "dns"}});

    d.record(c);
    CHECK(d.diff(next).empty());
    CHECK_FALSE(d.services().contains({"default", "api"}));
    CHECK(d.slices_of({"kube-system", "dns"}) == std::vector<pod_key>{{"kube-system", "dns-a"}});
    CHECK(d.endpoints_of({"default", "web"}).back().ports == std::vector<uint16_t>{8081, 0});
    // api's frontend and node port are free again; web's endpoints are its own and dns-b's.
    CHECK(errors(d, "services:\n  - {name: x, type: NodePort, clusterIP: 10.96.0.11, "
                    "ports: [{port: 80, nodePort: 30081}]}\n")
              .empty());
    CHECK_THAT(errors(d, "services:\n  - {name: web2, clusterIP: 10.96.0.40, ports: [{port: 80}]}\n"
                         "endpointSlices:\n  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, "
                         "addressType: IPv4, metadata: {name: dns-b, labels: {kubernetes.io/service-name: web}}, "
                         "endpoints: [{addresses: [172.25.1.5]}]}\n")
                   .at(0),
               Catch::Contains("duplicate endpoint 172.25.1.5 of service default/web (also service default/web)"));

    // Deleting a service with its slices, as twillctl delete service does, frees everything.
    object_change del;
    del.delete_services = {{"kube-system", "dns"}};
    del.delete_endpoint_slices = d.slices_of({"kube-system", "dns"});
    CHECK(d.services_touched(del) == std::set<pod_key>{{"kube-system", "dns"}});
    d.record(del);
    CHECK(d.endpoint_slices().size() == 1);
    CHECK(errors(d, "services:\n  - {name: dns, clusterIP: 10.96.0.53, ports: [{port: 53, protocol: UDP}], "
                    "endpoints: [{ip: 172.25.1.10}]}\n")
              .empty());
}
