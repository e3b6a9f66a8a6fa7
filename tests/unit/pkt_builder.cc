#include "tests/unit/pkt_builder.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <rte_ip.h>

#include "dataplane/net/headers.h"
#include "tests/unit/fixture.h"

namespace twill::test {

ip4_addr ip4(const char* dotted) {
    in_addr a{};
    if (inet_pton(AF_INET, dotted, &a) != 1) {
        throw std::invalid_argument(dotted);
    }
    return {ntohl(a.s_addr)};
}

mac_addr mac(const char* text) {
    mac_addr m;
    unsigned b[6];
    if (sscanf(text, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
        throw std::invalid_argument(text);
    }
    for (int i = 0; i < 6; ++i) {
        m.bytes[i] = uint8_t(b[i]);
    }
    return m;
}

namespace {

void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(uint8_t(x >> 8));
    v.push_back(uint8_t(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
    put16(v, uint16_t(x >> 16));
    put16(v, uint16_t(x));
}
void put_mac(std::vector<uint8_t>& v, const mac_addr& m) { v.insert(v.end(), m.bytes.begin(), m.bytes.end()); }
void set16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
    v[at] = uint8_t(x >> 8);
    v[at + 1] = uint8_t(x);
}

// RFC 1071 over `len` bytes at `at`, plus `sum` (a pseudo-header), as stored on the wire.
uint16_t inet_checksum(const std::vector<uint8_t>& v, size_t at, size_t len, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += uint32_t(v[at + i]) << 8 | v[at + i + 1];
    }
    if (len & 1) {
        sum += uint32_t(v[at + len - 1]) << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return uint16_t(~sum);
}

}  // namespace

void pkt::push(layer_type t, const std::vector<uint8_t>& b) {
    layers_.push_back({t, data_.size()});
    data_.insert(data_.end(), b.begin(), b.end());
}

pkt& pkt::eth(mac_addr dst, mac_addr src, uint16_t type) {
    std::vector<uint8_t> b;
    put_mac(b, dst);
    put_mac(b, src);
    put16(b, type);
    push(layer_type::eth, b);
    return *this;
}

pkt& pkt::arp(uint16_t oper, mac_addr sha, ip4_addr spa, mac_addr tha, ip4_addr tpa) {
    std::vector<uint8_t> b;
    put16(b, 1);
    put16(b, 0x0800);
    b.push_back(6);
    b.push_back(4);
    put16(b, oper);
    put_mac(b, sha);
    put32(b, spa.value);
    put_mac(b, tha);
    put32(b, tpa.value);
    push(layer_type::arp, b);
    return *this;
}

pkt& pkt::ipv4(ip4_addr src, ip4_addr dst, ipv4_opts o) {
    std::vector<uint8_t> opts = o.options;
    while (opts.size() % 4) {
        opts.push_back(0);
    }
    std::vector<uint8_t> b;
    b.push_back(uint8_t(0x40 | (5 + opts.size() / 4)));
    b.push_back(o.tos);
    put16(b, 0);  // total length: bytes()
    put16(b, o.id);
    put16(b, o.frag);
    b.push_back(o.ttl);
    b.push_back(0);  // protocol: bytes()
    put16(b, 0);     // checksum: bytes()
    put32(b, src.value);
    put32(b, dst.value);
    b.insert(b.end(), opts.begin(), opts.end());
    push(layer_type::ipv4, b);
    return *this;
}

pkt& pkt::udp(uint16_t sport, uint16_t dport) {
    std::vector<uint8_t> b;
    put16(b, sport);
    put16(b, dport);
    put16(b, 0);
    put16(b, 0);
    push(layer_type::udp, b);
    return *this;
}

pkt& pkt::tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    std::vector<uint8_t> b;
    put16(b, sport);
    put16(b, dport);
    put32(b, 1000);  // seq
    put32(b, 0);     // ack
    b.push_back(0x50);
    b.push_back(flags);
    put16(b, 64240);
    put16(b, 0);
    put16(b, 0);
    push(layer_type::tcp, b);
    return *this;
}

pkt& pkt::icmp_echo(uint16_t id, uint16_t seq) {
    std::vector<uint8_t> b{8, 0, 0, 0};
    put16(b, id);
    put16(b, seq);
    push(layer_type::icmp, b);
    return *this;
}

pkt& pkt::icmp_error(uint8_t type, uint8_t code, uint16_t mtu) {
    std::vector<uint8_t> b{type, code, 0, 0, 0, 0};
    put16(b, mtu);
    push(layer_type::icmp, b);
    return *this;
}

pkt& pkt::vxlan(uint32_t vni, uint32_t flags) {
    std::vector<uint8_t> b;
    put32(b, flags);
    put32(b, vni << 8);
    push(layer_type::vxlan, b);
    return *this;
}

pkt& pkt::payload(size_t n, uint8_t fill) {
    push(layer_type::raw, std::vector<uint8_t>(n, fill));
    return *this;
}

pkt& pkt::raw(const std::vector<uint8_t>& bytes) {
    push(layer_type::raw, bytes);
    return *this;
}

std::vector<uint8_t> pkt::bytes() const {
    std::vector<uint8_t> v = data_;
    // Protocol numbers first: transport checksums cover them in the pseudo-header.
    for (size_t i = 0; i + 1 < layers_.size(); ++i) {
        const layer& l = layers_[i];
        if (l.type == layer_type::ipv4 && v[l.offset + 9] == 0) {
            layer_type next = layers_[i + 1].type;
            v[l.offset + 9] = next == layer_type::udp    ? 17
                              : next == layer_type::tcp  ? 6
                              : next == layer_type::icmp ? 1
                              : next == layer_type::ipv4 ? 4
                                                         : 0xfd;
        }
    }
    // Innermost first, so that outer checksums cover finished inner headers.
    for (size_t i = layers_.size(); i-- > 0;) {
        const layer& l = layers_[i];
        const size_t end = v.size();
        const layer* next = i + 1 < layers_.size() ? &layers_[i + 1] : nullptr;
        switch (l.type) {
            case layer_type::eth:
                if (v[l.offset + 12] == 0 && v[l.offset + 13] == 0 && next != nullptr) {
                    set16(v, l.offset + 12, next->type == layer_type::arp ? 0x0806 : 0x0800);
                }
                break;
            case layer_type::ipv4: {
                size_t ihl = size_t(v[l.offset] & 0x0f) * 4;
                set16(v, l.offset + 2, uint16_t(end - l.offset));
                set16(v, l.offset + 10, 0);
                set16(v, l.offset + 10, inet_checksum(v, l.offset, ihl));
                break;
            }
            case layer_type::udp:
            case layer_type::tcp: {
                const layer* ip_layer = i > 0 ? &layers_[i - 1] : nullptr;
                size_t len = end - l.offset;
                if (l.type == layer_type::udp) {
                    set16(v, l.offset + 4, uint16_t(len));
                }
                size_t csum_at = l.offset + (l.type == layer_type::udp ? 6 : 16);
                set16(v, csum_at, 0);
                if (ip_layer != nullptr && ip_layer->type == layer_type::ipv4) {
                    uint32_t sum = 0;
                    for (size_t k = 12; k < 20; k += 2) {
                        sum += uint32_t(v[ip_layer->offset + k]) << 8 | v[ip_layer->offset + k + 1];
                    }
                    sum += v[ip_layer->offset + 9];
                    sum += uint32_t(len);
                    uint16_t c = inet_checksum(v, l.offset, len, sum);
                    set16(v, csum_at, (c == 0 && l.type == layer_type::udp) ? 0xffff : c);
                }
                break;
            }
            case layer_type::icmp:
                set16(v, l.offset + 2, 0);
                set16(v, l.offset + 2, inet_checksum(v, l.offset, end - l.offset));
                break;
            default:
                break;
        }
    }
    return v;
}

rte_mbuf* to_mbuf(const std::vector<uint8_t>& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
    if (m == nullptr) {
        throw std::runtime_error("test pool empty");
    }
    char* p = rte_pktmbuf_append(m, uint16_t(frame.size()));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        throw std::runtime_error("frame too large for one mbuf");
    }
    if (!frame.empty()) {  // an empty vector's data() may be null, which memcpy may not take
        std::memcpy(p, frame.data(), frame.size());
    }
    return m;
}

rte_mbuf* to_mbuf_chain(const std::vector<uint8_t>& frame, const std::vector<uint16_t>& first) {
    rte_mbuf* head = nullptr;
    size_t off = 0;
    size_t i = 0;
    while (off < frame.size() || head == nullptr) {
        rte_mbuf* seg = rte_pktmbuf_alloc(test_pool());
        if (seg == nullptr) {
            rte_pktmbuf_free(head);
            throw std::runtime_error("test pool empty");
        }
        const size_t want = i < first.size() ? first[i] : rte_pktmbuf_tailroom(seg);
        const auto n = uint16_t(std::min(want, frame.size() - off));
        std::memcpy(rte_pktmbuf_append(seg, n), frame.data() + off, n);
        off += n;
        ++i;
        if (head == nullptr) {
            head = seg;
        } else if (rte_pktmbuf_chain(head, seg) != 0) {
            rte_pktmbuf_free(head);
            rte_pktmbuf_free(seg);
            throw std::runtime_error("chain too long");
        }
    }
    return head;
}

std::vector<uint8_t> from_mbuf(const rte_mbuf* m) {
    std::vector<uint8_t> v(m->pkt_len);
    if (v.empty()) {
        return v;
    }
    const void* p = rte_pktmbuf_read(m, 0, m->pkt_len, v.data());
    if (p != v.data()) {
        std::memcpy(v.data(), p, m->pkt_len);
    }
    return v;
}

std::string hex_diff(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
    std::string out;
    size_t n = std::max(got.size(), want.size());
    char buf[32];
    for (size_t row = 0; row < n; row += 16) {
        snprintf(buf, sizeof(buf), "%04zx ", row);
        std::string g = std::string(buf) + " got ", w = std::string(buf) + "want ";
        bool differs = false;
        for (size_t i = row; i < row + 16 && i < n; ++i) {
            auto cell = [&](const std::vector<uint8_t>& v) {
                if (i >= v.size()) {
                    return std::string(" --");
                }
                snprintf(buf, sizeof(buf), " %02x", v[i]);
                return std::string(buf);
            };
            std::string a = cell(got), b = cell(want);
            differs |= a != b;
            g += a;
            w += b;
        }
        out += g + (differs ? "   <<" : "") + "\n" + w + "\n";
    }
    return out;
}

}  // namespace twill::test
