// Changes under load: a worker thread forwards from an in-process generator as fast as it
// can while this thread applies thousands of changes to remote nodes (slices, VTEP MACs,
// next-hop addresses) and local pods through the same path twillctl uses. Packets whose
// destination did not change must all arrive, at the right node; nothing may touch freed
// memory (run under ASan by scripts/test.sh); the mempool ends where it began.
//
// The rates are printed, never asserted: timings do not belong in pass/fail tests.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/net/headers.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::test;

namespace {

constexpr int stable_nodes = 16;
constexpr int churn_nodes = 48;
constexpr int churn_pods = 8;
#if defined(__SANITIZE_ADDRESS__)
constexpr int changes = 20000;  // ASan is ~20 times slower; still thousands a second
#else
constexpr int changes = 50000;
#endif

// Stable node j: kernel-sJ, 198.18.0.(10+j), slice 172.25.(10+j).0/24, pod .5 behind it.
ip4_addr stable_ip(int j) { return ip4_addr::from_octets(198, 18, 0, uint8_t(10 + j)); }
ip4_addr stable_pod(int j) { return ip4_addr::from_octets(172, 25, uint8_t(10 + j), 5); }
mac_addr stable_vtep(int j) { return {{0x0e, 0, 0, 0, uint8_t(10 + j), 0}}; }
mac_addr stable_next_hop(int j) { return {{0x02, 0, 0, 0, uint8_t(10 + j), 1}}; }

std::string node_yaml() {
    std::string y = R"(
node: {name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster:
  clusterCIDR: 172.25.0.0/16
  vxlan: {vni: 1, port: 8472, mtu: 1450}
ports: {underlay: "underlay"}
pods:
  - {name: pod-b1, ip: 172.25.2.2, port: "pb1", mac: "0a:00:00:00:02:02"}
  - {name: pod-b2, ip: 172.25.2.3, port: "pb2", mac: "0a:00:00:00:02:03"}
nodes:
)";
    for (int j = 0; j < stable_nodes; ++j) {
        y += fmt::format("  - {{name: kernel-s{}, ip: {}, podCIDR: 172.25.{}.0/24, vtepMAC: \"{}\"}}\n",
                         j, config::format_ip4(stable_ip(j)), 10 + j,
                         config::format_mac(stable_vtep(j)));
    }
    return y;
}

// What the writer does next to churn node or pod `k`, by turn.
config::remote_node churn_node(int k, int version) {
    config::remote_node n;
    n.name = fmt::format("kernel-c{}", k);
    // A next hop that moves between two addresses, a VTEP MAC that changes every time.
    n.ip = ip4_addr::from_octets(198, 18, uint8_t(1 + version % 2), uint8_t(k + 1));
    n.pod_cidr = {ip4_addr::from_octets(172, 25, uint8_t(100 + k), 0), 24};
    n.vtep_mac = {{0x0e, 1, uint8_t(version), uint8_t(version >> 8), uint8_t(k), 0}};
    return n;
}

config::pod churn_pod(int k) {
    config::pod p;
    p.name = fmt::format("churn-{}", k);
    p.ip = ip4_addr::from_octets(172, 25, 2, uint8_t(100 + k));
    p.port = fmt::format("cp{}", k);
    return p;
}

struct tally {
    uint64_t sent_stable = 0;     // to stable remote pods
    uint64_t encap_ok = 0;        // ... that left for the right node
    uint64_t encap_wrong = 0;     // ... that left for another node
    uint64_t sent_local = 0;      // to pod-b2 from pod-b1, and decapsulated from stable nodes
    uint64_t local_ok = 0;
    uint64_t sent_churn = 0;      // to churned destinations: any outcome
    uint64_t loops = 0;
};

}  // namespace

TEST_CASE("stress: thousands of changes while the worker forwards; unchanged destinations lose nothing",
          "[state][rcu][stress]") {
    size_t size = rte_rcu_qsbr_get_memsize(1);
    auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("stress_qsbr", size, RTE_CACHE_LINE_SIZE));
    REQUIRE(qsbr != nullptr);
    REQUIRE(rte_rcu_qsbr_init(qsbr, 1) == 0);
    const unsigned baseline = rte_mempool_in_use_count(test_pool());
    {
        config::parse_result r = config::parse_yaml(node_yaml(), "stress.yaml");
        REQUIRE(r.ok());
        node_params params = make_params(r.cfg, underlay_port, underlay_mac, 1'000'000);
        uint64_t free_ports = 0;  // fake hot-plug: ports 3..31
        port_ops ops{[&](const std::string&) {
                         for (uint16_t p = 3; p < RTE_MAX_ETHPORTS; ++p) {
                             if (!(free_ports >> p & 1)) {
                                 free_ports |= uint64_t(1) << p;
                                 return port_result{true, p, {}, ""};
                             }
                         }
                         return port_result{false, 0, {}, "no port left"};
                     },
                     [&](uint16_t p) { free_ports &= ~(uint64_t(1) << p); }};
        node_state state(r.cfg, params, {{"pb1", 1}, {"pb2", 2}}, qsbr, ops);
        const slice_table* slices = state.published().slices.load();
        for (int j = 0; j < stable_nodes; ++j) {
            state.learned().neighbours[slices->node_by_ip(stable_ip(j))->neighbour].mac.set(stable_next_hop(j));
        }

        // Frames the generator copies: pod-b1 to each stable pod, to pod-b2, to churned
        // slices and pods; VXLAN from each stable node to pod-b2.
        std::vector<std::vector<uint8_t>> to_stable, to_churn, from_stable;
        for (int j = 0; j < stable_nodes; ++j) {
            to_stable.push_back(pkt().eth(default_gateway_mac, pod_b1_mac)
                                    .ipv4(ip4("172.25.2.2"), stable_pod(j))
                                    .udp(1000 + j, 80).payload(64).bytes());
            from_stable.push_back(pkt().eth(underlay_mac, stable_next_hop(j))
                                      .ipv4(stable_ip(j), ip4("198.18.0.2"), {.frag = 0})
                                      .udp(40000 + j, 8472).vxlan(1)
                                      .eth(twill_b_vtep, stable_vtep(j))
                                      .ipv4(stable_pod(j), ip4("172.25.2.3"))
                                      .udp(80, 1000 + j).payload(64).bytes());
        }
        for (int k = 0; k < churn_nodes; ++k) {
            to_churn.push_back(pkt().eth(default_gateway_mac, pod_b1_mac)
                                   .ipv4(ip4("172.25.2.2"), ip4_addr::from_octets(172, 25, uint8_t(100 + k), 5))
                                   .udp(2000 + k, 80).payload(64).bytes());
        }
        for (int k = 0; k < churn_pods; ++k) {
            to_churn.push_back(pkt().eth(default_gateway_mac, pod_b1_mac)
                                   .ipv4(ip4("172.25.2.2"), churn_pod(k).ip)
                                   .udp(3000 + k, 80).payload(64).bytes());
        }
        const std::vector<uint8_t> to_b2 = pkt().eth(default_gateway_mac, pod_b1_mac)
                                               .ipv4(ip4("172.25.2.2"), ip4("172.25.2.3"))
                                               .udp(5, 6).payload(64).bytes();

        worker_counters counters;
        std::atomic<bool> done{false}, started{false};
        tally t;
        std::thread worker([&] {
            leave_main_cpu();
            rte_rcu_qsbr_thread_register(qsbr, 0);
            rte_rcu_qsbr_thread_online(qsbr, 0);
            auto ctx = std::make_unique<pipeline_ctx>();
            ctx->params = &params;
            ctx->learned = &state.learned();
            ctx->counters = &counters;
            ctx->pool = test_pool();
            ctx->now_tsc = 10'000'000;
            auto burst = [&](uint16_t port, const std::vector<const std::vector<uint8_t>*>& frames) {
                rte_mbuf* pkts[burst_size];
                uint16_t n = 0;
                for (const auto* f : frames) {
                    pkts[n++] = to_mbuf(*f);
                }
                if (port == underlay_port) {
                    underlay_input(*ctx, pkts, n);
                } else {
                    pod_input(*ctx, port, pkts, n);
                }
            };
            while (!done.load(std::memory_order_relaxed)) {
                ctx->slices = state.published().slices.load(std::memory_order_acquire);
                ctx->pods = state.published().pods.load(std::memory_order_acquire);
                ctx->policy = state.published().policy.load(std::memory_order_acquire);
                ctx->services = state.published().services;
                ctx->ct = state.published().ct;
                ++ctx->now_tsc;
                uint64_t i = t.loops;
                std::vector<const std::vector<uint8_t>*> from_b1, underlay;
                for (int s = 0; s < 8; ++s) {
                    from_b1.push_back(&to_stable[(i * 8 + s) % stable_nodes]);
                }
                for (int s = 0; s < 4; ++s) {
                    from_b1.push_back(&to_b2);
                    from_b1.push_back(&to_churn[(i * 4 + s) % to_churn.size()]);
                    underlay.push_back(&from_stable[(i * 4 + s) % stable_nodes]);
                }
                burst(pod_b1_port, from_b1);
                burst(underlay_port, underlay);
                t.sent_stable += 8;
                t.sent_local += 8;
                t.sent_churn += 4;
                // What came out, checked and freed in place of the transmit.
                for (uint16_t port = 0; port < RTE_MAX_ETHPORTS; ++port) {
                    tx_queue& q = ctx->tx[port];
                    for (uint16_t k = 0; k < q.n; ++k) {
                        rte_mbuf* m = q.pkts[k];
                        if (port == underlay_port && m->data_len >= 64 + sizeof(net::ipv4_hdr)) {
                            const auto* outer = rte_pktmbuf_mtod_offset(m, const net::ipv4_hdr*, 14);
                            const auto* inner = rte_pktmbuf_mtod_offset(m, const net::ipv4_hdr*, 64);
                            uint32_t dst = inner->dst_addr().value;
                            if ((dst >> 8 & 0xff) >= 10 && (dst >> 8 & 0xff) < 10 + stable_nodes) {
                                int j = int(dst >> 8 & 0xff) - 10;
                                (outer->dst_addr() == stable_ip(j) ? t.encap_ok : t.encap_wrong)++;
                            }
                        } else if (port == pod_b2_port) {
                            ++t.local_ok;
                        }
                        rte_pktmbuf_free(m);
                    }
                    q.n = 0;
                }
                ctx->tx_dirty = 0;
                ++t.loops;
                started.store(true, std::memory_order_relaxed);
                rte_rcu_qsbr_quiescent(qsbr, 0);
            }
            drop_parked(*ctx);
            rte_rcu_qsbr_thread_offline(qsbr, 0);
            rte_rcu_qsbr_thread_unregister(qsbr, 0);
        });
        while (!started.load()) {
            std::this_thread::yield();
        }

        // The writer: node k's state cycles absent -> added -> new VTEP MAC -> moved to
        // another next hop -> deleted; pods are added and deleted; each change is checked
        // against the desired state first, as `twillctl apply` is.
        std::vector<int> version(churn_nodes, -1);  // -1 = absent
        std::vector<bool> pod_there(churn_pods, false);
        int applied = 0, node_changes = 0, pod_changes = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < changes; ++c) {
            object_change change;
            config::node_file objects;
            if (c % 4 != 3) {
                int k = (c * 7) % churn_nodes;
                if (version[k] >= 0 && version[k] % 3 == 2) {
                    change.delete_nodes.push_back(fmt::format("kernel-c{}", k));
                    version[k] = -(version[k] + 2);  // absent, remembering the count
                } else {
                    int v = version[k] >= 0 ? version[k] + 1 : -version[k] - 1;
                    objects.nodes.push_back(churn_node(k, v));
                    version[k] = v;
                }
                ++node_changes;
            } else {
                int k = (c / 4) % churn_pods;
                if (pod_there[k]) {
                    change.delete_pods.emplace_back("default", churn_pod(k).name);
                } else {
                    objects.pods.push_back(churn_pod(k));
                }
                pod_there[k] = !pod_there[k];
                ++pod_changes;
            }
            std::vector<config::error> errors = state.desired().check(objects);
            if (!errors.empty()) {
                FAIL_CHECK(config::to_string(errors.front()));
                break;
            }
            change.nodes = objects.nodes;
            change.pods = objects.pods;
            std::vector<std::string> refused = state.apply(change);
            if (!refused.empty()) {
                FAIL_CHECK(refused.front());
                break;
            }
            ++applied;
            if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) {
                break;  // a bound, not an expectation
            }
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        done = true;
        worker.join();

        WARN(fmt::format("{} changes ({} to nodes, {} to pods) in {:.2f} s: {:.0f} changes/s; "
                         "worker: {} bursts, {:.2f} Mpps offered",
                         applied, node_changes, pod_changes, secs, applied / secs, t.loops,
                         double(t.loops) * 20 / secs / 1e6));
        CHECK(applied == changes);
        CHECK(t.loops > 0);
        // Unchanged destinations: every packet arrived, at the right node.
        CHECK(t.encap_ok == t.sent_stable);
        CHECK(t.encap_wrong == 0);
        CHECK(t.local_ok == t.sent_local);
        // Drops only where destinations changed.
        uint64_t drops = 0;
        for (unsigned reason = 0; reason < std::size(counters.drops); ++reason) {
            uint64_t n = counters.drops[reason].get();
            drops += n;
            if (reason != unsigned(drop::no_remote_node) && reason != unsigned(drop::neighbour_unresolved) &&
                reason != unsigned(drop::no_local_pod) && reason != unsigned(drop::pod_unknown_mac)) {
                CHECK(n == 0);
            }
        }
        CHECK(drops <= t.sent_churn);
    }
    CHECK(rte_mempool_in_use_count(test_pool()) == baseline);
    REQUIRE_NO_LEAKED_MBUFS();
    rte_free(qsbr);
}
