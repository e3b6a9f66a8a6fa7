// Median and spread of a benchmark's trials, as the tables print them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace twill::bench {

struct stats {
    double median, min, max;
};

// The median (of the middle two for an even count), the smallest and the largest.
inline stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

}  // namespace twill::bench
