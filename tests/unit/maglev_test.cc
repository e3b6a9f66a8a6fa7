// The Maglev table: every slot owned, shares by weight, independent of input order, and
// little movement between the others when a backend comes or goes. The disruption is
// printed (a property of the algorithm, bounded loosely here).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "control/maglev.h"

using namespace twill;

namespace {

std::vector<maglev_backend> backends(int n, int first = 0) {
    std::vector<maglev_backend> out;
    for (int i = first; i < first + n; ++i) {
        out.push_back({fmt::format("10.1.0.{}:8080", i), 1});
    }
    return out;
}

std::vector<uint32_t> shares(const std::vector<uint32_t>& table, size_t n) {
    std::vector<uint32_t> count(n, 0);
    size_t unowned = 0;
    for (uint32_t b : table) {
        if (b < n) {
            ++count[b];
        } else {
            ++unowned;
        }
    }
    CHECK(unowned == 0);
    return count;
}

// The fraction of slots whose backend (by key) differs between two tables.
double moved(const std::vector<uint32_t>& a, const std::vector<maglev_backend>& ba,
             const std::vector<uint32_t>& b, const std::vector<maglev_backend>& bb) {
    size_t changed = 0;
    for (size_t s = 0; s < a.size(); ++s) {
        changed += ba[a[s]].key != bb[b[s]].key;
    }
    return double(changed) / double(a.size());
}

}  // namespace

TEST_CASE("maglev: every slot owned, equal weights get equal shares", "[maglev]") {
    for (int n : {1, 3, 10, 100}) {
        INFO(n << " backends");
        auto t = maglev_table(backends(n));
        REQUIRE(t.size() == maglev_default_size);
        auto count = shares(t, n);
        auto [lo, hi] = std::minmax_element(count.begin(), count.end());
        CHECK(*hi - *lo <= 1);  // round-robin filling: off by one at most
    }
    CHECK(maglev_table({}) == std::vector<uint32_t>(maglev_default_size, maglev_no_backend));
}

TEST_CASE("maglev: shares follow weights; weight 0 takes nothing", "[maglev]") {
    std::vector<maglev_backend> b = {{"a:1", 1}, {"b:1", 2}, {"c:1", 3}, {"d:1", 0}};
    auto count = shares(maglev_table(b), b.size());
    const double m = maglev_default_size;
    CHECK(count[3] == 0);
    CHECK(count[0] / m == Approx(1.0 / 6).margin(0.002));
    CHECK(count[1] / m == Approx(2.0 / 6).margin(0.002));
    CHECK(count[2] / m == Approx(3.0 / 6).margin(0.002));
}

TEST_CASE("maglev: the table depends on the backends, not on their order", "[maglev]") {
    auto b = backends(10);
    auto t = maglev_table(b);
    std::vector<maglev_backend> reversed(b.rbegin(), b.rend());
    auto r = maglev_table(reversed);
    CHECK(moved(t, b, r, reversed) == 0.0);
    CHECK(maglev_table(b) == t);  // and is the same every time
}

TEST_CASE("maglev: a backend added or removed moves little else", "[maglev]") {
    for (int n : {10, 100}) {
        auto before = backends(n);
        auto t0 = maglev_table(before);
        auto fewer = backends(n - 1, 1);  // the first one removed
        auto t1 = maglev_table(fewer);
        auto more = backends(n + 1);  // one added
        auto t2 = maglev_table(more);
        const double removed = moved(t0, before, t1, fewer);
        const double added = moved(t0, before, t2, more);
        // The minimum is 1/n (the removed backend's slots) and 1/(n+1) (the new one's).
        WARN(fmt::format("{} backends: removing one moves {:.2f}% of slots (minimum {:.2f}%), "
                         "adding one {:.2f}% (minimum {:.2f}%)",
                         n, 100 * removed, 100.0 / n, 100 * added, 100.0 / (n + 1)));
        CHECK(removed >= 1.0 / n - 0.001);
        CHECK(removed <= 2.0 / n);
        CHECK(added <= 2.0 / (n + 1));
    }
}
