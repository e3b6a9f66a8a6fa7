// The NetworkPolicy compiler on hand-written cases: selectors, namespaces, peers, ipBlocks,
// ports, isolation, and the compiled tables' shape. Verdicts go through the lookups the
// datapath does (tests/unit/policy_helpers.h).
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/unit/policy_helpers.h"

using namespace twill;
using namespace twill::test::netpol;
using config::label_requirement;
using op = config::label_requirement::op;

namespace {

constexpr uint8_t tcp_p = config::proto_tcp;
constexpr uint8_t udp_p = config::proto_udp;

config::label_selector expr(std::string key, op o, std::vector<std::string> values = {}) {
    return {{}, {label_requirement{std::move(key), o, std::move(values)}}};
}

}  // namespace

TEST_CASE("policy: selectors, every operator and the empty selector", "[policy]") {
    const config::label_map web{{"app", "web"}, {"tier", "front"}};
    const config::label_map bare{};
    struct row {
        const char* what;
        config::label_selector sel;
        bool on_web, on_bare;
    };
    const row rows[] = {
        {"empty selects everything", {}, true, true},
        {"matchLabels equal", match({{"app", "web"}}), true, false},
        {"matchLabels other value", match({{"app", "db"}}), false, false},
        {"matchLabels all must hold", match({{"app", "web"}, {"tier", "back"}}), false, false},
        {"In listed", expr("app", op::in, {"db", "web"}), true, false},
        {"In not listed", expr("app", op::in, {"db"}), false, false},
        {"NotIn listed", expr("app", op::not_in, {"web"}), false, true},
        {"NotIn other value", expr("app", op::not_in, {"db"}), true, true},
        {"Exists", expr("tier", op::exists), true, false},
        {"DoesNotExist", expr("tier", op::does_not_exist), false, true},
        {"DoesNotExist absent key", expr("zone", op::does_not_exist), true, true},
    };
    for (const auto& r : rows) {
        INFO(r.what);
        CHECK(policy::selects(r.sel, web) == r.on_web);
        CHECK(policy::selects(r.sel, bare) == r.on_bare);
    }
    auto both = match({{"app", "web"}});
    both.match_expressions.push_back({"tier", op::not_in, {"front"}});
    CHECK_FALSE(policy::selects(both, web));  // matchLabels AND matchExpressions
}

TEST_CASE("policy: namespaces carry their name label, named ones without a definition too",
          "[policy]") {
    const std::vector<config::namespace_def> defs{
        {"prod", {{"team", "x"}, {"kubernetes.io/metadata.name", "spoofed"}}}};
    const std::vector<config::pod> pods{pod("p", "dev", "10.0.0.1")};
    const std::vector<config::network_policy> pols{ingress_policy("deny", "qa", {}, {})};
    auto l = policy::namespace_labels(defs, pods, pols);
    REQUIRE(l.size() == 3);
    CHECK(l["prod"] == config::label_map{{"kubernetes.io/metadata.name", "prod"}, {"team", "x"}});
    CHECK(l["dev"] == config::label_map{{"kubernetes.io/metadata.name", "dev"}});
    CHECK(l["qa"] == config::label_map{{"kubernetes.io/metadata.name", "qa"}});
}

TEST_CASE("policy: unselected pods stay open; deny-all gets a slot and no entries", "[policy]") {
    const std::vector<config::pod> pods{
        pod("a", "default", "10.0.0.1", {{"app", "a"}}),
        pod("b", "default", "10.0.0.2", {{"app", "b"}}),
        pod("r", "default", "10.0.0.3", {{"app", "a"}}, false),  // remote: never a slot
    };
    const std::vector<config::network_policy> pols{
        ingress_policy("deny", "default", match({{"app", "a"}}), {})};
    auto c = policy::compile({}, pods, pols);
    REQUIRE(c.slots.size() == 2);
    CHECK(c.slots[1] == policy::slot_ref{"default", "a", false, {"deny"}});
    CHECK(c.infos[0] == policy::address_info{0, 0, 0});
    CHECK(info(c, ip("10.0.0.1")).ingress_slot == 1);
    CHECK(info(c, ip("10.0.0.1")).egress_slot == 0);
    CHECK(info(c, ip("10.0.0.2")) == policy::address_info{});
    CHECK(info(c, ip("10.0.0.3")) == policy::address_info{});
    CHECK(c.allow.empty());
    CHECK(c.classes == 1);
    CHECK_FALSE(ingress_ok(c, ip("10.0.0.2"), ip("10.0.0.1"), tcp_p, 80));
    CHECK(ingress_ok(c, ip("10.0.0.1"), ip("10.0.0.2"), tcp_p, 80));
    CHECK(egress_ok(c, ip("10.0.0.1"), ip("10.0.0.2"), tcp_p, 80));
}

TEST_CASE("policy: egress-only isolates egress alone", "[policy]") {
    const std::vector<config::pod> pods{pod("a", "default", "10.0.0.1"),
                                        pod("b", "default", "10.0.0.2", {{"app", "b"}})};
    const std::vector<config::network_policy> pols{egress_policy(
        "out", "default", match({}), {{.peers = {pods_peer({{"app", "b"}})}, .ports = {tcp(53)}}})};
    auto c = policy::compile({}, pods, pols);
    REQUIRE(c.slots.size() == 3);  // a and b, egress each
    CHECK(info(c, ip("10.0.0.1")).ingress_slot == 0);
    CHECK(info(c, ip("10.0.0.1")).egress_slot != 0);
    CHECK(egress_ok(c, ip("10.0.0.1"), ip("10.0.0.2"), tcp_p, 53));
    CHECK_FALSE(egress_ok(c, ip("10.0.0.1"), ip("10.0.0.2"), tcp_p, 54));
    CHECK_FALSE(egress_ok(c, ip("10.0.0.1"), ip("10.0.0.2"), udp_p, 53));
    CHECK_FALSE(egress_ok(c, ip("10.0.0.2"), ip("10.0.0.1"), tcp_p, 53));  // a is not app=b
    CHECK(ingress_ok(c, ip("192.0.2.1"), ip("10.0.0.1"), tcp_p, 1));
    CHECK(c.rules == std::vector<policy::rule_ref>{{"default", "out", true, 0}});
}

TEST_CASE("policy: podSelector and namespaceSelector in one peer (AND) or two (OR)", "[policy]") {
    const std::vector<config::namespace_def> defs{{"x", {{"team", "x"}}}, {"y", {}}};
    const std::vector<config::pod> pods{
        pod("target", "y", "10.0.0.1", {{"role", "target"}}),
        pod("xa", "x", "10.0.0.2", {{"app", "a"}}),  // in x and app=a
        pod("xb", "x", "10.0.0.3", {{"app", "b"}}),  // in x only
        pod("ya", "y", "10.0.0.4", {{"app", "a"}}),  // app=a only (policy's namespace)
        pod("za", "z", "10.0.0.5", {{"app", "a"}}),  // app=a in another namespace
    };
    config::policy_peer both = ns_peer({{"team", "x"}});
    both.pod_selector = match({{"app", "a"}});
    auto check = [&](const std::vector<config::policy_peer>& peers, std::vector<bool> want) {
        auto c = policy::compile(
            defs, pods,
            {ingress_policy("p", "y", match({{"role", "target"}}), {{.peers = peers}})});
        for (int i = 0; i < 4; ++i) {
            INFO(pods[i + 1].ns << "/" << pods[i + 1].name);
            CHECK(ingress_ok(c, pods[i + 1].ip, ip("10.0.0.1"), tcp_p, 80) == want[i]);
        }
        CHECK_FALSE(ingress_ok(c, ip("192.0.2.1"), ip("10.0.0.1"), tcp_p, 80));
    };
    SECTION("AND") {
        check({both}, {true, false, false, false});
    }
    SECTION("OR") {
        check({ns_peer({{"team", "x"}}), pods_peer({{"app", "a"}})}, {true, true, true, false});
    }
    SECTION("namespaceSelector by the automatic label") {
        check({ns_peer({{"kubernetes.io/metadata.name", "z"}})}, {false, false, false, true});
    }
}

TEST_CASE("policy: ipBlock with except: classes by longest prefix", "[policy]") {
    const std::vector<config::pod> pods{
        pod("t", "default", "10.1.0.1", {{"role", "t"}}),
        pod("in", "default", "10.2.0.9"),   // a pod inside the cidr: ipBlock applies
        pod("out", "default", "10.2.1.9"),  // a pod inside the except
    };
    const std::vector<config::network_policy> pols{
        ingress_policy("p", "default", match({{"role", "t"}}),
                       {{.peers = {block_peer("10.2.0.0/16", {"10.2.1.0/24", "10.2.2.128/25"})}}})};
    auto c = policy::compile({}, pods, pols);
    const ip4_addr t = ip("10.1.0.1");
    struct row {
        const char* src;
        bool allowed;
    };
    for (auto [src, allowed] :
         {row{"10.2.0.0", true}, row{"10.2.255.255", true}, row{"10.2.0.9", true},
          row{"10.2.1.0", false}, row{"10.2.1.9", false}, row{"10.2.1.255", false},
          row{"10.2.2.127", true}, row{"10.2.2.128", false}, row{"10.1.255.255", false},
          row{"10.3.0.0", false}, row{"0.0.0.0", false}}) {
        INFO(src);
        CHECK(ingress_ok(c, ip(src), t, tcp_p, 443) == allowed);
        CHECK((info(c, ip(src)).peer_class != 0) == allowed);
    }
    // Inside the cidr, pod or not, is one class; the excepts and outside are class 0.
    CHECK(info(c, ip("10.2.0.9")).peer_class == info(c, ip("10.2.3.3")).peer_class);
    CHECK(c.classes == 2);
}

TEST_CASE("policy: named ports resolve per pod, ingress at the target, egress at the peer",
          "[policy]") {
    const config::container_port http80{"http", tcp_p, 80}, http8080{"http", tcp_p, 8080},
        dns{"dns", udp_p, 53};
    const std::vector<config::pod> pods{
        pod("a", "default", "10.0.0.1", {{"app", "srv"}}, true, {http80}),
        pod("b", "default", "10.0.0.2", {{"app", "srv"}}, true, {http8080, dns}),
        pod("c", "default", "10.0.0.3", {{"app", "cli"}}),
        pod("d", "default", "10.0.0.4", {{"app", "srv"}}, false, {http8080}),
    };
    SECTION("ingress") {
        auto c = policy::compile(
            {}, pods,
            {ingress_policy("in", "default", match({{"app", "srv"}}),
                            {{.ports = {named("http"), named("dns", udp_p), named("nope")}}})});
        CHECK(ingress_ok(c, ip("10.0.0.3"), ip("10.0.0.1"), tcp_p, 80));
        CHECK_FALSE(ingress_ok(c, ip("10.0.0.3"), ip("10.0.0.1"), tcp_p, 8080));
        CHECK_FALSE(ingress_ok(c, ip("10.0.0.3"), ip("10.0.0.1"), udp_p, 53));
        CHECK(ingress_ok(c, ip("10.0.0.3"), ip("10.0.0.2"), tcp_p, 8080));
        CHECK(ingress_ok(c, ip("192.0.2.1"), ip("10.0.0.2"), udp_p, 53));
        CHECK_FALSE(ingress_ok(c, ip("10.0.0.3"), ip("10.0.0.2"), tcp_p, 80));
        CHECK_FALSE(ingress_ok(c, ip("10.0.0.3"), ip("10.0.0.2"), tcp_p, 53));
    }
    SECTION("egress, to a selected peer and to any peer") {
        for (bool any_peer : {false, true}) {
            INFO("empty peers: " << any_peer);
            config::policy_rule r{.ports = {named("http"), tcp(22)}};
            if (!any_peer) {
                r.peers = {pods_peer({{"app", "srv"}})};
            }
            auto c = policy::compile({}, pods, {egress_policy("out", "default", {}, {r})});
            const ip4_addr cli = ip("10.0.0.3");
            CHECK(egress_ok(c, cli, ip("10.0.0.1"), tcp_p, 80));
            CHECK_FALSE(egress_ok(c, cli, ip("10.0.0.1"), tcp_p, 8080));
            CHECK(egress_ok(c, cli, ip("10.0.0.2"), tcp_p, 8080));
            CHECK(egress_ok(c, cli, ip("10.0.0.4"), tcp_p, 8080));  // a remote pod's ports
            CHECK_FALSE(egress_ok(c, cli, ip("10.0.0.2"), tcp_p, 80));
            CHECK(egress_ok(c, cli, ip("10.0.0.2"), tcp_p, 22));
            CHECK(egress_ok(c, cli, ip("192.0.2.1"), tcp_p, 22) == any_peer);
            CHECK_FALSE(egress_ok(c, cli, ip("192.0.2.1"), tcp_p, 80));  // not a pod: no name
            // 10.0.0.2 and 10.0.0.4 resolve http alike: one class.
            CHECK(info(c, ip("10.0.0.2")).peer_class == info(c, ip("10.0.0.4")).peer_class);
            CHECK(info(c, ip("10.0.0.1")).peer_class != info(c, ip("10.0.0.2")).peer_class);
        }
    }
}

TEST_CASE("policy: endPort ranges and a protocol without a port", "[policy]") {
    const std::vector<config::pod> pods{pod("t", "default", "10.0.0.1")};
    config::policy_port udp_all{.protocol = udp_p};
    auto c = policy::compile(
        {}, pods, {ingress_policy("p", "default", {}, {{.ports = {tcp(32000, 32767), udp_all}}})});
    const ip4_addr src = ip("192.0.2.1"), t = ip("10.0.0.1");
    CHECK_FALSE(ingress_ok(c, src, t, tcp_p, 31999));
    CHECK(ingress_ok(c, src, t, tcp_p, 32000));
    CHECK(ingress_ok(c, src, t, tcp_p, 32767));
    CHECK_FALSE(ingress_ok(c, src, t, tcp_p, 32768));
    CHECK(ingress_ok(c, src, t, udp_p, 1));
    CHECK(ingress_ok(c, src, t, udp_p, 65535));
    CHECK_FALSE(ingress_ok(c, src, t, config::proto_sctp, 32000));
    REQUIRE(c.allow.size() == 1);
    CHECK(c.allow.begin()->first == std::pair(1u, policy::any_class));
    CHECK(c.allow.begin()->second ==
          std::vector<policy::port_range>{{tcp_p, 32000, 32767, 0}, {udp_p, 0, 65535, 0}});
}

TEST_CASE("policy: policies add up; a class entry holds the slot's any-peer ranges", "[policy]") {
    const std::vector<config::pod> pods{pod("t", "default", "10.0.0.1", {{"app", "t"}}),
                                        pod("c", "default", "10.0.0.2", {{"app", "c"}})};
    const std::vector<config::network_policy> pols{
        ingress_policy("dns", "default", {}, {{.ports = {{.protocol = udp_p, .port = 53}}}}),
        ingress_policy("web", "default", match({{"app", "t"}}),
                       {{.peers = {pods_peer({{"app", "c"}})}, .ports = {tcp(80)}}}),
    };
    auto c = policy::compile({}, pods, pols);
    const ip4_addr t = ip("10.0.0.1"), cli = ip("10.0.0.2"), other = ip("192.0.2.1");
    CHECK(ingress_ok(c, cli, t, tcp_p, 80));
    CHECK(ingress_ok(c, cli, t, udp_p, 53));
    CHECK(ingress_ok(c, other, t, udp_p, 53));
    CHECK_FALSE(ingress_ok(c, other, t, tcp_p, 80));
    const uint32_t slot = info(c, t).ingress_slot;
    REQUIRE(slot != 0);
    CHECK(c.slots[slot].policies == std::vector<std::string>{"dns", "web"});
    const uint32_t cls = info(c, cli).peer_class;
    REQUIRE(c.allow.count({slot, cls}) == 1);
    CHECK(c.allow.at({slot, cls}) ==
          std::vector<policy::port_range>{{tcp_p, 80, 80, 1}, {udp_p, 53, 53, 0}});
    CHECK(c.allow.at({slot, policy::any_class}) ==
          std::vector<policy::port_range>{{udp_p, 53, 53, 0}});
    CHECK(c.rules == std::vector<policy::rule_ref>{{"default", "dns", false, 0},
                                                   {"default", "web", false, 0}});
}

TEST_CASE("policy: the same input compiles the same, whatever its order", "[policy]") {
    const std::vector<config::namespace_def> defs{{"a", {{"t", "1"}}}, {"b", {{"t", "2"}}}};
    std::vector<config::pod> pods{
        pod("p1", "a", "10.0.0.1", {{"app", "x"}}, true, {{"http", tcp_p, 80}}),
        pod("p2", "b", "10.0.0.2", {{"app", "y"}}, true, {{"http", tcp_p, 81}}),
        pod("p3", "a", "10.0.0.3", {{"app", "y"}}, false),
        pod("p4", "b", "10.0.0.4", {}, true),
    };
    std::vector<config::network_policy> pols{
        ingress_policy("i1", "a", {},
                       {{.peers = {ns_peer({{"t", "2"}})}, .ports = {named("http")}}}),
        egress_policy(
            "e1", "b", match({{"app", "y"}}),
            {{.peers = {block_peer("10.0.0.0/24", {"10.0.0.2/31"})}}, {.ports = {named("http")}}}),
        ingress_policy("i2", "b", {}, {{.peers = {pods_peer({})}}}),
    };
    auto first = policy::compile(defs, pods, pols);
    CHECK(policy::compile(defs, pods, pols) == first);
    std::reverse(pods.begin(), pods.end());
    std::rotate(pols.begin(), pols.begin() + 1, pols.end());
    auto second = policy::compile({defs[1], defs[0]}, pods, pols);
    CHECK(second == first);
}
