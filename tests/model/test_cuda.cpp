// The CUDA backend against the CPU (run where a CUDA device is usable; skipped otherwise, saying why):
//   - fp32 on the GPU against the fixtures' PyTorch hidden states: max |diff| ≤ 1e-3 (cuBLAS sums in another
//     order than oneDNN; the CPU meets 1e-4);
//   - bf16 and fp16 on the GPU: per-layer cosine to the PyTorch fp32 states ≥ 0.999 (the precision contract);
//   - padded batches with valid_samples equal the CPU's, frame means (pooled on the device) included;
//   - out-of-memory back-off: under a memory budget that fits one window (MESS_CUDA_MEMORY_BUDGET_MB), a
//     batch of 4 still encodes, equal to batch 1.
#include <cmath>
#include <cstdlib>

#include <gtest/gtest.h>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "precision_support.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

const fs::path kMert = fs::path(MESS_FIXTURES_DIR) / "mert";

std::shared_ptr<const Model> load(const char* fixture, Precision p, Device device) {
    LoadParams lp;
    lp.precision = p;
    lp.device = device;
    return Model::load(kMert / fixture, lp);
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    double m = 0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
    return m;
}

}  // namespace

TEST(Cuda, WithoutTheBackendOrADeviceTheErrorNamesTheWayOut) {
    if (cuda_devices() > 0) GTEST_SKIP() << "a CUDA device is usable here";
    const std::string msg = test::error_message([] { load("mert95m_tiny", Precision::fp32, Device::cuda); }, ErrorKind::usage);
    EXPECT_NE(msg.find("--device cpu"), std::string::npos) << msg;
}

TEST(Cuda, Fp32MatchesTheReferenceAndLowPrecisionKeepsTheContract) {
    if (std::string why; cuda_devices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    for (const char* fixture : {"mert95m_tiny", "mert330m_tiny", "mert95m_tiny_wnparam"}) {
        NpyArray input = read_npy(kMert / fixture / "input.npy");
        NpyArray expected = read_npy(kMert / fixture / "hidden_states.npy");
        NpyArray conv = read_npy(kMert / fixture / "extract_features.npy");
        const auto want = expected.view<float>();
        const std::vector<float> want_v(want.begin(), want.end());
        EncodeParams p;
        p.keep_conv_features = true;
        for (Precision prec : {Precision::fp32, Precision::bf16, Precision::fp16}) {
            auto model = load(fixture, prec, Device::cuda);
            EXPECT_EQ(model->device(), Device::cuda);
            ModelState state(model);
            const HiddenStates& h = state.encode(input.view<float>(), 1, static_cast<std::int64_t>(input.count()), p);
            ASSERT_EQ(h.values.size(), want.size());
            std::string report;
            const double worst = test::worst_layer_cosine(h.values, want_v, h.layers, &report);
            std::printf("[ cuda ] %s %s: max|diff| %.3g, per-layer cosine%s\n", fixture, to_string(prec), max_abs_diff(h.values, want), report.c_str());
            if (prec == Precision::fp32) {
                EXPECT_LE(max_abs_diff(h.values, want), 1e-3) << fixture;
                EXPECT_LE(max_abs_diff(h.conv_features, conv.view<float>()), 1e-3) << fixture;
            }
            EXPECT_GE(worst, test::kMinCosine) << fixture << " " << to_string(prec) << report;
        }
    }
}

TEST(Cuda, PaddedBatchesEqualTheCpu) {
    if (std::string why; cuda_devices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto cpu = load("mert95m_tiny", Precision::fp32, Device::cpu), gpu = load("mert95m_tiny", Precision::fp32, Device::cuda);
    const auto a = test::music(3, 2.0), b = test::music(4, 1.2);
    const std::int64_t n = static_cast<std::int64_t>(a.size());
    std::vector<float> batch(a);
    batch.insert(batch.end(), b.begin(), b.end());
    batch.resize(static_cast<std::size_t>(2 * n), 0.0f);
    const std::vector<std::int64_t> valid = {n, static_cast<std::int64_t>(b.size())};
    ModelState sc(cpu), sg(gpu);
    EncodeParams both;
    both.frame_means = true;
    const HiddenStates want = sc.encode(batch, 2, n, both, valid);
    const HiddenStates& got = sg.encode(batch, 2, n, both, valid);
    EXPECT_LE(max_abs_diff(got.values, want.values), 1e-3);
    EXPECT_LE(max_abs_diff(got.means, want.means), 1e-3);  // over each clip's valid frames, pooled on the device
    EncodeParams only_means;
    only_means.frames = false;
    only_means.frame_means = true;
    const HiddenStates& lean = sg.encode(batch, 2, n, only_means, valid);
    EXPECT_TRUE(lean.values.empty());
    EXPECT_LE(max_abs_diff(lean.means, want.means), 1e-3);
}

TEST(Cuda, OutOfMemoryHalvesTheBatch) {
    if (std::string why; cuda_devices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto gpu = load("mert95m_tiny", Precision::bf16, Device::cuda);
    std::vector<float> batch;
    for (std::uint32_t i = 0; i < 4; ++i) {
        const auto clip = test::music(10 + i, 5.0);
        batch.insert(batch.end(), clip.begin(), clip.end());
    }
    const std::int64_t n = static_cast<std::int64_t>(batch.size() / 4);
    ModelState one(gpu);
    std::vector<float> want;
    for (std::int64_t i = 0; i < 4; ++i) {
        const auto& h = one.encode(std::span<const float>(batch).subspan(static_cast<std::size_t>(i * n), static_cast<std::size_t>(n)), 1, n, {});
        want.insert(want.end(), h.values.begin(), h.values.end());
    }
    ::setenv("MESS_CUDA_MEMORY_BUDGET_MB", "9", 1);  // the tiny model: one 5-s window needs 8.7 MB of scratch, two 9.8 MB
    ModelState capped(gpu);
    const HiddenStates& got = capped.encode(batch, 4, n, {});
    ::unsetenv("MESS_CUDA_MEMORY_BUDGET_MB");
    EXPECT_EQ(got.batch, 4);
    EXPECT_LE(max_abs_diff(got.values, want), 1e-5);
    ::setenv("MESS_CUDA_MEMORY_BUDGET_MB", "1", 1);  // not even one window
    ModelState starved(gpu);
    const std::string msg = test::error_message([&] { starved.encode(batch, 4, n, {}); }, ErrorKind::input);
    ::unsetenv("MESS_CUDA_MEMORY_BUDGET_MB");
    EXPECT_NE(msg.find("one window does not fit"), std::string::npos) << msg;
}
