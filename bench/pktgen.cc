// twill-pktgen: UDP to the services of bench/service_flows.h, out of one DPDK port
// (bench/kernel_nat.sh gives it a net_af_packet vdev on a veth in its own namespace).
//
//   --mode hit: `--flows` fixed flows re-sent in turn (conntrack hits once they exist);
//   --mode new: every packet a flow not sent before in this run (from --first on).
//
// Always bounded by --packets and --seconds; --pps paces (0 = as fast as it can). With
// --wait it prints "ready" once the port is up and sends when a line arrives on stdin,
// so the caller can read its counters just before. It prints "sent N ns T cpu_ns C" at
// the end: C is the CPU time of its thread while sending, user and system, which includes
// what the kernel does with each frame in the sendto() that hands it over.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "bench/service_flows.h"
#include "control/config.h"
#include "control/eal.h"
#include "control/ports.h"

namespace {

using namespace twill;
using namespace twill::bench;

constexpr uint16_t burst = 32;

struct options {
    std::string iface;
    std::string dst_mac = "02:00:00:00:00:01";
    unsigned lcore_cpu = 1;
    bool new_flows = false;
    uint32_t services = 10;
    uint32_t flows = default_hit_flows;
    uint64_t first = 0;
    uint64_t packets = 1'000'000;
    double seconds = 5;
    uint64_t pps = 0;
    unsigned frame = 60;
    bool wait = false;
};

[[noreturn]] void usage() {
    fmt::print(stderr,
               "usage: twill-pktgen --iface IF [--dst-mac MAC] [--mode hit|new] [--services N] "
               "[--flows N] [--first I] [--packets N] [--seconds S] [--pps R] [--frame BYTES] "
               "[--lcore-cpu CPU] [--wait]\n");
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
            }
            return argv[++i];
        };
        if (a == "--iface") {
            o.iface = next();
        } else if (a == "--dst-mac") {
            o.dst_mac = next();
        } else if (a == "--mode") {
            const std::string m = next();
            if (m != "hit" && m != "new") {
                usage();
            }
            o.new_flows = m == "new";
        } else if (a == "--services") {
            o.services = uint32_t(std::stoul(next()));
        } else if (a == "--flows") {
            o.flows = uint32_t(std::stoul(next()));
        } else if (a == "--first") {
            o.first = std::stoull(next());
        } else if (a == "--packets") {
            o.packets = std::stoull(next());
        } else if (a == "--seconds") {
            o.seconds = std::stod(next());
        } else if (a == "--pps") {
            o.pps = std::stoull(next());
        } else if (a == "--frame") {
            o.frame = unsigned(std::stoul(next()));
        } else if (a == "--lcore-cpu") {
            o.lcore_cpu = unsigned(std::stoul(next()));
        } else if (a == "--wait") {
            o.wait = true;
        } else {
            usage();
        }
    }
    if (o.iface.empty() || o.services < 1 || o.services > max_services || o.flows < 1 ||
        o.flows > sports || o.frame < 60 || o.frame > 1400 || o.seconds <= 0 || o.seconds > 600) {
        usage();
    }
    if (o.new_flows && o.first + o.packets > new_flow_limit(o.services)) {
        fmt::print(stderr, "twill-pktgen: only {} distinct new flows exist for {} services\n",
                   new_flow_limit(o.services), o.services);
        std::exit(2);
    }
    return o;
}

uint64_t thread_cpu_ns() {
    rusage u{};
    getrusage(RUSAGE_THREAD, &u);
    auto ns = [](const timeval& t) {
        return uint64_t(t.tv_sec) * 1'000'000'000 + uint64_t(t.tv_usec) * 1000;
    };
    return ns(u.ru_utime) + ns(u.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse(argc, argv);
    const std::optional<mac_addr> dst_mac = config::parse_mac(opt.dst_mac);
    if (!dst_mac) {
        fmt::print(stderr, "twill-pktgen: --dst-mac {} is not a MAC address\n", opt.dst_mac);
        return 2;
    }
    std::vector<std::string> eal = {"twill-pktgen",
                                    "--no-huge",
                                    "-m",
                                    "256",
                                    "--no-pci",
                                    fmt::format("--lcores=0@{}", opt.lcore_cpu),
                                    "--log-level=error",
                                    fmt::format("--file-prefix=twb-pktgen-{}", getpid())};
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fmt::print(stderr, "twill-pktgen: EAL init failed: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    const std::string runtime_dir = eal_runtime_dir();
    rte_mempool* pool = rte_pktmbuf_pool_create("pktgen_pool", 8191, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) {
        fmt::print(stderr, "twill-pktgen: mempool: {}\n", rte_strerror(rte_errno));
        return 1;
    }
    // qdisc_bypass: frames go straight to the veth, as a NIC driver's would.
    port_result port = attach_port(
        fmt::format("net_af_packet0,iface={},qpairs=1,qdisc_bypass=1", opt.iface), pool, {});
    if (!port.ok) {
        fmt::print(stderr, "twill-pktgen: {}\n", port.error);
        return 1;
    }
    const mac_addr src_mac = port_mac(port.port_id);
    const std::vector<uint8_t> tpl =
        udp_template(opt.frame, dst_mac->bytes.data(), src_mac.bytes.data());

    if (opt.wait) {
        fmt::print("ready\n");
        std::fflush(stdout);
        std::string line;
        if (!std::getline(std::cin, line)) {
            fmt::print(stderr, "twill-pktgen: stdin closed before go\n");
            detach_port(port.port_id);
            rte_eal_cleanup();
            remove_eal_runtime_dir(runtime_dir);
            return 1;
        }
    }

    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t cpu_start = thread_cpu_ns();
    const uint64_t start = rte_rdtsc();
    const uint64_t deadline = start + uint64_t(opt.seconds * double(hz));
    const uint64_t gap = opt.pps ? hz / opt.pps : 0;  // cycles per packet when paced
    uint64_t sent = 0, next_flow = opt.first, next_hit = 0;
    rte_mbuf* pkts[burst];
    while (sent < opt.packets) {
        const uint64_t now = rte_rdtsc();
        if (now >= deadline) {
            break;
        }
        uint16_t n = uint16_t(std::min<uint64_t>(burst, opt.packets - sent));
        if (opt.new_flows) {
            // Flows of packets the driver refused are not sent again: stay inside the range.
            n = uint16_t(std::min<uint64_t>(n, opt.first + opt.packets - next_flow));
            if (n == 0) {
                break;
            }
        }
        if (gap != 0) {
            const uint64_t due = (now - start) / gap + 1;  // packets due by now
            if (due <= sent) {
                continue;
            }
            n = uint16_t(std::min<uint64_t>(n, due - sent));
        }
        if (rte_pktmbuf_alloc_bulk(pool, pkts, n) != 0) {
            continue;  // all in the driver's hands: they come back as it sends
        }
        for (uint16_t i = 0; i < n; ++i) {
            rte_mbuf* m = pkts[i];
            m->data_len = uint16_t(tpl.size());
            m->pkt_len = uint32_t(tpl.size());
            uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
            std::memcpy(f, tpl.data(), tpl.size());
            flow fl;
            if (opt.new_flows) {
                fl = new_flow(next_flow++, opt.services);
            } else {
                fl = hit_flow(uint32_t(next_hit), opt.services);
                next_hit = next_hit + 1 == opt.flows ? 0 : next_hit + 1;
            }
            set_flow(f, service_vip(fl.service), fl.sport);
        }
        const uint16_t ok = rte_eth_tx_burst(port.port_id, 0, pkts, n);
        if (ok < n) {
            rte_pktmbuf_free_bulk(pkts + ok, n - ok);
        }
        sent += ok;
    }
    const uint64_t ns = (rte_rdtsc() - start) * 1'000'000'000 / hz;
    const uint64_t cpu_ns = thread_cpu_ns() - cpu_start;
    fmt::print("sent {} ns {} cpu_ns {}\n", sent, ns, cpu_ns);
    std::fflush(stdout);
    detach_port(port.port_id);
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    return 0;
}
