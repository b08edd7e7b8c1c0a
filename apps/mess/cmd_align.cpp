// mess align: the alignment of two performances (path CSV / .npy, a time lookup, a JSON summary).
#include <chrono>
#include <sys/resource.h>

#include <fmt/format.h>

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
    return {{"a", o.a}, {"b", o.b},
            {"duration_a", al.duration_a}, {"duration_b", al.duration_b},
            {"transposition", al.transposition},
            {"mean_tempo_ratio", al.mean_tempo_ratio()},
            {"path_cost", al.path_cost}, {"cost_ratio", al.cost_ratio},
            {"confidence", al.confidence}, {"reliable", al.reliable()},
            {"path_rows", al.path_sec.size()},
            {"aligned_span_b", {al.path_sec.front()[1], al.path_sec.back()[1]}},
            {"at", at},
            {"elapsed_sec", seconds},
            {"dtw_cells", al.cells_computed},
            {"dtw_working_mb", static_cast<double>(al.working_bytes) / (1024.0 * 1024.0)},
            {"peak_rss_mb", peak_rss_mb()}};
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

}  // namespace

void register_align(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("align",
        "Align two performances of one piece: for every moment of A, the same moment in B. Features: chroma and\n"
        "onset chroma at 50 frames/s (robust to instrument, loudness and articulation); multiscale DTW (memory\n"
        "bounded for any length); the transposition between them is found and reported. Output: the path as\n"
        "CSV (time_a,time_b in seconds, one row per 20-ms frame of the path) and/or .npy ([N, 2] float64), the\n"
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
}

}  // namespace mess::cli
