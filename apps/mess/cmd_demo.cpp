#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/audio.hpp"
#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "mess/probe.hpp"
#include "mess/server.hpp"

namespace mess::cli {
namespace fs = std::filesystem;
namespace {

// Shell quoting, only where needed (the commands are shown to the user too).
std::string quote_arg(const std::string& s) {
    if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,+-") == std::string::npos) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

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

// What the model walk-through made: the decoded audio, its windows, the views and where they were written.
struct Walkthrough {
    AudioCheck check;
    Audio audio;
    std::vector<Window> windows;
    std::string model_dir;
    Embedding embedding;
    std::vector<float> aggregated;
    double window_cosine = 1.0;
    std::filesystem::path wave_path, win_path, raw_path, seg_path, agg_path;
};

// Decodes, resamples and plans windows; writes the 24-kHz waveform and the window bounds.
void decode_step(Walkthrough& w, const std::string& audio_path, const std::filesystem::path& out_dir) {
    w.check = check_audio(audio_path);
    if (!w.check.valid) throw_input("{}", w.check.message);
    spdlog::info("demo: decoding {} ({}, {} Hz, {} ch, {:.2f} s)", audio_path, w.check.info.format, w.check.info.sample_rate,
                 w.check.info.channels, w.check.decoded_duration_sec);
    w.audio = load_audio(audio_path, kModelSampleRate);
    w.windows = plan_windows(static_cast<std::int64_t>(w.audio.samples.size()));
    std::vector<double> bounds;
    for (const auto& win : w.windows) {
        bounds.push_back(win.start_sec);
        bounds.push_back(win.end_sec);
    }
    w.wave_path = out_dir / "waveform_24k.npy";
    w.win_path = out_dir / "windows.npy";
    write_npy(w.wave_path, NpyArray::from(w.audio.samples, {static_cast<std::int64_t>(w.audio.samples.size())}));
    write_npy(w.win_path, NpyArray::from(bounds, {static_cast<std::int64_t>(w.windows.size()), 2}));
    NpyArray back = read_npy(w.wave_path);  // the round trip a NumPy user would do
    if (back.count() != w.audio.samples.size()) throw_internal("demo: read-back size mismatch");
}

// Embeds with the given model directory, or a small random-weight MERT-architecture checkpoint; writes the views.
void embed_step(Walkthrough& w, const Context& ctx, const std::filesystem::path& out_dir) {
    if (w.model_dir.empty()) {
        w.model_dir = (out_dir / "random-mert-small").string();
        if (!std::filesystem::exists(std::filesystem::path(w.model_dir) / "model.safetensors")) {
            RandomCheckpointParams rp;
            rp.seed = 7;
            write_random_checkpoint(demo_model_config(), w.model_dir, rp);
        }
    }
    auto model = Model::load(w.model_dir);
    ModelState state(model);
    EncodeParams ep;
    ep.threads = ctx.config.workers.value;
    EmbedParams emb;
    emb.batch_size = ctx.config.batch_size.value;
    w.embedding = embed_audio(*model, state, w.audio, emb, ep);
    const HiddenStates& h = w.embedding.states;
    const std::vector<float>& segments = w.embedding.segments;
    const std::int64_t per_window = h.layers * h.hidden;
    w.aggregated = pool_windows(segments, h.batch, per_window);
    w.raw_path = out_dir / "raw.npy";
    w.seg_path = out_dir / "segments.npy";
    w.agg_path = out_dir / "aggregated.npy";
    write_npy(w.raw_path, NpyArray::from(h.values, {h.batch, h.layers, h.frames, h.hidden}));
    write_npy(w.seg_path, NpyArray::from(segments, {h.batch, h.layers, h.hidden}));
    write_npy(w.agg_path, NpyArray::from(w.aggregated, {h.layers, h.hidden}));
    if (h.batch > 1)
        w.window_cosine = cosine(std::span(segments).first(static_cast<std::size_t>(per_window)),
                                 std::span(segments).subspan(static_cast<std::size_t>(per_window), static_cast<std::size_t>(per_window)));
}

void print_walkthrough(const Walkthrough& w, const std::string& audio_path, const std::filesystem::path& out_dir, bool json) {
    const HiddenStates& h = w.embedding.states;
    if (json) {
        print_json({{"audio", audio_path},
                    {"format", w.check.info.format},
                    {"source_rate", w.check.info.sample_rate},
                    {"samples_24k", w.audio.samples.size()},
                    {"windows", w.windows.size()},
                    {"waveform_npy", w.wave_path.string()},
                    {"windows_npy", w.win_path.string()},
                    {"model", w.model_dir},
                    {"raw_shape", {h.batch, h.layers, h.frames, h.hidden}},
                    {"raw_npy", w.raw_path.string()},
                    {"segments_npy", w.seg_path.string()},
                    {"aggregated_npy", w.agg_path.string()},
                    {"window_cosine", w.window_cosine}});
        return;
    }
    fmt::print("MESS demo\n  audio     {}\n  format    {}, {} Hz, {} channel(s), {:.3f} s\n", audio_path,
               w.check.info.format, w.check.info.sample_rate, w.check.info.channels, w.check.decoded_duration_sec);
    fmt::print("  resampled {} samples at {} Hz (soxr HQ)\n  windows   {} × {:.1f} s:", w.audio.samples.size(),
               kModelSampleRate, w.windows.size(), 5.0);
    for (const auto& win : w.windows) fmt::print(" [{:.2f}, {:.2f})", win.start_sec, win.end_sec);
    fmt::print("\n  model     {} ({} hidden states × {})\n", w.model_dir, h.layers, h.hidden);
    fmt::print("  embedded  raw [{}, {}, {}, {}], segments [{}, {}, {}], aggregated [{}, {}]\n", h.batch, h.layers, h.frames,
               h.hidden, h.batch, h.layers, h.hidden, h.layers, h.hidden);
    fmt::print("  windows 0 and 1 cosine similarity (all layers): {:.6f}{}\n", w.window_cosine,
               w.model_dir == (out_dir / "random-mert-small").string() ? " (random weights: a plumbing check, not music)" : "");
    fmt::print("  wrote     {}\n            {}\n            {}\n            {}\n            {}\n", w.wave_path.string(),
               w.win_path.string(), w.raw_path.string(), w.seg_path.string(), w.agg_path.string());
    fmt::print("  load them with numpy.load(...); use real MERT weights with `mess demo embed --model DIR`\n");
}

int run_demo(const Context& ctx, const std::string& audio_path, std::string model_dir, bool json) {
    const std::filesystem::path out_dir = ctx.config.data_root.value / "demo";
    std::filesystem::create_directories(out_dir);
    Walkthrough w;
    w.model_dir = std::move(model_dir);
    decode_step(w, audio_path, out_dir);
    embed_step(w, ctx, out_dir);
    print_walkthrough(w, audio_path, out_dir, json);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The end-to-end demo: MIDI → rendered corpus → features → targets → probing → indexes → server.
// ---------------------------------------------------------------------------------------------

struct DemoOptions {
    std::string midi, model, host = "127.0.0.1";
    int variants = 4, port = 8080;
    double max_seconds = 45, min_r2 = 0.5;
    bool no_serve = false;
};

// Facts about the PianoBooster pieces scripts/demo fetches (Debian package pianobooster, CC-BY):
// the tunes are traditional; the course exercises are the package author's.
std::string composer_of(const std::string& stem) {
    static const std::vector<std::pair<const char*, const char*>> known = {
        {"clairdelalune", "Traditional (French)"}, {"lavendersblue", "Traditional (English)"}, {"skiptomylou", "Traditional (American)"},
        {"frerejacques", "Traditional (French)"},  {"scarboroughfair", "Traditional (English)"}, {"greensleeves", "Traditional (English)"},
        {"amazinggrace", "Traditional (American)"}, {"startwithmiddlec", "L. J. Barman"},       {"chordofcmajor", "L. J. Barman"},
        {"upanddown", "L. J. Barman"},              {"chordoffmajor", "L. J. Barman"},          {"downandup", "L. J. Barman"},
        {"intervalsrighthand", "L. J. Barman"},     {"intervalslefthand", "L. J. Barman"}};
    std::string key;
    for (char c : stem)
        if (std::isalpha(static_cast<unsigned char>(c))) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& [name, composer] : known)
        if (key == name) return composer;
    return "Unknown";
}

// "02-LavendersBlue" → "Lavenders Blue"
std::string title_of(const std::string& stem) {
    std::size_t i = 0;
    while (i < stem.size() && (std::isdigit(static_cast<unsigned char>(stem[i])) || stem[i] == '-' || stem[i] == '_' || stem[i] == ' ')) ++i;
    std::string out;
    for (; i < stem.size(); ++i) {
        const char c = stem[i] == '_' || stem[i] == '-' ? ' ' : stem[i];
        const bool next_lower = i + 1 < stem.size() && std::islower(static_cast<unsigned char>(stem[i + 1]));
        if (!out.empty() && std::isupper(static_cast<unsigned char>(c)) && std::isalpha(static_cast<unsigned char>(out.back())) &&
            (std::islower(static_cast<unsigned char>(out.back())) || next_lower))
            out += ' ';
        out += c;
    }
    return out.empty() ? stem : out;
}

// Runs one `mess` step in a child process, showing the command (what a user would type).
void run_step(const Context& ctx, const std::string& what, const std::vector<std::string>& args) {
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    std::string shown = "mess", command = quote_arg(self) + " --data-root " + quote_arg(ctx.config.data_root.value.string()) + " --workers " +
                                          std::to_string(ctx.config.workers.value) + " --log-level " + quote_arg(ctx.config.log_level.value);
    for (const auto& a : args) {
        shown += " " + quote_arg(a);
        command += " " + quote_arg(a);
    }
    fmt::print("\n▶ {}\n  {}\n", what, shown);
    std::fflush(stdout);
    const int rc = std::system(command.c_str());
    if (rc != 0) throw_input("demo step failed ({}): {}", what, shown);
}

int run_full_demo(const Context& ctx, const DemoOptions& o) {
    const fs::path root = ctx.config.data_root.value, demo = root / "demo", corpus = demo / "corpus", indices = demo / "indices";
    const fs::path midi = o.midi.empty() ? demo / "midi" : fs::path(o.midi);
    std::vector<fs::path> sources;
    if (fs::is_directory(midi))
        for (const auto& e : fs::recursive_directory_iterator(midi)) {
            const std::string ext = e.path().extension().string();
            if (e.is_regular_file() && (ext == ".mid" || ext == ".midi" || ext == ".MID")) sources.push_back(e.path());
        }
    if (sources.empty())
        throw_usage("no MIDI files in {} (scripts/demo fetches Debian's pianobooster pieces there; or give --midi DIR)", midi.string());
    const char* env_model = std::getenv("MESS_MODEL");
    const std::string model = !o.model.empty() ? o.model : env_model && *env_model ? env_model : "dsp";
    fmt::print("MESS demo: {} MIDI files → {} renderings each → model {} → indexes → web UI\n", sources.size(), o.variants, model);

    if (!fs::exists(corpus / "labels.json"))
        run_step(ctx, "render the MIDI files through fluidsynth (GM SoundFont), with expressive variants",
                 {"corpus", "render", "--midi", midi.string(), "--out", corpus.string(), "--variants", std::to_string(o.variants), "--seed", "1",
                  "--max-seconds", fmt::format("{}", o.max_seconds), "--licence", "see the MIDI sources"});
    else fmt::print("\n✓ corpus already rendered in {}\n", corpus.string());

    // Titles and composers for the browser: the corpus's metadata plus what the file names tell.
    Dataset ds = Dataset::folder(root, corpus / "audio", "demo");
    if (!fs::exists(ds.metadata_path())) {
        std::vector<MetadataTable::Row> rows;
        const MetadataTable rendered = MetadataTable::read(corpus / "metadata.csv");
        for (MetadataTable::Row row : rendered.rows()) {
            const std::string stem = fs::path(row.extra["source_midi"]).stem().string();
            row.extra["title"] = title_of(stem);
            row.extra["composer"] = composer_of(stem);
            row.extra["variant"] = row.extra["transform"];
            rows.push_back(std::move(row));
        }
        fs::create_directories(ds.metadata_path().parent_path());
        MetadataTable(std::move(rows)).write(ds.metadata_path());
    }
    const std::vector<std::string> dataset = {"--audio-dir", (corpus / "audio").string(), "--dataset-id", "demo"};
    auto with = [&](std::vector<std::string> a) {
        a.insert(a.end(), dataset.begin(), dataset.end());
        return a;
    };
    run_step(ctx, "extract embeddings (complete tracks are kept)", with({"extract", "--model", model}));
    run_step(ctx, "proxy targets from audio and MIDI", with({"targets"}));
    const fs::path results = default_results_path(root, "demo", ProbeLevel::track);
    if (!fs::exists(results)) run_step(ctx, "probe which layer encodes which aspect", with({"probe"}));
    else fmt::print("\n✓ probing results in {}\n", results.string());
    for (const char* kind : {"track", "clip"}) {
        const fs::path dir = indices / (std::string(kind) + "_index");
        bool have = false;
        if (fs::is_directory(dir))
            for (const auto& e : fs::directory_iterator(dir)) have = have || fs::exists(e.path() / "manifest.json");
        if (!have) run_step(ctx, fmt::format("build the {} index (with waveforms)", kind), with({"index", "build", "--kind", kind, "--out", indices.string()}));
        else fmt::print("\n✓ {} index in {}\n", kind, dir.string());
    }
    fmt::print("\nthe demo's indexes are in {} (dataset 'demo'); for example:\n  mess serve --index {}\n"
               "  mess search --index {} --name track_index --track {} --k 5\n", indices.string(), indices.string(), indices.string(),
               ds.tracks().front().track_id);
    if (o.no_serve) return 0;
    ServeConfig c = serve_config(ctx, indices.string(), o.host, o.port);
    c.min_r2 = o.min_r2;
    if (c.web_root.empty()) spdlog::warn("the web UI is not built (scripts/build web): serving the API only");
    return run_server(std::move(c), [&](const Server& s) {
        fmt::print("\nMESS demo is serving on http://{}:{}/  — open it in a browser (Ctrl-C stops)\n", o.host, s.port());
        std::fflush(stdout);
    });
}

}  // namespace

void register_demo(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("demo",
        "The end-to-end demo: renders MIDI files (scripts/demo fetches Debian's pianobooster pieces into\n"
        "<data root>/demo/midi) through fluidsynth with expressive variants, extracts embeddings with the\n"
        "built-in dsp encoder (or MESS_MODEL / --model DIR), computes targets, probes the layers, builds the\n"
        "track and clip indexes and serves the web UI. Re-running reuses every finished step.\n"
        "`mess demo embed` is the smaller model walk-through on one recording.");
    auto o = std::make_shared<DemoOptions>();
    cmd->add_option("--midi", o->midi, "Folder of MIDI files (default <data root>/demo/midi)");
    cmd->add_option("--model", o->model, "Encoder: dsp (default), mfcc-chroma, or a MERT directory (env MESS_MODEL)");
    cmd->add_option("--variants", o->variants, "Renderings per piece (1 … 16)")->capture_default_str();
    cmd->add_option("--max-seconds", o->max_seconds, "Seconds of each piece rendered")->capture_default_str();
    cmd->add_option("--host", o->host, "Address to serve on")->capture_default_str();
    cmd->add_option("--port", o->port, "Port to serve on (0: any free port)")->capture_default_str();
    cmd->add_option("--min-r2", o->min_r2, "Aspects offered in the UI need at least this probe R²")->capture_default_str();
    cmd->add_flag("--no-serve", o->no_serve, "Prepare everything, then exit");
    auto* embed = cmd->add_subcommand("embed", "Model walk-through on a real recording: decode, resample to 24 kHz, plan\n"
                                               "5-s windows, embed with a MERT-architecture model, write the views as\n"
                                               "NumPy files under <data root>/demo/");
    static std::string audio = kDemoAudio, model;
    embed->add_option("--audio", audio, "Audio file to use")->capture_default_str();
    embed->add_option("--model", model, "Model directory (default: a small random-weight MERT-architecture checkpoint)");
    bool& json = add_json_flag(embed);
    embed->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_demo(ctx, audio, model, json); }; });
    // The parent's callback runs after a subcommand's: it must not replace `demo embed`.
    cmd->callback([&ctx, o, embed] {
        if (!embed->parsed()) ctx.run = [&ctx, o] { return run_full_demo(ctx, *o); };
    });
}

}  // namespace mess::cli
