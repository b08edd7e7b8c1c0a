// Aspect geometry: the triplet loss's gradient against central finite differences, Adam on a quadratic,
// triplet drawing rules, the ladder on synthetic factor data (content dominates the raw embedding; one
// small direction carries the aspect), determinism for a seed, evaluation and the saved form.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "mess/aspects.hpp"
#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

namespace mess {
namespace {

// `works` works × `values` values of factor "tempo" (value 0 is the base rendering), `windows` windows
// each. x = strong content of (work, position) in dimensions 4.. + a weak code of the value in dimensions 0..3 + noise.
FactorWindows synthetic(int works, int values, int windows, std::uint64_t seed, std::int64_t dim = 24) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0, 1);
    FactorWindows w;
    w.dim = dim, w.layer_dim = dim, w.layers = {0}, w.encoder = "synthetic";
    std::mt19937_64 code_rng(99);  // the values' codes are the same in every corpus
    std::vector<std::vector<double>> code(static_cast<std::size_t>(values), std::vector<double>(4));
    for (auto& c : code)
        for (double& v : c) v = normal(code_rng);
    for (int k = 0; k < works; ++k) {
        std::vector<std::vector<double>> content(static_cast<std::size_t>(windows), std::vector<double>(static_cast<std::size_t>(dim)));
        for (auto& c : content)
            for (double& v : c) v = 3 * normal(rng);
        for (int v = 0; v < values; ++v) {
            const auto t = static_cast<std::int32_t>(w.track_ids.size());
            w.track_ids.push_back("w" + std::to_string(k) + "_v" + std::to_string(v));
            w.track_work.push_back("w" + std::to_string(k));
            w.track_factor.push_back(v == 0 ? "base" : "tempo");
            w.track_values.push_back({{"tempo", "v" + std::to_string(v)}, {"timbre", "piano"}});
            for (int i = 0; i < windows; ++i) {
                for (std::int64_t j = 0; j < dim; ++j) {
                    const double signal = j < 4 ? 0.5 * code[static_cast<std::size_t>(v)][static_cast<std::size_t>(j)]
                                                : content[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
                    w.x.push_back(static_cast<float>(signal + 0.1 * normal(rng)));
                }
                w.track.push_back(t);
                w.position.push_back((i + 0.5) / windows);
                ++w.n;
            }
        }
    }
    return w;
}

AspectModel random_model(AspectRung rung, std::int64_t din, std::int64_t k, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0, 1);
    AspectModel m = identity_model("tempo", din);
    m.rung = rung;
    m.out_dim = rung == AspectRung::linear ? k : din;
    for (std::int64_t j = 0; j < din; ++j) m.mean.push_back(0.1f * normal(rng)), m.scale.push_back(1.0f + 0.2f * std::fabs(normal(rng)));
    m.weights.resize(static_cast<std::size_t>(rung == AspectRung::linear ? k * din : din));
    for (float& v : m.weights) v = normal(rng) * 0.5f;
    return m;
}

void expect_gradient_matches(AspectRung rung) {
    const FactorWindows data = synthetic(4, 3, 3, 5, 10);
    const auto triplets = draw_triplets(data, "tempo", {}, 12, 3);
    AspectModel m = random_model(rung, data.dim, 6, 9);
    std::vector<double> grad;
    triplet_loss(m, data, triplets, 4.0, 0.1, &grad);
    ASSERT_EQ(grad.size(), m.weights.size());
    double worst = 0;
    for (std::size_t i = 0; i < m.weights.size(); ++i) {
        const float w0 = m.weights[i];
        m.weights[i] = w0 + 1e-2f;
        const double hi = triplet_loss(m, data, triplets, 4.0, 0.1, nullptr);
        const float w_hi = m.weights[i];
        m.weights[i] = w0 - 1e-2f;
        const double lo = triplet_loss(m, data, triplets, 4.0, 0.1, nullptr);
        const float w_lo = m.weights[i];
        m.weights[i] = w0;
        const double numeric = (hi - lo) / (double(w_hi) - double(w_lo));
        worst = std::max(worst, std::fabs(numeric - grad[i]) / std::max(1e-3, std::fabs(numeric) + std::fabs(grad[i])));
    }
    EXPECT_LT(worst, 2e-3) << to_string(rung);
}

TEST(Aspects, DiagonalGradientMatchesFiniteDifferences) { expect_gradient_matches(AspectRung::diagonal); }
TEST(Aspects, LinearGradientMatchesFiniteDifferences) { expect_gradient_matches(AspectRung::linear); }

TEST(Aspects, AdamMinimisesAQuadratic) {
    std::vector<float> p = {3.0f, -2.0f, 0.5f};
    const std::vector<double> target = {1.0, 4.0, -1.0};
    Adam adam(p.size(), 0.05);
    for (int step = 0; step < 2000; ++step) {
        std::vector<double> g(p.size());
        for (std::size_t i = 0; i < p.size(); ++i) g[i] = 2 * (p[i] - target[i]);
        adam.step(p, g);
    }
    for (std::size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i], target[i], 1e-2);
    std::vector<float> wrong(2);
    EXPECT_THROW(adam.step(wrong, {0.0, 0.0}), Error);
}

TEST(Aspects, TripletsShareValueAcrossWorksAndNegativeIsThePositivesWork) {
    const FactorWindows data = synthetic(5, 4, 4, 1);
    const auto triplets = draw_triplets(data, "tempo", {}, 300, 2);
    ASSERT_EQ(triplets.size(), 300u);
    auto track = [&](std::int64_t r) { return static_cast<std::size_t>(data.track[static_cast<std::size_t>(r)]); };
    for (const Triplet& t : triplets) {
        EXPECT_EQ(data.track_values[track(t.a)].at("tempo"), data.track_values[track(t.p)].at("tempo"));
        EXPECT_NE(data.track_work[track(t.a)], data.track_work[track(t.p)]);
        EXPECT_EQ(data.track_work[track(t.n)], data.track_work[track(t.p)]);
        EXPECT_NE(data.track_values[track(t.n)].at("tempo"), data.track_values[track(t.p)].at("tempo"));
        EXPECT_DOUBLE_EQ(data.position[static_cast<std::size_t>(t.n)], data.position[static_cast<std::size_t>(t.p)]);
    }
    EXPECT_THROW(draw_triplets(data, "timbre", {}, 10, 1), Error);  // one value only
    const auto only = draw_triplets(data, "tempo", {"w1", "w3"}, 50, 2);
    for (const Triplet& t : only) EXPECT_TRUE(data.track_work[track(t.a)] == "w1" || data.track_work[track(t.a)] == "w3");
}

TEST(Aspects, LadderClimbsAndIsDeterministic) {
    const FactorWindows data = synthetic(10, 4, 6, 11);
    AspectTrainParams p;
    p.epochs = 30, p.triplets_per_epoch = 600, p.out_dim = 8, p.seed = 4, p.learning_rate = 0.05, p.val_triplets = 500, p.val_fraction = 0.3;
    int epochs_seen = 0;
    p.on_epoch = [&](AspectRung, int, double loss, double acc) {
        ++epochs_seen;
        EXPECT_GE(loss, 0.0);
        EXPECT_GE(acc, 0.0);
    };
    const AspectTraining t = train_aspect(data, "tempo", p);
    ASSERT_EQ(t.ladder.size(), 4u);
    EXPECT_EQ(epochs_seen, 60);
    EXPECT_EQ(t.ladder[0].rung, AspectRung::identity);
    EXPECT_LT(t.ladder[0].validation_accuracy, 0.8);   // content dominates the raw embedding
    EXPECT_GT(t.ladder[2].validation_accuracy, 0.95);  // the diagonal finds the aspect's dimensions
    EXPECT_GT(t.ladder[3].validation_accuracy, 0.95);
    EXPECT_EQ(t.model.rung, AspectRung::linear);
    EXPECT_EQ(t.model.weights.size(), static_cast<std::size_t>(8 * data.dim));
    p.on_epoch = nullptr;
    const AspectTraining again = train_aspect(data, "tempo", p);
    EXPECT_EQ(again.model.weights, t.model.weights);
    EXPECT_EQ(again.model.mean, t.model.mean);
    p.seed = 5;
    EXPECT_NE(train_aspect(data, "tempo", p).model.weights, t.model.weights);
    p.epochs = 0;
    EXPECT_THROW(train_aspect(data, "tempo", p), Error);
}

TEST(Aspects, EvaluationSeesContentLeakInTheRawSpaceAndNotInTheTrainedOne) {
    const FactorWindows train = synthetic(10, 4, 6, 21), held_out = synthetic(6, 4, 6, 22);
    AspectTrainParams p;
    p.epochs = 30, p.triplets_per_epoch = 600, p.out_dim = 8, p.seed = 1, p.learning_rate = 0.05, p.rung = AspectRung::diagonal;
    const AspectTraining t = train_aspect(train, "tempo", p);
    const AspectEval raw = evaluate_aspect(identity_model("tempo", held_out.dim), held_out, "tempo", 1000);
    const AspectEval learned = evaluate_aspect(t.model, held_out, "tempo", 1000);
    EXPECT_GT(raw.content_leak, 0.9);  // the nearest window is the same piece at another tempo
    EXPECT_LT(learned.content_leak, 0.05);
    EXPECT_GT(learned.value_precision, 0.9);
    EXPECT_GT(learned.triplet_accuracy, 0.95);
    EXPECT_EQ(learned.queries, held_out.n);
}

TEST(Aspects, SavedSetLoadsAndAppliesIdentically) {
    test::TempDir dir;
    const FactorWindows data = synthetic(4, 3, 2, 3, 12);
    AspectSet set{"synthetic", {0}, 12, {}, nullptr};
    set.aspects["tempo"] = random_model(AspectRung::linear, 12, 5, 1);
    set.aspects["dynamics"] = random_model(AspectRung::diagonal, 12, 12, 2);
    set.aspects["timbre"] = identity_model("timbre", 12);
    set.aspects["tempo"].info = {{"trained_on", "synthetic"}};
    save_aspect_set(set, dir / "models");
    EXPECT_EQ(read_npy(dir / "models/tempo.weights.npy").shape, (std::vector<std::int64_t>{5, 12}));
    const AspectSet back = load_aspect_set(dir / "models");
    EXPECT_EQ(back.encoder, "synthetic");
    ASSERT_EQ(back.aspects.size(), 3u);
    for (const auto& [name, m] : set.aspects) {
        const AspectModel& b = back.aspects.at(name);
        EXPECT_EQ(b.rung, m.rung);
        EXPECT_EQ(b.apply_normalised(data.row(3), 2), m.apply_normalised(data.row(3), 2)) << name;
    }
    EXPECT_EQ(back.aspects.at("tempo").info["trained_on"], "synthetic");
    std::vector<float> y = back.aspects.at("tempo").apply_normalised(data.row(0), 1);
    double norm = 0;
    for (float v : y) norm += double(v) * v;
    EXPECT_NEAR(norm, 1.0, 1e-5);
    write_npy(dir / "models/tempo.weights.npy", std::vector<float>(7, 1.0f), {7});
    EXPECT_THROW(load_aspect_set(dir / "models"), Error);
    EXPECT_THROW(load_aspect_set(dir / "nowhere"), Error);
    EXPECT_THROW(parse_aspect_rung("cubic"), Error);
}

// A set records its encoder's identity and version: the same encoder passes, another encoder, other
// dimensions or a changed fingerprint (any change to the encoder's computation) are refused by name.
TEST(Aspects, SetsAreRefusedForAnotherEncoderOrVersion) {
    const auto dsp = open_encoder("dsp");
    AspectSet set;
    set.encoder = "dsp";
    set.encoder_signature = encoder_signature(*dsp);
    ASSERT_TRUE(set.encoder_signature["fingerprint"].is_array());
    EXPECT_EQ(set.encoder_signature["fingerprint"].size(), static_cast<std::size_t>(dsp->info().layers * dsp->info().hidden));
    EXPECT_NO_THROW(check_aspect_encoder(set, *dsp, "models"));
    EXPECT_EQ(encoder_signature(*dsp), set.encoder_signature);  // deterministic
    EXPECT_THROW(check_aspect_encoder(set, *open_encoder("mfcc-chroma"), "models"), Error);
    AspectSet changed = set;
    changed.encoder_signature["fingerprint"][3] = changed.encoder_signature["fingerprint"][3].get<double>() + 1.0;
    try {
        check_aspect_encoder(changed, *dsp, "models");
        FAIL() << "a changed fingerprint must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("changed"), std::string::npos) << e.what();
    }
    changed = set;
    changed.encoder_signature["hidden"] = 75;
    EXPECT_THROW(check_aspect_encoder(changed, *dsp, "models"), Error);
    // input_of: the chosen layers of a raw stack; a stack of another width is refused.
    set.layers = {1};
    set.layer_dim = 2;
    const std::vector<float> stack = {1, 2, 3, 4, 5, 6};
    EXPECT_EQ(set.input_of(stack.data(), 3, 2), (std::vector<float>{3, 4}));
    EXPECT_THROW(set.input_of(stack.data(), 2, 3), Error);
}

}  // namespace
}  // namespace mess
