#include "dataplane/service/service_table.h"

#include <cstdlib>

#include <rte_debug.h>

namespace twill {

namespace {

template <typename T>
T* zeroed(size_t n) {
    void* p = std::calloc(n, sizeof(T));
    if (p == nullptr) {
        rte_panic("service table: cannot allocate %zu entries\n", n);
    }
    return static_cast<T*>(p);
}

}  // namespace

service_table::service_table()
    : entries_(zeroed<std::atomic<const service_entry*>>(frontend_capacity)),
      backends_(zeroed<backend_state>(backend_capacity)),
      rr_(zeroed<std::atomic<uint32_t>>(frontend_capacity)),
      map_owner_(std::make_unique<frontend_map>(1024)),
      map_(map_owner_.get()),
      reverse_owner_(std::make_unique<frontend_map>(1024)),
      reverse_(reverse_owner_.get()) {}

service_table::~service_table() {
    for (uint32_t i = 0; i < frontend_capacity; ++i) {
        delete entries_[i].load(std::memory_order_relaxed);
    }
    std::free(entries_);
    std::free(backends_);
    std::free(rr_);
}

retired_ptr service_table::set_entry(uint32_t slot, std::unique_ptr<const service_entry> e) {
    const service_entry* old = entries_[slot].exchange(e.release(), std::memory_order_acq_rel);
    frontends_.store(frontends_.load(std::memory_order_relaxed) + (old == nullptr) -
                         (entries_[slot].load(std::memory_order_relaxed) == nullptr),
                     std::memory_order_relaxed);
    return retired_ptr(old, [](const void* p) { delete static_cast<const service_entry*>(p); });
}

retired_ptr service_table::map_into(std::unique_ptr<frontend_map>& owner,
                                   std::atomic<const frontend_map*>& published, uint64_t key,
                                   uint32_t slot) {
    if (owner->room()) {
        owner->insert(key, slot);
        return nullptr;
    }
    // Rebuilt without tombstones, at least twice the live size, and swapped in.
    auto next = std::make_unique<frontend_map>(std::max<uint32_t>(1024, 4 * (owner->size() + 1)));
    owner->for_each([&](uint64_t k, uint32_t v) { next->insert(k, v); });
    next->insert(key, slot);
    published.store(next.get(), std::memory_order_release);
    std::shared_ptr<const frontend_map> old(std::move(owner));
    owner = std::move(next);
    return old;
}

}  // namespace twill
