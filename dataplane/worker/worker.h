// A worker lcore's loop: receive bursts from its queues, run the pipeline, transmit,
// report quiescence.
#pragma once

#include <atomic>

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/counters.h"
#include "dataplane/tables/tables.h"
#include "dataplane/worker/queues.h"

namespace twill {

struct worker_args {
    const node_params* params = nullptr;
    const table_set* tables = nullptr;
    learned_state* learned = nullptr;
    worker_counters* counters = nullptr;
    rte_mempool* pool = nullptr;
    rte_rcu_qsbr* qsbr = nullptr;
    const port_layout* layout = nullptr;
    uint32_t worker = 0;     // 0..layout->workers-1
    unsigned thread_id = 0;  // in qsbr
    const std::atomic<bool>* stop = nullptr;
};

// rte_eal_remote_launch entry point; `arg` is a worker_args*. Returns when *stop is set.
int worker_main(void* arg);

}  // namespace twill
