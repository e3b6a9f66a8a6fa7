#include "control/maglev.h"

#include <algorithm>
#include <numeric>

namespace twill {
namespace {

// FNV-1a, then a 64-bit finalizer (splitmix64's): stable across runs and machines.
uint64_t hash_key(const std::string& key, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (unsigned char c : key) {
        h = (h ^ c) * 0x100000001b3ull;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

}  // namespace

std::vector<uint32_t> maglev_table(const std::vector<maglev_backend>& backends, uint32_t size) {
    std::vector<uint32_t> table(size, maglev_no_backend);
    // Backends in key order, so that the table does not depend on the input's order.
    std::vector<uint32_t> order;
    for (uint32_t i = 0; i < backends.size(); ++i) {
        if (backends[i].weight > 0) {
            order.push_back(i);
        }
    }
    if (order.empty()) {
        return table;
    }
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return backends[a].key < backends[b].key; });
    const size_t n = order.size();
    std::vector<uint64_t> offset(n), skip(n), next(n, 0);
    uint32_t max_weight = 0;
    for (size_t i = 0; i < n; ++i) {
        const std::string& key = backends[order[i]].key;
        offset[i] = hash_key(key, 0x6d61676c6576ull) % size;
        skip[i] = hash_key(key, 0x736b6970ull) % (size - 1) + 1;
        max_weight = std::max(max_weight, backends[order[i]].weight);
    }
    // Weighted turns: in each round a backend claims a slot on the rounds where its
    // accumulated weight crosses the heaviest's, so claims are proportional to weight.
    std::vector<uint64_t> credit(n, 0);
    uint32_t filled = 0;
    while (true) {
        for (size_t i = 0; i < n; ++i) {
            credit[i] += backends[order[i]].weight;
            if (credit[i] < max_weight) {
                continue;
            }
            credit[i] -= max_weight;
            uint64_t slot;
            do {
                slot = (offset[i] + next[i] * skip[i]) % size;
                ++next[i];
            } while (table[slot] != maglev_no_backend);
            table[slot] = order[i];
            if (++filled == size) {
                return table;
            }
        }
    }
}

}  // namespace twill
