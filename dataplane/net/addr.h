// Plain address types shared by the dataplane and the control side.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>

namespace twill {

// IPv4 address in host byte order (the form tables and arithmetic want).
struct ip4_addr {
    uint32_t value = 0;

    constexpr auto operator<=>(const ip4_addr&) const = default;
    constexpr uint8_t octet(int i) const { return uint8_t(value >> (24 - 8 * i)); }
    static constexpr ip4_addr from_octets(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
        return {uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d};
    }
};

// Never a source or destination worth routing (RFC 1812 5.3.7): "this network" 0/8,
// loopback 127/8, multicast and the reserved/broadcast block 224/3.
constexpr bool is_martian(ip4_addr a) {
    const uint32_t first = a.value >> 24;
    return first == 0 || first == 127 || first >= 224;
}

struct ip4_prefix {
    ip4_addr addr;
    uint8_t len = 0;

    constexpr auto operator<=>(const ip4_prefix&) const = default;
    constexpr uint32_t mask() const { return len == 0 ? 0 : ~uint32_t(0) << (32 - len); }
    constexpr bool contains(ip4_addr a) const { return (a.value & mask()) == addr.value; }
    constexpr bool contains(const ip4_prefix& p) const { return p.len >= len && contains(p.addr); }
    constexpr bool overlaps(const ip4_prefix& p) const { return contains(p) || p.contains(*this); }
    constexpr uint64_t size() const { return uint64_t(1) << (32 - len); }
};

struct [[gnu::packed]] mac_addr {
    std::array<uint8_t, 6> bytes{};

    constexpr auto operator<=>(const mac_addr&) const = default;
    // Two loads and compares instead of std::array's call to memcmp: this is per packet.
    bool operator==(const mac_addr& o) const {
        uint32_t a, b;
        uint16_t c, d;
        std::memcpy(&a, bytes.data(), 4);
        std::memcpy(&b, o.bytes.data(), 4);
        std::memcpy(&c, bytes.data() + 4, 2);
        std::memcpy(&d, o.bytes.data() + 4, 2);
        return ((a ^ b) | uint32_t(c ^ d)) == 0;
    }
    constexpr bool is_zero() const { return bytes == std::array<uint8_t, 6>{}; }
    constexpr bool is_multicast() const { return bytes[0] & 0x01; }
    // The six bytes as one number, most significant first.
    constexpr uint64_t to_u64() const {
        uint64_t v = 0;
        for (uint8_t b : bytes) {
            v = v << 8 | b;
        }
        return v;
    }
};

// Calico answers every pod ARP with this MAC on its cali* veths; twill does the same.
inline constexpr mac_addr default_gateway_mac{{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}};

}  // namespace twill
