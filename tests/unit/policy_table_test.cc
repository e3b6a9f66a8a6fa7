// The table the workers read, built from a spec directly: lookups in both matrix widths,
// and specs that would index outside the tables refused whole.
#include <catch2/catch.hpp>

#include <string>

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
}
