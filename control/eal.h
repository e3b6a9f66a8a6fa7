// EAL housekeeping shared by twilld, the tests and the benchmarks.
#pragma once

#include <string>

namespace twill {

// The EAL runtime directory (/var/run/dpdk/<file-prefix>); call after rte_eal_init.
std::string eal_runtime_dir();

// rte_eal_cleanup() leaves the runtime directory's files behind (several MB each, on
// tmpfs); a process that chose a prefix of its own removes them after cleanup.
void remove_eal_runtime_dir(const std::string& dir);

}  // namespace twill
