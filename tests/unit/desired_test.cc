// The desired state's incremental checks (what `twillctl apply` runs instead of merging
// and revalidating everything), the reload diff, and the in-place tables under them.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "control/desired.h"
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
