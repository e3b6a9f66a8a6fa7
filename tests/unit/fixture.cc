#include "tests/unit/fixture.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <stdexcept>

namespace twill::test {

const char* const default_node_yaml = R"(
node: {name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster:
  clusterCIDR: 172.25.0.0/16
  vxlan: {vni: 1, port: 8472, mtu: 1450}
ports: {underlay: "underlay"}
nodes:
  - {name: kernel-a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}
  - {name: kernel-c, ip: 198.18.0.3, podCIDR: 172.25.3.0/24, vtepMAC: "0e:00:00:00:03:00"}
pods:
  - {name: pod-b1, ip: 172.25.2.2, port: "pb1"}
  - {name: pod-b2, ip: 172.25.2.3, port: "pb2", mac: "0a:00:00:00:02:03"}
  - {name: pod-a1, ip: 172.25.1.2}
)";

void leave_main_cpu() {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (long c = cpus > 1 ? 1 : 0; c < cpus && c < CPU_SETSIZE; ++c) {
        CPU_SET(c, &set);
    }
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

test_node::test_node(const std::string& yaml, const mac_addr& port_mac) {
    config::parse_result r = config::parse_yaml(yaml, "test.yaml");
    if (!r.ok()) {
        std::string all;
        for (const auto& e : r.errors) {
            all += config::to_string(e) + "\n";
        }
        throw std::invalid_argument("test config invalid:\n" + all);
    }
    cfg_ = r.cfg;
    std::map<std::string, uint16_t> ports;
    uint16_t next = 1;
    for (const auto& p : cfg_.pods) {
        if (!p.port.empty()) {
            ports[p.port] = next++;
        }
    }
    params_ = make_params(cfg_, underlay_port, port_mac, 1'000'000);
    params_.park_unresolved = false;  // most tests count the first packet's drop; see parked()
    state_ = std::make_unique<node_state>(cfg_, params_, ports, nullptr);
    ctx_.params = &params_;
    ctx_.learned = &state_->learned();
    ctx_.counters = &counters_;
    ctx_.pool = test_pool();
    snapshot();
    ctx_.now_tsc = 10'000'000;
}

void test_node::snapshot() {
    ctx_.slices = state_->published().slices.load(std::memory_order_acquire);
    ctx_.pods = state_->published().pods.load(std::memory_order_acquire);
    ctx_.policy = state_->published().policy.load(std::memory_order_acquire);
    ctx_.services = state_->published().services;
    ctx_.ct = state_->published().ct;
}

std::vector<out_frame> test_node::collect() {
    std::vector<out_frame> out;
    for (uint16_t port = 0; port < RTE_MAX_ETHPORTS; ++port) {
        tx_queue& q = ctx_.tx[port];
        for (uint16_t i = 0; i < q.n; ++i) {
            out.push_back({port, from_mbuf(q.pkts[i])});
            rte_pktmbuf_free(q.pkts[i]);
        }
        q.n = 0;
    }
    ctx_.tx_dirty = 0;
    return out;
}

std::vector<out_frame> test_node::underlay(const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<rte_mbuf*> pkts;
    for (const auto& f : frames) {
        pkts.push_back(to_mbuf(f));
    }
    underlay_input(ctx_, pkts.data(), uint16_t(pkts.size()));
    return collect();
}

std::vector<out_frame> test_node::pod(uint16_t port, const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<rte_mbuf*> pkts;
    for (const auto& f : frames) {
        pkts.push_back(to_mbuf(f));
    }
    pod_input(ctx_, port, pkts.data(), uint16_t(pkts.size()));
    return collect();
}

std::vector<out_frame> test_node::host(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = to_mbuf(frame);
    host_input(ctx_, &m, 1);
    return collect();
}

std::vector<out_frame> test_node::parked() {
    retry_parked(ctx_);
    return collect();
}

std::vector<out_frame> test_node::maintenance() {
    neighbour_maintenance(ctx_);
    return collect();
}

void test_node::learn_neighbour(ip4_addr ip, const mac_addr& m) {
    const remote_node_entry* node = ctx_.slices->node_by_ip(ip);
    if (node == nullptr) {
        throw std::invalid_argument("not a node address");
    }
    state_->learned().neighbours[node->neighbour].mac.set(m);
}

void test_node::learn_pod_mac(uint16_t port, const mac_addr& m) {
    uint32_t pod = ctx_.pods->by_port(port);
    state_->learned().pod_macs[ctx_.pods->pod(pod).state].set(m);
}

uint64_t test_node::total_drops() const {
    uint64_t n = 0;
    for (const auto& c : counters_.drops) {
        n += c.get();
    }
    return n;
}

}  // namespace twill::test
