// Whole-recording embedding: real audio, degenerate input, batching and threading invariance.
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "mess/model.hpp"
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
