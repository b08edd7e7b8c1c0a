// Hostile checkpoints, weight formats and random checkpoints. Every bad input must give Error(input)
// naming the file and the tensor or key, never a crash.
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static const fs::path kTiny = fs::path(MESS_FIXTURES_DIR) / "mert" / "mert95m_tiny";

// A copy of the tiny fixture's config + preprocessor in a temp dir, with weights given by the test.
static void write_model_dir(const fs::path& dir, const TensorMap& tensors, const std::string& config = "") {
    write_file_atomic(dir / "config.json", config.empty() ? read_file(kTiny / "config.json") : config);
    write_file_atomic(dir / "preprocessor_config.json", read_file(kTiny / "preprocessor_config.json"));
    write_safetensors(dir / "model.safetensors", tensors);
}

static std::string load_error(const fs::path& dir, LoadParams lp = {}) {
    return test::error_message([&] { Model::load(dir, lp); });
}

static void expect_contains(const std::string& text, const std::string& needle) {
    EXPECT_NE(text.find(needle), std::string::npos) << "'" << needle << "' not in: " << text;
}

TEST(Checkpoint, ArchitectureTableOfMertV1_95MHasThePublishedParameterCount) {
    // reference/mert.md §1: 94,371,712 parameters in 211 tensors (incl. masked_spec_embed).
    ModelConfig c = ModelConfig::parse(preset_config_json("mert-v1-95m"), "", "preset");
    auto table = architecture_table(c);
    std::int64_t params = 0;
    for (const auto& t : table) {
        std::int64_t n = 1;
        for (auto d : t.shape) n *= d;
        params += n;
    }
    EXPECT_EQ(table.size(), 211u);
    EXPECT_EQ(params, 94371712);
    EXPECT_EQ(c.frames_for(120000), 374);  // 5 s at 24 kHz
    EXPECT_EQ(c.frames_for(24000), 74);
    EXPECT_EQ(c.min_samples(), 400);
}

TEST(Checkpoint, MissingUnexpectedMisShapedAndNaNTensorsAreNamed) {
    TensorMap good = read_safetensors(kTiny / "model.safetensors");
    test::TempDir dir;
    {
        TensorMap t = good;
        t.erase("encoder.layers.1.attention.q_proj.weight");
        write_model_dir(dir.path(), t);
        expect_contains(load_error(dir.path()), "missing tensor(s) 'encoder.layers.1.attention.q_proj.weight'");
    }
    {
        TensorMap t = good;
        t["encoder.layers.7.attention.q_proj.weight"] = t.at("encoder.layers.1.attention.q_proj.weight");
        write_model_dir(dir.path(), t);
        expect_contains(load_error(dir.path()), "unexpected tensor(s) 'encoder.layers.7.attention.q_proj.weight'");
    }
    {
        TensorMap t = good;
        auto& w = t.at("feature_projection.projection.weight");
        w.shape = {16, 32};  // transposed
        write_model_dir(dir.path(), t);
        std::string e = load_error(dir.path());
        expect_contains(e, "'feature_projection.projection.weight' has shape [16, 32], expected [32, 16]");
        expect_contains(e, "model.safetensors");
    }
    {
        TensorMap t = good;
        t.at("encoder.layers.0.feed_forward.output_dense.bias").values[3] = std::nanf("");
        write_model_dir(dir.path(), t);
        expect_contains(load_error(dir.path()), "'encoder.layers.0.feed_forward.output_dense.bias' holds 1 NaN/Inf");
    }
}

TEST(Checkpoint, ConfigProblemsAreNamed) {
    TensorMap good = read_safetensors(kTiny / "model.safetensors");
    test::TempDir dir;
    auto cfg = nlohmann::json::parse(read_file(kTiny / "config.json"));
    cfg["architectures"] = {"Wav2Vec2ForCTC"};
    cfg["model_type"] = "wav2vec2";
    write_model_dir(dir.path(), good, cfg.dump());
    expect_contains(load_error(dir.path()), "unsupported architecture (model_type 'wav2vec2'");

    write_model_dir(dir.path(), good, "{\"hidden_size\": ");
    expect_contains(load_error(dir.path()), "config.json is not valid JSON");

    cfg = nlohmann::json::parse(read_file(kTiny / "config.json"));
    cfg["hidden_size"] = 1.8e20;  // found by fuzzing: was converted to int (undefined behaviour)
    write_model_dir(dir.path(), good, cfg.dump());
    expect_contains(load_error(dir.path()), "'hidden_size' = 1.8e+20 is out of range");

    cfg = nlohmann::json::parse(read_file(kTiny / "config.json"));
    cfg["num_attention_heads"] = 5;
    write_model_dir(dir.path(), good, cfg.dump());
    expect_contains(load_error(dir.path()), "not divisible by num_attention_heads 5");

    cfg = nlohmann::json::parse(read_file(kTiny / "config.json"));
    cfg["hidden_size"] = "big";
    write_model_dir(dir.path(), good, cfg.dump());
    expect_contains(load_error(dir.path()), "wrong type");

    cfg = nlohmann::json::parse(read_file(kTiny / "config.json"));
    cfg["hidden_size"] = 64;  // weights are for 32
    write_model_dir(dir.path(), good, cfg.dump());
    expect_contains(load_error(dir.path()), "expected [64");

    fs::remove(dir / "config.json");
    expect_contains(load_error(dir.path()), "config.json is missing");
    expect_contains(load_error(dir / "nope"), "not a model directory");
}

TEST(Checkpoint, TruncatedAndCorruptWeightFilesAreNamed) {
    test::TempDir dir;
    std::string st = read_file(kTiny / "model.safetensors");
    std::string bin = read_file(kTiny / "pytorch_model.bin");
    write_file_atomic(dir / "config.json", read_file(kTiny / "config.json"));
    LoadParams prefer_bin;
    prefer_bin.prefer = "bin";

    write_file_atomic(dir / "model.safetensors", st.substr(0, st.size() / 2));
    expect_contains(load_error(dir.path()), "data_offsets out of the file's bounds");
    write_file_atomic(dir / "model.safetensors", st.substr(0, 5));
    expect_contains(load_error(dir.path()), "truncated safetensors");
    std::string huge = st;
    huge[6] = '\x7f';
    write_file_atomic(dir / "model.safetensors", huge);
    expect_contains(load_error(dir.path()), "header length");
    fs::remove(dir / "model.safetensors");

    write_file_atomic(dir / "pytorch_model.bin", bin.substr(0, bin.size() / 2));
    std::string e = load_error(dir.path(), prefer_bin);
    expect_contains(e, "pytorch_model.bin");
    expect_contains(e, "zip archive");
    write_file_atomic(dir / "pytorch_model.bin", std::string("\x80\x02\x8a\x0alegacy torch file", 20));
    expect_contains(load_error(dir.path(), prefer_bin), "legacy");
    write_file_atomic(dir / "pytorch_model.bin", "");
    expect_contains(load_error(dir.path(), prefer_bin), "empty file");
}

TEST(Checkpoint, PickleWithForbiddenGlobalIsRefusedWithoutRunningIt) {
    test::TempDir dir;
    write_file_atomic(dir / "config.json", read_file(kTiny / "config.json"));
    fs::path marker = dir / "pwned";
    // A classic payload: os.system("touch <marker>") via GLOBAL + REDUCE.
    std::string evil = "\x80\x02" "cos\nsystem\n" "X" + std::string(1, '\0') + "\0\0\0";
    std::string cmd = "touch " + marker.string();
    evil = std::string("\x80\x02", 2) + "cos\nsystem\nX";
    for (int i = 0; i < 4; ++i) evil += static_cast<char>((cmd.size() >> (8 * i)) & 0xff);
    evil += cmd + "\x85R.";
    write_zip(dir / "pytorch_model.bin", {{"archive/data.pkl", evil}, {"archive/version", "3\n"}}, false);
    std::string e = load_error(dir.path());
    expect_contains(e, "forbidden global 'os.system'");
    EXPECT_FALSE(fs::exists(marker));

    std::string builtin = std::string("\x80\x02", 2) + "cbuiltins\neval\n.";
    write_zip(dir / "pytorch_model.bin", {{"archive/data.pkl", builtin}}, false);
    expect_contains(load_error(dir.path()), "forbidden global 'builtins.eval'");

    std::string bad_op = std::string("\x80\x02", 2) + "i";  // INST opcode
    write_zip(dir / "pytorch_model.bin", {{"archive/data.pkl", bad_op}}, false);
    expect_contains(load_error(dir.path()), "opcode 0x69");

    write_zip(dir / "pytorch_model.bin", {{"archive/version", "3\n"}}, false);
    expect_contains(load_error(dir.path()), "no data.pkl");
}

TEST(Checkpoint, StorageSmallerThanTheTensorViewIsRefused) {
    test::TempDir dir;
    write_file_atomic(dir / "config.json", read_file(kTiny / "config.json"));
    ZipReader zip(kTiny / "pytorch_model.bin");
    std::vector<std::string> bytes;
    for (const auto& n : zip.names()) bytes.push_back(zip.read(n));
    std::vector<ZipMember> members;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (zip.names()[i] == "pytorch_model/data/1") bytes[i].resize(bytes[i].size() - 4);  // conv 0 weight
        members.push_back({zip.names()[i], bytes[i]});
    }
    write_zip(dir / "pytorch_model.bin", members, false);
    expect_contains(load_error(dir.path()), "tensor 'feature_extractor.conv_layers.0.conv.weight': storage 1 holds");
}

// float16 / bfloat16 stored weights load (widened to float32) and give close results.
static void write_reduced_safetensors(const fs::path& path, const TensorMap& t, const std::string& dtype) {
    nlohmann::json header = nlohmann::json::object();
    std::string data;
    for (const auto& [name, tensor] : t) {
        std::size_t begin = data.size();
        for (float v : tensor.values) {
            std::uint16_t h = dtype == "F16" ? float_to_half(v) : float_to_bf16(v);
            data += static_cast<char>(h & 0xff);
            data += static_cast<char>(h >> 8);
        }
        header[name] = {{"dtype", dtype}, {"shape", tensor.shape}, {"data_offsets", {begin, data.size()}}};
    }
    std::string h = header.dump();
    std::string prefix(8, '\0');
    for (int i = 0; i < 8; ++i) prefix[static_cast<std::size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    write_file_atomic(path, prefix + h + data);
}

TEST(Checkpoint, Float16AndBFloat16WeightsLoad) {
    TensorMap good = read_safetensors(kTiny / "model.safetensors");
    NpyArray input = read_npy(kTiny / "input.npy");
    NpyArray expected = read_npy(kTiny / "hidden_states.npy");
    for (auto [dtype, tol] : {std::pair{"F16", 0.05f}, std::pair{"BF16", 0.5f}}) {
        test::TempDir dir;
        write_model_dir(dir.path(), good);
        write_reduced_safetensors(dir / "model.safetensors", good, dtype);
        auto model = Model::load(dir.path());
        EXPECT_EQ(model->report().stored_dtypes.at(dtype), 51) << dtype;
        ModelState state(model);
        HiddenStates h = state.encode(input.view<float>(), 1, static_cast<std::int64_t>(input.count()), {});
        float worst = 0;
        for (std::size_t i = 0; i < h.values.size(); ++i) worst = std::max(worst, std::fabs(h.values[i] - expected.view<float>()[i]));
        EXPECT_LT(worst, tol) << dtype;  // rounding of the weights only
        EXPECT_GT(worst, 0.0f) << dtype;
    }
}

TEST(Checkpoint, RandomCheckpointsRoundTripInBothFormatsAndLayouts) {
    test::TempDir dir;
    const std::string config = read_file(kTiny / "config.json");
    RandomCheckpointParams p;
    p.seed = 42;
    write_random_checkpoint(config, dir / "st", p);
    p.format = "bin";
    write_random_checkpoint(config, dir / "bin", p);
    p.parametrized_weight_norm = true;
    write_random_checkpoint(config, dir / "binp", p);
    auto a = Model::load(dir / "st");
    auto b = Model::load(dir / "bin");
    auto c = Model::load(dir / "binp");
    EXPECT_EQ(b->report().weights_format, "pytorch_bin");
    EXPECT_EQ(c->report().weight_norm_layout, "parametrizations");
    auto wave = test::noise(1.0, 24000, 3);
    std::vector<float> outs[3];
    int i = 0;
    for (const auto& m : {a, b, c}) {
        ModelState s(m);
        outs[i++] = s.encode(wave, 1, 24000, {}).values;
    }
    EXPECT_EQ(outs[0], outs[1]);
    EXPECT_EQ(outs[0], outs[2]);
    EXPECT_THROW(write_random_checkpoint(config, dir / "x", {0, "onnx", false}), Error);
    EXPECT_THROW(preset_config_json("mert-v9"), Error);
}




TEST(Checkpoint, MisTypedTensorIsNamed) {
    test::TempDir dir;
    write_file_atomic(dir / "config.json", read_file(kTiny / "config.json"));
    std::string st = read_file(kTiny / "model.safetensors");
    auto pos = st.find("\"F32\"");
    ASSERT_NE(pos, std::string::npos);
    st.replace(pos, 5, "\"I32\"");  // same size, wrong type
    write_file_atomic(dir / "model.safetensors", st);
    std::string e = load_error(dir.path());
    expect_contains(e, "unsupported dtype 'I32'");
    expect_contains(e, "tensor '");
}

// Found by fuzz/fuzz_safetensors: an empty F32 tensor (a zero in its shape) was widened with memcpy into the
// null data of an empty vector (undefined behaviour, UBSan nonnull-attribute).
TEST(Checkpoint, EmptyTensorsInSafetensorsLoad) {
    test::TempDir dir;
    const std::string header = R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})";
    std::string bytes(8, '\0');
    bytes[0] = static_cast<char>(header.size());
    write_file_atomic(dir.path() / "model.safetensors", bytes + header);
    const TensorMap t = read_safetensors(dir.path() / "model.safetensors");
    ASSERT_EQ(t.count("e"), 1u);
    EXPECT_TRUE(t.at("e").values.empty());
    EXPECT_EQ(t.at("e").shape, (std::vector<std::int64_t>{0, 4}));
}

// Found by fuzzing (10-minute run): a float or negative number in data_offsets or shape was converted to an
// integer, which is undefined behaviour. They are refused, naming the field.
TEST(Checkpoint, NonIntegerOffsetsAndShapesInSafetensorsAreRefused) {
    test::TempDir dir;
    for (const char* entry : {R"("shape":[1],"data_offsets":[0,1e30])", R"("shape":[1],"data_offsets":[-4,0])",
                              R"("shape":[1.5],"data_offsets":[0,4])", R"("shape":[1e300],"data_offsets":[0,4])"}) {
        const std::string header = std::string(R"({"t":{"dtype":"F32",)") + entry + "}}";
        std::string bytes(8, '\0');
        bytes[0] = static_cast<char>(header.size());
        write_file_atomic(dir.path() / "model.safetensors", bytes + header + std::string(4, '\0'));
        const std::string msg = test::error_message([&] { read_safetensors(dir.path() / "model.safetensors"); });
        EXPECT_TRUE(msg.find("data_offsets") != std::string::npos || msg.find("shape") != std::string::npos) << entry << ": " << msg;
    }
}

// Found by fuzzing: a 1.4-KB torch archive whose member declares 4 GB made the reader allocate the declared
// size before reading a byte. Members now grow as their data arrives, and the lie is named.
TEST(Checkpoint, ArchiveMembersThatLieAboutTheirSizeAreRefusedWithoutAllocatingIt) {
    const fs::path hostile = fs::path(MESS_FIXTURES_DIR) / "fuzz" / "torch_bin_declares_4gb.bin";
    EXPECT_THROW(read_torch_bin(hostile), Error);
}
