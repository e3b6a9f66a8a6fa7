// Services from the desired state into the service table workers read: one immutable
// entry per frontend (cluster IP, node IP:nodePort, external IP, for each service
// port), changed entry by entry, so an endpoint change rebuilds one service's entries
// and nothing else. Backends keep their slot (and so their connections and counts)
// while they stay in a service; a removed one's slot gets a new generation after the
// grace period, which ends its connections, and is then reused.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "control/config.h"
#include "control/desired.h"
#include "dataplane/service/service_table.h"

namespace twill {

class service_publisher {
public:
    service_publisher(const node_params& params, service_table& table);

    size_t frontends_used() const { return frontends_used_; }
    size_t backends_used() const { return backends_used_; }

    // Publishes the current version of `key` in `desired` (or withdraws it when gone).
    // What workers may still read goes to `retired`.
    void publish(const pod_key& key, const desired_state& desired, std::vector<retired_ptr>& retired);

    // After the grace period: ends removed backends' connections, frees their slots and
    // those of removed frontends.
    void after_grace();
    bool pending() const { return !ended_backends_.empty() || !freed_frontends_.empty(); }

    struct frontend_info {
        uint64_t key;
        uint32_t slot;
    };
    // Frontends of a service, for listings.
    std::vector<frontend_info> frontends(const pod_key& key) const;

private:
    struct backend_key {
        uint8_t proto;
        uint16_t service_port;
        uint32_t ip;
        uint16_t port;
        auto operator<=>(const backend_key&) const = default;
    };
    struct record {
        std::map<uint64_t, uint32_t> frontends;       // frontend key -> slot
        std::map<backend_key, uint32_t> backends;     // -> backend slot
        std::vector<std::pair<uint64_t, uint32_t>> reverse;  // (backend, cluster IP slot)
    };
    // Registers (or, `add` false, withdraws) `slot` as a cluster IP frontend of backend
    // `bkey`; the lowest slot registered is the one published.
    void reverse_edit(uint64_t bkey, uint32_t slot, bool add, std::vector<retired_ptr>& retired);
    uint32_t take_frontend_slot();
    uint32_t take_backend_slot();

    const node_params& params_;
    service_table& table_;
    std::map<pod_key, record> records_;
    std::map<uint64_t, std::set<uint32_t>> reverse_;
    std::vector<uint32_t> free_frontends_, free_backends_;
    uint32_t next_frontend_ = 0, next_backend_ = 0;
    size_t frontends_used_ = 0, backends_used_ = 0;
    std::vector<uint32_t> ended_backends_, freed_frontends_;
};

}  // namespace twill
