// bf16 precision against fp32 (the accuracy contract of Precision::bf16 in mess/model.hpp):
//   - every fixture (made with the original PyTorch code): per-layer cosine similarity to the expected
//     fp32 hidden states ≥ 0.999;
//   - a full-size random checkpoint: test_precision_full.cpp (label slow).
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "precision_support.hpp"
#include "support/support.hpp"

using namespace mess;
using test::worst_layer_cosine;
using test::kMinCosine;
namespace fs = std::filesystem;

namespace {

const fs::path kMert = fs::path(MESS_FIXTURES_DIR) / "mert";

}  // namespace


TEST(Precision, ParsesAndNames) {
    EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
    EXPECT_EQ(parse_precision("fp32"), Precision::fp32);
    EXPECT_STREQ(to_string(Precision::bf16), "bf16");
    EXPECT_EQ(parse_precision("fp16"), Precision::fp16);
    EXPECT_NE(test::error_message([] { parse_precision("fp8"); }, ErrorKind::usage).find("fp8"), std::string::npos);
    // fp16 is a CUDA precision; the CPU refuses it, naming the way out.
    LoadParams lp;
    lp.precision = Precision::fp16;
    EXPECT_NE(test::error_message([&] { Model::load(kMert / "mert95m_tiny", lp); }, ErrorKind::usage).find("--device cuda"), std::string::npos);
    lp.precision = Precision::fp32;
    EXPECT_NE(test::error_message([] { parse_device("tpu"); }, ErrorKind::usage).find("tpu"), std::string::npos);
    EXPECT_EQ(parse_device("cuda"), Device::cuda);
    EXPECT_STREQ(to_string(Device::cpu), "cpu");
}

TEST(Precision, Bf16FixturesStayWithinTheContract) {
    for (const char* fixture : {"mert95m_tiny", "mert330m_tiny", "mert95m_tiny_wnparam"}) {
        const fs::path dir = kMert / fixture;
        LoadParams lp;
        lp.precision = Precision::bf16;
        auto model = Model::load(dir, lp);
        EXPECT_EQ(model->precision(), Precision::bf16);
        NpyArray input = read_npy(dir / "input.npy");
        NpyArray expected = read_npy(dir / "hidden_states.npy");  // [L+1, T, H], PyTorch fp32
        ModelState state(model);
        EncodeParams p;
        p.threads = 2;
        const HiddenStates& h = state.encode(input.view<float>(), 1, static_cast<std::int64_t>(input.count()), p);
        const auto want = expected.view<float>();
        std::string report;
        const double worst = worst_layer_cosine(h.values, std::vector<float>(want.begin(), want.end()), h.layers, &report);
        std::printf("[ bf16 ] %s per-layer cosine to the PyTorch fp32 states:%s\n", fixture, report.c_str());
        EXPECT_GE(worst, kMinCosine) << fixture << report;
        // bf16 really is different arithmetic (not silently fp32).
        double max_diff = 0;
        for (std::size_t i = 0; i < want.size(); ++i) max_diff = std::max(max_diff, std::fabs(static_cast<double>(h.values[i]) - want[i]));
        EXPECT_GT(max_diff, 1e-4) << fixture;
    }
}

