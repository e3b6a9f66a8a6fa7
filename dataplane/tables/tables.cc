#include "dataplane/tables/tables.h"

#include <algorithm>
#include <utility>

namespace twill {

slice_table::slice_table(ip4_prefix cluster, uint8_t cell_len, std::vector<remote_node_entry> nodes,
                         const std::vector<std::pair<ip4_prefix, uint32_t>>& slices)
    : cluster_(cluster),
      shift_(uint8_t(32 - cell_len)),
      cells_(size_t(1) << (cell_len - cluster.len), no_index),
      nodes_(std::move(nodes)) {
    // Slices never overlap (validated), so each cell belongs to at most one slice.
    for (const auto& [slice, index] : slices) {
        uint32_t first = (slice.addr.value - cluster_.addr.value) >> shift_;
        uint64_t count = slice.size() >> shift_;
        std::fill_n(cells_.begin() + first, std::max<uint64_t>(count, 1), index);
    }
    std::vector<std::pair<ip4_addr, uint32_t>> by_ip;
    for (uint32_t i = 0; i < nodes_.size(); ++i) {
        by_ip.emplace_back(nodes_[i].ip, i);
    }
    by_ip_ = ip4_map(by_ip);
}

pod_table::pod_table(ip4_prefix slice, std::vector<local_pod_entry> pods)
    : slice_(slice), by_offset_(slice.size(), no_index), pods_(std::move(pods)) {
    by_port_.fill(no_index);
    for (uint32_t i = 0; i < pods_.size(); ++i) {
        by_offset_[pods_[i].ip.value - slice_.addr.value] = i;
        if (pods_[i].port_id < RTE_MAX_ETHPORTS) {
            by_port_[pods_[i].port_id] = i;
        }
    }
}

}  // namespace twill
