#include <cctype>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "mess/util.hpp"

namespace mess {
namespace {

struct Source {
    std::string text;
    std::string value;
    std::string origin;  // "flag --x" or "env MESS_X"
};

std::optional<Source> lookup(const ConfigFlags& flags, const char* (*getenv_fn)(const char*),
                             const std::string& key, const char* env_name) {
    if (auto it = flags.find(key); it != flags.end()) {
        std::string flag = key;
        for (char& c : flag) if (c == '_') c = '-';
        return Source{it->second, it->second, "flag --" + flag};
    }
    if (const char* v = getenv_fn(env_name); v != nullptr && *v != '\0')
        return Source{v, v, std::string("env ") + env_name};
    return std::nullopt;
}

int parse_positive_int(const Source& s) {
    int v = 0;
    const char* end = s.value.data() + s.value.size();
    auto [p, ec] = std::from_chars(s.value.data(), end, v);
    if (ec != std::errc() || p != end || v < 1)
        throw_usage("{}: expected a positive integer, got '{}'", s.origin, s.value);
    return v;
}

const char* std_getenv(const char* name) { return std::getenv(name); }

}  // namespace

Config resolve_config(const ConfigFlags& flags, const char* (*getenv_fn)(const char*)) {
    if (getenv_fn == nullptr) getenv_fn = std_getenv;
    for (const auto& [key, value] : flags) {
        if (key != "data_root" && key != "device" && key != "workers" && key != "batch_size" && key != "log_level" &&
            key != "catalog")
            throw_internal("unknown configuration key '{}'", key);
    }
    Config c;
    unsigned cores = std::thread::hardware_concurrency();
    c.workers = {cores > 0 ? static_cast<int>(cores) : 1, "default (CPU cores)"};

    if (auto s = lookup(flags, getenv_fn, "data_root", "MESS_DATA_ROOT")) c.data_root = {s->value, s->origin};
    if (auto s = lookup(flags, getenv_fn, "device", "MESS_DEVICE")) {
        if (s->value != "cpu" && s->value != "cuda")
            throw_usage("{}: unknown device '{}' (expected cpu or cuda)", s->origin, s->value);
        c.device = {s->value, s->origin};
    }
    if (auto s = lookup(flags, getenv_fn, "workers", "MESS_WORKERS")) c.workers = {parse_positive_int(*s), s->origin};
    if (auto s = lookup(flags, getenv_fn, "batch_size", "MESS_BATCH_SIZE"))
        c.batch_size = {parse_positive_int(*s), s->origin};
    else if (c.device.value == "cuda")
        c.batch_size = {32, "default (device cuda)"};
    if (auto s = lookup(flags, getenv_fn, "log_level", "MESS_LOG_LEVEL")) {
        static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
        bool known = false;
        for (const char* l : levels) known = known || s->value == l;
        if (!known) throw_usage("{}: unknown log level '{}' (trace|debug|info|warn|error|off)", s->origin, s->value);
        c.log_level = {s->value, s->origin};
    }
    // "catalog" (--catalog, MESS_CATALOG) is resolved by mess/db.hpp's catalog_setting.
    return c;
}

std::string to_lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string hex_encode(std::string_view bytes) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> parts;
    std::size_t pos = 0;
    while (true) {
        const std::size_t at = std::min(text.find(separator, pos), text.size());
        parts.emplace_back(text.substr(pos, at - pos));
        if (at == text.size()) return parts;
        pos = at + 1;
    }
}

}  // namespace mess
