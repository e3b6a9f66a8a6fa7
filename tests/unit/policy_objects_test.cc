// Namespaces and NetworkPolicies as objects of a running node: kept, checked, diffed and
// recorded by the desired state, applied and deleted through the control API, and taken
// on by a reload.
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
        CHECK(d.policy_touched(c));
        d.record(c);
        CHECK(d.diff(next).empty());
        CHECK_FALSE(d.settings().cut_denied_connections);
        next.namespaces.clear();
        CHECK(d.diff(next).delete_namespaces == std::vector<std::string>{"shop"});
    }
    SECTION("what touches policy") {
        const config::pod was = d.pods().at({"default", "pod-b1"});
        object_change c;
        c.pods = {was};
        CHECK_FALSE(d.policy_touched(c));  // the same pod again
        c.pods[0].mac = mac_addr{{0x0a, 0, 0, 0, 2, 9}};
        CHECK_FALSE(d.policy_touched(c));  // a MAC is not a selector's input
        for (int i = 0; i < 4; ++i) {
            config::pod p = was;
            switch (i) {
                case 0: p.labels["app"] = "web"; break;
                case 1: p.container_ports = {{"http", proto_tcp, 80}}; break;
                case 2: p.ip = ip4_addr::from_octets(172, 25, 2, 9); break;
                case 3: p.name = "new"; break;
            }
            INFO(i);
            c.pods = {p};
            CHECK(d.policy_touched(c));
        }
        object_change del;
        del.delete_pods = {{"default", "pod-a1"}};
        CHECK(d.policy_touched(del));
        object_change nodes;
        nodes.delete_nodes = {"kernel-c"};
        CHECK_FALSE(d.policy_touched(nodes));
        object_change ns;
        ns.delete_namespaces = {"shop"};
        CHECK(d.policy_touched(ns));
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
