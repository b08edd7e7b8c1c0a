#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/model.hpp"
#include "mess/npy.hpp"

namespace mess::cli {
namespace {

struct EmbedOptions {
    std::string model_dir, input, out, view = "raw", layers, precision = "fp32";
    bool input_npy = false, no_normalize = false;
    int threads = 0;
};

std::vector<std::int64_t> parse_layers(const std::string& text, std::int64_t count) {
    std::vector<std::int64_t> out;
    if (text.empty()) {
        for (std::int64_t i = 0; i < count; ++i) out.push_back(i);
        return out;
    }
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        std::size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != item.size() || v < 0 || v >= count)
            throw_usage("--layers: '{}' is not a hidden-state index in [0, {}]", item, count - 1);
        out.push_back(v);
    }
    return out;
}

int run_embed(const Context& ctx, const EmbedOptions& o, bool json) {
    const bool builtin = is_builtin_encoder(o.model_dir);
    if (builtin && o.no_normalize) throw_usage("--no-normalize applies to MERT checkpoints, not to the {} encoder", o.model_dir);
    LoadParams lp;
    lp.precision = parse_precision(o.precision);
    lp.device = parse_device(ctx.config.device.value);
    std::shared_ptr<const Model> model = builtin ? nullptr : Model::load(o.model_dir, lp);
    const auto encoder = builtin ? open_encoder(o.model_dir, lp) : mert_encoder(model, o.model_dir);
    const int rate = encoder->info().sampling_rate;
    const auto layers = parse_layers(o.layers, encoder->info().layers);  // checked before minutes of work, not after
    Audio audio;
    if (o.input_npy) {
        NpyArray a = read_npy(o.input);
        if (a.shape.size() != 1) throw_input("{}: expected a 1-D float32 waveform, got {}", o.input, a.describe());
        audio.samples = a.to_float32();
        audio.sample_rate = rate;
    } else {
        audio = load_audio(o.input, rate);
    }
    EncodeParams ep;
    ep.threads = o.threads > 0 ? o.threads : ctx.config.workers.value;
    if (o.no_normalize) ep.normalize = false;
    EmbedParams p;
    p.batch_size = ctx.config.batch_size.value;
    p.keep_frames = o.view == "raw";  // the pooled views need each window's frame means only
    std::int64_t last_done = 0;
    p.windows.sample_rate = rate;
    Progress progress("embed " + std::filesystem::path(o.input).filename().string() + " (windows)",
                      static_cast<std::int64_t>(plan_windows(static_cast<std::int64_t>(audio.samples.size()), p.windows).size()));
    p.on_progress = [&](std::int64_t done, std::int64_t) {
        progress.advance(done - last_done);
        last_done = done;
    };
    auto start = std::chrono::steady_clock::now();
    Embedding e = with_context(o.input, [&] {
        if (builtin) return encoder->session()->embed(audio, p, ep.threads);
        ModelState state(model);  // MERT directly: --no-normalize is an encode parameter
        return embed_audio(*model, state, audio, p, ep);
    });
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.finish();
    HiddenStates& h = e.states;
    const auto L = static_cast<std::int64_t>(layers.size());

    // The chosen layers of [S, layers, block] (block = T·D frames or D means) → [S, L', block].
    const bool every_layer =  // 0, 1, …, layers - 1
        L == h.layers && std::adjacent_find(layers.begin(), layers.end(), [](auto a, auto b) { return b <= a; }) == layers.end();
    auto select = [&](std::vector<float>& all, std::int64_t block) {
        if (every_layer) return std::move(all);  // no second copy of what may be gigabytes
        std::vector<float> kept(static_cast<std::size_t>(h.batch * L * block));
        for (std::int64_t s = 0; s < h.batch; ++s)
            for (std::int64_t i = 0; i < L; ++i)
                std::copy_n(all.begin() + (s * h.layers + layers[static_cast<std::size_t>(i)]) * block, block, kept.begin() + (s * L + i) * block);
        return kept;
    };
    std::vector<float> out;
    std::vector<std::int64_t> shape;
    if (o.view == "raw") {
        out = select(h.values, h.frames * h.hidden);
        shape = {h.batch, L, h.frames, h.hidden};
    } else if (o.view == "segments") {
        out = select(e.segments, h.hidden);
        shape = {h.batch, L, h.hidden};
    } else {
        out = pool_windows(select(e.segments, h.hidden), h.batch, L * h.hidden);
        shape = {L, h.hidden};
    }
    write_npy(o.out, out, shape);  // streamed: no encoded copy of what may be gigabytes
    std::vector<double> starts;
    for (const auto& w : e.windows) starts.push_back(w.start_sec);
    if (json) {
        print_json({{"input", o.input}, {"out", o.out}, {"view", o.view}, {"shape", shape}, {"windows", e.windows.size()},
                    {"window_starts_sec", starts}, {"layers", layers}, {"seconds", secs}, {"threads", ep.threads}});
    } else {
        fmt::print("{} → {}: float32 [{}] ({} window(s), {:.2f} s, {:.3f} s/window, {} thread(s))\n", o.input, o.out,
                   fmt::join(shape, ", "), e.windows.size(), secs, secs / static_cast<double>(e.windows.size()), ep.threads);
    }
    return 0;
}

}  // namespace

void register_embed(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("embed", "Run a model over one audio file: 5-s windows (2.5-s hop, tail aligned to\n"
                                            "the end) → hidden states [windows, layers, frames, hidden] in a .npy,\n"
                                            "or a pooled view (segments [windows, layers, hidden], aggregated\n"
                                            "[layers, hidden]). Batch size: --batch-size / MESS_BATCH_SIZE.");
    static EmbedOptions o;
    cmd->add_option("--model", o.model_dir, "Hugging Face model directory, or dsp / mfcc-chroma (built in, no weights; see `mess model info dsp`)")->required();
    cmd->add_option("FILE", o.input, "Audio file (any supported format; resampled to the model's rate)")->required();
    cmd->add_option("--out", o.out, "Output .npy (written atomically)")->required();
    cmd->add_flag("--input-npy", o.input_npy, "FILE is a 1-D float32 .npy waveform already at the model's rate");
    cmd->add_flag("--no-normalize", o.no_normalize, "Feed samples as they are (skip the zero-mean unit-variance step)");
    cmd->add_option("--view", o.view, "raw | segments | aggregated")->capture_default_str()->check(CLI::IsMember({"raw", "segments", "aggregated"}));
    cmd->add_option("--layers", o.layers, "Comma-separated hidden-state indices to keep (default: all)");
    cmd->add_option("--threads", o.threads, "Compute threads (default: --workers / MESS_WORKERS)");
    cmd->add_option("--precision", o.precision, "fp32 | bf16 | fp16 (MERT only; fp16 on --device cuda; see mess extract --help)")
        ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_embed(ctx, o, json); }; });
}

}  // namespace mess::cli
