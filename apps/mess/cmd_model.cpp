#include <fmt/format.h>

#include "cli.hpp"
#include "mess/model.hpp"

namespace mess::cli {
namespace {

nlohmann::json model_info_json(const Model& m) {
    const auto& c = m.config();
    const auto& r = m.report();
    return {{"architecture", c.architecture},
            {"model_type", c.model_type},
            {"encoder", c.do_stable_layer_norm ? "pre-LN (stable layer norm)" : "post-LN"},
            {"hidden_size", c.hidden_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_hidden_states", c.num_hidden_states()},
            {"num_attention_heads", c.num_attention_heads},
            {"intermediate_size", c.intermediate_size},
            {"conv_dim", c.conv_dim},
            {"conv_kernel", c.conv_kernel},
            {"conv_stride", c.conv_stride},
            {"feat_extract_norm", c.feat_extract_norm},
            {"sampling_rate", c.sampling_rate},
            {"do_normalize", c.do_normalize},
            {"frames_per_5s_window", c.frames_for(5 * c.sampling_rate)},
            {"weights_file", r.weights_file.string()},
            {"weights_format", r.weights_format},
            {"weight_norm_layout", r.weight_norm_layout},
            {"num_parameters", r.num_parameters},
            {"num_tensors", r.num_tensors},
            {"stored_dtypes", r.stored_dtypes},
            {"ignored_tensors", r.ignored},
            {"key_check", "ok"}};
}

int print_builtin_encoder(const Encoder& e, bool json) {
    const EncoderInfo& i = e.info();
    if (json) {
        print_json(i.to_json());
        return 0;
    }
    fmt::print("{}: built-in encoder, no weights\n  {}\n", i.name, i.description);
    fmt::print("  input         {} Hz, 5-s windows analysed independently, {:g} frames/s\n", i.sampling_rate, i.frame_rate);
    fmt::print("  output        {} layer(s) × {} dims per frame; index default layer {} ({})\n", i.layers, i.hidden,
               i.default_layer, i.layer_names.at(static_cast<std::size_t>(i.default_layer)));
    for (std::size_t l = 0; l < i.layer_names.size(); ++l)
        fmt::print("  layer {}  {:<9} {}\n", l, i.layer_names[l], l < i.layer_descriptions.size() ? i.layer_descriptions[l] : "");
    return 0;
}

// `mess model info DIR` for a Hugging Face model directory: the checked architecture, sizes and weights.
int print_model_info(const std::string& dir, const std::string& prefer, bool json) {
    LoadParams lp;
    lp.prefer = prefer;
    auto m = Model::load(dir, lp);
    nlohmann::json j = model_info_json(*m);
    if (json) {
        print_json(j);
        return 0;
    }
    const auto& c = m->config();
    fmt::print("{}\n  architecture  {} ({}), {} encoder\n", dir, c.architecture, c.model_type, j["encoder"].get<std::string>());
    fmt::print("  sizes         hidden {}, layers {} (→ {} hidden states), heads {}, ffn {}\n", c.hidden_size,
               c.num_hidden_layers, c.num_hidden_states(), c.num_attention_heads, c.intermediate_size);
    fmt::print("  input         {} Hz, normalise {}, {} frames per 5-s window\n", c.sampling_rate,
               c.do_normalize ? "yes" : "no", c.frames_for(5 * c.sampling_rate));
    fmt::print("  weights       {} ({}), weight norm as {}\n", m->report().weights_file.filename().string(),
               m->report().weights_format, m->report().weight_norm_layout);
    fmt::print("  parameters    {} in {} tensors", m->report().num_parameters, m->report().num_tensors);
    for (const auto& [dt, n] : m->report().stored_dtypes) fmt::print(", {} {}", n, dt);
    fmt::print("\n  key check     ok: every tensor present, known, well-shaped and finite\n");
    for (const auto& ig : m->report().ignored) fmt::print("  ignored       {} (training only)\n", ig);
    return 0;
}

// `mess model devices`: the CPU's bf16 support and the CUDA devices this build can use.
int print_devices(bool json) {
    std::string why;
    const int n = cuda_devices(&why);
    const bool cpu_bf16 = __builtin_cpu_supports("avx512bf16");
    const nlohmann::json j = {{"cpu", true}, {"cpu_bf16", cpu_bf16}, {"cuda_backend", cuda_backend_built()},
                              {"cuda_devices", n}, {"cuda_note", n > 0 ? std::string() : why}};
    if (json) {
        print_json(j);
        return 0;
    }
    fmt::print("cpu   precisions fp32, bf16 ({})\n", cpu_bf16 ? "AVX512-BF16: about 1.8x fp32" : "no AVX512-BF16 here: bf16 is slow");
    if (n > 0) fmt::print("cuda  {} device(s); precisions fp32, bf16, fp16 (--device cuda)\n", n);
    else fmt::print("cuda  not usable: {}\n", why);
    return 0;
}

void register_info(CLI::App* model, Context& ctx) {
    auto* info = model->add_subcommand("info", "Load a Hugging Face model directory (config.json, preprocessor_config.json,\n"
                                               "model.safetensors or pytorch_model.bin), check every tensor against the\n"
                                               "architecture, and print it");
    static std::string info_dir, prefer = "safetensors";
    info->add_option("DIR", info_dir, "Model directory, or dsp / mfcc-chroma for a built-in encoder")->required();
    info->add_option("--prefer", prefer, "Weights file to read when both exist: safetensors | bin")
        ->capture_default_str()->check(CLI::IsMember({"safetensors", "bin"}));
    bool& info_json = add_json_flag(info);
    info->callback([&ctx, &info_json] {
        ctx.run = [&info_json] {
            if (is_builtin_encoder(info_dir)) return print_builtin_encoder(*open_encoder(info_dir), info_json);
            return print_model_info(info_dir, prefer, info_json);
        };
    });
}

void register_devices(CLI::App* model, Context& ctx) {
    auto* devices = model->add_subcommand("devices", "Where models can run: the CPU (and whether it has bf16 matrix products) and\n"
                                                      "CUDA devices (whether this build has the CUDA backend, and how many devices it sees)");
    bool& devices_json = add_json_flag(devices);
    devices->callback([&ctx, &devices_json] { ctx.run = [&devices_json] { return print_devices(devices_json); }; });
}

void register_random(CLI::App* model, Context& ctx) {
    auto* random = model->add_subcommand("random", "Write a random-weight checkpoint of any architecture (for tests and\n"
                                                   "benchmarks; the real weights cannot be downloaded everywhere)");
    static std::string config_path, preset, out_dir, format = "safetensors";
    static std::uint64_t seed = 0;
    static bool parametrized = false;
    auto* cfg_opt = random->add_option("--config", config_path, "config.json describing the architecture");
    random->add_option("--preset", preset, "Built-in architecture instead of --config: mert-v1-95m | mert-v1-330m")
        ->excludes(cfg_opt);
    random->add_option("--out", out_dir, "Output directory (created)")->required();
    random->add_option("--seed", seed, "Random seed")->capture_default_str();
    random->add_option("--format", format, "safetensors | bin (pytorch_model.bin, torch zip format)")
        ->capture_default_str()->check(CLI::IsMember({"safetensors", "bin"}));
    random->add_flag("--parametrized-weight-norm", parametrized,
                     "Name the positional-conv weight norm parametrizations.weight.original0/1 (torch ≥ 2.1 layout)");
    random->callback([&ctx] {
        ctx.run = [] {
            if (config_path.empty() == preset.empty()) throw_usage("give exactly one of --config or --preset");
            std::string config = preset.empty() ? read_file(config_path) : preset_config_json(preset);
            RandomCheckpointParams p;
            p.seed = seed;
            p.format = format;
            p.parametrized_weight_norm = parametrized;
            write_random_checkpoint(config, out_dir, p);
            fmt::print("wrote a random {} checkpoint to {}\n", format, out_dir);
            return 0;
        };
    });
}

}  // namespace

void register_model(CLI::App& app, Context& ctx) {
    auto* model = app.add_subcommand("model", "Model checkpoints: inspect, generate random ones");
    model->require_subcommand(1);
    register_info(model, ctx);
    register_devices(model, ctx);
    register_random(model, ctx);
}

}  // namespace mess::cli
