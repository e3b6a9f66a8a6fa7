// NetworkPolicy: crafted packets through the whole pipeline of a node whose namespaces,
// pods and policies come from YAML; verdicts, statefulness, services, tightening.
#include <catch2/catch.hpp>

#include <string>

#include "control/api_policies.h"
#include "tests/unit/fixture.h"
#include "tests/unit/frames.h"
#include "tests/unit/tcp_node.h"

using namespace twill;
using namespace twill::test;

namespace {

const mac_addr gw = default_gateway_mac;
constexpr uint8_t syn = 0x02, ack = 0x10;

// b1 (x, app=web), b2 (y, app=client) on this node; a1 (y, app=client) and a2 (x, app=other)
// on kernel-a.
const char* const policy_node = R"(
node: {name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster:
  clusterCIDR: 172.25.0.0/16
  serviceCIDR: 10.96.0.0/12
  vxlan: {vni: 1, port: 8472, mtu: 1450}
ports: {underlay: "underlay"}
nodes:
  - {name: kernel-a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}
namespaces:
  - {name: x, labels: {team: x}}
  - {name: y, labels: {team: y}}
pods:
  - name: pod-b1
    namespace: x
    ip: 172.25.2.2
    port: "pb1"
    labels: {app: web}
    containerPorts: [{name: http, containerPort: 8080}]
  - {name: pod-b2, namespace: y, ip: 172.25.2.3, port: "pb2", mac: "0a:00:00:00:02:03", labels: {app: client}}
  - {name: pod-a1, namespace: y, ip: 172.25.1.2, labels: {app: client}}
  - {name: pod-a2, namespace: x, ip: 172.25.1.3, labels: {app: other}}
)";

// web in x: ingress from app=client pods of namespaces labelled team=y, on its named port
// http only.
const char* const web_ingress = R"(
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web, namespace: x}
    spec:
      podSelector: {matchLabels: {app: web}}
      ingress:
        - from:
            - namespaceSelector: {matchLabels: {team: y}}
              podSelector: {matchLabels: {app: client}}
          ports: [{port: http}]
)";

// web's ClusterIP, its endpoint b1.
const char* const web_service = R"(
services:
  - name: web
    namespace: x
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 8080}]
    endpoints: [{ip: 172.25.2.2}]
)";

struct policy_node_t : tcp_node {
    explicit policy_node_t(const std::string& extra) : tcp_node(std::string(policy_node) + extra) {
        learn_pod_mac(pod_b2_port, pod_b2_mac);
    }
    std::vector<out_frame> udp_from_b2(const char* dst, uint16_t sport, uint16_t dport) {
        return pod(pod_b2_port,
                   pkt().eth(gw, pod_b2_mac).ipv4(ip4("172.25.2.3"), ip4(dst)).udp(sport, dport).bytes());
    }
    void apply_yaml(const std::string& extra) {
        config::parse_result r = config::parse_yaml(std::string(policy_node) + extra, "t.yaml");
        INFO((r.errors.empty() ? std::string() : config::to_string(r.errors[0])));
        REQUIRE(r.ok());
        REQUIRE(state().apply(r.cfg).empty());
        snapshot();
    }
};

}  // namespace

TEST_CASE("policy: without policies everything passes and nothing is tracked", "[policy]") {
    policy_node_t node("");
    CHECK(node.from_b1("172.25.1.2", 1000, 80).size() == 1);
    CHECK(node.from_kernel_a("172.25.1.3", 1000, "172.25.2.2", 8080).size() == 1);
    CHECK(node.counters().policy_tracked.get() == 0);
    CHECK(node.total_drops() == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: ingress by namespace AND pod selector on a named port; replies of the "
          "isolated pod's own connections pass",
          "[policy]") {
    policy_node_t node(web_ingress);
    // a1 (y, client) -> b1:8080 (http): allowed; b1's answer goes back.
    auto out = node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    out = node.from_b1("172.25.1.2", 8080, 40000, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    // Another port of b1: denied.
    CHECK(node.from_kernel_a("172.25.1.2", 40001, "172.25.2.2", 8081).empty());
    CHECK(node.drops(drop::policy_denied) == 1);
    // a2 (x, other): denied; b2 (y, client, local): allowed.
    CHECK(node.from_kernel_a("172.25.1.3", 40002, "172.25.2.2", 8080).empty());
    CHECK(node.drops(drop::policy_denied) == 2);
    out = node.from_b2("172.25.2.2", 40003, 8080);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    // b1 is not isolated for egress: it reaches a2, and a2's reply comes back in because
    // the connection was tracked (b1 is isolated for ingress), as were the two above.
    out = node.from_b1("172.25.1.3", 50000, 9000);
    REQUIRE(out.size() == 1);
    CHECK(node.counters().policy_tracked.get() == 3);
    out = node.from_kernel_a("172.25.1.3", 9000, "172.25.2.2", 50000, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    // An unsolicited packet from a2 with those ports the other way round is a new flow.
    CHECK(node.from_kernel_a("172.25.1.3", 9001, "172.25.2.2", 50000, syn).empty());
    // b2 is not isolated at all: its traffic to anyone passes.
    CHECK(node.from_b2("172.25.1.3", 1234, 80).size() == 1);

    const nlohmann::json p = get_policies(node.state());
    REQUIRE(p["items"].size() == 1);
    CHECK(p["items"][0]["selects"].size() == 1);
    CHECK(p["items"][0]["deniedAtSelectedPods"] == 3);
    CHECK(p["items"][0]["ingress"][0]["allowed"] == 2);
    CHECK(node.drops(drop::policy_denied) == 3);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: egress with ipBlock except, deny-all, UDP and port ranges", "[policy]") {
    policy_node_t node(R"(
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: b2-out, namespace: y}
    spec:
      podSelector: {matchLabels: {app: client}}
      policyTypes: [Egress]
      egress:
        - to: [{ipBlock: {cidr: 172.25.1.0/24, except: [172.25.1.2/32]}}]
          ports: [{protocol: UDP, port: 5000, endPort: 5010}]
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny-all, namespace: x}
    spec:
      podSelector: {}
      policyTypes: [Ingress, Egress]
)");
    CHECK(node.udp_from_b2("172.25.1.3", 1000, 5005).size() == 1);
    CHECK(node.udp_from_b2("172.25.1.3", 1000, 5011).empty());
    CHECK(node.udp_from_b2("172.25.1.2", 1000, 5005).empty());  // the except
    CHECK(node.from_b2("172.25.1.3", 1000, 5005).empty());      // TCP: not in the rule
    // b1 (x) is isolated both ways with no rule: nothing in or out, but itself and its node.
    CHECK(node.from_b1("172.25.1.3", 1000, 80).empty());
    CHECK(node.from_kernel_a("172.25.1.3", 1000, "172.25.2.2", 80).empty());
    CHECK(node.drops(drop::policy_denied) == 5);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: a tightened policy cuts the connections it no longer allows; a loosened "
          "one lets new ones in",
          "[policy]") {
    policy_node_t node(web_ingress);
    REQUIRE(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080).size() == 1);
    REQUIRE(node.from_b1("172.25.1.2", 8080, 40000, syn | ack).size() == 1);
    REQUIRE(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080, ack).size() == 1);
    // Now only from namespace x: a1's connection is no longer allowed.
    std::string tight = web_ingress;
    tight.replace(tight.find("team: y"), 7, "team: x");
    node.apply_yaml(tight);
    CHECK(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080, ack).empty());
    CHECK(node.drops(drop::policy_cut) == 1);
    // Its state is gone: b1's next segment to it passes on the rules alone (b1's egress is
    // open), untracked.
    CHECK(node.from_b1("172.25.1.2", 8080, 40000, ack).size() == 1);
    const nlohmann::json p = get_policies(node.state());
    CHECK(p["items"][0]["connectionsCut"] == 1);
    node.apply_yaml(web_ingress);
    CHECK(node.from_kernel_a("172.25.1.2", 40005, "172.25.2.2", 8080).size() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: judged after service DNAT, by the backend pod; replies of allowed "
          "connections come back from the VIP",
          "[policy]") {
    policy_node_t node(std::string(web_ingress) + web_service);
    // b2 (y, client) through the VIP to b1: allowed.
    auto out = node.from_b2("10.96.0.10", 33000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    out = node.from_b1("172.25.2.3", 8080, 33000, syn | ack);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b2_port);
    // b1 talking to itself through its service (hairpin, masqueraded to the node): allowed.
    // a2 (x, other) from kernel-a through the VIP: denied, and the connection not kept.
    const uint64_t before = node.state().connections().size();
    CHECK(node.from_kernel_a("172.25.1.3", 33001, "10.96.0.10", 80).empty());
    CHECK(node.drops(drop::policy_denied) == 1);
    CHECK(node.state().connections().size() == before);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: ipBlock 0.0.0.0/0 with an except", "[policy]") {
    policy_node_t node(R"(
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: anywhere-but, namespace: y}
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [172.25.1.2/32]}}]}]
)");
    CHECK(node.from_b2("172.25.1.3", 1000, 80).size() == 1);
    CHECK(node.from_b2("172.25.1.2", 1000, 80).empty());
    CHECK(node.drops(drop::policy_denied) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: a connection opened before its pod was isolated keeps its replies "
          "(taken up mid-stream from the server's port)",
          "[policy]") {
    policy_node_t node("");
    // b1 opens a connection to a2:80 while nothing is isolated: not tracked.
    REQUIRE(node.from_b1("172.25.1.3", 50000, 80).size() == 1);
    CHECK(node.counters().policy_tracked.get() == 0);
    node.apply_yaml(R"(
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny-in, namespace: x}
    spec: {podSelector: {}}
)");
    // a2's segments from port 80 are the replies b1's open egress allows.
    REQUIRE(node.from_kernel_a("172.25.1.3", 80, "172.25.2.2", 50000, ack).size() == 1);
    CHECK(node.counters().policy_tracked.get() == 1);
    REQUIRE(node.from_kernel_a("172.25.1.3", 80, "172.25.2.2", 50000, ack).size() == 1);
    CHECK(node.counters().policy_tracked.get() == 1);
    // a2 sending from a high port to b1's low port is not a reply: denied, SYN or not.
    CHECK(node.from_kernel_a("172.25.1.3", 50001, "172.25.2.2", 80, ack).empty());
    CHECK(node.from_kernel_a("172.25.1.3", 80, "172.25.2.2", 50002, syn).empty());
    CHECK(node.drops(drop::policy_denied) == 2);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: with cutEstablished false a tightened policy spares established "
          "connections, service connections included",
          "[policy]") {
    const std::string keep = "policy: {cutEstablished: false}\n";
    const std::string svc = web_service;
    policy_node_t node(keep + web_ingress + svc);
    REQUIRE(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080).size() == 1);
    REQUIRE(node.from_b2("10.96.0.10", 33000, 80).size() == 1);
    std::string tight = web_ingress;
    tight.replace(tight.find("team: y"), 7, "team: x");
    node.apply_yaml(keep + tight + svc);
    CHECK(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080, ack).size() == 1);
    CHECK(node.from_b2("10.96.0.10", 33000, 80, ack).size() == 1);
    // New connections follow the tightened policy.
    CHECK(node.from_kernel_a("172.25.1.2", 40001, "172.25.2.2", 8080).empty());
    CHECK(node.from_b2("10.96.0.10", 33001, 80).empty());
    CHECK(node.drops(drop::policy_cut) == 0);
    CHECK(node.drops(drop::policy_denied) == 2);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: hairpin into an isolated pod through its service; a node address "
          "out of a tunnel is not the node",
          "[policy]") {
    policy_node_t node(std::string(web_ingress) + web_service);
    // b1 (isolated, no rule for itself) reaches itself through its service: masqueraded
    // to the node's overlay address, allowed both ways.
    auto out = node.from_b1("10.96.0.10", 33000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    const uint16_t masq_port = uint16_t(out[0].bytes[34] << 8 | out[0].bytes[35]);
    out = node.pod(pod_b1_port, pkt().eth(gw, pod_b1_mac).ipv4(ip4("172.25.2.2"), ip4("172.25.2.0"))
                                    .tcp(8080, masq_port, syn | ack).bytes());
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    // The node's own addresses as the inner source of VXLAN: judged like anyone (denied).
    CHECK(node.from_kernel_a("198.18.0.2", 1000, "172.25.2.2", 8080).empty());
    CHECK(node.from_kernel_a("172.25.2.0", 1000, "172.25.2.2", 8080).empty());
    CHECK(node.drops(drop::policy_denied) == 2);
    CHECK(node.drops(drop::policy_cut) == 0);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: a flow tracked for policy gives way to a service that appears on its "
          "destination",
          "[policy]") {
    // b2 isolated for egress, allowed anywhere on TCP 80.
    const std::string egress = R"(
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: out-80, namespace: y}
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{ports: [{port: 80}]}]
)";
    policy_node_t node(egress);
    // No service yet: allowed and tracked (then not routed: this node has no host port).
    node.from_b2("10.96.0.10", 33000, 80);
    CHECK(node.counters().policy_tracked.get() == 1);
    node.apply_yaml(egress + R"(
services:
  - name: web
    namespace: x
    clusterIP: 10.96.0.10
    ports: [{port: 80, targetPort: 80}]
    endpoints: [{ip: 172.25.1.3}]
)");
    auto out = node.from_b2("10.96.0.10", 33000, 80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == underlay_port);
    const auto& inner = at<net::ipv4_hdr>(out[0].bytes, 64);
    CHECK(inner.dst_addr() == ip4("172.25.1.3"));
    CHECK(node.counters().ct_created.get() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: a change that cannot alter a verdict here keeps the table and its version; "
          "one that can judges connections again",
          "[policy]") {
    policy_node_t node(web_ingress);
    const policy_publisher& pub = node.state().policies();
    const uint32_t gen = pub.gen();
    const policy_table* table = pub.table();
    REQUIRE(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080).size() == 1);
    REQUIRE(node.from_b1("172.25.1.2", 8080, 40000, syn | ack).size() == 1);
    auto apply_full = [&](const std::string& yaml) {
        config::parse_result r = config::parse_yaml(yaml, "t.yaml");
        REQUIRE(r.ok());
        REQUIRE(node.state().apply(r.cfg).empty());
        node.snapshot();
    };
    // A policy that selects no local pod (a2 is on kernel-a): enforced at its node.
    const std::string other = R"(
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: other, namespace: x}
    spec:
      podSelector: {matchLabels: {app: other}}
      ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
)";
    const uint64_t first_compiles = pub.compiles();
    node.apply_yaml(web_ingress + other);
    CHECK(pub.compiles() == first_compiles);
    CHECK(pub.gen() == gen);
    CHECK(pub.table() == table);
    nlohmann::json p = get_policies(node.state());
    REQUIRE(p["items"].size() == 2);
    CHECK(p["items"][0]["name"] == "other");
    CHECK(p["items"][0]["enforcedHere"] == false);
    CHECK(p["items"][1]["enforcedHere"] == true);
    // A pod that no compiled policy names (a2 is no peer of web); a label no selector
    // reads on the isolated b1: no compile.
    std::string base = policy_node;
    base.replace(base.find("labels: {app: other}"), 20, "labels: {app: other, v: \"2\"}");
    apply_full(base + web_ingress + other);
    CHECK(pub.gen() == gen);
    base.replace(base.find("labels: {app: web}"), 18, "labels: {app: web, tier: front}");
    apply_full(base + web_ingress + other);
    CHECK(pub.gen() == gen);
    CHECK(pub.table() == table);
    // Another container port on the isolated b1, one no rule names: compiled again, to
    // the same tables, which stay.
    const uint64_t compiles = pub.compiles();
    base.replace(base.find("containerPorts: [{name: http, containerPort: 8080}]"), 51,
                 "containerPorts: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]");
    apply_full(base + web_ingress + other);
    CHECK(pub.compiles() == compiles + 1);
    CHECK(pub.gen() == gen);
    CHECK(pub.table() == table);
    // The connection goes on, judged once.
    CHECK(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080, ack).size() == 1);
    CHECK(get_policies(node.state())["items"][1]["ingress"][0]["allowed"] == 1);
    // a1 no longer a client: a new version, and its connection is judged again and cut.
    const size_t at = base.find("labels: {app: client}}\n  - {name: pod-a2");
    REQUIRE(at != std::string::npos);
    base.replace(at, 21, "labels: {app: gone}");
    apply_full(base + web_ingress + other);
    CHECK(pub.gen() == gen + 1);
    CHECK(node.from_kernel_a("172.25.1.2", 40000, "172.25.2.2", 8080, ack).empty());
    CHECK(node.drops(drop::policy_cut) == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}

TEST_CASE("policy: an ICMP error about a tracked connection reaches the isolated pod; one "
          "about no connection does not",
          "[policy]") {
    policy_node_t node(web_ingress);  // b1 isolated for ingress
    // b1 opens a connection to a1: tracked, so that a1's answers come back in.
    REQUIRE(node.from_b1("172.25.1.2", 50000, 9000).size() == 1);
    REQUIRE(node.counters().policy_tracked.get() == 1);
    // A router on a1's side cannot forward b1's big segment: fragmentation needed, about
    // the packet b1 sent, from an address that no rule allows.
    auto error_to_b1 = [&](const char* inner_src, const char* inner_dst, uint16_t sport, uint16_t dport) {
        const std::vector<uint8_t> inner =
            pkt().ipv4(ip4(inner_src), ip4(inner_dst)).tcp(sport, dport, ack).payload(100).bytes();
        return node.underlay(pkt().eth(underlay_mac, kernel_a_mac).ipv4(ip4("198.18.0.1"), ip4("198.18.0.2"))
                                 .udp(40000, 8472).vxlan(1).eth(twill_b_vtep, kernel_a_vtep)
                                 .ipv4(ip4("172.25.1.1"), ip4("172.25.2.2"))
                                 .icmp_error(3, 4, 1400).raw(std::vector<uint8_t>(inner.begin(), inner.begin() + 28))
                                 .bytes());
    };
    auto out = error_to_b1("172.25.2.2", "172.25.1.2", 50000, 9000);
    REQUIRE(out.size() == 1);
    CHECK(out[0].port == pod_b1_port);
    CHECK(node.counters().policy_related.get() == 1);
    // About a connection that does not exist, or about a packet b1 did not send: the rules
    // decide, and they deny.
    CHECK(error_to_b1("172.25.2.2", "172.25.1.2", 50001, 9000).empty());
    CHECK(error_to_b1("172.25.1.2", "172.25.2.2", 9000, 50000).empty());
    CHECK(node.drops(drop::policy_denied) == 2);
    CHECK(node.counters().policy_related.get() == 1);
    REQUIRE_NO_LEAKED_MBUFS();
}
