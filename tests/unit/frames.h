// Reading test output frames: a header at an offset, checked to be inside the frame.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

namespace twill::test {

template <typename T>
const T& at(const std::vector<uint8_t>& f, size_t off) {
    REQUIRE(f.size() >= off + sizeof(T));
    return *reinterpret_cast<const T*>(f.data() + off);
}

}  // namespace twill::test
