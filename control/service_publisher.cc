#include "control/service_publisher.h"

#include <fmt/format.h>

#include "control/schedule.h"
#include "dataplane/net/headers.h"

namespace twill {

namespace {

sched_kind kind_of(config::scheduler s) {
    switch (s) {
        case config::scheduler::rr:
            return sched_kind::rr;
        case config::scheduler::wrr:
            return sched_kind::wrr;
        case config::scheduler::lc:
            return sched_kind::lc;
        case config::scheduler::sh:
            return sched_kind::sh;
        case config::scheduler::mh:
            return sched_kind::mh;
    }
    return sched_kind::rr;
}

uint32_t raw(ip4_addr a) { return net::bswap(a.value); }
uint16_t raw(uint16_t port) { return net::bswap(port); }

enum class frontend_kind { cluster_ip, node_port, external_ip };

struct frontend_def {
    uint64_t key;
    frontend_kind kind;
    size_t port_index;
};

std::vector<frontend_def> frontends_of(const config::service& s, const node_params& params) {
    std::vector<frontend_def> out;
    for (size_t j = 0; j < s.ports.size(); ++j) {
        const config::service_port& sp = s.ports[j];
        if (s.cluster_ip) {
            out.push_back({frontend_map::key(raw(*s.cluster_ip), sp.protocol, raw(sp.port)),
                           frontend_kind::cluster_ip, j});
        }
        if (s.node_port && sp.node_port != 0) {
            out.push_back({frontend_map::key(raw(params.node_ip), sp.protocol, raw(sp.node_port)),
                           frontend_kind::node_port, j});
        }
        for (ip4_addr ext : s.external_ips) {
            out.push_back({frontend_map::key(raw(ext), sp.protocol, raw(sp.port)),
                           frontend_kind::external_ip, j});
        }
    }
    return out;
}

}  // namespace

service_publisher::service_publisher(const node_params& params, service_table& table)
    : params_(params), table_(table) {}

uint32_t service_publisher::take_frontend_slot() {
    if (free_frontends_.empty() && next_frontend_ == service_table::frontend_capacity) {
        ++unpublished_;
        return no_index;
    }
    ++frontends_used_;
    if (!free_frontends_.empty()) {
        uint32_t s = free_frontends_.back();
        free_frontends_.pop_back();
        return s;
    }
    return next_frontend_++;
}

uint32_t service_publisher::take_backend_slot() {
    if (free_backends_.empty() && next_backend_ == service_table::backend_capacity) {
        ++unpublished_;
        return no_index;
    }
    ++backends_used_;
    if (!free_backends_.empty()) {
        uint32_t s = free_backends_.back();
        free_backends_.pop_back();
        // A worker that read the old generation may have counted into it late.
        table_.reset_counts(s);
        return s;
    }
    return next_backend_++;
}

void service_publisher::reverse_edit(uint64_t bkey, uint32_t slot, bool add,
                                     std::vector<retired_ptr>& retired) {
    // Published only while one cluster IP owns the backend: with two, a reply could not
    // say which service it answers for.
    std::set<uint32_t>& slots = reverse_[bkey];
    const uint32_t before = slots.size() == 1 ? *slots.begin() : frontend_map::not_found;
    if (add) {
        slots.insert(slot);
    } else {
        slots.erase(slot);
    }
    const uint32_t after = slots.size() == 1 ? *slots.begin() : frontend_map::not_found;
    if (slots.empty()) {
        reverse_.erase(bkey);
    }
    if (after == before) {
        return;
    }
    if (after == frontend_map::not_found) {
        table_.unmap_reverse(bkey);
    } else {
        retired.push_back(table_.map_reverse(bkey, after));
    }
}

void service_publisher::publish(const pod_key& key, const desired_state& desired,
                                std::vector<retired_ptr>& retired) {
    record& rec = records_[key];
    std::set<std::pair<uint64_t, uint32_t>> reverse;  // this version's registrations
    auto it = desired.services().find(key);
    std::map<uint64_t, uint32_t> frontends;
    std::map<backend_key, uint32_t> backends;
    if (it != desired.services().end()) {
        const config::service& s = it->second;
        const std::vector<desired_state::resolved_endpoint> eps = desired.endpoints_of(key);
        // Backends per service port, with their slots: kept when they stay.
        std::vector<std::vector<service_backend>> per_port(s.ports.size());
        std::vector<std::vector<schedule_backend>> sched_in(s.ports.size());
        for (size_t j = 0; j < s.ports.size(); ++j) {
            const config::service_port& sp = s.ports[j];
            for (const auto& r : eps) {
                if (j >= r.ports.size() || r.ports[j] == 0) {
                    continue;
                }
                const backend_key bk{sp.protocol, sp.port, r.ep.ip.value, r.ports[j]};
                if (backends.contains(bk)) {
                    continue;  // the same address and port twice (two slices): once
                }
                uint32_t slot;
                if (auto old = rec.backends.find(bk); old != rec.backends.end()) {
                    slot = old->second;
                    rec.backends.erase(old);
                } else {
                    slot = take_backend_slot();
                    if (slot == no_index) {
                        continue;  // beyond the table's capacity: counted in unpublished()
                    }
                }
                backends.emplace(bk, slot);
                const uint16_t weight = r.ep.ready && !r.ep.terminating ? r.ep.weight : 0;
                table_.backend(slot).weight.store(weight, std::memory_order_relaxed);
                service_backend b;
                b.ip = raw(r.ep.ip);
                b.port = raw(r.ports[j]);
                b.weight = weight;
                b.state = slot;
                b.local = params_.pod_cidr.contains(r.ep.ip) || r.ep.ip == params_.node_ip;
                per_port[j].push_back(b);
                sched_in[j].push_back({fmt::format("{}:{}", config::format_ip4(r.ep.ip), r.ports[j]), weight});
            }
        }
        const sched_kind kind = kind_of(s.sched);
        std::vector<std::vector<uint16_t>> cluster_schedules(s.ports.size());
        for (size_t j = 0; j < s.ports.size(); ++j) {
            cluster_schedules[j] = build_schedule(kind, sched_in[j]);
        }
        for (const frontend_def& f : frontends_of(s, params_)) {
            const size_t j = f.port_index;
            uint32_t slot;
            if (auto old = rec.frontends.find(f.key); old != rec.frontends.end()) {
                slot = old->second;
                rec.frontends.erase(old);
            } else {
                slot = take_frontend_slot();
                if (slot == no_index) {
                    continue;
                }
                table_.reset_rr(slot);
            }
            frontends.emplace(f.key, slot);
            auto e = std::make_unique<service_entry>();
            e->vip = uint32_t(f.key >> 32);
            e->port = uint16_t(f.key >> 8);
            e->proto = uint8_t(f.key);
            e->sched = kind;
            e->slot = slot;
            e->affinity = s.affinity_client_ip;
            e->affinity_timeout = s.affinity_timeout;
            e->backends = per_port[j];
            const bool local = s.local_traffic && f.kind != frontend_kind::cluster_ip;
            if (local) {
                // externalTrafficPolicy: Local: this node's endpoints only, client kept.
                std::vector<schedule_backend> in = sched_in[j];
                bool any = false;
                for (size_t i = 0; i < in.size(); ++i) {
                    any |= in[i].weight > 0;
                    if (!e->backends[i].local) {
                        in[i].weight = 0;
                    }
                }
                e->schedule = build_schedule(kind, in);
                e->snat_outside = false;
                e->reject_when_empty = !any;
            } else {
                e->schedule = cluster_schedules[j];
            }
            e->cluster_ip = f.kind == frontend_kind::cluster_ip;
            if (e->cluster_ip) {
                for (const service_backend& b : e->backends) {
                    reverse.emplace(frontend_map::key(b.ip, e->proto, b.port), slot);
                }
            }
            for (retired_ptr& r : table_.set_entry(slot, std::move(e))) {
                retired.push_back(std::move(r));
            }
            // A key another service held until this change (objects may trade values in
            // one change) is taken over; the other's withdrawal leaves it alone.
            if (auto o = owner_.find(f.key); o == owner_.end() || o->second != slot) {
                owner_[f.key] = slot;
                retired.push_back(table_.map_frontend(f.key, slot));
            }
        }
    }
    // What is left in the old record went away.
    for (const auto& [fkey, slot] : rec.frontends) {
        if (auto o = owner_.find(fkey); o != owner_.end() && o->second == slot) {
            table_.unmap_frontend(fkey);
            owner_.erase(o);
        }
        for (retired_ptr& r : table_.set_entry(slot, nullptr)) {
            retired.push_back(std::move(r));
        }
        freed_frontends_.push_back(slot);
    }
    for (const auto& r : rec.reverse) {
        if (!reverse.contains(r)) {
            reverse_edit(r.first, r.second, false, retired);
        }
    }
    for (const auto& r : reverse) {
        if (!rec.reverse.contains(r)) {
            reverse_edit(r.first, r.second, true, retired);
        }
    }
    rec.reverse = std::move(reverse);
    for (const auto& [bkey, slot] : rec.backends) {
        table_.backend(slot).weight.store(0, std::memory_order_relaxed);
        ended_backends_.push_back(slot);
    }
    if (frontends.empty() && backends.empty() && rec.reverse.empty()) {
        records_.erase(key);
    } else {
        rec.frontends = std::move(frontends);
        rec.backends = std::move(backends);
    }
}

void service_publisher::after_grace() {
    for (uint32_t slot : ended_backends_) {
        table_.end_backend(slot);
        table_.reset_counts(slot);
        free_backends_.push_back(slot);
        --backends_used_;
    }
    for (uint32_t slot : freed_frontends_) {
        free_frontends_.push_back(slot);
        --frontends_used_;
    }
    ended_backends_.clear();
    freed_frontends_.clear();
}

std::vector<service_publisher::frontend_info> service_publisher::frontends(const pod_key& key) const {
    std::vector<frontend_info> out;
    if (auto it = records_.find(key); it != records_.end()) {
        for (const auto& [k, slot] : it->second.frontends) {
            out.push_back({k, slot});
        }
    }
    return out;
}

}  // namespace twill
