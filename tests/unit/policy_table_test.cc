// The table the workers read, built from a spec directly: lookups in both matrix widths,
// and specs that would index outside the tables refused whole.
#include <catch2/catch.hpp>

#include <string>
#include <thread>

#include "dataplane/policy/policy.h"
#include "dataplane/policy/policy_table.h"

using namespace twill;

namespace {

constexpr uint8_t tcp = 6, udp = 17;

// Slot 1 and 2 isolated; class c's list on slot s allows TCP port 1000 + c (+ s - 1), by rule
// c % rules. `classes` large enough gives more distinct lists than 16 bits index.
policy_spec many_lists(uint32_t classes, uint32_t rules) {
    policy_spec spec;
    spec.infos = {{}, {1, 1, 2}};
    spec.prefixes = {{{ip4_addr::from_octets(10, 0, 0, 1), 32}, 1}};
    spec.slots = 3;
    spec.classes = classes;
    spec.rules = rules;
    for (uint32_t s = 1; s <= 2; ++s) {
        for (uint32_t c = 0; c < classes; ++c) {
            const auto port = uint16_t(1000 + c + s - 1);
            spec.allow.push_back({{s, c}, {{tcp, port, port, c % rules}}});
        }
        spec.allow.push_back({{s, policy_any_class}, {{udp, 53, 53, 0}}});
    }
    return spec;
}

}  // namespace

TEST_CASE("policy table: lookups with 16-bit and 32-bit matrix cells", "[policy]") {
    for (uint32_t classes : {100u, 40000u}) {  // 201 and 80001 distinct lists
        INFO(classes);
        std::string error;
        auto t = policy_table::build(many_lists(classes, 7), 1, error);
        REQUIRE(t != nullptr);
        CHECK(t->wide_cells() == (classes == 40000));
        CHECK(t->columns() == classes);  // no two alike: class c is column c
        CHECK(t->distinct_lists() == 2 * classes + 1);
        CHECK(t->profiles() == 3);  // the empty one and one per slot
        CHECK(t->info(ip4_addr::from_octets(10, 0, 0, 1)).egress_slot == 2);
        CHECK(t->info(ip4_addr::from_octets(10, 0, 0, 2)).peer_class == 0);
        for (uint32_t c : {0u, 1u, classes / 2, classes - 1}) {
            const auto port = uint16_t(1000 + c);
            CHECK(t->allows(1, c, tcp, port) == int32_t(c % 7));
            CHECK(t->allows(1, c, tcp, uint16_t(port + 1)) == policy_table::denied);
            CHECK(t->allows(2, c, tcp, uint16_t(port + 1)) == int32_t(c % 7));
            CHECK(t->allows(2, c, udp, uint16_t(port + 1)) == policy_table::denied);
        }
    }
}

TEST_CASE("policy table: shadowed ranges left out, the first match still counted; classes "
          "alike share a column",
          "[policy]") {
    // Slot 1: class 0 gets every TCP port by rule 3 ahead of port 80 by rule 1 (shadowed)
    // and UDP 53 by rule 2; class 1 likewise written with the shadowed range too; class 2
    // only UDP 53.
    policy_spec spec;
    spec.infos = {{}, {0, 1, 0}, {1, 0, 0}, {2, 0, 0}};
    spec.prefixes = {{{ip4_addr::from_octets(10, 0, 0, 1), 32}, 1},
                     {{ip4_addr::from_octets(10, 0, 0, 2), 32}, 2},
                     {{ip4_addr::from_octets(10, 0, 0, 3), 32}, 3}};
    spec.slots = 2;
    spec.classes = 3;
    spec.rules = 4;
    spec.allow = {{{1, 0}, {{tcp, 0, 65535, 3}, {tcp, 80, 80, 1}, {udp, 53, 53, 2}}},
                  {{1, 1}, {{tcp, 0, 65535, 3}, {udp, 53, 53, 2}}},
                  {{1, 2}, {{udp, 53, 53, 2}}}};
    std::string error;
    auto t = policy_table::build(spec, 1, error);
    REQUIRE(t != nullptr);
    CHECK(t->distinct_lists() == 2);  // the first two are one list once rule 1 is gone
    CHECK(t->ranges() == 3);
    CHECK(t->columns() == 2);  // classes 0 and 1 share a column
    const ip4_addr pod = ip4_addr::from_octets(10, 0, 0, 1);
    for (uint8_t last : {2, 3}) {
        const policy_address& peer = t->info(ip4_addr::from_octets(10, 0, 0, last));
        CHECK(t->allows(t->info(pod).ingress_slot, peer.peer_class, udp, 53) == 2);
        CHECK(t->allows(t->info(pod).ingress_slot, peer.peer_class, tcp, 80) == (last == 2 ? 3 : -1));
    }
    CHECK(policy_allows(*t, ip4_addr::from_octets(10, 0, 0, 2), pod, tcp, 80));
    CHECK_FALSE(policy_allows(*t, ip4_addr::from_octets(10, 0, 0, 3), pod, tcp, 80));
    CHECK(t->rule_hits(3) == 1);  // the shadowing rule is the one that allowed it
    CHECK(t->rule_hits(1) == 0);
}

TEST_CASE("policy table: each worker counts in its own set, the reader sums them", "[policy]") {
    std::string error;
    policy_spec spec = many_lists(4, 9);
    spec.workers = 3;
    auto t = policy_table::build(spec, 1, error);
    REQUIRE(t != nullptr);
    CHECK(t->workers() == 3);
    // Two threads adding to one rule at once lose nothing: each has its own counter.
    std::thread a([&] {
        for (int i = 0; i < 100000; ++i) {
            t->count_rule(0, 8);
            t->count_denied(0, 1);
        }
    });
    std::thread b([&] {
        for (int i = 0; i < 100000; ++i) {
            t->count_rule(1, 8);
            t->count_cut(1, 1);
        }
    });
    a.join();
    b.join();
    t->count_rule(2, 8);
    t->count_rule(2, 0);
    CHECK(t->rule_hits(8) == 200001);
    CHECK(t->rule_hits(0) == 1);
    CHECK(t->rule_hits(7) == 0);
    CHECK(t->slot_denied(1) == 100000);
    CHECK(t->slot_cut(1) == 100000);
    CHECK(t->slot_denied(0) == 0);
}

TEST_CASE("policy table: a spec that indexes outside its tables is refused", "[policy]") {
    std::string error;
    policy_spec spec = many_lists(4, 2);
    spec.allow[0].second[0].rule = 2;
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: a range of a rule that is not compiled");
    spec = many_lists(4, 2);
    spec.infos[1].ingress_slot = 3;
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: an address info outside the compiled classes or slots");
    spec = many_lists(4, 2);
    spec.allow.push_back({{3, 0}, {}});
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: an allow list outside the compiled slots or classes");
    spec = many_lists(4, 2);
    spec.allow.push_back({{1, 4}, {}});
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: an allow list outside the compiled slots or classes");
    spec = many_lists(4, 2);
    spec.infos[1].peer_class = 4;
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: an address info outside the compiled classes or slots");
    spec = many_lists(4, 2);
    spec.rules = (1u << 24) + 1;
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: 16777217 rules is more than this build's tables take (16777216)");
    spec = many_lists(4, 2);
    spec.slots = 1u << 14;
    spec.classes = 1u << 13;
    CHECK(policy_table::build(spec, 1, error) == nullptr);
    CHECK(error == "policy: 16383 isolated pod directions x 8192 address classes is more than this "
                   "build's matrix takes");
}
