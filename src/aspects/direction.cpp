// "More" and "less" of an aspect: a unit direction in its learned space along the order of its values.
#include <cmath>
#include <cstdlib>

#include "mess/aspects.hpp"

namespace mess {

std::optional<double> aspect_value_rank(const std::string& aspect, const std::string& value) {
    if (aspect == "tempo") {  // beats per minute: 200 plays faster than 160
        char* end = nullptr;
        const double bpm = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !(bpm > 0)) return std::nullopt;
        return std::log(bpm);
    }
    static const std::map<std::string, std::map<std::string, double>> orders = {
        {"dynamics", {{"soft", 0}, {"medium", 1}, {"loud", 2}}},
        {"articulation", {{"staccato", 0}, {"normal", 1}, {"legato", 2}}}};
    const auto a = orders.find(aspect);
    if (a == orders.end()) return std::nullopt;
    const auto v = a->second.find(value);
    return v == a->second.end() ? std::nullopt : std::optional<double>(v->second);
}

bool fit_direction(AspectModel& model, const FactorWindows& data, const std::string& aspect) {
    std::vector<std::pair<std::int64_t, double>> rows;  // window, rank
    for (std::int64_t i = 0; i < data.n; ++i) {
        const auto t = static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)]);
        if (data.track_factor[t] != aspect && data.track_factor[t] != "base") continue;
        const auto v = data.track_values[t].find(aspect);
        if (v == data.track_values[t].end()) continue;
        if (const auto r = aspect_value_rank(aspect, v->second)) rows.emplace_back(i, *r);
    }
    double mean_rank = 0;
    for (const auto& [i, r] : rows) mean_rank += r / static_cast<double>(rows.size());
    std::vector<double> dir(static_cast<std::size_t>(model.out_dim), 0.0);
    for (const auto& [i, r] : rows) {  // Σ (rank − mean) · ŷ: the covariance of the space with the order
        const std::vector<float> y = model.apply_normalised(data.row(i), 1);
        for (std::size_t k = 0; k < dir.size(); ++k) dir[k] += (r - mean_rank) * y[k];
    }
    double norm = 0;
    for (double d : dir) norm += d * d;
    if (rows.size() < 2 || !(norm > 0)) return false;
    model.direction.resize(dir.size());
    for (std::size_t k = 0; k < dir.size(); ++k) model.direction[k] = static_cast<float>(dir[k] / std::sqrt(norm));
    return true;
}

double AspectModel::predict(const float* y) const {
    double s = 0;
    for (std::size_t k = 0; k < direction.size(); ++k) s += double(direction[k]) * y[k];
    return s;
}

}  // namespace mess
