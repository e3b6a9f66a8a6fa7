// The benchmark harness's own logic (bench/search.h, bench/latency.h, bench/gen_plan.h):
// a search that finds what a simulated DUT passes, percentiles that are where the samples
// are, and frames that are what the address plan says.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>

#include "bench/gen_plan.h"
#include "bench/latency.h"
#include "bench/search.h"

using namespace twill::bench;

TEST_CASE("bench search: converges on the DUT's threshold within the precision") {
    for (double threshold : {0.3e6, 2.5e6, 7.9e6, 9.7e6}) {
        unsigned trials = 0;
        const search_result r = search_rate(0, 10e6, 8e6, 0.02, [&](double rate) {
            ++trials;
            return rate <= threshold;
        });
        INFO("threshold " << threshold);
        CHECK(r.rate <= threshold);
        CHECK(r.rate >= threshold * 0.97);
        CHECK_FALSE(r.at_top);
        CHECK(trials == r.trials);
        CHECK(trials <= 16);
    }
}

TEST_CASE("bench search: a DUT faster than the generator stops at the top") {
    const search_result r = search_rate(0, 10e6, 9e6, 0.02, [](double) { return true; });
    CHECK(r.at_top);
    CHECK(r.rate == 10e6);
    CHECK(r.trials == 2);  // the guess, then the top
}

TEST_CASE("bench search: nothing passes gives the lower bound; a known pass is kept") {
    CHECK(search_rate(0, 10e6, 8e6, 0.02, [](double) { return false; }).rate == 0);
    // PDR search from the NDR: the NDR passes without a trial.
    const search_result r =
        search_rate(4e6, 10e6, 8e6, 0.02, [](double rate) { return rate <= 5e6; });
    CHECK(r.rate >= 4.9e6);
    CHECK(r.rate <= 5e6);
}

TEST_CASE("bench latency: buckets are monotonic and within 1.6% of their values") {
    uint64_t prev = 0;
    for (unsigned i = 1; i < latency_histogram::buckets - 1; ++i) {
        REQUIRE(latency_histogram::lower(i) > prev);
        prev = latency_histogram::lower(i);
        REQUIRE(latency_histogram::index(prev) == i);
    }
    for (uint64_t v : {0ull, 1ull, 63ull, 64ull, 1000ull, 123456ull, 10'000'000'000ull}) {
        const uint64_t lo = latency_histogram::lower(latency_histogram::index(v));
        CHECK(lo <= v);
        CHECK(double(v - lo) <= double(v) * 0.016 + 1e-9);
    }
}

TEST_CASE("bench latency: percentiles of known samples") {
    latency_histogram h;
    CHECK(h.percentile(0.5) == 0);
    for (uint64_t v = 1; v <= 100000; ++v) {
        h.add(v);
    }
    CHECK(h.total() == 100000);
    CHECK(h.max() == 100000);
    CHECK(h.percentile(0.5) == Approx(50000).epsilon(0.02));
    CHECK(h.percentile(0.99) == Approx(99000).epsilon(0.02));
    CHECK(h.percentile(0.999) == Approx(99900).epsilon(0.02));
    latency_histogram tail;
    tail.add(5'000'000);
    h.merge(tail);
    CHECK(h.max() == 5'000'000);
    const auto cdf = h.cdf_json();
    REQUIRE(!cdf.empty());
    CHECK(cdf.back()[1].get<double>() == 1.0);
}

namespace {

uint16_t be16(const std::vector<uint8_t>& f, size_t off) {
    return uint16_t(f[off] << 8 | f[off + 1]);
}
bool ip_checksum_ok(const uint8_t* ip) {
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2) {
        sum += uint32_t(ip[i]) << 8 | ip[i + 1];
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return sum == 0xffff;
}

}  // namespace

TEST_CASE("bench frames: every kind follows the address plan, and flows keep checksums") {
    for (const char* kind : {"encap", "decap", "local", "svc-hit", "svc-new", "nodes"}) {
        INFO(kind);
        const frame_plan p = make_plan(kind, "64", 1000, 1000, 4096);
        REQUIRE(p.templates.size() == 1);
        const frame_template& t = p.templates[0];
        const bool vx = std::string(kind) == "decap";
        CHECK(t.bytes.size() == (vx ? 110u : 60u));
        CHECK(t.stamp_off + stamp_bytes <= t.bytes.size());
        std::vector<uint8_t> f = t.bytes;
        for (uint64_t i : {0ull, 1ull, 4095ull, 777777ull}) {
            p.set_flow(f.data(), i);
            CHECK(ip_checksum_ok(&f[14]));
            if (vx) {
                CHECK(ip_checksum_ok(&f[64]));
            }
        }
        CHECK(be16(f, 12) == 0x0800);
        if (vx) {
            CHECK(std::memcmp(f.data(), dut_underlay_mac.bytes.data(), 6) == 0);
            CHECK(be16(f, 36) == vxlan_port);
            CHECK(f[42] == 0x08);
            CHECK((uint32_t(f[46]) << 16 | f[47] << 8 | f[48]) == vni);
            CHECK(std::memcmp(&f[50], dut_vtep_mac.bytes.data(), 6) == 0);
        } else {
            CHECK(std::memcmp(f.data(), gateway_mac.bytes.data(), 6) == 0);
            CHECK(std::memcmp(&f[6], pod_mac.bytes.data(), 6) == 0);
        }
    }
}

TEST_CASE("bench frames: svc-new flows are all distinct, svc-hit flows repeat") {
    const frame_plan n = make_plan("svc-new", "64", 10, 1, 1);
    std::set<std::pair<uint32_t, uint16_t>> seen;
    std::vector<uint8_t> f = n.templates[0].bytes;
    for (uint64_t i = 0; i < 200000; ++i) {
        n.set_flow(f.data(), i);
        const uint32_t dst = uint32_t(f[30]) << 24 | f[31] << 16 | f[32] << 8 | f[33];
        seen.insert({dst, be16(f, 34)});
    }
    CHECK(seen.size() == 200000);
    const frame_plan imix = make_plan("encap", "imix", 1, 1, 1);
    CHECK(imix.templates.size() == 3);
    CHECK(imix.mean_bytes() == Approx((7 * 60 + 4 * 566 + 1464) / 12.0));
}
