// Slot allocation for worker-written state that must outlive table swaps.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dataplane/net/addr.h"

namespace twill {

// Slots in learned_state handed out by key: a next-hop address for neighbours, a pod's
// identity for pods. A key that stays keeps its slot, and so what was learned in it
// across table swaps; a released slot is reused only after the grace period, when no
// worker can still reach it through an old table, and the new owner resets it.
template <typename Key>
class slot_allocator {
public:
    // The slot of `key`; `fresh` is set when it was not held before.
    uint32_t acquire(const Key& key, bool& fresh) {
        fresh = false;
        if (auto it = by_key_.find(key); it != by_key_.end()) {
            return it->second;
        }
        fresh = true;
        uint32_t slot = next_;
        if (!free_.empty()) {
            slot = free_.back();
            free_.pop_back();
        } else {
            ++next_;  // validation bounds the count below the capacity
        }
        by_key_.emplace(key, slot);
        return slot;
    }
    // The slot of `key`, or ~0u when it holds none.
    uint32_t find(const Key& key) const {
        auto it = by_key_.find(key);
        return it == by_key_.end() ? ~uint32_t(0) : it->second;
    }
    // Releases the slot of `key`, if held. Call after the grace period.
    void release(const Key& key) {
        if (auto it = by_key_.find(key); it != by_key_.end()) {
            free_.push_back(it->second);
            by_key_.erase(it);
        }
    }
    // Releases every slot whose key is not in `keep`. Call after the grace period.
    void retain_only(const std::set<Key>& keep) {
        for (auto it = by_key_.begin(); it != by_key_.end();) {
            if (keep.contains(it->first)) {
                ++it;
            } else {
                free_.push_back(it->second);
                it = by_key_.erase(it);
            }
        }
    }

private:
    std::map<Key, uint32_t> by_key_;
    std::vector<uint32_t> free_;
    uint32_t next_ = 0;
};

using neighbour_slots = slot_allocator<ip4_addr>;
using pod_slots = slot_allocator<std::string>;

}  // namespace twill
