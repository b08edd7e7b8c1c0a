// Probing: folds, scores, planted-layer discovery, controls, bad input, data loading and aspects.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <sndfile.h>
#include <nlohmann/json.hpp>

#include "mess/npy.hpp"
#include "mess/probe.hpp"
#include "mess/targets.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

TEST(Folds, ShuffledKFoldMatchesScikitLearnGolden) {
    // sklearn: [test for _, test in KFold(5, shuffle=True, random_state=42).split(np.zeros(10))]
    // = [1 8], [0 5], [2 7], [4 9], [3 6]  (NumPy RandomState(42).permutation(10) = 8 1 5 0 7 2 9 4 3 6,
    // cut in pairs; scikit-learn returns each fold's rows sorted).
    const Folds f = shuffled_kfold(10, 5, 42);
    const Folds want = {{1, 8}, {0, 5}, {2, 7}, {4, 9}, {3, 6}};
    EXPECT_EQ(f, want);
    // Uneven sizes: the first n % k folds get one more row.
    const Folds g = shuffled_kfold(12, 5, 1);
    std::vector<std::size_t> sizes;
    for (const auto& x : g) sizes.push_back(x.size());
    EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 2, 2, 2}));
}

TEST(Folds, GroupKFoldNeverSplitsAGroup) {
    std::vector<std::string> groups;
    for (int t = 0; t < 7; ++t)
        for (int w = 0; w < 3 + t % 3; ++w) groups.push_back("track" + std::to_string(t));
    const Folds f = group_kfold(groups, 3);
    ASSERT_EQ(f.size(), 3u);
    std::map<std::string, std::set<std::size_t>> fold_of_group;
    std::size_t total = 0;
    for (std::size_t k = 0; k < f.size(); ++k) {
        total += f[k].size();
        for (auto r : f[k]) fold_of_group[groups[r]].insert(k);
    }
    EXPECT_EQ(total, groups.size());
    for (const auto& [g, folds] : fold_of_group) EXPECT_EQ(folds.size(), 1u) << g;
    EXPECT_NE(test::error_message([&] { group_kfold({"a", "a", "b"}, 3); }, ErrorKind::usage).find("groups"), std::string::npos);
}

TEST(Folds, InvalidConfigurationIsRejected) {
    EXPECT_THROW(shuffled_kfold(10, 1, 42), Error);
    EXPECT_THROW(shuffled_kfold(3, 5, 42), Error);
    ProbeMatrix X(10, 2), Y(10, 1);
    EXPECT_NE(test::error_message([&] { cross_val_predict_ridge(X, Y, shuffled_kfold(10, 5, 0), 0.0); }, ErrorKind::usage).find("alpha"),
              std::string::npos);
    ProbeMatrix Y9(9, 1);
    EXPECT_THROW(cross_val_predict_ridge(X, Y9, shuffled_kfold(10, 5, 0), 1.0), Error);
    EXPECT_THROW(cross_val_predict_ridge(X, Y, Folds{{0, 1}, {1, 2}}, 1.0), Error);  // overlapping, incomplete
}

TEST(Scores, HandComputedValuesAndConstantCases) {
    // truth 1 2 3 4, prediction 1 2 3 5: SS_res 1, SS_tot 5 → R² 0.8; RMSE 0.5.
    const std::vector<double> t{1, 2, 3, 4}, p{1, 2, 3, 5};
    const ScalarScores s = score_scalar(t, p);
    EXPECT_NEAR(s.r2, 0.8, 1e-12);
    EXPECT_NEAR(s.rmse, 0.5, 1e-12);
    EXPECT_NEAR(s.correlation, 0.9827076298239908, 1e-12);  // np.corrcoef
    const std::vector<double> c{2, 2, 2};
    EXPECT_EQ(score_scalar(c, c).r2, 1.0);
    EXPECT_EQ(score_scalar(c, std::vector<double>{1, 2, 3}).r2, 0.0);
    EXPECT_EQ(score_scalar(c, std::vector<double>{1, 2, 3}).correlation, 0.0);
    EXPECT_THROW(score_scalar(std::vector<double>{}, std::vector<double>{}), Error);
}

namespace {

// Rows with `layers` layers of `dim` features; the scalar target is linear in `signal_layer` (plus a
// little noise) and every other layer is independent noise. A curve target rides on the same latent.
ProbeData planted(std::size_t rows, std::size_t layers, std::size_t dim, std::size_t signal_layer, std::uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<double> n01(0, 1);
    ProbeData d;
    d.dataset = "planted";
    d.layers = layers;
    d.dim = dim;
    d.features.resize(rows * layers * dim);
    ProbeTarget scalar{"timbre/spectral_centroid", 1, {}}, curve{"curves/dynamic_arc", 60, {}}, noise{"rhythm/tempo", 1, {}};
    for (std::size_t r = 0; r < rows; ++r) {
        d.row_ids.push_back("track" + std::to_string(r));
        for (auto& v : std::span(d.features).subspan(r * layers * dim, layers * dim)) v = static_cast<float>(n01(g));
        const float* x = d.features.data() + (r * layers + signal_layer) * dim;
        const double latent = 1.5 * x[0] - 0.8 * x[1] + 0.5 * x[2];
        scalar.values.push_back(latent + 0.1 * n01(g));
        for (int c = 0; c < 60; ++c) curve.values.push_back(latent * std::cos(0.05 * c) + 0.1 * n01(g));
        noise.values.push_back(n01(g));
    }
    d.targets = {scalar, curve, noise};
    return d;
}

}  // namespace

TEST(Discovery, FindsThePlantedLayerWithHighConfidenceAndChanceNearZero) {
    const ProbeData d = planted(80, 5, 12, 3, 11);
    DiscoveryParams p;
    std::int64_t last_done = 0, last_total = 0;
    p.on_progress = [&](std::int64_t done, std::int64_t total) { last_done = done; last_total = total; };
    const nlohmann::json r = discover_layers(d, p);
    EXPECT_EQ(last_done, last_total);
    EXPECT_GT(last_total, 0);
    // Scalar: layer 3 best and high; others near chance.
    for (int l = 0; l < 5; ++l) {
        const double s = r[std::to_string(l)]["timbre/spectral_centroid"]["r2_score"].get<double>();
        if (l == 3) EXPECT_GT(s, 0.9);
        else EXPECT_LT(s, 0.3) << "layer " << l;
        EXPECT_EQ(r[std::to_string(l)]["timbre/spectral_centroid"]["n_valid"], 80);
    }
    // Curve: scored with r2_mean / r2_pc1, best at layer 3 as well.
    EXPECT_GT(r["3"]["curves/dynamic_arc"]["r2_mean"].get<double>(), 0.8);
    EXPECT_GT(r["3"]["curves/dynamic_arc"]["r2_pc1"].get<double>(), 0.8);
    EXPECT_LT(r["0"]["curves/dynamic_arc"]["r2_mean"].get<double>(), 0.3);
    // Control: permuted targets at the best layer stay near zero.
    EXPECT_EQ(r["control"]["timbre/spectral_centroid"]["layer"], 3);
    EXPECT_LT(std::abs(r["control"]["timbre/spectral_centroid"]["r2_mean"].get<double>()), 0.25);
    // Weighted sum: nested R² high, most weight on the planted layer, weights sum to 1.
    const auto& ws = r["weighted_sum"]["timbre/spectral_centroid"];
    EXPECT_GT(ws["r2_score"].get<double>(), 0.8);
    const auto w = ws["layer_weights"].get<std::vector<double>>();
    ASSERT_EQ(w.size(), 5u);
    EXPECT_NEAR(std::accumulate(w.begin(), w.end(), 0.0), 1.0, 1e-9);
    EXPECT_GT(w[3], 0.5);
    EXPECT_TRUE(ws.contains("r2_gain_over_best_single"));
    // Pure-noise target: nothing validates.
    for (int l = 0; l < 5; ++l) EXPECT_LT(r[std::to_string(l)]["rhythm/tempo"]["r2_score"].get<double>(), 0.3);

    const auto aspects = resolve_aspects(r, {});
    ASSERT_FALSE(aspects.empty());
    const auto brightness = std::find_if(aspects.begin(), aspects.end(), [](const auto& a) { return a.name == "brightness"; });
    ASSERT_NE(brightness, aspects.end());
    EXPECT_EQ(brightness->confidence, "high");
    EXPECT_EQ(brightness->weights(5)[3] > 0.5, true);
    // The curve target resolves too (the predecessor crashed here), through layer 3 in best_layer mode.
    AspectParams bl;
    bl.mode = AspectMode::best_layer;
    const auto by_layer = resolve_aspects(r, bl);
    const auto arc = std::find_if(by_layer.begin(), by_layer.end(), [](const auto& a) { return a.name == "dynamic_arc"; });
    ASSERT_NE(arc, by_layer.end());
    EXPECT_EQ(arc->layer, 3);
    EXPECT_EQ(arc->target, "curves/dynamic_arc");
    // tempo is noise: not validated.
    EXPECT_TRUE(std::none_of(aspects.begin(), aspects.end(), [](const auto& a) { return a.name == "tempo"; }));
}

TEST(Discovery, BadInputIsReportedNotFaked) {
    ProbeData d = planted(30, 3, 6, 1, 5);
    d.targets.push_back({"dynamics/dynamic_range", 1, std::vector<double>(30, 4.0)});  // constant
    ProbeTarget holes{"dynamics/dynamic_variance", 1, {}};
    for (std::size_t r = 0; r < 30; ++r) holes.values.push_back(r % 2 ? std::nan("") : static_cast<double>(d.features[r * 18 + 6]));
    d.targets.push_back(holes);
    d.targets.push_back({"harmony/harmonic_complexity", 1, std::vector<double>(30, std::nan(""))});
    ProbeTarget sparse{"phrasing/num_phrases", 1, std::vector<double>(30, std::nan(""))};
    for (int r = 0; r < 3; ++r) sparse.values[static_cast<std::size_t>(r)] = r;
    d.targets.push_back(sparse);
    DiscoveryParams p;
    p.mode = ProbeMode::best_layer;
    const nlohmann::json r = discover_layers(d, p);
    EXPECT_EQ(r["skipped_targets"]["dynamics/dynamic_range"], "constant over the valid rows");
    EXPECT_EQ(r["skipped_targets"]["harmony/harmonic_complexity"], "no valid rows");
    EXPECT_EQ(r["1"]["dynamics/dynamic_variance"]["n_valid"], 15);
    EXPECT_DOUBLE_EQ(r["1"]["dynamics/dynamic_variance"]["coverage"].get<double>(), 0.5);
    EXPECT_GT(r["1"]["dynamics/dynamic_variance"]["r2_score"].get<double>(), 0.5);  // it is feature 0 of layer 1
    EXPECT_TRUE(r["1"]["phrasing/num_phrases"]["undersampled"].get<bool>());          // 3 rows < 5 folds
    EXPECT_FALSE(r["1"]["phrasing/num_phrases"].contains("r2_score"));
    EXPECT_TRUE(std::isnan(probe_score(r["1"]["phrasing/num_phrases"])));
    EXPECT_FALSE(r.contains("weighted_sum"));

    // A single track: every target undersampled, nothing that looks like a score.
    ProbeData one = planted(1, 3, 6, 1, 5);
    const nlohmann::json r1 = discover_layers(one, p);
    for (const auto& [name, m] : r1["0"].items()) EXPECT_TRUE(m.value("undersampled", false)) << name;

    DiscoveryParams bad;
    bad.alpha = -1;
    EXPECT_THROW(discover_layers(d, bad), Error);
    bad = {};
    bad.folds = 1;
    EXPECT_THROW(discover_layers(d, bad), Error);
    ProbeData broken = d;
    broken.features.pop_back();
    EXPECT_THROW(discover_layers(broken, p), Error);
    broken = d;
    broken.features[3] = std::nanf("");
    EXPECT_NE(test::error_message([&] { discover_layers(broken, p); }).find("non-finite"), std::string::npos);
}

TEST(Discovery, WindowLevelFoldsKeepTracksTogether) {
    ProbeData d = planted(60, 3, 8, 2, 9);
    for (std::size_t r = 0; r < 60; ++r) d.groups.push_back("track" + std::to_string(r / 6));
    DiscoveryParams p;
    p.mode = ProbeMode::best_layer;
    p.control_permutations = 2;
    const nlohmann::json r = discover_layers(d, p);
    EXPECT_EQ(r["run"]["cv"], "group_kfold_by_track");
    EXPECT_EQ(r["run"]["n_tracks"], 10);
    EXPECT_GT(r["2"]["timbre/spectral_centroid"]["r2_score"].get<double>(), 0.9);
}

namespace {

// A data root with features for tracks a, b, c and targets for b, c, d (3 layers × 4 dims).
struct Store {
    test::TempDir dir;
    Dataset ds;
    Store() : ds(make()) {}
    Dataset make() {
        fs::create_directories(dir / "audio");
        for (const char* t : {"a", "b", "c", "d"})
            test::write_sound(dir / "audio" / (std::string(t) + ".wav"), test::tone(440, 1.0, 24000), 1, 24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
        Dataset d = Dataset::folder(dir / "data", dir / "audio", "toy");
        fs::create_directories(d.features().root() / "segments");
        fs::create_directories(d.features().root() / "aggregated");
        fs::create_directories(d.targets_dir());
        int i = 0;
        for (const char* t : {"a", "b", "c"}) {
            std::vector<float> seg(2 * 3 * 4);
            for (auto& v : seg) v = static_cast<float>(++i);
            write_npy(d.features().view_path(View::segments, t), NpyArray::from(seg, {2, 3, 4}));
        }
        for (const char* t : {"b", "c", "d"}) {
            TargetSet ts;
            ts.arrays["timbre/spectral_centroid"] = {static_cast<float>(t[0])};
            ts.arrays["curves/novelty"] = std::vector<float>(60, 0.5f);
            ts.arrays["window/start_sec"] = {0.0f, 2.5f};
            ts.arrays["window/end_sec"] = {5.0f, 7.5f};
            ts.arrays["window/spectral_centroid"] = {1.0f, 2.0f};
            if (t[0] == 'c') ts.arrays["window/start_sec"] = {0.0f, 2.5f, 5.0f};  // disagrees with c's 2 windows
            if (t[0] == 'c') ts.arrays["window/spectral_centroid"] = {1.0f, 2.0f, 3.0f};
            write_targets(d.targets_path(t), ts);
        }
        return d;
    }
};

}  // namespace

TEST(ProbeData, TrackSetsAreIntersectedAndMismatchesReported) {
    Store s;
    const ProbeData d = load_probe_data(s.ds, ProbeLevel::track);
    EXPECT_EQ(d.row_ids, (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(d.layers, 3u);
    EXPECT_EQ(d.dim, 4u);
    ASSERT_EQ(d.features.size(), 2u * 12);
    EXPECT_FLOAT_EQ(d.features[0], (25.0f + 37.0f) / 2);  // b's segments are 25..48: mean of windows
    EXPECT_EQ(d.skipped_tracks.at("a"), "no proxy targets (run mess targets)");
    EXPECT_EQ(d.skipped_tracks.at("d"), "no aggregated or segments view");
    std::set<std::string> names;
    for (const auto& t : d.targets) names.insert(t.name + ":" + std::to_string(t.width));
    EXPECT_EQ(names, (std::set<std::string>{"curves/novelty:60", "timbre/spectral_centroid:1"}));

    const ProbeData w = load_probe_data(s.ds, ProbeLevel::window);
    EXPECT_EQ(w.row_ids, (std::vector<std::string>{"toy:b:00000", "toy:b:00001"}));
    EXPECT_EQ(w.groups, (std::vector<std::string>{"b", "b"}));
    EXPECT_NE(w.skipped_tracks.at("c").find("window count differs"), std::string::npos);
    ASSERT_EQ(w.targets.size(), 1u);
    EXPECT_EQ(w.targets[0].name, "window/spectral_centroid");

    test::TempDir empty;
    fs::create_directories(empty / "audio");
    test::write_sound(empty / "audio" / "x.wav", test::tone(440, 1.0, 24000), 1, 24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    EXPECT_NE(test::error_message([&] { load_probe_data(Dataset::folder(empty / "data", empty / "audio", "e"), ProbeLevel::track); })
                  .find("no track has both"),
              std::string::npos);
}

// Targets are per dataset: a dataset never reads another dataset's targets for a track of the same name,
// nor a file of the old flat layout (proxy_targets/<track>.targets.npz), which may be anyone's.
TEST(ProbeData, TargetsOfAnotherDatasetOrTheFlatLayoutAreNeverRead) {
    Store s;
    const Dataset other = Dataset::folder(s.dir / "data", s.dir / "audio", "other");  // same tracks a..d
    EXPECT_EQ(other.targets_path("b"), s.dir / "data/proxy_targets/other/b.targets.npz");
    EXPECT_EQ(s.ds.targets_path("b"), s.dir / "data/proxy_targets/toy/b.targets.npz");
    fs::create_directories(other.features().root() / "aggregated");
    write_npy(other.features().view_path(View::aggregated, "a"), NpyArray::from(std::vector<float>(12, 1.0f), {3, 4}));
    write_npy(other.features().view_path(View::aggregated, "b"), NpyArray::from(std::vector<float>(12, 2.0f), {3, 4}));
    fs::copy_file(s.ds.targets_path("b"), flat_targets_path(other, "a"));  // a flat file, as an older MESS left it
    const std::string why = test::error_message([&] { load_probe_data(other, ProbeLevel::track); });
    EXPECT_NE(why.find("dataset other: no track has both features and proxy targets (4 tracks skipped; a: no proxy targets in"),
              std::string::npos) << why;
    EXPECT_NE(why.find("proxy_targets/a.targets.npz of the old shared layout"), std::string::npos) << why;

    TargetSet mine;
    mine.arrays["timbre/spectral_centroid"] = {7.0f};
    fs::create_directories(other.targets_dir());
    write_targets(other.targets_path("b"), mine);
    const ProbeData d = load_probe_data(other, ProbeLevel::track);
    EXPECT_EQ(d.row_ids, std::vector<std::string>{"b"});
    ASSERT_EQ(d.targets.size(), 1u);
    EXPECT_EQ(d.targets[0].values, std::vector<double>{7.0});  // its own, not toy's 'b' (98)
    EXPECT_NE(d.skipped_tracks.at("a").find("old shared layout"), std::string::npos);
}

TEST(Aspects, RegistryAndModes) {
    const auto& reg = aspect_registry();
    EXPECT_EQ(reg.size(), 16u);
    for (const auto& a : reg) {
        EXPECT_FALSE(a.description.empty()) << a.name;
        EXPECT_FALSE(a.targets.empty()) << a.name;
    }
    // Synthetic results: brightness best single 0.85 at layer 2; weighted sum 0.86 (gain 0.01) → auto keeps
    // the layer; dynamics weighted sum 0.7 vs single 0.6 → auto takes the weights; texture 0.3 → not validated.
    // Confidence comes from the band's lower bound and the tracks: brightness [0.82, 0.9] on 40 tracks is
    // high, dynamics [0.55, 0.8] on 12 tracks medium.
    nlohmann::json r = {{"0", {{"timbre/spectral_centroid", {{"r2_score", 0.5}, {"n_valid", 10}, {"coverage", 1.0}}},
                               {"dynamics/dynamic_range", {{"r2_score", 0.6}, {"n_valid", 10}, {"coverage", 1.0}}},
                               {"timbre/spectral_rolloff", {{"r2_score", 0.3}}}}},
                        {"1", {{"timbre/spectral_centroid", {{"undersampled", true}}}}},
                        {"2", {{"timbre/spectral_centroid", {{"r2_score", 0.85}, {"n_valid", 40}, {"coverage", 1.0},
                                                             {"r2_band", {0.82, 0.9}}, {"n_tracks", 40}}}}},
                        {"weighted_sum", {{"timbre/spectral_centroid", {{"r2_score", 0.86}, {"layer_weights", {0.2, 0.3, 0.5}}}},
                                          {"dynamics/dynamic_range", {{"r2_score", 0.7}, {"layer_weights", {0.6, 0.2, 0.2}},
                                                                     {"r2_band", {0.55, 0.8}}, {"n_tracks", 12}}}}}};
    auto find = [](const std::vector<ResolvedAspect>& v, const std::string& n) {
        auto it = std::find_if(v.begin(), v.end(), [&](const auto& a) { return a.name == n; });
        return it == v.end() ? nullptr : &*it;
    };
    const auto aut = resolve_aspects(r, {});
    ASSERT_TRUE(find(aut, "brightness"));
    EXPECT_EQ(find(aut, "brightness")->mode, AspectMode::best_layer);
    EXPECT_EQ(find(aut, "brightness")->layer, 2);
    EXPECT_EQ(find(aut, "brightness")->confidence, "high");
    ASSERT_TRUE(find(aut, "dynamics"));
    EXPECT_EQ(find(aut, "dynamics")->mode, AspectMode::weighted_sum);
    EXPECT_NEAR(find(aut, "dynamics")->r2_gain, 0.1, 1e-12);
    EXPECT_EQ(find(aut, "dynamics")->confidence, "medium");
    // The band and tracks survive the manifest round trip, and a stored label is recomputed from them.
    nlohmann::json stored = find(aut, "dynamics")->to_json();
    EXPECT_EQ(stored["n_tracks"], 12);
    stored["confidence"] = "high";
    const ResolvedAspect back = resolved_aspect_from_json(stored);
    EXPECT_EQ(back.confidence, "medium");
    EXPECT_NEAR(back.band.low, 0.55, 1e-9);
    EXPECT_EQ(find(aut, "texture"), nullptr);
    EXPECT_EQ(find(aut, "dynamics")->to_json()["layer_weights"].size(), 3u);
    AspectParams ws;
    ws.mode = AspectMode::weighted_sum;
    EXPECT_EQ(find(resolve_aspects(r, ws), "brightness")->mode, AspectMode::weighted_sum);
    AspectParams low;
    low.min_r2 = 0.2;
    EXPECT_NE(find(resolve_aspects(r, low), "texture"), nullptr);
    EXPECT_EQ(find(aut, "warmth")->target, "timbre/spectral_centroid");  // warmth falls back to its second target
    // Window-level names resolve to the registry's targets.
    nlohmann::json w = {{"0", {{"window/spectral_centroid", {{"r2_score", 0.9}}}}}};
    EXPECT_EQ(find(resolve_aspects(w, {}), "brightness")->target, "window/spectral_centroid");
    EXPECT_THROW(resolve_aspects(nlohmann::json{{"weighted_sum", {}}}, {}), Error);
    EXPECT_THROW(parse_aspect_mode("best"), Error);
    EXPECT_THROW(find(aut, "brightness")->weights(2), Error);
    test::TempDir dir;
    EXPECT_NE(test::error_message([&] { read_discovery_results(dir / "none.json"); }).find("mess probe"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Confidence band, fold scores and labels
// ---------------------------------------------------------------------------------------------

namespace {

ProbeMatrix column(const std::vector<double>& v) {
    ProbeMatrix m(v.size(), 1);
    m.values = v;
    return m;
}

}  // namespace

TEST(ConfidenceBand, MatchesTheNumPyGolden) {
    // Provenance: tests/probe/band_golden.py (NumPy 1.24, RandomState raw MT19937 outputs = std::mt19937).
    const ProbeMatrix truth = column({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    const ProbeMatrix pred = column({1.5, 1.8, 3.4, 3.6, 5.9, 5.1, 6.2, 8.8, 8.1, 10.7});
    const std::vector<std::string> groups = {"b", "b", "a", "a", "c", "c", "e", "e", "d", "d"};
    const R2Band g = bootstrap_r2_band(truth, pred, groups, {50, 0.95, 7});
    EXPECT_NEAR(g.low, 0.755069673713, 1e-9);
    EXPECT_NEAR(g.high, 0.971653543307, 1e-9);
    const R2Band r = bootstrap_r2_band(truth, pred, {}, {200, 0.9, 42});
    EXPECT_NEAR(r.low, 0.870004869023, 1e-9);
    EXPECT_NEAR(r.high, 0.964593576559, 1e-9);
    const auto f = fold_r2(truth, pred, {{0, 1, 2}, {3, 4, 5}, {6, 7, 8, 9}});
    ASSERT_EQ(f.size(), 3u);
    EXPECT_NEAR(f[0], 0.775, 1e-12);
    EXPECT_NEAR(f[1], 0.110, 1e-12);
    EXPECT_NEAR(f[2], 0.484, 1e-12);
    // Deterministic: the same seed gives the same band.
    const R2Band again = bootstrap_r2_band(truth, pred, groups, {50, 0.95, 7});
    EXPECT_EQ(again.low, g.low);
}

TEST(ConfidenceBand, InvalidConfigurationAndDegenerateInput) {
    const ProbeMatrix truth = column({1, 2, 3, 4}), pred = column({1, 2, 3, 5});
    EXPECT_THROW(bootstrap_r2_band(truth, pred, {}, {0, 0.95, 1}), Error);
    EXPECT_THROW(bootstrap_r2_band(truth, pred, {}, {10, 1.0, 1}), Error);
    EXPECT_THROW(bootstrap_r2_band(truth, pred, {"a"}, {10, 0.95, 1}), Error);
    EXPECT_THROW(bootstrap_r2_band(truth, column({1, 2}), {}, {10, 0.95, 1}), Error);
    EXPECT_THROW(bootstrap_r2_band(ProbeMatrix(0, 1), ProbeMatrix(0, 1), {}, {10, 0.95, 1}), Error);
    EXPECT_THROW(fold_r2(truth, pred, {{0, 1}}), Error);
    // Constant truth predicted exactly: R² 1 in every resample (scikit-learn's convention), no NaN.
    const R2Band c = bootstrap_r2_band(column({2, 2, 2}), column({2, 2, 2}), {}, {20, 0.95, 1});
    EXPECT_EQ(c.low, 1.0);
    EXPECT_EQ(c.high, 1.0);
    DiscoveryParams p;
    p.bootstrap = -1;
    EXPECT_THROW(discover_layers(planted(20, 2, 4, 1, 3), p), Error);
    p.bootstrap = 10;
    p.band_level = 0;
    EXPECT_THROW(discover_layers(planted(20, 2, 4, 1, 3), p), Error);
}

TEST(ConfidenceBand, LabelNeedsTheLowerBoundAndEnoughTracks) {
    EXPECT_STREQ(confidence_label(0.95, kMinTracksHigh), "high");
    EXPECT_STREQ(confidence_label(0.95, kMinTracksHigh - 1), "medium");
    EXPECT_STREQ(confidence_label(0.95, 8), "low");
    EXPECT_STREQ(confidence_label(0.7, 100), "medium");
    EXPECT_STREQ(confidence_label(0.4, 100), "low");
    EXPECT_STREQ(confidence_label(std::nan(""), 100), "low");
}

TEST(ConfidenceBand, EightTracksAreNeverHigh) {
    // A near-perfect planted probe on 8 tracks: R² high, but the label is not.
    const ProbeData d = planted(8, 2, 3, 1, 5);
    DiscoveryParams p;
    p.folds = 4;
    p.mode = ProbeMode::best_layer;
    p.control_permutations = 0;
    const nlohmann::json r = discover_layers(d, p);
    const auto& m = r["1"]["timbre/spectral_centroid"];
    EXPECT_GT(m["r2_score"].get<double>(), 0.9);
    EXPECT_EQ(m["n_tracks"], 8);
    ASSERT_EQ(m["r2_folds"].size(), 4u);
    EXPECT_GE(m["r2_fold_std"].get<double>(), 0.0);
    ASSERT_EQ(m["r2_band"].size(), 2u);
    EXPECT_LE(m["r2_band"][0].get<double>(), m["r2_band"][1].get<double>());
    EXPECT_EQ(r["run"]["band"]["resamples"], 200);
    AspectParams all;
    all.min_r2 = -1;
    for (const auto& a : resolve_aspects(r, all)) EXPECT_NE(a.confidence, "high") << a.name;
    const auto aspects = resolve_aspects(r, all);
    const auto b = std::find_if(aspects.begin(), aspects.end(), [](const auto& a) { return a.name == "brightness"; });
    ASSERT_NE(b, aspects.end());
    EXPECT_EQ(b->confidence, "low");
    EXPECT_EQ(b->n_tracks, 8);
}

TEST(ConfidenceBand, WindowLevelBandCountsTracksNotWindows) {
    ProbeData d = planted(40, 2, 3, 1, 9);
    for (std::size_t r = 0; r < d.rows(); ++r) d.groups.push_back("track" + std::to_string(r / 5));  // 8 tracks × 5 windows
    DiscoveryParams p;
    p.folds = 4;
    p.mode = ProbeMode::best_layer;
    p.control_permutations = 0;
    const nlohmann::json r = discover_layers(d, p);
    EXPECT_EQ(r["1"]["timbre/spectral_centroid"]["n_tracks"], 8);
    EXPECT_EQ(r["1"]["curves/dynamic_arc"]["r2_folds"].size(), 4u);
    EXPECT_TRUE(r["1"]["curves/dynamic_arc"].contains("r2_band"));
}

// ---------------------------------------------------------------------------------------------
// Separability
// ---------------------------------------------------------------------------------------------

namespace {

// 120 tracks, one layer of 6 features: target A reads x0, B reads x1 (orthogonal to A), C reads x0 too
// (shares A's direction), each with a little noise.
ProbeData separable_data() {
    std::mt19937 g(4);
    std::normal_distribution<double> n01(0, 1);
    ProbeData d;
    d.dataset = "separable";
    d.layers = 1;
    d.dim = 6;
    ProbeTarget a{"timbre/spectral_centroid", 1, {}}, b{"rhythm/tempo", 1, {}}, c{"dynamics/dynamic_range", 1, {}};
    for (int r = 0; r < 120; ++r) {
        d.row_ids.push_back("t" + std::to_string(r));
        std::vector<double> x(6);
        for (auto& v : x) v = n01(g);
        d.features.insert(d.features.end(), x.begin(), x.end());
        a.values.push_back(2 * x[0] + 0.1 * n01(g));
        b.values.push_back(2 * x[1] + 0.1 * n01(g));
        c.values.push_back(-1.5 * x[0] + 0.1 * n01(g));
    }
    d.targets = {a, b, c};
    return d;
}

ResolvedAspect aspect_on(const std::string& name, const std::string& target) {
    ResolvedAspect a;
    a.name = name;
    a.target = target;
    a.layer = 0;
    return a;
}

}  // namespace

TEST(Separability, OrthogonalTargetsSeparateSharedOnesDoNot) {
    const ProbeData d = separable_data();
    const std::vector<ResolvedAspect> aspects = {aspect_on("brightness", "timbre/spectral_centroid"), aspect_on("tempo", "rhythm/tempo"),
                                                 aspect_on("dynamics", "dynamics/dynamic_range")};
    const SeparabilityReport s = separability(d, aspects, {});
    ASSERT_EQ(s.r2.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_GT(s.r2[i][i], 0.95) << i;  // each aspect reads its own target
    EXPECT_LT(s.r2[0][1], 0.1);   // brightness's direction says nothing about tempo
    EXPECT_LT(s.r2[1][0], 0.1);
    EXPECT_GT(s.r2[0][2], 0.95);  // dynamics shares brightness's direction: not separable
    EXPECT_GT(s.r2[2][0], 0.95);
    // Through a weighted-sum aspect the layer is L2-normalised before the probe (as search fuses it): lower,
    // but still far from the orthogonal pair.
    ResolvedAspect fused = aspects[0];
    fused.mode = AspectMode::weighted_sum;
    fused.layer_weights = {1.0};
    const SeparabilityReport f = separability(d, {fused, aspects[1]}, {});
    EXPECT_GT(f.r2[0][0], 0.85);
    EXPECT_LT(f.r2[0][1], 0.1);
    EXPECT_EQ(s.rows[0][1], 120);
    const nlohmann::json j = s.to_json();
    EXPECT_EQ(j["aspects"][2], "dynamics");
    EXPECT_EQ(j["params"]["directions"], 4);
}

TEST(Separability, InvalidConfigurationAndDegenerateInput) {
    ProbeData d = separable_data();
    const std::vector<ResolvedAspect> two = {aspect_on("brightness", "timbre/spectral_centroid"), aspect_on("tempo", "rhythm/tempo")};
    SeparabilityParams bad;
    bad.directions = 0;
    EXPECT_THROW(separability(d, two, bad), Error);
    bad = {};
    bad.folds = 1;
    EXPECT_THROW(separability(d, two, bad), Error);
    EXPECT_THROW(separability(d, {}, {}), Error);
    EXPECT_NE(test::error_message([&] { separability(d, {aspect_on("x", "no/such")}, {}); }, ErrorKind::usage).find("no/such"), std::string::npos);
    ResolvedAspect wrong_layer = aspect_on("brightness", "timbre/spectral_centroid");
    wrong_layer.layer = 3;
    EXPECT_THROW(separability(d, {wrong_layer}, {}), Error);
    // Tempo valid on 3 rows only: pairs with it are undersampled (NaN, null in JSON), the rest still scored.
    for (std::size_t r = 3; r < d.rows(); ++r) d.targets[1].values[r] = std::nan("");
    const SeparabilityReport s = separability(d, two, {});
    EXPECT_TRUE(std::isnan(s.r2[0][1]));
    EXPECT_EQ(s.rows[0][1], 3);
    EXPECT_GT(s.r2[0][0], 0.95);
    EXPECT_TRUE(s.to_json()["r2"][0][1].is_null());
    ProbeData empty;
    EXPECT_THROW(separability(empty, two, {}), Error);
}

namespace {
// The data of tests/probe/proxy_aspect_golden.py: 40 windows of 4 tracks, 2 layers × 3 dims, two targets.
mess::ProbeData proxy_data() {
    mess::ProbeData d;
    d.dataset = "golden";
    d.level = mess::ProbeLevel::window;
    d.layers = 2, d.dim = 3;
    mess::ProbeTarget centroid{"window/spectral_centroid", 1, {}}, rolloff{"window/spectral_rolloff", 1, {}};
    for (int i = 0; i < 40; ++i) {
        d.row_ids.push_back("w" + std::to_string(i));
        d.groups.push_back("t" + std::to_string(i / 10));
        std::vector<double> x;
        for (int l = 0; l < 2; ++l)
            for (int k = 0; k < 3; ++k) x.push_back(std::sin(0.7 * i + 3.9 * l + 0.9 * k) + 0.1 * k);
        for (double v : x) d.features.push_back(static_cast<float>(v));
        // the targets from the float32 inputs, as the script computes them from its float64 ones (tolerance below)
        centroid.values.push_back(2 * x[0] - x[3] + 0.3 * std::cos(i));
        rolloff.values.push_back(x[1] + 0.5 * x[0] + 0.2 * std::sin(3 * i));
    }
    d.targets = {centroid, rolloff};
    return d;
}
const std::vector<std::string> kBright = {"timbre/spectral_centroid", "timbre/spectral_rolloff"};
}  // namespace

// Golden: tests/probe/proxy_aspect_golden.py (NumPy, independent of the ridge code here). The features are
// float32 in ProbeData, so agreement is to float precision.
TEST(ProxyAspect, GoldenDirections) {
    const auto fit = mess::fit_proxy_aspect(proxy_data(), {}, "brightness", kBright, {});
    const std::vector<double> w = {0.566786304, 0.487485182, 0.039602900, -0.529842237, -0.122900502, 0.379085432,
                                   -0.234034632, 0.261925400, 0.561905278, -0.187733994, -0.540489258, -0.483231459};
    ASSERT_EQ(fit.model.out_dim, 2);
    ASSERT_EQ(fit.model.weights.size(), w.size());
    for (std::size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(fit.model.weights[i], w[i], 2e-5) << i;
    EXPECT_NEAR(fit.model.direction[0], 0.999987502, 2e-5);
    EXPECT_NEAR(fit.model.direction[1], 0.004999555, 2e-4);
    EXPECT_EQ(fit.model.rung, mess::AspectRung::linear);
    EXPECT_EQ(fit.windows, 40);
    ASSERT_EQ(fit.cv_r2.size(), 2u);
    EXPECT_GT(fit.cv_r2[0], 0.9);  // a linear target with a small wobble, read from its own subspace
    // On the same windows the projection orders them by the centroid (held-out use: another corpus).
    const auto ev = mess::evaluate_proxy_aspect(fit.model, proxy_data(), {}, {});
    EXPECT_GT(ev.spearman[0], 0.8);
    EXPECT_GT(ev.r2[0], 0.9);
}

TEST(ProxyAspect, InvalidConfigurationAndDegenerateInput) {
    const auto d = proxy_data();
    EXPECT_THROW(mess::fit_proxy_aspect(d, {}, "glow", {"timbre/sparkle"}, {}), mess::Error);
    EXPECT_THROW(mess::fit_proxy_aspect(d, {}, "b", {"timbre/spectral_centroid", "timbre/spectral_centroid"}, {}), mess::Error);
    EXPECT_THROW(mess::fit_proxy_aspect(d, {}, "b", {"timbre/spectral_bandwidth"}, {}), mess::Error);  // not computed
    EXPECT_THROW(mess::fit_proxy_aspect(d, {5}, "b", kBright, {}), mess::Error);
    EXPECT_THROW(mess::fit_proxy_aspect(d, {}, "b", kBright, {0.0, 5}), mess::Error);
    EXPECT_THROW(mess::parse_proxy_aspect_spec("brightness"), mess::Error);
    EXPECT_THROW(mess::parse_proxy_aspect_spec("=timbre/spectral_centroid"), mess::Error);
    EXPECT_EQ(mess::parse_proxy_aspect_spec("b = x, y").second, (std::vector<std::string>{"x", "y"}));
    auto flat = d;
    std::fill(flat.targets[0].values.begin(), flat.targets[0].values.end(), 1500.0);
    try {
        mess::fit_proxy_aspect(flat, {}, "brightness", kBright, {});
        ADD_FAILURE() << "a constant target was accepted";
    } catch (const mess::Error& e) {
        EXPECT_NE(std::string(e.what()).find("constant"), std::string::npos) << e.what();
    }
    mess::ProbeData empty = d;
    empty.row_ids.clear(), empty.groups.clear(), empty.features.clear();
    for (auto& t : empty.targets) t.values.clear();
    EXPECT_THROW(mess::fit_proxy_aspect(empty, {}, "brightness", kBright, {}), mess::Error);
}
