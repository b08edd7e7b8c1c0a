// Training time of a linear aspect model (issue target: 10,000 windows in ≤ 60 s on 2 cores). Synthetic
// factor windows: W works × 5 values of one factor ("tempo"), each window = its work's content vector +
// its value's vector (weaker) + position drift + noise, so the model must learn to ignore the content.
// The whole ladder is trained with the default parameters (30 epochs × 4,000 triplets, rank 32); the
// reference, measured in the same run, is the diagonal rung (same triplets, Din instead of k · Din weights).
//   bench_aspects [--windows 10000] [--dim 380] [--works 40]
#include <chrono>
#include <random>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mess/aspects.hpp"

using namespace mess;

namespace {

FactorWindows synthetic_windows(std::int64_t n, std::int64_t dim, int works, std::uint32_t seed) {
    const char* values[] = {"0.70", "0.85", "1.00", "1.20", "1.40"};
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0, 1);
    auto random_vector = [&](float scale) {
        std::vector<float> v(static_cast<std::size_t>(dim));
        for (auto& x : v) x = scale * d(g);
        return v;
    };
    std::vector<std::vector<float>> content, value, drift;
    for (int w = 0; w < works; ++w) content.push_back(random_vector(1.0f)), drift.push_back(random_vector(0.3f));
    for (int v = 0; v < 5; ++v) value.push_back(random_vector(0.4f));
    FactorWindows f;
    f.dim = dim;
    f.layer_dim = dim;
    f.layers = {0};
    f.encoder = "synthetic";
    const std::int64_t per_track = std::max<std::int64_t>(1, n / (works * 5));
    for (int w = 0; w < works; ++w)
        for (int v = 0; v < 5; ++v) {
            const auto t = static_cast<std::int32_t>(f.track_ids.size());
            f.track_ids.push_back(fmt::format("w{}-v{}", w, v));
            f.track_work.push_back(fmt::format("w{}", w));
            f.track_factor.push_back(v == 2 ? "base" : "tempo");
            f.track_values.push_back({{"tempo", values[v]}});
            for (std::int64_t i = 0; i < per_track; ++i) {
                const double pos = (static_cast<double>(i) + 0.5) / static_cast<double>(per_track);
                for (std::int64_t j = 0; j < dim; ++j) {
                    const auto k = static_cast<std::size_t>(j);
                    f.x.push_back(content[static_cast<std::size_t>(w)][k] + value[static_cast<std::size_t>(v)][k] +
                                  static_cast<float>(pos) * drift[static_cast<std::size_t>(w)][k] + 0.3f * d(g));
                }
                f.track.push_back(t);
                f.position.push_back(pos);
                ++f.n;
            }
        }
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Aspect model training time"};
    std::int64_t windows = 10000, dim = 380;
    int works = 40;
    app.add_option("--windows", windows, "Windows (rows)");
    app.add_option("--dim", dim, "Input dimensions (dsp, every layer: 5 × 76 = 380)");
    app.add_option("--works", works, "Works (5 renderings each)");
    CLI11_PARSE(app, argc, argv);
    const FactorWindows data = synthetic_windows(windows, dim, works, 7);
    AspectTrainParams p;
    p.seed = 1;
    const auto t0 = std::chrono::steady_clock::now();
    const AspectTraining t = train_aspect(data, "tempo", p);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{} windows × {} inputs, {} works; {} epochs × {} triplets, rank {}\n", data.n, data.dim, works, p.epochs,
               p.triplets_per_epoch, p.out_dim);
    double diagonal = 0, linear = 0;
    for (const auto& r : t.ladder) {
        fmt::print("  {:<12} {:7.2f} s  validation accuracy {:.3f}\n", to_string(r.rung), r.seconds, r.validation_accuracy);
        if (r.rung == AspectRung::diagonal) diagonal = r.seconds;
        if (r.rung == AspectRung::linear) linear = r.seconds;
    }
    fmt::print("whole ladder: {:.2f} s (target ≤ 60 s: {})\n", total, total <= 60 ? "met" : "NOT met");
    fmt::print("RATIO linear rung / diagonal rung (reference, same triplets): {:.2f}\n", diagonal > 0 ? linear / diagonal : 0.0);
    return total <= 60 ? 0 : 1;
}
