// The services workers look up: a frontend (virtual address, protocol, port) -> the
// immutable entry of its service port (backends, scheduler state tables). One table for
// the life of the process, changed in place entry by entry like the slice table, so one
// endpoint change costs the same with 10 services or 100k. Replaced entries are freed
// after a grace period (control/service_publisher.h).
//
// Backends also have a slot in backend_states, which outlives entries: the generation
// that connection tracking checks (a removed backend's connections end), the weight that
// new connections see, and the active/inactive connection counts ipvsadm shows. A table
// epoch, bumped whenever a backend ends, lets a connection skip that check (and the
// backend's cache line) while nothing has ended since it last looked.
//
// A filter over every frontend and backend (address, protocol, port) tells the workers
// which packets can belong to a service connection at all, so that other traffic never
// touches the connection table.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/net/addr.h"
#include "dataplane/tables/tables.h"
#include "dataplane/util/big_zeroed.h"

namespace twill {

enum class sched_kind : uint8_t { rr, wrr, lc, sh, mh };

struct service_backend {
    uint32_t ip = 0;    // network order
    uint16_t port = 0;  // network order
    uint16_t weight = 0;
    uint32_t state = no_index;  // slot in backend_states
    bool local = false;         // on this node (a local pod, or the node itself)
};

struct service_entry {
    uint32_t vip = 0;   // network order
    uint16_t port = 0;  // network order
    uint8_t proto = 0;
    sched_kind sched = sched_kind::rr;
    uint32_t slot = no_index;  // frontend slot, for round-robin state and listings
    bool cluster_ip = false;   // the service's cluster IP (not a node port or external IP)
    bool affinity = false;     // sessionAffinity: ClientIP
    uint32_t affinity_timeout = 0;
    // Sources outside the cluster are masqueraded to the node's overlay address so that
    // replies come back through it (externalTrafficPolicy: Cluster); Local keeps them.
    bool snat_outside = true;
    // With no backend to pick: true = reject (TCP RST, ICMP port unreachable), as for a
    // service without endpoints; false = drop (Local with endpoints elsewhere only).
    bool reject_when_empty = true;
    std::vector<service_backend> backends;  // every endpoint, weight 0 included
    // rr, wrr: the order in which backends (indexes into `backends`) take new flows;
    // lc: the candidates; sh, mh: hash bucket -> backend index.
    std::vector<uint16_t> schedule;
};

struct backend_state {
    std::atomic<uint32_t> gen{0};
    std::atomic<uint32_t> weight{0};
};

// One worker's count of a backend's connections (IPVS's ActiveConn and InActConn), moved
// by that worker alone, so that opening connections on two workers shares no cache line.
// A connection one worker opened may be counted out by another, so a worker's own
// numbers can go below zero: only the sum over the workers means anything.
struct conn_counts {
    std::atomic<int32_t> active{0};
    std::atomic<int32_t> inactive{0};
};

// An open-addressing map from a 64-bit frontend key to a slot, one writer, lock-free
// readers. A key word is written after its value and never changes to another key in
// place: erasing leaves a tombstone that only a rebuild clears, so a reader that matched
// a key reads that key's value (or its newer value).
class frontend_map {
public:
    static constexpr uint32_t not_found = ~uint32_t(0);

    explicit frontend_map(uint32_t capacity)
        : mask_(std::bit_ceil(std::max<uint32_t>(capacity, 8)) - 1),
          keys_(size_t(mask_) + 1),
          values_(size_t(mask_) + 1) {}

    static uint64_t key(uint32_t ip_raw, uint8_t proto, uint16_t port_raw) {
        return uint64_t(ip_raw) << 32 | uint64_t(port_raw) << 8 | proto;
    }

    uint32_t find(uint64_t k) const {
        for (uint32_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
            const uint64_t w = keys_[i].load(std::memory_order_acquire);
            if (w == k) {
                return values_[i].load(std::memory_order_relaxed);
            }
            if (w == 0) {
                return not_found;
            }
        }
    }
    // Writer only; the caller keeps used() below half the capacity (room()).
    void insert(uint64_t k, uint32_t v) {
        uint32_t i = hash(k) & mask_;
        for (;; i = (i + 1) & mask_) {
            const uint64_t w = keys_[i].load(std::memory_order_relaxed);
            if (w == k) {
                values_[i].store(v, std::memory_order_relaxed);
                return;
            }
            if (w == 0) {
                break;
            }
        }
        values_[i].store(v, std::memory_order_relaxed);
        keys_[i].store(k, std::memory_order_release);
        ++used_;
        ++live_;
    }
    bool erase(uint64_t k) {
        for (uint32_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
            const uint64_t w = keys_[i].load(std::memory_order_relaxed);
            if (w == k) {
                keys_[i].store(tombstone, std::memory_order_release);
                --live_;
                return true;
            }
            if (w == 0) {
                return false;
            }
        }
    }
    bool room() const { return 2 * (used_ + 1) <= mask_ + 1; }
    uint32_t size() const { return live_; }
    uint32_t capacity() const { return mask_ + 1; }

    template <typename F>
    void for_each(F f) const {
        for (uint32_t i = 0; i <= mask_; ++i) {
            const uint64_t w = keys_[i].load(std::memory_order_relaxed);
            if (w != 0 && w != tombstone) {
                f(w, values_[i].load(std::memory_order_relaxed));
            }
        }
    }

private:
    // Protocol 0 is never a frontend's: the tombstone cannot be a key.
    static constexpr uint64_t tombstone = 1ull << 8;
    // A full 64-bit mix (murmur3's finalizer): keys differ in few bits (consecutive
    // addresses, one port), and a weaker hash left long probe chains at 100k services.
    static uint32_t hash(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53ull;
        k ^= k >> 33;
        return uint32_t(k);
    }

    uint32_t mask_;
    big_array<std::atomic<uint64_t>> keys_;
    big_array<std::atomic<uint32_t>> values_;
    uint32_t used_ = 0;
    uint32_t live_ = 0;
};

// A Bloom filter with one hash: a bitmap over the 64-bit keys of frontend_map. Bits are
// only ever set (a removed key is a false positive until the next rebuild), by the one
// writer; readers test them without ordering, as a key is set before the entry that
// makes it reachable is published.
class key_filter {
public:
    explicit key_filter(uint32_t bits)
        : mask_(std::bit_ceil(std::max<uint32_t>(bits, 512)) / 64 - 1),
          words_(size_t(mask_) + 1) {}
    bool test(uint64_t k) const {
        const uint64_t h = mix(k);
        return words_[(h >> 6) & mask_].load(std::memory_order_relaxed) >> (h & 63) & 1;
    }
    void set(uint64_t k) {
        const uint64_t h = mix(k);
        std::atomic<uint64_t>& w = words_[(h >> 6) & mask_];
        w.store(w.load(std::memory_order_relaxed) | uint64_t(1) << (h & 63), std::memory_order_relaxed);
    }
    uint32_t bits() const { return (mask_ + 1) * 64; }

private:
    static uint64_t mix(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53ull;
        return k ^ (k >> 33);
    }

    uint32_t mask_;
    big_array<std::atomic<uint64_t>> words_;
};

class service_table {
public:
    static constexpr uint32_t frontend_capacity = 1u << 20;
    static constexpr uint32_t backend_capacity = 1u << 21;

    // `workers`: each keeps its own connection counts and round-robin positions.
    explicit service_table(uint32_t workers = 1);
    ~service_table();
    service_table(const service_table&) = delete;
    service_table& operator=(const service_table&) = delete;

    // Readers (workers).
    bool empty() const { return frontends_.load(std::memory_order_relaxed) == 0; }
    const service_entry* lookup(uint32_t ip_raw, uint8_t proto, uint16_t port_raw) const {
        const uint32_t slot = map_.load(std::memory_order_acquire)->find(frontend_map::key(ip_raw, proto, port_raw));
        return slot == frontend_map::not_found ? nullptr
                                               : entries_[slot].load(std::memory_order_acquire);
    }
    const service_entry* entry(uint32_t slot) const {
        return entries_[slot].load(std::memory_order_acquire);
    }
    // The cluster IP frontend whose backend sends from `ip_raw`:`port_raw`, for replies of
    // flows a full connection table let through untracked; frontend_map::not_found if none.
    uint32_t reverse(uint32_t ip_raw, uint8_t proto, uint16_t port_raw) const {
        return reverse_.load(std::memory_order_acquire)->find(frontend_map::key(ip_raw, proto, port_raw));
    }
    backend_state& backend(uint32_t slot) const { return backends_[slot]; }
    // Bumped (after the slot's generation) whenever a backend ends.
    uint32_t epoch() const { return epoch_.load(std::memory_order_acquire); }
    // Whether a packet with this tuple (network order) may be a frontend's or a
    // backend's: its destination a frontend, or its source a backend.
    bool may_match(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport) const {
        const key_filter* f = filter_.load(std::memory_order_acquire);
        return f->test(frontend_map::key(dst, proto, dport)) || f->test(backend_key(src, proto, sport));
    }
    // A backend's key in the filter: its frontend_map::key with a bit no frontend key has
    // (bits 24-31 are zero there), so that traffic to a backend (pod to pod, not through
    // its service) does not pass as a frontend's.
    static uint64_t backend_key(uint32_t ip_raw, uint8_t proto, uint16_t port_raw) {
        return frontend_map::key(ip_raw, proto, port_raw) | uint64_t(1) << 24;
    }
    // Worker `w`'s round-robin position in a frontend's schedule: each worker goes round
    // on its own (as per-core load balancers do), which spreads each worker's
    // connections, and so all of them, evenly, without a line the workers share.
    std::atomic<uint32_t>& rr_next(uint32_t w, uint32_t slot) const { return rr_[w][slot]; }
    // Worker `w`'s connection counts of backend slot `slot`, and their sums.
    conn_counts& counts(uint32_t w, uint32_t slot) const { return counts_[w][slot]; }
    int32_t active(uint32_t slot) const;
    int32_t inactive(uint32_t slot) const;
    // The control thread, once no worker counts into the slot under its old backend.
    void reset_counts(uint32_t slot);
    // The control thread, for a frontend slot before it is published.
    void reset_rr(uint32_t slot) {
        for (auto& r : rr_) {
            r[slot].store(0, std::memory_order_relaxed);
        }
    }

    // Writer (the control thread). Each returns what workers may still read.
    // set_entry also admits the entry's frontend and backends to the filter, which it
    // rebuilds larger when it gets crowded (at most 1 key per 8 bits).
    [[nodiscard]] std::vector<retired_ptr> set_entry(uint32_t slot,
                                                     std::unique_ptr<const service_entry> e);
    // Ends a backend slot: its connections see a new generation.
    void end_backend(uint32_t slot) {
        backends_[slot].gen.fetch_add(1, std::memory_order_relaxed);
        epoch_.fetch_add(1, std::memory_order_release);
    }
    uint32_t filter_bits() const { return filter_owner_->bits(); }
    [[nodiscard]] retired_ptr map_frontend(uint64_t key, uint32_t slot) {
        return map_into(map_owner_, map_, key, slot);
    }
    void unmap_frontend(uint64_t key) { map_owner_->erase(key); }
    [[nodiscard]] retired_ptr map_reverse(uint64_t backend_key, uint32_t slot) {
        return map_into(reverse_owner_, reverse_, backend_key, slot);
    }
    void unmap_reverse(uint64_t backend_key) { reverse_owner_->erase(backend_key); }

private:
    // calloc'd: zero pages cost nothing until used.
    big_array<std::atomic<const service_entry*>> entries_;
    // Workers count connections and advance round-robin through a const table.
    mutable big_array<backend_state> backends_;
    // Per worker, each its own mapping (no line shared between workers).
    mutable std::vector<big_array<conn_counts>> counts_;
    mutable std::vector<big_array<std::atomic<uint32_t>>> rr_;
    // Inserts, or rebuilds without tombstones and swaps when half full.
    static retired_ptr map_into(std::unique_ptr<frontend_map>& owner,
                                std::atomic<const frontend_map*>& published, uint64_t key,
                                uint32_t slot);

    std::unique_ptr<frontend_map> map_owner_;
    std::atomic<const frontend_map*> map_;
    std::unique_ptr<frontend_map> reverse_owner_;
    std::atomic<const frontend_map*> reverse_;
    std::atomic<uint32_t> frontends_{0};
    std::atomic<uint32_t> epoch_{0};
    std::unique_ptr<key_filter> filter_owner_;
    std::atomic<const key_filter*> filter_;
    uint32_t filter_keys_ = 0;  // keys set since the last rebuild, repeats included
};

}  // namespace twill
