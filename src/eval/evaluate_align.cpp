// Alignment accuracy against rendered time maps (eval.hpp: evaluate_alignment).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "mess/eval.hpp"

namespace mess {
namespace {

std::string kind_of(const LabelItem& item) {
    const std::string kind = item.variant_kind();
    return kind.empty() ? "unknown" : kind;
}
int transpose_of(const LabelItem& item) {
    return item.transform.is_object() ? item.transform.value("transpose", 0) : 0;
}
int as_signed_shift(int semitones) {
    const int s = ((semitones % 12) + 12) % 12;
    return s > 6 ? s - 12 : s;
}

// What one group of pairs (a variant kind, or all) measured.
struct AlignTally {
    std::vector<double> errors_ms;
    std::int64_t pairs = 0, transposition_correct = 0;
    double confidence = 0, seconds = 0, min_confidence = 1, max_cost_ratio = 0;

    nlohmann::json to_json(const std::vector<double>& thresholds) const {
        std::vector<double> e = errors_ms;
        std::sort(e.begin(), e.end());
        nlohmann::json beyond = nlohmann::json::object();
        for (double t : thresholds) {
            const auto n = e.end() - std::upper_bound(e.begin(), e.end(), t);
            beyond[fmt::format("{:g}", t)] = e.empty() ? 0.0 : static_cast<double>(n) / static_cast<double>(e.size());
        }
        const double p = static_cast<double>(std::max<std::int64_t>(pairs, 1));
        return {{"pairs", pairs},
                {"points", e.size()},
                {"mean_error_ms", e.empty() ? 0.0 : std::accumulate(e.begin(), e.end(), 0.0) / static_cast<double>(e.size())},
                {"median_error_ms", e.empty() ? 0.0 : e[e.size() / 2]},
                {"beyond_ms", beyond},
                {"transposition_correct", static_cast<double>(transposition_correct) / p},
                {"mean_confidence", confidence / p},
                {"min_confidence", min_confidence},
                {"max_cost_ratio", max_cost_ratio},
                {"seconds_per_pair", seconds / p}};
    }
};

class AlignmentRun {
public:
    AlignmentRun(const Labels& labels, std::filesystem::path dir, const AlignEvalParams& params)
        : labels_(labels), dir_(std::move(dir)), params_(params) {}

    nlohmann::json run() {
        const auto works = references();
        std::int64_t total = 0, done = 0;
        for (const auto& [ref, others] : works) total += static_cast<std::int64_t>(others.size());
        if (total == 0) throw_input("no work has a reference rendering and another rendering with time maps to align");
        if (params_.unrelated_pairs && works.size() > 1) total += static_cast<std::int64_t>(works.size());
        for (const auto& [ref, others] : works)
            for (const LabelItem* other : others) {
                measure(*ref, *other);
                if (params_.on_progress) params_.on_progress(++done, total);
            }
        if (params_.unrelated_pairs && works.size() > 1)
            for (std::size_t w = 0; w < works.size(); ++w) {
                unrelated(*works[w].first, *works[(w + 1) % works.size()].first);
                if (params_.on_progress) params_.on_progress(++done, total);
            }
        return report();
    }

private:
    // Per work (in labels order): its reference and the other renderings with time maps.
    std::vector<std::pair<const LabelItem*, std::vector<const LabelItem*>>> references() const {
        std::vector<std::string> order;
        std::map<std::string, std::vector<const LabelItem*>> by_work;
        for (const auto& it : labels_.items) {
            if (it.time_map.empty()) continue;
            if (!by_work.count(it.work_id)) order.push_back(it.work_id);
            by_work[it.work_id].push_back(&it);
        }
        std::vector<std::pair<const LabelItem*, std::vector<const LabelItem*>>> out;
        for (const auto& w : order) {
            auto items = by_work[w];
            auto ref = std::find_if(items.begin(), items.end(), [&](const LabelItem* i) { return kind_of(*i) == params_.reference_kind; });
            if (ref == items.end()) ref = items.begin();
            const LabelItem* r = *ref;
            items.erase(ref);
            if (!items.empty()) out.emplace_back(r, items);
        }
        return out;
    }

    const AlignFeatures& features(const LabelItem& item) {
        auto it = cache_.find(item.id);
        if (it == cache_.end()) it = cache_.emplace(item.id, alignment_features(load_audio(dir_ / item.file))).first;
        return it->second;
    }

    void measure(const LabelItem& ref, const LabelItem& other) {
        try {
            const auto t0 = std::chrono::steady_clock::now();
            const AlignFeatures &fa = features(ref), &fb = features(other);
            const Alignment al = align_features(fa, fb, params_.align);
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            for (AlignTally* t : {&by_kind_[kind_of(other)], &overall_}) {
                add_errors(*t, al, ref, other);
                t->pairs += 1;
                t->transposition_correct += al.transposition == as_signed_shift(transpose_of(other) - transpose_of(ref));
                t->confidence += al.confidence;
                t->min_confidence = std::min(t->min_confidence, al.confidence);
                t->max_cost_ratio = std::max(t->max_cost_ratio, al.cost_ratio);
                t->seconds += secs;
            }
        } catch (const Error& e) {
            failures_.push_back({{"a", ref.id}, {"b", other.id}, {"reason", e.what()}});
        }
    }

    static void add_errors(AlignTally& t, const Alignment& al, const LabelItem& a, const LabelItem& b) {
        const std::size_t n = std::min(a.time_map.size(), b.time_map.size());
        for (std::size_t k = 0; k < n; ++k) {
            if (std::fabs(a.time_map[k].first - b.time_map[k].first) > 1e-6) continue;  // not the same source second
            const double ta = a.time_map[k].second, tb = b.time_map[k].second;
            if (ta > al.duration_a || tb > al.duration_b) continue;
            t.errors_ms.push_back(1000.0 * std::fabs(al.time_b_at(ta) - tb));
        }
    }

    void unrelated(const LabelItem& a, const LabelItem& b) {
        try {
            AlignParams p = params_.align;
            p.max_length_ratio = std::max(p.max_length_ratio, 100.0);
            const Alignment al = align_features(features(a), features(b), p);
            unrelated_.push_back({{"a", a.id}, {"b", b.id}, {"cost_ratio", al.cost_ratio}, {"confidence", al.confidence}, {"reliable", al.reliable()}});
        } catch (const Error& e) {
            failures_.push_back({{"a", a.id}, {"b", b.id}, {"reason", e.what()}});
        }
    }

    nlohmann::json report() const {
        nlohmann::json variants = nlohmann::json::object();
        for (const auto& [kind, t] : by_kind_) variants[kind] = t.to_json(params_.thresholds_ms);
        double conf = 0, reliable = 0, min_ratio = unrelated_.empty() ? 0.0 : 1e9;
        for (const auto& u : unrelated_) {
            conf += u["confidence"].get<double>();
            reliable += u["reliable"].get<bool>() ? 1 : 0;
            min_ratio = std::min(min_ratio, u["cost_ratio"].get<double>());
        }
        const double nu = static_cast<double>(std::max<std::size_t>(unrelated_.size(), 1));
        return {{"schema", "mess-eval-align/1"},
                {"config", {{"reference_kind", params_.reference_kind}, {"radius", params_.align.dtw.radius},
                            {"open_begin", params_.align.dtw.dtw.open_begin}, {"open_end", params_.align.dtw.dtw.open_end},
                            {"exact", params_.align.exact}, {"frame_rate", kAlignFrameRate},
                            {"thresholds_ms", params_.thresholds_ms}}},
                {"pairs", overall_.pairs},
                {"overall", overall_.to_json(params_.thresholds_ms)},
                {"variants", variants},
                {"unrelated", {{"pairs", unrelated_.size()}, {"mean_confidence", conf / nu}, {"reliable", reliable / nu},
                               {"min_cost_ratio", min_ratio}, {"items", unrelated_}}},
                {"failures", failures_}};
    }

    const Labels& labels_;
    std::filesystem::path dir_;
    const AlignEvalParams& params_;
    std::map<std::string, AlignFeatures> cache_;
    std::map<std::string, AlignTally> by_kind_;
    AlignTally overall_;
    nlohmann::json unrelated_ = nlohmann::json::array(), failures_ = nlohmann::json::array();
};

std::string format_row(const std::string& name, const nlohmann::json& t, const nlohmann::json& thresholds) {
    std::string beyond;
    for (const auto& th : thresholds) {
        const std::string k = fmt::format("{:g}", th.get<double>());
        beyond += fmt::format("  >{}ms {:5.1f}%", k, 100.0 * t["beyond_ms"][k].get<double>());
    }
    return fmt::format("{:<14} {:>5} {:>6} {:>9.1f} {:>9.1f}{}  conf {:.2f}  transp {:.0f}%\n", name, t["pairs"].get<std::int64_t>(),
                       t["points"].get<std::int64_t>(), t["mean_error_ms"].get<double>(), t["median_error_ms"].get<double>(), beyond,
                       t["mean_confidence"].get<double>(), 100.0 * t["transposition_correct"].get<double>());
}

}  // namespace

nlohmann::json evaluate_alignment(const Labels& labels, const std::filesystem::path& labels_dir, const AlignEvalParams& params) {
    params.align.validate();
    for (double t : params.thresholds_ms)
        if (!(t > 0)) throw_usage("alignment error thresholds must be positive milliseconds (got {})", t);
    return AlignmentRun(labels, labels_dir, params).run();
}

std::string format_alignment_report(const nlohmann::json& r) {
    std::string out = fmt::format("{:<14} {:>5} {:>6} {:>9} {:>9}  share of points off by more than\n", "variant", "pairs", "points",
                                  "mean ms", "median ms");
    const auto& th = r["config"]["thresholds_ms"];
    for (const auto& [kind, t] : r["variants"].items()) out += format_row(kind, t, th);
    out += format_row("all", r["overall"], th);
    const auto& u = r["unrelated"];
    if (u["pairs"].get<std::int64_t>() > 0)
        out += fmt::format("unrelated pairs: {}, mean confidence {:.2f}, judged reliable {:.0f}%, lowest cost ratio {:.2f}\n",
                           u["pairs"].get<std::int64_t>(), u["mean_confidence"].get<double>(), 100.0 * u["reliable"].get<double>(),
                           u["min_cost_ratio"].get<double>());
    for (const auto& f : r["failures"]) out += fmt::format("failed {} ↔ {}: {}\n", f["a"].get<std::string>(), f["b"].get<std::string>(), f["reason"].get<std::string>());
    return out;
}

}  // namespace mess
