#include "control/ports.h"

#include <cerrno>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <fmt/format.h>

namespace twill {
namespace {

// Removes a device that rte_dev_probe() attached, when no usable ethdev came of it.
void remove_probed(const std::string& devargs) {
    rte_devargs da{};
    if (rte_devargs_parse(&da, devargs.c_str()) == 0 && da.bus != nullptr) {
        rte_eal_hotplug_remove(rte_bus_name(da.bus), da.name);
    }
    rte_devargs_reset(&da);
}

}  // namespace

port_result attach_port(const std::string& devargs, rte_mempool* pool, bool promiscuous) {
    port_result r;
    // A PCI port named in the EAL allow-list (-a) was probed at startup: -EEXIST.
    if (int rc = rte_dev_probe(devargs.c_str()); rc != 0 && rc != -EEXIST) {
        r.error = fmt::format("cannot attach port '{}': {} (is the interface present in this "
                              "network namespace, and the driver name right?)",
                              devargs, rte_strerror(-rc));
        return r;
    }
    rte_dev_iterator it;
    uint16_t port = RTE_MAX_ETHPORTS;
    RTE_ETH_FOREACH_MATCHING_DEV(port, devargs.c_str(), &it) {
        rte_eth_iterator_cleanup(&it);
        break;
    }
    if (port >= RTE_MAX_ETHPORTS) {
        r.error = fmt::format("port '{}' attached but no ethdev matches it", devargs);
        remove_probed(devargs);
        return r;
    }

    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
        r.error = fmt::format("port '{}': cannot read device info: {}", devargs, rte_strerror(-rc));
        remove_probed(devargs);
        return r;
    }
    rte_eth_conf conf{};
    int socket = rte_eth_dev_socket_id(port);
    uint16_t nb_rx = rx_descriptors;
    uint16_t nb_tx = tx_descriptors;
    int rc = rte_eth_dev_configure(port, 1, 1, &conf);
    if (rc == 0) {
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rx, &nb_tx);
    }
    if (rc == 0) {
        rc = rte_eth_rx_queue_setup(port, 0, nb_rx, socket < 0 ? 0 : unsigned(socket), nullptr, pool);
    }
    if (rc == 0) {
        rc = rte_eth_tx_queue_setup(port, 0, nb_tx, socket < 0 ? 0 : unsigned(socket), nullptr);
    }
    if (rc == 0) {
        rc = rte_eth_dev_start(port);
    }
    if (rc != 0) {
        r.error = fmt::format("port '{}' ({}): setup failed: {}", devargs, info.driver_name,
                              rte_strerror(-rc));
        detach_port(port);
        return r;
    }
    if (promiscuous) {
        rte_eth_promiscuous_enable(port);  // best effort: not every vdev supports it
    }
    r.ok = true;
    r.port_id = port;
    return r;
}

void detach_port(uint16_t port_id) {
    rte_eth_dev_info info{};
    rte_device* dev = rte_eth_dev_info_get(port_id, &info) == 0 ? info.device : nullptr;
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
    if (dev != nullptr) {
        rte_dev_remove(dev);
    }
}

mac_addr port_mac(uint16_t port_id) {
    rte_ether_addr a{};
    rte_eth_macaddr_get(port_id, &a);
    mac_addr m;
    for (int i = 0; i < 6; ++i) {
        m.bytes[i] = a.addr_bytes[i];
    }
    return m;
}

std::string port_name(uint16_t port_id) {
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(port_id, name);
    return name;
}

}  // namespace twill
