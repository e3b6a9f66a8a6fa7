// Live changes through node_state::apply: validated whole, published with a release
// store, old tables freed after the grace period, learned state kept where it belongs.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/net/headers.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::test;

namespace {

const mac_addr gw = default_gateway_mac;

config::node_file parse(const std::string& yaml) {
    config::parse_result r = config::parse_yaml(yaml, "change.yaml");
    REQUIRE(r.ok());
    return r.cfg;
}

// The fixture's file with `from` replaced by `to`.
config::node_file edited(const std::string& from, const std::string& to) {
    std::string yaml = default_node_yaml;
    size_t at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, from.size(), to);
    return parse(yaml);
}

const std::string kernel_c =
    "  - {name: kernel-c, ip: 198.18.0.3, podCIDR: 172.25.3.0/24, vtepMAC: \"0e:00:00:00:03:00\"}\n";
const std::string kernel_d =
    "  - {name: kernel-d, ip: 198.18.0.4, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n";

std::vector<uint8_t> to(const char* dst) {
    return pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4(dst)).udp(1, 2).payload(8).bytes();
}

}  // namespace

TEST_CASE("a node added at run time becomes reachable, a removed one does not", "[state]") {
    test_node node;
    CHECK(node.pod(pod_b1_port, to("172.25.4.9")).empty());
    CHECK(node.drops(drop::no_remote_node) == 1);

    REQUIRE(node.state().apply(edited(kernel_c, kernel_c + kernel_d)).empty());
    node.snapshot();
    node.learn_neighbour(ip4("198.18.0.4"), mac("02:00:00:00:04:04"));
    auto out = node.pod(pod_b1_port, to("172.25.4.9"));
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    const auto* outer = reinterpret_cast<const net::vxlan_encap_hdr*>(out[0].bytes.data());
    CHECK(outer->ip.dst_addr() == ip4("198.18.0.4"));

    REQUIRE(node.state().apply(edited(kernel_c, "")).empty());
    node.snapshot();
    CHECK(node.pod(pod_b1_port, to("172.25.4.9")).empty());
    CHECK(node.pod(pod_b1_port, to("172.25.3.9")).empty());
    CHECK(node.drops(drop::no_remote_node) == 3);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("learned next hops survive unrelated changes; a reused slot starts empty", "[state]") {
    test_node node;
    node.learn_neighbour(ip4("198.18.0.1"), kernel_a_mac);
    node.learn_neighbour(ip4("198.18.0.3"), mac("02:00:00:00:03:03"));

    // kernel-c goes, kernel-d comes: kernel-a keeps its MAC, kernel-d is not resolved
    // (its slot may be kernel-c's old one, which must not carry kernel-c's MAC over).
    REQUIRE(node.state().apply(edited(kernel_c, "")).empty());
    REQUIRE(node.state().apply(edited(kernel_c, kernel_d)).empty());
    node.snapshot();
    auto a = node.pod(pod_b1_port, to("172.25.1.9"));
    REQUIRE(a.size() == 1);
    CHECK(reinterpret_cast<const net::eth_hdr*>(a[0].bytes.data())->dst == kernel_a_mac);
    auto d = node.pod(pod_b1_port, to("172.25.4.9"));
    REQUIRE(d.size() == 1);  // an ARP request, not the packet
    CHECK(reinterpret_cast<const net::eth_hdr*>(d[0].bytes.data())->type.get() == net::ether_type_arp);
    CHECK(node.drops(drop::neighbour_unresolved) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("a change that needs a restart is refused whole, tables untouched", "[state]") {
    test_node node;
    const slice_table* before = node.state().published().slices.load();
    auto next = edited("ip: 198.18.0.2", "ip: 198.18.0.9");
    next.nodes.pop_back();  // a live-changeable difference in the same change
    auto refused = node.state().apply(next);
    REQUIRE(refused.size() == 1);
    CHECK_THAT(refused[0], Catch::Contains("node changed"));
    CHECK(node.state().published().slices.load() == before);
    CHECK(node.state().desired().nodes().size() == 2);

}

TEST_CASE("pods come and go at run time: ports attached first, detached after the swap",
          "[state]") {
    config::node_file cfg = parse(default_node_yaml);
    node_params params = make_params(cfg, 0, underlay_mac, 1'000'000);
    std::vector<std::string> log;
    bool attach_fails = false;
    port_ops ops{[&](const std::string& devargs) {
                     log.push_back("attach " + devargs);
                     port_result r;
                     r.ok = !attach_fails;
                     r.port_id = 9;
                     r.error = "no such interface";
                     return r;
                 },
                 [&](uint16_t port) { log.push_back("detach " + std::to_string(port)); }};
    node_state state(cfg, params, {{"pb1", 1}, {"pb2", 2}}, nullptr, ops);

    // A new pod on a new port; pod-b1 goes (its port with it).
    std::string yaml = default_node_yaml;
    yaml.replace(yaml.find("  - {name: pod-b1, ip: 172.25.2.2, port: \"pb1\"}\n"),
                 std::string("  - {name: pod-b1, ip: 172.25.2.2, port: \"pb1\"}\n").size(),
                 "  - {name: pod-b9, ip: 172.25.2.9, port: \"pb9\"}\n");
    const config::node_file next = parse(yaml);

    attach_fails = true;
    auto refused = state.apply(next);
    REQUIRE(refused.size() == 1);
    CHECK_THAT(refused[0], Catch::Contains("pod default/pod-b9: no such interface"));
    CHECK(state.pod_ports() == std::map<std::string, uint16_t>{{"pb1", 1}, {"pb2", 2}});
    CHECK(state.published().pods.load()->lookup(ip4("172.25.2.2")) != no_index);

    attach_fails = false;
    log.clear();
    REQUIRE(state.apply(next).empty());
    CHECK(log == std::vector<std::string>{"attach pb9", "detach 1"});
    const pod_table* pods = state.published().pods.load();
    CHECK(pods->lookup(ip4("172.25.2.2")) == no_index);
    REQUIRE(pods->lookup(ip4("172.25.2.9")) != no_index);
    CHECK(pods->pod(pods->lookup(ip4("172.25.2.9"))).port_id == 9);
    CHECK(pods->by_port(1) == no_index);

    // Back to the fixture's pods, with pod-b2 at a new address on the same port: pb2 is
    // kept (no detach, no attach), pod-b1 comes back on pb1, pod-b9 goes.
    log.clear();
    REQUIRE(state.apply(edited("pod-b2, ip: 172.25.2.3", "pod-b2, ip: 172.25.2.4")).empty());
    CHECK(log == std::vector<std::string>{"attach pb1", "detach 9"});
    CHECK(state.published().pods.load()->lookup(ip4("172.25.2.4")) != no_index);
}

TEST_CASE("swaps under a concurrent reader: no reader sees freed memory", "[state][rcu]") {
    size_t size = rte_rcu_qsbr_get_memsize(1);
    auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("test_qsbr", size, RTE_CACHE_LINE_SIZE));
    REQUIRE(qsbr != nullptr);
    REQUIRE(rte_rcu_qsbr_init(qsbr, 1) == 0);
    {
        config::node_file cfg = parse(default_node_yaml);
        node_params params = make_params(cfg, 0, underlay_mac, 1'000'000);
        node_state state(cfg, params, {{"pb1", 1}, {"pb2", 2}}, qsbr);
        const config::node_file with_d = edited(kernel_c, kernel_c + kernel_d);
        const config::node_file without_d = parse(default_node_yaml);

        std::atomic<bool> done{false};
        std::atomic<uint64_t> lookups{0};
        std::thread reader([&] {
            leave_main_cpu();
            rte_rcu_qsbr_thread_register(qsbr, 0);
            rte_rcu_qsbr_thread_online(qsbr, 0);
            while (!done.load(std::memory_order_relaxed)) {
                const slice_table* t = state.published().slices.load(std::memory_order_acquire);
                // Read through the table as a worker would; ASan reports any freed access.
                const remote_node_entry* n = t->lookup(ip4("172.25.4.9"));
                uint64_t sum = n == nullptr ? 0 : n->ip.value;
                for (uint32_t slot = 0; slot < t->slot_end(); ++slot) {
                    if (const remote_node_entry* e = t->node(slot)) {
                        sum += e->rewrite.udp_sum;
                    }
                }
                lookups.fetch_add(1 + (sum & 0), std::memory_order_relaxed);
                rte_rcu_qsbr_quiescent(qsbr, 0);
            }
            rte_rcu_qsbr_thread_offline(qsbr, 0);
            rte_rcu_qsbr_thread_unregister(qsbr, 0);
        });
        while (lookups.load() == 0) {  // the reader is online and reading before swaps start
            std::this_thread::yield();
        }
        for (int i = 0; i < 500; ++i) {
            REQUIRE(state.apply(i % 2 ? without_d : with_d).empty());
        }
        done = true;
        reader.join();
        CHECK(lookups.load() > 0);
        CHECK(state.desired().nodes().size() == 2);  // the last change (i = 499) removed kernel-d
    }
    rte_free(qsbr);
}
