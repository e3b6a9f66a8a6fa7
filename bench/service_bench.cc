// twill-service-bench: cycles per packet of the service path (kube-proxy's job) at 10 to
// 100k services of 10 endpoints each, beside plain forwarding and io forwarding, on the
// virtual devices and with the in-process generator of twill-bench (bench/twill_bench.cc):
//
//   plain encap          a local pod -> a pod on the remote node, no service;
//   service, ct hit      the pod -> cluster IP:port of services spread over all N, each
//                        flow's connection created beforehand: every packet hits;
//   service, new flow    every packet a flow never seen (source port and service vary).
//
// A service packet is translated to its endpoint on the remote node and encapsulated, so
// "service's own cost" = its cost over io minus plain encap's, paired per trial. The
// generator does the same work for every scenario (copy a frame, set its address and
// source port), and each twill trial is paired with an io trial of the same frames.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_version.h>

#include "bench/service_flows.h"
#include "bench/service_report.h"
#include "control/build_tables.h"
#include "control/eal.h"
#include "control/node_state.h"
#include "control/ports.h"
#include "dataplane/pipeline.h"
#include "dataplane/service/service.h"
#include "dataplane/worker/io.h"

namespace {

using namespace twill;
using namespace twill::bench;

const char* const node_yaml = R"(
node: {name: bench, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster:
  clusterCIDR: 172.25.0.0/16
  serviceCIDR: 10.96.0.0/12
  vxlan: {vni: 1, port: 8472, mtu: 1450}
ports: {underlay: "underlay"}
nodes: [{name: remote, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}]
pods: [{name: pod, ip: 172.25.2.2, port: "pod", mac: "0a:00:00:00:02:02"}]
)";

constexpr mac_addr pod_mac{{0x0a, 0x00, 0x00, 0x00, 0x02, 0x02}};
constexpr mac_addr remote_mac{{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}};
constexpr unsigned in_flight = 512;
constexpr uint32_t sweep_budget = 256;  // dataplane/worker/worker.cc's, once a millisecond

struct options {
    unsigned trials = 5;
    uint64_t packets = 5'000'000;
    uint64_t new_flows = 200'000;  // per new-flow trial; at most 3/4 of the table
    unsigned frame = 60;
    std::vector<uint32_t> sizes{10, 1000, 10000, 100000};
    uint32_t ct_capacity = 1u << 20;  // config::conntrack_config's default
    std::string json;
};

std::string runtime_dir;  // the EAL's files, removed on every exit

[[noreturn]] void fail(const std::string& why) {
    std::fflush(stdout);
    fmt::print(stderr, "twill-service-bench: {}\n", why);
    remove_eal_runtime_dir(runtime_dir);
    std::exit(1);
}

// ---- the node --------------------------------------------------------------------------

std::string ip4_text(uint32_t a) {
    return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

// The node file with N services in the compact form, as an operator would write them.
std::string node_file_text(uint32_t n, uint32_t ct_capacity) {
    std::string y = node_yaml;
    y += fmt::format("conntrack: {{capacity: {}}}\n", ct_capacity);
    if (n == 0) {
        return y;
    }
    y += "services:\n";
    for (uint32_t s = 0; s < n; ++s) {
        y += fmt::format(
            "  - {{name: svc-{}, clusterIP: {}, scheduler: rr, ports: [{{protocol: UDP, "
            "port: {}, targetPort: {}}}], endpoints: [",
            s, ip4_text(service_vip(s)), service_port, target_port(s));
        for (unsigned j = 0; j < endpoints_per_service; ++j) {
            y += fmt::format("{}{{ip: {}}}", j ? ", " : "", ip4_text(endpoint_ip(s, j)));
        }
        y += "]}\n";
    }
    return y;
}

config::node_file make_config(uint32_t n, uint32_t ct_capacity) {
    config::parse_result parsed = config::parse_yaml(node_file_text(n, ct_capacity), "bench");
    if (!parsed.ok()) {
        fail(fmt::format("{} services: {} (and {} more errors)", n,
                         config::to_string(parsed.errors.front()), parsed.errors.size() - 1));
    }
    return std::move(parsed.cfg);
}

struct ports {
    uint16_t pod;       // the generator sends the pod's frames here
    uint16_t underlay;  // twill (and io) send here; the sink takes them back
    mac_addr underlay_mac;
};

struct bench_node {
    node_params params;
    std::unique_ptr<node_state> state;
    uint32_t clock_s = 1;  // connection-timeout seconds; moved on to expire everything
    double parse_s = 0;    // the node file, parsed and validated
    double install_s = 0;  // node_state built from it: every table published
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::unique_ptr<bench_node> make_node(uint32_t n, uint32_t ct_capacity, const ports& p) {
    auto node = std::make_unique<bench_node>();
    const auto t_parse = std::chrono::steady_clock::now();
    const config::node_file cfg = make_config(n, ct_capacity);
    node->parse_s = seconds_since(t_parse);
    node->params = make_params(cfg, p.underlay, p.underlay_mac, rte_get_tsc_hz());
    const auto t0 = std::chrono::steady_clock::now();
    node->state = std::make_unique<node_state>(
        cfg, node->params, std::map<std::string, uint16_t>{{"pod", p.pod}}, nullptr);
    node->install_s = seconds_since(t0);
    node->state->learned().neighbours[0].mac.set(remote_mac);
    // Every service installed with its 10 endpoints, or the figures would be of rejects.
    const service_table& table = node->state->services();
    for (uint32_t s = 0; s < n; ++s) {
        const service_entry* e = table.lookup(__builtin_bswap32(service_vip(s)), config::proto_udp,
                                              __builtin_bswap16(service_port));
        if (e == nullptr || e->backends.size() != endpoints_per_service) {
            fail(
                fmt::format("service {} is not installed with {} endpoints (services are parsed "
                            "and published by the services-config branch: is it merged?)",
                            s, endpoints_per_service));
        }
    }
    return node;
}

// ---- the generator -----------------------------------------------------------------------

enum class traffic { plain, hit, fresh };

// Every scenario's frame: the template copied, then its destination and source port set
// (and the IPv4 checksum redone), so io trials of any scenario cost the generator alike.
struct generator {
    traffic kind;
    uint32_t services;
    std::vector<uint8_t> tpl;
    uint64_t next = 0;

    void fill(rte_mbuf* m) {
        m->data_off = RTE_PKTMBUF_HEADROOM;
        m->data_len = uint16_t(tpl.size());
        m->pkt_len = uint32_t(tpl.size());
        uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
        std::memcpy(f, tpl.data(), tpl.size());
        if (kind == traffic::fresh) {
            const flow fl = new_flow(next++, services);
            set_flow(f, service_vip(fl.service), fl.sport);
            return;
        }
        const uint32_t i = uint32_t(next);
        next = next + 1 == default_hit_flows ? 0 : next + 1;
        const flow fl = hit_flow(i, std::max<uint32_t>(services, 1));
        // Plain: the pod's own address on the remote node that the service would pick.
        set_flow(f,
                 kind == traffic::hit ? service_vip(fl.service) : endpoint_ip(fl.service, i % 10),
                 fl.sport);
    }
};

// ---- the measured loop -------------------------------------------------------------------

enum class mode { io, twill };

struct trial {
    double cycles_per_packet = 0;
    double mpps = 0;
    uint64_t processed = 0;  // packets the worker received
};

void drain(uint16_t port) {
    rte_mbuf* pkts[burst_size];
    while (uint16_t n = rte_eth_rx_burst(port, 0, pkts, burst_size)) {
        rte_pktmbuf_free_bulk(pkts, n);
    }
}

std::unique_ptr<pipeline_ctx> make_ctx(bench_node& node, worker_counters& counters,
                                       rte_mempool* pool) {
    auto ctx = std::make_unique<pipeline_ctx>();
    ctx->params = &node.params;
    ctx->learned = &node.state->learned();
    ctx->counters = &counters;
    ctx->pool = pool;
    ctx->slices = node.state->published().slices.load(std::memory_order_acquire);
    ctx->pods = node.state->published().pods.load(std::memory_order_acquire);
    ctx->services = node.state->published().services;
    ctx->ct = node.state->published().ct;
    return ctx;
}

trial run_trial(bench_node& node, const ports& p, rte_mempool* pool, mode m, generator& gen,
                uint64_t packets, worker_counters& counters) {
    auto ctx = make_ctx(node, counters, pool);
    const uint64_t hz = rte_get_tsc_hz();
    rte_mbuf* pkts[burst_size];
    for (unsigned i = 0; i < in_flight; i += burst_size) {
        if (rte_pktmbuf_alloc_bulk(pool, pkts, burst_size) != 0) {
            fail("mempool too small");
        }
        for (unsigned k = 0; k < burst_size; ++k) {
            gen.fill(pkts[k]);
        }
        rte_eth_tx_burst(p.pod, 0, pkts, burst_size);
    }

    uint64_t sunk = 0, processed = 0;
    uint64_t next_sweep = 0;
    const uint64_t start = rte_rdtsc_precise();
    while (sunk < packets) {
        // Sink -> generator: refill and send again.
        if (uint16_t n = rte_eth_rx_burst(p.underlay, 0, pkts, burst_size)) {
            for (uint16_t i = 0; i < n; ++i) {
                gen.fill(pkts[i]);
            }
            sunk += n;
            uint16_t sent = rte_eth_tx_burst(p.pod, 0, pkts, n);
            if (sent < n) {
                rte_pktmbuf_free_bulk(pkts + sent, n - sent);
            }
        }
        // The worker iteration, as dataplane/worker/worker.cc runs it for one pod port.
        ctx->now_tsc = rte_rdtsc();
        ctx->now_s = node.clock_s + uint32_t((ctx->now_tsc - start) / hz);
        if (uint16_t n = receive(*ctx, p.pod, 0, pkts)) {
            processed += n;
            if (m == mode::io) {
                for (uint16_t i = 0; i < n; ++i) {
                    ctx->send(p.underlay, pkts[i]);
                }
            } else {
                pod_input(*ctx, p.pod, pkts, n);
            }
            flush(*ctx);
        }
        if (m == mode::twill && ctx->now_tsc >= next_sweep) [[unlikely]] {
            conntrack_sweep(*ctx, sweep_budget);
            next_sweep = ctx->now_tsc + hz / 1000;
        }
    }
    const uint64_t cycles = rte_rdtsc_precise() - start;
    drain(p.pod);
    drain(p.underlay);

    for (const drop_reason_info& d : drop_reasons) {
        if (uint64_t k = counters.drops[d.number].get()) {
            fail(fmt::format("{} packets dropped as {} ({}): the scenario is broken", k, d.name,
                             d.description));
        }
    }
    const double cpp = double(cycles) / double(sunk);
    return {cpp, double(hz) / cpp / 1e6, processed};
}

// Expires every connection, as the worker's sweep would once their time is up.
void forget_connections(bench_node& node, rte_mempool* pool) {
    worker_counters counters;
    auto ctx = make_ctx(node, counters, pool);
    node.clock_s += 1'000'000;
    ctx->now_s = node.clock_s;
    conntrack_sweep(*ctx, ctx->ct->capacity());
    if (ctx->ct->size() != 0) {
        fail(fmt::format("{} connections left after expiring all", ctx->ct->size()));
    }
}

// What the counters must say after a twill trial of `kind`.
void check_counters(traffic kind, const trial& t, const worker_counters& c, uint32_t n) {
    const uint64_t created = c.ct_created.get(), hits = c.ct_hits.get();
    const uint64_t want_created = kind == traffic::fresh ? t.processed : 0;
    const uint64_t want_hits = kind == traffic::hit ? t.processed : 0;
    if (created != want_created || hits != want_hits || c.ct_full.get() != 0 ||
        c.ct_expired.get() != 0) {
        fail(
            fmt::format("N={}: {} packets gave ct_created {} (want {}), ct_hits {} (want {}), "
                        "ct_full {}, ct_expired {} (want 0)",
                        n, t.processed, created, want_created, hits, want_hits, c.ct_full.get(),
                        c.ct_expired.get()));
    }
}

void add(series& s, const trial& io, const trial& tw) {
    s.add(io.cycles_per_packet, tw.cycles_per_packet, tw.mpps);
}

// ---- one size ----------------------------------------------------------------------------

size_result measure(uint32_t n, const ports& p, rte_mempool* pool, const options& opt,
                    const std::vector<uint8_t>& tpl) {
    std::unique_ptr<bench_node> node = make_node(n, opt.ct_capacity, p);
    size_result r{n, node->parse_s, node->install_s, 0, {}, {}, {}};
    generator plain{traffic::plain, n, tpl};
    generator hit{traffic::hit, n, tpl};
    auto run = [&](mode m, generator& g, uint64_t packets, traffic kind) {
        g.next = 0;
        worker_counters counters;
        const trial t = run_trial(*node, p, pool, m, g, packets, counters);
        if (m == mode::twill) {
            check_counters(kind, t, counters, n);
        }
        return t;
    };

    // Connections of the hit flows, created once (the first pass creates, the rest hit).
    if (n > 0) {
        worker_counters counters;
        hit.next = 0;
        run_trial(*node, p, pool, mode::twill, hit, 4 * default_hit_flows, counters);
        if (counters.ct_created.get() != default_hit_flows ||
            node->state->connections().size() != default_hit_flows) {
            fail(fmt::format("N={}: warm-up created {} connections, not {}", n,
                             counters.ct_created.get(), default_hit_flows));
        }
    }
    // Caches and rings warm, unmeasured.
    run(mode::io, plain, opt.packets / 10, traffic::plain);
    run(mode::twill, plain, opt.packets / 10, traffic::plain);
    for (unsigned t = 0; t < opt.trials; ++t) {
        const trial io_p = run(mode::io, plain, opt.packets, traffic::plain);
        add(r.plain, io_p, run(mode::twill, plain, opt.packets, traffic::plain));
        if (n > 0) {
            const trial io_h = run(mode::io, hit, opt.packets, traffic::hit);
            add(r.hit, io_h, run(mode::twill, hit, opt.packets, traffic::hit));
        }
    }
    if (n == 0) {
        return r;
    }
    r.hit.own_over(r.plain);

    // New flows: the table emptied before each trial, never more than 3/4 full.
    // Distinct flows only: the generator runs in_flight packets ahead of the worker.
    const uint64_t flows = std::min<uint64_t>(opt.new_flows, new_flow_limit(n) - 2 * in_flight);
    r.new_flows = flows;
    generator fresh{traffic::fresh, n, tpl};
    forget_connections(*node, pool);
    run(mode::twill, fresh, flows, traffic::fresh);  // unmeasured: the table's pages mapped
    for (unsigned t = 0; t < opt.trials; ++t) {
        forget_connections(*node, pool);
        const trial io_n = run(mode::io, fresh, flows, traffic::fresh);
        add(r.fresh, io_n, run(mode::twill, fresh, flows, traffic::fresh));
    }
    r.fresh.own_over(r.plain);
    return r;
}

ports ring_ports(rte_mempool* pool) {
    auto attach = [&](const char* name) {
        port_result r = attach_port(name, pool, {});
        if (!r.ok) {
            fail(r.error);
        }
        return r.port_id;
    };
    ports p;
    p.underlay = attach("net_ring0");
    p.pod = attach("net_ring1");
    p.underlay_mac = port_mac(p.underlay);
    return p;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) == 0) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown CPU";
}

std::vector<uint32_t> parse_sizes(const std::string& s) {
    std::vector<uint32_t> v;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t end = s.find_first_of(", ", pos);
        if (end == std::string::npos) {
            end = s.size();
        }
        if (end > pos) {
            const unsigned long n = std::stoul(s.substr(pos, end - pos));
            if (n < 1 || n > 100'000) {
                fail("--sizes: each size must be 1..100000");
            }
            v.push_back(uint32_t(n));
        }
        pos = end + 1;
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    std::vector<std::string> eal = {
        "twill-service-bench", "--no-pci", "--lcores=0@1", "--log-level=error",
        "--file-prefix=twill-service-bench-" + std::to_string(getpid())};
    bool huge = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                fail(a + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--trials") {
            opt.trials = unsigned(std::stoul(next()));
        } else if (a == "--packets") {
            opt.packets = std::stoull(next());
        } else if (a == "--new-flows") {
            opt.new_flows = std::stoull(next());
        } else if (a == "--ct-capacity") {
            opt.ct_capacity = uint32_t(std::stoul(next()));
        } else if (a == "--sizes") {
            opt.sizes = parse_sizes(next());
        } else if (a == "--huge") {
            huge = true;
        } else if (a == "--lcore-cpu") {
            eal[2] = "--lcores=0@" + next();
        } else if (a == "--json") {
            opt.json = next();
        } else {
            fmt::print(stderr,
                       "usage: twill-service-bench [--trials N] [--packets N] [--new-flows N] "
                       "[--sizes 10,1000,10000,100000] [--ct-capacity N] [--huge] [--lcore-cpu "
                       "CPU] [--json FILE]\n");
            return 2;
        }
    }
    if (opt.trials < 1 || opt.packets < 100'000 || opt.new_flows < 10'000 ||
        opt.new_flows > opt.ct_capacity / 4 * 3 || opt.sizes.empty()) {
        fail(
            "--trials >= 1, --packets >= 100000, --new-flows 10000..3/4 of --ct-capacity, --sizes "
            "not empty");
    }
    if (!huge) {
        eal.insert(eal.begin() + 1, {"--no-huge", "-m", "512"});
    }
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fail(fmt::format("EAL init failed: {}", rte_strerror(rte_errno)));
    }
    runtime_dir = eal_runtime_dir();
    rte_mempool* pool = rte_pktmbuf_pool_create("bench_pool", 4095, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) {
        fail(fmt::format("mempool: {}", rte_strerror(rte_errno)));
    }
    const ports p = ring_ports(pool);
    const std::vector<uint8_t> tpl =
        udp_template(opt.frame, default_gateway_mac.bytes.data(), pod_mac.bytes.data());

    fmt::print(
        "twill-service-bench: {}, {}, TSC {:.2f} GHz, {} memory, net_ring loopbacks, {}-byte "
        "frames, {} trials x {} packets, {} new flows per trial, {} services of {} endpoints, "
        "{} conntrack-hit flows, conntrack capacity {}\n",
        cpu_model(), rte_version(), double(rte_get_tsc_hz()) / 1e9, huge ? "hugepage" : "no-huge",
        opt.frame, opt.trials, opt.packets, opt.new_flows, fmt::join(opt.sizes, "/"),
        endpoints_per_service, default_hit_flows, opt.ct_capacity);
    std::vector<size_result> results;
    results.push_back(measure(0, p, pool, opt, tpl));
    for (uint32_t n : opt.sizes) {
        results.push_back(measure(n, p, pool, opt, tpl));
        fmt::print("  {} services: node file parsed in {:.2f} s, installed in {:.2f} s, measured\n",
                   n, results.back().parse_s, results.back().install_s);
        std::fflush(stdout);
    }
    print_tables(results, opt.trials, opt.packets, double(rte_get_tsc_hz()) / 1e9);

    if (!opt.json.empty()) {
        std::ofstream(opt.json) << results_json(
            results,
            fmt::format("\"cpu\": \"{}\", \"dpdk\": \"{}\", \"tsc_hz\": {}, \"hugepages\": "
                        "{}, \"frame\": {}, \"trials\": {}, \"packets\": {}, \"new_flows\": {}",
                        cpu_model(), rte_version(), rte_get_tsc_hz(), huge, opt.frame, opt.trials,
                        opt.packets, opt.new_flows));
    }
    const unsigned in_use = rte_mempool_in_use_count(pool);
    detach_port(p.underlay);
    detach_port(p.pod);
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    if (in_use != 0) {
        fail(fmt::format("{} mbufs leaked", in_use));
    }
    return 0;
}
