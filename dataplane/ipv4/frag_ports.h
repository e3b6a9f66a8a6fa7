// The ports of fragmented datagrams, remembered from their first fragment so that the
// later ones, which carry no transport header, are looked up (connection tracking, and
// the policy that will use it) as the datagram they belong to: a later fragment never
// slips past a lookup its first fragment went through. Linux reassembles instead; a
// forwarder that does not, tracks (RFC 1858's concern, and RFC 3128's).
//
// One table per worker, direct-mapped by (source, destination, protocol, IP ID): a
// newer datagram takes the slot of an older one. A first fragment that comes again with
// other ports is an overlapping rewrite of the header and is refused.
#pragma once

#include <array>
#include <cstdint>

namespace twill {

class frag_ports {
public:
    static constexpr uint32_t slots = 4096;
    static constexpr uint32_t lifetime_s = 10;

    struct ports {
        uint16_t sport;  // network order, as in the packet
        uint16_t dport;
    };

    // A first fragment's ports; false when the same datagram's first fragment was seen
    // with other ports (the caller drops it).
    bool remember(uint32_t src, uint32_t dst, uint8_t proto, uint16_t id, ports p, uint32_t now_s) {
        slot& s = table_[index(src, dst, proto, id)];
        if (s.live(now_s) && s.src == src && s.dst == dst && s.proto == proto && s.id == id) {
            if (s.p.sport != p.sport || s.p.dport != p.dport) {
                return false;
            }
        }
        s = {src, dst, now_s + lifetime_s, p, id, proto};
        return true;
    }

    // The ports of a later fragment's datagram, if its first fragment was seen.
    bool find(uint32_t src, uint32_t dst, uint8_t proto, uint16_t id, uint32_t now_s, ports& out) const {
        const slot& s = table_[index(src, dst, proto, id)];
        if (!s.live(now_s) || s.src != src || s.dst != dst || s.proto != proto || s.id != id) {
            return false;
        }
        out = s.p;
        return true;
    }

private:
    struct slot {
        uint32_t src = 0;
        uint32_t dst = 0;
        uint32_t expires = 0;
        ports p{};
        uint16_t id = 0;
        uint8_t proto = 0;
        bool live(uint32_t now_s) const { return proto != 0 && int32_t(expires - now_s) > 0; }
    };
    static uint32_t index(uint32_t src, uint32_t dst, uint8_t proto, uint16_t id) {
        uint64_t h = (uint64_t(src) << 32 | dst) * 0x9e3779b97f4a7c15ull;
        h ^= uint64_t(id) << 8 | proto;
        h *= 0xff51afd7ed558ccdull;
        return uint32_t(h >> 40) & (slots - 1);
    }

    std::array<slot, slots> table_{};
};

}  // namespace twill
