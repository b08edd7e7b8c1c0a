// The extraction pipeline on generated audio with the tiny fixture model.
#include <cmath>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/extract.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static const fs::path kTiny = fs::path(MESS_FIXTURES_DIR) / "mert" / "mert95m_tiny";

class Extract : public ::testing::Test {
protected:
    test::TempDir dir;
    std::shared_ptr<const Encoder> model = open_encoder(kTiny.string());
    std::vector<ExtractItem> items;
    FeatureStore store{dir / "emb", dir.path()};

    void SetUp() override {
        fs::create_directories(dir / "audio");
        const double seconds[] = {7.3, 12.0, 3.0, 5.0};
        for (int i = 0; i < 4; ++i) {
            fs::path p = dir / "audio" / fmt::format("track{}.flac", i);
            auto x = test::chord({220.0 * (i + 1), 330.0 * (i + 1)}, seconds[i], 44100);
            test::write_sound(p, x, 1, 44100, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
            items.push_back({fmt::format("track{}", i), p});
        }
    }
};

TEST_F(Extract, ViewsEqualADirectEmbeddingAndSidecarsRecordTrueWindows) {
    ExtractParams p;
    p.level = FeatureLevel::all;
    ExtractReport r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 4);
    EXPECT_TRUE(r.failed.empty());
    EXPECT_EQ(r.windows, 2 + 4 + 1 + 1);

    auto mert = Model::load(kTiny);
    ModelState state(mert);
    Embedding direct = embed_audio(*mert, state, load_audio(items[1].audio_path), {}, {});
    NpyArray raw = read_npy(store.view_path(View::raw, "track1"));
    NpyArray seg = read_npy(store.view_path(View::segments, "track1"));
    NpyArray agg = read_npy(store.view_path(View::aggregated, "track1"));
    EXPECT_EQ(raw.describe(), "float32 [4, 3, 374, 32]");
    EXPECT_EQ(seg.describe(), "float32 [4, 3, 32]");
    EXPECT_EQ(agg.describe(), "float32 [3, 32]");
    auto rv = raw.view<float>();
    EXPECT_EQ(std::vector<float>(rv.begin(), rv.end()), direct.states.values);
    auto expected_seg = pool_frames(direct.states);
    auto sv = seg.view<float>();
    EXPECT_EQ(std::vector<float>(sv.begin(), sv.end()), expected_seg);
    auto expected_agg = pool_windows(expected_seg, 4, 3 * 32);
    auto av = agg.view<float>();
    EXPECT_EQ(std::vector<float>(av.begin(), av.end()), expected_agg);

    auto side = nlohmann::json::parse(read_file(store.sidecar_path("track1")));
    ASSERT_EQ(side["windows"].size(), 4u);
    EXPECT_DOUBLE_EQ(side["windows"][3]["start_sec"].get<double>(), 7.0);  // 12 s: 0, 2.5, 5, then the tail at 7
    EXPECT_EQ(side["views"], nlohmann::json({"raw", "segments", "aggregated"}));
    auto short_side = nlohmann::json::parse(read_file(store.sidecar_path("track2")));
    EXPECT_DOUBLE_EQ(short_side["windows"][0]["end_sec"].get<double>(), 3.0);  // one short window
    EXPECT_TRUE(store.is_complete("track1", FeatureLevel::all));
    // The sidecar's reader: the audio path is stored relative to the data root and resolves back.
    const Sidecar typed = store.read_sidecar("track1");
    EXPECT_EQ(typed.audio_path, fs::path("audio/track1.flac"));
    EXPECT_EQ(store.audio_path(typed), dir / "audio/track1.flac");
    EXPECT_EQ(typed.num_windows, 4);
    EXPECT_EQ(typed.views, (std::vector<View>{View::raw, View::segments, View::aggregated}));
}

TEST_F(Extract, LevelsAndFloat16Raw) {
    ExtractParams p;
    p.level = FeatureLevel::aggregated;
    extract_tracks(items, store, *model, p);
    EXPECT_FALSE(fs::exists(store.view_path(View::segments, "track0")));
    EXPECT_TRUE(store.is_complete("track0", FeatureLevel::aggregated));
    EXPECT_FALSE(store.is_complete("track0", FeatureLevel::segments));  // a higher level recomputes
    p.level = FeatureLevel::all;
    p.raw_float16 = true;
    ExtractReport r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 4);
    NpyArray raw = read_npy(store.view_path(View::raw, "track0"));
    EXPECT_EQ(raw.dtype, DType::f16);
    EXPECT_EQ(raw.shape, (std::vector<std::int64_t>{2, 3, 374, 32}));
}

TEST_F(Extract, ResumeSkipsCompleteTracksAndForceRecomputes) {
    ExtractParams p;
    extract_tracks(items, store, *model, p);
    fs::remove(store.sidecar_path("track3"));  // as if the run died before finishing track3
    ExtractReport r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 1);
    EXPECT_EQ(r.cached, 3);
    p.force = true;
    r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 4);
    EXPECT_EQ(r.cached, 0);
}

TEST_F(Extract, TruncatedViewIsRecomputedAndTheReportSaysWhy) {
    ExtractParams p;
    extract_tracks(items, store, *model, p);
    const fs::path seg = store.view_path(View::segments, "track1");
    const std::string before = read_file(seg);
    fs::resize_file(seg, before.size() - 100);  // a disk that filled up, a copy cut short
    ExtractReport r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 0);
    EXPECT_EQ(r.cached, 3);
    ASSERT_EQ(r.recomputed.size(), 1u);
    EXPECT_EQ(r.recomputed[0].track_id, "track1");
    EXPECT_EQ(r.recomputed[0].cause, TrackState::corrupt);
    EXPECT_NE(r.recomputed[0].reason.find(seg.string() + ": truncated data"), std::string::npos) << r.recomputed[0].reason;
    EXPECT_EQ(read_file(seg), before);  // the same features again
    const auto j = r.to_json();
    EXPECT_EQ(j["recomputed_corrupt"], 1);
    EXPECT_EQ(j["recomputed_source_changed"], 0);
    EXPECT_EQ(j["recomputed"][0]["cause"], "corrupt");
    EXPECT_EQ(extract_tracks(items, store, *model, p).cached, 4);  // and now it is whole
}

TEST_F(Extract, ChangedAudioIsRecomputedAndUnchangedAudioIsNot) {
    ExtractParams p;
    extract_tracks(items, store, *model, p);
    const Sidecar side = store.read_sidecar("track0");
    ASSERT_TRUE(side.audio_stamp.has_value());
    EXPECT_EQ(*side.audio_stamp, file_stamp(items[0].audio_path));
    const std::string old_segments = read_file(store.view_path(View::segments, "track0"));
    // track0: new content (and size); track3: the same bytes, written again later (only the time differs).
    test::write_sound(items[0].audio_path, test::chord({523.0, 784.0}, 7.3, 44100), 1, 44100, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    fs::last_write_time(items[3].audio_path, fs::last_write_time(items[3].audio_path) + std::chrono::seconds(5));
    ExtractReport r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 0);
    EXPECT_EQ(r.cached, 2);
    ASSERT_EQ(r.recomputed.size(), 2u);
    EXPECT_EQ(r.recomputed[0].track_id, "track0");
    EXPECT_EQ(r.recomputed[0].cause, TrackState::source_changed);
    EXPECT_NE(r.recomputed[0].reason.find("track0.flac: size"), std::string::npos) << r.recomputed[0].reason;
    EXPECT_EQ(r.recomputed[1].track_id, "track3");
    EXPECT_NE(r.recomputed[1].reason.find("modified 5.000 s later"), std::string::npos) << r.recomputed[1].reason;
    EXPECT_EQ(r.to_json()["recomputed_source_changed"], 2);
    EXPECT_NE(read_file(store.view_path(View::segments, "track0")), old_segments);  // features of the new audio
    EXPECT_EQ(*store.read_sidecar("track0").audio_stamp, file_stamp(items[0].audio_path));
    EXPECT_EQ(extract_tracks(items, store, *model, p).cached, 4);
}

TEST_F(Extract, AnotherBuildOfTheEncoderIsRecomputed) {
    // A built-in encoder records its digest; a sidecar whose digest differs (features of another build:
    // other code or calibration) or that records none is recomputed, an equal one is kept.
    const auto dsp = open_encoder("dsp");
    const std::vector<float> digest = fingerprint_digest(encoder_fingerprint(*dsp));
    ASSERT_EQ(digest.size(), 16u);
    ExtractParams p;
    extract_tracks(items, store, *dsp, p);
    EXPECT_EQ(store.read_sidecar("track0").encoder_digest, digest);
    auto rewrite = [&](const std::string& track, const std::vector<float>& d) {
        Sidecar side = store.read_sidecar(track);
        side.encoder_digest = d;
        write_file_atomic(store.sidecar_path(track), side.to_json_text());
    };
    std::vector<float> moved = digest;
    moved[3] += 0.01f * std::abs(moved[3]) + 0.01f;
    rewrite("track0", moved);
    rewrite("track2", {});
    ExtractReport r = extract_tracks(items, store, *dsp, p);
    EXPECT_EQ(r.cached, 2);
    ASSERT_EQ(r.recomputed.size(), 2u);
    EXPECT_EQ(r.recomputed[0].cause, TrackState::source_changed);
    EXPECT_NE(r.recomputed[0].reason.find("the encoder 'dsp' changed since extraction"), std::string::npos) << r.recomputed[0].reason;
    EXPECT_NE(r.recomputed[1].reason.find("extracted before the encoder's digest was recorded"), std::string::npos) << r.recomputed[1].reason;
    EXPECT_EQ(store.read_sidecar("track0").encoder_digest, digest);
    EXPECT_EQ(extract_tracks(items, store, *dsp, p).cached, 4);
    // A checkpoint records no digest and is never recomputed for it.
    ExtractParams force;
    force.force = true;
    extract_tracks(items, store, *model, force);
    EXPECT_TRUE(store.read_sidecar("track1").encoder_digest.empty());
    EXPECT_EQ(extract_tracks(items, store, *model, p).cached, 4);
}

TEST_F(Extract, SidecarsFromBeforeAudioStampsAreTrusted) {
    std::vector<ExtractItem> one = {items[2]};
    extract_tracks(one, store, *model, {});
    auto j = nlohmann::json::parse(read_file(store.sidecar_path("track2")));
    j.erase("audio_size_bytes");
    j.erase("audio_mtime_ns");
    write_file_atomic(store.sidecar_path("track2"), j.dump(2));  // as an older MESS wrote it
    fs::last_write_time(items[2].audio_path, fs::last_write_time(items[2].audio_path) + std::chrono::seconds(5));
    ExtractReport r = extract_tracks(one, store, *model, {});
    EXPECT_EQ(r.cached, 1);  // no stamp to compare with: kept, as documented in mess/features.hpp
    EXPECT_TRUE(r.recomputed.empty());
}

// A changed or damaged track of another precision is refused like a complete one: recomputing it alone
// would mix precisions in the store.
TEST_F(Extract, RecomputingNeverMixesPrecisions) {
    std::vector<ExtractItem> one = {items[2]};
    extract_tracks(one, store, *model, {});
    auto j = nlohmann::json::parse(read_file(store.sidecar_path("track2")));
    j["precision"] = "bf16";  // as if an earlier run used --precision bf16
    write_file_atomic(store.sidecar_path("track2"), j.dump(2));
    fs::last_write_time(items[2].audio_path, fs::last_write_time(items[2].audio_path) + std::chrono::seconds(5));
    ExtractReport r = extract_tracks(one, store, *model, {});
    ASSERT_EQ(r.failed.size(), 1u);
    EXPECT_NE(r.failed[0].reason.find("extracted in bf16 and this run computes fp32"), std::string::npos) << r.failed[0].reason;
    EXPECT_TRUE(r.recomputed.empty());
    ExtractParams force;
    force.force = true;
    EXPECT_EQ(extract_tracks(one, store, *model, force).processed, 1);
}

TEST_F(Extract, CorruptFilesAreReportedAndSkipped) {
    write_file_atomic(dir / "audio/bad.wav", "not audio at all");
    write_file_atomic(dir / "audio/tiny.wav", "");
    items.push_back({"bad", dir / "audio/bad.wav"});
    items.push_back({"tiny", dir / "audio/tiny.wav"});
    items.push_back({"missing", dir / "audio/missing.flac"});
    ExtractParams p;
    p.workers = 2;
    ExtractReport r = extract_tracks(items, store, *model, p);
    EXPECT_EQ(r.processed, 4);
    ASSERT_EQ(r.failed.size(), 3u);
    EXPECT_EQ(r.failed[0].track_id, "bad");
    EXPECT_NE(r.failed[0].reason.find("not a recognised audio format"), std::string::npos);
    EXPECT_NE(r.failed[1].reason.find("no such file"), std::string::npos);
    EXPECT_NE(r.failed[2].reason.find("empty"), std::string::npos);
    EXPECT_FALSE(fs::exists(store.sidecar_path("bad")));
    auto j = r.to_json();
    EXPECT_EQ(j["num_failed"], 3);
    EXPECT_GT(j["model_busy_share"].get<double>(), 0.0);
}

TEST_F(Extract, ShardsPartitionTheTracks) {
    std::vector<ExtractItem> many;
    for (int i = 0; i < 200; ++i) many.push_back({fmt::format("t{}", i), ""});
    std::set<std::string> seen;
    for (int s = 0; s < 3; ++s) {
        Shard sh = Shard::parse(fmt::format("{}/3", s));
        int n = 0;
        for (const auto& it : many)
            if (sh.contains(it.track_id)) {
                EXPECT_TRUE(seen.insert(it.track_id).second);
                ++n;
            }
        EXPECT_GT(n, 40);  // roughly a third each
    }
    EXPECT_EQ(seen.size(), 200u);
    for (const char* bad : {"3/3", "-1/2", "1", "a/b", "1/0", "0/2x"}) EXPECT_THROW(Shard::parse(bad), Error) << bad;
}

TEST_F(Extract, StaleTempFilesFromAKilledRunAreRemoved) {
    fs::create_directories(store.root() / "segments");
    write_file_atomic(store.root() / "segments/.track0.npy.tmp.AbC123", "half-written");
    ExtractParams p;
    extract_tracks(items, store, *model, p);
    EXPECT_FALSE(fs::exists(store.root() / "segments/.track0.npy.tmp.AbC123"));
    EXPECT_TRUE(store.is_complete("track0", FeatureLevel::segments));
}

TEST_F(Extract, InvalidParameters) {
    ExtractParams p;
    p.workers = 0;
    EXPECT_THROW(extract_tracks(items, store, *model, p), Error);
    EXPECT_THROW(parse_feature_level("everything"), Error);
    ExtractReport r = extract_tracks({}, store, *model, {});  // nothing to do is fine
    EXPECT_EQ(r.tracks_total, 0);
}

// The one minimum duration holds for extraction too, and digital silence is extracted but flagged.
TEST_F(Extract, TooShortIsRefusedAndSilenceIsFlagged) {
    test::write_sound(dir / "audio/blip.flac", test::tone(440.0, 0.5, 44100), 1, 44100, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    test::write_sound(dir / "audio/hush.flac", std::vector<float>(44100 * 3, 0.0f), 1, 44100, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    const std::vector<ExtractItem> odd = {{"blip", dir / "audio/blip.flac"}, {"hush", dir / "audio/hush.flac"}};
    const ExtractReport r = extract_tracks(odd, store, *model, ExtractParams{});
    ASSERT_EQ(r.failed.size(), 1u);
    EXPECT_EQ(r.failed[0].track_id, "blip");
    EXPECT_NE(r.failed[0].reason.find("too short"), std::string::npos) << r.failed[0].reason;
    EXPECT_EQ(r.silent, std::vector<std::string>{"hush"});
    EXPECT_TRUE(store.is_complete("hush", FeatureLevel::segments));
    EXPECT_EQ(r.to_json()["silent"], nlohmann::json({"hush"}));
}
