// Human triplet judgements (anchor, a, b, choice[, aspect]) against the geometries of an index.
#include <cmath>

#include <fmt/format.h>

#include "mess/catalog.hpp"
#include "mess/eval.hpp"
#include "mess/util.hpp"

namespace mess {

namespace {

std::string trimmed(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

std::vector<TripletJudgement> read_triplet_judgements(const std::filesystem::path& path) {
    const CsvTable t = read_csv(path);
    const int anchor = t.column("anchor"), a = t.column("a"), b = t.column("b"), choice = t.column("choice"), aspect = t.column("aspect");
    for (const auto& [name, col] : {std::pair{"anchor", anchor}, std::pair{"a", a}, std::pair{"b", b}, std::pair{"choice", choice}})
        if (col < 0) throw_input("{}: no '{}' column (a judgements file has anchor,a,b,choice[,aspect])", path.string(), name);
    std::vector<TripletJudgement> out;
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const auto& r = t.rows[i];
        auto at = [&](int c) { return trimmed(r[static_cast<std::size_t>(c)]); };
        out.push_back({i + 2, at(anchor), at(a), at(b), at(choice), aspect >= 0 ? at(aspect) : std::string()});
    }
    return out;
}

namespace {

// The row an id names (clip id, track id, or track@seconds). Errors: Error(input) naming the id.
std::size_t row_named(const SearchIndex& idx, const std::string& id) {
    const auto at = id.rfind('@');
    if (at == std::string::npos) return idx.row_of(id);
    const std::string track = id.substr(0, at), sec_text = id.substr(at + 1);
    char* end = nullptr;
    const double sec = std::strtod(sec_text.c_str(), &end);
    if (sec_text.empty() || *end != '\0' || !std::isfinite(sec)) throw_input("'{}': '{}' is not a second", id, sec_text);
    if (idx.kind == IndexKind::track) return idx.row_of(track);
    std::size_t best = 0;
    double best_d = INFINITY;
    for (std::size_t r : idx.rows_of_track(track))
        if (const double d = std::abs(idx.records[r].start_sec - sec); d < best_d) best = r, best_d = d;
    return best;
}

struct Resolved {
    std::size_t anchor, chosen, other;
    std::string aspect;
};

double dot(const float* x, const float* y, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * y[i];
    return s;
}

// Every geometry of the index: its own vectors, then each learned aspect space.
std::vector<std::pair<std::string, std::function<double(std::size_t, std::size_t)>>> geometries(const SearchIndex& idx) {
    std::vector<std::pair<std::string, std::function<double(std::size_t, std::size_t)>>> out;
    const std::size_t dim = idx.index.dimension();
    out.emplace_back("index", [&idx, dim](std::size_t x, std::size_t y) { return dot(idx.index.vector(x), idx.index.vector(y), dim); });
    for (const auto& entry : idx.aspect_spaces.models.aspects) {
        const std::string aspect = entry.first;
        const auto k = static_cast<std::size_t>(entry.second.out_dim);
        out.emplace_back("aspect:" + aspect, [&idx, aspect, k](std::size_t x, std::size_t y) {
            return dot(idx.aspect_spaces.row(aspect, x), idx.aspect_spaces.row(aspect, y), k);
        });
    }
    return out;
}

}  // namespace

TripletEvalReport evaluate_triplet_judgements(const SearchIndex& idx, const std::vector<TripletJudgement>& judgements) {
    TripletEvalReport rep;
    std::vector<Resolved> usable;
    for (const auto& j : judgements) {
        try {
            const std::size_t anchor = row_named(idx, j.anchor), a = row_named(idx, j.a), b = row_named(idx, j.b);
            const bool chose_a = j.choice == "a" || j.choice == j.a, chose_b = j.choice == "b" || j.choice == j.b;
            if (chose_a == chose_b) throw_input("choice '{}' is neither a nor b", j.choice);
            usable.push_back({anchor, chose_a ? a : b, chose_a ? b : a, j.aspect});
        } catch (const Error& e) {
            rep.skipped.push_back(fmt::format("line {}: {}", j.line, e.what()));
        }
    }
    rep.judgements = static_cast<std::int64_t>(usable.size());
    for (const auto& [name, sim] : geometries(idx)) {
        std::map<std::string, JudgementAgreement> by_label;
        for (const auto& u : usable) {
            const double c = sim(u.anchor, u.chosen), o = sim(u.anchor, u.other);
            const double score = c > o ? 1.0 : c == o ? 0.5 : 0.0;
            by_label[""].judged += 1, by_label[""].agree += score;  // every judgement
            if (!u.aspect.empty()) by_label[u.aspect].judged += 1, by_label[u.aspect].agree += score;
        }
        for (auto& [label, g] : by_label) {
            g.geometry = name, g.aspect = label;
            rep.rows.push_back(g);
        }
    }
    return rep;
}

nlohmann::json TripletEvalReport::to_json() const {
    nlohmann::json rowsj = nlohmann::json::array();
    for (const auto& r : rows)
        rowsj.push_back({{"geometry", r.geometry}, {"aspect", r.aspect}, {"judged", r.judged}, {"agreement", r.agreement()}});
    return {{"schema", "mess-eval-triplets/1"}, {"judgements", judgements}, {"skipped", skipped}, {"agreement", rowsj}};
}

std::string TripletEvalReport::format() const {
    std::string out = fmt::format("{} judgements ({} skipped)\n{:<22}{:<16}{:>8}{:>11}\n", judgements, skipped.size(), "geometry", "aspect",
                                  "judged", "agreement");
    for (const auto& r : rows)
        out += fmt::format("{:<22}{:<16}{:>8}{:>11.3f}\n", r.geometry, r.aspect.empty() ? "(all)" : r.aspect, r.judged, r.agreement());
    for (const auto& s : skipped) out += "skipped " + s + "\n";
    return out;
}

}  // namespace mess
