// twill-workers-bench: the same scenarios with 1 and with 2 workers (issue 8), on one
// shared set of tables, to see what a second worker adds and what sharing costs.
//
// Two ports built from rings (rte_eth_from_rings), like a NIC with a queue pair per
// worker: A is the underlay, B the pod side. Worker w owns queue w of both. Each worker
// lcore runs its own generator and sink beside the worker code, as twill-bench does on one
// core: the generator enqueues frames on the receive rings of queue w, the worker code
// receives, runs the pipeline and transmits on queue w, the sink dequeues the transmit
// rings and hands the mbufs back to the generator. Nothing but the tables is shared.
//
// Scenarios:
//   encap        pod -> remote pod (in on B, out on A)
//   decap        remote pod -> local pod (in on A, out on B)
//   svc-same     a UDP service with a remote backend, both directions of each worker's
//                connections on the worker that opened them (conntrack hits)
//   svc-split    the same, but each worker sends its connections' requests and the other
//                worker's connections' replies: every packet is of a connection another
//                worker reads and writes too (its state and expiry cache lines move
//                between the cores), as when RSS puts a connection's two directions on two
//                workers
// and io forwarding on the same rings (the ceiling; B -> A, untouched).
//
// Reported per scenario: aggregate Mpps with 1 and 2 workers and their ratio, and cycles
// per packet per worker (the 2-worker figure less the 1-worker one is what sharing costs
// a packet), median (min-max) over the trials, 1 and 2 workers alternated per trial.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "bench/frames.h"
#include "bench/service_flows.h"
#include "bench/stats.h"
#include "control/build_tables.h"
#include "control/eal.h"
#include "control/node_state.h"
#include "dataplane/pipeline.h"
#include "dataplane/service/conntrack.h"
#include "dataplane/service/service.h"
#include "dataplane/worker/io.h"

namespace {

using namespace twill;
using bench::csum;
using bench::ip4;
using bench::udp_frame;
using bench::stats;
using bench::summarize;
using bench::put16;
using bench::put32;

constexpr uint32_t max_bench_workers = 2;
// The ring driver keeps each queue's packet counts in a 24-byte struct, packed in an
// array and written on every burst: workers on neighbouring queues would share a cache
// line, as no NIC's queues do. So the two workers are numbered 0 and 5 (of six; the others
// never run) and use queues 0 and 5 of six, 120 bytes apart.
constexpr uint32_t worker_id[max_bench_workers] = {0, 5};
constexpr uint32_t ring_queues = 6;
constexpr unsigned in_flight = 512;       // per worker
constexpr uint32_t flows_per_worker = 4096;
constexpr uint16_t vip_port = 53, backend_port = 5353;
constexpr uint32_t vip = ip4(10, 96, 0, 10);
constexpr uint32_t backend = ip4(172, 25, 1, 10);
constexpr uint32_t pod_ip = ip4(172, 25, 2, 2);
constexpr uint32_t remote_pod = ip4(172, 25, 1, 2);
constexpr uint32_t node_ip = ip4(198, 18, 0, 2), remote_node = ip4(198, 18, 0, 1);
// svc-new: every packet a new connection, to one of 16 services (10.96.1.0-15, port 53,
// the backend's port 6000 + s, so that no two connections share a reply tuple) from a
// source port of its own. 16 x 32768 distinct flows per worker slot.
constexpr uint32_t new_services = 16;
constexpr uint64_t new_flows_per_trial = 400'000;  // per worker; at most 16 x 32768 less in flight
constexpr uint32_t new_vip(uint32_t s) { return ip4(10, 96, 1, 0) + s; }

const char* const node_yaml_head = R"(
node: {name: bench, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster: {clusterCIDR: 172.25.0.0/16, serviceCIDR: 10.96.0.0/12, vxlan: {vni: 1, port: 8472, mtu: 1450}}
ports: {underlay: "underlay"}
dpdk: {workers: 6}
nodes: [{name: remote, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}]
pods:
  - {name: pod, ip: 172.25.2.2, port: "pod", mac: "0a:00:00:00:02:02"}
  - {name: backend, ip: 172.25.1.10}
conntrack: {capacity: 4194304}
services:
  - name: dns
    clusterIP: 10.96.0.10
    ports: [{port: 53, targetPort: 5353, protocol: UDP}]
    endpoints: [{ip: 172.25.1.10}]
)";

std::string node_yaml() {
    std::string y = node_yaml_head;
    for (uint32_t s = 0; s < new_services; ++s) {
        y += fmt::format("  - {{name: new{}, clusterIP: 10.96.1.{}, ports: [{{port: 53, targetPort: {}, "
                         "protocol: UDP}}], endpoints: [{{ip: 172.25.1.10}}]}}\n",
                         s, s, 6000 + s);
    }
    return y;
}

constexpr mac_addr pod_mac{{0x0a, 0x00, 0x00, 0x00, 0x02, 0x02}};
constexpr mac_addr remote_mac{{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}};
constexpr mac_addr remote_vtep{{0x0e, 0x00, 0x00, 0x00, 0x01, 0x00}};
constexpr mac_addr local_vtep{{0x0e, 0x00, 0x00, 0x00, 0x02, 0x00}};
constexpr mac_addr underlay_mac{{0x02, 0x00, 0x00, 0x00, 0x02, 0x02}};

// ---- frames -----------------------------------------------------------------------------

// `inner` in VXLAN from the remote node, as its kernel sends it (UDP checksum included).
std::vector<uint8_t> vxlan_from_remote(const std::vector<uint8_t>& inner, uint16_t sport) {
    std::vector<uint8_t> f = udp_frame(unsigned(50 + inner.size()), underlay_mac, remote_mac,
                                       remote_node, node_ip, sport, 8472);
    std::memset(&f[42], 0, 8);
    f[42] = 0x08;
    put32(&f[42 + 4], 1u << 8);  // VNI 1
    std::memcpy(&f[50], inner.data(), inner.size());
    put16(&f[40], 0);
    const uint32_t pseudo = (remote_node >> 16) + (remote_node & 0xffff) + (node_ip >> 16) +
                            (node_ip & 0xffff) + 17 + uint32_t(f.size() - 34);
    const uint16_t c = csum(&f[34], f.size() - 34, pseudo);
    put16(&f[40], c == 0 ? 0xffff : c);
    return f;
}

uint16_t client_port(uint32_t w, uint32_t i) { return uint16_t(10000 + w * flows_per_worker + i); }

// A pod's request to the service, flow i of worker w's connections.
std::vector<uint8_t> request(unsigned len, uint32_t w, uint32_t i) {
    return udp_frame(len, default_gateway_mac, pod_mac, pod_ip, vip, client_port(w, i), vip_port);
}
// The backend's reply to it, from the remote node.
std::vector<uint8_t> reply(unsigned len, uint32_t w, uint32_t i) {
    return vxlan_from_remote(
        udp_frame(len, local_vtep, remote_vtep, backend, pod_ip, backend_port, client_port(w, i)),
        uint16_t(32768 + i));
}

// ---- ports from rings -------------------------------------------------------------------

struct ring_port {
    uint16_t id = 0;
    rte_ring* in[ring_queues] = {};   // the generator's side of receive queue q
    rte_ring* out[ring_queues] = {};  // the sink's side of transmit queue q
};

ring_port make_port(const char* name, rte_mempool* pool) {
    ring_port p;
    for (uint32_t q = 0; q < ring_queues; ++q) {
        p.in[q] = rte_ring_create(fmt::format("{}_in{}", name, q).c_str(), 2048, SOCKET_ID_ANY,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
        p.out[q] = rte_ring_create(fmt::format("{}_out{}", name, q).c_str(), 2048, SOCKET_ID_ANY,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (p.in[q] == nullptr || p.out[q] == nullptr) {
            fmt::print(stderr, "twill-workers-bench: rings: {}\n", rte_strerror(rte_errno));
            std::exit(1);
        }
    }
    int id = rte_eth_from_rings(name, p.in, ring_queues, p.out, ring_queues, 0);
    if (id < 0) {
        fmt::print(stderr, "twill-workers-bench: port {}: {}\n", name, rte_strerror(rte_errno));
        std::exit(1);
    }
    p.id = uint16_t(id);
    rte_eth_conf conf{};
    int rc = rte_eth_dev_configure(p.id, ring_queues, ring_queues, &conf);
    for (uint16_t q = 0; rc == 0 && q < ring_queues; ++q) {
        rc = rte_eth_rx_queue_setup(p.id, q, 1024, 0, nullptr, pool);
        if (rc == 0) {
            rc = rte_eth_tx_queue_setup(p.id, q, 1024, 0, nullptr);
        }
    }
    if (rc == 0) {
        rc = rte_eth_dev_start(p.id);
    }
    if (rc != 0) {
        fmt::print(stderr, "twill-workers-bench: port {} setup: {}\n", name, rte_strerror(-rc));
        std::exit(1);
    }
    return p;
}

// ---- one worker's trial -----------------------------------------------------------------

enum class mode { io, encap, decap, svc_same, svc_split, svc_new };

struct frame {
    std::vector<uint8_t> bytes;
    bool into_a;  // enters on the underlay (A), else on the pod port (B)
};

struct shared {
    node_params* params;
    node_state* state;
    worker_counters* const* counters;  // [slot]
    const port_layout* layout;
    rte_mempool* pool;
    ring_port a, b;
    mode m;
    const std::vector<frame>* frames;  // [workers], each worker's sequence
    uint64_t packets;
    uint32_t workers;
    std::atomic<uint32_t> ready{0};
    std::atomic<uint32_t> done{0};
    uint64_t start_tsc[max_bench_workers];
    uint64_t end_tsc[max_bench_workers];
};

struct worker_arg {
    shared* s;
    uint32_t w;  // slot 0 or 1 (worker number worker_id[w])
};

void refill(rte_mbuf* m, const std::vector<uint8_t>& f) {
    m->data_off = RTE_PKTMBUF_HEADROOM;
    m->data_len = uint16_t(f.size());
    m->pkt_len = uint32_t(f.size());
    m->ol_flags = 0;
    std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), f.data(), f.size());
}

int bench_worker(void* arg) {
    const worker_arg& wa = *static_cast<worker_arg*>(arg);
    shared& s = *wa.s;
    const uint32_t w = wa.w;
    const uint32_t q = worker_id[w];  // its queue on both ports
    auto ctx = std::make_unique<pipeline_ctx>();
    ctx->worker = q;
    ctx->layout = s.layout;
    ctx->params = s.params;
    ctx->learned = &s.state->learned();
    ctx->counters = s.counters[w];
    ctx->pool = s.pool;
    const table_set& t = s.state->published();
    ctx->slices = t.slices.load(std::memory_order_acquire);
    ctx->pods = t.pods.load(std::memory_order_acquire);
    ctx->policy = t.policy.load(std::memory_order_acquire);
    ctx->services = t.services;
    ctx->ct = t.ct;
    const std::vector<frame>& frames = s.frames[w];
    size_t next = 0;
    rte_mbuf* pkts[burst_size];

    uint64_t new_flow = 0;
    auto generate = [&](rte_mbuf** p, unsigned n) {
        for (unsigned i = 0; i < n; ++i) {
            const frame& f = frames[next];
            next = next + 1 == frames.size() ? 0 : next + 1;
            refill(p[i], f.bytes);
            if (s.m == mode::svc_new) {
                const uint64_t k = new_flow++;
                bench::set_flow(rte_pktmbuf_mtod(p[i], uint8_t*), new_vip(uint32_t(k % new_services)),
                                uint16_t(1024 + w * 32768 + (k / new_services) % 32768));
            }
            rte_ring* r = f.into_a ? s.a.in[q] : s.b.in[q];
            if (rte_ring_enqueue(r, p[i]) != 0) {
                rte_pktmbuf_free(p[i]);
            }
        }
    };
    for (unsigned i = 0; i < in_flight; i += burst_size) {
        if (rte_pktmbuf_alloc_bulk(s.pool, pkts, burst_size) != 0) {
            fmt::print(stderr, "twill-workers-bench: mempool too small\n");
            std::exit(1);
        }
        generate(pkts, burst_size);
    }
    s.ready.fetch_add(1);
    while (s.ready.load() < s.workers) {
        rte_pause();
    }
    uint64_t sunk = 0;
    s.start_tsc[w] = rte_rdtsc_precise();
    while (sunk < s.packets) {
        for (rte_ring* r : {s.a.out[q], s.b.out[q]}) {
            if (unsigned n = rte_ring_dequeue_burst(r, reinterpret_cast<void**>(pkts), burst_size, nullptr)) {
                sunk += n;
                generate(pkts, n);
            }
        }
        ctx->now_tsc = rte_rdtsc();
        ctx->now_s = uint32_t(ctx->now_tsc / s.params->tsc_hz);
        if (uint16_t n = receive(*ctx, s.b.id, uint16_t(q), pkts)) {
            if (s.m == mode::io) {
                for (uint16_t i = 0; i < n; ++i) {
                    ctx->send(s.a.id, pkts[i]);
                }
            } else {
                pod_input(*ctx, s.b.id, pkts, n);
            }
            flush(*ctx);
        }
        if (uint16_t n = receive(*ctx, s.a.id, uint16_t(q), pkts)) {
            underlay_input(*ctx, pkts, n);
            flush(*ctx);
        }
    }
    s.end_tsc[w] = rte_rdtsc_precise();
    // Give every mbuf back: what is still in the rings.
    for (rte_ring* r : {s.a.in[q], s.b.in[q], s.a.out[q], s.b.out[q]}) {
        void* p;
        while (rte_ring_dequeue(r, &p) == 0) {
            rte_pktmbuf_free(static_cast<rte_mbuf*>(p));
        }
    }
    s.done.fetch_add(1);
    return 0;
}

struct trial_result {
    double mpps;                 // all workers together
    double cycles[max_bench_workers];  // per packet, per worker
};

// The frames each worker sends in mode `m` with `workers` workers.
std::vector<frame> frames_for(mode m, uint32_t w, uint32_t workers, unsigned len) {
    std::vector<frame> out;
    for (uint32_t i = 0; i < 64 && (m == mode::io || m == mode::encap || m == mode::decap); ++i) {
        if (m == mode::decap) {
            out.push_back({vxlan_from_remote(udp_frame(len, local_vtep, remote_vtep, remote_pod, pod_ip,
                                                       uint16_t(40000 + i), 5001),
                                             uint16_t(32768 + i * 97)),
                           true});
        } else {
            out.push_back({udp_frame(len, default_gateway_mac, pod_mac, pod_ip, remote_pod,
                                     uint16_t(40000 + w * 64 + i), 5001),
                           false});
        }
    }
    if (m == mode::svc_new) {
        frame f{request(len, w, 0), false};
        put16(&f.bytes[34 + 6], 0);  // no UDP checksum: set_flow rewrites the ports
        out.push_back(f);
    }
    if (m == mode::svc_same || m == mode::svc_split) {
        // Replies of the other worker's connections in svc-split (of its own with one worker).
        const uint32_t other = m == mode::svc_split ? (w + 1) % workers : w;
        for (uint32_t i = 0; i < flows_per_worker; ++i) {
            out.push_back({request(len, w, i), false});
            out.push_back({reply(len, other, i), true});
        }
    }
    return out;
}

trial_result run_trial(shared& s, mode m, uint32_t workers, uint64_t packets,
                       const std::vector<unsigned>& lcores) {
    s.m = m;
    s.workers = workers;
    s.packets = packets;
    s.ready = 0;
    s.done = 0;
    worker_arg args[max_bench_workers];
    for (uint32_t w = 0; w < workers; ++w) {
        args[w] = {&s, w};
        if (rte_eal_remote_launch(bench_worker, &args[w], lcores[w]) != 0) {
            fmt::print(stderr, "twill-workers-bench: cannot launch on lcore {}\n", lcores[w]);
            std::exit(1);
        }
    }
    // Sleep rather than spin: with 2 CPUs, one worker shares its CPU with this thread.
    while (s.done.load() < workers) {
        usleep(1000);
    }
    rte_eal_mp_wait_lcore();
    trial_result r{};
    uint64_t first = UINT64_MAX, last = 0;
    for (uint32_t w = 0; w < workers; ++w) {
        first = std::min(first, s.start_tsc[w]);
        last = std::max(last, s.end_tsc[w]);
        r.cycles[w] = double(s.end_tsc[w] - s.start_tsc[w]) / double(packets);
        uint64_t dropped = 0;  // since the start: any drop at all breaks the scenario
        for (const auto& d : s.counters[w]->drops) {
            dropped += d.get();
        }
        if (dropped != 0) {
            fmt::print(stderr, "twill-workers-bench: worker {} dropped {} packets: the scenario is broken\n",
                       w, dropped);
            std::exit(1);
        }
    }
    r.mpps = double(packets) * workers / (double(last - first) / double(rte_get_tsc_hz())) / 1e6;
    return r;
}

std::string show(const stats& s, int prec) {
    return fmt::format("{:.{}f} ({:.{}f}-{:.{}f})", s.median, prec, s.min, prec, s.max, prec);
}

}  // namespace

int main(int argc, char** argv) {
    unsigned trials = 5;
    uint64_t packets = 4'000'000;
    unsigned len = 60;
    bool huge = false;
    std::string json_path, only;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                fmt::print(stderr, "twill-workers-bench: {} needs a value\n", a);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--trials") {
            trials = unsigned(std::stoul(next()));
        } else if (a == "--packets") {
            packets = std::stoull(next());
        } else if (a == "--frame") {
            len = unsigned(std::stoul(next()));
        } else if (a == "--huge") {
            huge = true;
        } else if (a == "--json") {
            json_path = next();
        } else if (a == "--only") {
            only = next();
        } else {
            fmt::print(stderr, "usage: twill-workers-bench [--trials N] [--packets N per worker] "
                               "[--frame BYTES] [--huge] [--json FILE] [--only SCENARIO-PREFIX]\n");
            return 2;
        }
    }
    if (len < 60 || len > 1400 || trials < 1) {
        fmt::print(stderr, "twill-workers-bench: --frame must be 60..1400 and --trials >= 1\n");
        return 2;
    }
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    // Workers on lcores 1 and 2: CPU 1 and CPU 0 on a 2-CPU machine, where the main lcore,
    // asleep while they run, shares CPU 0.
    std::vector<std::string> eal = {"twill-workers-bench", "--no-pci", "--log-level=error",
                                    fmt::format("--lcores=0@0,1@{},2@{}", cpus > 1 ? 1 : 0,
                                                cpus > 2 ? 2 : 0),
                                    "--file-prefix=twill-workers-bench-" + std::to_string(getpid())};
    if (!huge) {
        eal.insert(eal.begin() + 1, {"--no-huge", "-m", "1024"});
    }
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fmt::print(stderr, "twill-workers-bench: EAL init failed: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    const std::string runtime_dir = eal_runtime_dir();
    rte_mempool* pool = rte_pktmbuf_pool_create("bench_pool", 8191, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) {
        fmt::print(stderr, "twill-workers-bench: mempool: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    shared s;
    s.a = make_port("wb_underlay", pool);
    s.b = make_port("wb_pods", pool);
    config::parse_result parsed = config::parse_yaml(node_yaml(), "bench");
    if (!parsed.ok()) {
        fmt::print(stderr, "twill-workers-bench: config: {}\n", config::to_string(parsed.errors[0]));
        return 1;
    }
    node_params params = make_params(parsed.cfg, s.a.id, underlay_mac, rte_get_tsc_hz());
    node_state state(parsed.cfg, params, {{"pod", s.b.id}}, nullptr);
    state.learned().neighbours[0].mac.set(remote_mac);
    std::unique_ptr<worker_counters> counter_sets[max_bench_workers];
    worker_counters* counters[max_bench_workers];
    for (uint32_t w = 0; w < max_bench_workers; ++w) {
        counter_sets[w] = std::make_unique<worker_counters>();
        counters[w] = counter_sets[w].get();
    }
    auto layout = std::make_unique<port_layout>();
    layout->workers = ring_queues;
    layout->ports[s.a.id].rx = layout->ports[s.a.id].tx = ring_queues;
    layout->ports[s.b.id].rx = layout->ports[s.b.id].tx = ring_queues;
    s.params = &params;
    s.state = &state;
    s.counters = counters;
    s.layout = layout.get();
    s.pool = pool;
    const std::vector<unsigned> lcores = {1, 2};

    struct scenario {
        const char* name;
        mode m;
    };
    const scenario scenarios[] = {{"io forwarding (ceiling)", mode::io},
                                  {"encap (pod -> remote pod)", mode::encap},
                                  {"decap (remote pod -> local pod)", mode::decap},
                                  {"svc-same: service hit, both directions on one worker", mode::svc_same},
                                  {"svc-split: service hit, directions on different workers", mode::svc_split},
                                  {"svc-new: a new connection per packet (conntrack insert)", mode::svc_new}};

    // The service connections: worker w's flows opened by worker w (its range of entries).
    {
        std::vector<frame> open;
        for (uint32_t w = 0; w < max_bench_workers; ++w) {
            auto ctx = std::make_unique<pipeline_ctx>();
            ctx->worker = worker_id[w];
            ctx->params = &params;
            ctx->learned = &state.learned();
            ctx->counters = counters[w];
            ctx->pool = pool;
            ctx->slices = state.published().slices.load();
            ctx->pods = state.published().pods.load();
            ctx->policy = state.published().policy.load();
            ctx->services = state.published().services;
            ctx->ct = state.published().ct;
            ctx->now_tsc = rte_rdtsc();
            ctx->now_s = uint32_t(ctx->now_tsc / params.tsc_hz);
            for (uint32_t i = 0; i < flows_per_worker; ++i) {
                rte_mbuf* m = rte_pktmbuf_alloc(pool);
                refill(m, request(len, w, i));
                pod_input(*ctx, s.b.id, &m, 1);
                // Dropped straight from the transmit queue: only the connection matters.
                for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
                    for (uint16_t k = 0; k < ctx->tx[p].n; ++k) {
                        rte_pktmbuf_free(ctx->tx[p].pkts[k]);
                    }
                    ctx->tx[p].n = 0;
                }
                ctx->tx_dirty = 0;
            }
        }
        if (counters[0]->ct_created.get() + counters[1]->ct_created.get() != 2 * flows_per_worker) {
            fmt::print(stderr, "twill-workers-bench: the service connections were not all opened\n");
            return 1;
        }
    }

    fmt::print("twill-workers-bench: DPDK {}, TSC {:.2f} GHz, {} CPUs, {} memory, ring ports with a "
               "queue pair per worker, {}-byte frames, {} trials x {} packets per worker, 1 and 2 "
               "workers alternated\n",
               rte_version(), double(rte_get_tsc_hz()) / 1e9, cpus, huge ? "hugepage" : "no-huge",
               len, trials, packets);
    fmt::print("\n| scenario | 1 worker Mpps | 2 workers Mpps | 2 / 1 | cycles/pkt, 1 worker | "
               "cycles/pkt per worker, 2 workers | sharing cost (cycles/pkt) | projected 8 / 16 "
               "workers Mpps |\n|---|---|---|---|---|---|---|---|\n");
    std::string json = fmt::format("{{\"dpdk\": \"{}\", \"tsc_hz\": {}, \"cpus\": {}, \"hugepages\": {}, "
                                   "\"frame\": {}, \"packets_per_worker\": {}, \"scenarios\": [",
                                   rte_version(), rte_get_tsc_hz(), cpus, huge, len, packets);
    for (size_t sc = 0; sc < std::size(scenarios); ++sc) {
        if (std::string_view(scenarios[sc].name).substr(0, only.size()) != only) {
            continue;
        }
        const mode m = scenarios[sc].m;
        std::vector<frame> one[max_bench_workers], two[max_bench_workers];
        for (uint32_t w = 0; w < max_bench_workers; ++w) {
            one[w] = frames_for(m, w, 1, len);
            two[w] = frames_for(m, w, 2, len);
        }
        s.frames = one;
        // New connections: as many per trial as fit, and all expired after each trial (as
        // the sweep would once their time is up), so that every trial starts empty.
        const uint64_t n = m == mode::svc_new ? std::min(packets, new_flows_per_trial) : packets;
        auto expire_all = [&] {
            if (m != mode::svc_new) {
                return;
            }
            for (uint32_t w = 0; w < max_bench_workers; ++w) {
                auto ctx = std::make_unique<pipeline_ctx>();
                ctx->worker = worker_id[w];
                ctx->params = &params;
                ctx->counters = counters[w];
                ctx->ct = state.published().ct;
                ctx->services = state.published().services;
                ctx->now_s = uint32_t(rte_rdtsc() / params.tsc_hz) + 1'000'000;
                conntrack_sweep(*ctx, ctx->ct->capacity());
            }
        };
        // Warm-up, unmeasured, with both workers: every table page they will touch is
        // faulted in (the tables are zero until touched) and caches are warm.
        s.frames = two;
        run_trial(s, m, 2, n, lcores);
        expire_all();
        std::vector<double> mpps1, mpps2, ratio, cyc1, cyc2, cost;
        for (unsigned t = 0; t < trials; ++t) {
            s.frames = one;
            trial_result r1 = run_trial(s, m, 1, n, lcores);
            expire_all();
            s.frames = two;
            trial_result r2 = run_trial(s, m, 2, n, lcores);
            expire_all();
            mpps1.push_back(r1.mpps);
            mpps2.push_back(r2.mpps);
            ratio.push_back(r2.mpps / r1.mpps);
            cyc1.push_back(r1.cycles[0]);
            const double per = (r2.cycles[0] + r2.cycles[1]) / 2;
            cyc2.push_back(per);
            cost.push_back(per - r1.cycles[0]);
        }
        // N workers at the per-worker cost measured with 2.
        const double per_worker_mpps = double(rte_get_tsc_hz()) / summarize(cyc2).median / 1e6;
        fmt::print("| {} | {} | {} | {} | {} | {} | {} | {:.0f} / {:.0f} |\n", scenarios[sc].name,
                   show(summarize(mpps1), 2), show(summarize(mpps2), 2), show(summarize(ratio), 2),
                   show(summarize(cyc1), 1), show(summarize(cyc2), 1), show(summarize(cost), 1),
                   8 * per_worker_mpps, 16 * per_worker_mpps);
        std::fflush(stdout);
        auto list = [](const std::vector<double>& v) { return fmt::format("[{:.3f}]", fmt::join(v, ", ")); };
        json += fmt::format("{}{{\"name\": \"{}\", \"mpps_1\": {}, \"mpps_2\": {}, \"cycles_1\": {}, "
                            "\"cycles_2_per_worker\": {}}}",
                            sc ? ", " : "", scenarios[sc].name, list(mpps1), list(mpps2), list(cyc1),
                            list(cyc2));
    }
    json += "]}\n";
    fmt::print("\nmedian (min-max) over {} trials. Each worker's loop includes its own generator and "
               "sink (subtract the io row's cycles for twill's share). sharing cost = a worker's "
               "cycles per packet with 2 workers less with 1. projected = N x the per-worker rate "
               "with 2 workers, i.e. assuming the sharing cost stays what 2 workers measure.\n",
               trials);
    if (!json_path.empty()) {
        if (FILE* f = std::fopen(json_path.c_str(), "w")) {
            std::fputs(json.c_str(), f);
            std::fclose(f);
        }
    }
    const unsigned in_use = rte_mempool_in_use_count(pool);
    rte_eth_dev_stop(s.a.id);
    rte_eth_dev_stop(s.b.id);
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    if (in_use != 0) {
        fmt::print(stderr, "twill-workers-bench: {} mbufs leaked\n", in_use);
        return 1;
    }
    return 0;
}
