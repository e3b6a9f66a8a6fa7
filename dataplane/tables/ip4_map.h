// An open-addressing map from IPv4 address to a 32-bit value that one writer (the control
// thread) changes in place while workers read it without locks: each slot is one atomic
// 64-bit word holding key and value together, so a reader sees a slot whole, old or new.
//
// Erasing leaves a tombstone, which a later insert may reuse; an entry never moves, so a
// concurrent reader cannot miss a key that stays. When live entries and tombstones fill
// half the slots the writer builds a fresh map and swaps it in (slice_table does), which
// keeps probe chains short at amortised O(1) per change.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "dataplane/net/addr.h"

namespace twill {

class ip4_map {
public:
    static constexpr uint32_t not_found = ~uint32_t(0);

    // `capacity` is rounded up to a power of two, at least 8.
    explicit ip4_map(uint32_t capacity)
        : mask_(std::bit_ceil(std::max<uint32_t>(capacity, 8)) - 1),
          words_(new std::atomic<uint64_t>[mask_ + 1]) {
        for (uint32_t i = 0; i <= mask_; ++i) {
            words_[i].store(0, std::memory_order_relaxed);
        }
    }

    // Readers, any thread.
    uint32_t find(ip4_addr addr) const {
        if (!usable_key(addr.value)) [[unlikely]] {
            return not_found;
        }
        for (uint32_t i = hash(addr.value) & mask_;; i = (i + 1) & mask_) {
            uint64_t w = words_[i].load(std::memory_order_acquire);
            if (uint32_t(w) == addr.value) {
                return uint32_t(w >> 32);
            }
            if (w == 0) {
                return not_found;
            }
        }
    }

    // Writer only. A key already present gets the new value in place. The caller keeps
    // used() below half the capacity (room()), so a probe always ends at an empty slot.
    void insert(ip4_addr addr, uint32_t value) {
        uint64_t w = uint64_t(value) << 32 | addr.value;
        uint32_t reuse = not_found;
        for (uint32_t i = hash(addr.value) & mask_;; i = (i + 1) & mask_) {
            uint64_t cur = words_[i].load(std::memory_order_relaxed);
            if (uint32_t(cur) == addr.value) {
                words_[i].store(w, std::memory_order_release);
                return;
            }
            if (uint32_t(cur) == tombstone && reuse == not_found) {
                reuse = i;
            }
            if (cur == 0) {
                if (reuse == not_found) {
                    reuse = i;
                    ++used_;  // a tombstone reused was counted already
                }
                break;
            }
        }
        words_[reuse].store(w, std::memory_order_release);
        ++live_;
    }
    // Writer only. Returns whether the key was there.
    bool erase(ip4_addr addr) {
        for (uint32_t i = hash(addr.value) & mask_;; i = (i + 1) & mask_) {
            uint64_t cur = words_[i].load(std::memory_order_relaxed);
            if (uint32_t(cur) == addr.value) {
                words_[i].store(tombstone, std::memory_order_release);
                --live_;
                return true;
            }
            if (cur == 0) {
                return false;
            }
        }
    }
    // Whether one more key fits without a rebuild.
    bool room() const { return 2 * (used_ + 1) <= mask_ + 1; }
    uint32_t size() const { return live_; }

    template <typename F>
    void for_each(F f) const {
        for (uint32_t i = 0; i <= mask_; ++i) {
            uint64_t w = words_[i].load(std::memory_order_relaxed);
            if (usable_key(uint32_t(w))) {
                f(ip4_addr{uint32_t(w)}, uint32_t(w >> 32));
            }
        }
    }

    // 0.0.0.0 marks an empty slot and 255.255.255.255 a tombstone; neither is a node.
    static bool usable_key(uint32_t v) { return v != 0 && v != tombstone; }

private:
    static constexpr uint32_t tombstone = ~uint32_t(0);
    static uint32_t hash(uint32_t v) { return uint32_t((uint64_t(v) * 0x9e3779b97f4a7c15ull) >> 32); }

    uint32_t mask_;
    std::unique_ptr<std::atomic<uint64_t>[]> words_;
    uint32_t used_ = 0;  // slots not empty: live + tombstones
    uint32_t live_ = 0;
};

}  // namespace twill
