#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/audio.hpp"
#include "mess/model.hpp"
#include "mess/npy.hpp"

namespace mess::cli {
namespace {

// A real recording every Debian machine set up by scripts/setup has (package sound-theme-freedesktop).
constexpr const char* kDemoAudio = "/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga";

// A small MERT-architecture config for the demo's random checkpoint (real weights: --model DIR).
std::string demo_model_config() {
    auto j = nlohmann::json::parse(preset_config_json("mert-v1-95m"));
    j.update({{"hidden_size", 96}, {"num_hidden_layers", 4}, {"num_attention_heads", 4}, {"intermediate_size", 192},
              {"conv_dim", std::vector<int>(7, 64)}, {"num_conv_pos_embeddings", 32}, {"num_conv_pos_embedding_groups", 4}});
    return j.dump(2) + "\n";
}

double cosine(std::span<const float> a, std::span<const float> b) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        ab += static_cast<double>(a[i]) * b[i];
        aa += static_cast<double>(a[i]) * a[i];
        bb += static_cast<double>(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb + 1e-30);
}

int run_demo(const Context& ctx, const std::string& audio_path, std::string model_dir, bool json) {
    namespace fs = std::filesystem;
    fs::path out_dir = ctx.config.data_root.value / "demo";
    fs::create_directories(out_dir);

    AudioCheckParams params;
    params.min_duration_sec = 0.0;
    AudioCheck check = check_audio(audio_path, params);
    if (!check.valid) throw_input("{}", check.message);
    spdlog::info("demo: decoding {} ({}, {} Hz, {} ch, {:.2f} s)", audio_path, check.info.format, check.info.sample_rate,
                 check.info.channels, check.decoded_duration_sec);

    Audio audio = load_audio(audio_path, kModelSampleRate);
    auto windows = plan_windows(static_cast<std::int64_t>(audio.samples.size()));
    std::vector<double> bounds;
    for (const auto& w : windows) {
        bounds.push_back(w.start_sec);
        bounds.push_back(w.end_sec);
    }
    fs::path wave_path = out_dir / "waveform_24k.npy";
    fs::path win_path = out_dir / "windows.npy";
    write_npy(wave_path, NpyArray::from(audio.samples, {static_cast<std::int64_t>(audio.samples.size())}));
    write_npy(win_path, NpyArray::from(bounds, {static_cast<std::int64_t>(windows.size()), 2}));
    NpyArray back = read_npy(wave_path);  // the round trip a NumPy user would do
    if (back.count() != audio.samples.size()) throw_internal("demo: read-back size mismatch");

    // Embed with a model: the given directory, or a small random-weight MERT-architecture checkpoint.
    if (model_dir.empty()) {
        model_dir = (out_dir / "random-mert-small").string();
        if (!fs::exists(fs::path(model_dir) / "model.safetensors")) {
            RandomCheckpointParams rp;
            rp.seed = 7;
            write_random_checkpoint(demo_model_config(), model_dir, rp);
        }
    }
    auto model = Model::load(model_dir);
    ModelState state(model);
    EncodeParams ep;
    ep.threads = ctx.config.workers.value;
    EmbedParams emb;
    emb.batch_size = ctx.config.batch_size.value;
    Embedding e = embed_audio(*model, state, audio, emb, ep);
    const HiddenStates& h = e.states;
    auto segments = pool_frames(h);
    const std::int64_t per_window = h.layers * h.hidden;
    auto aggregated = pool_windows(segments, h.batch, per_window);
    fs::path raw_path = out_dir / "raw.npy", seg_path = out_dir / "segments.npy", agg_path = out_dir / "aggregated.npy";
    write_npy(raw_path, NpyArray::from(h.values, {h.batch, h.layers, h.frames, h.hidden}));
    write_npy(seg_path, NpyArray::from(segments, {h.batch, h.layers, h.hidden}));
    write_npy(agg_path, NpyArray::from(aggregated, {h.layers, h.hidden}));
    double sim = h.batch > 1 ? cosine(std::span(segments).first(static_cast<std::size_t>(per_window)),
                                      std::span(segments).subspan(static_cast<std::size_t>(per_window), static_cast<std::size_t>(per_window)))
                             : 1.0;

    if (json) {
        print_json({{"audio", audio_path},
                    {"format", check.info.format},
                    {"source_rate", check.info.sample_rate},
                    {"samples_24k", audio.samples.size()},
                    {"windows", windows.size()},
                    {"waveform_npy", wave_path.string()},
                    {"windows_npy", win_path.string()},
                    {"model", model_dir},
                    {"raw_shape", {h.batch, h.layers, h.frames, h.hidden}},
                    {"raw_npy", raw_path.string()},
                    {"segments_npy", seg_path.string()},
                    {"aggregated_npy", agg_path.string()},
                    {"window_cosine", sim}});
        return 0;
    }
    fmt::print("MESS demo\n  audio     {}\n  format    {}, {} Hz, {} channel(s), {:.3f} s\n", audio_path,
               check.info.format, check.info.sample_rate, check.info.channels, check.decoded_duration_sec);
    fmt::print("  resampled {} samples at {} Hz (soxr HQ)\n  windows   {} × {:.1f} s:", audio.samples.size(),
               kModelSampleRate, windows.size(), 5.0);
    for (const auto& w : windows) fmt::print(" [{:.2f}, {:.2f})", w.start_sec, w.end_sec);
    fmt::print("\n  model     {} ({} hidden states × {})\n", model_dir, h.layers, h.hidden);
    fmt::print("  embedded  raw [{}, {}, {}, {}], segments [{}, {}, {}], aggregated [{}, {}]\n", h.batch, h.layers, h.frames,
               h.hidden, h.batch, h.layers, h.hidden, h.layers, h.hidden);
    fmt::print("  windows 0 and 1 cosine similarity (all layers): {:.6f}{}\n", sim,
               model_dir == (out_dir / "random-mert-small").string() ? " (random weights: a plumbing check, not music)" : "");
    fmt::print("  wrote     {}\n            {}\n            {}\n            {}\n            {}\n", wave_path.string(),
               win_path.string(), raw_path.string(), seg_path.string(), agg_path.string());
    fmt::print("  load them with numpy.load(...); use real MERT weights with `mess demo --model DIR`\n");
    return 0;
}

}  // namespace

void register_demo(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("demo", "End-to-end demo on a real recording: decode, resample to 24 kHz, plan\n"
                                           "5-s windows, embed with a MERT-architecture model, write the views as\n"
                                           "NumPy files under <data root>/demo/");
    static std::string audio = kDemoAudio, model;
    cmd->add_option("--audio", audio, "Audio file to use")->capture_default_str();
    cmd->add_option("--model", model, "Model directory (default: a small random-weight MERT-architecture checkpoint)");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_demo(ctx, audio, model, json); }; });
}

}  // namespace mess::cli
