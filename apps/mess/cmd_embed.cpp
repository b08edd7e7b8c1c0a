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
    lp.device = ctx.config.device.value;
    std::shared_ptr<const Model> model = builtin ? nullptr : Model::load(o.model_dir, lp);
    const auto encoder = builtin ? open_encoder(o.model_dir, lp) : mert_encoder(model, o.model_dir);
    const int rate = encoder->info().sampling_rate;
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
    const HiddenStates& h = e.states;
    auto layers = parse_layers(o.layers, h.layers);
    const auto L = static_cast<std::int64_t>(layers.size());

    // Select layers: [S, L', T, H].
    std::vector<float> raw(static_cast<std::size_t>(h.batch * L * h.frames * h.hidden));
    const std::size_t block = static_cast<std::size_t>(h.frames * h.hidden);
    for (std::int64_t s = 0; s < h.batch; ++s)
        for (std::int64_t i = 0; i < L; ++i)
            std::copy_n(h.values.begin() + static_cast<std::ptrdiff_t>((s * h.layers + layers[static_cast<std::size_t>(i)]) * static_cast<std::int64_t>(block)),
                        block, raw.begin() + static_cast<std::ptrdiff_t>((s * L + i) * static_cast<std::int64_t>(block)));
    HiddenStates sel = h;
    sel.layers = L;
    sel.values = std::move(raw);

    NpyArray out;
    if (o.view == "raw") {
        out = NpyArray::from(sel.values, {sel.batch, L, sel.frames, sel.hidden});
    } else {
        auto seg = pool_frames(sel);
        if (o.view == "segments") out = NpyArray::from(seg, {sel.batch, L, sel.hidden});
        else out = NpyArray::from(pool_windows(seg, sel.batch, L * sel.hidden), {L, sel.hidden});
    }
    write_npy(o.out, out);
    std::vector<double> starts;
    for (const auto& w : e.windows) starts.push_back(w.start_sec);
    if (json) {
        print_json({{"input", o.input}, {"out", o.out}, {"view", o.view}, {"shape", out.shape}, {"windows", e.windows.size()},
                    {"window_starts_sec", starts}, {"layers", layers}, {"seconds", secs}, {"threads", ep.threads}});
    } else {
        fmt::print("{} → {}: {} ({} window(s), {:.2f} s, {:.3f} s/window, {} thread(s))\n", o.input, o.out,
                   out.describe(), e.windows.size(), secs, secs / static_cast<double>(e.windows.size()), ep.threads);
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
