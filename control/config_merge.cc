// Merging objects (twillctl apply) into a node file: add or replace by name.
#include <fmt/format.h>

#include "control/config.h"

namespace twill::config {
namespace {

bool has_prefix(const std::string& key, const std::string& prefix) {
    return key == prefix || key.rfind(prefix + ".", 0) == 0;
}

// Moves the positions recorded under `from` (in `src`) to `to` (in `dst`), replacing
// what `dst` had there.
void move_positions(const std::map<std::string, source_pos>& src, const std::string& from,
                    std::map<std::string, source_pos>& dst, const std::string& to) {
    std::erase_if(dst, [&](const auto& kv) { return has_prefix(kv.first, to); });
    for (const auto& [key, pos] : src) {
        if (has_prefix(key, from)) {
            dst[to + key.substr(from.size())] = pos;
        }
    }
}

template <typename T, typename Same>
void merge_list(std::vector<T>& base, const std::vector<T>& objects, const char* list,
                const std::map<std::string, source_pos>& object_positions, merged_file& out,
                Same same) {
    for (size_t j = 0; j < objects.size(); ++j) {
        size_t i = 0;
        while (i < base.size() && !same(base[i], objects[j])) {
            ++i;
        }
        if (i == base.size()) {
            base.push_back(objects[j]);
        } else {
            base[i] = objects[j];
        }
        std::string to = fmt::format("{}[{}]", list, i);
        std::string from = fmt::format("{}[{}]", list, j);
        move_positions(object_positions, from, out.cfg.positions, to);
        out.origin[to] = from;
    }
}

}  // namespace

merged_file merge_objects(const node_file& base, const node_file& objects) {
    merged_file out;
    out.cfg = base;
    merge_list(out.cfg.nodes, objects.nodes, "nodes", objects.positions, out,
               [](const remote_node& a, const remote_node& b) { return a.name == b.name; });
    merge_list(out.cfg.pods, objects.pods, "pods", objects.positions, out,
               [](const pod& a, const pod& b) { return a.name == b.name && a.ns == b.ns; });
    return out;
}

std::string merged_file::original_path(const std::string& path) const {
    for (const auto& [merged, from] : origin) {
        if (has_prefix(path, merged)) {
            return from + path.substr(merged.size());
        }
    }
    return path;
}

}  // namespace twill::config
