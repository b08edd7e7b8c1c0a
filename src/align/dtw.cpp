// DTW: full matrix, banded, and multiscale (coarse path → band → finer path), steps (1,0), (0,1), (1,1).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "mess/align.hpp"

namespace mess {
namespace {

enum Step : std::uint8_t { kDiagonal, kFromAbove, kFromLeft, kStart };
constexpr double kInf = std::numeric_limits<double>::infinity();

void require_features(const AlignFeatures& a, const AlignFeatures& b, const DtwOptions& o) {
    if (a.frames() == 0 || b.frames() == 0)
        throw_usage("DTW needs two non-empty feature sequences (got {} and {} frames)", a.frames(), b.frames());
    if (!(o.step_penalty >= 0)) throw_usage("DTW step penalty must be ≥ 0 (got {})", o.step_penalty);
}

// The cheapest way into a cell from its three predecessors (infinite where absent) or, where allowed, a
// fresh start. Ties prefer the diagonal.
struct Choice {
    double cost;
    Step step;
};
inline Choice choose(double diagonal, double above, double left, bool may_start, double penalty) {
    Choice c{diagonal, kDiagonal};
    if (above + penalty < c.cost) c = {above + penalty, kFromAbove};
    if (left + penalty < c.cost) c = {left + penalty, kFromLeft};
    if (may_start && 0.0 <= c.cost) c = {0.0, kStart};
    return c;
}

// Walks the steps back from (i, j); `step_at(i, j)` reads the stored step of a cell.
template <class StepAt>
std::vector<std::array<std::int64_t, 2>> backtrack(std::int64_t i, std::int64_t j, StepAt step_at) {
    std::vector<std::array<std::int64_t, 2>> cells;
    for (;;) {
        cells.push_back({i, j});
        const Step s = step_at(i, j);
        if (s == kStart) break;
        if (s != kFromLeft) --i;
        if (s != kFromAbove) --j;
    }
    std::reverse(cells.begin(), cells.end());
    return cells;
}

// The end of the path: the last cell, or with open_end the cheapest cell of the last row among [lo, hi].
std::int64_t end_column(const std::vector<double>& last_row, std::int64_t lo, std::int64_t hi, bool open_end) {
    if (!open_end) return hi;
    std::int64_t best = lo;
    for (std::int64_t j = lo; j <= hi; ++j)
        if (last_row[static_cast<std::size_t>(j - lo)] < last_row[static_cast<std::size_t>(best - lo)]) best = j;
    return best;
}

void validate_band(const DtwBand& band, std::int64_t rows, std::int64_t cols, const DtwOptions& o) {
    if (static_cast<std::int64_t>(band.lo.size()) != rows || static_cast<std::int64_t>(band.hi.size()) != rows)
        throw_usage("DTW band has {} rows for {} frames", band.lo.size(), rows);
    for (std::int64_t i = 0; i < rows; ++i) {
        const auto lo = band.lo[static_cast<std::size_t>(i)], hi = band.hi[static_cast<std::size_t>(i)];
        const bool ordered = 0 <= lo && lo <= hi && hi < cols;
        const bool monotone = i == 0 || (band.lo[static_cast<std::size_t>(i - 1)] <= lo && band.hi[static_cast<std::size_t>(i - 1)] <= hi &&
                                         lo <= band.hi[static_cast<std::size_t>(i - 1)] + 1);
        if (!ordered || !monotone) throw_usage("DTW band row {} ([{}, {}]) is not a monotone, connected band of {} columns", i, lo, hi, cols);
    }
    if (!o.open_begin && band.lo.front() != 0) throw_usage("DTW band must start at column 0 without open_begin");
    if (!o.open_end && band.hi.back() != cols - 1) throw_usage("DTW band must reach the last column without open_end");
}

}  // namespace

std::int64_t DtwBand::cells() const {
    std::int64_t n = 0;
    for (std::size_t i = 0; i < lo.size(); ++i) n += hi[i] - lo[i] + 1;
    return n;
}

DtwPath dtw_full(const AlignFeatures& a, const AlignFeatures& b, const DtwOptions& o) {
    require_features(a, b, o);
    const std::int64_t rows = a.frames(), cols = b.frames();
    std::vector<std::uint8_t> steps(static_cast<std::size_t>(rows * cols));
    std::vector<double> above(static_cast<std::size_t>(cols), kInf), row(static_cast<std::size_t>(cols));
    for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) {
            const auto u = static_cast<std::size_t>(j);
            const double diagonal = j > 0 ? above[u - 1] : kInf, left = j > 0 ? row[u - 1] : kInf;
            const Choice c = choose(diagonal, above[u], left, i == 0 && (j == 0 || o.open_begin), o.step_penalty);
            row[u] = c.cost + frame_cost(a, i, b, j);
            steps[static_cast<std::size_t>(i * cols + j)] = c.step;
        }
        std::swap(above, row);
    }
    DtwPath p;
    const std::int64_t end = end_column(above, 0, cols - 1, o.open_end);
    p.cells = backtrack(rows - 1, end, [&](std::int64_t i, std::int64_t j) { return static_cast<Step>(steps[static_cast<std::size_t>(i * cols + j)]); });
    p.total_cost = above[static_cast<std::size_t>(end)];
    p.cells_computed = rows * cols;
    p.working_bytes = static_cast<std::int64_t>(steps.size() + 2 * above.size() * sizeof(double));
    return p;
}

DtwPath dtw_banded(const AlignFeatures& a, const AlignFeatures& b, const DtwBand& band, const DtwOptions& o) {
    require_features(a, b, o);
    const std::int64_t rows = a.frames(), cols = b.frames();
    validate_band(band, rows, cols, o);
    std::vector<std::int64_t> offset(static_cast<std::size_t>(rows) + 1, 0);
    for (std::int64_t i = 0; i < rows; ++i)
        offset[static_cast<std::size_t>(i) + 1] = offset[static_cast<std::size_t>(i)] + band.hi[static_cast<std::size_t>(i)] - band.lo[static_cast<std::size_t>(i)] + 1;
    std::vector<std::uint8_t> steps(static_cast<std::size_t>(offset.back()));
    std::vector<double> above, row;
    std::int64_t above_lo = 0, above_hi = -1;
    auto above_at = [&](std::int64_t j) { return j >= above_lo && j <= above_hi ? above[static_cast<std::size_t>(j - above_lo)] : kInf; };
    for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t lo = band.lo[static_cast<std::size_t>(i)], hi = band.hi[static_cast<std::size_t>(i)];
        row.assign(static_cast<std::size_t>(hi - lo + 1), kInf);
        for (std::int64_t j = lo; j <= hi; ++j) {
            const double left = j > lo ? row[static_cast<std::size_t>(j - lo - 1)] : kInf;
            const Choice c = choose(above_at(j - 1), above_at(j), left, i == 0 && (j == 0 || o.open_begin), o.step_penalty);
            row[static_cast<std::size_t>(j - lo)] = c.cost + frame_cost(a, i, b, j);
            steps[static_cast<std::size_t>(offset[static_cast<std::size_t>(i)] + j - lo)] = c.step;
        }
        std::swap(above, row);
        above_lo = lo, above_hi = hi;
    }
    DtwPath p;
    const std::int64_t end = end_column(above, above_lo, above_hi, o.open_end);
    p.cells = backtrack(rows - 1, end, [&](std::int64_t i, std::int64_t j) {
        return static_cast<Step>(steps[static_cast<std::size_t>(offset[static_cast<std::size_t>(i)] + j - band.lo[static_cast<std::size_t>(i)])]);
    });
    p.total_cost = above_at(end);
    p.cells_computed = offset.back();
    p.working_bytes = static_cast<std::int64_t>(steps.size() + (offset.size() + 2 * band.lo.size()) * sizeof(std::int64_t) +
                                                2 * static_cast<std::size_t>(cols) * sizeof(double));
    return p;
}

DtwBand project_path(const DtwPath& coarse, int factor, std::int64_t rows, std::int64_t cols, int radius) {
    if (factor < 1 || radius < 0 || coarse.cells.empty()) throw_usage("project_path needs a path, factor ≥ 1 and radius ≥ 0");
    const std::int64_t coarse_rows = coarse.cells.back()[0] + 1;
    std::vector<std::int64_t> first(static_cast<std::size_t>(coarse_rows), cols), last(static_cast<std::size_t>(coarse_rows), -1);
    for (auto [i, j] : coarse.cells) {
        first[static_cast<std::size_t>(i)] = std::min(first[static_cast<std::size_t>(i)], j);
        last[static_cast<std::size_t>(i)] = std::max(last[static_cast<std::size_t>(i)], j);
    }
    DtwBand band{std::vector<std::int64_t>(static_cast<std::size_t>(rows)), std::vector<std::int64_t>(static_cast<std::size_t>(rows))};
    for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t from = std::max<std::int64_t>(0, i - radius) / factor, to = std::min(coarse_rows - 1, (i + radius) / factor);
        std::int64_t lo = cols, hi = -1;
        for (std::int64_t r = from; r <= to; ++r) {
            lo = std::min(lo, first[static_cast<std::size_t>(r)]);
            hi = std::max(hi, last[static_cast<std::size_t>(r)]);
        }
        band.lo[static_cast<std::size_t>(i)] = std::clamp<std::int64_t>(lo * factor - radius, 0, cols - 1);
        band.hi[static_cast<std::size_t>(i)] = std::clamp<std::int64_t>((hi + 1) * factor - 1 + radius, 0, cols - 1);
    }
    for (std::size_t i = 1; i < band.lo.size(); ++i) {  // monotone and connected, whatever the rounding did
        band.lo[i] = std::min(std::max(band.lo[i], band.lo[i - 1]), band.hi[i - 1] + 1);
        band.hi[i] = std::max(band.hi[i], band.hi[i - 1]);
    }
    return band;
}

DtwPath dtw_multiscale(const AlignFeatures& a, const AlignFeatures& b, const MultiscaleOptions& o) {
    require_features(a, b, o.dtw);
    if (o.radius < 1 || o.coarsest_frames < 50) throw_usage("multiscale DTW needs radius ≥ 1 and coarsest_frames ≥ 50");
    std::vector<std::pair<AlignFeatures, AlignFeatures>> levels{{a, b}};
    std::vector<int> factors;
    while (std::max(levels.back().first.frames(), levels.back().second.frames()) > o.coarsest_frames) {
        factors.push_back(factors.size() < 2 ? 5 : 4);
        levels.emplace_back(downsample_features(levels.back().first, factors.back()), downsample_features(levels.back().second, factors.back()));
    }
    DtwPath path = dtw_full(levels.back().first, levels.back().second, o.dtw);
    std::int64_t cells = path.cells_computed, peak = path.working_bytes;
    for (std::size_t l = factors.size(); l-- > 0;) {
        const auto& [fa, fb] = levels[l];
        const DtwBand band = project_path(path, factors[l], fa.frames(), fb.frames(), o.radius);
        path = dtw_banded(fa, fb, band, o.dtw);
        cells += path.cells_computed;
        peak = std::max(peak, path.working_bytes);
    }
    path.cells_computed = cells;
    path.working_bytes = peak;
    return path;
}

}  // namespace mess
