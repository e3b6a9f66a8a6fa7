// Namespaces and NetworkPolicies as objects of a running node: kept, checked, diffed and
// recorded by the desired state, applied and deleted through the control API, and taken
// on by a reload.
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "control/api.h"
#include "control/config.h"
#include "control/desired.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::config;
using nlohmann::json;

namespace {

std::string all_errors(const parse_result& r) {
    std::string out;
    for (const error& e : r.errors) {
        out += to_string(e) + "\n";
    }
    return out;
}

}  // namespace

namespace {

config::node_file fixture_file(const std::string& extra = "") {
    config::parse_result r = config::parse_yaml(test::default_node_yaml + extra, "node.yaml");
    INFO(all_errors(r));
    REQUIRE(r.ok());
    return r.cfg;
}

const char* const policies_yaml = R"(namespaces:
  - {name: shop, labels: {team: a}}
networkPolicies:
  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: shop},
     spec: {podSelector: {}}}
  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: web},
     spec: {podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: http}]}]}}
)";

// web (default) isolates the local pod b1 and names peers: app=client pods here and every
// pod of namespaces labelled team=a, where egress may reach a named port; shop/deny selects
// no local pod.
const char* const touch_yaml = R"(
node: {name: twill-b, ip: 198.18.0.2, podCIDR: 172.25.2.0/24, vtepMAC: "0e:00:00:00:02:00"}
cluster: {clusterCIDR: 172.25.0.0/16}
ports: {underlay: "underlay"}
nodes:
  - {name: kernel-a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}
namespaces:
  - {name: shop, labels: {team: a}}
pods:
  - {name: b1, ip: 172.25.2.2, port: "pb1", labels: {app: web}}
  - {name: b2, ip: 172.25.2.3, port: "pb2"}
  - {name: a1, ip: 172.25.1.2, labels: {app: client}}
  - {name: a2, ip: 172.25.1.3}
  - {name: s1, namespace: shop, ip: 172.25.1.4, labels: {app: web}}
networkPolicies:
  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny, namespace: shop},
     spec: {podSelector: {}}}
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
      egress: [{to: [{namespaceSelector: {matchLabels: {team: a}}}], ports: [{port: metrics}]}]
)";

std::vector<std::string> check_errors(const desired_state& d, const std::string& yaml) {
    config::parse_result r = config::parse_objects_yaml(yaml, "objs.yaml");
    INFO(all_errors(r));
    REQUIRE(r.ok());
    std::vector<std::string> out;
    for (const config::error& e : d.check(r.cfg)) {
        out.push_back(config::to_string(e));
    }
    return out;
}

}  // namespace

TEST_CASE("desired state: only what can change a verdict here touches policy", "[desired][policy]") {
    config::parse_result r = config::parse_yaml(touch_yaml, "node.yaml");
    INFO(all_errors(r));
    REQUIRE(r.ok());
    const desired_state d(r.cfg);
    const std::set<pod_key> enforced{{"default", "web"}};
    auto pod_change = [&](const std::string& name, auto edit) {
        object_change c;
        c.pods = {d.pods().at({name == "s1" ? "shop" : "default", name})};
        edit(c.pods[0]);
        return d.policy_touched(c, enforced);
    };
    auto same = [](config::pod&) {};
    CHECK_FALSE(pod_change("a2", same));
    CHECK_FALSE(pod_change("a2", [](config::pod& p) { p.mac = mac_addr{{0x0a, 0, 0, 0, 2, 9}}; }));
    // Pods no compiled policy names: their addresses alone, unchanged verdicts.
    CHECK_FALSE(pod_change("a2", [](config::pod& p) { p.labels["app"] = "other"; }));
    CHECK_FALSE(pod_change("a2", [](config::pod& p) { p.ip = ip4_addr::from_octets(172, 25, 1, 9); }));
    CHECK_FALSE(pod_change("a2", [](config::pod& p) { p.container_ports = {{"http", proto_tcp, 80}}; }));
    CHECK_FALSE(pod_change("a2", [](config::pod& p) {
        p.name = "new";
        p.ip = ip4_addr::from_octets(172, 25, 1, 20);
    }));
    CHECK_FALSE(pod_change("b2", [](config::pod& p) { p.labels["app"] = "client2"; }));
    // A peer of web, before or after; a pod web may isolate; a named port of its egress.
    CHECK(pod_change("a2", [](config::pod& p) { p.labels["app"] = "client"; }));
    CHECK(pod_change("a1", [](config::pod& p) { p.labels.clear(); }));
    CHECK(pod_change("a1", [](config::pod& p) { p.ip = ip4_addr::from_octets(172, 25, 1, 9); }));
    CHECK(pod_change("b2", [](config::pod& p) { p.labels["app"] = "web"; }));
    CHECK_FALSE(pod_change("b1", [](config::pod& p) { p.labels["tier"] = "front"; }));  // read by no selector
    CHECK(pod_change("b1", [](config::pod& p) { p.container_ports = {{"http", proto_tcp, 80}}; }));
    CHECK(pod_change("a2", [](config::pod& p) { p.container_ports = {{"metrics", proto_tcp, 9090}}; }));
    // A pod moved to shop (deleted, added there): every pod of shop is a peer of web.
    object_change move;
    move.delete_pods = {{"default", "a2"}};
    move.pods = {d.pods().at({"default", "a2"})};
    move.pods[0].ns = "shop";
    CHECK(d.policy_touched(move, enforced));
    move.delete_pods = {{"default", "a2"}};
    move.pods[0].ns = "elsewhere";
    CHECK_FALSE(d.policy_touched(move, enforced));
    // s1 made local: shop/deny (not enforced: no local pod in shop) would isolate it.
    CHECK(pod_change("s1", [](config::pod& p) { p.port = "ps1"; }));
    CHECK_FALSE(pod_change("s1", [](config::pod& p) { p.labels.clear(); }));  // a peer by its namespace still
    CHECK(pod_change("s1", [](config::pod& p) { p.ip = ip4_addr::from_octets(172, 25, 1, 9); }));
    CHECK(pod_change("s1", [](config::pod& p) { p.container_ports = {{"metrics", proto_tcp, 9090}}; }));
    object_change del;
    del.delete_pods = {{"default", "a2"}};
    CHECK_FALSE(d.policy_touched(del, enforced));
    del.delete_pods = {{"default", "a1"}};
    CHECK(d.policy_touched(del, enforced));
    object_change nodes;
    nodes.delete_nodes = {"kernel-a"};
    CHECK_FALSE(d.policy_touched(nodes, enforced));

    // Policies: those that select a local pod, before or after.
    object_change pol;
    pol.network_policies = {d.network_policies().at({"shop", "deny"})};
    pol.network_policies[0].ingress_rules.push_back({});
    CHECK_FALSE(d.policy_touched(pol, enforced));  // no local pod in shop
    pol.network_policies[0].ns = "default";
    CHECK(d.policy_touched(pol, enforced));  // selects b1 and b2
    pol.network_policies = {d.network_policies().at({"default", "web"})};
    pol.network_policies[0].pod_selector.match_labels = {{"app", "none"}};
    CHECK(d.policy_touched(pol, enforced));  // enforced now
    CHECK_FALSE(d.policy_touched(pol, {}));  // selects nothing local before or after
    object_change gone;
    gone.delete_network_policies = {{"shop", "deny"}};
    CHECK_FALSE(d.policy_touched(gone, enforced));
    gone.delete_network_policies = {{"default", "web"}};
    CHECK(d.policy_touched(gone, enforced));
    // A policy that selects no local pod is not compiled here: its peers do not count.
    object_change both;
    both.network_policies = {d.network_policies().at({"default", "web"})};
    both.network_policies[0].name = "web2";
    both.network_policies[0].pod_selector.match_labels = {{"app", "none"}};
    both.network_policies[0].ingress_rules[0].peers[0].pod_selector->match_labels = {{"app", "new"}};
    both.pods = {d.pods().at({"default", "a2"})};
    both.pods[0].labels["app"] = "new";
    CHECK_FALSE(d.policy_touched(both, enforced));

    object_change ns;
    ns.delete_namespaces = {"shop"};
    CHECK(d.policy_touched(ns, enforced));
    object_change cut;
    cut.cut_denied_connections = false;
    CHECK(d.policy_touched(cut, enforced));
}

TEST_CASE("desired state: namespaces and policies kept, checked, diffed", "[desired][policy]") {
    desired_state d(fixture_file(policies_yaml));
    REQUIRE(d.namespaces().size() == 1);
    CHECK(d.namespaces().at("shop").labels == label_map{{"team", "a"}});
    REQUIRE(d.network_policies().size() == 2);
    CHECK(d.network_policies().contains({"shop", "deny"}));
    CHECK(d.network_policies().at({"default", "web"}).ingress_rules[0].ports[0].name == "http");
    CHECK(d.settings().cut_denied_connections);

    SECTION("apply check: a policy's namespace need not be listed; names unique in a request") {
        CHECK(check_errors(d, "networkPolicies:\n  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, "
                              "metadata: {name: x, namespace: nowhere}, spec: {}}\n")
                  .empty());
        CHECK(check_errors(d, "namespaces: [{name: shop, labels: {team: b}}]\n").empty());  // a replacement
        CHECK(check_errors(d, "namespaces: [{name: a}, {name: a}]\n") ==
              std::vector<std::string>{
                  "namespaces[1].name: duplicate namespace 'a' (also namespaces[0].name) (objs.yaml:1:32)"});
        CHECK(check_errors(d, "apiVersion: v1\nkind: List\nitems:\n"
                              "- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: x}, spec: {}}\n"
                              "- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: x}, spec: {}}\n") ==
              std::vector<std::string>{"items[1].metadata.name: duplicate NetworkPolicy default/x (also "
                                       "items[0].metadata.name) (objs.yaml:5:76)"});
    }
    SECTION("record adds, replaces and deletes") {
        object_change c;
        c.namespaces = {{"shop", {{"team", "b"}}}, {"ops", {}}};
        c.delete_network_policies = {{"shop", "deny"}};
        c.network_policies = {network_policy{.name = "p", .ns = "ops"}};
        d.record(c);
        CHECK(d.namespaces().at("shop").labels == label_map{{"team", "b"}});
        CHECK(d.namespaces().size() == 2);
        CHECK(d.network_policies().size() == 2);
        CHECK_FALSE(d.network_policies().contains({"shop", "deny"}));
        object_change del;
        del.delete_namespaces = {"ops"};
        d.record(del);
        CHECK(d.namespaces().size() == 1);
        CHECK(d.network_policies().contains({"ops", "p"}));  // its namespace is implicit now
    }
    SECTION("a reload is the difference") {
        config::node_file next = fixture_file(policies_yaml);
        CHECK(d.diff(next).empty());
        next.namespaces[0].labels["env"] = "prod";
        next.network_policies.erase(next.network_policies.begin());
        next.network_policies[0].ingress_rules.clear();
        next.cut_denied_connections = false;
        object_change c = d.diff(next);
        CHECK(c.namespaces == next.namespaces);
        CHECK(c.network_policies == next.network_policies);
        CHECK(c.delete_network_policies == std::vector<pod_key>{{"shop", "deny"}});
        CHECK(c.cut_denied_connections == false);
        CHECK(d.policy_touched(c, {}));
        d.record(c);
        CHECK(d.diff(next).empty());
        CHECK_FALSE(d.settings().cut_denied_connections);
        next.namespaces.clear();
        CHECK(d.diff(next).delete_namespaces == std::vector<std::string>{"shop"});
    }
    CHECK(d.pods_in("default").size() == 3);
    CHECK(d.pods_in("shop").empty());
}

namespace {

json ask(api_context& ctx, const std::string& line) {
    json reply = json::parse(handle_request(line, ctx), nullptr, false);
    REQUIRE(!reply.is_discarded());
    return reply;
}

}  // namespace

TEST_CASE("control API: namespaces and NetworkPolicies applied and deleted", "[api][policy]") {
    config::node_file cfg = fixture_file();
    node_params params = make_params(cfg, 0, test::underlay_mac, 1'000'000);
    node_state state(cfg, params, {{"pb1", 1}, {"pb2", 2}}, nullptr, port_ops{nullptr, [](uint16_t) {}});
    api_context ctx{state, nullptr, "twilld test"};
    auto apply = [&](const std::string& yaml) {
        return ask(ctx, json{{"verb", "apply"}, {"yaml", yaml}, {"source", "objs.yaml"}}.dump());
    };
    // What `kubectl get ns,netpol -o yaml` prints, trimmed, with a labelled pod.
    json reply = apply(R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop, labels: {kubernetes.io/metadata.name: shop, team: a}}
  spec: {finalizers: [kubernetes]}
  status: {phase: Active}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: allow-team, namespace: default, uid: 1b2c, generation: 1}
  spec:
    podSelector: {matchLabels: {app: web}}
    ingress: [{from: [{namespaceSelector: {matchLabels: {team: a}}}], ports: [{port: http}]}]
)");
    INFO(reply.dump());
    REQUIRE(reply["ok"] == true);
    CHECK(reply["applied"] == json{{"nodes", 0},      {"pods", 0},       {"services", 0},
                                   {"endpointSlices", 0}, {"namespaces", 1}, {"networkPolicies", 1}});
    CHECK(state.desired().namespaces().at("shop").labels == label_map{{"team", "a"}});
    REQUIRE(state.desired().network_policies().contains({"default", "allow-team"}));

    SECTION("a pod's labels and named ports through apply") {
        json r = apply("pods:\n  - {name: pod-b1, ip: 172.25.2.2, port: pb1, labels: {app: web}, "
                       "containerPorts: [{name: http, containerPort: 8080}]}\n");
        REQUIRE(r["ok"] == true);
        CHECK(state.desired().pods().at({"default", "pod-b1"}).labels == label_map{{"app", "web"}});
        CHECK(state.pod_ports().size() == 2);  // the same port: nothing attached or detached
    }
    SECTION("a bad policy changes nothing, and says where") {
        json r = apply("networkPolicies:\n"
                       "  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: allow-team},\n"
                       "     spec: {ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}}]}]}}\n"
                       "namespaces: [{name: shop, labels: {team: b}}]\n");
        CHECK(r["error"]["code"] == "invalid");
        CHECK(r["error"]["details"] ==
              json::array({"networkPolicies[0].spec.ingress[0].from[0].ipBlock.except[0]: 11.0.0.0/8 is "
                           "outside cidr 10.0.0.0/8: an except must lie strictly inside it (objs.yaml:3:69)"}));
        CHECK(state.desired().namespaces().at("shop").labels == label_map{{"team", "a"}});
        CHECK(state.desired().network_policies().at({"default", "allow-team"}).ingress_rules.size() == 1);
    }
    SECTION("delete a policy") {
        json d = ask(ctx, R"({"verb":"delete","kind":"networkpolicy","name":"allow-team"})");
        CHECK(d["ok"] == true);
        CHECK(d["deleted"] == json{{"kind", "networkpolicy"}, {"name", "allow-team"}, {"namespace", "default"}});
        CHECK(state.desired().network_policies().empty());
        CHECK(ask(ctx, R"({"verb":"delete","kind":"networkpolicy","name":"allow-team"})")["error"]["code"] ==
              "not_found");
    }
    SECTION("delete a namespace: refused while it has pods") {
        json d = ask(ctx, R"({"verb":"delete","kind":"namespace","name":"shop"})");
        CHECK(d["ok"] == true);
        CHECK(d["deleted"] == json{{"kind", "namespace"}, {"name", "shop"}});
        CHECK(state.desired().namespaces().empty());
        CHECK(ask(ctx, R"({"verb":"delete","kind":"namespace","name":"shop"})")["error"]["code"] == "not_found");

        REQUIRE(apply("namespaces: [{name: default}]\n")["ok"] == true);
        json refused = ask(ctx, R"({"verb":"delete","kind":"namespace","name":"default"})");
        CHECK(refused["error"]["code"] == "refused");
        CHECK_THAT(refused["error"]["message"].get<std::string>(),
                   Catch::Contains("namespace 'default' still has 3 pods: delete them first"));
        CHECK(refused["error"]["details"] ==
              json::array({"pod default/pod-a1", "pod default/pod-b1", "pod default/pod-b2"}));
        CHECK(state.desired().namespaces().contains("default"));
    }
    SECTION("a reload with changed policies is accepted") {
        config::node_file next = fixture_file(R"(namespaces: [{name: shop, labels: {team: b}}]
networkPolicies:
  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: deny}, spec: {policyTypes: [Egress]}}
policy: {cutEstablished: false}
)");
        CHECK(state.apply(next).empty());
        CHECK(state.desired().namespaces().at("shop").labels == label_map{{"team", "b"}});
        REQUIRE(state.desired().network_policies().size() == 1);
        CHECK(state.desired().network_policies().begin()->second.egress);
        CHECK_FALSE(state.settings().cut_denied_connections);
        CHECK(state.apply(next).empty());
    }
}
