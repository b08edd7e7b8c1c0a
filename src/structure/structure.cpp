// analyze_structure, the JSON form and structural roles.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "internal.hpp"

namespace mess {

void StructureParams::validate() const {
    auto check = [](bool ok, const char* what, double v) {
        if (!ok) throw_usage("structure: {} out of range (got {})", what, v);
    };
    check(novelty_half_sec >= 0.5 && novelty_half_sec <= 60, "novelty_half_sec (0.5..60 s)", novelty_half_sec);
    check(climax_novelty_half_sec >= 0.5 && climax_novelty_half_sec <= 60, "climax_novelty_half_sec (0.5..60 s)", climax_novelty_half_sec);
    check(novelty_smooth_sec > 0, "novelty_smooth_sec (> 0)", novelty_smooth_sec);
    check(min_section_sec > 0, "min_section_sec (> 0)", min_section_sec);
    check(peak_threshold >= 0 && peak_threshold <= 1, "peak_threshold (0..1)", peak_threshold);
    check(place_sec >= 0 && place_sec <= 10, "place_sec (0..10 s)", place_sec);
    check(repeat_similarity >= 0 && repeat_similarity <= 1, "repeat_similarity (0..1)", repeat_similarity);
    check(key_window_sec > 0 && key_step_sec > 0, "key window/step (> 0)", std::min(key_window_sec, key_step_sec));
    check(key_change_penalty >= 0, "key_change_penalty (≥ 0)", key_change_penalty);
    check(no_key_score >= -1 && no_key_score <= 1, "no_key_score (−1..1)", no_key_score);
    check(climax_smooth_sec > 0, "climax_smooth_sec (> 0)", climax_smooth_sec);
    check(cadence_threshold >= 0 && cadence_threshold <= 1, "cadence_threshold (0..1)", cadence_threshold);
}

Structure analyze_structure(const StructureFeatures& f, const StructureParams& p) {
    p.validate();
    Structure s;
    s.duration_sec = f.duration_sec;
    if (f.silent) {
        s.boundaries = {0.0, f.duration_sec};
        s.sections = {{0.0, f.duration_sec, "A"}};
        s.novelty.assign(static_cast<std::size_t>(f.frames()), 0.0f);
        return s;
    }
    s.novelty = structure_novelty(f, p);
    s.boundaries = pick_boundaries(f, s.novelty, p);
    s.novelty = climax_novelty(f, p);
    s.sections = label_sections(f, s.boundaries, p);
    estimate_keys(f, p, s);
    s.climax = find_climax(f, s, p);
    s.cadences = find_cadences(f, s, p);
    return s;
}

Structure analyze_structure(const Audio& audio, const StructureParams& p) {
    p.validate();
    return analyze_structure(structure_features(audio), p);
}

nlohmann::json structure_to_json(const Structure& s) {
    nlohmann::json j = {{"duration_sec", s.duration_sec}, {"boundaries", s.boundaries}};
    auto& sections = j["sections"] = nlohmann::json::array();
    for (const auto& x : s.sections) sections.push_back({{"start", x.start}, {"end", x.end}, {"label", x.label}});
    auto& keys = j["keys"] = nlohmann::json::array();
    for (const auto& k : s.keys) keys.push_back({{"start", k.start}, {"end", k.end}, {"key", key_name(k.key)}});
    auto& mods = j["modulations"] = nlohmann::json::array();
    for (const auto& m : s.modulations)
        mods.push_back({{"time", m.time}, {"from", key_name(m.from)}, {"to", key_name(m.to)}, {"interval", m.interval}});
    j["climax"] = s.climax ? nlohmann::json{{"time", s.climax->time}, {"start", s.climax->start}, {"end", s.climax->end}, {"strength", s.climax->strength}}
                           : nlohmann::json(nullptr);
    auto& cadences = j["cadences"] = nlohmann::json::array();
    for (const auto& c : s.cadences) cadences.push_back({{"time", c.time}, {"strength", c.strength}, {"key", key_name(c.key)}});
    return j;
}

namespace {

const nlohmann::json& field(const nlohmann::json& j, const char* name, const char* where) {
    if (!j.is_object() || !j.contains(name)) throw_input("structure JSON: {} lacks \"{}\"", where, name);
    return j[name];
}

double number(const nlohmann::json& j, const char* name, const char* where) {
    const auto& v = field(j, name, where);
    if (!v.is_number()) throw_input("structure JSON: {}.{} is not a number", where, name);
    return v.get<double>();
}

}  // namespace

Structure structure_from_json(const nlohmann::json& j) {
    Structure s;
    s.duration_sec = number(j, "duration_sec", "the top level");
    for (const auto& b : field(j, "boundaries", "the top level")) {
        if (!b.is_number()) throw_input("structure JSON: a boundary is not a number");
        s.boundaries.push_back(b.get<double>());
    }
    for (const auto& x : field(j, "sections", "the top level")) {
        const auto& label = field(x, "label", "a section");
        if (!label.is_string()) throw_input("structure JSON: a section's label is not a string");
        s.sections.push_back({number(x, "start", "a section"), number(x, "end", "a section"), label.get<std::string>()});
    }
    for (const auto& k : field(j, "keys", "the top level"))
        s.keys.push_back({number(k, "start", "a key"), number(k, "end", "a key"), parse_key(field(k, "key", "a key").get<std::string>())});
    for (const auto& m : field(j, "modulations", "the top level"))
        s.modulations.push_back({number(m, "time", "a modulation"), parse_key(field(m, "from", "a modulation").get<std::string>()),
                                 parse_key(field(m, "to", "a modulation").get<std::string>()),
                                 static_cast<int>(number(m, "interval", "a modulation"))});
    if (const auto& c = field(j, "climax", "the top level"); !c.is_null())
        s.climax = Climax{number(c, "time", "climax"), number(c, "start", "climax"), number(c, "end", "climax"),
                          c.contains("strength") ? number(c, "strength", "climax") : 0.0};
    for (const auto& c : field(j, "cadences", "the top level"))
        s.cadences.push_back({number(c, "time", "a cadence"), number(c, "strength", "a cadence"),
                              c.contains("key") ? parse_key(c["key"].get<std::string>()) : 0});
    return s;
}

Role parse_role(std::string_view name) {
    if (name == "climax") return Role::climax;
    if (name == "cadence") return Role::cadence;
    if (name == "boundary") return Role::boundary;
    if (name == "modulation") return Role::modulation;
    throw_usage("unknown structural role '{}' (climax, cadence, boundary, modulation)", name);
}

std::string role_name(Role role) {
    switch (role) {
        case Role::climax: return "climax";
        case Role::cadence: return "cadence";
        case Role::boundary: return "boundary";
        case Role::modulation: return "modulation";
    }
    return "climax";
}

std::vector<double> role_times(const Structure& s, Role role) {
    std::vector<double> t;
    switch (role) {
        case Role::climax:
            if (s.climax) t.push_back(s.climax->time);
            break;
        case Role::cadence:
            for (const auto& c : s.cadences) t.push_back(c.time);
            break;
        case Role::boundary:
            for (std::size_t i = 1; i + 1 < s.boundaries.size(); ++i) t.push_back(s.boundaries[i]);
            break;
        case Role::modulation:
            for (const auto& m : s.modulations) t.push_back(m.time);
            break;
    }
    std::sort(t.begin(), t.end());
    return t;
}

std::vector<bool> window_roles(const Structure& s, Role role, std::span<const std::array<double, 2>> windows) {
    const std::vector<double> times = role_times(s, role);
    std::vector<bool> out(windows.size(), false);
    for (std::size_t w = 0; w < windows.size(); ++w)
        for (double t : times)
            if (t >= windows[w][0] && t < windows[w][1]) out[w] = true;
    return out;
}

}  // namespace mess
