// twill-gen: the traffic generator of the benchmark harness (scripts/bench.sh). A DPDK
// program of its own, in its own process on its own core, on two links to the device under
// test (DUT): the pod link (it plays the local pods) and the underlay link (it plays the
// remote nodes). It sends pre-built frames of one scenario kind out of one link, receives
// what the DUT forwards on the other, and finds, by binary search over the offered load as
// RFC 2544 and FD.io CSIT do, the no-drop rate (NDR, no loss) and the partial-drop rate
// (PDR, loss <= 0.5%), each trial a fixed duration; then latency at fractions of the NDR.
//
// Every frame carries a stamp after its UDP header (the inner one when encapsulated): a
// magic, the trial's number, a sequence number and the TSC when it was handed to the link.
// A frame counts as received only if its stamp is this trial's, wherever the DUT put it
// (at the plain offset, or 50 bytes further after VXLAN encapsulation). Frames the link
// refused (its ring full: the DUT is not keeping up) count as sent and lost: the offered
// load is what the generator tried to send. The generator answers ARP for the remote
// nodes (anything in the underlay but the DUT's own address) so the DUT resolves them.
//
// The address plan (bench/README.md) is fixed; the DUT is configured to match it.
// Prints one JSON object on stdout (scenario, every trial, NDR/PDR median and spread,
// latency percentiles and CDFs).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_version.h>

#include "bench/frames.h"
#include "bench/gen_plan.h"
#include "bench/latency.h"
#include "bench/search.h"
#include "bench/stats.h"
#include "control/config.h"
#include "control/eal.h"
#include "control/ports.h"

namespace {

using namespace twill;
using namespace twill::bench;
using json = nlohmann::json;

constexpr uint16_t burst = 32;

struct options {
    std::string pod_dev, ul_dev;
    std::string kind = "encap";
    std::string frame = "64";  // 64 (60 bytes without the FCS) or imix
    uint32_t flows = 1024;
    uint32_t services = 10;
    uint32_t nodes = 1;
    double trial_seconds = 0.25;
    double latency_seconds = 0.25;
    unsigned reps = 5;
    double precision = 0.02;
    double pdr_loss = 0.005;
    double max_rate = 0;  // pps cap on the search (0: as fast as the generator goes)
    unsigned cpu = 0;
    bool huge = false;
    double warmup_rate = 500'000;
    uint16_t queues = 1;  // receive queues on each link, all polled
    bool one_trial = false;  // --rate R: one trial at R, no search (smoke tests)
    bool marks = false;      // --marks: stop before and after the top trial (see below)
    double rate = 0;
};

[[noreturn]] void usage() {
    fmt::print(stderr,
               "usage: twill-gen --pod DEVARGS --ul DEVARGS --kind "
               "encap|decap|local|svc-hit|svc-new|nodes [--frame 64|imix] [--flows N] "
               "[--services N] [--nodes N] [--trial-seconds S] [--latency-seconds S] "
               "[--reps N] [--precision F] [--pdr-loss F] [--max-rate PPS] [--rate PPS] "
               "[--cpu C] [--queues N] [--huge] [--marks]\n");
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
            }
            return argv[++i];
        };
        try {
            if (a == "--pod") {
                o.pod_dev = next();
            } else if (a == "--ul") {
                o.ul_dev = next();
            } else if (a == "--kind") {
                o.kind = next();
            } else if (a == "--frame") {
                o.frame = next();
            } else if (a == "--flows") {
                o.flows = uint32_t(std::stoul(next()));
            } else if (a == "--services") {
                o.services = uint32_t(std::stoul(next()));
            } else if (a == "--nodes") {
                o.nodes = uint32_t(std::stoul(next()));
            } else if (a == "--trial-seconds") {
                o.trial_seconds = std::stod(next());
            } else if (a == "--latency-seconds") {
                o.latency_seconds = std::stod(next());
            } else if (a == "--reps") {
                o.reps = unsigned(std::stoul(next()));
            } else if (a == "--precision") {
                o.precision = std::stod(next());
            } else if (a == "--pdr-loss") {
                o.pdr_loss = std::stod(next());
            } else if (a == "--max-rate") {
                o.max_rate = std::stod(next());
            } else if (a == "--rate") {
                o.rate = std::stod(next());
                o.one_trial = true;
            } else if (a == "--cpu") {
                o.cpu = unsigned(std::stoul(next()));
            } else if (a == "--queues") {
                o.queues = uint16_t(std::stoul(next()));
            } else if (a == "--marks") {
                o.marks = true;
            } else if (a == "--huge") {
                o.huge = true;
            } else {
                usage();
            }
        } catch (const std::exception&) {
            usage();
        }
    }
    const bool kind_ok = o.kind == "encap" || o.kind == "decap" || o.kind == "local" ||
                         o.kind == "svc-hit" || o.kind == "svc-new" || o.kind == "nodes";
    if (o.pod_dev.empty() || o.ul_dev.empty() || !kind_ok ||
        (o.frame != "64" && o.frame != "imix") || o.flows < 1 || o.flows > (1u << 24) ||
        o.services < 1 || o.services > max_services || o.nodes < 1 || o.nodes > max_nodes ||
        o.trial_seconds < 0.01 || o.trial_seconds > 60 || o.latency_seconds < 0.01 ||
        o.latency_seconds > 60 || o.reps < 1 || o.reps > 50 || o.precision <= 0 ||
        o.precision >= 1 || o.pdr_loss < 0 || o.pdr_loss >= 1 || o.queues < 1 ||
        o.queues > 8) {
        usage();
    }
    if (o.kind == "svc-hit" && o.flows > sports && o.flows > new_flow_limit(o.services)) {
        fmt::print(stderr, "twill-gen: {} services have at most {} flows\n", o.services,
                   new_flow_limit(o.services));
        std::exit(2);
    }
    return o;
}

// ---- the links -------------------------------------------------------------------------

struct gen_link {
    uint16_t port = 0;
    mac_addr mac{};
    uint16_t rx_queues = 1;  // all polled: a DUT may send on any (Open vSwitch uses 1)
};

// One trial's counts.
struct trial_result {
    double rate = 0;       // offered, pps (as asked; `sent / seconds` is what went)
    double seconds = 0;
    uint64_t sent = 0;     // handed to the link, refused ones included
    uint64_t refused = 0;  // refused by the link (ring full)
    uint64_t received = 0;
    uint64_t received_vxlan = 0;  // of which the stamp was inside VXLAN (encapsulated)
    uint64_t foreign = 0;  // other frames seen (ARP, late frames of earlier trials)
    // The generator's own stalls (its core taken away, as a virtual machine's vCPU is
    // now and then): the longest gap between two turns of its loop, and gaps over 100 us.
    uint64_t max_gap_ns = 0;
    uint64_t gaps_over_100us = 0;
    // Received more than the link took: the DUT (or the link) duplicated frames. Not
    // counted as loss; reported.
    uint64_t excess() const { return received > sent - refused ? received - (sent - refused) : 0; }
    latency_histogram lat;
    double loss() const {
        return sent == 0 ? 0 : double(sent - std::min(sent, received)) / double(sent);
    }
};

class generator {
public:
    generator(const options& o, const frame_plan& plan, gen_link tx, gen_link rx, gen_link ul,
              rte_mempool* pool)
        : o_(o), plan_(plan), tx_(tx), rx_(rx), ul_(ul), pool_(pool), hz_(rte_get_tsc_hz()) {}

    // Sends at `rate` pps (0: as fast as it can) for `seconds`, then waits for stragglers.
    trial_result trial(double rate, double seconds) {
        ++trial_id_;
        trial_result r;
        r.rate = rate;
        const uint64_t start = rte_rdtsc();
        const uint64_t end = start + uint64_t(seconds * double(hz_));
        const double gap = rate > 0 ? double(hz_) / rate : 0;  // cycles per packet
        rte_mbuf* pkts[burst];
        uint64_t now = start;
        while (now < end) {
            uint16_t n = burst;
            if (gap > 0) {
                const uint64_t due = uint64_t(double(now - start) / gap) + 1;
                n = due > r.sent ? uint16_t(std::min<uint64_t>(burst, due - r.sent)) : 0;
            }
            if (n > 0 && rte_pktmbuf_alloc_bulk(pool_, pkts, n) == 0) {
                for (uint16_t i = 0; i < n; ++i) {
                    build(pkts[i], seq_++, now);
                }
                const uint16_t ok = rte_eth_tx_burst(tx_.port, 0, pkts, n);
                if (ok < n) {
                    rte_pktmbuf_free_bulk(pkts + ok, n - ok);
                    r.refused += n - ok;
                }
                r.sent += n;
            }
            poll(r);
            const uint64_t prev = now;
            now = rte_rdtsc();
            const uint64_t turn_ns = (now - prev) * 1'000'000'000 / hz_;
            r.max_gap_ns = std::max(r.max_gap_ns, turn_ns);
            r.gaps_over_100us += turn_ns > 100'000;
        }
        r.seconds = double(now - start) / double(hz_);
        // Stragglers: until nothing arrived for 2 ms, at most 50 ms.
        const uint64_t drain_end = now + hz_ / 20;
        uint64_t quiet_since = now;
        while (now < drain_end && now - quiet_since < hz_ / 500) {
            if (poll(r) > 0) {
                quiet_since = now;
            }
            now = rte_rdtsc();
        }
        return r;
    }

    // Receives what is there on the receive link (and answers ARP on the underlay).
    unsigned poll(trial_result& r) {
        rte_mbuf* pkts[burst];
        unsigned got = 0;
        for (uint16_t q = 0; q < rx_.rx_queues; ++q) {
            got += poll_queue(r, q, pkts);
        }
        if (rx_.port != ul_.port) {  // the underlay is the transmit link: ARP comes there
            for (uint16_t q = 0; q < ul_.rx_queues; ++q) {
                const uint16_t m = rte_eth_rx_burst(ul_.port, q, pkts, burst);
                for (uint16_t i = 0; i < m; ++i) {
                    answer_arp(pkts[i], ul_);
                }
                if (m > 0) {
                    rte_pktmbuf_free_bulk(pkts, m);
                }
            }
        }
        return got;
    }

    unsigned poll_queue(trial_result& r, uint16_t q, rte_mbuf** pkts) {
        unsigned got = 0;
        const uint16_t n = rte_eth_rx_burst(rx_.port, q, pkts, burst);
        if (n > 0) {
            const uint64_t now = rte_rdtsc();
            for (uint16_t i = 0; i < n; ++i) {
                const stamp* s = find_stamp(pkts[i]);
                if (s != nullptr && s->trial == uint16_t(trial_id_)) {
                    ++r.received;
                    r.received_vxlan += reinterpret_cast<const uint8_t*>(s) -
                                            rte_pktmbuf_mtod(pkts[i], const uint8_t*) ==
                                        vxlan_stamp_off;
                    ++got;
                    r.lat.add(now > s->tsc ? (now - s->tsc) * 1'000'000'000 / hz_ : 0);
                } else if (!answer_arp(pkts[i], rx_)) {
                    ++r.foreign;
                }
            }
            rte_pktmbuf_free_bulk(pkts, n);
        }
        return got;
    }

    // Sends every flow once, `passes` times, at `rate`: the DUT learns neighbours and
    // creates its connections before anything is measured.
    trial_result warm(double rate, unsigned passes) {
        const uint64_t flows = plan_.new_flows ? 0 : o_.flows;
        const double seconds =
            std::max(0.2, double(std::max<uint64_t>(flows, 1000)) / rate) * passes;
        return trial(rate, seconds);
    }

private:
    struct __attribute__((packed)) stamp {
        uint16_t magic;
        uint16_t trial;
        uint32_t seq;
        uint64_t tsc;
    };
    static_assert(sizeof(stamp) == stamp_bytes);

    void build(rte_mbuf* m, uint64_t seq, uint64_t now) {
        const frame_template& t = plan_.pick(seq);
        uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
        std::memcpy(f, t.bytes.data(), t.bytes.size());
        m->data_len = uint16_t(t.bytes.size());
        m->pkt_len = uint32_t(t.bytes.size());
        plan_.set_flow(f, plan_.new_flows ? next_new_++ : seq % o_.flows);
        stamp s{stamp_magic, uint16_t(trial_id_), uint32_t(seq), now};
        std::memcpy(f + t.stamp_off, &s, sizeof s);
    }

    // The stamp, at the plain offset or after VXLAN encapsulation.
    static const stamp* find_stamp(const rte_mbuf* m) {
        const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
        for (unsigned off : {plain_stamp_off, vxlan_stamp_off}) {
            if (m->data_len >= off + sizeof(stamp) && f[12] == 0x08 && f[13] == 0x00 &&
                f[off - 8 - 20 + 9] == 17) {
                const auto* s = reinterpret_cast<const stamp*>(f + off);
                if (s->magic == stamp_magic) {
                    return s;
                }
            }
        }
        return nullptr;
    }

    // An ARP request for an underlay address other than the DUT's gets a reply from the
    // link's MAC (the remote nodes all live behind the generator).
    bool answer_arp(rte_mbuf* m, const gen_link& l) {
        uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
        if (m->data_len < 42 || f[12] != 0x08 || f[13] != 0x06 || f[20] != 0 || f[21] != 1) {
            return false;
        }
        const uint32_t target = uint32_t(f[38]) << 24 | uint32_t(f[39]) << 16 |
                                uint32_t(f[40]) << 8 | f[41];
        if ((target & 0xfffe0000) != underlay_net || target == dut_underlay_ip) {
            return true;  // ARP, but not ours to answer
        }
        rte_mbuf* r = rte_pktmbuf_alloc(pool_);
        if (r == nullptr) {
            return true;
        }
        uint8_t* p = rte_pktmbuf_mtod(r, uint8_t*);
        std::memset(p, 0, 60);
        std::memcpy(p, f + 6, 6);
        std::memcpy(p + 6, l.mac.bytes.data(), 6);
        put16(p + 12, 0x0806);
        put16(p + 14, 1);
        put16(p + 16, 0x0800);
        p[18] = 6;
        p[19] = 4;
        put16(p + 20, 2);
        std::memcpy(p + 22, l.mac.bytes.data(), 6);
        std::memcpy(p + 28, f + 38, 4);  // sender: the address asked for
        std::memcpy(p + 32, f + 22, 10);  // target: the asker's MAC and address
        r->data_len = 60;
        r->pkt_len = 60;
        if (rte_eth_tx_burst(l.port, 0, &r, 1) == 0) {
            rte_pktmbuf_free(r);
        }
        return true;
    }

    const options& o_;
    const frame_plan& plan_;
    gen_link tx_, rx_, ul_;
    rte_mempool* pool_;
    uint64_t hz_;
    uint32_t trial_id_ = 0;
    uint64_t seq_ = 0;
    uint64_t next_new_ = 0;
};

json stats_json(const std::vector<double>& v) {
    if (v.empty()) {
        return nullptr;
    }
    const stats s = summarize(v);
    return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"n", v.size()}};
}

json trial_json(const trial_result& t) {
    return {{"rate", t.rate},          {"seconds", t.seconds}, {"sent", t.sent},
            {"offered_pps", t.seconds > 0 ? double(t.sent) / t.seconds : 0},
            {"refused", t.refused},    {"received", t.received}, {"foreign", t.foreign},
            {"received_vxlan", t.received_vxlan}, {"max_gap_ns", t.max_gap_ns},
            {"gaps_over_100us", t.gaps_over_100us},
            {"loss", t.loss()},        {"excess", t.excess()}};
}

void mark(const options& o, const char* what) {
    if (!o.marks) {
        return;
    }
    fmt::print("mark {}\n", what);
    std::fflush(stdout);
    char line[64];
    if (std::fgets(line, sizeof line, stdin) == nullptr) {
        fmt::print(stderr, "twill-gen: stdin closed at mark {}\n", what);
        std::exit(1);
    }
}

// Waits for a port's link, at most `seconds`.
bool wait_link(uint16_t port, double seconds) {
    const uint64_t end = rte_rdtsc() + uint64_t(seconds * double(rte_get_tsc_hz()));
    while (rte_rdtsc() < end) {
        rte_eth_link l{};
        if (rte_eth_link_get_nowait(port, &l) == 0 && l.link_status == RTE_ETH_LINK_UP) {
            return true;
        }
        rte_delay_ms(10);
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse(argc, argv);
    std::vector<std::string> eal = {"twill-gen",
                                    "--no-pci",
                                    fmt::format("--lcores=0@{}", opt.cpu),
                                    "--log-level=error",
                                    fmt::format("--file-prefix=twb-gen-{}", getpid())};
    if (!opt.huge) {
        eal.insert(eal.begin() + 1, {"--no-huge", "-m", "512"});
    } else {
        eal.insert(eal.begin() + 1, {"-m", "512"});
    }
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fmt::print(stderr, "twill-gen: EAL init failed: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    const std::string runtime_dir = eal_runtime_dir();
    rte_mempool* pool = rte_pktmbuf_pool_create("gen_pool", 16383, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) {
        fmt::print(stderr, "twill-gen: mempool: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    // --queues 2 for Open vSwitch: its PMD transmits on queue 1 and its main thread on
    // queue 0, and a memif server with one queue refuses the second ring. Not more than
    // the DUT uses: a memif server's queue without a ring of the client's behind it
    // returns the first queue's frames again (seen with DPDK 22.11).
    port_wants wants;
    wants.queues = opt.queues;
    port_result pod = attach_port(opt.pod_dev, pool, wants);
    port_result ul = pod.ok ? attach_port(opt.ul_dev, pool, wants) : port_result{};
    if (!pod.ok || !ul.ok) {
        fmt::print(stderr, "twill-gen: {}\n", pod.ok ? ul.error : pod.error);
        return 1;
    }
    // Every way out: the ports detached and the EAL's runtime files removed.
    auto finish = [&](int code) {
        std::fflush(stdout);
        detach_port(pod.port_id);
        detach_port(ul.port_id);
        rte_eal_cleanup();
        remove_eal_runtime_dir(runtime_dir);
        return code;
    };
    // The frames carry the plan's MACs, whatever the ports' own are.
    const gen_link pod_link{pod.port_id, pod_mac, pod.queues.rx};
    const gen_link ul_link{ul.port_id, remote_underlay_mac, ul.queues.rx};
    fmt::print(stderr, "twill-gen: ready\n");
    if (!wait_link(pod.port_id, 30) || !wait_link(ul.port_id, 30)) {
        fmt::print(stderr, "twill-gen: the DUT did not connect within 30 s\n");
        return finish(1);
    }

    const frame_plan plan = make_plan(opt.kind, opt.frame, opt.services, opt.nodes, opt.flows);
    const bool tx_pod = opt.kind != "decap";
    generator gen(opt, plan, tx_pod ? pod_link : ul_link, tx_pod ? ul_link : pod_link,
                  ul_link, pool);

    json out;
    out["kind"] = opt.kind;
    out["frame"] = opt.frame;
    out["flows"] = plan.new_flows ? 0 : opt.flows;
    out["services"] = opt.services;
    out["nodes"] = opt.nodes;
    out["trial_seconds"] = opt.trial_seconds;
    out["pdr_loss"] = opt.pdr_loss;
    out["precision"] = opt.precision;
    out["tsc_hz"] = rte_get_tsc_hz();
    out["dpdk"] = rte_version();
    out["generator_cpu"] = opt.cpu;
    out["mean_frame_bytes"] = plan.mean_bytes();

    // Warm up: a few passes at a modest rate until frames come through (neighbours
    // resolved, connections made, a peer's flows installed), at most about 30 s.
    trial_result w;
    for (int i = 0; i < 60; ++i) {
        w = gen.warm(std::min(opt.warmup_rate, opt.max_rate > 0 ? opt.max_rate : 1e12), 1);
        if (w.received > 0 && w.loss() < 0.01) {
            break;
        }
    }
    out["warmup"] = trial_json(w);
    if (w.received == 0) {
        out["error"] = "nothing came through the DUT while warming up";
        fmt::print("{}\n", out.dump());
        return finish(3);
    }

    if (opt.one_trial) {
        const trial_result t = gen.trial(opt.rate, opt.trial_seconds);
        out["trial"] = trial_json(t);
        out["trial"]["latency"] = t.lat.summary_json();
    } else {
        // The generator's own top speed and what the DUT passes at it. With --marks the
        // caller reads the DUT's own accounting (busy cycles, packets) around this trial:
        // "mark top-begin" / "mark top-end" on stdout, then it waits for a line on stdin.
        mark(opt, "top-begin");
        // At least a second: the kernel's CPU time is counted in ticks.
        const trial_result top = gen.trial(opt.max_rate, std::max(1.0, opt.trial_seconds));
        mark(opt, "top-end");
        out["max_trial"] = trial_json(top);
        const double top_rate = double(top.sent) / top.seconds;
        const double top_rx = double(top.received) / top.seconds;
        std::vector<double> ndrs, pdrs;
        json reps = json::array();
        // A trial passes only if the generator really offered the rate asked (within 2%):
        // else a slow generator whose frames all arrived would pass rates never offered.
        // The lowest rate it fell short of bounds what this run can tell.
        double shortfall = 0;
        for (unsigned rep = 0; rep < opt.reps; ++rep) {
            json trials = json::array();
            auto run = [&](double rate, double max_loss) {
                const trial_result t = gen.trial(rate, opt.trial_seconds);
                trials.push_back(trial_json(t));
                const bool offered = double(t.sent) >= 0.98 * rate * t.seconds;
                if (!offered && t.loss() <= max_loss && (shortfall == 0 || rate < shortfall)) {
                    shortfall = rate;
                }
                return offered && t.loss() <= max_loss;
            };
            const search_result ndr = search_rate(0, top_rate, top_rx, opt.precision,
                                                  [&](double r) { return run(r, 0); });
            const search_result pdr =
                search_rate(ndr.rate, top_rate, std::max(top_rx, ndr.rate), opt.precision,
                            [&](double r) { return run(r, opt.pdr_loss); });
            ndrs.push_back(ndr.rate);
            pdrs.push_back(pdr.rate);
            reps.push_back({{"ndr_pps", ndr.rate},
                            {"pdr_pps", pdr.rate},
                            {"ndr_at_top", ndr.at_top},
                            {"trials", trials}});
        }
        out["reps"] = reps;
        out["ndr_pps"] = stats_json(ndrs);
        out["pdr_pps"] = stats_json(pdrs);
        // The NDR is the generator's limit when it could not offer a rate just above.
        out["generator_shortfall_pps"] = shortfall;
        out["generator_limited"] =
            shortfall > 0 && shortfall <= summarize(ndrs).median * (1 + 3 * opt.precision);

        // Latency at fractions of the NDR (median of the reps), five trials each.
        const double ndr = summarize(ndrs).median;
        json lats = json::array();
        for (double load : {0.1, 0.5, 0.9}) {
            std::vector<double> p50, p99, p999, loss;
            latency_histogram all;
            for (unsigned k = 0; k < std::max(5u, opt.reps); ++k) {
                const trial_result t = gen.trial(ndr * load, opt.latency_seconds);
                p50.push_back(t.lat.percentile(0.5));
                p99.push_back(t.lat.percentile(0.99));
                p999.push_back(t.lat.percentile(0.999));
                loss.push_back(t.loss());
                all.merge(t.lat);
            }
            lats.push_back({{"load", load},
                            {"rate", ndr * load},
                            {"p50_ns", stats_json(p50)},
                            {"p99_ns", stats_json(p99)},
                            {"p999_ns", stats_json(p999)},
                            {"loss", stats_json(loss)},
                            {"cdf", all.cdf_json()}});
        }
        out["latency"] = lats;
    }
    fmt::print("{}\n", out.dump());
    return finish(0);
}
