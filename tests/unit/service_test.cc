// Services: crafted packets through the whole pipeline of a node whose services come
// from YAML, checked field by field in both directions.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>

#include "dataplane/net/crc32c.h"

#include "control/api_services.h"
#include "control/schedule.h"
#include "dataplane/net/checksum.h"
#include "dataplane/service/service.h"
#include "tests/unit/fixture.h"
#include "tests/unit/frames.h"
#include "tests/unit/tcp_node.h"

using namespace twill;
using namespace twill::test;

namespace {

const mac_addr gw = default_gateway_mac;
const mac_addr client_mac = mac("02:00:00:00:09:09");  // a client on the underlay
constexpr uint8_t syn = 0x02, ack = 0x10, fin = 0x01, rst = 0x04;

std::string node_with(const std::string& services, const std::string& extra = "") {
    return std::string(default_node_yaml) + extra + "services:\n" + services;
}

using svc_node = tcp_node;

// ipvsadm's ActiveConn and InActConn of the first service's first backend, as
// `twillctl get services` shows them.
std::pair<int, int> first_backend_counts(test_node& node) {
    nlohmann::json s = get_services(node.state());
    const nlohmann::json& b = s[0]["frontends"][0]["backends"][0];
    return {b["activeConn"].get<int>(), b["inActConn"].get<int>()};
}

uint16_t port_at(const std::vector<uint8_t>& f, size_t off) { return uint16_t(f[off] << 8 | f[off + 1]); }

// The IPv4 header and TCP/UDP checksums of the packet at `ip_off` are right.
void check_checksums(const std::vector<uint8_t>& f, size_t ip_off) {
    const auto& ip = at<net::ipv4_hdr>(f, ip_off);
    CHECK(net::raw_checksum(&ip, ip.header_length()) == 0xffff);
    const size_t l4 = ip_off + ip.header_length();
    const uint16_t l4_len = uint16_t(ip.total_length.get() - ip.header_length());
    REQUIRE(f.size() >= l4 + l4_len);
    uint64_t sum = net::pseudo_header_sum(ip.src.raw, ip.dst.raw, ip.proto, l4_len);
    sum = net::checksum_add(sum, f.data() + l4, l4_len);
    INFO("L4 checksum of protocol " << int(ip.proto));
    CHECK(net::checksum_fold(sum) == 0xffff);
}

struct tuple {
    ip4_addr src, dst;
    uint16_t sport, dport;
};
tuple tuple_at(const std::vector<uint8_t>& f, size_t ip_off) {
    const auto& ip = at<net::ipv4_hdr>(f, ip_off);
    const size_t l4 = ip_off + ip.header_length();
    return {ip.src_addr(), ip.dst_addr(), port_at(f, l4), port_at(f, l4 + 2)};
}

const std::string two_local = R"(
  - name: web
    type: ClusterIP
    clusterIP: 10.96.0.10
    ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
    scheduler: rr
    endpoints:
      - {ip: 172.25.2.3}
      - {ip: 172.25.1.2}
)";

}  // namespace

TEST_CASE("service: a SYN to a cluster IP goes to a backend, its reply comes back from the VIP",
          "[service]") {
    svc_node node(node_with(two_local));
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);
    // rr: the first backend listed, a local pod.
    auto out = node.from_b1("10.96.0.10", 33000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    tuple t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("172.25.2.2"));
    CHECK(t.sport == 33000);
    CHECK(t.dst == ip4("172.25.2.3"));
    CHECK(t.dport == 8080);
    check_checksums(out[0].bytes, 14);
    CHECK(node.counters().ct_created.get() == 1);

    out = node.from_b2("172.25.2.2", 8080, 33000, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("10.96.0.10"));
    CHECK(t.sport == 80);
    CHECK(t.dst == ip4("172.25.2.2"));
    CHECK(t.dport == 33000);
    check_checksums(out[0].bytes, 14);

    // The next connection goes to the remote backend, through VXLAN to kernel-a.
    out = node.from_b1("10.96.0.10", 33001, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    t = tuple_at(out[0].bytes, 64);
    CHECK(t.dst == ip4("172.25.1.2"));
    CHECK(t.dport == 8080);
    check_checksums(out[0].bytes, 64);
    // Its reply comes back through VXLAN and is un-NATed to the client.
    out = node.from_kernel_a("172.25.1.2", 8080, "172.25.2.2", 33001, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("10.96.0.10"));
    CHECK(t.sport == 80);
    check_checksums(out[0].bytes, 14);
    // Later packets of the first connection keep their backend.
    for (int i = 0; i < 3; ++i) {
        out = node.from_b1("10.96.0.10", 33000, 80, ack);
        REQUIRE(out.size() == 1);
        CHECK(out[0].port == pod_b2_port);
    }
    CHECK(node.counters().ct_created.get() == 2);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: TCP states, counts as ipvsadm shows them, timeouts", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: 172.25.2.3}]
)"));
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);
    auto counts = [&] { return first_backend_counts(node); };
    node.from_b1("10.96.0.10", 40000, 80);
    CHECK(counts() == std::pair(0, 1));  // SYN_RECV: inactive
    node.from_b2("172.25.2.2", 8080, 40000, syn | ack);
    CHECK(counts() == std::pair(1, 0));  // established: active
    node.from_b1("10.96.0.10", 40000, 80, fin | ack);
    CHECK(counts() == std::pair(0, 1));
    node.from_b2("172.25.2.2", 8080, 40000, rst);
    CHECK(counts() == std::pair(0, 1));

    std::string error;
    nlohmann::json ct = get_conntrack(node.state(), {{"service", "10.96.0.10:80"}}, error);
    REQUIRE(error.empty());
    REQUIRE(ct["total"] == 1);
    CHECK(ct["items"][0]["state"] == "CLOSE");
    CHECK(ct["items"][0]["backend"] == "172.25.2.3:8080");
    CHECK(ct["items"][0]["client"] == "172.25.2.2:40000");

    // A segment other than SYN without a connection is not scheduled.
    auto out = node.from_b1("10.96.0.10", 40001, 80, ack);
    CHECK(out.empty());
    CHECK(node.drops(drop::service_no_connection) == 1);

    // A closed connection times out after 10 s; the sweep frees it and the counts.
    node.ctx().now_s += 11;
    conntrack_sweep(node.ctx(), 1u << 20);
    CHECK(node.state().connections().size() == 0);
    CHECK(counts() == std::pair(0, 0));
    CHECK(node.counters().ct_expired.get() == 1);

    // An established connection lives for the TCP timeout (900 s), refreshed by traffic.
    node.from_b1("10.96.0.10", 40002, 80);
    node.from_b2("172.25.2.2", 8080, 40002, syn | ack);
    node.ctx().now_s += 899;
    conntrack_sweep(node.ctx(), 1u << 20);
    CHECK(node.state().connections().size() == 1);
    out = node.from_b1("10.96.0.10", 40002, 80, ack);
    CHECK(out.size() == 1);
    node.ctx().now_s += 899;
    conntrack_sweep(node.ctx(), 1u << 20);
    CHECK(node.state().connections().size() == 1);
    node.ctx().now_s += 2;
    conntrack_sweep(node.ctx(), 1u << 20);
    CHECK(node.state().connections().size() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

// With two workers a connection's directions may come in on different ones: each counts
// in its own set, and the sums read as with one worker.
TEST_CASE("service: counts and states with the directions on two workers", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: 172.25.2.3}]
)",
                            "dpdk: {workers: 2}\n"));
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);
    auto counts = [&] { return first_backend_counts(node); };
    node.ctx().worker = 0;
    CHECK(node.from_b1("10.96.0.10", 40000, 80).size() == 1);
    CHECK(counts() == std::pair(0, 1));
    node.ctx().worker = 1;  // the reply on the other worker
    CHECK(node.from_b2("172.25.2.2", 8080, 40000, syn | ack).size() == 1);
    CHECK(counts() == std::pair(1, 0));
    CHECK(node.counters().ct_other_worker.get() == 1);
    node.ctx().worker = 0;
    CHECK(node.from_b1("10.96.0.10", 40000, 80, fin | ack).size() == 1);
    CHECK(counts() == std::pair(0, 1));
    node.ctx().worker = 1;
    CHECK(node.from_b2("172.25.2.2", 8080, 40000, rst).size() == 1);
    CHECK(counts() == std::pair(0, 1));
    CHECK(node.counters().ct_other_worker.get() == 2);
    // Worker 1's sweep does not free worker 0's connection; worker 0's does, and the
    // counts go back to zero.
    node.ctx().now_s += 11;
    conntrack_sweep(node.ctx(), 1u << 20);
    CHECK(node.state().connections().size() == 1);
    node.ctx().worker = 0;
    conntrack_sweep(node.ctx(), 1u << 20);
    CHECK(node.state().connections().size() == 0);
    CHECK(counts() == std::pair(0, 0));
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: no endpoint: TCP reset, UDP port unreachable, from the VIP", "[service]") {
    svc_node node(node_with(R"(
  - name: empty
    clusterIP: 10.96.0.11
    ports: [{name: a, protocol: TCP, port: 80}, {name: b, protocol: UDP, port: 53}]
)"));
    auto out = node.from_b1("10.96.0.11", 41000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    const std::vector<uint8_t>& f = out[0].bytes;
    tuple t = tuple_at(f, 14);
    CHECK(t.src == ip4("10.96.0.11"));
    CHECK(t.sport == 80);
    CHECK(t.dst == ip4("172.25.2.2"));
    CHECK(t.dport == 41000);
    REQUIRE(f.size() >= 14 + 40);
    CHECK(f[14 + 20 + 13] == (rst | ack));
    CHECK(uint32_t(f[42] << 24 | f[43] << 16 | f[44] << 8 | f[45]) == 1001);  // ack = SYN's seq + 1
    check_checksums(f, 14);
    CHECK(node.counters().service_resets.get() == 1);

    out = node.pod(pod_b1_port, pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("10.96.0.11"))
                                    .udp(5353, 53).payload(20).bytes());
    REQUIRE(out.size() == 1);
    const auto& icmp = at<net::icmp_hdr>(out[0].bytes, 34);
    CHECK(icmp.type == 3);
    CHECK(icmp.code == 3);
    CHECK(at<net::ipv4_hdr>(out[0].bytes, 42).dst_addr() == ip4("10.96.0.11"));  // the quote
    CHECK(node.drops(drop::service_no_endpoint) == 2);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: schedulers spread new connections as their tables say", "[service]") {
    auto spread = [](const std::string& sched, const std::string& weights, int conns,
                     bool same_port = false) {
        svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    scheduler: )" + sched + R"(
    endpoints:
      - {ip: 172.25.1.2, weight: )" + weights.substr(0, 1) + R"(}
      - {ip: 172.25.1.3, weight: )" + weights.substr(2, 1) + R"(}
)"));
        std::map<std::string, int> count;
        for (int i = 0; i < conns; ++i) {
            auto out = node.from_b1("10.96.0.10", uint16_t(same_port ? 50000 : 50000 + i), 80);
            REQUIRE(out.size() == 1);
            count[config::format_ip4(tuple_at(out[0].bytes, 64).dst)]++;
            if (same_port) {  // the same tuple again: close it so that it is scheduled anew
                node.from_b1("10.96.0.10", 50000, 80, rst);
                node.ctx().now_s += 11;
                conntrack_sweep(node.ctx(), 1u << 20);
            }
        }
        REQUIRE_NO_LEAKED_MBUFS();
        return std::pair(count["172.25.1.2"], count["172.25.1.3"]);
    };
    CHECK(spread("rr", "1,1", 10) == std::pair(5, 5));
    CHECK(spread("rr", "5,1", 10) == std::pair(5, 5));  // rr ignores weights but 0
    CHECK(spread("wrr", "3,1", 12) == std::pair(9, 3));
    CHECK(spread("rr", "1,0", 6) == std::pair(6, 0));
    // sh: one client is one bucket: every connection to one backend.
    auto sh = spread("sh", "1,1", 10);
    CHECK((sh == std::pair(10, 0) || sh == std::pair(0, 10)));
    // mh hashes address and port: many ports spread, in proportion to weight.
    auto mh = spread("mh", "1,1", 400);
    CHECK(mh.first > 140);
    CHECK(mh.second > 140);
    auto mh3 = spread("mh", "3,1", 400);
    CHECK(mh3.first > 2 * mh3.second);
    // lc: a connection still open keeps its backend busy.
    svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    scheduler: lc
    endpoints: [{ip: 172.25.1.2}, {ip: 172.25.1.3}]
)"));
    auto dst_of = [&](uint16_t sport) {
        auto out = node.from_b1("10.96.0.10", sport, 80);
        REQUIRE(out.size() == 1);
        return tuple_at(out[0].bytes, 64).dst;
    };
    const ip4_addr first = dst_of(1000);
    node.from_kernel_a(config::format_ip4(first).c_str(), 8080, "172.25.2.2", 1000, syn | ack);  // established
    const ip4_addr second = dst_of(1001);
    CHECK(second != first);
    CHECK(dst_of(1002) == second);  // one inactive weighs less than one active
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: sessionAffinity ClientIP keeps a client on one backend", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    sessionAffinity: ClientIP
    sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
    endpoints: [{ip: 172.25.1.2}, {ip: 172.25.1.3}, {ip: 172.25.1.4}]
)"));
    std::set<uint32_t> backends;
    for (uint16_t i = 0; i < 9; ++i) {
        auto out = node.from_b1("10.96.0.10", uint16_t(2000 + i), 80);
        REQUIRE(out.size() == 1);
        backends.insert(tuple_at(out[0].bytes, 64).dst.value);
    }
    CHECK(backends.size() == 1);
    // Past the timeout the client is scheduled afresh (rr moves on).
    node.ctx().now_s += 61;
    auto out = node.from_b1("10.96.0.10", 3000, 80);
    REQUIRE(out.size() == 1);
    CHECK(!backends.contains(tuple_at(out[0].bytes, 64).dst.value));
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: graceful termination and removal of an endpoint", "[service]") {
    auto yaml = [](const std::string& second) {
        return node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints:
      - {ip: 172.25.1.2}
)" + second);
    };
    svc_node node(yaml("      - {ip: 172.25.1.3}\n"));
    auto dst_of = [&](uint16_t sport, uint8_t flags = syn) {
        auto out = node.from_b1("10.96.0.10", sport, 80, flags);
        return out.size() == 1 ? tuple_at(out[0].bytes, 64).dst : ip4_addr{};
    };
    CHECK(dst_of(1000) == ip4("172.25.1.2"));
    CHECK(dst_of(1001) == ip4("172.25.1.3"));

    // .3 terminating: its connection goes on, new ones avoid it.
    auto apply = [&](const std::string& text) {
        config::parse_result r = config::parse_yaml(text, "t.yaml");
        REQUIRE(r.ok());
        REQUIRE(node.state().apply(r.cfg).empty());
        node.snapshot();
    };
    apply(yaml("      - {ip: 172.25.1.3, terminating: true}\n"));
    CHECK(dst_of(1001, ack) == ip4("172.25.1.3"));
    for (uint16_t p = 1002; p < 1006; ++p) {
        CHECK(dst_of(p) == ip4("172.25.1.2"));
    }
    // Removed: its connection ends; the same tuple's next SYN goes elsewhere.
    apply(yaml(""));
    CHECK(dst_of(1001, ack) == ip4_addr{});
    CHECK(node.drops(drop::service_backend_gone) == 1);
    CHECK(dst_of(1001) == ip4("172.25.1.2"));
    CHECK(dst_of(1000, ack) == ip4("172.25.1.2"));  // the other connection never noticed
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: NodePort from the underlay, masqueraded (Cluster) or not (Local)", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    type: NodePort
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
    endpoints: [{ip: 172.25.2.3}]
  - name: local
    type: NodePort
    clusterIP: 10.96.0.12
    externalTrafficPolicy: Local
    ports: [{port: 80, targetPort: 8080, nodePort: 30082}]
    endpoints: [{ip: 172.25.2.3}]
  - name: elsewhere
    type: NodePort
    clusterIP: 10.96.0.13
    externalTrafficPolicy: Local
    ports: [{port: 80, targetPort: 8080, nodePort: 30083}]
    endpoints: [{ip: 172.25.1.2}]
)"));
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);
    auto from_client = [&](uint16_t dport, uint8_t flags = syn) {
        return node.underlay(pkt().eth(underlay_mac, client_mac).ipv4(ip4("198.18.0.9"), ip4("198.18.0.2"))
                                 .tcp(45000, dport, flags).bytes());
    };
    auto out = from_client(30080);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    tuple t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("172.25.2.0"));  // masqueraded to the node's overlay address
    CHECK(t.dst == ip4("172.25.2.3"));
    CHECK(t.dport == 8080);
    check_checksums(out[0].bytes, 14);
    const uint16_t snat_port = t.sport;
    // The reply goes straight back out to the client's MAC, from node IP:nodePort.
    out = node.from_b2("172.25.2.0", 8080, snat_port, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).dst == client_mac);
    CHECK(at<net::eth_hdr>(out[0].bytes, 0).src == underlay_mac);
    t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("198.18.0.2"));
    CHECK(t.sport == 30080);
    CHECK(t.dst == ip4("198.18.0.9"));
    CHECK(t.dport == 45000);
    check_checksums(out[0].bytes, 14);

    // Local: the client's address is kept.
    out = from_client(30082);
    REQUIRE(out.size() == 1);
    CHECK(tuple_at(out[0].bytes, 14).src == ip4("198.18.0.9"));
    out = node.from_b2("198.18.0.9", 8080, 45000, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    CHECK(tuple_at(out[0].bytes, 14).sport == 30082);
    // Local with endpoints on other nodes only: dropped, as kube-proxy does.
    CHECK(from_client(30083).empty());
    CHECK(node.drops(drop::service_no_local_endpoint) == 1);
    // Not a node port: to the kernel as before (no host port here: dropped).
    CHECK(from_client(30099).empty());
    CHECK(node.drops(drop::underlay_not_for_dataplane) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: hairpin, a pod reaching itself through its service", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: 172.25.2.3}]
)"));
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);
    auto out = node.from_b2("10.96.0.10", 46000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    tuple t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("172.25.2.0"));  // else the pod would answer itself directly
    CHECK(t.dst == ip4("172.25.2.3"));
    out = node.from_b2("172.25.2.0", 8080, t.sport, syn | ack);
    REQUIRE(out.size() == 1);
    t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("10.96.0.10"));
    CHECK(t.sport == 80);
    CHECK(t.dst == ip4("172.25.2.3"));
    CHECK(t.dport == 46000);
    check_checksums(out[0].bytes, 14);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: UDP without a checksum keeps none", "[service]") {
    svc_node node(node_with(R"(
  - name: dns
    clusterIP: 10.96.0.10
    ports: [{protocol: UDP, port: 53}]
    endpoints: [{ip: 172.25.1.2}]
)"));
    std::vector<uint8_t> f = pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("10.96.0.10"))
                                 .udp(5353, 53).payload(12).bytes();
    f[14 + 20 + 6] = f[14 + 20 + 7] = 0;
    auto out = node.pod(pod_b1_port, f);
    REQUIRE(out.size() == 1);
    CHECK(tuple_at(out[0].bytes, 64).dst == ip4("172.25.1.2"));
    CHECK(at<net::udp_hdr>(out[0].bytes, 84).checksum == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: fragments follow their first fragment; an overlapping first fragment is refused",
          "[service]") {
    svc_node node(node_with(R"(
  - name: dns
    clusterIP: 10.96.0.10
    ports: [{protocol: UDP, port: 53}]
    endpoints: [{ip: 172.25.1.2}]
)"));
    auto frag = [&](uint16_t id, uint16_t frag_field, std::vector<uint8_t> l4) {
        return pkt().eth(gw, pod_b1_mac)
            .ipv4(ip4("172.25.2.2"), ip4("10.96.0.10"), {.id = id, .frag = frag_field})
            .raw(l4).bytes();
    };
    auto udp_proto = [](std::vector<uint8_t> f) {
        f[14 + 9] = 17;
        f[14 + 10] = f[14 + 11] = 0;
        const uint16_t c = uint16_t(~net::raw_checksum(&f[14], 20));
        std::memcpy(&f[14 + 10], &c, 2);
        return f;
    };
    // First fragment: UDP header (5353 -> 53, checksum 0) and 16 bytes; MF set.
    std::vector<uint8_t> first = {0x14, 0xe9, 0x00, 0x35, 0x00, 0x30, 0x00, 0x00};
    first.resize(24, 0xab);
    auto out = node.pod(pod_b1_port, udp_proto(frag(7, 0x2000, first)));
    REQUIRE(out.size() == 1);
    CHECK(tuple_at(out[0].bytes, 64).dst == ip4("172.25.1.2"));
    // The later fragment (offset 24 bytes) carries no ports, and follows it.
    out = node.pod(pod_b1_port, udp_proto(frag(7, 3, std::vector<uint8_t>(24, 0xcd))));
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    const auto& inner = at<net::ipv4_hdr>(out[0].bytes, 64);
    CHECK(inner.dst_addr() == ip4("172.25.1.2"));
    CHECK(net::raw_checksum(&inner, 20) == 0xffff);
    // Another first fragment of the same datagram with other ports: refused.
    std::vector<uint8_t> rewrite = first;
    rewrite[3] = 0x36;
    CHECK(node.pod(pod_b1_port, udp_proto(frag(7, 0x2000, rewrite))).empty());
    CHECK(node.drops(drop::fragment_attack) == 1);
    // A later fragment whose first was never seen is not translated: it goes where its
    // own header says (the VIP, which is routed nowhere here).
    CHECK(node.pod(pod_b1_port, udp_proto(frag(8, 3, std::vector<uint8_t>(24, 0xcd)))).empty());
    CHECK(node.drops(drop::no_route) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: a full connection table still gives new flows a backend", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    scheduler: mh
    endpoints: [{ip: 172.25.1.2}, {ip: 172.25.1.3}]
)", "conntrack: {capacity: 1024}\n"));
    for (uint16_t i = 0; i < 1024; ++i) {
        REQUIRE(node.from_b1("10.96.0.10", uint16_t(10000 + i), 80).size() == 1);
    }
    CHECK(node.state().connections().size() == 1024);
    // Beyond: each flow still lands on a backend, the same one for every packet.
    for (uint16_t i = 0; i < 20; ++i) {
        auto a = node.from_b1("10.96.0.10", uint16_t(20000 + i), 80);
        auto b = node.from_b1("10.96.0.10", uint16_t(20000 + i), 80, ack);
        REQUIRE(a.size() == 1);
        REQUIRE(b.size() == 1);
        CHECK(tuple_at(a[0].bytes, 64).dst == tuple_at(b[0].bytes, 64).dst);
    }
    CHECK(node.counters().ct_full.get() == 40);
    // Their replies are un-NATed by the backend's service, without a record.
    auto out = node.from_kernel_a("172.25.1.2", 8080, "172.25.2.2", 20000, ack);
    REQUIRE(out.size() == 1);
    tuple t = tuple_at(out[0].bytes, 14);
    CHECK(t.src == ip4("10.96.0.10"));
    CHECK(t.sport == 80);
    check_checksums(out[0].bytes, 14);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service: SCTP ports are translated and the CRC32c redone", "[service]") {
    // RFC 3720 B.4's check value: CRC32c("123456789") = 0xe3069283.
    const char* digits = "123456789";
    CHECK(~net::crc32c(digits, 9, 0xffffffff) == 0xe3069283u);
    svc_node node(node_with(R"(
  - name: sig
    clusterIP: 10.96.0.10
    ports: [{protocol: SCTP, port: 3868, targetPort: 3869}]
    endpoints: [{ip: 172.25.1.2}]
)"));
    // SCTP common header (ports, verification tag, checksum) and an INIT chunk.
    std::vector<uint8_t> sctp = {0x9c, 0x40, 0x0f, 0x1c, 0, 0, 0, 0, 0, 0, 0, 0,
                                 1, 0, 0, 20, 0x11, 0x22, 0x33, 0x44, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1};
    const uint32_t crc = ~net::crc32c(sctp.data(), sctp.size(), 0xffffffff);
    std::memcpy(&sctp[8], &crc, 4);
    std::vector<uint8_t> f = pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("10.96.0.10")).raw(sctp).bytes();
    f[14 + 9] = 132;
    f[14 + 10] = f[14 + 11] = 0;
    const uint16_t ipsum = uint16_t(~net::raw_checksum(&f[14], 20));
    std::memcpy(&f[14 + 10], &ipsum, 2);
    auto out = node.pod(pod_b1_port, f);
    REQUIRE(out.size() == 1);
    std::vector<uint8_t> got(out[0].bytes.begin() + 84, out[0].bytes.end());
    REQUIRE(got.size() == sctp.size());
    CHECK(port_at(got, 2) == 3869);
    uint32_t stored;
    std::memcpy(&stored, &got[8], 4);
    std::memset(&got[8], 0, 4);
    CHECK(stored == ~net::crc32c(got.data(), got.size(), 0xffffffff));
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("schedule tables: rr, wrr, sh", "[service]") {
    std::vector<schedule_backend> b = {{"a", 5}, {"b", 1}, {"c", 1}};
    CHECK(build_schedule(sched_kind::rr, b) == std::vector<uint16_t>{0, 1, 2});
    // Smooth: the heavy backend's turns are spread, not bunched.
    CHECK(build_schedule(sched_kind::wrr, b) == std::vector<uint16_t>{0, 0, 1, 0, 2, 0, 0});
    std::vector<uint16_t> sh = build_schedule(sched_kind::sh, b);
    REQUIRE(sh.size() == sh_buckets);
    std::map<uint16_t, int> n;
    for (uint16_t x : sh) {
        n[x]++;
    }
    CHECK(n[0] > 4 * n[1]);
    CHECK(build_schedule(sched_kind::rr, {{"a", 0}}).empty());
    CHECK(build_schedule(sched_kind::mh, {{"a", 0}}).empty());
}

TEST_CASE("service: two services trading a cluster IP in one change keep it reachable", "[service]") {
    auto yaml = [](const char* name, const char* backend) {
        return node_with(std::string(R"(
  - name: )") + name + R"(
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: )" + backend + R"(}]
)");
    };
    // "a" sorts before "z": published first, then "z" withdrawn; and the other way round.
    for (auto [from, to] : {std::pair("zold", "anew"), std::pair("aold", "znew")}) {
        INFO(from << " -> " << to);
        svc_node node(yaml(from, "172.25.1.2"));
        config::parse_result r = config::parse_yaml(yaml(to, "172.25.1.3"), "t.yaml");
        REQUIRE(r.ok());
        REQUIRE(node.state().apply(r.cfg).empty());
        node.snapshot();
        auto out = node.from_b1("10.96.0.10", 1234, 80);
        REQUIRE(out.size() == 1);
        CHECK(tuple_at(out[0].bytes, 64).dst == ip4("172.25.1.3"));
        REQUIRE_NO_LEAKED_MBUFS();
    }
}

TEST_CASE("service: a cluster address on the plain underlay is not a client", "[service]") {
    svc_node node(node_with(R"(
  - name: web
    type: NodePort
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
    endpoints: [{ip: 172.25.2.3}]
)"));
    auto out = node.underlay(pkt().eth(underlay_mac, client_mac).ipv4(ip4("172.25.1.2"), ip4("198.18.0.2"))
                                 .tcp(45000, 30080).bytes());
    CHECK(out.empty());
    CHECK(node.drops(drop::underlay_cluster_source) == 1);
    CHECK(node.counters().ct_created.get() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("service table: the filter holds every frontend and backend as it grows; ending a "
          "backend bumps the epoch", "[service]") {
    service_table t;
    const uint32_t start_bits = t.filter_bits();
    constexpr uint32_t n = 20000;
    std::vector<retired_ptr> retired;
    for (uint32_t s = 0; s < n; ++s) {
        auto e = std::make_unique<service_entry>();
        e->vip = net::bswap(ip4("10.96.0.0").value + s);
        e->port = net::bswap(uint16_t(80));
        e->proto = 6;
        for (uint32_t j = 0; j < 10; ++j) {
            e->backends.push_back({net::bswap(ip4("172.25.1.0").value + j), net::bswap(uint16_t(8000 + s % 1000)), 1});
        }
        for (retired_ptr& r : t.set_entry(s, std::move(e))) {
            retired.push_back(std::move(r));
        }
    }
    CHECK(t.filter_bits() > start_bits);
    CHECK(t.filter_bits() >= 8 * n);
    uint32_t false_positives = 0;
    uint32_t to_backends = 0;
    for (uint32_t s = 0; s < n; ++s) {
        const uint32_t vip = net::bswap(ip4("10.96.0.0").value + s);
        const uint32_t client = net::bswap(ip4("172.25.2.2").value);
        REQUIRE(t.may_match(client, vip, 6, net::bswap(uint16_t(40000)), net::bswap(uint16_t(80))));
        REQUIRE(t.may_match(net::bswap(ip4("172.25.1.3").value), client, 6,
                            net::bswap(uint16_t(8000 + s % 1000)), net::bswap(uint16_t(40000))));
        // Plain pod traffic: neither end a frontend or a backend.
        false_positives += t.may_match(net::bswap(ip4("172.25.3.0").value + s % 200), client, 17,
                                       net::bswap(uint16_t(20000 + s)), net::bswap(uint16_t(53)));
        // Pod to pod straight to a backend: its destination is no frontend, its source
        // no backend; a backend's key must not pass for a frontend's.
        to_backends += t.may_match(client, net::bswap(ip4("172.25.1.3").value), 6,
                                   net::bswap(uint16_t(40000)), net::bswap(uint16_t(8000 + s % 1000)));
    }
    INFO(false_positives << " of " << n << " plain tuples let through");
    CHECK(false_positives < n / 5);
    INFO(to_backends << " of " << n << " tuples to a backend let through");
    CHECK(to_backends < n / 5);
    const uint32_t epoch = t.epoch();
    const uint32_t gen = t.backend(7).gen.load();
    t.end_backend(7);
    CHECK(t.epoch() == epoch + 1);
    CHECK(t.backend(7).gen.load() == gen + 1);
    for (uint32_t s = 0; s < n; ++s) {
        for (retired_ptr& r : t.set_entry(s, nullptr)) {
            retired.push_back(std::move(r));
        }
    }
}

TEST_CASE("service: a client port reused towards another frontend while its first "
          "connection to the same backend closes",
          "[service]") {
    svc_node node(node_with(two_local + R"(
  - name: web2
    clusterIP: 10.96.0.11
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: 172.25.2.3}]
)"));
    node.learn_pod_mac(pod_b2_port, pod_b2_mac);
    REQUIRE(node.from_b1("10.96.0.10", 40000, 80).size() == 1);  // to b2:8080
    REQUIRE(node.from_b1("10.96.0.10", 40000, 80, ack | fin).size() == 1);
    // Same client port, another VIP, the same backend: the closing connection gives way.
    auto out = node.from_b1("10.96.0.11", 40000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    out = node.from_b2("172.25.2.2", 8080, 40000, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(tuple_at(out[0].bytes, 14).src == ip4("10.96.0.11"));
    // While a connection is open, its reply tuple stays its own.
    REQUIRE(node.from_b1("10.96.0.10", 40001, 80).size() == 1);  // rr: a1
    REQUIRE(node.from_b1("10.96.0.10", 40002, 80).size() == 1);  // b2:8080 from :40002
    CHECK(node.from_b1("10.96.0.11", 40002, 80).empty());
    CHECK(node.drops(drop::service_tuple_in_use) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}
