// The feature store: paths, the sidecar's reader and writer, the completeness rule, layer fusion.
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/features.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

Sidecar example_sidecar(const fs::path& audio) {
    Sidecar s;
    s.track_id = "take1";
    s.audio_path = audio;
    s.model = "dsp";
    s.model_config = {"dsp", 76, 8, 7, {"a", "b"}};
    s.sample_rate = 24000;
    s.window_seconds = 5.0;
    s.overlap = 0.5;
    s.duration_sec = 7.5;
    s.num_windows = 2;
    s.frames_per_window = 1;
    s.windows = {{0.0, 5.0}, {2.5, 7.5}};
    s.views = {View::segments, View::aggregated};
    s.precision = "bf16";
    s.device = "cpu";
    return s;
}

void write_view(const FeatureStore& store, View v, const std::string& track, std::vector<std::int64_t> shape) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    fs::create_directories(store.view_path(v, track).parent_path());
    write_npy(store.view_path(v, track), NpyArray::from(std::vector<float>(static_cast<std::size_t>(n), 0.5f), shape));
}

}  // namespace

TEST(Features, PathsFollowTheLayout) {
    const FeatureStore store = FeatureStore::of("data", "smd");
    EXPECT_EQ(store.root(), fs::path("data/embeddings/smd-emb"));
    EXPECT_EQ(store.view_path(View::raw, "t"), fs::path("data/embeddings/smd-emb/raw/t.npy"));
    EXPECT_EQ(store.view_path(View::aggregated, "t"), fs::path("data/embeddings/smd-emb/aggregated/t.npy"));
    EXPECT_EQ(store.sidecar_path("t"), fs::path("data/embeddings/smd-emb/meta/t.json"));
    EXPECT_EQ(store.lock_path("t"), fs::path("data/embeddings/smd-emb/.locks/t.lock"));
    EXPECT_EQ(describe_views(FeatureLevel::all), "raw+segments+aggregated");
    EXPECT_EQ(parse_view("segments"), View::segments);
    EXPECT_THROW(parse_view("frames"), Error);
    EXPECT_THROW(parse_feature_level("everything"), Error);
}

TEST(Features, SidecarRoundTripsWithARelativeAudioPath) {
    test::TempDir dir;
    const FeatureStore store = FeatureStore::of(dir.path(), "mine");
    store.create();
    store.write_sidecar(example_sidecar(dir / "audio/mine/take1.wav"));
    const auto j = nlohmann::json::parse(read_file(store.sidecar_path("take1")));
    EXPECT_EQ(j["audio_path"], "audio/mine/take1.wav");  // relative to the data root
    EXPECT_EQ(j["views"], nlohmann::json({"segments", "aggregated"}));
    EXPECT_EQ(j["model_config"]["default_layer"], 7);
    const Sidecar back = store.read_sidecar("take1");
    EXPECT_EQ(back.to_json_text(), read_file(store.sidecar_path("take1")));
    EXPECT_EQ(store.audio_path(back), dir / "audio/mine/take1.wav");
    EXPECT_EQ(back.precision, "bf16");
    ASSERT_EQ(back.windows.size(), 2u);
    EXPECT_DOUBLE_EQ(back.windows[1].start_sec, 2.5);
}

TEST(Features, AudioOutsideTheDataRootStaysAbsolute) {
    test::TempDir dir, elsewhere;
    const FeatureStore store = FeatureStore::of(dir.path(), "mine");
    store.create();
    store.write_sidecar(example_sidecar(elsewhere / "take1.wav"));
    EXPECT_EQ(store.read_sidecar("take1").audio_path, elsewhere / "take1.wav");
}

TEST(Features, OldSidecarsReadWithDefaults) {
    const Sidecar s = Sidecar::parse(R"({"windows": [{"start_sec": 0, "end_sec": 5}], "views": ["aggregated"]})", "old.json");
    EXPECT_EQ(s.precision, "fp32");
    EXPECT_EQ(s.device, "cpu");
    EXPECT_EQ(s.model_config.default_layer, -1);
    EXPECT_EQ(s.num_windows, 1);
}

TEST(Features, MalformedSidecarsNameTheFile) {
    for (const char* text : {"", "{", R"({"views": []})", R"({"windows": [{"start_sec": "x"}], "views": []})",
                             R"({"windows": [], "views": ["frames"]})"}) {
        try {
            Sidecar::parse(text, "meta/x.json");
            ADD_FAILURE() << "accepted: " << text;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
            EXPECT_NE(std::string(e.what()).find("meta/x.json"), std::string::npos) << e.what();
        }
    }
}

TEST(Features, CompletenessNeedsTheSidecarAndEveryViewOfTheLevel) {
    test::TempDir dir;
    const FeatureStore store = FeatureStore::of(dir.path(), "mine");
    store.create();
    EXPECT_FALSE(store.is_complete("take1", FeatureLevel::aggregated));  // nothing yet
    write_view(store, View::segments, "take1", {2, 8, 76});
    write_view(store, View::aggregated, "take1", {8, 76});
    EXPECT_FALSE(store.is_complete("take1", FeatureLevel::aggregated));  // views without a sidecar: a killed run
    store.write_sidecar(example_sidecar(dir / "take1.wav"));
    EXPECT_TRUE(store.is_complete("take1", FeatureLevel::aggregated));
    EXPECT_TRUE(store.is_complete("take1", FeatureLevel::segments));
    EXPECT_FALSE(store.is_complete("take1", FeatureLevel::all));       // no raw view
    fs::remove(store.view_path(View::segments, "take1"));
    EXPECT_FALSE(store.is_complete("take1", FeatureLevel::segments));  // listed but missing
    write_file_atomic(store.sidecar_path("take1"), "{corrupt");
    EXPECT_FALSE(store.is_complete("take1", FeatureLevel::aggregated));  // unreadable: recompute
    EXPECT_FALSE(store.try_read_sidecar("take1").has_value());
    EXPECT_THROW(store.read_sidecar("take1"), Error);
}

TEST(Features, SidecarRecordsTheAudioStampAndOlderSidecarsHaveNone) {
    Sidecar s = example_sidecar("audio/take1.wav");
    s.audio_stamp = FileStamp{123456, 1'700'000'000'123'456'789};
    const auto j = nlohmann::json::parse(s.to_json_text());
    EXPECT_EQ(j["audio_size_bytes"], 123456);
    EXPECT_EQ(j["audio_mtime_ns"], 1'700'000'000'123'456'789);
    EXPECT_EQ(Sidecar::parse(s.to_json_text(), "t.json").audio_stamp, s.audio_stamp);  // exact to the nanosecond
    EXPECT_FALSE(Sidecar::parse(example_sidecar("a.wav").to_json_text(), "old.json").audio_stamp.has_value());
    const std::string half = R"({"windows": [], "views": [], "audio_size_bytes": 12})";  // one field without the other
    EXPECT_NE(test::error_message([&] { Sidecar::parse(half, "meta/h.json"); }).find("meta/h.json"), std::string::npos);
}

namespace {

// A complete track "take1" (segments level, 2 windows, 8 layers × 76 dims) whose sidecar records `stamp`.
FeatureStore complete_track(const test::TempDir& dir, std::optional<FileStamp> stamp) {
    const FeatureStore store = FeatureStore::of(dir.path(), "mine");
    store.create();
    write_view(store, View::segments, "take1", {2, 8, 76});
    write_view(store, View::aggregated, "take1", {8, 76});
    Sidecar side = example_sidecar(dir / "take1.wav");
    side.audio_stamp = stamp;
    store.write_sidecar(side);
    return store;
}

}  // namespace

TEST(Features, CheckTrackComparesTheAudioStampWhenTheSidecarHasOne) {
    test::TempDir dir;
    const FileStamp then{1000, 5'000'000'000};
    const FeatureStore store = complete_track(dir, then);
    EXPECT_EQ(store.check_track("take1", FeatureLevel::segments, then).state, TrackState::complete);
    EXPECT_EQ(store.check_track("take1", FeatureLevel::segments).state, TrackState::complete);  // no stamp given: not compared
    const TrackCheck bigger = store.check_track("take1", FeatureLevel::segments, FileStamp{1001, then.mtime_ns});
    EXPECT_EQ(bigger.state, TrackState::source_changed);
    EXPECT_NE(bigger.reason.find("take1.wav: size 1000 → 1001 bytes since extraction"), std::string::npos) << bigger.reason;
    const TrackCheck touched = store.check_track("take1", FeatureLevel::segments, FileStamp{1000, then.mtime_ns + 1});
    EXPECT_EQ(touched.state, TrackState::source_changed);
    EXPECT_NE(touched.reason.find("modified 1 ns later"), std::string::npos) << touched.reason;
    EXPECT_FALSE(store.is_complete("missing", FeatureLevel::segments));
    EXPECT_EQ(store.check_track("missing", FeatureLevel::segments).state, TrackState::missing);
    EXPECT_EQ(store.check_track("take1", FeatureLevel::all, then).state, TrackState::missing);  // a higher level: not yet extracted
    EXPECT_STREQ(to_string(TrackState::source_changed), "source changed");

    test::TempDir old_dir;  // a sidecar from before stamps: any audio stamp is accepted
    const FeatureStore old = complete_track(old_dir, std::nullopt);
    EXPECT_EQ(old.check_track("take1", FeatureLevel::segments, FileStamp{1, 2}).state, TrackState::complete);
}

TEST(Features, CheckTrackFindsDamagedViewsWithoutReadingTheirData) {
    test::TempDir dir;
    const FeatureStore store = complete_track(dir, std::nullopt);
    const fs::path seg = store.view_path(View::segments, "take1");
    const std::string good = read_file(seg);
    auto corrupt_because = [&](const std::string& bytes) {
        write_file_atomic(seg, bytes);
        const TrackCheck c = store.check_track("take1", FeatureLevel::segments);
        EXPECT_EQ(c.state, TrackState::corrupt) << c.reason;
        EXPECT_NE(c.reason.find(seg.string()), std::string::npos) << c.reason;  // names the file
        return c.reason;
    };
    EXPECT_NE(corrupt_because(good.substr(0, good.size() - 4)).find("truncated data"), std::string::npos);
    EXPECT_NE(corrupt_because(good + "tail").find("unexpected bytes"), std::string::npos);
    EXPECT_NE(corrupt_because("").find("not a .npy file"), std::string::npos);
    EXPECT_NE(corrupt_because(encode_npy(NpyArray::from(std::vector<float>(3 * 8 * 76), {3, 8, 76}))).find("3 windows, the sidecar records 2"),
              std::string::npos);
    EXPECT_NE(corrupt_because(encode_npy(NpyArray::from(std::vector<double>(2 * 8 * 76), {2, 8, 76}))).find("3-D float32 view"),
              std::string::npos);
    write_file_atomic(seg, good);
    EXPECT_EQ(store.check_track("take1", FeatureLevel::segments).state, TrackState::complete);
    const fs::path agg = store.view_path(View::aggregated, "take1");
    const std::string good_agg = read_file(agg);
    write_npy(agg, NpyArray::from(std::vector<float>(8 * 75), {8, 75}));  // views that disagree on [L, D]
    const TrackCheck mixed = store.check_track("take1", FeatureLevel::segments);
    EXPECT_EQ(mixed.state, TrackState::corrupt);
    EXPECT_NE(mixed.reason.find(agg.string() + ": 8 layers × 75 dims, the other views have 8 × 76"), std::string::npos) << mixed.reason;
    write_file_atomic(agg, good_agg);
    EXPECT_EQ(store.check_track("take1", FeatureLevel::aggregated).state, TrackState::complete);

    fs::remove(seg);  // listed in the sidecar, but gone
    EXPECT_NE(store.check_track("take1", FeatureLevel::segments).reason.find("no such file"), std::string::npos);
    write_file_atomic(store.sidecar_path("take1"), "{corrupt");
    const TrackCheck bad_side = store.check_track("take1", FeatureLevel::aggregated);
    EXPECT_EQ(bad_side.state, TrackState::corrupt);
    EXPECT_NE(bad_side.reason.find("meta/take1.json: malformed extraction sidecar"), std::string::npos) << bad_side.reason;
}

TEST(Features, ViewsAreCheckedForTheirRank) {
    test::TempDir dir;
    const FeatureStore store = FeatureStore::of(dir.path(), "mine");
    write_view(store, View::aggregated, "take1", {2, 8, 76});  // a segments-shaped array in aggregated/
    EXPECT_THROW(store.read_view(View::aggregated, "take1"), Error);
    EXPECT_THROW(store.read_view(View::aggregated, "none"), Error);  // missing: names the file
}

// Golden values by hand: layers (3, 4) and (0, 2) normalise to (0.6, 0.8) and (0, 1); weights 1 and 0.5
// give (0.6, 1.3), whose norm is sqrt(0.36 + 1.69) = sqrt(2.05).
TEST(Features, FuseLayersGolden) {
    const float stack[] = {3, 4, 0, 2, 9, 9};
    const std::vector<double> w = {1.0, 0.5, 0.0};
    float out[2];
    fuse_layers(stack, 3, 2, w, out);
    EXPECT_NEAR(out[0], 0.6 / std::sqrt(2.05), 1e-6);
    EXPECT_NEAR(out[1], 1.3 / std::sqrt(2.05), 1e-6);
    // The float16 path over the already-normalised layers agrees.
    const std::uint16_t half[] = {float_to_half(0.6f), float_to_half(0.8f), float_to_half(0.0f), float_to_half(1.0f),
                                  float_to_half(0.5f), float_to_half(0.5f)};
    float out16[2];
    fuse_normalised_layers(half, 3, 2, w, out16);
    EXPECT_NEAR(out16[0], out[0], 1e-3);
    EXPECT_NEAR(out16[1], out[1], 1e-3);
}

TEST(Features, FuseLayersDegenerateAndInvalid) {
    const float zeros[] = {0, 0, 0, 0};
    const std::vector<double> w = {1.0, 1.0};
    float out[2] = {7, 7};
    fuse_layers(zeros, 2, 2, w, out);  // zero layers stay zero, no NaN
    EXPECT_EQ(out[0], 0.0f);
    EXPECT_EQ(out[1], 0.0f);
    EXPECT_THROW(fuse_layers(zeros, 2, 2, std::vector<double>{1.0}, out), Error);
}
