#include "dataplane/ipv4/fragment.h"

#include <algorithm>
#include <cstring>

#include "dataplane/net/checksum.h"

namespace twill {

uint16_t ipv4_fragment(pipeline_ctx& ctx, const rte_mbuf* m, const net::ipv4_hdr* ip,
                       uint32_t header_len, uint32_t total_len, uint16_t mtu,
                       rte_mbuf* out[max_fragments]) {
    const uint32_t payload = total_len - header_len;
    const uint32_t room = rte_pktmbuf_data_room_size(ctx.pool) - RTE_PKTMBUF_HEADROOM -
                          uint32_t(sizeof(net::eth_hdr));
    // Offsets count 8-byte units.
    const uint32_t per_fragment = (std::min<uint32_t>(mtu, room) - header_len) & ~7u;
    if (per_fragment == 0) {
        return 0;
    }
    const uint32_t count = (payload + per_fragment - 1) / per_fragment;
    if (count > max_fragments || rte_pktmbuf_alloc_bulk(ctx.pool, out, count) != 0) {
        return 0;
    }
    const uint16_t frag = ip->frag.get();
    const uint16_t base_offset = frag & net::ipv4_hdr::offset_mask;  // already a fragment
    const bool more_after = frag & net::ipv4_hdr::flag_mf;
    // The payload may run past the first segment: read through the chain.
    const auto data =
        uint32_t(reinterpret_cast<const uint8_t*>(ip) - rte_pktmbuf_mtod(m, const uint8_t*)) + header_len;
    for (uint32_t i = 0; i < count; ++i) {
        const uint32_t offset = i * per_fragment;
        const uint32_t len = std::min(per_fragment, payload - offset);
        auto* frame = reinterpret_cast<uint8_t*>(
            rte_pktmbuf_append(out[i], uint16_t(sizeof(net::eth_hdr) + header_len + len)));
        std::memset(frame, 0, sizeof(net::eth_hdr));
        reinterpret_cast<net::eth_hdr*>(frame)->type.set(net::ether_type_ipv4);
        auto* f = reinterpret_cast<net::ipv4_hdr*>(frame + sizeof(net::eth_hdr));
        std::memcpy(f, ip, header_len);
        uint8_t* to = reinterpret_cast<uint8_t*>(f) + header_len;
        if (const void* from = rte_pktmbuf_read(m, data + offset, len, to); from != to) {
            std::memcpy(to, from, len);
        }
        f->total_length.set(uint16_t(header_len + len));
        const bool last = i + 1 == count;
        f->frag.set(uint16_t((last && !more_after ? 0 : net::ipv4_hdr::flag_mf) |
                             (base_offset + offset / 8)));
        f->checksum = 0;
        f->checksum = uint16_t(~net::raw_checksum(f, header_len));
    }
    return uint16_t(count);
}

}  // namespace twill
