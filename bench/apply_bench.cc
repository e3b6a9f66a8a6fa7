// How fast a change reaches packets, and whether that depends on how much is installed.
//
// A worker lcore forwards packets from pod-b1 to one probe address, in the pipeline
// twilld runs, and reports quiescent state every loop. The control thread (this one)
// installs N remote nodes and N pods, then repeatedly:
//   add:    `apply` of a new node whose slice holds the probe address, then waits until a
//           packet to the probe address is sent towards that node (its VXLAN frame or the
//           ARP request for its next hop, which only a packet that saw the node triggers);
//   replace: `apply` of the same node with another VTEP MAC (its next hop's MAC learned
//           meanwhile), then waits for a VXLAN frame with the new inner destination MAC;
//           the old entry is freed after a grace period, inside the request;
//   delete: `delete node`, then waits until a packet to the probe is dropped as having no
//           remote node.
// Each request goes through the control API as twillctl sends it (JSON, with the YAML
// text inside), less the socket. Per N and operation it prints the cost of the request
// (parse, check, publish, and the grace period when something was replaced) and the time
// from the request to the first packet that saw it: median, p99 and max, in µs.
//
//   twill-apply-bench [--trials N] [--sizes 10,1000,100000] [-- EAL args]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "control/api.h"
#include "control/build_tables.h"
#include "control/eal.h"
#include "control/node_state.h"
#include "dataplane/net/checksum.h"
#include "dataplane/net/headers.h"
#include "dataplane/pipeline.h"

using namespace twill;

namespace {

// 10.0.0.0/8 cut into /25 slices: room for 131072 nodes. This node has 10.0.0.0/25.
constexpr ip4_addr probe = ip4_addr::from_octets(10, 255, 255, 200);  // in the last slice
constexpr ip4_addr probe_node_ip = ip4_addr::from_octets(198, 19, 255, 250);
const mac_addr gateway = default_gateway_mac;
const mac_addr pod_mac = {{0x0a, 0, 0, 0, 0, 2}};
const mac_addr probe_vtep2 = {{0x0e, 2, 0, 0, 0, 2}};

ip4_addr node_ip(uint32_t i) { return {ip4_addr::from_octets(198, 18, 0, 10).value + i}; }

config::node_file make_config(uint32_t n) {
    config::node_file cfg;
    cfg.node = {"twill-b", ip4_addr::from_octets(198, 18, 0, 2),
                {ip4_addr::from_octets(10, 0, 0, 0), 25}, {{0x0e, 0, 0, 0, 0, 2}}};
    cfg.cluster_cidr = {ip4_addr::from_octets(10, 0, 0, 0), 8};
    cfg.underlay_port = "underlay";
    for (uint32_t i = 0; i < n; ++i) {
        config::remote_node r;
        r.name = fmt::format("node-{}", i);
        r.ip = node_ip(i);
        r.pod_cidr = {{ip4_addr::from_octets(10, 0, 0, 0).value + ((i + 1) << 7)}, 25};
        r.vtep_mac = {{0x0e, 1, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i), 0}};
        cfg.nodes.push_back(r);
        config::pod p;
        p.name = fmt::format("pod-{}", i);
        p.ns = "bench";
        p.ip = {r.pod_cidr.addr.value + 2};
        cfg.pods.push_back(p);
    }
    config::pod b1;
    b1.name = "pod-b1";
    b1.ip = ip4_addr::from_octets(10, 0, 0, 2);
    b1.port = "pb1";
    b1.mac = pod_mac;
    cfg.pods.push_back(b1);
    return cfg;
}

struct shared {
    node_state* state = nullptr;
    const node_params* params = nullptr;
    rte_mempool* pool = nullptr;
    rte_rcu_qsbr* qsbr = nullptr;
    std::atomic<bool> stop{false};
    // 1: wait for a packet sent towards probe_node_ip; 2: for a no_remote_node drop;
    // 3: for a VXLAN frame carrying the probe node's second VTEP MAC.
    std::atomic<int> armed{0};
    std::atomic<uint64_t> seen_tsc{0};
    std::atomic<uint64_t> loops{0};
};

int worker_main(void* arg) {
    auto& s = *static_cast<shared*>(arg);
    unsigned id = 0;
    rte_rcu_qsbr_thread_register(s.qsbr, id);
    rte_rcu_qsbr_thread_online(s.qsbr, id);
    worker_counters counters;
    auto ctx = std::make_unique<pipeline_ctx>();
    ctx->params = s.params;
    ctx->learned = &s.state->learned();
    ctx->counters = &counters;
    ctx->pool = s.pool;

    // pod-b1 -> probe, UDP; rebuilt from these bytes every time.
    std::vector<uint8_t> frame(14 + 20 + 8 + 18, 0);
    auto* eth = reinterpret_cast<net::eth_hdr*>(frame.data());
    eth->dst = gateway;
    eth->src = pod_mac;
    eth->type.set(net::ether_type_ipv4);
    auto* ip = reinterpret_cast<net::ipv4_hdr*>(frame.data() + 14);
    ip->version_ihl = 0x45;
    ip->total_length.set(uint16_t(frame.size() - 14));
    ip->ttl = 64;
    ip->proto = net::ip_proto_udp;
    ip->src.set(ip4_addr::from_octets(10, 0, 0, 2).value);
    ip->dst.set(probe.value);
    ip->checksum = uint16_t(~net::raw_checksum(ip, sizeof(*ip)));
    auto* udp = reinterpret_cast<net::udp_hdr*>(frame.data() + 34);
    udp->src_port.set(1000);
    udp->dst_port.set(2000);
    udp->length.set(uint16_t(frame.size() - 34));

    while (!s.stop.load(std::memory_order_relaxed)) {
        ctx->slices = s.state->published().slices.load(std::memory_order_acquire);
        ctx->pods = s.state->published().pods.load(std::memory_order_acquire);
        ctx->services = s.state->published().services;
        ctx->ct = s.state->published().ct;
        ctx->now_tsc = rte_rdtsc();
        rte_mbuf* m = rte_pktmbuf_alloc(s.pool);
        if (m != nullptr) {
            std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
            int armed = s.armed.load(std::memory_order_acquire);
            uint64_t no_node = counters.drops[unsigned(drop::no_remote_node)].get();
            pod_input(*ctx, 1, &m, 1);
            bool saw = false;
            tx_queue& q = ctx->tx[0];
            for (uint16_t k = 0; k < q.n; ++k) {
                rte_mbuf* out = q.pkts[k];
                auto* e = rte_pktmbuf_mtod(out, const net::eth_hdr*);
                if (e->type.get() == net::ether_type_ipv4) {
                    auto* outer = rte_pktmbuf_mtod_offset(out, const net::ipv4_hdr*, 14);
                    auto* inner = rte_pktmbuf_mtod_offset(out, const net::eth_hdr*, 50);
                    saw |= outer->dst_addr() == probe_node_ip && (armed != 3 || inner->dst == probe_vtep2);
                } else if (e->type.get() == net::ether_type_arp) {
                    auto* arp = rte_pktmbuf_mtod_offset(out, const net::arp_hdr*, 14);
                    saw |= arp->tpa.get() == probe_node_ip.value;
                }
                rte_pktmbuf_free(out);
            }
            q.n = 0;
            ctx->tx_dirty = 0;
            if (armed == 2) {
                saw = counters.drops[unsigned(drop::no_remote_node)].get() != no_node;
            }
            if (armed != 0 && saw) {
                s.seen_tsc.store(rte_rdtsc(), std::memory_order_relaxed);
                s.armed.store(0, std::memory_order_release);
            }
        }
        s.loops.fetch_add(1, std::memory_order_relaxed);
        rte_rcu_qsbr_quiescent(s.qsbr, id);
    }
    drop_parked(*ctx);
    rte_rcu_qsbr_thread_offline(s.qsbr, id);
    rte_rcu_qsbr_thread_unregister(s.qsbr, id);
    return 0;
}

struct stats {
    double median, p99, max;
};
stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))]; };
    return {at(0.5), at(0.99), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
    int trials = 300;
    std::vector<uint32_t> sizes = {10, 1000, 100000};
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--trials" && i + 1 < argc) {
            trials = std::atoi(argv[++i]);
        } else if (a == "--sizes" && i + 1 < argc) {
            sizes.clear();
            std::string list = argv[++i];
            for (size_t at = 0; at < list.size();) {
                size_t comma = list.find(',', at);
                sizes.push_back(uint32_t(std::stoul(list.substr(at, comma - at))));
                at = comma == std::string::npos ? list.size() : comma + 1;
            }
        } else if (a == "--") {
            ++i;
            break;
        } else {
            std::fprintf(stderr, "usage: twill-apply-bench [--trials N] [--sizes 10,1000,100000] [-- EAL args]\n");
            return 2;
        }
    }
    std::vector<std::string> eal = {"twill-apply-bench", "--no-pci", "--no-huge", "-m", "512",
                                    "--no-shconf", "--log-level=error",
                                    "--file-prefix=twill-apply-bench-" + std::to_string(getpid())};
    for (; i < argc; ++i) {
        eal.emplace_back(argv[i]);
    }
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "twill-apply-bench: EAL init failed\n");
        return 1;
    }
    const std::string runtime_dir = eal_runtime_dir();
    unsigned worker = rte_get_next_lcore(-1, 1, 0);
    if (worker >= RTE_MAX_LCORE) {
        std::fprintf(stderr, "twill-apply-bench: needs two lcores (e.g. -- -l 0,1)\n");
        return 1;
    }
    rte_mempool* pool = rte_pktmbuf_pool_create("apply_bench", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                int(rte_socket_id()));
    size_t qsize = rte_rcu_qsbr_get_memsize(1);
    auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("bench_qsbr", qsize, RTE_CACHE_LINE_SIZE));
    if (pool == nullptr || qsbr == nullptr || rte_rcu_qsbr_init(qsbr, 1) != 0) {
        std::fprintf(stderr, "twill-apply-bench: no memory\n");
        return 1;
    }
    const double us_per_tsc = 1e6 / double(rte_get_tsc_hz());
    fmt::print("twill-apply-bench: {} trials per size and operation, worker on lcore {}\n\n",
               trials, worker);
    fmt::print("| installed nodes + pods | op | request median µs | p99 | max | request → first packet median µs | p99 | max |\n");
    fmt::print("|---|---|---|---|---|---|---|---|\n");

    const std::string add_line =
        fmt::format(R"({{"verb":"apply","source":"probe.yaml","yaml":"nodes:\n  - {{name: probe, ip: {}, podCIDR: 10.255.255.128/25, vtepMAC: \"0e:02:00:00:00:01\"}}\n"}})",
                    config::format_ip4(probe_node_ip));
    const std::string replace_line =
        fmt::format(R"({{"verb":"apply","source":"probe.yaml","yaml":"nodes:\n  - {{name: probe, ip: {}, podCIDR: 10.255.255.128/25, vtepMAC: \"{}\"}}\n"}})",
                    config::format_ip4(probe_node_ip), config::format_mac(probe_vtep2));
    const std::string delete_line = R"({"verb":"delete","kind":"node","name":"probe"})";
    const char* op_names[] = {"apply (add node)", "apply (replace node)", "delete node"};
    const int op_wait[] = {1, 3, 2};

    for (uint32_t n : sizes) {
        config::node_file cfg = make_config(n);
        node_params params = make_params(cfg, 0, mac_addr{{2, 0, 0, 0, 0, 2}}, rte_get_tsc_hz());
        uint64_t t_install = rte_rdtsc();
        auto state = std::make_unique<node_state>(cfg, params, std::map<std::string, uint16_t>{{"pb1", 1}}, qsbr);
        double install_ms = double(rte_rdtsc() - t_install) * us_per_tsc / 1000;
        api_context api{*state, nullptr, "bench"};
        shared s;
        s.state = state.get();
        s.params = &params;
        s.pool = pool;
        s.qsbr = qsbr;
        rte_eal_remote_launch(worker_main, &s, worker);
        while (s.loops.load() == 0) {
        }

        std::vector<double> cost[3], visible[3];
        bool ok = true;
        for (int t = 0; t < trials && ok; ++t) {
            for (int op = 0; op < 3; ++op) {
                if (op == 1) {  // the next hop answered ARP
                    const remote_node_entry* e =
                        state->published().slices.load()->node_by_ip(probe_node_ip);
                    state->learned().neighbours[e->neighbour].mac.set(mac_addr{{2, 0, 0, 0, 0, 9}});
                }
                s.seen_tsc.store(0);
                s.armed.store(op_wait[op], std::memory_order_release);
                uint64_t t0 = rte_rdtsc();
                const std::string& line = op == 0 ? add_line : op == 1 ? replace_line : delete_line;
                std::string reply = handle_request(line, api);
                uint64_t t1 = rte_rdtsc();
                if (reply.find("\"ok\":true") == std::string::npos) {
                    std::fprintf(stderr, "twill-apply-bench: request failed: %s\n", reply.c_str());
                    ok = false;
                    break;
                }
                uint64_t deadline = t1 + rte_get_tsc_hz();  // 1 s: a bound, not an expectation
                while (s.armed.load(std::memory_order_acquire) != 0 && rte_rdtsc() < deadline) {
                }
                uint64_t t2 = s.seen_tsc.load();
                if (t2 == 0) {
                    std::fprintf(stderr, "twill-apply-bench: no packet saw the change within 1 s\n");
                    ok = false;
                    break;
                }
                cost[op].push_back(double(t1 - t0) * us_per_tsc);
                visible[op].push_back(double(t2 - t0) * us_per_tsc);
            }
        }
        s.stop = true;
        rte_eal_wait_lcore(worker);
        if (!ok) {
            return 1;
        }
        for (int op = 0; op < 3; ++op) {
            stats c = summarize(cost[op]), v = summarize(visible[op]);
            fmt::print("| {} + {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} |\n", n, n,
                       op_names[op], c.median, c.p99, c.max,
                       v.median, v.p99, v.max);
        }
        std::fflush(stdout);
        state.reset();
        std::fprintf(stderr, "  (%u nodes + %u pods installed in %.1f ms)\n", n, n, install_ms);
    }
    rte_free(qsbr);
    rte_mempool_free(pool);
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    return 0;
}
