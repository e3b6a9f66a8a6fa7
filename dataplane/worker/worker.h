// The worker lcore's loop: receive bursts, run the pipeline, transmit, report quiescence.
#pragma once

#include <atomic>

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/counters.h"
#include "dataplane/tables/tables.h"

namespace twill {

struct worker_args {
    const node_params* params = nullptr;
    const table_set* tables = nullptr;
    learned_state* learned = nullptr;
    worker_counters* counters = nullptr;
    rte_mempool* pool = nullptr;
    rte_rcu_qsbr* qsbr = nullptr;
    unsigned thread_id = 0;
    const std::atomic<bool>* stop = nullptr;
};

// rte_eal_remote_launch entry point; `arg` is a worker_args*. Returns when *stop is set.
int worker_main(void* arg);

}  // namespace twill
