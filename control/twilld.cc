// twilld: one twill node. The main lcore is the control thread (Boost.Asio); worker
// lcores (dpdk.workers) run the packet path.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_version.h>

#include "control/build_tables.h"
#include "control/config.h"
#include "control/eal.h"
#include "control/file_watch.h"
#include "control/node_state.h"
#include "control/api.h"
#include "control/control_socket.h"
#include "control/ports.h"
#include "control/report.h"
#include "dataplane/worker/worker.h"

namespace {

using namespace twill;

constexpr const char* usage =
    "usage: twilld --config FILE [--socket PATH] [--watch]\n"
    "                               run the node described by FILE; control socket at PATH\n"
    "                               (default /run/twill/twilld.sock); --watch: reload FILE\n"
    "                               when it is rewritten or replaced, as on SIGHUP\n"
    "       twilld --check FILE     validate FILE and exit (0 = valid)\n"
    "       twilld --version\n";

constexpr unsigned mbuf_cache = 256;

// Enough for every port's rings full at once (drivers like net_tap and NICs fill their
// receive rings at start), the per-lcore caches and packets in flight.
unsigned pool_size(size_t ports) {
    size_t need = ports * (rx_descriptors + tx_descriptors) + 2 * mbuf_cache + 4096;
    return unsigned(std::max<size_t>(need, 16383));
}

bool has_arg(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
    for (const std::string& a : args) {
        for (const char* n : names) {
            if (a == n || a.rfind(std::string(n) + "=", 0) == 0) {
                return true;
            }
        }
    }
    return false;
}

// The config's EAL list (or the embedded default), plus what a node needs when absent:
// a per-instance file prefix, and the main and worker lcores on the CPUs we may use, the
// workers one to a CPU as far as there are CPUs (the main lcore, mostly idle, shares).
std::vector<std::string> eal_args(const config::node_file& cfg, bool& own_prefix) {
    std::vector<std::string> args{"twilld"};
    std::vector<std::string> given = cfg.eal.empty() ? config::default_eal() : cfg.eal;
    args.insert(args.end(), given.begin(), given.end());
    if (!has_arg(given, {"--file-prefix", "--in-memory"})) {
        own_prefix = true;
        args.push_back("--file-prefix=twill-" + cfg.node.name + "-" + std::to_string(getpid()));
    }
    if (!has_arg(given, {"-l", "-c", "--lcores"})) {
        cpu_set_t set;
        CPU_ZERO(&set);
        sched_getaffinity(0, sizeof(set), &set);
        std::vector<int> cpus;
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) {
                cpus.push_back(c);
            }
        }
        std::vector<uint32_t> lcores = cfg.worker_lcores;
        for (uint32_t w = 1; lcores.empty() || lcores.size() < cfg.workers; ++w) {
            lcores.push_back(w);
        }
        std::string list = fmt::format("--lcores=0@{}", cpus[0]);
        for (size_t i = 0; i < lcores.size(); ++i) {
            list += fmt::format(",{}@{}", lcores[i], cpus[(i + 1) % cpus.size()]);
        }
        args.push_back(list);
    }
    return args;
}

// The worker lcores: those dpdk.workerLcores names, else the first dpdk.workers after
// the main one; empty, with `error`, when EAL was not given them.
std::vector<unsigned> worker_lcores(const config::node_file& cfg, std::string& error) {
    std::vector<unsigned> out;
    if (!cfg.worker_lcores.empty()) {
        for (uint32_t id : cfg.worker_lcores) {
            if (id >= RTE_MAX_LCORE || !rte_lcore_is_enabled(id) || id == rte_get_main_lcore()) {
                error = fmt::format("dpdk.workerLcores names lcore {}, which EAL has not as a "
                                    "worker lcore (see -l/--lcores in dpdk.eal)",
                                    id);
                return {};
            }
            out.push_back(id);
        }
        return out;
    }
    unsigned id = -1;
    while (out.size() < cfg.workers && (id = rte_get_next_lcore(id, 1, 0)) < RTE_MAX_LCORE) {
        out.push_back(id);
    }
    if (out.size() < cfg.workers) {
        error = fmt::format("dpdk.workers is {} but EAL has {} worker lcore{} (give -l/--lcores in "
                            "dpdk.eal one more lcore than workers)",
                            cfg.workers, out.size(), out.size() == 1 ? "" : "s");
        return {};
    }
    return out;
}

int check(const std::string& path) {
    config::parse_result r = config::load_file(path);
    if (!r.ok()) {
        for (const config::error& e : r.errors) {
            fmt::print(stderr, "{}\n", config::to_string(e));
        }
        fmt::print(stderr, "{}: {} error{}\n", path, r.errors.size(), r.errors.size() == 1 ? "" : "s");
        return 1;
    }
    size_t local = 0;
    for (const config::pod& p : r.cfg.pods) {
        local += p.port.empty() ? 0 : 1;
    }
    fmt::print("{}: ok (node {}, {} remote nodes, {} local pods, {} pods in all, {} services, "
               "{} endpoint slices, {} namespaces, {} network policies)\n",
               path, r.cfg.node.name, r.cfg.nodes.size(), local, r.cfg.pods.size(),
               r.cfg.services.size(), r.cfg.endpoint_slices.size(), r.cfg.namespaces.size(),
               r.cfg.network_policies.size());
    return 0;
}

int run(const std::string& path, const std::string& socket_path, bool watch) {
    config::parse_result parsed = config::load_file(path);
    if (!parsed.ok()) {
        return check(path);
    }
    const config::node_file& cfg = parsed.cfg;

    // Signals are taken over before anything starts: one that arrives during start-up
    // waits for io.run() instead of killing the process half set up.
    std::atomic<bool> stop{false};
    std::function<void()> report = [] {};
    std::function<void()> reload = [] {};
    boost::asio::io_context io;
    boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGUSR1);
    signals.add(SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& ec, int sig) {
            if (ec) {
                return;
            }
            if (sig == SIGUSR1) {
                report();
            } else if (sig == SIGHUP) {
                reload();
            } else {
                fmt::print("twilld: {} received, stopping\n", strsignal(sig));
                stop.store(true, std::memory_order_relaxed);
                io.stop();  // the control socket keeps work pending
                return;
            }
            signals.async_wait(on_signal);
        };
    signals.async_wait(on_signal);

    bool own_prefix = false;
    std::vector<std::string> args = eal_args(cfg, own_prefix);
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    fmt::print("twilld: EAL {}\n", fmt::join(args.begin() + 1, args.end(), " "));
    if (rte_eal_init(int(argv.size()), argv.data()) < 0) {
        fmt::print(stderr, "twilld: EAL init failed: {} (check dpdk.eal in {})\n",
                   rte_strerror(rte_errno), path);
        return 1;
    }
    const std::string runtime_dir = own_prefix ? eal_runtime_dir() : std::string();
    std::string lcore_error;
    const std::vector<unsigned> lcores = worker_lcores(cfg, lcore_error);
    if (lcores.empty()) {
        fmt::print(stderr, "twilld: {}\n", lcore_error);
        rte_eal_cleanup();
        remove_eal_runtime_dir(runtime_dir);
        return 1;
    }
    const auto nb_workers = uint32_t(lcores.size());

    // Sized for every port the process may have: pods are attached at run time too.
    rte_mempool* pool = rte_pktmbuf_pool_create("twill_mbufs", pool_size(RTE_MAX_ETHPORTS), mbuf_cache, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (pool == nullptr) {
        fmt::print(stderr, "twilld: cannot create the mbuf pool: {} (raise -m in dpdk.eal)\n",
                   rte_strerror(rte_errno));
        rte_eal_cleanup();
        remove_eal_runtime_dir(runtime_dir);
        return 1;
    }

    // A jumbo overlay: 10 KB mbufs, which hold any underlay frame (up to 9216 bytes) and
    // an af_packet port's 10240-byte frames (its framesz devarg), for ports that cannot
    // receive into chains; the others chain 2 KB mbufs.
    rte_mempool* jumbo_pool = nullptr;
    if (const uint32_t frame = cfg.vxlan.mtu + 50u + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
        frame > RTE_MBUF_DEFAULT_DATAROOM) {
        jumbo_pool = rte_pktmbuf_pool_create("twill_jumbo", 4095, mbuf_cache, 0,
                                             RTE_PKTMBUF_HEADROOM + 10240, int(rte_socket_id()));
        if (jumbo_pool == nullptr) {
            fmt::print(stderr,
                       "twilld: cannot create the jumbo mbuf pool: {} (raise -m in dpdk.eal)\n",
                       rte_strerror(rte_errno));
            rte_eal_cleanup();
            remove_eal_runtime_dir(runtime_dir);
            return 1;
        }
    }

    std::vector<named_port> ports;
    std::map<std::string, uint16_t> pod_ports;
    auto fail = [&](const std::string& msg) {
        fmt::print(stderr, "twilld: {}\n", msg);
        for (const named_port& p : ports) {
            detach_port(p.id);
        }
        rte_eal_cleanup();
        remove_eal_runtime_dir(runtime_dir);
        return 1;
    };
    // Each port's queues, as the workers share them; filled as ports are attached.
    auto layout = std::make_unique<port_layout>();
    layout->workers = nb_workers;
    const auto queues = uint16_t(nb_workers);
    // The underlay carries the overlay's packets with 50 bytes of VXLAN, the host port
    // the kernel's underlay traffic, pods the overlay MTU.
    const auto underlay_mtu = uint16_t(cfg.vxlan.mtu + 50), pod_mtu = cfg.vxlan.mtu;
    auto warn = [](const port_result& r) {
        if (!r.warning.empty()) {
            fmt::print(stderr, "twilld: warning: {}\n", r.warning);
        }
    };
    port_result underlay =
        attach_port(cfg.underlay_port, pool, {queues, false, true, underlay_mtu, jumbo_pool});
    warn(underlay);
    if (!underlay.ok) {
        return fail(underlay.error);
    }
    ports.push_back({underlay.port_id, "underlay", port_name(underlay.port_id)});
    layout->ports[underlay.port_id] = underlay.queues;
    port_result host;
    if (!cfg.host_port.empty()) {
        host = attach_port(cfg.host_port, pool, {queues, true, false, underlay_mtu, jumbo_pool});
        warn(host);
        if (!host.ok) {
            return fail("ports.host: " + host.error);
        }
        ports.push_back({host.port_id, "host", port_name(host.port_id)});
        layout->ports[host.port_id] = host.queues;
        // The kernel's interface takes the underlay port's MAC, so that frames pass
        // between the two unchanged (net_tap sets it on the tap device).
        rte_ether_addr mac;
        if (rte_eth_macaddr_get(underlay.port_id, &mac) != 0 ||
            rte_eth_dev_default_mac_addr_set(host.port_id, &mac) != 0) {
            fmt::print(stderr, "twilld: warning: cannot give the host port the underlay's MAC; "
                               "set it on the kernel's interface yourself\n");
        }
    }
    for (const config::pod& p : cfg.pods) {
        if (p.port.empty()) {
            continue;
        }
        port_result r = attach_port(p.port, pool, {queues, true, false, pod_mtu, jumbo_pool});
        warn(r);
        if (!r.ok) {
            return fail(fmt::format("pod {}/{}: {}", p.ns, p.name, r.error));
        }
        ports.push_back({r.port_id, fmt::format("pod {}/{}", p.ns, p.name), port_name(r.port_id)});
        layout->ports[r.port_id] = r.queues;
        pod_ports[p.port] = r.port_id;
    }

    node_params params =
        make_params(cfg, underlay.port_id, port_mac(underlay.port_id), rte_get_tsc_hz());
    if (host.ok) {
        params.host_port = host.port_id;
    }
    size_t qsbr_size = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("twill_qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
    if (qsbr == nullptr || rte_rcu_qsbr_init(qsbr, RTE_MAX_LCORE) != 0) {
        return fail("cannot set up RCU state");
    }
    std::vector<std::unique_ptr<worker_counters>> counters;
    std::vector<const worker_counters*> all_counters;
    for (uint32_t w = 0; w < nb_workers; ++w) {
        counters.push_back(std::make_unique<worker_counters>());
        all_counters.push_back(counters.back().get());
    }
    // A hot-plugged pod may get the port id of one removed earlier: its counters start at
    // 0. Its queues are in the layout before any table names the port.
    auto attach_pod_port = [&](const std::string& devargs) {
        port_result r = attach_port(devargs, pool, {queues, true, false, pod_mtu, jumbo_pool});
        warn(r);
        if (r.ok) {
            for (auto& c : counters) {
                c->ports[r.port_id].reset();
            }
            layout->ports[r.port_id] = r.queues;
        }
        return r;
    };
    // Owned here so that it goes before EAL does: its policy tables hold rte_lpm memory.
    auto state_owner = std::make_unique<node_state>(cfg, params, pod_ports, qsbr,
                                                    port_ops{attach_pod_port, detach_port});
    node_state& state = *state_owner;
    auto port_list = [&] {
        std::vector<named_port> list{{underlay.port_id, "underlay", port_name(underlay.port_id)}};
        if (host.ok) {
            list.push_back({host.port_id, "host", port_name(host.port_id)});
        }
        for (const auto& [key, p] : state.desired().local_pods()) {
            if (!p.port.empty()) {
                uint16_t id = state.pod_ports().at(p.port);
                list.push_back({id, fmt::format("pod {}/{}", p.ns, p.name), port_name(id)});
            }
        }
        return list;
    };
    std::vector<worker_args> wargs(nb_workers);
    for (uint32_t w = 0; w < nb_workers; ++w) {
        wargs[w] = worker_args{&params, &state.published(), &state.learned(), counters[w].get(),
                               pool,    qsbr,               layout.get(),     w,
                               lcores[w], &stop};
        if (rte_eal_remote_launch(worker_main, &wargs[w], lcores[w]) != 0) {
            stop.store(true, std::memory_order_relaxed);
            rte_eal_mp_wait_lcore();
            return fail(fmt::format("cannot launch worker {} on lcore {}", w, lcores[w]));
        }
    }
    // SIGHUP: re-read the file and apply it as one change, or change nothing and say why.
    reload = [&] {
        config::parse_result next = config::load_file(path);
        std::vector<std::string> problems;
        for (const config::error& e : next.errors) {
            problems.push_back(config::to_string(e));
        }
        if (next.ok()) {
            problems = state.apply(next.cfg);
        }
        if (problems.empty()) {
            fmt::print("twilld: reload of {} applied ({} remote nodes, {} local pods)\n", path,
                       next.cfg.nodes.size(), state.pod_ports().size());
        } else {
            fmt::print("twilld: reload of {} rejected, nothing changed:\n", path);
            for (const std::string& p : problems) {
                fmt::print("  {}\n", p);
            }
        }
        std::fflush(stdout);
    };
    report = [&] {
        std::string text =
            counters_report(cfg.node.name, port_list(), all_counters.data(), all_counters.size());
        fmt::print("{}", text);
        std::fflush(stdout);
    };
    api_context api{state,
                    [&] {
                        return counters_json(port_list(), all_counters.data(), all_counters.size());
                    },
                    fmt::format("twilld {} (DPDK {})", TWILL_VERSION, rte_version())};
    control_socket control(io, socket_path, [&](const std::string& req) {
        return handle_request(req, api);
    });
    file_watch watcher(io, path, [&] {
        fmt::print("twilld: {} changed on disk\n", path);
        reload();
    });
    if (watch) {
        if (std::string err = watcher.start(); !err.empty()) {
            fmt::print(stderr, "twilld: --watch not available: {}; SIGHUP still reloads\n", err);
        }
    }
    if (std::string err = control.open(); !err.empty()) {
        // The dataplane runs without it; say so loudly.
        fmt::print(stderr, "twilld: control socket not available: {}\n", err);
    } else {
        fmt::print("twilld: control socket {}\n", control.path());
    }
    fmt::print("twilld: running: node {} ({}), slice {}, VTEP MAC {}, {} ports, {} worker{} on "
               "lcore{} {}, underlay {} rx / {} tx queue{}{}\n",
               cfg.node.name, config::format_ip4(cfg.node.ip), config::format_prefix(cfg.node.pod_cidr),
               config::format_mac(cfg.node.vtep_mac), port_list().size(), nb_workers,
               nb_workers == 1 ? "" : "s", nb_workers == 1 ? "" : "s", fmt::join(lcores, ","),
               underlay.queues.rx, underlay.queues.tx, underlay.queues.tx == 1 ? "" : "s",
               underlay.queues.tx_cksum ? ", outer checksums offloaded" : "");
    std::fflush(stdout);
    io.run();

    rte_eal_mp_wait_lcore();
    report();
    for (const named_port& p : port_list()) {
        detach_port(p.id);
    }
    fmt::print("twilld: mbufs still in use after stop: {}\n",
               rte_mempool_in_use_count(pool) +
                   (jumbo_pool != nullptr ? rte_mempool_in_use_count(jumbo_pool) : 0));
    state_owner.reset();  // nothing uses it once the workers and io.run() are done
    rte_mempool_free(pool);
    rte_mempool_free(jumbo_pool);
    rte_free(qsbr);
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    fmt::print("twilld: stopped\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 2 && args[0] == "--config") {
        std::string socket = default_socket_path;
        bool watch = false, ok = true;
        for (size_t i = 2; i < args.size() && ok; ++i) {
            if (args[i] == "--socket" && i + 1 < args.size()) {
                socket = args[++i];
            } else if (args[i] == "--watch") {
                watch = true;
            } else {
                ok = false;
            }
        }
        if (ok) {
            return run(args[1], socket, watch);
        }
    }
    if (args.size() == 2 && args[0] == "--check") {
        return check(args[1]);
    }
    if (args.size() == 1 && args[0] == "--version") {
        fmt::print("twilld {} (DPDK {})\n", TWILL_VERSION, rte_version());
        return 0;
    }
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        fmt::print("{}", usage);
        return 0;
    }
    fmt::print(stderr, "{}", usage);
    return 2;
}
