// mess align: the alignment of two performances (path CSV / .npy, a time lookup, a JSON summary).
#include <algorithm>
#include <chrono>
#include <sys/resource.h>

#include <fmt/format.h>

#include "catalog_cli.hpp"
#include "cli.hpp"
#include "mess/align.hpp"
#include "mess/npy.hpp"

namespace mess::cli {
namespace {

struct AlignOptions {
    std::string a, b, out, npy;
    std::vector<double> at;
    bool open_begin = false, open_end = false, no_transpose = false, exact = false, allow_unreliable = false;
    int radius = 12;
};

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string path_csv(const Alignment& al) {
    std::string csv = "time_a,time_b\n";
    for (const auto& [ta, tb] : al.path_sec) csv += fmt::format("{:.4f},{:.4f}\n", ta, tb);
    return csv;
}

void write_path_npy(const std::string& path, const Alignment& al) {
    std::vector<double> flat;
    flat.reserve(al.path_sec.size() * 2);
    for (const auto& [ta, tb] : al.path_sec) flat.insert(flat.end(), {ta, tb});
    write_npy(path, NpyArray::from(flat, {static_cast<std::int64_t>(al.path_sec.size()), 2}));
}

nlohmann::json summary(const AlignOptions& o, const Alignment& al, double seconds) {
    nlohmann::json at = nlohmann::json::array();
    for (double t : o.at) at.push_back({{"time_a", t}, {"time_b", al.time_b_at(t)}});
    nlohmann::json s = alignment_to_json(al);
    s.update({{"a", o.a}, {"b", o.b}, {"at", at}, {"elapsed_sec", seconds}, {"peak_rss_mb", peak_rss_mb()}});
    return s;
}

int run_align(const AlignOptions& o, bool json) {
    const auto t0 = std::chrono::steady_clock::now();
    AlignParams p;
    p.dtw.dtw.open_begin = o.open_begin;
    p.dtw.dtw.open_end = o.open_end;
    p.dtw.radius = o.radius;
    p.detect_transposition = !o.no_transpose;
    p.exact = o.exact;
    const Alignment al = align_audio(load_audio(o.a), load_audio(o.b), p);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const nlohmann::json s = summary(o, al, secs);
    if (!al.reliable() && !o.allow_unreliable)
        throw_input("{} and {} have too little in common to align (confidence {:.2f}, cost ratio {:.2f}); nothing written. "
                    "--allow-unreliable writes the path anyway",
                    o.a, o.b, al.confidence, al.cost_ratio);
    if (!o.out.empty()) write_file_atomic(o.out, path_csv(al));
    if (!o.npy.empty()) write_path_npy(o.npy, al);
    if (json) {
        print_json(s);
    } else if (!o.at.empty()) {
        for (const auto& x : s["at"]) fmt::print("{:.3f}\n", x["time_b"].get<double>());
    } else {
        fmt::print("{} ({:.1f} s) ↔ {} ({:.1f} s): transposition {:+d}, B's tempo {:.3f}× A's, confidence {:.2f}{}\n", o.a,
                   al.duration_a, o.b, al.duration_b, al.transposition, al.mean_tempo_ratio(), al.confidence,
                   al.reliable() ? "" : " (unreliable)");
        fmt::print("{} path rows in {:.2f} s, DTW working memory {:.1f} MB{}\n", al.path_sec.size(), secs,
                   s["dtw_working_mb"].get<double>(), o.out.empty() && o.npy.empty() ? " (--out FILE.csv to keep the path)" : "");
    }
    return 0;
}

struct CompareOptions {
    std::vector<std::string> files;
    DatasetChoice source;
    std::string work, ref, out_dir;
    double start = 0, end = 0, step = 0.1, window = 3.0, ref_bpm = 0;
};

// The performances to compare: the files given, or the tracks of a work in a dataset's metadata (the
// reference first: --ref, else the first file or track).
std::vector<Performance> load_performances(const Context& ctx, const CompareOptions& o) {
    std::vector<std::pair<std::string, std::filesystem::path>> named;
    if (!o.work.empty()) {
        Dataset ds = open_dataset(ctx, o.source);
        const MetadataTable meta = use_catalog_metadata(*open_catalog(ctx), ds);
        for (const auto& t : ds.tracks())
            if (const auto* row = meta.find(t.track_id); row && row->work_id == o.work) named.emplace_back(t.track_id, t.audio_path);
        if (named.size() < 2) throw_input("work '{}' has {} performance(s) in dataset {}; a comparison needs two or more", o.work, named.size(), ds.id());
    } else {
        for (const auto& f : o.files) named.emplace_back(std::filesystem::path(f).stem().string(), f);
    }
    if (!o.ref.empty()) {
        auto it = std::find_if(named.begin(), named.end(), [&](const auto& n) { return n.first == o.ref || n.second.string() == o.ref; });
        if (it == named.end()) throw_usage("--ref '{}' is not one of the performances compared", o.ref);
        std::rotate(named.begin(), it, it + 1);
    }
    std::vector<Performance> perfs;
    for (const auto& [name, path] : named) perfs.push_back({name, load_audio(path)});
    return perfs;
}

std::string curves_csv(const Comparison& c) {
    std::string csv = "time_ref";
    for (const auto& p : c.performances) csv += fmt::format(",tempo_ratio:{0},loudness_db:{0}", p.name);
    csv += "\n";
    for (std::size_t k = 0; k < c.times.size(); ++k) {
        csv += fmt::format("{:.3f}", c.times[k]);
        for (const auto& p : c.performances) csv += fmt::format(",{:.4f},{:.2f}", p.tempo_ratio[k], p.loudness_db[k]);
        csv += "\n";
    }
    return csv;
}

// [P, T] float64 of one curve per performance.
NpyArray curves_npy(const Comparison& c, std::vector<double> PerformanceCurves::*curve) {
    std::vector<double> flat;
    for (const auto& p : c.performances) flat.insert(flat.end(), (p.*curve).begin(), (p.*curve).end());
    return NpyArray::from(flat, {static_cast<std::int64_t>(c.performances.size()), static_cast<std::int64_t>(c.times.size())});
}

// Two stacked panels (tempo ratio, loudness) over the reference's time axis, one coloured line per performance.
std::string comparison_svg(const Comparison& c) {
    static const char* colours[] = {"#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057", "#c0792c"};
    const double w = 900, h = 220, left = 60, gap = 40, x0 = c.times.front(), x1 = std::max(c.times.back(), x0 + 1e-3);
    std::string svg = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
                                  "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n", w + left + 20, 2 * h + 3 * gap + 20);
    auto panel = [&](double top, const char* label, auto value_of) {
        double lo = 1e300, hi = -1e300;
        for (std::size_t p = 0; p < c.performances.size(); ++p)
            for (double v : value_of(p)) lo = std::min(lo, v), hi = std::max(hi, v);
        if (hi - lo < 1e-6) lo -= 0.5, hi += 0.5;
        svg += fmt::format("<text x=\"{}\" y=\"{}\">{} ({:.2f} … {:.2f})</text>\n", left, top - 8, label, lo, hi);
        svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", left, top, w, h);
        for (std::size_t p = 0; p < c.performances.size(); ++p) {
            std::string points;
            const auto values = value_of(p);
            for (std::size_t k = 0; k < c.times.size(); ++k)
                points += fmt::format("{:.1f},{:.1f} ", left + w * (c.times[k] - x0) / (x1 - x0), top + h * (hi - values[k]) / (hi - lo));
            svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", colours[p % 8], points);
        }
    };
    panel(gap, "tempo relative to the reference", [&](std::size_t p) { return c.performances[p].tempo_ratio; });
    panel(2 * gap + h, "loudness, dBFS", [&](std::size_t p) { return c.performances[p].loudness_db; });
    const double bottom = 2 * gap + 2 * h;
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{:.1f} s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1f} s of {}</text>\n", left,
                       bottom + 16, x0, left + w, bottom + 16, x1, c.performances.front().name);
    for (std::size_t p = 0; p < c.performances.size(); ++p)
        svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n", left + 10 + 150 * static_cast<double>(p % 6), bottom + 34 + 14 * static_cast<double>(p / 6),
                           colours[p % 8], c.performances[p].name);
    return svg + "</svg>\n";
}

int run_compare(const Context& ctx, const CompareOptions& o, bool json) {
    CompareParams p;
    p.start_sec = o.start;
    p.end_sec = o.end;
    p.step_sec = o.step;
    p.tempo_window_sec = o.window;
    p.reference_bpm = o.ref_bpm;
    p.validate();
    const Comparison c = compare_performances(load_performances(ctx, o), p);
    const nlohmann::json j = comparison_to_json(c);
    if (!o.out_dir.empty()) {
        const std::filesystem::path dir = o.out_dir;
        std::filesystem::create_directories(dir);
        write_file_atomic(dir / "comparison.json", j.dump(2) + "\n");
        write_file_atomic(dir / "curves.csv", curves_csv(c));
        write_npy(dir / "times.npy", NpyArray::from(c.times, {static_cast<std::int64_t>(c.times.size())}));
        write_npy(dir / "tempo_ratio.npy", curves_npy(c, &PerformanceCurves::tempo_ratio));
        write_npy(dir / "loudness_db.npy", curves_npy(c, &PerformanceCurves::loudness_db));
        write_file_atomic(dir / "comparison.svg", comparison_svg(c));
    }
    if (json) {
        print_json(j);
        return 0;
    }
    fmt::print("passage {:.1f}–{:.1f} s of {} (reference); longest first:\n", c.start_sec, c.end_sec, c.performances.front().name);
    for (std::size_t k : c.longest_first) {
        const auto& perf = c.performances[k];
        fmt::print("  {:<32} {:7.2f} s  ({:.3f}× the reference's tempo, transposition {:+d}, confidence {:.2f})\n", perf.name,
                   perf.passage_duration(), perf.alignment.mean_tempo_ratio(), perf.alignment.transposition, perf.alignment.confidence);
    }
    if (!o.out_dir.empty())
        fmt::print("→ {0}/comparison.json, curves.csv, times.npy, tempo_ratio.npy, loudness_db.npy, comparison.svg\n", o.out_dir);
    return 0;
}

}  // namespace

void register_compare(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("compare",
        "Compare performances of one piece on the reference's time axis: each one is aligned to the reference\n"
        "(the first, or --ref), then its local tempo (relative to the reference; in BPM with --ref-bpm) and its\n"
        "loudness at the aligned moment are sampled every --step seconds, the chosen passage's duration in each\n"
        "performance is ranked (who stretches it most), and the tempo curves are correlated.\n"
        "Give audio files, or --work WORK_ID with a dataset (its metadata's work_id). --out-dir writes\n"
        "comparison.json, curves.csv, times.npy [T], tempo_ratio.npy and loudness_db.npy [P, T], comparison.svg.\n"
        "Example: mess compare --dataset smd --work Chopin_Op028-15 --start 30 --end 45 --out-dir cmp");
    static CompareOptions o;
    cmd->add_option("FILE", o.files, "Audio files (the first is the reference unless --ref)");
    add_dataset_options(cmd, o.source);
    cmd->add_option("--work", o.work, "Compare the dataset's performances of this work");
    cmd->add_option("--ref", o.ref, "Reference performance (track id or file)");
    cmd->add_option("--start", o.start, "Passage start on the reference, seconds")->capture_default_str();
    cmd->add_option("--end", o.end, "Passage end on the reference, seconds (0: the end)")->capture_default_str();
    cmd->add_option("--step", o.step, "Curve step, seconds")->capture_default_str();
    cmd->add_option("--tempo-window", o.window, "Window of the local tempo, seconds")->capture_default_str();
    cmd->add_option("--ref-bpm", o.ref_bpm, "The reference's tempo in BPM when known (adds BPM curves)");
    cmd->add_option("--out-dir", o.out_dir, "Write JSON, CSV, .npy and SVG here");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] {
        if (o.work.empty() == o.files.empty()) throw CLI::ValidationError("give audio files or --work (with --dataset), not both");
        ctx.run = [&ctx, &json] { return run_compare(ctx, o, json); };
    });
}

void register_align(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("align",
        "Align two performances of one piece: for every moment of A, the same moment in B. Features: chroma and\n"
        "onset chroma at 50 frames/s (robust to instrument, loudness and articulation); multiscale DTW (memory\n"
        "bounded for any length); the transposition between them is found and reported. Output: the path as\n"
        "CSV (time_a,time_b in seconds, one row per 20-ms frame of A) and/or .npy ([N, 2] float64), the\n"
        "time in B of --at seconds of A, or a JSON summary (durations, transposition, mean tempo ratio, cost,\n"
        "confidence, time, memory). Two recordings with too little in common are refused (exit 2) unless\n"
        "--allow-unreliable. Example: mess align take1.flac take2.flac --out path.csv --at 61.5");
    static AlignOptions o;
    cmd->add_option("A", o.a, "First recording (the time axis of the path)")->required();
    cmd->add_option("B", o.b, "Second recording")->required();
    cmd->add_option("--out", o.out, "Write the path as CSV (time_a,time_b), atomically");
    cmd->add_option("--npy", o.npy, "Write the path as .npy, [N, 2] float64 seconds");
    cmd->add_option("--at", o.at, "Print B's time for these seconds of A (repeatable)");
    cmd->add_flag("--open-begin", o.open_begin, "B may begin with material A lacks (the path may start anywhere in B)");
    cmd->add_flag("--open-end", o.open_end, "B may end with material A lacks (applause, a repeat)");
    cmd->add_flag("--no-transpose", o.no_transpose, "Do not look for a transposition");
    cmd->add_option("--radius", o.radius, "Band radius of the multiscale refinement, frames")->capture_default_str();
    cmd->add_flag("--exact", o.exact, "Full-matrix DTW (memory: frames_A × frames_B bytes); for checking");
    cmd->add_flag("--allow-unreliable", o.allow_unreliable, "Write the path even when the confidence is low");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&json] { return run_align(o, json); }; });
    register_compare(app, ctx);
}

}  // namespace mess::cli
