#include "dataplane/service/service_table.h"

namespace twill {

service_table::service_table(uint32_t workers)
    : entries_(frontend_capacity),
      backends_(backend_capacity),
      map_owner_(std::make_unique<frontend_map>(1024)),
      map_(map_owner_.get()),
      reverse_owner_(std::make_unique<frontend_map>(1024)),
      reverse_(reverse_owner_.get()),
      filter_owner_(std::make_unique<key_filter>(1u << 16)),
      filter_(filter_owner_.get()) {
    for (uint32_t w = 0; w < std::max<uint32_t>(workers, 1); ++w) {
        counts_.emplace_back(backend_capacity);
        rr_.emplace_back(frontend_capacity);
    }
}

int32_t service_table::active(uint32_t slot) const {
    int32_t n = 0;
    for (const auto& c : counts_) {
        n += c[slot].active.load(std::memory_order_relaxed);
    }
    return n;
}

int32_t service_table::inactive(uint32_t slot) const {
    int32_t n = 0;
    for (const auto& c : counts_) {
        n += c[slot].inactive.load(std::memory_order_relaxed);
    }
    return n;
}

void service_table::reset_counts(uint32_t slot) {
    for (auto& c : counts_) {
        c[slot].active.store(0, std::memory_order_relaxed);
        c[slot].inactive.store(0, std::memory_order_relaxed);
    }
}

service_table::~service_table() {
    for (uint32_t i = 0; i < frontend_capacity; ++i) {
        delete entries_[i].load(std::memory_order_relaxed);
    }
}

namespace {

template <typename F>
void keys_of(const service_entry& e, F&& f) {
    f(frontend_map::key(e.vip, e.proto, e.port));
    for (const service_backend& b : e.backends) {
        f(service_table::backend_key(b.ip, e.proto, b.port));
    }
}

}  // namespace

std::vector<retired_ptr> service_table::set_entry(uint32_t slot,
                                                  std::unique_ptr<const service_entry> e) {
    std::vector<retired_ptr> retired;
    if (e) {
        const uint32_t keys = uint32_t(1 + e->backends.size());
        if (uint64_t(filter_keys_ + keys) * 8 > filter_owner_->bits()) {
            // Rebuilt from the entries in the table (dropping keys that went away) at 16
            // bits per key, and swapped in.
            uint32_t live = keys;
            for (uint32_t i = 0; i < frontend_capacity; ++i) {
                if (const service_entry* x = entries_[i].load(std::memory_order_relaxed)) {
                    live += uint32_t(1 + x->backends.size());
                }
            }
            auto next = std::make_unique<key_filter>(uint32_t(std::min<uint64_t>(uint64_t(live) * 16, 1u << 31)));
            filter_keys_ = 0;
            for (uint32_t i = 0; i < frontend_capacity; ++i) {
                if (const service_entry* x = entries_[i].load(std::memory_order_relaxed); x != nullptr) {
                    keys_of(*x, [&](uint64_t k) { next->set(k); ++filter_keys_; });
                }
            }
            filter_.store(next.get(), std::memory_order_release);
            retired.push_back(std::shared_ptr<const key_filter>(std::move(filter_owner_)));
            filter_owner_ = std::move(next);
        }
        keys_of(*e, [&](uint64_t k) { filter_owner_->set(k); });
        filter_keys_ += keys;
    }
    const service_entry* old = entries_[slot].exchange(e.release(), std::memory_order_acq_rel);
    frontends_.store(frontends_.load(std::memory_order_relaxed) + (old == nullptr) -
                         (entries_[slot].load(std::memory_order_relaxed) == nullptr),
                     std::memory_order_relaxed);
    retired.push_back(retired_ptr(old, [](const void* p) { delete static_cast<const service_entry*>(p); }));
    return retired;
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
