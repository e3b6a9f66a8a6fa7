#include "dataplane/service/conntrack.h"

#include <algorithm>
#include <bit>
#include <new>

namespace twill {

conntrack::conntrack(uint32_t capacity)
    : capacity_(std::max<uint32_t>(capacity, 1)),
      mask_(std::bit_ceil(uint64_t(capacity_) * 4) - 1),
      entries_(capacity_),
      index_(size_t(mask_) + 1),
      free_(new uint32_t[capacity_]) {
    // Zeroed memory is a valid free entry and an empty index word; lowest entries are
    // handed out first.
    for (uint32_t e = 0; e < capacity_; ++e) {
        free_[e] = capacity_ - 1 - e;
    }
    nfree_ = capacity_;
}

conntrack::~conntrack() = default;

bool conntrack::index_key(const flow_key& k, uint32_t word) {
    const uint32_t h = hash_flow(k);
    for (uint32_t i = h & mask_, n = 0; n < max_probe; ++n, i = (i + 1) & mask_) {
        const uint32_t lo = uint32_t(index_[i].load(std::memory_order_relaxed));
        if (lo == empty_word || lo == tombstone_word) {
            index_[i].store(uint64_t(h) << 32 | word, std::memory_order_release);
            return true;
        }
    }
    return false;
}

void conntrack::unindex_key(const flow_key& k, uint32_t word) {
    const uint32_t h = hash_flow(k);
    for (uint32_t i = h & mask_, n = 0; n < max_probe; ++n, i = (i + 1) & mask_) {
        const uint64_t w = index_[i].load(std::memory_order_relaxed);
        if (uint32_t(w) == empty_word) {
            return;
        }
        if (uint32_t(w) != word) {
            continue;
        }
        index_[i].store(tombstone_word, std::memory_order_release);
        // A tombstone before an empty slot ends no chain that goes further: fold it and
        // those before it back to empty.
        if (uint32_t(index_[(i + 1) & mask_].load(std::memory_order_relaxed)) == empty_word) {
            for (uint32_t j = i;; j = (j - 1) & mask_) {
                if (uint32_t(index_[j].load(std::memory_order_relaxed)) != tombstone_word) {
                    break;
                }
                index_[j].store(empty_word, std::memory_order_release);
            }
        }
        return;
    }
}

bool conntrack::insert(uint32_t e) {
    ct_entry& ent = entries_[e];
    if (!index_key(ent.orig, word_of(e, false))) {
        return false;
    }
    if (ent.state != ct_state::affinity && !index_key(ent.reply, word_of(e, true))) {
        unindex_key(ent.orig, word_of(e, false));
        return false;
    }
    live_.store(live_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
}

void conntrack::erase(uint32_t e) {
    ct_entry& ent = entries_[e];
    unindex_key(ent.orig, word_of(e, false));
    if (ent.state != ct_state::affinity) {
        unindex_key(ent.reply, word_of(e, true));
    }
    write_begin(ent);
    ent.state = ct_state::free;
    write_end(ent);
    free_[nfree_++] = e;
    live_.store(live_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

}  // namespace twill
