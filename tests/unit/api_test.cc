// The control API as a function: request line in, reply line out, never a throw.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "control/api.h"
#include "tests/unit/fixture.h"

using namespace twill;
using namespace twill::test;
using nlohmann::json;

namespace {

json ask(api_context& ctx, const std::string& line) {
    json reply = json::parse(handle_request(line, ctx), nullptr, false);
    REQUIRE(!reply.is_discarded());
    return reply;
}

// The fixture's node with its two pods on ports 1 and 2; no port can be attached.
std::unique_ptr<node_state> fixture_state() {
    config::parse_result r = config::parse_yaml(default_node_yaml, "test.yaml");
    REQUIRE(r.ok());
    node_params params = make_params(r.cfg, 0, underlay_mac, 1'000'000);
    return std::make_unique<node_state>(r.cfg, params, std::map<std::string, uint16_t>{{"pb1", 1}, {"pb2", 2}},
                                        nullptr, port_ops{nullptr, [](uint16_t) {}});
}

}  // namespace

TEST_CASE("control API: gets, deletes and errors", "[api]") {
    std::unique_ptr<node_state> owned = fixture_state();
    node_state& state = *owned;
    api_context ctx{state, [] { return json{{"encapsulated", 7}}; }, "twilld test"};

    SECTION("version and status") {
        CHECK(ask(ctx, R"({"verb":"version"})")["version"] == "twilld test");
        json s = ask(ctx, R"({"verb":"status"})");
        CHECK(s["ok"] == true);
        CHECK(s["node"] == "twill-b");
        CHECK(s["remoteNodes"] == 2);
        CHECK(s["localPods"] == 2);
    }
    SECTION("get nodes, pods, neighbours, stats") {
        json nodes = ask(ctx, R"({"verb":"get","kind":"nodes"})")["items"];
        REQUIRE(nodes.size() == 3);
        CHECK(nodes[0]["self"] == true);
        CHECK(nodes[1]["name"] == "kernel-a");
        CHECK(nodes[1]["podCIDR"] == "172.25.1.0/24");
        json pods = ask(ctx, R"({"verb":"get","kind":"pods"})")["items"];
        REQUIRE(pods.size() == 3);  // by namespace and name
        CHECK(pods[0]["name"] == "pod-a1");
        CHECK(pods[0]["local"] == false);
        CHECK(pods[1]["macSource"] == "unknown");
        CHECK(pods[2]["mac"] == "0a:00:00:00:02:03");
        CHECK(pods[2]["macSource"] == "configured");
        json neigh = ask(ctx, R"({"verb":"get","kind":"neighbours"})")["items"];
        REQUIRE(neigh.size() == 2);
        CHECK(neigh[0]["state"] == "incomplete");
        CHECK(ask(ctx, R"({"verb":"get","kind":"stats"})")["stats"]["encapsulated"] == 7);
    }
    SECTION("delete a node and a pod") {
        CHECK(ask(ctx, R"({"verb":"delete","kind":"node","name":"kernel-c"})")["ok"] == true);
        CHECK(state.desired().nodes().size() == 1);
        CHECK(state.published().slices.load()->lookup(ip4("172.25.3.1")) == nullptr);
        CHECK(ask(ctx, R"({"verb":"delete","kind":"pod","name":"pod-b2"})")["ok"] == true);
        CHECK(state.published().pods.load()->lookup(ip4("172.25.2.3")) == no_index);
    }
    SECTION("every bad request is a structured error, and nothing changes") {
        struct row {
            const char* request;
            const char* code;
        } rows[] = {
            {"not json", "bad_request"},
            {"[1,2]", "bad_request"},
            {R"({"verb":42})", "bad_request"},
            {R"({"verb":"explode"})", "bad_request"},
            {R"({"verb":"get","kind":"everything"})", "bad_request"},
            {R"({"verb":"delete","kind":"policy","name":"x"})", "bad_request"},
            {R"({"verb":"delete","kind":"service","name":"x"})", "not_found"},
            {R"({"verb":"delete","kind":"endpointslice","name":"x"})", "not_found"},
            {R"({"verb":"delete","kind":"node"})", "bad_request"},
            {R"({"verb":"delete","kind":"node","name":"nope"})", "not_found"},
            {R"({"verb":"delete","kind":"pod","name":"pod-b1","namespace":"other"})", "not_found"},
            {"\xff\xfe{", "bad_request"},
        };
        for (const row& rr : rows) {
            INFO(rr.request);
            json reply = ask(ctx, rr.request);
            CHECK(reply["ok"] == false);
            CHECK(reply["error"]["code"] == rr.code);
            CHECK(!reply["error"]["message"].get<std::string>().empty());
        }
        CHECK(state.desired().nodes().size() == 2);
        CHECK(state.pod_ports().size() == 2);
    }
}

TEST_CASE("control API: apply adds or replaces objects, or changes nothing", "[api]") {
    std::unique_ptr<node_state> owned = fixture_state();
    node_state& state = *owned;
    api_context ctx{state, nullptr, "twilld test"};
    auto apply = [&](const std::string& yaml) {
        return ask(ctx, json{{"verb", "apply"}, {"yaml", yaml}, {"source", "objs.yaml"}}.dump());
    };

    SECTION("a new node and a replaced one") {
        json reply = apply(R"(
nodes:
  - {name: kernel-d, ip: 198.18.0.4, podCIDR: 172.25.4.0/24, vtepMAC: "0e:00:00:00:04:00"}
  - {name: kernel-c, ip: 198.18.0.3, podCIDR: 172.25.5.0/24, vtepMAC: "0e:00:00:00:03:00"}
)");
        CHECK(reply["ok"] == true);
        CHECK(reply["applied"]["nodes"] == 2);
        CHECK(state.desired().nodes().size() == 3);
        const slice_table* t = state.published().slices.load();
        CHECK(t->lookup(ip4("172.25.4.1")) != nullptr);
        CHECK(t->lookup(ip4("172.25.5.1")) != nullptr);
        CHECK(t->lookup(ip4("172.25.3.1")) == nullptr);  // kernel-c moved to .5
    }
    SECTION("errors name the objects' file, line and column; nothing changes") {
        struct row {
            const char* what;
            const char* yaml;
            const char* expect;
        } rows[] = {
            {"a key that only a node file has", "node: {name: x}\n",
             "unknown key 'node'; did you mean 'nodes'? (objs.yaml:1:1)"},
            {"a bad address", "nodes:\n  - {name: kernel-d, ip: 198.18.0.400, podCIDR: 172.25.4.0/24, vtepMAC: \"0e:00:00:00:04:00\"}\n",
             "nodes[0].ip: '198.18.0.400' is not an IPv4 address"},
            {"a slice that overlaps the node's own (checked against the state)",
             "nodes:\n  - {name: kernel-d, ip: 198.18.0.4, podCIDR: 172.25.2.0/25, vtepMAC: \"0e:00:00:00:04:00\"}\n",
             "nodes[0].podCIDR: 172.25.2.0/25 overlaps node.podCIDR 172.25.2.0/24 (objs.yaml:2:"},
            {"a pod that would need a port it does not name",
             "pods:\n  - {name: pod-b7, ip: 172.25.2.7}\n", "pods[0].ip: 172.25.2.7 is inside node.podCIDR"},
        };
        for (const row& rr : rows) {
            INFO(rr.what);
            json reply = apply(rr.yaml);
            CHECK(reply["ok"] == false);
            CHECK(reply["error"]["code"] == "invalid");
            CHECK_THAT(reply["error"]["details"].dump(), Catch::Contains(rr.expect));
        }
        CHECK(state.desired().nodes().size() == 2);
        CHECK(state.desired().pods().size() == 3);
    }
    SECTION("one reply lists every error: an object's own and the others' against the state") {
        json reply = apply(
            "nodes:\n  - {name: kernel-x, ip: 198.18.0.9, podCIDR: 172.25.1.0/25, vtepMAC: \"0e:00:00:00:09:00\"}\n"
            "pods:\n  - {name: pod-x, ip: 172.25.2.999}\n");
        REQUIRE(reply["ok"] == false);
        const json& details = reply["error"]["details"];
        REQUIRE(details.size() == 2);
        CHECK_THAT(details[0].get<std::string>(), Catch::StartsWith("pods[0].ip: '172.25.2.999' is not"));
        CHECK_THAT(details[1].get<std::string>(),
                   Catch::StartsWith("nodes[0].podCIDR: 172.25.1.0/25 overlaps node 'kernel-a'"));
        CHECK(state.desired().nodes().size() == 2);
    }
    SECTION("a pod on a new port with no way to attach it is refused") {
        json reply = apply("pods:\n  - {name: pod-b7, ip: 172.25.2.7, port: pb7}\n");
        CHECK(reply["ok"] == false);
        CHECK(reply["error"]["code"] == "refused");
        CHECK(state.pod_ports().size() == 2);
    }
}

TEST_CASE("control API: services and EndpointSlices applied and deleted", "[api][services]") {
    std::unique_ptr<node_state> owned = fixture_state();
    node_state& state = *owned;
    api_context ctx{state, nullptr, "twilld test"};
    auto apply = [&](const std::string& yaml) {
        return ask(ctx, json{{"verb", "apply"}, {"yaml", yaml}, {"source", "objs.yaml"}}.dump());
    };
    // What `kubectl get svc,endpointslices -o yaml` prints, trimmed.
    json reply = apply(R"(apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop, uid: 1b2c}
    spec:
      clusterIP: 192.0.2.10
      ports: [{name: http, port: 80, protocol: TCP, targetPort: http}]
      selector: {app: web}
      type: ClusterIP
    status: {loadBalancer: {}}
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: web-abcde, namespace: shop, labels: {kubernetes.io/service-name: web}}
    addressType: IPv4
    endpoints: [{addresses: [172.25.2.2], conditions: {ready: true}}]
    ports: [{name: http, port: 8080, protocol: TCP}]
)");
    INFO(reply.dump());
    REQUIRE(reply["ok"] == true);
    CHECK(reply["applied"] == json{{"nodes", 0}, {"pods", 0}, {"services", 1}, {"endpointSlices", 1},
                                   {"namespaces", 0}, {"networkPolicies", 0}});
    REQUIRE(state.desired().endpoints_of({"shop", "web"}).size() == 1);
    CHECK(state.desired().endpoints_of({"shop", "web"})[0].ports == std::vector<uint16_t>{8080});

    SECTION("a second slice naming a service that is not there changes nothing") {
        json bad = apply("endpointSlices:\n  - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, "
                         "addressType: IPv4, metadata: {name: x, namespace: shop, labels: "
                         "{kubernetes.io/service-name: nope}}}\n");
        CHECK(bad["error"]["code"] == "invalid");
        CHECK_THAT(bad["error"]["details"][0].get<std::string>(),
                   Catch::StartsWith("endpointSlices[0].metadata.labels.kubernetes.io/service-name: "
                                     "service shop/nope does not exist"));
        CHECK(state.desired().endpoint_slices().size() == 1);
    }
    SECTION("a broken item of a List is reported with the others' errors against the state") {
        json bad = apply("apiVersion: v1\nkind: List\nitems:\n"
                         "  - {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {clusterIP: 192.0.2.10, "
                         "ports: [{port: 80}]}}\n"
                         "  - {apiVersion: v1, kind: Service, metadata: {name: b}, spec: {clusterIP: x, "
                         "ports: [{port: 80}]}}\n");
        const json& details = bad["error"]["details"];
        REQUIRE(details.size() == 2);
        CHECK_THAT(details[0].get<std::string>(), Catch::StartsWith("items[1].spec.clusterIP: 'x' is not"));
        CHECK_THAT(details[1].get<std::string>(),
                   Catch::StartsWith("items[0].spec.clusterIP: TCP 192.0.2.10:80 is already used by "
                                     "service shop/web"));
    }
    SECTION("delete an EndpointSlice, then the service") {
        json d = ask(ctx, R"({"verb":"delete","kind":"endpointslice","name":"web-abcde","namespace":"shop"})");
        CHECK(d["ok"] == true);
        CHECK(d["deleted"] == json{{"kind", "endpointslice"}, {"name", "web-abcde"}, {"namespace", "shop"}});
        CHECK(state.desired().endpoints_of({"shop", "web"}).empty());
        d = ask(ctx, R"({"verb":"delete","kind":"service","name":"web","namespace":"shop"})");
        CHECK(d["ok"] == true);
        CHECK_FALSE(d.contains("alsoDeleted"));
        CHECK(state.desired().services().empty());
    }
    SECTION("deleting a service deletes its EndpointSlices, as Kubernetes' garbage collector does") {
        json d = ask(ctx, R"({"verb":"delete","kind":"service","name":"web","namespace":"shop"})");
        CHECK(d["ok"] == true);
        CHECK(d["alsoDeleted"] ==
              json::array({{{"kind", "endpointslice"}, {"namespace", "shop"}, {"name", "web-abcde"}}}));
        CHECK(state.desired().services().empty());
        CHECK(state.desired().endpoint_slices().empty());
        CHECK(ask(ctx, R"({"verb":"delete","kind":"service","name":"web","namespace":"shop"})")["error"]["code"] ==
              "not_found");
    }
}
