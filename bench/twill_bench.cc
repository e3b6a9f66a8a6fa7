// twill-bench: encap and decap cost per packet, measured on virtual devices with an
// in-process generator, beside plain io forwarding through the same devices and the
// same transmit path.
//
// Both ports are net_ring loopbacks. One loop on one lcore: the generator refills frames
// from templates and sends them into the input port; the worker code receives them, runs
// the pipeline (or nothing, in io mode) and transmits to the output port; the sink takes
// them back for the generator. Processing cost = cycles(twill) - cycles(io), paired per
// trial, so the generator's and the rings' share cancels out.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
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

#include "bench/frames.h"
#include "bench/stats.h"
#include "control/build_tables.h"
#include "control/eal.h"
#include "control/node_state.h"
#include "control/ports.h"
#include "dataplane/pipeline.h"
#include "dataplane/worker/io.h"

namespace {

using namespace twill;
using bench::csum;
using bench::put16;
using bench::put32;
using bench::stats;
using bench::udp_frame;
using bench::summarize;

const char* const node_yaml = R"(
node: {name: bench, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster: {clusterCIDR: 172.25.0.0/16, vxlan: {vni: 1, port: 8472, mtu: 1450}}
ports: {underlay: "underlay"}
nodes: [{name: remote, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}]
pods: [{name: pod, ip: 172.25.2.2, port: "pod", mac: "0a:00:00:00:02:02"}]
)";

constexpr mac_addr pod_mac{{0x0a, 0x00, 0x00, 0x00, 0x02, 0x02}};
constexpr mac_addr remote_mac{{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}};
constexpr mac_addr remote_vtep{{0x0e, 0x00, 0x00, 0x00, 0x01, 0x00}};
constexpr mac_addr local_vtep{{0x0e, 0x00, 0x00, 0x00, 0x02, 0x00}};
constexpr unsigned flows = 64;
constexpr unsigned in_flight = 512;

struct options {
    unsigned trials = 7;
    uint64_t packets = 10'000'000;
    unsigned frame = 60;  // bytes without FCS: a 64-byte frame on the wire
    std::string json;
};

// ---- frames ---------------------------------------------------------------------------

constexpr uint32_t addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d;
}

// A pod's frame to a pod on the remote node.
std::vector<uint8_t> encap_input(unsigned len, unsigned flow) {
    return udp_frame(len, default_gateway_mac, pod_mac, addr(172, 25, 2, 2), addr(172, 25, 1, 2),
                     uint16_t(40000 + flow), 5001, 64);
}

// The remote node's VXLAN frame carrying a `len`-byte frame for the local pod.
std::vector<uint8_t> decap_input(unsigned len, unsigned flow, const mac_addr& underlay_mac) {
    std::vector<uint8_t> inner = udp_frame(len, local_vtep, remote_vtep, addr(172, 25, 1, 2),
                                           addr(172, 25, 2, 2), uint16_t(40000 + flow), 5001, 63);
    std::vector<uint8_t> outer =
        udp_frame(unsigned(50 + len - 8), underlay_mac, remote_mac, addr(198, 18, 0, 1),
                  addr(198, 18, 0, 2), uint16_t(32768 + flow * 97), 8472, 64);
    outer.resize(42);
    outer.push_back(0x08);
    outer.insert(outer.end(), {0, 0, 0, 0, 0, 1, 0});
    outer.insert(outer.end(), inner.begin(), inner.end());
    put16(&outer[16], uint16_t(outer.size() - 14));
    put16(&outer[24], 0);
    put16(&outer[24], csum(&outer[14], 20));
    put16(&outer[38], uint16_t(outer.size() - 34));
    put16(&outer[40], 0);
    uint32_t sip = addr(198, 18, 0, 1), dip = addr(198, 18, 0, 2);
    uint32_t pseudo = (sip >> 16) + (sip & 0xffff) + (dip >> 16) + (dip & 0xffff) + 17 +
                      uint32_t(outer.size() - 34);
    uint16_t c = csum(&outer[34], outer.size() - 34, pseudo);
    put16(&outer[40], c == 0 ? 0xffff : c);
    return outer;
}

// ---- the measured loop ------------------------------------------------------------------

enum class mode { io, encap, decap };

struct harness {
    rte_mempool* pool = nullptr;
    uint16_t in_port = 0;   // generator -> worker
    uint16_t out_port = 0;  // worker -> sink
    mac_addr underlay_mac;
};

struct trial_result {
    double cycles_per_packet;
    double mpps;
};

void refill(rte_mbuf* m, const std::vector<uint8_t>& tpl) {
    m->data_off = RTE_PKTMBUF_HEADROOM;
    m->data_len = uint16_t(tpl.size());
    m->pkt_len = uint32_t(tpl.size());
    std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), tpl.data(), tpl.size());
}

void drain(uint16_t port) {
    rte_mbuf* pkts[burst_size];
    while (uint16_t n = rte_eth_rx_burst(port, 0, pkts, burst_size)) {
        rte_pktmbuf_free_bulk(pkts, n);
    }
}

trial_result run_trial(const harness& h, mode m, const std::vector<std::vector<uint8_t>>& tpls,
                       uint64_t packets, uint16_t underlay_port, uint16_t pod_port) {
    config::parse_result parsed = config::parse_yaml(node_yaml, "bench");
    std::map<std::string, uint16_t> ports{{"pod", pod_port}};
    node_params params = make_params(parsed.cfg, underlay_port, h.underlay_mac, rte_get_tsc_hz());
    node_state state(parsed.cfg, params, ports, nullptr);
    state.learned().neighbours[0].mac.set(remote_mac);
    worker_counters counters;
    auto ctx = std::make_unique<pipeline_ctx>();
    ctx->params = &params;
    ctx->learned = &state.learned();
    ctx->counters = &counters;
    ctx->pool = h.pool;
    ctx->slices = state.published().slices.load(std::memory_order_acquire);
    ctx->pods = state.published().pods.load(std::memory_order_acquire);
    ctx->services = state.published().services;
    ctx->ct = state.published().ct;

    rte_mbuf* pkts[burst_size];
    for (unsigned i = 0; i < in_flight; i += burst_size) {
        if (rte_pktmbuf_alloc_bulk(h.pool, pkts, burst_size) != 0) {
            fmt::print(stderr, "twill-bench: mempool too small\n");
            std::exit(1);
        }
        for (unsigned k = 0; k < burst_size; ++k) {
            refill(pkts[k], tpls[(i + k) % tpls.size()]);
        }
        rte_eth_tx_burst(h.in_port, 0, pkts, burst_size);
    }

    uint64_t sunk = 0;
    unsigned next_tpl = 0;
    const uint64_t start = rte_rdtsc_precise();
    while (sunk < packets) {
        // Sink -> generator: refill and send again.
        if (uint16_t n = rte_eth_rx_burst(h.out_port, 0, pkts, burst_size)) {
            for (uint16_t i = 0; i < n; ++i) {
                refill(pkts[i], tpls[next_tpl]);
                next_tpl = next_tpl + 1 == tpls.size() ? 0 : next_tpl + 1;
            }
            sunk += n;
            uint16_t sent = rte_eth_tx_burst(h.in_port, 0, pkts, n);
            if (sent < n) {
                rte_pktmbuf_free_bulk(pkts + sent, n - sent);
            }
        }
        // The worker iteration.
        ctx->now_tsc = rte_rdtsc();
        if (uint16_t n = receive(*ctx, h.in_port, 0, pkts)) {
            if (m == mode::io) {
                for (uint16_t i = 0; i < n; ++i) {
                    ctx->send(h.out_port, pkts[i]);
                }
            } else if (m == mode::encap) {
                pod_input(*ctx, h.in_port, pkts, n);
            } else {
                underlay_input(*ctx, pkts, n);
            }
            flush(*ctx);
        }
    }
    const uint64_t cycles = rte_rdtsc_precise() - start;
    drain(h.in_port);
    drain(h.out_port);

    uint64_t dropped = 0;
    for (const auto& d : counters.drops) {
        dropped += d.get();
    }
    if (dropped != 0) {
        fmt::print(stderr, "twill-bench: {} packets dropped: the scenario is broken\n", dropped);
        std::exit(1);
    }
    double cpp = double(cycles) / double(sunk);
    return {cpp, double(rte_get_tsc_hz()) / cpp / 1e6};
}

uint16_t ring_port(const char* name, rte_mempool* pool) {
    port_result r = attach_port(name, pool, {});
    if (!r.ok) {
        fmt::print(stderr, "twill-bench: {}\n", r.error);
        std::exit(1);
    }
    return r.port_id;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    std::vector<std::string> eal = {"twill-bench", "--no-pci", "--lcores=0@1",
                                    "--log-level=error",
                                    "--file-prefix=twill-bench-" + std::to_string(getpid())};
    bool huge = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                fmt::print(stderr, "twill-bench: {} needs a value\n", a);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--trials") {
            opt.trials = unsigned(std::stoul(next()));
        } else if (a == "--packets") {
            opt.packets = std::stoull(next());
        } else if (a == "--frame") {
            opt.frame = unsigned(std::stoul(next()));
        } else if (a == "--huge") {
            huge = true;
        } else if (a == "--lcore-cpu") {
            eal[2] = "--lcores=0@" + next();
        } else if (a == "--json") {
            opt.json = next();
        } else {
            fmt::print(stderr,
                       "usage: twill-bench [--trials N] [--packets N] [--frame BYTES] [--huge] "
                       "[--lcore-cpu CPU] [--json FILE]\n");
            return 2;
        }
    }
    if (opt.frame < 60 || opt.frame > 1400 || opt.trials < 1) {
        fmt::print(stderr, "twill-bench: --frame must be 60..1400 and --trials >= 1\n");
        return 2;
    }
    if (!huge) {
        eal.insert(eal.begin() + 1, {"--no-huge", "-m", "512"});
    }
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fmt::print(stderr, "twill-bench: EAL init failed: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    const std::string runtime_dir = eal_runtime_dir();
    harness h;
    h.pool = rte_pktmbuf_pool_create("bench_pool", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     int(rte_socket_id()));
    if (h.pool == nullptr) {
        fmt::print(stderr, "twill-bench: mempool: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    uint16_t a = ring_port("net_ring0", h.pool);
    uint16_t b = ring_port("net_ring1", h.pool);
    h.underlay_mac = port_mac(a);

    struct scenario {
        const char* name;
        mode m;
        std::vector<std::vector<uint8_t>> tpls;
        uint16_t in, out, underlay, pod;
    };
    std::vector<scenario> scenarios(2);
    scenarios[0] = {"encap (pod -> remote pod)", mode::encap, {}, b, a, a, b};
    scenarios[1] = {"decap (remote pod -> local pod)", mode::decap, {}, a, b, a, b};
    for (unsigned f = 0; f < flows; ++f) {
        scenarios[0].tpls.push_back(encap_input(opt.frame, f));
        scenarios[1].tpls.push_back(decap_input(opt.frame, f, h.underlay_mac));
    }

    fmt::print("twill-bench: DPDK {}, TSC {:.2f} GHz, {} memory, net_ring loopbacks, "
               "{}-byte frames ({} B on the wire with FCS), {} flows, {} trials x {} packets\n",
               rte_version(), double(rte_get_tsc_hz()) / 1e9, huge ? "hugepage" : "no-huge",
               opt.frame, opt.frame + 4, flows, opt.trials, opt.packets);
    std::string json = fmt::format(
        "{{\"dpdk\": \"{}\", \"tsc_hz\": {}, \"hugepages\": {}, \"frame\": {}, \"trials\": {}, "
        "\"packets\": {}, \"scenarios\": [",
        rte_version(), rte_get_tsc_hz(), huge, opt.frame, opt.trials, opt.packets);
    fmt::print("\n| scenario | io fwd cycles/pkt | twill cycles/pkt | twill Mpps | twill cost over io "
               "(cycles/pkt) |\n|---|---|---|---|---|\n");
    for (size_t s = 0; s < scenarios.size(); ++s) {
        const scenario& sc = scenarios[s];
        harness hs = h;
        hs.in_port = sc.in;
        hs.out_port = sc.out;
        // Warm up caches and rings once, unmeasured.
        run_trial(hs, sc.m, sc.tpls, opt.packets / 10, sc.underlay, sc.pod);
        std::vector<double> io_c, tw_c, tw_mpps, cost;
        for (unsigned t = 0; t < opt.trials; ++t) {
            trial_result io = run_trial(hs, mode::io, sc.tpls, opt.packets, sc.underlay, sc.pod);
            trial_result tw = run_trial(hs, sc.m, sc.tpls, opt.packets, sc.underlay, sc.pod);
            io_c.push_back(io.cycles_per_packet);
            tw_c.push_back(tw.cycles_per_packet);
            tw_mpps.push_back(tw.mpps);
            cost.push_back(tw.cycles_per_packet - io.cycles_per_packet);
        }
        stats i = summarize(io_c), w = summarize(tw_c), r = summarize(tw_mpps), c = summarize(cost);
        fmt::print("| {} | {:.1f} ({:.1f}-{:.1f}) | {:.1f} ({:.1f}-{:.1f}) | {:.2f} ({:.2f}-{:.2f}) | "
                   "**{:.1f}** ({:.1f}-{:.1f}) |\n",
                   sc.name, i.median, i.min, i.max, w.median, w.min, w.max, r.median, r.min, r.max,
                   c.median, c.min, c.max);
        std::fflush(stdout);
        auto list = [](const std::vector<double>& v) {
            return fmt::format("[{:.2f}]", fmt::join(v, ", "));
        };
        json += fmt::format(
            "{}{{\"name\": \"{}\", \"io_cycles\": {}, \"twill_cycles\": {}, \"twill_mpps\": {}, "
            "\"cost_cycles\": {}}}",
            s ? ", " : "", sc.name, list(io_c), list(tw_c), list(tw_mpps), list(cost));
    }
    json += "]}\n";
    fmt::print("\nmedian (min-max) over {} trials; cost = twill - io, paired per trial\n",
               opt.trials);
    if (!opt.json.empty()) {
        if (FILE* f = std::fopen(opt.json.c_str(), "w")) {
            std::fputs(json.c_str(), f);
            std::fclose(f);
        }
    }
    unsigned in_use = rte_mempool_in_use_count(h.pool);
    detach_port(a);
    detach_port(b);
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    if (in_use != 0) {
        fmt::print(stderr, "twill-bench: {} mbufs leaked\n", in_use);
        return 1;
    }
    return 0;
}
