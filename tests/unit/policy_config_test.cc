// NetworkPolicy's config side: namespaces, pod labels and named ports, and verbatim
// NetworkPolicy manifests parsed into the exact structs; every rule of Kubernetes' API
// validation enforced with path and position. policy_objects_test.cc takes them on through
// the desired state and the control API.
#include <algorithm>
#include <string>

#include <catch2/catch.hpp>

#include "control/config.h"

using namespace twill;
using namespace twill::config;
using op = label_requirement::op;

namespace {

const std::string node_yaml = R"(node: {name: n1, ip: 198.18.0.2, podCIDR: 172.25.2.0/24}
cluster: {clusterCIDR: 172.25.0.0/16}
ports: {underlay: net_null0}
)";

parse_result parse(const std::string& text) { return parse_yaml(text, "t.yaml"); }

std::string all_errors(const parse_result& r) {
    std::string out;
    for (const error& e : r.errors) {
        out += to_string(e) + "\n";
    }
    return out;
}

ip4_prefix cidr(const char* s) {
    std::optional<ip4_prefix> p = parse_cidr(s);
    REQUIRE(p.has_value());
    return *p;
}

// Line and column (1-based) of the first `marker` in `text` after the node's settings.
std::pair<int, int> where(const std::string& text, const std::string& marker) {
    size_t at = text.find(marker, node_yaml.size());
    REQUIRE(at != std::string::npos);
    size_t line_start = text.rfind('\n', at);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    return {int(std::count(text.begin(), text.begin() + long(at), '\n')) + 1,
            int(at - line_start) + 1};
}

// Requires exactly one error: at `path`, containing `fragment`, placed at `marker`.
void require_only_error_at(const parse_result& r, const std::string& text,
                           const std::string& path, const std::string& fragment,
                           const std::string& marker) {
    INFO("errors:\n" << all_errors(r));
    INFO("expected " << path << ": ..." << fragment << "... at " << marker);
    auto [line, column] = where(text, marker);
    auto it = std::find_if(r.errors.begin(), r.errors.end(), [&](const error& e) {
        return e.path == path && e.message.find(fragment) != std::string::npos;
    });
    REQUIRE(it != r.errors.end());
    CHECK(it->pos.file == "t.yaml");
    CHECK(it->pos.line == line);
    CHECK(it->pos.column == column);
    CHECK(r.errors.size() == 1);
}

// A node file with one NetworkPolicy of namespace shop and this spec (indented by 6).
std::string policy(const std::string& spec, const std::string& metadata = "{name: p, namespace: shop}") {
    return node_yaml +
           "networkPolicies:\n  - apiVersion: networking.k8s.io/v1\n    kind: NetworkPolicy\n"
           "    metadata: " +
           metadata + "\n    spec:\n" + spec;
}

}  // namespace

TEST_CASE("NetworkPolicy: a kubectl get -o yaml manifest parses into the exact structs",
          "[config][policy]") {
    const std::string text = node_yaml + R"(networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      annotations:
        kubectl.kubernetes.io/last-applied-configuration: |
          {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy"}
      creationTimestamp: "2024-05-01T10:00:00Z"
      generation: 2
      labels: {app.kubernetes.io/part-of: shop}
      name: test-network-policy
      namespace: shop
      resourceVersion: "123456"
      uid: 5f2e8e0c-1b7e-4c55-a4a7-3b0f6c1c2d3e
      managedFields:
      - {manager: kubectl-client-side-apply, operation: Update}
    spec:
      egress:
      - ports:
        - endPort: 32768
          port: 32000
          protocol: TCP
        to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ingress:
      - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
            - 172.17.1.0/24
            - 172.17.2.128/25
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
        - namespaceSelector:
            matchExpressions:
            - key: env
              operator: NotIn
              values: [dev, test]
          podSelector:
            matchExpressions:
            - {key: app.kubernetes.io/name, operator: Exists}
            - {key: canary, operator: DoesNotExist, values: []}
            - {key: tier, operator: In, values: [web, ""]}
        ports:
        - port: 6379
          protocol: TCP
        - port: metrics
          protocol: SCTP
        - protocol: UDP
      - {}
      podSelector:
        matchLabels:
          role: db
      policyTypes:
      - Ingress
      - Egress
    status: {}
)";
    parse_result r = parse(text);
    INFO(all_errors(r));
    REQUIRE(r.ok());
    REQUIRE(r.cfg.network_policies.size() == 1);

    network_policy want;
    want.name = "test-network-policy";
    want.ns = "shop";
    want.pod_selector.match_labels = {{"role", "db"}};
    want.ingress = true;
    want.egress = true;
    policy_rule in;
    in.peers = {
        {.block = ip_block{cidr("172.17.0.0/16"), {cidr("172.17.1.0/24"), cidr("172.17.2.128/25")}}},
        {.namespace_selector = label_selector{{{"project", "myproject"}}, {}}},
        {.pod_selector = label_selector{{{"role", "frontend"}}, {}}},
        {.pod_selector = label_selector{{},
                                        {{"app.kubernetes.io/name", op::exists, {}},
                                         {"canary", op::does_not_exist, {}},
                                         {"tier", op::in, {"web", ""}}}},
         .namespace_selector = label_selector{{}, {{"env", op::not_in, {"dev", "test"}}}}},
    };
    in.ports = {{proto_tcp, 6379, "", std::nullopt},
                {proto_sctp, std::nullopt, "metrics", std::nullopt},
                {proto_udp, std::nullopt, "", std::nullopt}};
    want.ingress_rules = {in, policy_rule{}};
    policy_rule out;
    out.peers = {{.block = ip_block{cidr("10.0.0.0/24"), {}}}};
    out.ports = {{proto_tcp, 32000, "", 32768}};
    want.egress_rules = {out};

    const network_policy& got = r.cfg.network_policies[0];
    CHECK(got.name == want.name);
    CHECK(got.ns == want.ns);
    CHECK(got.pod_selector == want.pod_selector);
    CHECK(got.ingress == want.ingress);
    CHECK(got.egress == want.egress);
    REQUIRE(got.ingress_rules.size() == 2);
    for (size_t i = 0; i < in.peers.size(); ++i) {
        INFO("ingress[0].from[" << i << "]");
        CHECK(got.ingress_rules[0].peers.at(i) == in.peers[i]);
    }
    CHECK(got.ingress_rules[0].ports == in.ports);
    CHECK(got.ingress_rules[1] == policy_rule{});
    CHECK(got.egress_rules == want.egress_rules);
    CHECK(got == want);
    CHECK(r.cfg.policy_origins == std::vector<object_origin>{{"networkPolicies[0]", true}});
    const source_pos& at = r.cfg.positions.at("networkPolicies[0].spec.ingress[0].from[0].ipBlock.except[1]");
    CHECK(std::pair(at.line, at.column) == where(text, "172.17.2.128/25"));
}

TEST_CASE("config/policies.yaml: the example parses as documented", "[config][policy]") {
    parse_result r = load_file(TWILL_CONFIG_DIR "/policies.yaml");
    INFO(all_errors(r));
    REQUIRE(r.ok());
    const node_file& c = r.cfg;
    CHECK(c.cut_denied_connections);
    REQUIRE(c.namespaces.size() == 3);
    CHECK(c.namespaces[2] == namespace_def{"payments", {{"env", "prod"}, {"team", "shop"}}});
    REQUIRE(c.pods.size() == 5);
    CHECK(c.pods[4].container_ports ==
          std::vector<container_port>{{"dns", proto_udp, 53}, {"dns", proto_tcp, 53}});
    REQUIRE(c.network_policies.size() == 3);
    const network_policy& deny = c.network_policies[0];
    CHECK(deny.ingress);
    CHECK_FALSE(deny.egress);
    CHECK(deny.ingress_rules.empty());
    const network_policy& web = c.network_policies[1];
    CHECK_FALSE(web.egress);
    REQUIRE(web.ingress_rules.size() == 2);
    CHECK(web.ingress_rules[0].peers[0].pod_selector.has_value());
    CHECK(web.ingress_rules[0].peers[0].namespace_selector.has_value());
    CHECK(web.ingress_rules[1].ports == std::vector<policy_port>{{proto_tcp, std::nullopt, "metrics", std::nullopt}});
    const network_policy& db = c.network_policies[2];
    CHECK(db.egress);
    REQUIRE(db.egress_rules.size() == 2);
    CHECK(db.egress_rules[1].peers[0].block == ip_block{cidr("192.0.2.0/24"), {cidr("192.0.2.128/25")}});
    CHECK(db.egress_rules[1].ports == std::vector<policy_port>{{proto_tcp, 8000, "", 8099}});
}

TEST_CASE("NetworkPolicy: defaults", "[config][policy]") {
    auto one = [](const std::string& spec) {
        parse_result r = parse(policy(spec));
        INFO(all_errors(r));
        REQUIRE(r.ok());
        REQUIRE(r.cfg.network_policies.size() == 1);
        return r.cfg.network_policies[0];
    };
    SECTION("policyTypes absent: Ingress; Egress only with egress rules") {
        network_policy p = one("      podSelector: {}\n");
        CHECK(p.ingress);
        CHECK_FALSE(p.egress);
        CHECK(p.pod_selector == label_selector{});
        CHECK(p.ingress_rules.empty());
        p = one("      podSelector: {}\n      egress: [{}]\n");
        CHECK(p.ingress);
        CHECK(p.egress);
        CHECK(p.egress_rules == std::vector<policy_rule>{policy_rule{}});
        p = one("      podSelector: {}\n      egress: []\n");  // an empty list is none
        CHECK_FALSE(p.egress);
        p = one("      podSelector: {}\n      policyTypes: []\n      egress: [{}]\n");  // empty: the defaults
        CHECK(p.ingress);
        CHECK(p.egress);
    }
    SECTION("policyTypes given: exactly those") {
        network_policy p = one("      podSelector: {}\n      policyTypes: [Egress]\n");
        CHECK_FALSE(p.ingress);
        CHECK(p.egress);
        CHECK(p.egress_rules.empty());  // deny all egress
        p = one("      podSelector: {}\n      policyTypes: [Ingress]\n      egress: [{}]\n");
        CHECK(p.ingress);
        CHECK_FALSE(p.egress);  // rules of a type not listed are kept, and do not isolate
    }
    SECTION("a port's protocol is TCP; without port it is every port of that protocol") {
        network_policy p = one("      ingress: [{ports: [{port: 80}, {protocol: UDP}, {port: \"443\"}]}]\n");
        CHECK(p.ingress_rules[0].ports ==
              std::vector<policy_port>{{proto_tcp, 80, "", std::nullopt},
                                       {proto_udp, std::nullopt, "", std::nullopt},
                                       {proto_tcp, 443, "", std::nullopt}});
    }
    SECTION("namespace default, podSelector absent or null selects every pod") {
        parse_result r = parse(policy("      podSelector: null\n", "{name: p}"));
        INFO(all_errors(r));
        REQUIRE(r.ok());
        CHECK(r.cfg.network_policies[0].ns == "default");
        CHECK(r.cfg.network_policies[0].pod_selector == label_selector{});
        CHECK(parse(policy("      ingress: []\n")).ok());
    }
    SECTION("policy.cutEstablished") {
        CHECK(parse(node_yaml).cfg.cut_denied_connections);
        parse_result r = parse(node_yaml + "policy: {cutEstablished: false}\n");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        CHECK_FALSE(r.cfg.cut_denied_connections);
    }
}

TEST_CASE("NetworkPolicy: every bad manifest is rejected with path and position",
          "[config][policy]") {
    const std::string ok_peer = "        - from: [{podSelector: {}}]\n";
    struct row {
        const char* what;
        std::string text;
        std::string path;
        const char* fragment;
        const char* marker;
    };
    const std::string in = "networkPolicies[0].spec.ingress[0]";
    const row rows[] = {
        // Unknown fields, wherever they are.
        {"an unknown key in spec", policy("      podSelector: {}\n      egres: []\n"),
         "networkPolicies[0].spec.egres", "unknown key 'egres'; did you mean 'egress'?", "egres"},
        {"an unknown key at the top", policy("      podSelector: {}\n    spce: {}\n"),
         "networkPolicies[0].spce", "unknown key 'spce'", "spce"},
        {"from in an egress rule", policy("      egress: [{from: []}]\n"),
         "networkPolicies[0].spec.egress[0].from", "unknown key 'from'; expected one of: to, ports",
         "from"},
        {"an unknown key in a peer", policy("      ingress: [{from: [{podSelectr: {}}]}]\n"),
         in + ".from[0].podSelectr", "did you mean 'podSelector'?", "podSelectr"},
        {"an unknown key in a selector",
         policy("      podSelector: {matchLabel: {a: b}}\n"),
         "networkPolicies[0].spec.podSelector.matchLabel", "did you mean 'matchLabels'?",
         "matchLabel"},
        {"an unknown key in a port", policy("      ingress: [{ports: [{port: 80, end: 90}]}]\n"),
         in + ".ports[0].end", "unknown key 'end'", "end:"},
        {"an unknown key in an ipBlock",
         policy("      ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, exclude: []}}]}]\n"),
         in + ".from[0].ipBlock.exclude", "unknown key 'exclude'", "exclude"},
        // ipBlock.
        {"an except outside its cidr",
         policy("      ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]\n"),
         in + ".from[0].ipBlock.except[0]", "192.168.0.0/16 is outside cidr 10.0.0.0/8", "192.168"},
        {"an except that is the cidr",
         policy("      ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]\n"),
         in + ".from[0].ipBlock.except[0]", "10.0.0.0/8 is cidr itself: an except must lie strictly inside it",
         "10.0.0.0/8]"},
        {"an except larger than the cidr",
         policy("      ingress: [{from: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.0.0.0/8]}}]}]\n"),
         in + ".from[0].ipBlock.except[0]", "10.0.0.0/8 is outside cidr 10.1.0.0/16", "10.0.0.0/8"},
        {"host bits in a cidr",
         policy("      ingress: [{from: [{ipBlock: {cidr: 10.0.0.1/8}}]}]\n"),
         in + ".from[0].ipBlock.cidr", "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?",
         "10.0.0.1/8"},
        {"host bits in an except",
         policy("      ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.1/16]}}]}]\n"),
         in + ".from[0].ipBlock.except[0]", "did you mean 10.1.0.0/16?", "10.1.0.1/16"},
        {"an ipBlock without cidr", policy("      ingress: [{from: [{ipBlock: {except: []}}]}]\n"),
         in + ".from[0].ipBlock.cidr", "required key is missing", "{except"},
        {"an IPv6 cidr", policy("      ingress: [{from: [{ipBlock: {cidr: \"fd00::/8\"}}]}]\n"),
         in + ".from[0].ipBlock.cidr", "is not a CIDR", "\"fd00"},
        // Peers.
        {"an empty peer", policy("      ingress: [{from: [{}]}]\n"), in + ".from[0]",
         "a peer needs podSelector, namespaceSelector or ipBlock", "{}]}]"},
        {"ipBlock with a selector",
         policy("      ingress: [{from: [{namespaceSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]}]\n"),
         in + ".from[0].ipBlock", "ipBlock cannot be combined with podSelector or namespaceSelector",
         "ipBlock"},
        // Ports.
        {"endPort without port", policy("      ingress: [{ports: [{endPort: 90}]}]\n"),
         in + ".ports[0].endPort", "endPort without port", "90"},
        {"endPort below port", policy("      ingress: [{ports: [{port: 100, endPort: 90}]}]\n"),
         in + ".ports[0].endPort", "endPort 90 is below port 100", "90"},
        {"endPort with a named port", policy("      ingress: [{ports: [{port: http, endPort: 90}]}]\n"),
         in + ".ports[0].endPort", "endPort with a named port ('http')", "90"},
        {"endPort out of range", policy("      ingress: [{ports: [{port: 100, endPort: 65536}]}]\n"),
         in + ".ports[0].endPort", "65536 is out of range 1..65535", "65536"},
        {"a bad protocol", policy("      ingress: [{ports: [{protocol: ICMP, port: 80}]}]\n"),
         in + ".ports[0].protocol", "'ICMP' is not one of: TCP, UDP, SCTP", "ICMP"},
        {"a protocol in lowercase", policy("      ingress: [{ports: [{protocol: udp}]}]\n"),
         in + ".ports[0].protocol", "did you mean 'UDP'?", "udp"},
        {"port 0", policy("      ingress: [{ports: [{port: 0}]}]\n"), in + ".ports[0].port",
         "0 is out of range 1..65535", "0}"},
        {"a named port too long",
         policy("      ingress: [{ports: [{port: metrics-exporter}]}]\n"), in + ".ports[0].port",
         "'metrics-exporter' is not a port name: at most 15", "metrics-exporter"},
        {"a named port in capitals", policy("      ingress: [{ports: [{port: HTTP}]}]\n"),
         in + ".ports[0].port", "'HTTP' is not a port name", "HTTP"},
        {"a named port with --", policy("      ingress: [{ports: [{port: a--b}]}]\n"),
         in + ".ports[0].port", "no '--'", "a--b"},
        // Selectors.
        {"a bad selector operator",
         policy("      podSelector: {matchExpressions: [{key: app, operator: Equals, values: [a]}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].operator",
         "'Equals' is not one of: In, NotIn, Exists, DoesNotExist", "Equals"},
        {"an operator in lowercase",
         policy("      podSelector: {matchExpressions: [{key: app, operator: in, values: [a]}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].operator", "did you mean 'In'?",
         "in,"},
        {"In without values",
         policy("      podSelector: {matchExpressions: [{key: app, operator: In}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].values",
         "operator In needs at least one value", "{key: app"},
        {"NotIn with an empty list",
         policy("      podSelector: {matchExpressions: [{key: app, operator: NotIn, values: []}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].values",
         "operator NotIn needs at least one value", "[]}"},
        {"Exists with values",
         policy("      podSelector: {matchExpressions: [{key: app, operator: Exists, values: [a]}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].values",
         "operator Exists takes no values", "[a]"},
        {"an expression without operator",
         policy("      podSelector: {matchExpressions: [{key: app}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].operator",
         "required key is missing", "{key: app"},
        {"a bad label key",
         policy("      podSelector: {matchLabels: {-app: a}}\n"),
         "networkPolicies[0].spec.podSelector.matchLabels.-app", "'-app' is not a label key",
         "-app"},
        {"a label key with a bad prefix",
         policy("      podSelector: {matchLabels: {Example.com/app: a}}\n"),
         "networkPolicies[0].spec.podSelector.matchLabels.Example.com/app",
         "its prefix 'Example.com' must be a DNS subdomain", "Example"},
        {"a label key with two slashes",
         policy("      podSelector: {matchLabels: {a/b/c: a}}\n"),
         "networkPolicies[0].spec.podSelector.matchLabels.a/b/c", "at most one '/'", "a/b/c"},
        {"a label value too long",
         policy("      podSelector: {matchLabels: {app: " + std::string(64, 'a') + "}}\n"),
         "networkPolicies[0].spec.podSelector.matchLabels.app", "is not a label value", "aaaa"},
        {"a bad expression key",
         policy("      podSelector: {matchExpressions: [{key: 'a b', operator: Exists}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].key", "'a b' is not a label key",
         "'a b'"},
        {"a bad expression value",
         policy("      podSelector: {matchExpressions: [{key: a, operator: In, values: [x_]}]}\n"),
         "networkPolicies[0].spec.podSelector.matchExpressions[0].values[0]",
         "'x_' is not a label value", "x_"},
        // policyTypes.
        {"an unknown policy type", policy("      policyTypes: [ingress]\n"),
         "networkPolicies[0].spec.policyTypes[0]", "'ingress' is not one of: Ingress, Egress; did you mean 'Ingress'?",
         "ingress"},
        {"a policy type twice", policy("      policyTypes: [Egress, Egress]\n"),
         "networkPolicies[0].spec.policyTypes[1]", "duplicate policy type 'Egress'", "Egress]"},
        // The manifest around.
        {"another API version",
         node_yaml + "networkPolicies:\n  - {apiVersion: extensions/v1beta1, kind: NetworkPolicy, "
                     "metadata: {name: a}, spec: {}}\n",
         "networkPolicies[0].apiVersion", "'extensions/v1beta1' is not the API version of a NetworkPolicy",
         "extensions"},
        {"a Service among policies",
         node_yaml + "networkPolicies:\n  - {apiVersion: networking.k8s.io/v1, kind: Service, "
                     "metadata: {name: a}, spec: {}}\n",
         "networkPolicies[0].kind", "expected kind NetworkPolicy, got 'Service'; Services go in services",
         "Service"},
        {"no spec",
         node_yaml + "networkPolicies:\n  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, "
                     "metadata: {name: a}}\n",
         "networkPolicies[0].spec", "required key is missing", "{apiVersion"},
        {"a name that is not a DNS subdomain", policy("      podSelector: {}\n", "{name: Web_1}"),
         "networkPolicies[0].metadata.name", "'Web_1' is not a valid name", "Web_1"},
        {"two policies of one name",
         policy("      podSelector: {}\n") +
             "  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: p, "
             "namespace: shop}, spec: {}}\n",
         "networkPolicies[1].metadata.name",
         "duplicate NetworkPolicy shop/p (also networkPolicies[0].metadata.name)",
         "p, namespace: shop}, spec"},
    };
    for (const row& rr : rows) {
        INFO(rr.what);
        INFO(rr.text);
        require_only_error_at(parse(rr.text), rr.text, rr.path, rr.fragment, rr.marker);
    }
    // A peer list with a good peer is fine (the rows' template).
    CHECK(parse(policy("      ingress:\n" + ok_peer)).ok());
}

TEST_CASE("pods: labels and containerPorts", "[config][policy]") {
    SECTION("parsed") {
        parse_result r = parse(node_yaml + R"(pods:
  - name: web
    ip: 172.25.2.5
    port: net_null1
    labels: {app: web, app.kubernetes.io/version: "1.2", empty: ""}
    containerPorts:
      - {name: http, containerPort: 8080}
      - {name: dns, containerPort: 53, protocol: UDP}
      - {name: dns, containerPort: 53, protocol: TCP}
      - {containerPort: 9000, protocol: SCTP}
  - {name: db, ip: 172.25.3.5}
)");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        const pod& p = r.cfg.pods[0];
        CHECK(p.labels == label_map{{"app", "web"}, {"app.kubernetes.io/version", "1.2"}, {"empty", ""}});
        CHECK(p.container_ports == std::vector<container_port>{{"http", proto_tcp, 8080},
                                                               {"dns", proto_udp, 53},
                                                               {"dns", proto_tcp, 53},
                                                               {"", proto_sctp, 9000}});
        CHECK(r.cfg.pods[1].labels.empty());
        CHECK(r.cfg.pods[1].container_ports.empty());
    }
    struct row {
        const char* what;
        std::string item;
        const char* path;
        const char* fragment;
        const char* marker;
    };
    const row rows[] = {
        {"a name twice for one protocol",
         "{name: web, ip: 172.25.3.5, containerPorts: [{name: http, containerPort: 80}, {name: http, "
         "containerPort: 81, protocol: TCP}]}",
         "pods[0].containerPorts[1].name", "duplicate port name 'http' for TCP (also pods[0].containerPorts[0].name)",
         "http, containerPort: 81"},
        {"a bad port name", "{name: web, ip: 172.25.3.5, containerPorts: [{name: '8080', containerPort: 80}]}",
         "pods[0].containerPorts[0].name", "'8080' is not a port name", "'8080'"},
        {"no containerPort", "{name: web, ip: 172.25.3.5, containerPorts: [{name: http}]}",
         "pods[0].containerPorts[0].containerPort", "required key is missing", "{name: http"},
        {"containerPort out of range",
         "{name: web, ip: 172.25.3.5, containerPorts: [{containerPort: 70000}]}",
         "pods[0].containerPorts[0].containerPort", "70000 is out of range 1..65535", "70000"},
        {"a hostPort", "{name: web, ip: 172.25.3.5, containerPorts: [{containerPort: 80, hostPort: 80}]}",
         "pods[0].containerPorts[0].hostPort", "unknown key 'hostPort'", "hostPort"},
        {"a bad label value", "{name: web, ip: 172.25.3.5, labels: {app: 'a b'}}", "pods[0].labels.app",
         "'a b' is not a label value", "'a b'"},
        {"a label that is not a string", "{name: web, ip: 172.25.3.5, labels: {app: [a]}}",
         "pods[0].labels.app", "expected a string, got a list", "[a]"},
        {"labels that are not a map", "{name: web, ip: 172.25.3.5, labels: [app]}", "pods[0].labels",
         "expected a map, got a list", "[app]"},
        {"a misspelt key", "{name: web, ip: 172.25.3.5, label: {app: a}}", "pods[0].label",
         "did you mean 'labels'?", "label:"},
    };
    for (const row& rr : rows) {
        INFO(rr.what);
        const std::string text = node_yaml + "pods:\n  - " + rr.item + "\n";
        require_only_error_at(parse(text), text, rr.path, rr.fragment, rr.marker);
    }
}

TEST_CASE("namespaces: compact or manifest, labels, unique names", "[config][policy]") {
    SECTION("parsed; the automatic label may be written, and is not stored") {
        parse_result r = parse(node_yaml + R"(namespaces:
  - {name: shop, labels: {team: a}}
  - name: plain
  - apiVersion: v1
    kind: Namespace
    metadata:
      name: payments
      labels: {team: b, kubernetes.io/metadata.name: payments}
      uid: x
    spec: {finalizers: [kubernetes]}
    status: {phase: Active}
)");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        CHECK(r.cfg.namespaces == std::vector<namespace_def>{{"shop", {{"team", "a"}}},
                                                             {"plain", {}},
                                                             {"payments", {{"team", "b"}}}});
        CHECK(r.cfg.namespace_origins[2] == object_origin{"namespaces[2]", true});
    }
    struct row {
        const char* what;
        std::string items;
        const char* path;
        const char* fragment;
        const char* marker;
    };
    const row rows[] = {
        {"a name twice", "  - {name: shop}\n  - {name: shop, labels: {a: b}}\n", "namespaces[1].name",
         "duplicate namespace 'shop' (also namespaces[0].name)", "shop, labels"},
        {"a name with dots", "  - {name: a.b}\n", "namespaces[0].name", "'a.b' is not a valid name", "a.b"},
        {"the automatic label with another value",
         "  - {name: shop, labels: {kubernetes.io/metadata.name: other}}\n",
         "namespaces[0].labels.kubernetes.io/metadata.name",
         "'other' is not the namespace's name 'shop'", "other"},
        {"a manifest's name twice",
         "  - {name: shop}\n  - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n",
         "namespaces[1].metadata.name", "duplicate namespace 'shop' (also namespaces[0].name)",
         "shop}}"},
        {"a manifest of another kind", "  - {apiVersion: v1, kind: Pod, metadata: {name: shop}}\n",
         "namespaces[0].kind", "expected kind Namespace, got 'Pod'", "Pod"},
        {"an unknown key", "  - {name: shop, label: {}}\n", "namespaces[0].label",
         "did you mean 'labels'?", "label:"},
    };
    for (const row& rr : rows) {
        INFO(rr.what);
        const std::string text = node_yaml + "namespaces:\n" + rr.items;
        require_only_error_at(parse(text), text, rr.path, rr.fragment, rr.marker);
    }
}

TEST_CASE("policies: every error of a bad file, top to bottom", "[config][policy]") {
    const std::string file = TWILL_TEST_DATA "/bad/policies.yaml";
    parse_result r = load_file(file);
    INFO(all_errors(r));
    const std::vector<std::string> want = {
        "policy.cutEstablished: 'yes' is not a boolean: write true or false (" + file + ":6:26)",
        "namespaces[0].labels.team: '-shop' is not a label value: empty, or at most 63 letters, "
        "digits, '-', '_' or '.', starting and ending with a letter or digit (" + file + ":8:33)",
        "namespaces[1].name: duplicate namespace 'shop' (also namespaces[0].name) (" + file + ":9:12)",
        "pods[0].containerPorts[1].name: duplicate port name 'http' for TCP (also "
        "pods[0].containerPorts[0].name) (" + file + ":12:65)",
        "networkPolicies[0].spec.podSelector.matchExpressions[0].operator: 'Equals' is not one of: "
        "In, NotIn, Exists, DoesNotExist (" + file + ":18:61)",
        "networkPolicies[0].spec.ingress[0].from[0].ipBlock.except[0]: 192.168.0.0/16 is outside "
        "cidr 10.0.0.0/8: an except must lie strictly inside it (" + file + ":21:52)",
        "networkPolicies[0].spec.ingress[0].ports[0].protocol: 'ICMP' is not one of: TCP, UDP, "
        "SCTP (" + file + ":23:26)",
        "networkPolicies[0].spec.ingress[0].ports[1].endPort: endPort without port: give the "
        "range's first port in port (" + file + ":24:25)",
        "networkPolicies[0].spec.ingress[0].ports[2].endPort: endPort 90 is below port 100 (" +
            file + ":25:36)",
        "networkPolicies[0].spec.egres: unknown key 'egres'; did you mean 'egress'? (" + file +
            ":26:7)",
    };
    std::vector<std::string> got;
    for (const error& e : r.errors) {
        got.push_back(to_string(e));
    }
    CHECK(got == want);
}

TEST_CASE("objects to apply: namespaces, policies, and their manifests in a List",
          "[config][policy]") {
    auto objects = [](const std::string& text) { return parse_objects_yaml(text, "t.yaml"); };
    const std::string np = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
)";
    SECTION("the objects' lists") {
        parse_result r = objects(
            "namespaces: [{name: shop, labels: {team: a}}]\n"
            "pods: [{name: web, namespace: shop, ip: 172.25.3.5, labels: {app: web}, "
            "containerPorts: [{name: http, containerPort: 80}]}]\n"
            "networkPolicies:\n  - " +
            std::string("{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: a}, spec: {}}\n"));
        INFO(all_errors(r));
        REQUIRE(r.ok());
        CHECK(r.cfg.namespaces.size() == 1);
        CHECK(r.cfg.pods[0].labels == label_map{{"app", "web"}});
        CHECK(r.cfg.network_policies.size() == 1);
        parse_result bad = objects("policy: {cutEstablished: false}\n");
        REQUIRE(bad.errors.size() == 1);
        CHECK_THAT(to_string(bad.errors[0]),
                   Catch::StartsWith("policy: unknown key 'policy'; expected one of: nodes, pods, "
                                     "services, endpointSlices, namespaces, networkPolicies"));
    }
    SECTION("one NetworkPolicy") {
        parse_result r = objects(np);
        INFO(all_errors(r));
        REQUIRE(r.ok());
        REQUIRE(r.cfg.network_policies.size() == 1);
        CHECK(r.cfg.network_policies[0].egress);
        CHECK(r.cfg.policy_origins[0] == object_origin{"", true});
        CHECK(r.cfg.positions.at("spec.policyTypes").line == 4);
    }
    SECTION("one Namespace") {
        parse_result r = objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n");
        INFO(all_errors(r));
        REQUIRE(r.ok());
        CHECK(r.cfg.namespaces == std::vector<namespace_def>{{"shop", {{"team", "a"}}}});
    }
    SECTION("a List mixing them with a Service") {
        const std::string text = R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny, namespace: shop}
  spec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 79}]}]}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}
- {apiVersion: v1, kind: Pod, metadata: {name: a}}
)";
        parse_result r = objects(text);
        INFO(all_errors(r));
        REQUIRE(r.errors.size() == 2);
        CHECK(to_string(r.errors[0]) == "items[1].spec.ingress[0].ports[0].endPort: endPort 79 is below port 80 (t.yaml:10:66)");
        CHECK(to_string(r.errors[1]) ==
              "items[3].kind: kind 'Pod' cannot be applied: expected Service, EndpointSlice, "
              "NetworkPolicy or Namespace (t.yaml:15:26)");
        CHECK(r.cfg.namespaces.size() == 1);
        CHECK(r.cfg.namespace_origins[0] == object_origin{"items[0]", true});
        CHECK(r.cfg.policy_origins[0] == object_origin{"items[1]", true});
        CHECK(r.cfg.services.size() == 1);
    }
}
