// A latency histogram for the benchmark harness (twill-gen): nanoseconds in log-linear
// buckets, 64 per power of two (within 1.6% of the value), exact below 64 ns.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace twill::bench {

class latency_histogram {
public:
    static constexpr unsigned sub = 64;
    static constexpr unsigned buckets = sub * 40;  // up to 2^45 ns

    static unsigned index(uint64_t ns) {
        if (ns < sub) {
            return unsigned(ns);
        }
        const unsigned e = unsigned(std::bit_width(ns)) - 1;  // >= 6
        const unsigned i = (e - 5) * sub + unsigned((ns >> (e - 6)) & (sub - 1));
        return i < buckets ? i : buckets - 1;
    }
    // The smallest value of bucket i.
    static uint64_t lower(unsigned i) {
        if (i < sub) {
            return i;
        }
        const unsigned e = i / sub + 5;
        return (uint64_t(sub) | (i % sub)) << (e - 6);
    }

    void add(uint64_t ns) {
        ++counts_[index(ns)];
        ++total_;
        if (ns > max_) {
            max_ = ns;
        }
    }
    void merge(const latency_histogram& o) {
        for (unsigned i = 0; i < buckets; ++i) {
            counts_[i] += o.counts_[i];
        }
        total_ += o.total_;
        max_ = std::max(max_, o.max_);
    }
    uint64_t total() const { return total_; }
    uint64_t max() const { return max_; }

    // The value below which a fraction q of the samples lie (a bucket's lower bound);
    // 0 when empty.
    double percentile(double q) const {
        if (total_ == 0) {
            return 0;
        }
        const auto want = uint64_t(q * double(total_ - 1)) + 1;
        uint64_t seen = 0;
        for (unsigned i = 0; i < buckets; ++i) {
            seen += counts_[i];
            if (seen >= want) {
                return double(lower(i));
            }
        }
        return double(max_);
    }

    // [[ns, fraction at or below], ...] over the non-empty buckets.
    nlohmann::json cdf_json() const {
        nlohmann::json out = nlohmann::json::array();
        uint64_t seen = 0;
        for (unsigned i = 0; i < buckets && total_ > 0; ++i) {
            if (counts_[i] != 0) {
                seen += counts_[i];
                out.push_back({lower(i), double(seen) / double(total_)});
            }
        }
        return out;
    }
    nlohmann::json summary_json() const {
        return {{"samples", total_},
                {"p50_ns", percentile(0.5)},
                {"p99_ns", percentile(0.99)},
                {"p999_ns", percentile(0.999)},
                {"max_ns", max_}};
    }

private:
    std::array<uint64_t, buckets> counts_{};
    uint64_t total_ = 0;
    uint64_t max_ = 0;
};

}  // namespace twill::bench
