// Ranking metrics with binary relevance (definitions: include/mess/eval.hpp).
#include <algorithm>
#include <cmath>

#include "mess/eval.hpp"

namespace mess {

namespace {
void require_k(int k) {
    if (k < 1) throw_usage("K must be ≥ 1 (got {})", k);
}
std::int64_t hits_in_head(const std::vector<bool>& relevant, int k) {
    const auto n = std::min<std::size_t>(relevant.size(), static_cast<std::size_t>(k));
    return std::count(relevant.begin(), relevant.begin() + static_cast<std::ptrdiff_t>(n), true);
}
}  // namespace

double recall_at_k(const std::vector<bool>& relevant, std::int64_t total_relevant, int k) {
    require_k(k);
    if (total_relevant <= 0) return 0.0;
    return static_cast<double>(hits_in_head(relevant, k)) / static_cast<double>(total_relevant);
}

double precision_at_k(const std::vector<bool>& relevant, int k) {
    require_k(k);
    return static_cast<double>(hits_in_head(relevant, k)) / k;
}

std::optional<std::int64_t> first_relevant_rank(const std::vector<bool>& relevant) {
    const auto it = std::find(relevant.begin(), relevant.end(), true);
    if (it == relevant.end()) return std::nullopt;
    return static_cast<std::int64_t>(it - relevant.begin()) + 1;
}

double reciprocal_rank(const std::vector<bool>& relevant) {
    const auto r = first_relevant_rank(relevant);
    return r ? 1.0 / static_cast<double>(*r) : 0.0;
}

double ndcg_at_k(const std::vector<bool>& relevant, std::int64_t total_relevant, int k) {
    require_k(k);
    if (total_relevant <= 0) return 0.0;
    double dcg = 0, ideal = 0;
    const auto n = std::min<std::size_t>(relevant.size(), static_cast<std::size_t>(k));
    for (std::size_t i = 0; i < n; ++i)
        if (relevant[i]) dcg += 1.0 / std::log2(static_cast<double>(i) + 2.0);
    const std::int64_t ideal_hits = std::min<std::int64_t>(total_relevant, k);
    for (std::int64_t i = 0; i < ideal_hits; ++i) ideal += 1.0 / std::log2(static_cast<double>(i) + 2.0);
    return dcg / ideal;
}

double average_precision(const std::vector<bool>& relevant, std::int64_t total_relevant) {
    if (total_relevant <= 0) return 0.0;
    double sum = 0;
    std::int64_t found = 0;
    for (std::size_t i = 0; i < relevant.size(); ++i)
        if (relevant[i]) sum += static_cast<double>(++found) / static_cast<double>(i + 1);
    return sum / static_cast<double>(total_relevant);
}

}  // namespace mess
