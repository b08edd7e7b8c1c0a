// mess eval, mess eval compare, mess corpus render.
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"
#include "mess/artifacts.hpp"
#include "mess/eval.hpp"
#include "mess/probe.hpp"

namespace fs = std::filesystem;

namespace mess::cli {
namespace {

struct EvalOptions {
    std::string index, name, labels, out, ks = "1,5,10", aspects, aspect_weights, learned, rerank;
    std::size_t rerank_candidates = 50;
    int context = 0;
    std::int64_t queries = 0;
    std::uint64_t seed = 0;
    int nprobe = 0, ef_search = 0;
    bool per_query = false, no_exact_recall = false;
};

std::vector<int> parse_ks(const std::string& text) {
    std::vector<int> ks;
    for (const std::string& item : split(text, ',')) {
        if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 6)
            throw_usage("--k '{}': expected positive integers separated by commas", text);
        ks.push_back(std::stoi(item));
        if (ks.back() < 1) throw_usage("--k '{}': every K must be ≥ 1", text);
    }
    return ks;
}

nlohmann::json read_report(const std::string& path) {
    const auto j = nlohmann::json::parse(read_file(path), nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("schema", "") != "mess-eval/1")
        throw_input("{}: not a mess eval report (schema mess-eval/1)", path);
    return j;
}

int run_eval(const Context& ctx, const EvalOptions& o, bool json) {
    RunRecord run(ctx, "eval", {{"index", o.index}, {"name", o.name}, {"labels", o.labels}, {"ks", o.ks}, {"aspects", o.aspects},
                                {"aspect_weights", o.aspect_weights}, {"queries", o.queries}, {"seed", o.seed}});
    const auto art = std::make_shared<const LoadedArtifact>(load_artifact(resolve_artifact_dir(o.index, o.name)));
    const Searcher searcher = make_searcher(art);
    const Labels labels = read_labels(o.labels);
    EvalParams p;
    p.ks = parse_ks(o.ks);
    p.max_queries = o.queries;
    p.seed = o.seed;
    p.nprobe = o.nprobe;
    p.ef_search = o.ef_search;
    p.per_query = o.per_query;
    p.exact_recall = !o.no_exact_recall;
    for (const std::string& a : split(o.aspects, ','))
        if (!a.empty()) p.aspects.push_back(a);
    if (p.aspects.empty()) {  // every aspect the labels carry
        std::set<std::string> keys;
        for (const auto& it : labels.items)
            for (const auto& [k, v] : it.aspects) keys.insert(k);
        p.aspects.assign(keys.begin(), keys.end());
    }
    if (!o.aspect_weights.empty()) p.layer_weights = searcher.layer_weights(parse_aspect_request(o.aspect_weights));
    if (!o.learned.empty()) p.learned_aspects = parse_aspect_request(o.learned);
    if (!o.rerank.empty()) p.rerank = RerankParams{parse_reduction(o.rerank), o.rerank_candidates};
    p.passage_context = o.context;  // evaluate() refuses both on a track index
    Progress progress("eval (queries per protocol)", 0);
    p.on_progress = progress_sink(progress);
    nlohmann::json report = evaluate(searcher, labels, p);
    progress.finish();
    report["index"]["dir"] = art->dir.string();
    report["index"]["version_id"] = art->version_id();
    report["labels_file"] = fs::path(o.labels).filename().string();
    if (!o.aspect_weights.empty()) report["config"]["aspect_weights"] = o.aspect_weights;
    if (!o.learned.empty()) report["config"]["learned"] = o.learned;
    if (!o.out.empty()) write_file_atomic(o.out, report.dump(2) + "\n");
    if (!o.out.empty()) run.add_output(o.out);
    run.finish(report);
    if (json) print_json(report);
    else fmt::print("{}{}", format_report(report), o.out.empty() ? "" : fmt::format("report → {}\n", o.out));
    return 0;
}

struct RenderOptions {
    std::vector<std::string> midi;
    std::string out, soundfont, piano_soundfont, licence;
    int variants = 6, sample_rate = 22050;
    double max_seconds = 60;
    std::uint64_t seed = 0;
    bool factors = false;
    std::vector<std::string> factor_names;
    bool structure = false;
    int items = 8;
};

// mess corpus render --structure: medleys, transposed repeats and swells with their ground truth.
int run_render_structure(const RenderOptions& o, const std::vector<fs::path>& files, bool json) {
    StructureCorpusParams p;
    p.items = o.items;
    p.seed = o.seed;
    p.sample_rate = o.sample_rate;
    p.soundfont = o.soundfont;
    p.licence = o.licence;
    Progress progress("corpus render --structure (items)", 3 * o.items);
    p.on_progress = progress_sink(progress);
    const CorpusReport r = render_structure_corpus(files, o.out, p);
    progress.finish();
    if (json) print_json({{"pieces", r.pieces}, {"renderings", r.renderings}, {"labels", r.labels_path.string()}});
    else fmt::print("{} source piece(s) → {} structure item(s) in {}; evaluate with: mess eval structure --labels {}\n", r.pieces,
                    r.renderings, o.out, r.labels_path.string());
    for (const auto& [f, why] : r.skipped) fmt::print("  skipped {}\n", why);
    return 0;
}

std::vector<fs::path> midi_files_of(const RenderOptions& o) {
    std::vector<fs::path> files;
    for (const auto& m : o.midi) {
        if (fs::is_directory(m)) {
            for (const auto& e : fs::recursive_directory_iterator(m)) {
                auto ext = e.path().extension().string();
                ext = to_lower(ext);
                if (e.is_regular_file() && (ext == ".mid" || ext == ".midi" || ext == ".kar")) files.push_back(e.path());
            }
        } else if (fs::exists(m)) {
            files.emplace_back(m);
        } else {
            throw_input("{}: no such MIDI file or folder", m);
        }
    }
    if (files.empty()) throw_input("no .mid/.midi files found in {}", fmt::join(o.midi, ", "));
    return files;
}

// mess corpus render --factors: the one-factor-at-a-time grid.
int run_render_factors(const RenderOptions& o, const std::vector<fs::path>& files, bool json) {
    FactorCorpusParams p;
    if (!o.factor_names.empty()) p.factors = o.factor_names;
    p.max_seconds = o.max_seconds;
    p.sample_rate = o.sample_rate;
    p.soundfont = o.soundfont;
    p.licence = o.licence;
    const auto per_piece = static_cast<std::int64_t>(factor_grid_ids(p.factors).size());
    Progress progress("corpus render --factors (renderings)", static_cast<std::int64_t>(files.size()) * per_piece);
    p.on_progress = progress_sink(progress);
    const CorpusReport r = render_factor_corpus(files, o.out, p);
    progress.finish();
    if (json) {
        print_json({{"pieces", r.pieces}, {"renderings", r.renderings}, {"labels", r.labels_path.string()}});
    } else {
        fmt::print("{} piece(s) × {} setting(s) → {} rendering(s) in {}\n", r.pieces, per_piece, r.renderings, o.out);
        for (const auto& [f, why] : r.skipped) fmt::print("  skipped {}\n", why);
        fmt::print("labels → {}; extract with: mess extract --audio-dir {}/audio --dataset-id NAME --model dsp\n",
                   r.labels_path.string(), o.out);
    }
    return r.skipped.empty() ? 0 : 3;
}

int run_render(const RenderOptions& o, bool json) {
    const std::vector<fs::path> files = midi_files_of(o);
    if (o.factors) return run_render_factors(o, files, json);
    if (o.structure) return run_render_structure(o, files, json);
    CorpusParams p;
    p.piano_soundfont = o.piano_soundfont;
    p.variants = o.variants;
    p.seed = o.seed;
    p.max_seconds = o.max_seconds;
    p.sample_rate = o.sample_rate;
    p.soundfont = o.soundfont;
    p.licence = o.licence;
    Progress progress("corpus render (renderings)", static_cast<std::int64_t>(files.size()) * o.variants);
    p.on_progress = progress_sink(progress);
    const CorpusReport r = render_corpus(files, o.out, p);
    progress.finish();
    nlohmann::json skipped = nlohmann::json::array();
    for (const auto& [f, why] : r.skipped) skipped.push_back({{"file", f}, {"reason", why}});
    if (json) {
        print_json({{"pieces", r.pieces}, {"renderings", r.renderings}, {"skipped", skipped}, {"labels", r.labels_path.string()}});
    } else {
        fmt::print("{} piece(s) × {} variant(s) → {} rendering(s) in {}\n", r.pieces, o.variants, r.renderings, o.out);
        for (const auto& [f, why] : r.skipped) fmt::print("  skipped {}\n", why);
        fmt::print("labels → {}; extract with: mess extract --audio-dir {}/audio --dataset-id NAME --model dsp\n",
                   r.labels_path.string(), o.out);
    }
    return r.skipped.empty() ? 0 : 3;
}

// mess eval align: alignment accuracy against the labels' time maps.
void register_eval_align(CLI::App* eval, Context& ctx) {
    auto* align = eval->add_subcommand("align",
        "Alignment accuracy on labels with time maps (`mess corpus render` writes them): each work's reference\n"
        "rendering is aligned with every other rendering, and each time-map point's aligned time is compared\n"
        "with the truth. Prints, per variant, the mean and median error and the share of points off by more\n"
        "than 50, 100, 200 and 500 ms, the transposition found, the confidence, and the confidence given to\n"
        "pairs of different works (which should be low).");
    static std::string align_labels, align_out;
    static bool align_open_end = false, align_exact = false;
    align->add_option("--labels", align_labels, "Labels file (labels.json); audio paths relative to it")->required();
    align->add_option("--out", align_out, "Write the JSON report here (atomically)");
    align->add_flag("--open-end", align_open_end, "Align with an open end");
    align->add_flag("--exact", align_exact, "Full-matrix DTW instead of multiscale");
    bool& ajson = add_json_flag(align);
    align->callback([&ctx, &ajson] {
        ctx.run = [&ctx, &ajson] {
            RunRecord run(ctx, "eval-align", {{"labels", align_labels}, {"open_end", align_open_end}, {"exact", align_exact}});
            AlignEvalParams p;
            p.align.dtw.dtw.open_end = align_open_end;
            p.align.exact = align_exact;
            Progress progress("eval align (pairs)", 0);
            p.on_progress = progress_sink(progress);
            const auto report = evaluate_alignment(read_labels(align_labels), fs::path(align_labels).parent_path(), p);
            progress.finish();
            if (!align_out.empty()) write_file_atomic(align_out, report.dump(2) + "\n");
            if (!align_out.empty()) run.add_output(align_out);
            run.finish(report, report["failures"].empty() ? "ok" : "failed");
            if (ajson) print_json(report);
            else fmt::print("{}", format_alignment_report(report));
            return report["failures"].empty() ? 0 : 2;
        };
    });
}

// mess eval structure: boundaries, keys, modulations and climax against a structure corpus's labels.
void register_eval_structure(CLI::App* eval, Context& ctx) {
    auto* cmd = eval->add_subcommand("structure",
        "Structure accuracy on a structure corpus (`mess corpus render --structure`): boundary hit-rate F at\n"
        "0.5 s and 3 s (trimmed and untrimmed, as mir_eval.segment.detection) on medleys, key accuracy (MIREX\n"
        "weighted score) and modulation detection (within 3 s, the interval, false key changes per minute) on\n"
        "transposed repeats, and the climax time error on swells.");
    static std::string labels, out;
    static StructureParams params;
    cmd->add_option("--labels", labels, "Labels file of a structure corpus")->required();
    add_structure_params(cmd, params);
    cmd->add_option("--out", out, "Write the JSON report here (atomically)");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] {
        ctx.run = [&ctx, &json] {
            RunRecord run(ctx, "eval-structure", {{"labels", labels}, {"params", structure_params_json(params)}});
            StructureEvalParams p;
            p.structure = params;
            Progress progress("eval structure (items)", 0);
            p.on_progress = progress_sink(progress);
            const auto report = evaluate_structure(labels, p);
            progress.finish();
            if (!out.empty()) write_file_atomic(out, report.dump(1) + "\n");
            if (!out.empty()) run.add_output(out);
            run.finish(report);
            if (json) print_json(report);
            else fmt::print("{}", format_structure_report(report));
            return 0;
        };
    });
}

// mess corpus render: labelled variants, factor grids (--factors) or structure corpora (--structure).
void register_corpus(CLI::App& app, Context& ctx) {
    auto* corpus = app.add_subcommand("corpus", "Labelled benchmark corpora");
    corpus->require_subcommand(1);
    auto* render = corpus->add_subcommand("render",
        "Render labelled performances of MIDI pieces with libfluidsynth: per piece, variant 0 as written,\n"
        "then tempo + rubato, transposition, dynamics (velocity scale/compression, swells), articulation\n"
        "(note lengths, pedal), timbre (General MIDI program), a combination of all, another piano model\n"
        "(variant 7, --piano-soundfont), and more combinations, drawn from --seed.\n"
        "Writes audio/<work>__vNN.wav, midi/<work>__vNN.mid, metadata.csv and labels.json (work and\n"
        "recording ids, every transform parameter, aspect labels, a source → rendered time map).\n"
        "MIDI in Debian: the pianobooster package ships CC-BY pieces (scripts/corpus fetches them).");
    static RenderOptions r;
    render->add_option("--midi", r.midi, "MIDI files or folders (recursive)")->required();
    render->add_option("--out", r.out, "Output folder")->required();
    render->add_option("--variants", r.variants, "Renderings per piece (1..16)")->capture_default_str();
    render->add_option("--seed", r.seed, "Transformation parameters' seed")->capture_default_str();
    render->add_option("--max-seconds", r.max_seconds, "Source seconds rendered per piece")->capture_default_str();
    render->add_option("--sample-rate", r.sample_rate, "WAV sample rate (Hz, mono 16-bit)")->capture_default_str();
    render->add_option("--soundfont", r.soundfont, "SoundFont (default: Debian's FluidR3_GM from fluid-soundfont-gm)");
    render->add_option("--piano-soundfont", r.piano_soundfont,
                       "Variant 7's other piano model (default: Debian's TimGM6mb from timgm6mb-soundfont, when installed)");
    render->add_option("--licence", r.licence, "Licence of the sources, recorded per item");
    render->add_flag("--factors", r.factors,
                     "Factor-controlled grid instead of variants: one factor changed at a time from a neutral base\n"
                     "(tempo, dynamics, articulation, timbre, transpose); labels record factor and value.\n"
                     "Values are absolute, the same for every piece: tempo 100/125/160 (base)/200/250 beats per minute,\n"
                     "one beat = the piece's median interval between onset events (onsets < 50 ms apart within 0.2 s: one);\n"
                     "dynamics soft/medium (base)/loud = mean velocity 40/72/110, crescendo/diminuendo = hairpins\n"
                     "30 <-> 115 starting again every 5 s, each piece's base at -26 dBFS RMS (its renderings at one gain; voices far\n"
                     "above the piece's mean velocity compressed just enough to stay under 127 at the loudest level); articulation\n"
                     "staccato/normal (base)/legato = note length 0.3/0.85/1.25 of the time to the channel's next\n"
                     "onset (legato with the sustain pedal); timbre GM programs; transpose -5/-2/+3/+6");
    render->add_option("--factor", r.factor_names, "With --factors: only these factors (repeatable)");
    render->add_flag("--structure", r.structure,
        "Render a structure corpus instead: medleys (boundaries), excerpts followed by themselves transposed\n"
        "(modulations with a known interval) and swells to a climax, with their ground truth");
    render->add_option("--items", r.items, "With --structure: items of each kind (1..100)")->capture_default_str();
    bool& rjson = add_json_flag(render);
    render->callback([&ctx, &rjson] { ctx.run = [&rjson] { return run_render(r, rjson); }; });
}

}  // namespace

void register_eval(CLI::App& app, Context& ctx) {
    auto* eval = app.add_subcommand("eval",
        "Measure retrieval against labels: Recall@K, Precision@K, nDCG@K, MRR, MAP and the mean rank of the\n"
        "first correct hit, for same-work (other recordings of the piece) and same-recording relevance, plus\n"
        "aspect faithfulness (share of the top K sharing the query's label for an aspect), the recall of an\n"
        "approximate index against exact search, and latency percentiles. Track indexes: track → tracks;\n"
        "clip indexes: passage → passages (aligned through the labels' time maps) and passage → tracks, and with\n"
        "--rerank track → tracks ranked from their passages.\n"
        "Labels: JSON with items {id (track id), work_id, recording_id, aspects, time_map}; see\n"
        "`mess corpus render`.");
    static EvalOptions e;
    eval->add_option("--index", e.index, "Artifact directory, or an artifact root with --name");
    eval->add_option("--name", e.name, "Artifact name under --index (newest version)");
    eval->add_option("--labels", e.labels, "Labels file (labels.json)");
    eval->add_option("--k", e.ks, "Cut-offs, comma separated")->capture_default_str();
    eval->add_option("--queries", e.queries, "Sample this many queries (seeded; 0 = every labelled row)")->capture_default_str();
    eval->add_option("--seed", e.seed, "Query sampling seed")->capture_default_str();
    eval->add_option("--aspects", e.aspects, "Label aspects to measure faithfulness for (default: all in the labels)");
    eval->add_option("--aspect-weights", e.aspect_weights, "Rank by probed aspects, e.g. dynamics=1 (needs a probed index)");
    eval->add_option("--learned", e.learned, "Rank in the index's learned aspect spaces, e.g. same_work=1 (mess train same-work; an index\n"
                                             "built with --aspect-models): compare with a run without it");
    eval->add_option("--rerank", e.rerank, "Clip index: also rank tracks from passages in two stages, one query per track (protocol\n"
                                           "track_rerank), by this reduction of the passage similarity matrix:\n"
                                           "min | mean-min | mean-min-sym | best-k | pairs (see mess search --rerank)");
    eval->add_option("--rerank-candidates", e.rerank_candidates, "With --rerank: passage hits per query window proposing candidates")
        ->capture_default_str();
    eval->add_option("--context", e.context, "Clip index: passage protocols score each passage with its neighbours too, N windows each\n"
                                             "side (mess search --context)")
        ->check(CLI::Range(0, 20))->capture_default_str();
    eval->add_option("--nprobe", e.nprobe, "IVF lists to visit");
    eval->add_option("--ef-search", e.ef_search, "HNSW candidate list size");
    eval->add_flag("--per-query", e.per_query, "Include every query's first relevant rank and AP");
    eval->add_flag("--no-exact-recall", e.no_exact_recall, "Skip measuring an approximate index against exact search");
    eval->add_option("--out", e.out, "Write the JSON report here (atomically)");
    bool& ejson = add_json_flag(eval);
    auto* compare = eval->add_subcommand("compare", "Two eval reports side by side: metric, A, B, B − A");
    static std::string report_a, report_b;
    compare->add_option("A", report_a, "First report (JSON from mess eval --out)")->required();
    compare->add_option("B", report_b, "Second report")->required();
    bool& cjson = add_json_flag(compare);
    compare->callback([&ctx, &cjson] {
        ctx.run = [&cjson] {
            const auto a = read_report(report_a), b = read_report(report_b);
            if (cjson) {
                print_json({{"a", a}, {"b", b}});
                return 0;
            }
            fmt::print("A = {}\nB = {}\n{}", report_a, report_b,
                       format_comparison(a, b, fs::path(report_a).stem().string(), fs::path(report_b).stem().string()));
            return 0;
        };
    });
    register_eval_align(eval, ctx);
    register_eval_aspects(eval, ctx);
    register_eval_structure(eval, ctx);
    eval->callback([&ctx, &ejson, eval] {
        for (const char* sub : {"compare", "align", "aspects", "triplets", "structure", "same-work"})
            if (eval->got_subcommand(sub)) return;
        if (e.index.empty() || e.labels.empty()) throw CLI::RequiredError("--index and --labels");
        ctx.run = [&ctx, &ejson] { return run_eval(ctx, e, ejson); };
    });

    register_corpus(app, ctx);
}

}  // namespace mess::cli
