// Catch2 main for the unit tests: one EAL (no NIC, no hugepages) and one mbuf pool that
// every test draws from and must give back.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include "control/eal.h"
#include "tests/unit/fixture.h"

namespace twill::test {
namespace {
rte_mempool* pool_ = nullptr;
}

rte_mempool* test_pool() { return pool_; }

}  // namespace twill::test

int main(int argc, char** argv) {
    std::string prefix = "--file-prefix=twill-unit-" + std::to_string(getpid());
    std::vector<std::string> eal = {"twill-unit", "--no-huge", "-m", "256", "--no-pci",
                                    "--no-shconf", "--lcores=0", "--log-level=error", prefix};
    std::vector<char*> eal_argv;
    for (auto& a : eal) {
        eal_argv.push_back(a.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    twill::test::pool_ = rte_pktmbuf_pool_create("unit_pool", 4095, 0, 0,
                                                 RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (twill::test::pool_ == nullptr) {
        fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    const std::string runtime_dir = twill::eal_runtime_dir();
    int rc = Catch::Session().run(argc, argv);
    rte_mempool_free(twill::test::pool_);
    rte_eal_cleanup();
    twill::remove_eal_runtime_dir(runtime_dir);
    return rc;
}
