#include "control/ports.h"

#include <algorithm>
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

port_result attach_port(const std::string& devargs, rte_mempool* pool, const port_wants& wants) {
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
    // Queues: as many as asked, as far as the port has them (af_packet has `qpairs`).
    const auto nb_rxq = std::max<uint16_t>(1, std::min(wants.queues, info.max_rx_queues));
    const auto nb_txq = std::max<uint16_t>(1, std::min(wants.queues, info.max_tx_queues));
    rte_eth_conf conf{};
    // RSS over the outer addresses and UDP ports: the source port an encapsulating node
    // derives from the inner flow spreads one peer's flows over the queues.
    const uint64_t rss =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
    if (nb_rxq > 1 && rss != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss;
    }
    constexpr uint64_t tx_cksum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    constexpr uint64_t rx_cksum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    if (wants.checksums && (info.tx_offload_capa & tx_cksum) == tx_cksum) {
        conf.txmode.offloads |= tx_cksum;
        r.queues.tx_cksum = true;
    }
    // Received: the port's verdicts come in ol_flags, which decap reads whoever set them.
    if (wants.checksums && (info.rx_offload_capa & rx_cksum) == rx_cksum) {
        conf.rxmode.offloads |= rx_cksum;
    }
    // A jumbo MTU: the port's MTU, and chained mbufs for frames larger than one (or, where
    // the port cannot chain what it receives, mbufs that hold a whole frame).
    rte_mempool* rx_pool = pool;
    if (wants.mtu > RTE_ETHER_MTU) {
        const uint32_t frame = wants.mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
        if (wants.mtu > info.max_mtu || frame > info.max_rx_pktlen) {
            r.warning = fmt::format("port '{}' ({}) reports frames of at most {} bytes, not the {} "
                                    "an MTU of {} needs: its MTU is left as it is (set it on the "
                                    "device, or a tap's kernel side, yourself)",
                                    devargs, info.driver_name, info.max_rx_pktlen, frame, wants.mtu);
        } else {
            conf.rxmode.mtu = wants.mtu;
        }
        if (frame > uint32_t(rte_pktmbuf_data_room_size(pool)) - RTE_PKTMBUF_HEADROOM) {
            if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) {
                conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
            } else if (wants.jumbo_pool != nullptr) {
                rx_pool = wants.jumbo_pool;
            }
            if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
                conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
            }
        }
    }
    int socket = rte_eth_dev_socket_id(port);
    const unsigned where = socket < 0 ? 0 : unsigned(socket);
    uint16_t nb_rx = rx_descriptors;
    uint16_t nb_tx = tx_descriptors;
    int rc = rte_eth_dev_configure(port, nb_rxq, nb_txq, &conf);
    if (rc == 0) {
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rx, &nb_tx);
    }
    for (uint16_t q = 0; rc == 0 && q < nb_rxq; ++q) {
        rc = rte_eth_rx_queue_setup(port, q, nb_rx, where, nullptr, rx_pool);
    }
    for (uint16_t q = 0; rc == 0 && q < nb_txq; ++q) {
        rc = rte_eth_tx_queue_setup(port, q, nb_tx, where, nullptr);
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
    if (wants.promiscuous) {
        rte_eth_promiscuous_enable(port);  // best effort: not every vdev supports it
    }
    r.queues.rx = nb_rxq;
    r.queues.tx = nb_txq;
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
