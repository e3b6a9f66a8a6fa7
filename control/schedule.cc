#include "control/schedule.h"

#include <numeric>

#include "control/maglev.h"

namespace twill {

namespace {

std::vector<uint16_t> round_robin(const std::vector<schedule_backend>& backends) {
    std::vector<uint16_t> out;
    for (size_t i = 0; i < backends.size(); ++i) {
        if (backends[i].weight > 0) {
            out.push_back(uint16_t(i));
        }
    }
    return out;
}

// nginx's smooth weighted round-robin: every turn each backend gains its weight and the
// richest, which pays the total, goes. Weights 5,1,1 give a a b a c a a, not a a a a a b c.
std::vector<uint16_t> weighted_round_robin(const std::vector<schedule_backend>& backends) {
    std::vector<uint64_t> weights;
    uint64_t g = 0;
    for (const schedule_backend& b : backends) {
        weights.push_back(b.weight);
        g = std::gcd(g, uint64_t(b.weight));
    }
    if (g == 0) {
        return {};
    }
    uint64_t total = 0;
    for (uint64_t& w : weights) {
        w /= g;
        total += w;
    }
    if (total > wrr_max_turns) {
        const uint64_t before = total;
        total = 0;
        for (uint64_t& w : weights) {
            w = w == 0 ? 0 : std::max<uint64_t>(1, w * wrr_max_turns / before);
            total += w;
        }
    }
    std::vector<int64_t> current(weights.size(), 0);
    std::vector<uint16_t> out;
    out.reserve(total);
    for (uint64_t turn = 0; turn < total; ++turn) {
        size_t best = 0;
        for (size_t i = 0; i < weights.size(); ++i) {
            current[i] += int64_t(weights[i]);
            if (weights[i] > 0 && (weights[best] == 0 || current[i] > current[best])) {
                best = i;
            }
        }
        current[best] -= int64_t(total);
        out.push_back(uint16_t(best));
    }
    return out;
}

std::vector<uint16_t> source_hash(const std::vector<schedule_backend>& backends) {
    std::vector<uint16_t> live = round_robin(backends);
    if (live.empty()) {
        return {};
    }
    std::vector<uint16_t> out(sh_buckets);
    size_t d = 0;
    uint32_t used = 0;
    for (uint32_t bucket = 0; bucket < sh_buckets; ++bucket) {
        out[bucket] = live[d];
        if (++used >= backends[live[d]].weight) {
            used = 0;
            d = (d + 1) % live.size();
        }
    }
    return out;
}

std::vector<uint16_t> maglev(const std::vector<schedule_backend>& backends) {
    std::vector<maglev_backend> in;
    bool any = false;
    for (const schedule_backend& b : backends) {
        in.push_back({b.key, b.weight});
        any |= b.weight > 0;
    }
    if (!any) {
        return {};
    }
    std::vector<uint32_t> table = maglev_table(in);
    std::vector<uint16_t> out(table.size());
    for (size_t i = 0; i < table.size(); ++i) {
        out[i] = table[i] == maglev_no_backend ? schedule_no_backend : uint16_t(table[i]);
    }
    return out;
}

}  // namespace

std::vector<uint16_t> build_schedule(sched_kind kind, const std::vector<schedule_backend>& backends) {
    switch (kind) {
        case sched_kind::rr:
        case sched_kind::lc:
            return round_robin(backends);
        case sched_kind::wrr:
            return weighted_round_robin(backends);
        case sched_kind::sh:
            return source_hash(backends);
        case sched_kind::mh:
            return maglev(backends);
    }
    return {};
}

}  // namespace twill
