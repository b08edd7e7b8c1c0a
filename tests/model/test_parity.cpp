// Parity with the original PyTorch/transformers MERT code (tests/fixtures/mert/*/README.md):
// hidden states and conv features within 1e-4 absolute, from both weight files.
#include <cmath>

#include <gtest/gtest.h>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static const fs::path kMert = fs::path(MESS_FIXTURES_DIR) / "mert";
constexpr float kTolerance = 1e-4f;

static float max_abs_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0.0f;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

struct ParityCase {
    const char* fixture;
    const char* weights;  // "safetensors" | "bin"
};
void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.fixture << "/" << c.weights; }

class Parity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(Parity, HiddenStatesAndConvFeaturesMatchTheReference) {
    const auto& c = GetParam();
    const fs::path dir = kMert / c.fixture;
    LoadParams lp;
    lp.prefer = c.weights;
    auto model = Model::load(dir, lp);
    EXPECT_EQ(model->report().weights_format, std::string(c.weights) == "bin" ? "pytorch_bin" : "safetensors");

    NpyArray input = read_npy(dir / "input.npy");
    NpyArray expected = read_npy(dir / "hidden_states.npy");    // [L+1, T, H]
    NpyArray conv = read_npy(dir / "extract_features.npy");     // [T, C]
    ModelState state(model);
    EncodeParams p;
    p.threads = 2;
    p.keep_conv_features = true;
    auto samples = static_cast<std::int64_t>(input.count());
    HiddenStates h = state.encode(input.view<float>(), 1, samples, p);
    ASSERT_EQ(h.layers, expected.shape[0]);
    ASSERT_EQ(h.frames, expected.shape[1]);
    ASSERT_EQ(h.hidden, expected.shape[2]);
    float d = max_abs_diff(h.values, expected.view<float>());
    EXPECT_LE(d, kTolerance) << "hidden states";
    float dc = max_abs_diff(h.conv_features, conv.view<float>());
    EXPECT_LE(dc, kTolerance) << "conv features";
    RecordProperty("max_abs_diff", std::to_string(d));
    std::printf("[ parity ] %s/%s: hidden max|diff| %.3g, conv max|diff| %.3g\n", c.fixture, c.weights, d, dc);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity,
                         ::testing::Values(ParityCase{"mert95m_tiny", "safetensors"}, ParityCase{"mert95m_tiny", "bin"},
                                           ParityCase{"mert330m_tiny", "safetensors"}, ParityCase{"mert330m_tiny", "bin"},
                                           ParityCase{"mert95m_tiny_wnparam", "safetensors"},
                                           ParityCase{"mert95m_tiny_wnparam", "bin"}),
                         [](const auto& i) { return std::string(i.param.fixture) + "_" + i.param.weights; });

TEST(Preprocess, NormalisationMatchesTheHfProcessor) {
    for (const char* f : {"mert95m_tiny", "mert330m_tiny"}) {
        NpyArray raw = read_npy(kMert / f / "input.npy");
        NpyArray ref = read_npy(kMert / f / "input_values.npy");
        auto norm = normalize_waveform(raw.view<float>());
        EXPECT_LE(max_abs_diff(norm, ref.view<float>()), 1e-5f) << f;
    }
}

// The padded two-clip batch, fed the same padded (already normalised) input and valid lengths.
class PaddedBatch : public ::testing::TestWithParam<const char*> {};

TEST_P(PaddedBatch, ReproducesHuggingFacePaddingSemantics) {
    const fs::path dir = kMert / GetParam();
    auto model = Model::load(dir);
    NpyArray in = read_npy(dir / "batch_input_values.npy");   // [2, N]
    NpyArray lengths = read_npy(dir / "batch_lengths.npy");   // int32 [2]
    NpyArray expected = read_npy(dir / "batch_hidden_states.npy");  // [L+1, 2, T, H]
    std::vector<std::int64_t> valid(lengths.view<std::int32_t>().begin(), lengths.view<std::int32_t>().end());
    ModelState state(model);
    EncodeParams p;
    p.normalize = false;  // the processor already normalised each clip over its valid samples
    HiddenStates h = state.encode(in.view<float>(), 2, in.shape[1], p, valid);
    const std::int64_t L1 = h.layers, T = h.frames, H = h.hidden;
    ASSERT_EQ(expected.shape, (std::vector<std::int64_t>{L1, 2, T, H}));
    const auto ref = expected.view<float>();
    float worst = 0.0f;
    for (std::int64_t b = 0; b < 2; ++b) {
        const std::int64_t vf = model->config().frames_for(valid[static_cast<std::size_t>(b)]);
        for (std::int64_t l = 0; l < L1; ++l)
            for (std::int64_t t = 0; t < vf; ++t)  // padded frames are undefined in HF's contract
                for (std::int64_t c = 0; c < H; ++c)
                    worst = std::max(worst, std::fabs(h.values[static_cast<std::size_t>(((b * L1 + l) * T + t) * H + c)] -
                                                      ref[static_cast<std::size_t>(((l * 2 + b) * T + t) * H + c)]));
    }
    EXPECT_LE(worst, kTolerance);
    std::printf("[ parity ] %s padded batch: valid frames max|diff| %.3g\n", GetParam(), worst);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PaddedBatch, ::testing::Values("mert95m_tiny", "mert330m_tiny"));
