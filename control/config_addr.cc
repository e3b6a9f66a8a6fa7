// Text forms in the YAML: addresses, and names, integers and hints for misspelt keys.
// Strict on purpose: "10.0.0.010" or "1.2.3.4 " read leniently would silently become
// another address, or one the user did not write.
#include <algorithm>
#include <cctype>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "control/config.h"
#include "control/config_internal.h"

namespace twill::config {

namespace {

// 1 to `max_digits` decimal digits, without a leading zero (which inet_aton reads as octal).
std::optional<uint32_t> take_decimal(std::string_view& s, size_t max_digits) {
    size_t n = 0;
    uint32_t v = 0;
    while (n < s.size() && n <= max_digits && s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + uint32_t(s[n] - '0');
        ++n;
    }
    if (n == 0 || n > max_digits || (n > 1 && s[0] == '0')) {
        return std::nullopt;
    }
    s.remove_prefix(n);
    return v;
}

std::optional<ip4_addr> take_ip4(std::string_view& s) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        if (i > 0) {
            if (s.empty() || s.front() != '.') {
                return std::nullopt;
            }
            s.remove_prefix(1);
        }
        std::optional<uint32_t> octet = take_decimal(s, 3);
        if (!octet || *octet > 255) {
            return std::nullopt;
        }
        v = v << 8 | *octet;
    }
    return ip4_addr{v};
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = char(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

}  // namespace

namespace detail {

std::string unknown_key_message(std::string_view key, key_list allowed) {
    // Short keys are close to everything: only a case slip counts for them.
    size_t max_distance = std::min<size_t>(2, key.size() / 3);
    for (std::string_view a : allowed) {
        if (edit_distance(lower(key), lower(a)) <= max_distance) {
            return fmt::format("unknown key '{}'; did you mean '{}'?", key, a);
        }
    }
    return fmt::format("unknown key '{}'; expected one of: {}", key, fmt::join(allowed, ", "));
}

bool is_dns_name(std::string_view s, size_t max_len, bool dots) {
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (s.empty() || s.size() > max_len || !alnum(s.front()) || !alnum(s.back())) {
        return false;
    }
    return std::all_of(s.begin(), s.end(),
                       [&](char c) { return alnum(c) || c == '-' || (dots && c == '.'); });
}

std::optional<int64_t> parse_int(std::string_view s) {
    bool negative = !s.empty() && s.front() == '-';
    if (negative) {
        s.remove_prefix(1);
    }
    if (s.empty()) {
        return std::nullopt;
    }
    constexpr int64_t max = std::numeric_limits<int64_t>::max();
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v > (max - 9) / 10 ? max : v * 10 + (c - '0');
    }
    return negative ? -v : v;
}

}  // namespace detail

std::optional<ip4_addr> parse_ip4(std::string_view s) {
    std::optional<ip4_addr> a = take_ip4(s);
    if (!a || !s.empty()) {
        return std::nullopt;
    }
    return a;
}

std::optional<ip4_prefix> parse_cidr(std::string_view s) {
    std::optional<ip4_addr> a = take_ip4(s);
    if (!a || s.empty() || s.front() != '/') {
        return std::nullopt;
    }
    s.remove_prefix(1);
    std::optional<uint32_t> len = take_decimal(s, 2);
    if (!len || *len > 32 || !s.empty()) {
        return std::nullopt;
    }
    return ip4_prefix{*a, uint8_t(*len)};
}

std::optional<mac_addr> parse_mac(std::string_view s) {
    if (s.size() != 17) {
        return std::nullopt;
    }
    mac_addr m;
    for (size_t i = 0; i < 6; ++i) {
        int hi = hex_value(s[3 * i]);
        int lo = hex_value(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':')) {
            return std::nullopt;
        }
        m.bytes[i] = uint8_t(hi << 4 | lo);
    }
    return m;
}

std::string format_ip4(ip4_addr a) {
    return fmt::format("{}.{}.{}.{}", a.octet(0), a.octet(1), a.octet(2), a.octet(3));
}

std::string format_prefix(const ip4_prefix& p) {
    return fmt::format("{}/{}", format_ip4(p.addr), p.len);
}

std::string format_mac(const mac_addr& m) {
    const auto& b = m.bytes;
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4],
                       b[5]);
}

mac_addr generated_vtep_mac(std::string_view node_name) {
    uint64_t h = 0xcbf29ce484222325;  // FNV-1a 64-bit offset basis and prime
    for (unsigned char c : node_name) {
        h ^= c;
        h *= 0x100000001b3;
    }
    mac_addr m;
    m.bytes[0] = 0x02;
    for (size_t i = 1; i < 6; ++i) {
        m.bytes[i] = uint8_t(h >> (8 * (i - 1)));
    }
    return m;
}

}  // namespace twill::config
