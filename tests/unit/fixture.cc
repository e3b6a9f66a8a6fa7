#include "tests/unit/fixture.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <stdexcept>

#include "dataplane/net/checksum.h"
#include "dataplane/net/headers.h"

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

void test_node::offload_checksums() {
    layout_ = std::make_unique<port_layout>();
    layout_->ports[underlay_port].tx_cksum = true;
    ctx_.layout = layout_.get();
}

namespace {

// A NIC's IPv4 and UDP checksum offload: the IPv4 checksum over the header, the UDP one
// over the datagram starting from the sum the sender left in its checksum field.
void nic_checksums(rte_mbuf* m) {
    auto* p = rte_pktmbuf_mtod(m, uint8_t*);
    auto* ip = reinterpret_cast<net::ipv4_hdr*>(p + m->l2_len);
    if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) {
        ip->checksum = 0;
        ip->checksum = uint16_t(~net::raw_checksum(ip, m->l3_len));
    }
    if ((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM) {
        auto* udp = reinterpret_cast<net::udp_hdr*>(p + m->l2_len + m->l3_len);
        const uint16_t c = uint16_t(~net::raw_checksum(udp, udp->length.get()));
        udp->checksum = c == 0 ? 0xffff : c;
    }
}

}  // namespace

std::vector<out_frame> test_node::pod_with_hash(uint16_t port, const std::vector<uint8_t>& frame,
                                                uint32_t hash) {
    rte_mbuf* m = make(frame);
    m->hash.rss = hash;
    m->ol_flags |= RTE_MBUF_F_RX_RSS_HASH;
    pod_input(ctx_, port, &m, 1);
    return collect();
}

std::vector<out_frame> test_node::collect() {
    std::vector<out_frame> out;
    for (uint16_t port = 0; port < RTE_MAX_ETHPORTS; ++port) {
        tx_queue& q = ctx_.tx[port];
        for (uint16_t i = 0; i < q.n; ++i) {
            if (q.pkts[i]->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK)) {
                if (layout_ == nullptr) {  // asked of a port that does not offer it
                    throw std::logic_error("checksum offload requested without the port's offer");
                }
                nic_checksums(q.pkts[i]);
                ++offloaded_;
            }
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
        pkts.push_back(make(f));
    }
    underlay_input(ctx_, pkts.data(), uint16_t(pkts.size()));
    return collect();
}

std::vector<out_frame> test_node::pod(uint16_t port, const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<rte_mbuf*> pkts;
    for (const auto& f : frames) {
        pkts.push_back(make(f));
    }
    pod_input(ctx_, port, pkts.data(), uint16_t(pkts.size()));
    return collect();
}

std::vector<out_frame> test_node::host(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = make(frame);
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
