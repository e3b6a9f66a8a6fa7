#include "dataplane/util/big_zeroed.h"

#include <sys/mman.h>

#include <cstdint>

#include <rte_debug.h>

namespace twill {

namespace {

constexpr size_t huge_page = size_t(2) << 20;

size_t mapped_size(size_t bytes) {
    return bytes < huge_page ? bytes : (bytes + huge_page - 1) / huge_page * huge_page;
}

}  // namespace

void* big_zeroed(size_t bytes) {
    if (bytes == 0) {
        bytes = 1;
    }
    const size_t size = mapped_size(bytes);
    if (size < huge_page) {
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : p;
    }
    // Map one huge page more than needed and trim to a 2 MB boundary on both sides, so
    // that every page of the array can be a huge one.
    const size_t span = size + huge_page;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        return nullptr;
    }
    const uintptr_t start = uintptr_t(raw);
    const uintptr_t aligned = (start + huge_page - 1) & ~uintptr_t(huge_page - 1);
    if (aligned != start) {
        munmap(raw, aligned - start);
    }
    if (const uintptr_t end = aligned + size, raw_end = start + span; raw_end != end) {
        munmap(reinterpret_cast<void*>(end), raw_end - end);
    }
    void* p = reinterpret_cast<void*>(aligned);
    (void)madvise(p, size, MADV_HUGEPAGE);  // advice only: 4 KiB pages where it is refused
    return p;
}

void big_free(void* p, size_t bytes) {
    if (p != nullptr) {
        munmap(p, mapped_size(bytes == 0 ? 1 : bytes));
    }
}

void no_memory(size_t bytes) {
    rte_panic("cannot allocate %zu bytes for a table\n", bytes);
}

}  // namespace twill
