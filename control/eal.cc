#include "control/eal.h"

#include <filesystem>
#include <system_error>

#include <rte_eal.h>

namespace twill {

std::string eal_runtime_dir() { return rte_eal_get_runtime_dir(); }

void remove_eal_runtime_dir(const std::string& dir) {
    // Only a directory under DPDK's runtime root, never a bare root.
    std::filesystem::path p(dir);
    if (dir.empty() || p.parent_path().filename() != "dpdk") {
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
}

}  // namespace twill
