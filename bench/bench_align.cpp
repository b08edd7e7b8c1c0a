// Alignment of two long performances: multiscale DTW (what `mess align` runs) against a full-matrix DTW of
// the same features in the same run — time, DTW working memory, path agreement — and accuracy against the
// known time map of the synthetic performance.
//   bench_align [--minutes 10] [--no-full]
// The pair: a seeded piece (melody over a bass line, additive synthesis), and a performance of it 15 %
// slower with ±12 % rubato, transposed up 2 semitones, on a brighter sustained instrument.
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mess/align.hpp"
#include "support/support.hpp"

using namespace mess;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRate = 22050;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<test::Note> piece(double seconds) {
    std::mt19937 rng(17);
    const int scale[7] = {0, 2, 4, 5, 7, 9, 11};
    std::vector<test::Note> notes;
    for (double t = 0; t < seconds;) {
        const double len = 0.25 * static_cast<double>(1 + rng() % 4);
        notes.push_back({static_cast<double>(60 + scale[rng() % 7] + 12 * static_cast<int>(rng() % 2)), t, 0.9 * len, 0.6});
        if (std::fmod(t, 1.0) < 1e-9) notes.push_back({static_cast<double>(36 + scale[rng() % 7]), t, 0.9, 0.5});
        t += len;
    }
    return notes;
}

double warp(double s) {  // the slower performance's seconds for source second s
    const double w = 2 * M_PI / 7.0;
    return 1.15 * (s + 0.12 / w * (1 - std::cos(w * s)));
}

// Mean B frame of each A row of a DTW path.
std::vector<double> row_means(const DtwPath& p, std::int64_t rows) {
    std::vector<double> sum(static_cast<std::size_t>(rows), 0.0), n(sum.size(), 0.0);
    for (auto [i, j] : p.cells) sum[static_cast<std::size_t>(i)] += static_cast<double>(j), n[static_cast<std::size_t>(i)] += 1;
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = n[i] > 0 ? sum[i] / n[i] : 0.0;
    return sum;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("Multiscale against full-matrix DTW on two long performances");
    double minutes = 10;
    bool no_full = false;
    app.add_option("--minutes", minutes, "Length of the reference performance")->capture_default_str();
    app.add_flag("--no-full", no_full, "Skip the full-matrix reference (it needs frames_A × frames_B bytes)");
    CLI11_PARSE(app, argc, argv);
    const auto notes = piece(minutes * 60);
    std::vector<test::Note> slow;
    for (auto n : notes) slow.push_back({n.pitch + 2, warp(n.start), warp(n.start + n.length) - warp(n.start), n.velocity});
    const Audio a{test::render_notes(notes, minutes * 60, kRate), kRate};
    const Audio b{test::render_notes(slow, warp(minutes * 60), kRate, {10, 0.6, 0.3}), kRate};
    fmt::print("A {:.1f} s, B {:.1f} s ({} cores)\n", a.duration_sec(), b.duration_sec(), std::thread::hardware_concurrency());

    auto t0 = Clock::now();
    const Alignment al = align_audio(a, b, {});
    const double t_align = seconds_since(t0);
    int off50 = 0, total = 0;
    for (const auto& n : notes)
        if (n.start < minutes * 60 - 1) ++total, off50 += std::fabs(al.time_b_at(n.start) - warp(n.start)) > 0.05;
    fmt::print("mess align (features + transposition + multiscale DTW): {:.2f} s, DTW working memory {:.1f} MB, transposition {:+d}, "
               "confidence {:.2f}\n",
               t_align, static_cast<double>(al.working_bytes) / 1048576.0, al.transposition, al.confidence);
    fmt::print("accuracy: {:.1f} % of {} note onsets within 50 ms of the truth\n", 100.0 * (total - off50) / total, total);
    if (no_full) return 0;

    t0 = Clock::now();
    const AlignFeatures fa = alignment_features(a), fb = shift_pitch_classes(alignment_features(b), al.transposition);
    const double t_features = seconds_since(t0);
    t0 = Clock::now();
    const DtwPath ms = dtw_multiscale(fa, fb, {});
    const double t_ms = seconds_since(t0);
    t0 = Clock::now();
    const DtwPath full = dtw_full(fa, fb, {});
    const double t_full = seconds_since(t0);
    const auto m = row_means(ms, fa.frames()), f = row_means(full, fa.frames());
    std::int64_t within = 0;
    double worst = 0;
    for (std::size_t i = 0; i < m.size(); ++i) within += std::fabs(m[i] - f[i]) <= 1.0, worst = std::max(worst, std::fabs(m[i] - f[i]));
    fmt::print("features (sequential): {:.2f} s\n", t_features);
    fmt::print("DTW multiscale {:.2f} s, {:.1f} MB, {} cells | full {:.2f} s, {:.1f} MB, {} cells\n", t_ms,
               static_cast<double>(ms.working_bytes) / 1048576.0, ms.cells_computed, t_full,
               static_cast<double>(full.working_bytes) / 1048576.0, full.cells_computed);
    fmt::print("ratio full/multiscale: time {:.1f}×, memory {:.1f}×; cost multiscale/full {:.5f}\n", t_full / t_ms,
               static_cast<double>(full.working_bytes) / static_cast<double>(ms.working_bytes), ms.total_cost / full.total_cost);
    fmt::print("path agreement: {:.2f} % of A's frames within one frame of the full path (worst {:.0f} frames)\n",
               100.0 * static_cast<double>(within) / static_cast<double>(m.size()), worst);
    return 0;
}
