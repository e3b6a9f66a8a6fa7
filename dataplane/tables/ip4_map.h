// A read-only open-addressing map from IPv4 address to a small index: a few cycles per
// lookup, no pointers to chase, built once by the control thread and never modified.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "dataplane/net/addr.h"

namespace twill {

class ip4_map {
public:
    static constexpr uint32_t not_found = ~uint32_t(0);

    ip4_map() : slots_(2) {}

    // Builds from (address, value) pairs; addresses are unique and never 0.0.0.0.
    template <typename Range>
    explicit ip4_map(const Range& pairs) {
        size_t n = 0;
        for ([[maybe_unused]] const auto& p : pairs) {
            ++n;
        }
        slots_.resize(std::bit_ceil(std::max<size_t>(2 * n, 2)));
        mask_ = uint32_t(slots_.size() - 1);
        for (const auto& [addr, value] : pairs) {
            uint32_t i = hash(addr.value) & mask_;
            while (slots_[i].key != 0) {
                i = (i + 1) & mask_;
            }
            slots_[i] = {addr.value, uint32_t(value)};
        }
    }

    uint32_t find(ip4_addr addr) const {
        if (addr.value == 0) [[unlikely]] {
            return not_found;
        }
        for (uint32_t i = hash(addr.value) & mask_;; i = (i + 1) & mask_) {
            const slot& s = slots_[i];
            if (s.key == addr.value) {
                return s.value;
            }
            if (s.key == 0) {
                return not_found;
            }
        }
    }

private:
    struct slot {
        uint32_t key = 0;
        uint32_t value = 0;
    };
    static uint32_t hash(uint32_t v) { return uint32_t((uint64_t(v) * 0x9e3779b97f4a7c15ull) >> 32); }

    std::vector<slot> slots_;
    uint32_t mask_ = 1;
};

}  // namespace twill
