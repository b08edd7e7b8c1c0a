// An HTTP query string (a=1&b=2, percent-encoded) → the parsers the server's routes apply to its parameters:
// parse_aspect_request (aspect, aspects) and the layer weights it asks for, Filter::parse after the route's
// key:value rewrite (filter), parse_same_scope (exclude_same), LayerSpec::parse (layer), parse_index_kind
// (kind), parse_aspect_mode (mode), parse_precision / parse_device. Unknown keys go through every parser.
#include <map>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "mess/model.hpp"
#include "mess/probe.hpp"
#include "mess/search.hpp"

namespace {

const int kQuiet = mess_fuzz::quiet();

std::string percent_decode(std::string_view s) {
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') out += ' ';
        else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else out += s[i];
    }
    return out;
}

// Aspects as an index's manifest holds them: one best-layer, one weighted-sum, one below the R² threshold.
const std::vector<mess::ResolvedAspect>& aspects() {
    static const std::vector<mess::ResolvedAspect> a = [] {
        std::vector<mess::ResolvedAspect> v(3);
        v[0].name = "dynamics", v[0].r2 = 0.8, v[0].layer = 2;
        v[1].name = "timbre", v[1].r2 = 0.7, v[1].mode = mess::AspectMode::weighted_sum, v[1].layer_weights = {0.2, 0.2, 0.2, 0.2, 0.2};
        v[2].name = "rhythm", v[2].r2 = 0.1, v[2].layer = 4;
        return v;
    }();
    return a;
}

void aspect(const std::string& v) {
    const auto request = mess::parse_aspect_request(v);
    (void)mess::aspect_layer_weights(aspects(), request, 5, 0.5, true);
}
void filter(std::string f) {  // the route's own check and rewrite, then Filter::parse
    if (const auto colon = f.find(':'); f.find('=') == std::string::npos && colon != std::string::npos) f[colon] = '=';
    if (f.find('=') == std::string::npos || f.front() == '=') return;  // the route answers 400
    const mess::Filter x = mess::Filter::parse(f);
    if (x.key.empty()) mess_fuzz::finding("Filter::parse", "empty key accepted");
}
void layer(const std::string& v) {
    const mess::LayerSpec s = mess::LayerSpec::parse(v);
    const std::string again = s.to_string();
    (void)s.dimension(13, 768);
    if (mess::LayerSpec::parse(again).to_string() != again) mess_fuzz::finding("LayerSpec", "to_string does not parse back to itself");
}

void dispatch(const std::string& key, const std::string& value) {
    using F = void (*)(const std::string&);
    static const std::map<std::string, F> parsers = {
        {"aspect", aspect},
        {"aspects", aspect},
        {"filter", [](const std::string& v) { filter(v); }},
        {"exclude_same", [](const std::string& v) { (void)mess::parse_same_scope(v); }},
        {"layer", layer},
        {"kind", [](const std::string& v) { (void)mess::parse_index_kind(v); }},
        {"mode", [](const std::string& v) { (void)mess::parse_aspect_mode(v); }},
        {"precision", [](const std::string& v) { (void)mess::parse_precision(v); }},
        {"device", [](const std::string& v) { (void)mess::parse_device(v); }},
    };
    if (auto it = parsers.find(key); it != parsers.end()) {
        mess_fuzz::guarded([&] { it->second(value); });
        return;
    }
    for (const auto& [k, parse] : parsers) mess_fuzz::guarded([&] { parse(value); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view q = mess_fuzz::as_text(data, size);
    std::size_t start = 0;
    while (start <= q.size()) {
        std::size_t amp = q.find('&', start);
        if (amp == std::string_view::npos) amp = q.size();
        const std::string_view item = q.substr(start, amp - start);
        const std::size_t eq = item.find('=');
        dispatch(percent_decode(item.substr(0, eq)), eq == std::string_view::npos ? std::string() : percent_decode(item.substr(eq + 1)));
        start = amp + 1;
    }
    return 0;
}
