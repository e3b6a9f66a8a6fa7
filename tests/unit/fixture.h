// A twill node without ports: the tables built from YAML through the real config path,
// and the pipeline run on frames whose output is collected instead of transmitted.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <rte_mempool.h>

#include "control/build_tables.h"
#include "control/node_state.h"
#include "dataplane/pipeline.h"
#include "tests/unit/pkt_builder.h"

namespace twill::test {

rte_mempool* test_pool();

// No test may leave an mbuf behind.
#define REQUIRE_NO_LEAKED_MBUFS() REQUIRE(rte_mempool_in_use_count(::twill::test::test_pool()) == 0)

// The lab's twill node (config/lab-twill.yaml, less its EAL and ports) plus a second
// remote node. Underlay port 0; local pods on ports 1 (pod-b1) and 2 (pod-b2).
extern const char* const default_node_yaml;

inline constexpr uint16_t underlay_port = 0;
inline constexpr uint16_t pod_b1_port = 1;
inline constexpr uint16_t pod_b2_port = 2;
inline const mac_addr underlay_mac = {{0x02, 0x00, 0x00, 0x00, 0x02, 0x02}};
inline const mac_addr kernel_a_mac = {{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}};
inline const mac_addr kernel_a_vtep = {{0x0e, 0x00, 0x00, 0x00, 0x01, 0x00}};
inline const mac_addr twill_b_vtep = {{0x0e, 0x00, 0x00, 0x00, 0x02, 0x00}};
inline const mac_addr pod_b1_mac = {{0x0a, 0x00, 0x00, 0x00, 0x02, 0x02}};
inline const mac_addr pod_b2_mac = {{0x0a, 0x00, 0x00, 0x00, 0x02, 0x03}};

// The EAL pins the main thread (lcore 0) to CPU 0, and threads it starts inherit that; a
// test's worker thread calls this to run on the other CPUs, as a worker lcore would, so
// that a grace period does not wait for the scheduler to switch threads.
void leave_main_cpu();

struct out_frame {
    uint16_t port;
    std::vector<uint8_t> bytes;
};

class test_node {
public:
    explicit test_node(const std::string& yaml = default_node_yaml,
                       const mac_addr& port_mac = underlay_mac);

    std::vector<out_frame> underlay(const std::vector<std::vector<uint8_t>>& frames);
    std::vector<out_frame> underlay(const std::vector<uint8_t>& frame) { return underlay(std::vector<std::vector<uint8_t>>{frame}); }
    std::vector<out_frame> pod(uint16_t port, const std::vector<std::vector<uint8_t>>& frames);
    std::vector<out_frame> pod(uint16_t port, const std::vector<uint8_t>& frame) {
        return pod(port, std::vector<std::vector<uint8_t>>{frame});
    }
    std::vector<out_frame> maintenance();
    // The worker's retry of packets parked for a MAC (params().park_unresolved).
    std::vector<out_frame> parked();
    // A frame from the host port (params().host_port must be set).
    std::vector<out_frame> host(const std::vector<uint8_t>& frame);

    void learn_neighbour(ip4_addr ip, const mac_addr& m);
    void learn_pod_mac(uint16_t port, const mac_addr& m);
    uint64_t drops(drop reason) const { return counters_.drops[unsigned(reason)].get(); }
    uint64_t total_drops() const;
    const worker_counters& counters() const { return counters_; }
    node_params& params() { return params_; }
    pipeline_ctx& ctx() { return ctx_; }
    const config::node_file& cfg() const { return cfg_; }
    node_state& state() { return *state_; }
    // Takes a new snapshot of the published tables, as the worker does every loop.
    void snapshot();
    // The underlay port offloads the outer checksums (port_queues::tx_cksum); what the
    // pipeline hands it with checksum requests is finished here as a NIC would, from the
    // pseudo-header sum in the UDP checksum field, and counted.
    void offload_checksums();
    uint32_t offloaded() const { return offloaded_; }
    // Input frames from here on arrive in chains of mbufs whose first segments have these
    // sizes (as a port receiving with scatter would give them); empty: one mbuf each.
    void segments(std::vector<uint16_t> first) { segments_ = std::move(first); }
    // A frame from a pod port whose receive hash (RTE_MBUF_F_RX_RSS_HASH) is `hash`.
    std::vector<out_frame> pod_with_hash(uint16_t port, const std::vector<uint8_t>& frame,
                                         uint32_t hash);

private:
    std::vector<out_frame> collect();

    config::node_file cfg_;
    node_params params_;
    std::unique_ptr<node_state> state_;
    worker_counters counters_;
    pipeline_ctx ctx_;
    std::unique_ptr<port_layout> layout_;
    uint32_t offloaded_ = 0;
    std::vector<uint16_t> segments_;
    rte_mbuf* make(const std::vector<uint8_t>& frame) const {
        return segments_.empty() ? to_mbuf(frame) : to_mbuf_chain(frame, segments_);
    }
};

}  // namespace twill::test
