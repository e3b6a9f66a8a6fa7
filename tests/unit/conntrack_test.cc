// The connection table on its own: both keys of a connection find it, erasing frees
// everything, probe chains stay bounded as connections come and go, sweeping expires.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "dataplane/service/conntrack.h"

using namespace twill;

namespace {

flow_key key(uint32_t i, bool reply) {
    flow_key k;
    k.src = reply ? 0x0a000001u + (i % 7) : 0xac190202u + i;
    k.dst = reply ? 0xac190202u + i : 0x0a60000au;
    k.sport = reply ? 8080 : uint16_t(i * 31);
    k.dport = reply ? uint16_t(i * 31) : 80;
    k.proto = 6;
    return k;
}

uint32_t add(conntrack& ct, uint32_t i, uint32_t expires) {
    const uint32_t e = ct.allocate();
    if (e == conntrack::no_entry) {
        return e;
    }
    ct_entry& ent = ct.entry(e);
    ent.orig = key(i, false);
    ent.reply = key(i, true);
    ent.state = ct_state::established;
    ent.expires.store(expires);
    if (!ct.insert(e)) {
        ent.state = ct_state::free;
        ct.release(e);
        return conntrack::no_entry;
    }
    return e;
}

}  // namespace

TEST_CASE("conntrack: both tuples find the connection; erase frees it", "[conntrack]") {
    conntrack ct(1024);
    std::vector<uint32_t> entries;
    for (uint32_t i = 0; i < 1024; ++i) {
        uint32_t e = add(ct, i, 100);
        REQUIRE(e != conntrack::no_entry);
        entries.push_back(e);
    }
    CHECK(ct.size() == 1024);
    CHECK(ct.allocate() == conntrack::no_entry);  // full
    for (uint32_t i = 0; i < 1024; ++i) {
        conntrack::hit o = ct.find(key(i, false));
        conntrack::hit r = ct.find(key(i, true));
        REQUIRE(o.entry == entries[i]);
        CHECK(!o.reply);
        REQUIRE(r.entry == entries[i]);
        CHECK(r.reply);
    }
    for (uint32_t i = 0; i < 1024; i += 2) {
        ct.erase(entries[i]);
    }
    CHECK(ct.size() == 512);
    for (uint32_t i = 0; i < 1024; ++i) {
        CHECK((ct.find(key(i, false)).entry == conntrack::no_entry) == (i % 2 == 0));
    }
    size_t listed = 0;
    ct.for_each([&](const ct_entry&) { ++listed; });
    CHECK(listed == 512);
}

TEST_CASE("conntrack: churn at full load keeps every live connection findable", "[conntrack]") {
    constexpr uint32_t cap = 4096;
    conntrack ct(cap);
    std::mt19937 rng(7);
    std::vector<uint32_t> live_ids, entry_of(1u << 20, conntrack::no_entry);
    uint32_t next = 0;
    for (int round = 0; round < 200000; ++round) {
        if (live_ids.size() < cap && (live_ids.empty() || rng() % 2 == 0)) {
            uint32_t e = add(ct, next, 100);
            REQUIRE(e != conntrack::no_entry);
            entry_of[next] = e;
            live_ids.push_back(next++);
            next %= 1u << 20;
        } else {
            size_t j = rng() % live_ids.size();
            ct.erase(entry_of[live_ids[j]]);
            entry_of[live_ids[j]] = conntrack::no_entry;
            live_ids[j] = live_ids.back();
            live_ids.pop_back();
        }
    }
    CHECK(ct.size() == live_ids.size());
    for (uint32_t id : live_ids) {
        REQUIRE(ct.find(key(id, false)).entry == entry_of[id]);
        REQUIRE(ct.find(key(id, true)).entry == entry_of[id]);
    }
}

TEST_CASE("conntrack: the sweep expires what timed out, in bounded steps", "[conntrack]") {
    conntrack ct(256);
    for (uint32_t i = 0; i < 200; ++i) {
        REQUIRE(add(ct, i, i < 100 ? 50 : 500) != conntrack::no_entry);
    }
    int expired = 0;
    ct.sweep(60, 100, [&](const ct_entry&) { ++expired; });
    CHECK(expired == 100);  // the first 100 entries handed out
    ct.sweep(60, 1000, [&](const ct_entry&) { ++expired; });
    CHECK(expired == 100);
    CHECK(ct.size() == 100);
    CHECK(ct.find(key(0, false)).entry == conntrack::no_entry);
    CHECK(ct.find(key(150, true)).entry != conntrack::no_entry);
}
