// Checkpoints against the real PyTorch (Debian python3-torch): torch.load reads what mess writes, and the
// benchmark's PyTorch reference agrees with the fixtures and with mess on branches no fixture covers.
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static const fs::path kTiny = fs::path(MESS_FIXTURES_DIR) / "mert" / "mert95m_tiny";

// torch.load (the real PyTorch reader) opens what mess writes, with the same values.
TEST(CheckpointIntegration, PyTorchLoadsMessWrittenBin) {
    test::TempDir dir;
    RandomCheckpointParams p;
    p.seed = 5;
    p.format = "bin";
    write_random_checkpoint(read_file(kTiny / "config.json"), dir / "m", p);
    TensorMap t = read_torch_bin(dir / "m" / "pytorch_model.bin");
    write_safetensors(dir / "ref.safetensors", t);
    std::string code =
        "import torch, json, numpy as np, sys\n"
        "sd = torch.load(sys.argv[1], map_location='cpu')\n"
        "raw = open(sys.argv[2], 'rb').read(); n = int.from_bytes(raw[:8], 'little'); h = json.loads(raw[8:8+n])\n"
        "assert len(sd) == len(h) - 1, (len(sd), len(h))\n"
        "for k, v in h.items():\n"
        "    if k == '__metadata__': continue\n"
        "    b, e = v['data_offsets']; ref = np.frombuffer(raw[8+n+b:8+n+e], dtype='<f4').reshape(v['shape'])\n"
        "    assert np.array_equal(sd[k].numpy(), ref), k\n"
        "print('ok', len(sd))\n";
    auto r = test::run_command(std::string(MESS_PYTHON) + " -c " + test::quote(code) + " " +
                               test::quote((dir / "m" / "pytorch_model.bin").string()) + " " +
                               test::quote((dir / "ref.safetensors").string()) + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("ok 51"), std::string::npos) << r.out;
}

// The PyTorch reference used by bench/ is itself checked against the fixtures.
TEST(CheckpointIntegration, BenchmarkReferenceIsFaithful) {
    const fs::path mert = fs::path(MESS_FIXTURES_DIR) / "mert";
    auto r = test::run_command(std::string(MESS_PYTHON) + " " + test::quote(std::string(MESS_SOURCE_DIR) + "/bench/mert_reference.py") +
                               " --check " + test::quote((mert / "mert95m_tiny").string()) + " " +
                               test::quote((mert / "mert330m_tiny").string()) + " " +
                               test::quote((mert / "mert95m_tiny_wnparam").string()) + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
}

// Branches no fixture covers (feat_extract_norm "layer", conv bias, no feature-projection norm, pre-LN),
// cross-checked against the independent PyTorch reference on a random checkpoint.
TEST(CheckpointIntegration, LayerNormConvStackAgreesWithThePyTorchReference) {
    test::TempDir dir;
    auto cfg = nlohmann::json::parse(read_file(kTiny / "config.json"));
    cfg["feat_extract_norm"] = "layer";
    cfg["conv_bias"] = true;
    cfg["feat_proj_layer_norm"] = false;
    cfg["do_stable_layer_norm"] = true;
    cfg["model_type"] = "hubert";
    cfg["architectures"] = {"HubertModel"};
    RandomCheckpointParams p;
    p.seed = 11;
    write_random_checkpoint(cfg.dump(), dir / "m", p);
    auto wave = test::chord({220.0, 277.2, 329.6}, 1.5, 24000);
    auto n = test::noise(1.5, 24000, 9, 0.05f);
    for (std::size_t i = 0; i < wave.size(); ++i) wave[i] += n[i];
    write_npy(dir / "in.npy", NpyArray::from(wave, {static_cast<std::int64_t>(wave.size())}));
    auto r = test::run_command(std::string(MESS_PYTHON) + " " + test::quote(std::string(MESS_SOURCE_DIR) + "/bench/mert_reference.py") +
                               " --dump " + test::quote((dir / "m").string()) + " " + test::quote((dir / "in.npy").string()) + " " +
                               test::quote((dir / "ref.npy").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    NpyArray ref = read_npy(dir / "ref.npy");
    auto model = Model::load(dir / "m");
    ModelState state(model);
    const HiddenStates& h = state.encode(wave, 1, static_cast<std::int64_t>(wave.size()), {});
    ASSERT_EQ(ref.count(), h.values.size()) << ref.describe();
    float worst = 0;
    for (std::size_t i = 0; i < h.values.size(); ++i) worst = std::max(worst, std::fabs(h.values[i] - ref.view<float>()[i]));
    EXPECT_LE(worst, 1e-4f);
}
