// Aspect geometry: the triplet loss's gradient against central finite differences, Adam on a quadratic,
// triplet drawing rules, the ladder on synthetic factor data (content dominates the raw embedding; one
// small direction carries the aspect), determinism for a seed, evaluation and the saved form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

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

// mlp: k outputs, 2k + 1 hidden units.
AspectModel random_model(AspectRung rung, std::int64_t din, std::int64_t k, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0, 1);
    AspectModel m = identity_model("tempo", din);
    m.rung = rung;
    m.out_dim = rung == AspectRung::linear || rung == AspectRung::mlp ? k : din;
    m.hidden_dim = rung == AspectRung::mlp ? 2 * k + 1 : 0;
    for (std::int64_t j = 0; j < din; ++j) m.mean.push_back(0.1f * normal(rng)), m.scale.push_back(1.0f + 0.2f * std::fabs(normal(rng)));
    const std::int64_t h = m.hidden_dim;
    m.weights.resize(static_cast<std::size_t>(rung == AspectRung::linear ? k * din : rung == AspectRung::mlp ? h * din + h + k * h : din));
    for (float& v : m.weights) v = normal(rng) * 0.5f;
    return m;
}

// The analytic gradient of `loss` against central differences (in float: the step actually taken is what
// the difference divides by), worst relative error over every weight. For the mlp, a hidden unit whose
// pre-activation crosses 0 within the step makes the difference meaningless: its step is 1e-3, at which no
// pre-activation of this data crosses (at 1e-2 four of 181 weights did).
void expect_gradient_matches(AspectRung rung, AspectLoss loss) {
    const FactorWindows data = synthetic(4, 3, 3, 5, 10);
    const auto triplets = draw_triplets(data, "tempo", {}, 12, 3);
    AspectModel m = random_model(rung, data.dim, 6, 9);
    auto value = [&](std::vector<double>* grad) {
        return loss == AspectLoss::triplet ? triplet_loss(m, data, triplets, 4.0, 0.1, grad) : infonce_loss(m, data, triplets, "tempo", 0.2, grad);
    };
    std::vector<double> grad;
    value(&grad);
    ASSERT_EQ(grad.size(), m.weights.size());
    const float step = rung == AspectRung::mlp ? 1e-3f : 1e-2f;
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < m.weights.size(); ++i) {
        const float w0 = m.weights[i];
        m.weights[i] = w0 + step;
        const double hi = value(nullptr);
        const float w_hi = m.weights[i];
        m.weights[i] = w0 - step;
        const double lo = value(nullptr);
        const float w_lo = m.weights[i];
        m.weights[i] = w0;
        const double numeric = (hi - lo) / (double(w_hi) - double(w_lo));
        worst = std::max(worst, std::fabs(numeric - grad[i]) / std::max(1e-3, std::fabs(numeric) + std::fabs(grad[i])));
        largest = std::max(largest, std::fabs(grad[i]));
    }
    EXPECT_LT(worst, 2e-3) << to_string(rung) << " " << to_string(loss);
    EXPECT_GT(largest, 1e-3) << "a gradient of zeros checks nothing";
}

TEST(Aspects, DiagonalGradientMatchesFiniteDifferences) { expect_gradient_matches(AspectRung::diagonal, AspectLoss::triplet); }
TEST(Aspects, LinearGradientMatchesFiniteDifferences) { expect_gradient_matches(AspectRung::linear, AspectLoss::triplet); }
TEST(Aspects, MlpGradientMatchesFiniteDifferences) { expect_gradient_matches(AspectRung::mlp, AspectLoss::triplet); }
TEST(Aspects, InfoNceGradientMatchesFiniteDifferences) {
    for (AspectRung r : {AspectRung::diagonal, AspectRung::linear, AspectRung::mlp}) expect_gradient_matches(r, AspectLoss::infonce);
}

// InfoNCE golden value, worked by hand: identity-like diagonal model on 2-d windows; one triplet whose
// anchor and positive point the same way (cos 1) and whose negative is orthogonal (cos 0):
// ℓ = −1/τ + log(e^{1/τ} + e^{0}) = log(1 + e^{−1/τ}); τ = 0.5 → log(1 + e^{−2}) = 0.126928.
TEST(Aspects, InfoNceGoldenValueAndValueAwareNegatives) {
    FactorWindows d;
    d.dim = d.layer_dim = 2, d.layers = {0}, d.encoder = "synthetic";
    d.track_ids = {"a", "p", "n"}, d.track_work = {"w0", "w1", "w1"}, d.track_factor = {"tempo", "tempo", "base"};
    d.track_values = {{{"tempo", "fast"}}, {{"tempo", "fast"}}, {{"tempo", "slow"}}};
    d.x = {1, 0, 2, 0, 0, 3};
    d.track = {0, 1, 2}, d.position = {0.5, 0.5, 0.5}, d.n = 3;
    AspectModel m = identity_model("tempo", 2);
    m.rung = AspectRung::diagonal, m.mean = {0, 0}, m.scale = {1, 1}, m.weights = {1, 1};
    EXPECT_NEAR(infonce_loss(m, d, {{0, 1, 2}}, "tempo", 0.5, nullptr), std::log1p(std::exp(-2.0)), 1e-12);
    // Two copies of the triplet: the other copy's positive shares the anchor's value, so it is not a
    // negative; the other copy's negative is: ℓ = log(1 + 2 e^{−2}).
    EXPECT_NEAR(infonce_loss(m, d, {{0, 1, 2}, {0, 1, 2}}, "tempo", 0.5, nullptr), std::log1p(2 * std::exp(-2.0)), 1e-12);
    EXPECT_THROW(infonce_loss(m, d, {{0, 1, 2}}, "tempo", 0.0, nullptr), Error);
    EXPECT_EQ(parse_aspect_loss("infonce"), AspectLoss::infonce);
    EXPECT_THROW(parse_aspect_loss("hinge"), Error);
}

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

// The mlp rung starts from the linear rung's map (so it is never worse on validation), trains with either
// loss, and --pick-best keeps the lower rung on a tie.
TEST(Aspects, MlpRungClimbsFromTheLinearOneWithEitherLoss) {
    const FactorWindows data = synthetic(10, 4, 6, 11);
    AspectTrainParams p;
    p.epochs = 8, p.triplets_per_epoch = 400, p.out_dim = 6, p.hidden_dim = 14, p.seed = 4, p.learning_rate = 0.02, p.val_triplets = 400;
    p.val_fraction = 0.3, p.rung = AspectRung::mlp;
    for (AspectLoss loss : {AspectLoss::triplet, AspectLoss::infonce}) {
        p.loss = loss;
        const AspectTraining t = train_aspect(data, "tempo", p);
        ASSERT_EQ(t.ladder.size(), 5u);
        EXPECT_EQ(t.ladder[4].rung, AspectRung::mlp);
        EXPECT_GE(t.ladder[4].validation_accuracy, t.ladder[3].validation_accuracy) << to_string(loss);
        EXPECT_GT(t.ladder[4].validation_accuracy, 0.95) << to_string(loss);
        EXPECT_EQ(t.model.rung, AspectRung::mlp);
        EXPECT_EQ(t.model.weights.size(), static_cast<std::size_t>(14 * data.dim + 14 + 6 * 14));
        EXPECT_EQ(t.model.info["loss"], to_string(loss));
    }
    p.pick_best = true;
    const AspectTraining best = train_aspect(data, "tempo", p);
    double top = 0;
    for (const auto& r : best.ladder) top = std::max(top, r.validation_accuracy);
    EXPECT_EQ(best.ladder[static_cast<std::size_t>(best.model.rung)].validation_accuracy, top);
    for (std::size_t r = 0; r < static_cast<std::size_t>(best.model.rung); ++r) EXPECT_LT(best.ladder[r].validation_accuracy, top);
    p.hidden_dim = 0;
    EXPECT_THROW(train_aspect(data, "tempo", p), Error);
}

// Restarts: the same split and validation triplets, seeds seed, seed + 1, ...; the run of best validation
// accuracy is kept, and one restart is the plain training bit for bit.
TEST(Aspects, RestartsKeepTheBestValidationRun) {
    const FactorWindows data = synthetic(10, 4, 6, 31);
    AspectTrainParams p;
    p.epochs = 2, p.triplets_per_epoch = 200, p.out_dim = 4, p.seed = 7, p.learning_rate = 0.02, p.val_triplets = 300, p.rung = AspectRung::linear;
    const AspectTraining one = train_aspect(data, "tempo", p);
    EXPECT_FALSE(one.model.info.contains("restarts_validation_accuracy"));
    p.restarts = 3;
    const AspectTraining three = train_aspect(data, "tempo", p);
    const auto runs = three.model.info["restarts_validation_accuracy"].get<std::vector<double>>();
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0], one.model.info["validation_accuracy"].get<double>());  // run 0 is the plain training
    const double best = *std::max_element(runs.begin(), runs.end());
    EXPECT_EQ(three.model.info["validation_accuracy"].get<double>(), best);
    EXPECT_EQ(three.model.info["seed"].get<std::uint64_t>(), 7u + static_cast<std::uint64_t>(std::find(runs.begin(), runs.end(), best) - runs.begin()));
    EXPECT_EQ(three.model.info["validation_works"], one.model.info["validation_works"]);  // one split for every run
    if (three.model.info["seed"] == 7u) {
        EXPECT_EQ(three.model.weights, one.model.weights);
    }
    p.restarts = 0;
    EXPECT_THROW(train_aspect(data, "tempo", p), Error);
}

TEST(Aspects, EnsembleOfRestartsIsOneMlpWhoseBlocksAreTheRuns) {
    const FactorWindows data = synthetic(10, 4, 6, 31);
    AspectTrainParams p;
    p.epochs = 2, p.triplets_per_epoch = 200, p.out_dim = 4, p.hidden_dim = 8, p.seed = 7, p.learning_rate = 0.02, p.val_triplets = 300;
    p.rung = AspectRung::mlp, p.loss = AspectLoss::infonce;
    const AspectModel first = train_aspect(data, "tempo", p).model;  // the run of seed 7 alone
    p.restarts = 3, p.ensemble = true;
    const AspectTraining t = train_aspect(data, "tempo", p);
    ASSERT_TRUE(t.model.info.contains("ensemble_validation_accuracy"));
    const std::vector<double> runs = t.model.info["restarts_validation_accuracy"].get<std::vector<double>>();
    const double best_run = *std::max_element(runs.begin(), runs.end());
    const double ensemble = t.model.info["ensemble_validation_accuracy"].get<double>();
    ASSERT_GE(ensemble, best_run) << "with this seed the ensemble does at least as well on validation, so it is kept";
    EXPECT_EQ(t.model.info["ensemble"], 3);
    ASSERT_EQ(t.model.out_dim, 12);
    ASSERT_EQ(t.model.hidden_dim, 24);
    EXPECT_EQ(t.ladder.back().validation_accuracy, ensemble);
    // Its first block is the first run's output, scaled by one positive constant.
    double ratio = 0;
    for (std::int64_t i = 0; i < 5; ++i) {
        const std::vector<float> y = t.model.apply(data.row(i)), y1 = first.apply(data.row(i));
        for (std::size_t k = 0; k < 4; ++k) {
            if (std::fabs(y1[k]) < 1e-3) continue;
            const double r = y[k] / y1[k];
            if (ratio == 0) ratio = r;
            EXPECT_NEAR(r, ratio, 1e-3 * std::fabs(ratio));
        }
    }
    EXPECT_GT(ratio, 0);
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
    // Whole tracks (the model on each track's mean window): the same picture, over distinct track triplets.
    EXPECT_GT(raw.track_content_leak, 0.9);
    EXPECT_LT(learned.track_content_leak, 0.05);
    EXPECT_GT(learned.track_triplet_accuracy, 0.95);
    EXPECT_GT(learned.track_triplets, 0);
    EXPECT_LE(learned.track_triplets, learned.triplets);
    EXPECT_EQ(learned.track_queries, static_cast<std::int64_t>(held_out.track_ids.size()));
}

// A same-work corpus: `works` works, each performed `perfs` times; window i of a performance is the work's
// content at source second 2.5·i + 1.25 (a character of the whole work + the moment's own) plus a strong
// offset of the performance (its instrument, level), the same offset for every work it plays, plus noise.
FactorWindows same_work_corpus(int works, int perfs, int windows, std::uint64_t seed, std::int64_t dim = 12) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0, 1);
    FactorWindows w;
    w.dim = w.layer_dim = dim, w.layers = {0}, w.encoder = "synthetic";
    std::vector<std::vector<double>> offset(static_cast<std::size_t>(perfs), std::vector<double>(static_cast<std::size_t>(dim)));
    for (auto& o : offset)
        for (std::size_t j = 0; j < 4; ++j) o[j] = 4 * normal(rng);
    for (int k = 0; k < works; ++k) {
        std::vector<double> character(static_cast<std::size_t>(dim)), content(static_cast<std::size_t>(windows * dim));
        for (double& v : character) v = normal(rng);
        for (std::size_t c = 0; c < content.size(); ++c) content[c] = character[c % character.size()] + normal(rng);
        for (int p = 0; p < perfs; ++p) {
            const auto t = static_cast<std::int32_t>(w.track_ids.size());
            w.track_ids.push_back("w" + std::to_string(k) + "_p" + std::to_string(p));
            w.track_work.push_back("w" + std::to_string(k));
            w.track_factor.push_back("base");
            w.track_values.emplace_back();
            for (int i = 0; i < windows; ++i) {
                for (std::int64_t j = 0; j < dim; ++j)
                    w.x.push_back(static_cast<float>(content[static_cast<std::size_t>(i * dim + j)] + offset[static_cast<std::size_t>(p)][static_cast<std::size_t>(j)] + 0.1 * normal(rng)));
                w.track.push_back(t), w.position.push_back((i + 0.5) / windows), w.source_sec.push_back(2.5 * i + 1.25);
                ++w.n;
            }
        }
    }
    return w;
}

// Within-class covariance of the model's (unnormalised) outputs over the corpus's classes.
std::vector<double> within_covariance(const AspectModel& m, const FactorWindows& d, double bin) {
    const auto cls = same_work_classes(d, bin);
    const auto k = static_cast<std::size_t>(m.out_dim);
    std::map<std::int64_t, std::pair<std::vector<double>, double>> mean;
    std::vector<std::vector<float>> y;
    for (std::int64_t i = 0; i < d.n; ++i) {
        y.push_back(m.apply(d.row(i)));
        auto& [sum, count] = mean[cls[static_cast<std::size_t>(i)]];
        sum.resize(k);
        for (std::size_t j = 0; j < k; ++j) sum[j] += y.back()[j];
        count += 1;
    }
    std::vector<double> cov(k * k, 0.0);
    for (std::int64_t i = 0; i < d.n; ++i) {
        const auto& [sum, count] = mean[cls[static_cast<std::size_t>(i)]];
        for (std::size_t a = 0; a < k; ++a)
            for (std::size_t b = 0; b < k; ++b)
                cov[a * k + b] += (y[static_cast<std::size_t>(i)][a] - sum[a] / count) * (y[static_cast<std::size_t>(i)][b] - sum[b] / count) / static_cast<double>(d.n);
    }
    return cov;
}

// WCCN whitens the within-class covariance exactly (unshrunk: W Sw Wᵀ = I) and LDA's directions have unit
// within-class variance; on held-out works both lift the same-work MAPs the performance offsets ruin.
TEST(Aspects, SameWorkWhiteningAndLda) {
    const FactorWindows train = same_work_corpus(8, 3, 8, 31), held_out = same_work_corpus(6, 3, 8, 32);
    EXPECT_EQ(same_work_classes(train, 2.5).size(), static_cast<std::size_t>(train.n));
    std::set<std::int64_t> classes;
    for (auto c : same_work_classes(train, 2.5)) classes.insert(c);
    EXPECT_EQ(classes.size(), 8u * 8u);  // (work, source bin)
    SameWorkParams p;
    p.shrinkage = 0, p.out_dim = 6;
    const AspectModel wccn = fit_same_work(train, SameWorkRung::wccn, p), lda = fit_same_work(train, SameWorkRung::lda, p);
    EXPECT_EQ(wccn.rung, AspectRung::linear);
    EXPECT_EQ(wccn.info["method"], "wccn");
    EXPECT_EQ(lda.out_dim, 6);
    for (const AspectModel* m : {&wccn, &lda}) {
        const auto cov = within_covariance(*m, train, 2.5);
        const auto k = static_cast<std::size_t>(m->out_dim);
        for (std::size_t a = 0; a < k; ++a)
            for (std::size_t b = 0; b < k; ++b) EXPECT_NEAR(cov[a * k + b], a == b ? 1.0 : 0.0, 2e-3) << m->info["method"] << " " << a << "," << b;
    }
    // Passages 2.5 s apart share nothing here (unlike overlapping windows of audio): tolerance 1 s.
    const SameWorkEval raw = evaluate_same_work(identity_model("same_work", held_out.dim), held_out, 1.0);
    p.shrinkage = 0.1;
    const SameWorkEval white = evaluate_same_work(fit_same_work(train, SameWorkRung::wccn, p), held_out, 1.0);
    const SameWorkEval lda_eval = evaluate_same_work(fit_same_work(train, SameWorkRung::lda, p), held_out, 1.0);
    EXPECT_EQ(raw.track_queries, 18);
    EXPECT_EQ(raw.passage_queries, held_out.n);
    // Measured: raw 0.17 / 0.03, wccn 0.77 / 0.67, lda 1.00 / 0.98 (track / passage MAP).
    EXPECT_LT(raw.track_map, 0.3);
    EXPECT_LT(raw.passage_map, 0.1);
    EXPECT_GT(white.track_map, raw.track_map + 0.4);
    EXPECT_GT(white.passage_map, raw.passage_map + 0.4);
    EXPECT_GT(lda_eval.track_map, 0.95);
    EXPECT_GT(lda_eval.passage_map, 0.9);
    p.shrinkage = 1.5;
    EXPECT_THROW(fit_same_work(train, SameWorkRung::wccn, p), Error);
    p.shrinkage = 0.1, p.out_dim = 0;
    EXPECT_THROW(fit_same_work(train, SameWorkRung::lda, p), Error);
    EXPECT_THROW(same_work_classes(train, 0), Error);
    EXPECT_THROW(fit_same_work(same_work_corpus(1, 3, 4, 1), SameWorkRung::wccn, SameWorkParams{}), Error);  // one work
    p.shrinkage = 0, p.out_dim = 4;  // 8 windows in 40 dimensions, unshrunk: a singular within-work scatter is refused, not solved into NaN
    const FactorWindows few = same_work_corpus(2, 2, 2, 1, 40);
    try {
        fit_same_work(few, SameWorkRung::lda, p);
        ADD_FAILURE() << "a singular within-work scatter was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("singular; use a shrinkage above 0"), std::string::npos) << e.what();
    }
    p.shrinkage = 0.1;
    for (float w : fit_same_work(few, SameWorkRung::lda, p).weights) ASSERT_TRUE(std::isfinite(w));
    EXPECT_THROW(parse_same_work_rung("pca"), Error);
}

// Cross-validation over works: folds partition the works, select_works keeps exactly a fold's windows, and
// the scores are those of fitting on the other folds (recomputed here by hand for one candidate); the learned
// rungs beat the raw cosine on unseen works; bad folds and an empty grid are refused.
TEST(Aspects, SameWorkCrossValidationOverWorks) {
    const FactorWindows data = same_work_corpus(8, 3, 6, 41);
    const auto folds = work_folds(data, 4, 0);
    ASSERT_EQ(folds.size(), 4u);
    std::set<std::string> seen;
    for (const auto& f : folds) {
        EXPECT_EQ(f.size(), 2u);
        seen.insert(f.begin(), f.end());
    }
    EXPECT_EQ(seen.size(), 8u);
    const FactorWindows one = select_works(data, {folds[0].begin(), folds[0].end()});
    EXPECT_EQ(one.n, 2 * 3 * 6);
    EXPECT_EQ(one.track_ids.size(), 6u);
    for (std::int64_t i = 0; i < one.n; ++i) EXPECT_TRUE(seen.count(one.track_work[static_cast<std::size_t>(one.track[static_cast<std::size_t>(i)])]));
    SameWorkParams lda_p{6, 0.1, 2.5};
    const auto rows = cross_validate_same_work(data, SameWorkRung::lda, {lda_p, SameWorkParams{2, 0.1, 2.5}}, 4, 0);
    ASSERT_EQ(rows.size(), 2u);
    double track = 0, passage = 0;
    for (const auto& f : folds) {
        std::set<std::string> rest(seen);
        for (const auto& w : f) rest.erase(w);
        const SameWorkEval e = evaluate_same_work(fit_same_work(select_works(data, rest), SameWorkRung::lda, lda_p), select_works(data, {f.begin(), f.end()}));
        track += e.track_map / 4, passage += e.passage_map / 4;
    }
    EXPECT_DOUBLE_EQ(rows[0].track_map, track);
    EXPECT_DOUBLE_EQ(rows[0].passage_map, passage);
    // Held-out works, as the corpus above: the learned rungs lift passage MAP far above the raw cosine.
    const auto raw = cross_validate_same_work(data, SameWorkRung::identity, {lda_p}, 4, 0);
    const auto wccn = cross_validate_same_work(data, SameWorkRung::wccn, {lda_p}, 4, 0);
    EXPECT_GT(rows[0].passage_map, raw[0].passage_map + 0.4);
    EXPECT_GT(wccn[0].passage_map, raw[0].passage_map + 0.4);
    EXPECT_THROW(work_folds(data, 1, 0), Error);
    EXPECT_THROW(work_folds(data, 5, 0), Error);  // 8 works: a fold of 1 work has no same-work pair
    EXPECT_THROW(cross_validate_same_work(data, SameWorkRung::lda, {}, 4, 0), Error);
}

// Track and passage MAP worked by hand: works A (tracks a1, a2) and B (b1), one window each, 1-d inputs
// a1 = 1, a2 = −1, b1 = 1 (cosines ±1). Track a1: ranking b1 (cos 1), a2 (−1): relevant at rank 2, AP 1/2;
// a2: a1 and b1 tie at −1, a1 first by index: AP 1; b1 has no relevant track. MAP = (1/2 + 1) / 2 = 0.75.
TEST(Aspects, SameWorkMapGoldenValue) {
    FactorWindows d;
    d.dim = d.layer_dim = 1, d.layers = {0}, d.encoder = "synthetic";
    d.track_ids = {"a1", "a2", "b1"}, d.track_work = {"A", "A", "B"}, d.track_factor = {"base", "base", "base"}, d.track_values.resize(3);
    d.x = {1, -1, 1}, d.track = {0, 1, 2}, d.position = {0.5, 0.5, 0.5}, d.source_sec = {2.5, 2.5, 2.5}, d.n = 3;
    const SameWorkEval e = evaluate_same_work(identity_model("same_work", 1), d);
    EXPECT_EQ(e.track_queries, 2);
    EXPECT_DOUBLE_EQ(e.track_map, 0.75);
    EXPECT_EQ(e.passage_queries, 2);
    EXPECT_DOUBLE_EQ(e.passage_map, 0.75);
    d.source_sec = {2.5, 9.0, 2.5};  // a2's window is another moment of the work: no passage is relevant
    EXPECT_EQ(evaluate_same_work(identity_model("same_work", 1), d).passage_queries, 0);
}

TEST(Aspects, SavedSetLoadsAndAppliesIdentically) {
    test::TempDir dir;
    const FactorWindows data = synthetic(4, 3, 2, 3, 12);
    AspectSet set{"synthetic", {0}, 12, {}, nullptr};
    set.aspects["tempo"] = random_model(AspectRung::linear, 12, 5, 1);
    set.aspects["dynamics"] = random_model(AspectRung::diagonal, 12, 12, 2);
    set.aspects["articulation"] = random_model(AspectRung::mlp, 12, 4, 3);
    set.aspects["articulation"].name = "articulation";
    set.aspects["timbre"] = identity_model("timbre", 12);
    set.aspects["tempo"].info = {{"trained_on", "synthetic"}};
    save_aspect_set(set, dir / "models");
    EXPECT_EQ(read_npy(dir / "models/tempo.weights.npy").shape, (std::vector<std::int64_t>{5, 12}));
    EXPECT_EQ(read_npy(dir / "models/articulation.w1.npy").shape, (std::vector<std::int64_t>{9, 12}));
    EXPECT_EQ(read_npy(dir / "models/articulation.b1.npy").shape, (std::vector<std::int64_t>{9}));
    EXPECT_EQ(read_npy(dir / "models/articulation.w2.npy").shape, (std::vector<std::int64_t>{4, 9}));
    const AspectSet back = load_aspect_set(dir / "models");
    EXPECT_EQ(back.encoder, "synthetic");
    ASSERT_EQ(back.aspects.size(), 4u);
    // The mlp as a NumPy user applies it from the saved arrays: y = w2 @ max(w1 @ z + b1, 0).
    {
        const AspectModel& a = set.aspects.at("articulation");
        const NpyArray w1 = read_npy(dir / "models/articulation.w1.npy"), b1 = read_npy(dir / "models/articulation.b1.npy"),
                       w2 = read_npy(dir / "models/articulation.w2.npy");
        const auto v1 = w1.to_float32(), vb = b1.to_float32(), v2 = w2.to_float32();
        const float* x = data.row(1);
        std::vector<double> h(9);
        for (std::size_t u = 0; u < 9; ++u) {
            double acc = vb[u];
            for (std::size_t j = 0; j < 12; ++j) acc += double(v1[u * 12 + j]) * (double(x[j]) - a.mean[j]) / a.scale[j];
            h[u] = std::max(acc, 0.0);
        }
        const std::vector<float> y = back.aspects.at("articulation").apply(x);
        for (std::size_t k = 0; k < 4; ++k) {
            double acc = 0;
            for (std::size_t u = 0; u < 9; ++u) acc += double(v2[k * 9 + u]) * h[u];
            EXPECT_NEAR(y[k], acc, 1e-4 * (1 + std::fabs(acc)));
        }
    }
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
    write_npy(dir / "models/articulation.b1.npy", std::vector<float>(8, 1.0f), {8});
    EXPECT_THROW(load_aspect_set(dir / "models"), Error);  // b1 of another hidden size
    save_aspect_set(set, dir / "models");
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
