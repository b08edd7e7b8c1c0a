// Structure accuracy against the labels of a structure corpus: boundaries, keys, modulations, climax.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>

#include "mess/eval.hpp"

namespace fs = std::filesystem;

namespace mess {

namespace {

// Kuhn's augmenting paths: the size of a maximum matching of the hit graph (est → refs in window).
std::size_t max_matching(const std::vector<double>& ref, const std::vector<double>& est, double window) {
    std::vector<int> match_ref(ref.size(), -1);
    std::function<bool(std::size_t, std::vector<bool>&)> augment = [&](std::size_t e, std::vector<bool>& seen) {
        for (std::size_t r = 0; r < ref.size(); ++r) {
            if (seen[r] || std::fabs(ref[r] - est[e]) > window) continue;
            seen[r] = true;
            if (match_ref[r] < 0 || augment(static_cast<std::size_t>(match_ref[r]), seen)) {
                match_ref[r] = static_cast<int>(e);
                return true;
            }
        }
        return false;
    };
    std::size_t matched = 0;
    for (std::size_t e = 0; e < est.size(); ++e) {
        std::vector<bool> seen(ref.size(), false);
        if (augment(e, seen)) ++matched;
    }
    return matched;
}

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_input("{}: cannot read the labels", path.string());
    std::stringstream text;
    text << in.rdbuf();
    try {
        return nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
        throw_input("{}: not JSON ({})", path.string(), e.what());
    }
}

double mean_of(const std::vector<double>& x) {
    double s = 0;
    for (double v : x) s += v;
    return x.empty() ? 0.0 : s / static_cast<double>(x.size());
}

double median_of(std::vector<double> x) {
    if (x.empty()) return 0.0;
    std::sort(x.begin(), x.end());
    return x.size() % 2 ? x[x.size() / 2] : 0.5 * (x[x.size() / 2 - 1] + x[x.size() / 2]);
}

// Accumulated figures over the items.
struct StructureTally {
    std::map<std::string, std::vector<double>> boundary;  // metric → per medley item
    std::vector<double> key_scores, key_correct;          // per second of reference key spans
    int modulation_items = 0, modulations_found = 0, right_interval = 0;
    double false_changes = 0, modulation_minutes = 0;
    std::vector<double> climax_errors;
    double analysis_sec = 0, audio_min = 0;
};

int key_at(const Structure& s, double t) {
    for (const auto& k : s.keys)
        if (t >= k.start && t < k.end) return k.key;
    return -1;
}

void score_boundaries(const nlohmann::json& truth, const Structure& s, StructureTally& tally, nlohmann::json& row) {
    const auto ref = truth["boundaries"].get<std::vector<double>>();
    for (double w : {0.5, 3.0})
        for (bool trim : {true, false}) {
            const DetectionScore d = boundary_detection(ref, s.boundaries, w, trim);
            const std::string name = fmt::format("f@{}{}", w == 0.5 ? "0.5" : "3", trim ? "" : "_untrimmed");
            tally.boundary[name].push_back(d.f);
            row[name] = d.f;
            if (trim && w == 3.0) {
                tally.boundary["precision@3"].push_back(d.precision);
                tally.boundary["recall@3"].push_back(d.recall);
            }
        }
}

void score_modulation(const nlohmann::json& truth, const Structure& s, double duration, StructureTally& tally, nlohmann::json& row) {
    const auto& ref = truth["modulations"][0];
    const double time = ref["time"].get<double>();
    const int interval = ref["interval"].get<int>();
    ++tally.modulation_items;
    bool found = false, right = false;
    int false_changes = 0;
    for (const auto& m : s.modulations) {
        if (!found && std::fabs(m.time - time) <= 3.0) {
            found = true;
            right = m.interval == interval;
        } else {
            ++false_changes;
        }
    }
    tally.modulations_found += found;
    tally.right_interval += right;
    tally.false_changes += false_changes;
    tally.modulation_minutes += duration / 60.0;
    for (const auto& k : truth["keys"]) {
        const int ref_key = parse_key(k["key"].get<std::string>());
        const double end = k.contains("end") ? k["end"].get<double>() : duration;
        for (double t = k["start"].get<double>() + 0.5; t < end; t += 1.0) {
            const int est = key_at(s, t);
            tally.key_scores.push_back(est < 0 ? 0.0 : mirex_key_score(ref_key, est));
            tally.key_correct.push_back(est == ref_key ? 1.0 : 0.0);
        }
    }
    row["modulation_found"] = found;
    row["right_interval"] = right;
    row["false_changes"] = false_changes;
}

void score_climax(const nlohmann::json& truth, const Structure& s, StructureTally& tally, nlohmann::json& row) {
    const double ref = truth["climax"]["time"].get<double>();
    const double err = s.climax ? std::fabs(s.climax->time - ref) : 1e9;
    tally.climax_errors.push_back(err);
    row["climax_error_sec"] = err;
}

nlohmann::json summarise(const StructureTally& t) {
    nlohmann::json b = nlohmann::json::object();
    for (const auto& [name, v] : t.boundary) b[name] = mean_of(v);
    b["items"] = t.boundary.count("f@3") ? t.boundary.at("f@3").size() : 0;
    const auto within = std::count_if(t.climax_errors.begin(), t.climax_errors.end(), [](double e) { return e <= 3.0; });
    std::vector<double> finite;
    for (double e : t.climax_errors)
        if (e < 1e8) finite.push_back(e);
    const double items = std::max(1, t.modulation_items);
    return {{"boundaries", b},
            {"keys", {{"mirex", mean_of(t.key_scores)}, {"correct", mean_of(t.key_correct)}, {"seconds", t.key_scores.size()}}},
            {"modulations", {{"items", t.modulation_items}, {"found_within_3s", t.modulations_found / items},
                             {"right_interval", t.right_interval / items},
                             {"false_per_minute", t.modulation_minutes > 0 ? t.false_changes / t.modulation_minutes : 0.0}}},
            {"climax", {{"items", t.climax_errors.size()},
                        {"within_3s", t.climax_errors.empty() ? 0.0 : static_cast<double>(within) / static_cast<double>(t.climax_errors.size())},
                        {"mean_error_sec", mean_of(finite)}, {"median_error_sec", median_of(finite)}}},
            {"seconds_per_minute", t.audio_min > 0 ? t.analysis_sec / t.audio_min : 0.0}};
}

}  // namespace

DetectionScore boundary_detection(std::vector<double> ref, std::vector<double> est, double window, bool trim) {
    for (auto* v : {&ref, &est}) {
        std::sort(v->begin(), v->end());
        v->erase(std::unique(v->begin(), v->end()), v->end());
        if (trim) *v = v->size() > 2 ? std::vector<double>(v->begin() + 1, v->end() - 1) : std::vector<double>{};
    }
    if (ref.empty() || est.empty()) return {};
    const auto matched = static_cast<double>(max_matching(ref, est, window));
    DetectionScore d{matched / static_cast<double>(est.size()), matched / static_cast<double>(ref.size()), 0.0};
    if (d.precision > 0 || d.recall > 0) d.f = 2 * d.precision * d.recall / (d.precision + d.recall);
    return d;
}

double mirex_key_score(int ref, int est) {
    if (ref == est) return 1.0;
    const bool ref_minor = ref >= 12, est_minor = est >= 12;
    const int d = ((est % 12) - (ref % 12) + 12) % 12;
    if (ref_minor == est_minor && d == 7) return 0.5;
    if (!ref_minor && est_minor && d == 9) return 0.3;
    if (ref_minor && !est_minor && d == 3) return 0.3;
    if (ref_minor != est_minor && d == 0) return 0.2;
    return 0.0;
}

nlohmann::json evaluate_structure(const fs::path& labels_path, const StructureEvalParams& params) {
    const nlohmann::json labels = read_json(labels_path);
    if (labels.value("schema", "") != "mess-structure-labels/1")
        throw_input("{}: not a structure corpus's labels (schema mess-structure-labels/1; make one with mess corpus render --structure)", labels_path.string());
    StructureTally tally;
    nlohmann::json rows = nlohmann::json::array();
    const auto& items = labels["items"];
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& item = items[i];
        const auto& truth = item["structure"];
        const Audio audio = load_audio(labels_path.parent_path() / item["file"].get<std::string>());
        const auto t0 = std::chrono::steady_clock::now();
        const Structure s = analyze_structure(audio, params.structure);
        tally.analysis_sec += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        tally.audio_min += audio.duration_sec() / 60.0;
        nlohmann::json row = {{"id", item["id"]}, {"kind", truth["kind"]}, {"estimated", structure_to_json(s)}};
        const std::string kind = truth["kind"].get<std::string>();
        if (kind == "medley") score_boundaries(truth, s, tally, row);
        if (kind == "modulation") score_modulation(truth, s, audio.duration_sec(), tally, row);
        if (kind == "climax") score_climax(truth, s, tally, row);
        rows.push_back(std::move(row));
        if (params.on_progress) params.on_progress(static_cast<std::int64_t>(i + 1), static_cast<std::int64_t>(items.size()));
    }
    nlohmann::json report = summarise(tally);
    report["schema"] = "mess-eval-structure/1";
    report["items"] = items.size();
    report["per_item"] = rows;
    return report;
}

std::string format_structure_report(const nlohmann::json& r) {
    const auto& b = r["boundaries"];
    const auto& m = r["modulations"];
    const auto& c = r["climax"];
    std::string out = fmt::format("structure: {} item(s), analysis {:.3f} s per minute of audio\n", r["items"].get<std::size_t>(),
                                  r["seconds_per_minute"].get<double>());
    out += fmt::format("  boundaries ({} medleys): F@0.5 {:.3f}  F@3 {:.3f}  (untrimmed {:.3f} / {:.3f}; P@3 {:.3f} R@3 {:.3f})\n",
                       b["items"].get<std::size_t>(), b.value("f@0.5", 0.0), b.value("f@3", 0.0), b.value("f@0.5_untrimmed", 0.0),
                       b.value("f@3_untrimmed", 0.0), b.value("precision@3", 0.0), b.value("recall@3", 0.0));
    out += fmt::format("  keys: MIREX {:.3f}, exact {:.3f} ({} s)\n", r["keys"]["mirex"].get<double>(), r["keys"]["correct"].get<double>(),
                       r["keys"]["seconds"].get<std::size_t>());
    out += fmt::format("  modulations ({}): found within 3 s {:.3f}, right interval {:.3f}, false changes {:.2f}/min\n",
                       m["items"].get<int>(), m["found_within_3s"].get<double>(), m["right_interval"].get<double>(),
                       m["false_per_minute"].get<double>());
    out += fmt::format("  climax ({}): within 3 s {:.3f}, mean error {:.2f} s, median {:.2f} s\n", c["items"].get<std::size_t>(),
                       c["within_3s"].get<double>(), c["mean_error_sec"].get<double>(), c["median_error_sec"].get<double>());
    return out;
}

}  // namespace mess
