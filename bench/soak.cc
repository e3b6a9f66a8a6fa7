// twill-soak: how busy a CPU is, measured precisely rather than by the kernel's tick
// sampling: a thread of the lowest priority (SCHED_IDLE) pinned to the CPU counts turns
// of an empty loop; any other work there, softirq included, takes the CPU from it. Its
// rate of progress over its rate with the CPU otherwise idle is the idle fraction (the
// method of netperf's CPU "soaker"). The benchmark harness runs it on the kernel peer's
// forwarding CPU.
//
//   twill-soak --cpu N      prints "COUNT NS" (turns so far, CLOCK_MONOTONIC ns) on every
//                           line it reads on stdin, until stdin closes.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

namespace {

std::atomic<uint64_t> turns{0};
std::atomic<bool> done{false};

uint64_t now_ns() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || std::string(argv[1]) != "--cpu") {
        std::fprintf(stderr, "usage: twill-soak --cpu N\n");
        return 2;
    }
    const int cpu = std::atoi(argv[2]);
    std::thread soaker([cpu] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_param sp{};
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0 ||
            pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0) {
            std::fprintf(stderr, "twill-soak: cannot pin to CPU %d at SCHED_IDLE\n", cpu);
            std::exit(1);
        }
        uint64_t n = 0;
        while (!done.load(std::memory_order_relaxed)) {
            // Published every 1024 turns: the loop stays in registers otherwise.
            if ((++n & 1023) == 0) {
                turns.store(n, std::memory_order_relaxed);
            }
        }
    });
    std::string line;
    while (std::getline(std::cin, line)) {
        std::printf("%llu %llu\n", (unsigned long long)turns.load(), (unsigned long long)now_ns());
        std::fflush(stdout);
    }
    done = true;
    soaker.join();
    return 0;
}
