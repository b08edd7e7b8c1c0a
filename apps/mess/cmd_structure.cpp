// mess structure: sections, keys and modulations, climax and cadences of a file or of a dataset's tracks.
#include <chrono>

#include <fmt/format.h>

#include "catalog_cli.hpp"
#include "cli.hpp"
#include "mess/audio.hpp"
#include "mess/structure.hpp"

namespace mess::cli {
namespace {

struct StructureOptions {
    std::string file, out;
    DatasetChoice source;
    StructureParams params;
};

void print_structure(const std::string& name, const Structure& s) {
    fmt::print("{} ({:.1f} s)\n  sections:", name, s.duration_sec);
    for (const auto& x : s.sections) fmt::print(" {} {:.1f}–{:.1f}", x.label, x.start, x.end);
    fmt::print("\n  keys:");
    for (const auto& k : s.keys) fmt::print(" {} {:.1f}–{:.1f};", key_name(k.key), k.start, k.end);
    if (s.keys.empty()) fmt::print(" none (no tonal content)");
    fmt::print("\n");
    for (const auto& m : s.modulations)
        fmt::print("  modulation at {:.1f} s: {} → {} ({:+d} semitones)\n", m.time, key_name(m.from), key_name(m.to), m.interval);
    if (s.climax) fmt::print("  climax at {:.1f} s ({:.1f}–{:.1f})\n", s.climax->time, s.climax->start, s.climax->end);
    else fmt::print("  no climax (silent)\n");
    fmt::print("  cadences:");
    for (const auto& c : s.cadences) fmt::print(" {:.1f} s ({:.2f})", c.time, c.strength);
    fmt::print("{}\n", s.cadences.empty() ? " none" : "");
}

int run_file(const Context& ctx, const StructureOptions& o, bool json) {
    RunRecord run(ctx, "structure", {{"file", o.file}, {"params", structure_params_json(o.params)}});
    const auto t0 = std::chrono::steady_clock::now();
    const Structure s = analyze_structure(load_audio(o.file), o.params);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!o.out.empty()) write_structure_file(o.out, s);
    if (!o.out.empty()) run.add_output(o.out);
    run.finish({{"elapsed_sec", secs}, {"sections", s.sections.size()}});
    if (json) {
        nlohmann::json j = structure_to_json(s);
        j["file"] = o.file;
        j["elapsed_sec"] = secs;
        print_json(j);
    } else {
        print_structure(o.file, s);
    }
    return 0;
}

// Every track of the dataset, stored beside its features (FeatureStore::structure_path).
int run_dataset(const Context& ctx, const StructureOptions& o, bool json) {
    const Dataset ds = open_dataset(ctx, o.source);
    const FeatureStore store = ds.features();
    const auto tracks = ds.tracks();
    RunRecord run(ctx, "structure", {{"dataset", ds.id()}, {"params", structure_params_json(o.params)}});
    Progress progress("structure (tracks)", static_cast<std::int64_t>(tracks.size()));
    nlohmann::json results = nlohmann::json::array(), failures = nlohmann::json::array();
    for (const Track& t : tracks) {
        try {
            const Structure s = analyze_structure(load_audio(t.audio_path), o.params);
            write_structure_file(store.structure_path(t.track_id), s);
            nlohmann::json j = structure_to_json(s);
            j["track_id"] = t.track_id;
            results.push_back(std::move(j));
        } catch (const Error& e) {
            failures.push_back({{"track_id", t.track_id}, {"reason", e.what()}});
        }
        progress.advance();
    }
    progress.finish();
    run.add_output(store.root() / "structure");
    run.finish({{"dataset", ds.id()}, {"tracks", results.size()}, {"failures", failures}}, failures.empty() ? "ok" : "failed");
    if (json) print_json({{"dataset", ds.id()}, {"tracks", results}, {"failures", failures}});
    else fmt::print("structure of {} track(s) of {} → {}/structure/ ({} failed)\n", results.size(), ds.id(), store.root().string(), failures.size());
    for (const auto& f : failures) fmt::print(stderr, "  {}: {}\n", f["track_id"].get<std::string>(), f["reason"].get<std::string>());
    return failures.empty() ? 0 : 2;
}

}  // namespace

void add_structure_params(CLI::App* cmd, StructureParams& p) {
    cmd->add_option("--novelty-half", p.novelty_half_sec, "Boundary novelty kernel half-width (s)")->capture_default_str();
    cmd->add_option("--climax-novelty-half", p.climax_novelty_half_sec, "Climax novelty kernel half-width (s)")->capture_default_str();
    cmd->add_option("--novelty-smooth", p.novelty_smooth_sec, "Feature smoothing before the novelty (s)")->capture_default_str();
    cmd->add_option("--min-section", p.min_section_sec, "Shortest section (s)")->capture_default_str();
    cmd->add_option("--peak-threshold", p.peak_threshold, "Novelty above its local median for a boundary (0..1)")->capture_default_str();
    cmd->add_option("--place-range", p.place_sec, "Boundary placed within this of its novelty peak (s)")->capture_default_str();
    cmd->add_option("--key-window", p.key_window_sec, "Key window (s)")->capture_default_str();
    cmd->add_option("--key-penalty", p.key_change_penalty, "Viterbi cost of a key change")->capture_default_str();
    cmd->add_option("--no-key-score", p.no_key_score, "Score of the Viterbi's no-key state")->capture_default_str();
    cmd->add_option("--climax-smooth", p.climax_smooth_sec, "Climax curve smoothing σ (s)")->capture_default_str();
}

nlohmann::json structure_params_json(const StructureParams& p) {
    return {{"novelty_half_sec", p.novelty_half_sec}, {"climax_novelty_half_sec", p.climax_novelty_half_sec},
            {"novelty_smooth_sec", p.novelty_smooth_sec}, {"min_section_sec", p.min_section_sec},
            {"peak_threshold", p.peak_threshold}, {"place_sec", p.place_sec}, {"key_window_sec", p.key_window_sec},
            {"key_change_penalty", p.key_change_penalty}, {"no_key_score", p.no_key_score},
            {"climax_smooth_sec", p.climax_smooth_sec}};
}

void register_structure(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("structure",
        "The structure of a recording: section boundaries and labels by repetition (A, B, A'), the local\n"
        "key curve and its modulations, the climax and its extent, and cadences with a strength. With\n"
        "--dataset, every track is analysed and stored beside its features (structure/<track>.json).\n"
        "Method and limits: include/mess/structure.hpp; measured accuracy: docs/STRUCTURE.md.");
    static StructureOptions o;
    cmd->add_option("FILE", o.file, "Audio file");
    add_dataset_options(cmd, o.source);
    cmd->add_option("--out", o.out, "Also write the JSON here (atomically; a file)");
    add_structure_params(cmd, o.params);
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] {
        ctx.run = [&ctx, &json] {
            const bool by_dataset = !o.source.dataset.empty() || !o.source.audio_dir.empty();
            if (o.file.empty() == !by_dataset) throw_usage("give either FILE or --dataset NAME (or --audio-dir DIR --dataset-id NAME)");
            o.params.validate();
            return by_dataset ? run_dataset(ctx, o, json) : run_file(ctx, o, json);
        };
    });
}

}  // namespace mess::cli
