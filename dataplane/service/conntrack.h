// Connection tracking for services: which backend a flow was given and how its packets
// are translated, in both directions. It is not one of the swapped tables: it lives for
// the process, holds values only (addresses, ports, a backend slot and its generation),
// never pointers into published tables, and so survives every table change.
//
// Layout: a fixed array of 64-byte entries, and an index of 64-bit words (open
// addressing, linear probing bounded at `max_probe`) in which every connection has two
// keys, its original tuple and its reply tuple. An index word holds a 32-bit hash tag and
// the entry number with the direction, so a probe reads one word per slot and touches an
// entry only when the tag matches. Erasing leaves a tombstone, and inserts reuse
// tombstones, so they do not pile up; with one worker a tombstone that ends a probe chain
// is also folded back to empty.
//
// Workers: the entries are cut into one range per worker, its owner, which alone
// allocates from it, writes a connection's tuples, and frees it. The two directions of a
// connection may still come to different workers, so any worker may find any entry,
// change its state (by compare-and-swap: a RST is never overwritten by a late ACK), its
// expiry, its backend check and its policy version (`shared_field`s), and end it: ending
// claims the entry (state -> dying, one worker wins), unindexes it, and leaves it to the
// owner's sweep (state dead) when it is another's. The index is written by
// compare-and-swap. A reader (another worker, or the control thread listing) copies or
// compares an entry under its sequence number, which only the owner moves (odd while it
// writes the tuples), and retries while it changes: an entry freed and reused is never
// taken for the connection it held before.
//
// Memory comes from big_zeroed: zero pages cost nothing until a connection first lands on
// them, and are 2 MB pages where the kernel has them, so that lookups do not miss the TLB
// as well.
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
    dying,        // claimed by the worker ending it, being unindexed
    dead,         // unindexed, waiting for its owner to free it
};

// In use: a connection or an affinity record, not being ended.
constexpr bool ct_live(ct_state s) {
    return s != ct_state::free && s != ct_state::dying && s != ct_state::dead;
}

// A field of an entry that any worker may write while others read it: relaxed atomic
// loads and stores that read like the plain value.
template <typename T>
class shared_field {
public:
    shared_field() = default;
    shared_field(T v) : v_(v) {}  // NOLINT: reads like the plain value
    operator T() const { return v_.load(std::memory_order_relaxed); }
    shared_field& operator=(T v) {
        v_.store(v, std::memory_order_relaxed);
        return *this;
    }
    // Sets `desired` if the value is still `expected`; else false, and `expected` is the
    // value found.
    bool replace(T& expected, T desired) {
        return v_.compare_exchange_strong(expected, desired, std::memory_order_relaxed);
    }

private:
    std::atomic<T> v_{};
};

struct alignas(64) ct_entry {
    std::atomic<uint32_t> seq{0};      // odd while the owner writes the tuples
    std::atomic<uint32_t> expires{0};  // second (ctx.now_s) at which it times out
    flow_key orig;                     // client -> frontend, as received
    flow_key reply;                    // backend -> client, or -> the SNAT address and port
    uint32_t backend = 0;              // slot in backend_states
    uint16_t backend_gen = 0;          // the slot's generation when chosen (low bits)
    shared_field<uint16_t> checked;    // service_table::epoch() when the backend was last
                                       // seen alive (low bits)
    uint32_t frontend = 0;             // slot of the service frontend, for listings
    shared_field<ct_state> state;
    uint8_t flags = 0;
    uint8_t peer_mac[6] = {};         // from_underlay: where the client's frames came from
    shared_field<uint32_t> policy_gen;  // the policy version that last allowed it; 0 = none yet

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
        uint32_t seq = 0;    // the entry's sequence when it matched (changes if it is reused)
    };

    // `capacity` connections (and affinity records), cut into `workers` ranges; the index
    // gets four slots per connection.
    explicit conntrack(uint32_t capacity, uint32_t workers = 1);
    ~conntrack();
    conntrack(const conntrack&) = delete;
    conntrack& operator=(const conntrack&) = delete;

    uint32_t capacity() const { return capacity_; }
    uint32_t workers() const { return workers_; }
    // Connections in use, summed over the workers' ranges.
    uint32_t size() const {
        uint32_t n = 0;
        for (uint32_t w = 0; w < workers_; ++w) {
            n += parts_[w].live.load(std::memory_order_relaxed);
        }
        return n;
    }
    // Whether no connection is tracked: read on every packet, so kept as a count of the
    // ranges in use that changes only when a range empties or stops being empty (a sum of
    // the live counts would read lines every inserting worker writes).
    bool empty() const { return shared_.nonempty.load(std::memory_order_relaxed) == 0; }
    // Whether worker `w`'s range has no free entry; whether any has none (kept the same way).
    bool full(uint32_t w) const { return parts_[w].nfree == 0; }
    bool any_full() const { return shared_.full.load(std::memory_order_relaxed) != 0; }
    // The worker whose range holds entry `e`.
    uint32_t owner(uint32_t e) const { return workers_ == 1 ? 0 : e / part_size_; }
    // Whether worker `w`'s range holds entry `e`: per packet, so a compare on the worker's
    // own range rather than owner()'s division.
    bool owns(uint32_t w, uint32_t e) const { return e - parts_[w].first < parts_[w].count; }

    hit find(const flow_key& k, uint32_t h) const {
    again:
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
                const uint32_t s = ent.seq.load(std::memory_order_acquire);
                const bool same = (reply ? ent.reply : ent.orig) == k;
                std::atomic_thread_fence(std::memory_order_acquire);
                if (s & 1 || ent.seq.load(std::memory_order_relaxed) != s) [[unlikely]] {
                    goto again;  // its owner is rewriting it: look again
                }
                if (same && ct_live(ent.state)) {
                    return {e, reply, s};
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

    // Worker `w` only: a free entry of its range, or no_entry when the range is full.
    uint32_t allocate(uint32_t w = 0) {
        part& p = parts_[w];
        if (p.nfree == 0) {
            return no_entry;
        }
        if (p.nfree > 1) {
            rte_prefetch0_write(&entries_[p.free[p.nfree - 2]]);  // the next connection's
        }
        return p.free[--p.nfree];
    }
    // Indexes entry `e` under its original tuple and, unless it is an affinity record,
    // its reply tuple. False (and nothing indexed) when either is in use already or a
    // probe chain is full; the entry is then still the caller's to release().
    bool insert(uint32_t e);
    // Ends entry `e` for worker `w`: claims it (false, and nothing done, when it is not
    // in use or another worker claimed it first), calls `ended(entry, state it had)`,
    // unindexes it, and frees it when `w` owns it (else its owner's sweep will).
    template <typename F>
    bool erase(uint32_t e, uint32_t w, F&& ended) {
        ct_entry& ent = entries_[e];
        ct_state s = ent.state;
        do {
            if (!ct_live(s)) {
                return false;
            }
        } while (!ent.state.replace(s, ct_state::dying));
        ended(static_cast<const ct_entry&>(ent), s);
        unindex(e, s);
        if (owns(w, e)) {
            free_entry(e);
        } else {
            ent.state = ct_state::dead;
        }
        return true;
    }
    bool erase(uint32_t e, uint32_t w = 0) {
        return erase(e, w, [](const ct_entry&, ct_state) {});
    }
    // Frees an entry that its owner allocated but never inserted.
    void release(uint32_t e) {
        part& p = parts_[owner(e)];
        p.free[p.nfree++] = e;
    }

    // Owner only: marks the start and end of a change to an entry's tuples, which readers
    // on other threads may be comparing or copying.
    void write_begin(ct_entry& e) {
        e.seq.store(e.seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
    }
    void write_end(ct_entry& e) {
        e.seq.store(e.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    // Worker `w` only: visits up to `budget` entries of its range from where its last
    // sweep stopped, more as the range fills (see sweep_budget); frees those other workers
    // ended, and ends (erase) those in use whose time is up, calling
    // `expired(entry, state)` for each.
    template <typename F>
    void sweep(uint32_t w, uint32_t now_s, uint32_t budget, F&& expired) {
        part& p = parts_[w];
        budget = sweep_budget(p.nfree, p.count, budget);
        for (uint32_t n = 0; n < budget && p.nfree != p.count; ++n) {
            const uint32_t e = p.first + p.cursor;
            p.cursor = p.cursor + 1 == p.count ? 0 : p.cursor + 1;
            ct_entry& ent = entries_[e];
            const ct_state s = ent.state;
            if (s == ct_state::dead) {
                free_entry(e);
            } else if (ct_live(s) && int32_t(ent.expires.load(std::memory_order_relaxed) - now_s) <= 0) {
                erase(e, w, expired);
            }
        }
    }

    // A sweep's visits with `nfree` of `count` entries free: `base` while at least half
    // are free, 4x while a quarter is, 16x beyond. A fixed pace frees at most `base`
    // entries per sweep, however many have expired: short-lived connections arriving
    // faster than that (UDP at a 1 s timeout, say) filled the table with expired entries
    // and new ones went untracked; the faster pace keeps up while the visits are still
    // mostly sequential reads of the entries.
    static constexpr uint32_t sweep_budget(uint32_t nfree, uint32_t count, uint32_t base) {
        if (uint64_t(nfree) * 2 >= count) {
            return base;
        }
        return uint64_t(nfree) * 4 >= count ? base * 4 : base * 16;
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
                std::memcpy(static_cast<void*>(reinterpret_cast<uint8_t*>(&copy) + 8),
                            reinterpret_cast<const uint8_t*>(&ent) + 8, sizeof(ct_entry) - 8);
                std::atomic_thread_fence(std::memory_order_acquire);
                if (ent.seq.load(std::memory_order_relaxed) == s) {
                    break;
                }
            }
            if (ct_live(copy.state)) {
                f(copy);
            }
        }
    }

private:
    static constexpr uint32_t empty_word = 0;
    static constexpr uint32_t tombstone_word = 1;
    static uint32_t word_of(uint32_t e, bool reply) { return (e + 1) << 1 | uint32_t(reply); }

    // One worker's range of entries, on lines of its own.
    struct alignas(64) part {
        std::unique_ptr<uint32_t[]> free;
        uint32_t nfree = 0;
        uint32_t first = 0;
        uint32_t count = 0;
        uint32_t cursor = 0;
        std::atomic<uint32_t> live{0};
    };

    bool index_key(const flow_key& k, uint32_t word);
    void unindex_key(const flow_key& k, uint32_t word);
    void unindex(uint32_t e, ct_state s);
    void free_entry(uint32_t e);

    // Ranges in use and ranges full; each range's owner moves them when its own changes.
    struct alignas(64) range_counts {
        std::atomic<uint32_t> nonempty{0};
        std::atomic<uint32_t> full{0};
    };
    range_counts shared_;
    uint32_t capacity_;
    uint32_t workers_;
    uint32_t part_size_;
    uint32_t mask_;
    big_array<ct_entry> entries_;
    big_array<std::atomic<uint64_t>> index_;
    std::unique_ptr<part[]> parts_;
};

}  // namespace twill
