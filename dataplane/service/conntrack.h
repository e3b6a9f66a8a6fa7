// Connection tracking for services: which backend a flow was given and how its packets
// are translated, in both directions. It is not one of the swapped tables: it lives for
// the process, holds values only (addresses, ports, a backend slot and its generation),
// never pointers into published tables, and so survives every table change.
//
// Layout: a fixed array of 64-byte entries, and an index of 64-bit words (open
// addressing, linear probing bounded at `max_probe`) in which every connection has two
// keys, its original tuple and its reply tuple. An index word holds a 32-bit hash tag and
// the entry number with the direction, so a probe reads one word per slot and touches an
// entry only when the tag matches. Erasing leaves a tombstone, folded back to empty when
// it ends a probe chain, and inserts reuse tombstones, so they do not pile up.
//
// Concurrency: one writer per table (the worker that owns it) and any number of readers.
// A reader on another thread (the control thread listing connections) copies an entry
// under its sequence number and retries while the owner writes it. Memory comes from
// big_zeroed: zero pages cost nothing until a connection first lands on them, and are
// 2 MB pages where the kernel has them, so that lookups do not miss the TLB as well.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <rte_hash_crc.h>
#include <rte_prefetch.h>

#include "dataplane/util/big_zeroed.h"

namespace twill {

// A tuple as it is in the packet: addresses and ports in network order.
struct flow_key {
    uint32_t src = 0;
    uint32_t dst = 0;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint8_t proto = 0;
    uint8_t kind = 0;  // flow_key::connection or flow_key::affinity
    uint16_t pad = 0;

    static constexpr uint8_t connection = 0;
    // sessionAffinity: ClientIP: src = client, dst:dport = the frontend, sport = 0.
    static constexpr uint8_t affinity = 1;

    bool operator==(const flow_key&) const = default;
};
static_assert(sizeof(flow_key) == 16);

inline uint32_t hash_flow(const flow_key& k) {
    uint64_t a, b;
    std::memcpy(&a, &k, 8);
    std::memcpy(&b, reinterpret_cast<const uint8_t*>(&k) + 8, 8);
    return rte_hash_crc_8byte(b, rte_hash_crc_8byte(a, 0x9e3779b9));
}

enum class ct_state : uint8_t {
    free = 0,
    syn,          // TCP: the client's SYN seen, no answer yet
    established,  // TCP: the backend answered
    fin,          // TCP: a FIN seen in either direction
    closed,       // TCP: a RST seen
    datagram,     // UDP, SCTP
    affinity,     // a ClientIP affinity record, not a connection
};

struct alignas(64) ct_entry {
    std::atomic<uint32_t> seq{0};      // odd while the owner writes the entry
    std::atomic<uint32_t> expires{0};  // second (ctx.now_s) at which it times out
    flow_key orig;                     // client -> frontend, as received
    flow_key reply;                    // backend -> client, or -> the SNAT address and port
    uint32_t backend = 0;              // slot in backend_states
    uint16_t backend_gen = 0;          // the slot's generation when chosen (low bits)
    uint16_t checked = 0;              // service_table::epoch() when the backend was last
                                       // seen alive (low bits)
    uint32_t frontend = 0;             // slot of the service frontend, for listings
    ct_state state = ct_state::free;
    uint8_t flags = 0;
    uint8_t peer_mac[6] = {};  // from_underlay: where the client's frames came from
    uint32_t policy_gen = 0;   // the policy version that last allowed it; 0 = none yet

    static constexpr uint8_t snat = 1;           // the source was translated too
    static constexpr uint8_t from_underlay = 2;  // the client is on the underlay: replies
                                                 // go straight back out to peer_mac
    static constexpr uint8_t policy_only = 4;    // not a service's: kept so that replies
                                                 // pass NetworkPolicy (no translation)
};
static_assert(sizeof(ct_entry) == 64);

class conntrack {
public:
    static constexpr uint32_t no_entry = ~uint32_t(0);
    static constexpr uint32_t max_probe = 32;

    struct hit {
        uint32_t entry = no_entry;
        bool reply = false;  // the key matched the entry's reply tuple
    };

    // `capacity` connections (and affinity records); the index gets four slots per one.
    explicit conntrack(uint32_t capacity);
    ~conntrack();
    conntrack(const conntrack&) = delete;
    conntrack& operator=(const conntrack&) = delete;

    uint32_t capacity() const { return capacity_; }
    uint32_t size() const { return live_.load(std::memory_order_relaxed); }

    hit find(const flow_key& k, uint32_t h) const {
        for (uint32_t i = h & mask_, n = 0; n < max_probe; ++n, i = (i + 1) & mask_) {
            const uint64_t w = index_[i].load(std::memory_order_acquire);
            const uint32_t lo = uint32_t(w);
            if (lo == empty_word) {
                break;
            }
            if (lo != tombstone_word && uint32_t(w >> 32) == h) {
                const uint32_t e = (lo >> 1) - 1;
                const bool reply = lo & 1;
                const ct_entry& ent = entries_[e];
                if ((reply ? ent.reply : ent.orig) == k) {
                    return {e, reply};
                }
            }
        }
        return {};
    }
    hit find(const flow_key& k) const { return find(k, hash_flow(k)); }
    // Where find(k, h) starts, for a lookahead a few packets before it.
    void prefetch(uint32_t h) const { rte_prefetch0(&index_[h & mask_]); }

    ct_entry& entry(uint32_t e) { return entries_[e]; }
    const ct_entry& entry(uint32_t e) const { return entries_[e]; }

    // Owner only. A free entry, or no_entry when the table is full.
    uint32_t allocate() {
        if (nfree_ == 0) {
            return no_entry;
        }
        if (nfree_ > 1) {
            rte_prefetch0_write(&entries_[free_[nfree_ - 2]]);  // the next connection's
        }
        return free_[--nfree_];
    }
    // Indexes entry `e` under its original tuple and, unless it is an affinity record,
    // its reply tuple; both must be absent. False (and nothing indexed) when a probe
    // chain is full; the entry is then still the caller's to release().
    bool insert(uint32_t e);
    // Unindexes and frees entry `e`.
    void erase(uint32_t e);
    // Frees an entry that was allocated but never inserted.
    void release(uint32_t e) { free_[nfree_++] = e; }

    // Owner only: marks the start and end of a change to an entry that readers on other
    // threads may be copying.
    void write_begin(ct_entry& e) {
        e.seq.store(e.seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
    }
    void write_end(ct_entry& e) {
        e.seq.store(e.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    // Owner only: visits up to `budget` entries from where the last sweep stopped and
    // calls `expired(e)` for each in use whose time is up, then erases it.
    template <typename F>
    void sweep(uint32_t now_s, uint32_t budget, F&& expired) {
        for (uint32_t n = 0; n < budget && size() != 0; ++n) {
            const uint32_t e = cursor_;
            cursor_ = cursor_ + 1 == capacity_ ? 0 : cursor_ + 1;
            ct_entry& ent = entries_[e];
            if (ent.state != ct_state::free &&
                int32_t(ent.expires.load(std::memory_order_relaxed) - now_s) <= 0) {
                expired(ent);
                erase(e);
            }
        }
    }

    // Any thread: a consistent copy of every entry in use.
    template <typename F>
    void for_each(F&& f) const {
        for (uint32_t e = 0; e < capacity_; ++e) {
            const ct_entry& ent = entries_[e];
            ct_entry copy;
            for (;;) {
                const uint32_t s = ent.seq.load(std::memory_order_acquire);
                if (s & 1) {
                    continue;
                }
                copy.expires.store(ent.expires.load(std::memory_order_relaxed),
                                   std::memory_order_relaxed);
                std::memcpy(reinterpret_cast<uint8_t*>(&copy) + 8,
                            reinterpret_cast<const uint8_t*>(&ent) + 8, sizeof(ct_entry) - 8);
                std::atomic_thread_fence(std::memory_order_acquire);
                if (ent.seq.load(std::memory_order_relaxed) == s) {
                    break;
                }
            }
            if (copy.state != ct_state::free) {
                f(copy);
            }
        }
    }

private:
    static constexpr uint32_t empty_word = 0;
    static constexpr uint32_t tombstone_word = 1;
    static uint32_t word_of(uint32_t e, bool reply) { return (e + 1) << 1 | uint32_t(reply); }

    bool index_key(const flow_key& k, uint32_t word);
    void unindex_key(const flow_key& k, uint32_t word);

    uint32_t capacity_;
    uint32_t mask_;
    big_array<ct_entry> entries_;
    big_array<std::atomic<uint64_t>> index_;
    std::unique_ptr<uint32_t[]> free_;
    uint32_t nfree_ = 0;
    uint32_t cursor_ = 0;
    std::atomic<uint32_t> live_{0};
};

}  // namespace twill
