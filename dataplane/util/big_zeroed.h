// Large zeroed arrays for tables a worker reads at random (the connection table and its
// index, the service tables): anonymous memory the kernel may back with 2 MB pages
// (transparent huge pages, asked for with MADV_HUGEPAGE), so that a lookup into tens of
// megabytes does not also miss the TLB. Pages are still zero until first touched; where
// THP is off or fragmented memory has no free 2 MB page, the kernel falls back to 4 KiB
// pages and nothing else changes.
#pragma once

#include <cstddef>
#include <utility>

namespace twill {

// Zeroed, 2 MB aligned when at least 2 MB; nullptr when the memory is not there.
void* big_zeroed(size_t bytes);
// Frees what big_zeroed(bytes) returned (nullptr is fine).
void big_free(void* p, size_t bytes);
[[noreturn]] void no_memory(size_t bytes);

// `n` zeroed T, owned; for types whose all-zero bytes are a valid value (integers,
// std::atomic of them, plain structs of those). Never empty: panics when the memory is
// not there, like the allocations of the tables it serves.
template <typename T>
class big_array {
public:
    big_array() = default;
    explicit big_array(size_t n) : p_(static_cast<T*>(big_zeroed(n * sizeof(T)))), n_(n) {
        if (p_ == nullptr) {
            no_memory(n * sizeof(T));
        }
    }
    ~big_array() { big_free(p_, n_ * sizeof(T)); }
    big_array(big_array&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
    big_array& operator=(big_array&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        return *this;
    }

    T& operator[](size_t i) { return p_[i]; }
    const T& operator[](size_t i) const { return p_[i]; }
    T* get() { return p_; }
    const T* get() const { return p_; }
    size_t size() const { return n_; }

private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

}  // namespace twill
