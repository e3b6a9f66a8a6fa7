#include "dataplane/service/conntrack.h"

#include <algorithm>
#include <bit>
#include <new>

namespace twill {

conntrack::conntrack(uint32_t capacity, uint32_t workers)
    : capacity_(std::max<uint32_t>(capacity, 1)),
      workers_(std::clamp<uint32_t>(workers, 1, capacity_)),
      part_size_((capacity_ + workers_ - 1) / workers_),
      mask_(std::bit_ceil(uint64_t(capacity_) * 4) - 1),
      entries_(capacity_),
      index_(size_t(mask_) + 1),
      parts_(new part[workers_]) {
    // Zeroed memory is a valid free entry and an empty index word; within a range, lowest
    // entries are handed out first.
    for (uint32_t w = 0; w < workers_; ++w) {
        part& p = parts_[w];
        p.first = w * part_size_;
        p.count = std::min(part_size_, capacity_ - p.first);
        p.free.reset(new uint32_t[p.count]);
        for (uint32_t i = 0; i < p.count; ++i) {
            p.free[i] = p.first + p.count - 1 - i;
        }
        p.nfree = p.count;
    }
}

conntrack::~conntrack() = default;

bool conntrack::index_key(const flow_key& k, uint32_t word) {
    const uint32_t h = hash_flow(k);
    const uint64_t mine = uint64_t(h) << 32 | word;
    for (uint32_t i = h & mask_, n = 0; n < max_probe; ++n, i = (i + 1) & mask_) {
        uint64_t w = index_[i].load(std::memory_order_relaxed);
        for (;;) {
            const uint32_t lo = uint32_t(w);
            if (lo != empty_word && lo != tombstone_word) {
                break;
            }
            // The first free slot (empty, or a tombstone to reuse). Two workers inserting
            // one key at once can both succeed (one here, one on a slot that became a
            // tombstone meanwhile): keys are made so that they do not (a connection's
            // original tuple comes to one worker; masquerade ports are cut per worker).
            if (workers_ == 1) {  // the only writer: no need to pay for a locked swap
                index_[i].store(mine, std::memory_order_release);
                return true;
            }
            if (index_[i].compare_exchange_weak(w, mine, std::memory_order_release,
                                                std::memory_order_relaxed)) {
                return true;
            }
        }
        const uint32_t lo = uint32_t(w);
        if (uint32_t(w >> 32) == h) {
            const ct_entry& o = entries_[(lo >> 1) - 1];
            if (((lo & 1) ? o.reply : o.orig) == k && ct_live(o.state)) {
                return false;  // in use
            }
        }
    }
    return false;
}

void conntrack::unindex_key(const flow_key& k, uint32_t word) {
    const uint32_t h = hash_flow(k);
    for (uint32_t i = h & mask_, n = 0; n < max_probe; ++n, i = (i + 1) & mask_) {
        uint64_t w = index_[i].load(std::memory_order_relaxed);
        if (uint32_t(w) == empty_word) {
            return;
        }
        if (uint32_t(w) != word) {
            continue;
        }
        // The word is this entry's, and only the worker that claimed the entry removes it.
        index_[i].store(tombstone_word, std::memory_order_release);
        // With one writer, a tombstone before an empty slot ends no chain that goes
        // further: fold it and those before it back to empty. With several, an insert
        // that saw this slot in use may be landing beyond it, so tombstones stay (and
        // are reused by inserts).
        if (workers_ == 1 && uint32_t(index_[(i + 1) & mask_].load(std::memory_order_relaxed)) == empty_word) {
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
    part& p = parts_[owner(e)];
    const uint32_t live = p.live.load(std::memory_order_relaxed) + 1;
    p.live.store(live, std::memory_order_relaxed);
    if (live == 1) {
        shared_.nonempty.fetch_add(1, std::memory_order_relaxed);
    }
    if (live == p.count) {
        shared_.full.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
}

void conntrack::unindex(uint32_t e, ct_state s) {
    const ct_entry& ent = entries_[e];
    unindex_key(ent.orig, word_of(e, false));
    if (s != ct_state::affinity) {
        unindex_key(ent.reply, word_of(e, true));
    }
}

void conntrack::free_entry(uint32_t e) {
    ct_entry& ent = entries_[e];
    write_begin(ent);
    ent.state = ct_state::free;
    write_end(ent);
    part& p = parts_[owner(e)];
    p.free[p.nfree++] = e;
    const uint32_t live = p.live.load(std::memory_order_relaxed);
    p.live.store(live - 1, std::memory_order_relaxed);
    if (live == p.count) {
        shared_.full.fetch_sub(1, std::memory_order_relaxed);
    }
    if (live == 1) {
        shared_.nonempty.fetch_sub(1, std::memory_order_relaxed);
    }
}

}  // namespace twill
