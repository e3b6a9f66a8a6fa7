// CRC32c (Castagnoli; SCTP's checksum, RFC 4960 appendix B) with the SSE4.2 instruction,
// loading through memcpy: DPDK's rte_hash_crc reads 8-byte words in place, which is
// undefined behaviour at an odd address (an SCTP header behind a 14-byte Ethernet one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <rte_hash_crc.h>

namespace twill::net {

// The raw CRC register after `len` bytes from `crc`; SCTP's checksum is
// ~crc32c(p, len, 0xffffffff).
inline uint32_t crc32c(const void* p, size_t len, uint32_t crc) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (; len >= 8; b += 8, len -= 8) {
        uint64_t v;
        std::memcpy(&v, b, 8);
        crc = rte_hash_crc_8byte(v, crc);
    }
    for (; len > 0; ++b, --len) {
        crc = rte_hash_crc_1byte(*b, crc);
    }
    return crc;
}

}  // namespace twill::net
