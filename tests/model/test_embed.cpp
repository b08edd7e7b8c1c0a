// Whole-recording embedding: real audio, degenerate input, batching and threading invariance.
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "precision_support.hpp"
#include "support/support.hpp"

using namespace mess;

static const std::filesystem::path kTiny = std::filesystem::path(MESS_FIXTURES_DIR) / "mert" / "mert95m_tiny";

TEST(Embed, RealRecordingGivesOneStatePerWindowAndIsBatchInvariant) {
    auto model = Model::load(kTiny);
    ModelState state(model);
    Audio audio = load_audio(test::kRealRecording);
    EmbedParams one;
    one.batch_size = 1;
    EmbedParams four;
    Embedding a = embed_audio(*model, state, audio, one, {});
    Embedding b = embed_audio(*model, state, audio, four, {});
    ASSERT_EQ(a.windows.size(), 2u);
    EXPECT_EQ(a.states.batch, 2);
    EXPECT_EQ(a.states.layers, 3);
    EXPECT_EQ(a.states.frames, 374);
    EXPECT_NEAR(a.windows[1].start_sec, audio.duration_sec() - 5.0, 1e-9);
    for (float v : a.states.values) ASSERT_TRUE(std::isfinite(v));
    float worst = 0;
    for (std::size_t i = 0; i < a.states.values.size(); ++i) worst = std::max(worst, std::fabs(a.states.values[i] - b.states.values[i]));
    EXPECT_LE(worst, 1e-5f);  // batching equal-length windows does not change results

    EncodeParams two;
    two.threads = 2;
    Embedding c = embed_audio(*model, state, audio, four, two);
    worst = 0;
    for (std::size_t i = 0; i < a.states.values.size(); ++i) worst = std::max(worst, std::fabs(a.states.values[i] - c.states.values[i]));
    EXPECT_LE(worst, 1e-5f);

    auto seg = pool_frames(a.states);
    EXPECT_EQ(seg.size(), 2u * 3 * 32);
    auto agg = pool_windows(seg, 2, 3 * 32);
    EXPECT_NEAR(agg[5], 0.5f * (seg[5] + seg[96 + 5]), 1e-6f);
}

// The mean over each clip's valid frames, in double, from [batch, layers, frames, hidden] states.
static std::vector<float> means_over(std::span<const float> states, std::int64_t batch, std::int64_t layers, std::int64_t frames,
                                     std::int64_t hidden, const std::vector<std::int64_t>& valid_frames) {
    std::vector<float> out;
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t l = 0; l < layers; ++l)
            for (std::int64_t c = 0; c < hidden; ++c) {
                double sum = 0;
                for (std::int64_t t = 0; t < valid_frames[static_cast<std::size_t>(b)]; ++t)
                    sum += states[static_cast<std::size_t>(((b * layers + l) * frames + t) * hidden + c)];
                out.push_back(static_cast<float>(sum / static_cast<double>(valid_frames[static_cast<std::size_t>(b)])));
            }
    return out;
}

TEST(Embed, FrameMeansMatchTheReferenceStatesPooled) {
    // Golden: the PyTorch hidden states of a padded batch (fixtures/mert/mert95m_tiny/README.md), averaged here
    // over each clip's valid frames.
    auto model = Model::load(kTiny);
    ModelState state(model);
    NpyArray in = read_npy(kTiny / "batch_input_values.npy");          // [2, N], normalised per clip
    NpyArray lengths = read_npy(kTiny / "batch_lengths.npy");          // int32 [2]
    NpyArray expected = read_npy(kTiny / "batch_hidden_states.npy");   // [L+1, 2, T, H]
    const std::vector<std::int64_t> valid(lengths.view<std::int32_t>().begin(), lengths.view<std::int32_t>().end());
    ASSERT_EQ(expected.shape.size(), 4u);
    const std::int64_t L1 = expected.shape[0], T = expected.shape[2], H = expected.shape[3];
    std::vector<float> by_clip;  // [2, L+1, T, H]
    const auto ref = expected.view<float>();
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t l = 0; l < L1; ++l)
            by_clip.insert(by_clip.end(), ref.begin() + ((l * 2 + b) * T) * H, ref.begin() + ((l * 2 + b + 1) * T) * H);
    const auto want = means_over(by_clip, 2, L1, T, H, {model->config().frames_for(valid[0]), model->config().frames_for(valid[1])});

    EncodeParams only_means;
    only_means.normalize = false;  // the processor already normalised each clip over its valid samples
    only_means.frames = false;
    only_means.frame_means = true;
    const HiddenStates& h = state.encode(in.view<float>(), 2, in.shape[1], only_means, valid);
    EXPECT_TRUE(h.values.empty());
    ASSERT_EQ(h.means.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(h.means[i], want[i], 1e-4f) << i;
}

TEST(Embed, FrameMeansSkipPaddedFramesAndNeedNoFrames) {
    auto model = Model::load(kTiny);
    ModelState state(model);
    const auto a = test::music(3, 2.0), b = test::music(4, 1.2);
    const auto n = static_cast<std::int64_t>(a.size());
    std::vector<float> batch(a);
    batch.insert(batch.end(), b.begin(), b.end());
    batch.resize(static_cast<std::size_t>(2 * n), 0.0f);
    const std::vector<std::int64_t> valid = {n, static_cast<std::int64_t>(b.size())};
    const std::vector<std::int64_t> valid_frames = {model->config().frames_for(valid[0]), model->config().frames_for(valid[1])};
    ASSERT_LT(valid_frames[1], valid_frames[0]);

    EncodeParams both;
    both.frame_means = true;
    const HiddenStates full = state.encode(batch, 2, n, both, valid);
    ASSERT_EQ(full.means.size(), static_cast<std::size_t>(2 * full.layers * full.hidden));
    EXPECT_EQ(full.means, means_over(full.values, 2, full.layers, full.frames, full.hidden, valid_frames));

    EncodeParams only_means;
    only_means.frames = false;
    only_means.frame_means = true;
    const HiddenStates& lean = state.encode(batch, 2, n, only_means, valid);
    EXPECT_TRUE(lean.values.empty());
    EXPECT_EQ(lean.frames, full.frames);
    EXPECT_EQ(lean.means, full.means);

    EncodeParams nothing;
    nothing.frames = false;
    EXPECT_NE(test::error_message([&] { state.encode(batch, 2, n, nothing, valid); }, ErrorKind::usage).find("neither"), std::string::npos);
}

TEST(Embed, WithoutFramesOnlyTheSegmentsAreKept) {
    auto model = Model::load(kTiny);
    ModelState state(model);
    Audio audio = load_audio(test::kRealRecording);
    const Embedding full = embed_audio(*model, state, audio, {}, {});
    EmbedParams lean_params;
    lean_params.keep_frames = false;
    const Embedding lean = embed_audio(*model, state, audio, lean_params, {});
    EXPECT_EQ(full.segments, pool_frames(full.states));  // windows have no padding: every frame counts
    EXPECT_EQ(lean.segments, full.segments);
    EXPECT_TRUE(lean.states.values.empty());
    EXPECT_EQ(lean.states.batch, 2);
    EXPECT_EQ(lean.states.frames, 374);
    EXPECT_EQ(lean.windows.size(), full.windows.size());
    EXPECT_NE(test::error_message([&] { pool_frames(lean.states); }, ErrorKind::usage).find("not kept"), std::string::npos);
}

TEST(Embed, SilenceAndShortAudio) {
    auto model = Model::load(kTiny);
    ModelState state(model);
    Audio silent{std::vector<float>(36000, 0.0f), 24000};  // 1.5 s: one short window
    Embedding e = embed_audio(*model, state, silent, {}, {});
    EXPECT_EQ(e.states.batch, 1);
    EXPECT_EQ(e.states.frames, model->config().frames_for(36000));
    for (float v : e.states.values) ASSERT_TRUE(std::isfinite(v));

    Audio tiny{std::vector<float>(399, 0.1f), 24000};
    EXPECT_THROW(embed_audio(*model, state, tiny, {}, {}), Error);
    Audio empty{{}, 24000};
    EXPECT_THROW(embed_audio(*model, state, empty, {}, {}), Error);
    Audio wrong_rate{std::vector<float>(48000, 0.0f), 48000};
    EXPECT_THROW(embed_audio(*model, state, wrong_rate, {}, {}), Error);
}

TEST(Embed, InvalidEncodeParameters) {
    auto model = Model::load(kTiny);
    ModelState state(model);
    std::vector<float> x(24000, 0.1f);
    EncodeParams bad;
    bad.threads = 0;
    EXPECT_THROW(state.encode(x, 1, 24000, bad), Error);
    EXPECT_THROW(state.encode(x, 2, 24000, {}), Error);     // size mismatch
    EXPECT_THROW(state.encode(x, 1, 300, {}), Error);       // shorter than one frame
    std::vector<std::int64_t> too_long = {30000};
    EXPECT_THROW(state.encode(x, 1, 24000, {}, too_long), Error);
}

TEST(Embed, OneModelSharedByThreadsEachWithItsState) {
    auto model = Model::load(kTiny);
    auto wave = test::noise(2.0, 24000, 21);
    ModelState ref_state(model);
    const std::vector<float> ref = ref_state.encode(wave, 1, 48000, {}).values;
    std::vector<std::vector<float>> got(3);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < got.size(); ++i)
        threads.emplace_back([&, i] {
            ModelState s(model);  // weights shared read-only; scratch per thread
            for (int rep = 0; rep < 3; ++rep) got[i] = s.encode(wave, 1, 48000, {}).values;
        });
    for (auto& t : threads) t.join();
    for (const auto& g : got) EXPECT_EQ(g, ref);
}
