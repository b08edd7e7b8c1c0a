#include <algorithm>
#if defined(__GLIBC__)
#endif
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"
#include "mess/catalog.hpp"
#include "mess/targets.hpp"

namespace mess::cli {
namespace {

struct TargetsOptions {
    DatasetChoice source;
    bool force = false, no_curves = false, no_windows = false;
    int jobs = 0;  // files computed at once; 0 = one per core
};

// What a run does with a track's existing target file.
enum class Cached { absent, valid, corrupt, source_changed };

// A track's target file checked against its audio: it must read (read_targets validates every member) and,
// when it records the audio's stamp, the audio must still have that size and modification time. Files
// from before stamps are kept without the audio check (mess/targets.hpp).
std::pair<Cached, std::string> check_cached(const std::filesystem::path& path, const std::optional<FileStamp>& audio) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {Cached::absent, {}};
    TargetSet old;
    try {
        old = read_targets(path);
    } catch (const Error& e) {
        return {Cached::corrupt, e.what()};
    }
    if (audio && old.source && *audio != *old.source)
        return {Cached::source_changed, fmt::format("the audio's {} since the targets were computed", describe_change(*old.source, *audio))};
    return {Cached::valid, {}};
}

// One `mess targets` run over a dataset: counts, per-track outcomes, the report.
class TargetsRun {
public:
    TargetsRun(const Dataset& ds, const TargetsOptions& o, const Context& ctx) : ds_(ds), o_(o) {
        params_.curves = !o.no_curves;
        params_.per_window = !o.no_windows;
        params_.windows.seconds = ctx.config.window_seconds.value;
        params_.windows.overlap = ctx.config.overlap.value;
    }

    void process(const Track& t) {
        const auto path = ds_.targets_path(t.track_id);
        std::optional<FileStamp> stamp;  // taken before decoding: a change while we compute shows next time
        try {
            stamp = file_stamp(t.audio_path);
        } catch (const Error&) {}  // decoding reports the problem
        auto [state, reason] = o_.force ? std::pair{Cached::absent, std::string()} : check_cached(path, stamp);
        if (state == Cached::valid) {
            const std::lock_guard lock(mu_);
            return void(++cached_);
        }
        if (state != Cached::absent) spdlog::info("track {}: recomputing targets: {}", t.track_id, reason);
        try {
            TargetSet targets = compute(t);
            targets.source = stamp;
            write_targets(path, targets);
            const std::lock_guard lock(mu_);
            if (state == Cached::absent) ++computed_;
            else recomputed_.push_back({{"track_id", t.track_id},
                                        {"cause", state == Cached::corrupt ? "corrupt" : "source changed"},
                                        {"reason", reason}});
        } catch (const Error& e) {
            spdlog::warn("skipping track {}: {}", t.track_id, e.what());
            const std::lock_guard lock(mu_);
            failed_.push_back({{"track_id", t.track_id}, {"audio_path", t.audio_path.string()}, {"reason", e.what()}});
        }
    }

    // Entries in track order whatever order the workers finished in.
    nlohmann::json report(std::size_t tracks, double secs, const FlatTargetsMigration& flat) {
        for (auto* list : {&recomputed_, &failed_, &midi_failed_})
            std::sort(list->begin(), list->end(), [](const auto& a, const auto& b) { return a["track_id"] < b["track_id"]; });
        return {{"dataset", ds_.id()},
                {"tracks", tracks},
                {"computed", computed_},
                {"recomputed_source_changed", count_recomputed("source changed")},
                {"recomputed_corrupt", count_recomputed("corrupt")},
                {"recomputed", recomputed_},
                {"cached", cached_},
                {"failed", failed_},
                {"elapsed_sec", secs},
                {"with_midi", with_midi_},
                {"midi_failed", midi_failed_},
                {"audio_seconds", audio_seconds_},
                {"seconds_per_audio_minute", audio_seconds_ > 0 ? 60.0 * secs / audio_seconds_ : 0.0},
                {"output_dir", ds_.targets_dir().string()},
                {"flat_layout", {{"moved", flat.moved.size()}, {"left", flat.left}, {"why_left", flat.why_left}}}};
    }

private:
    // The audio targets, plus the MIDI targets when a MIDI file sits beside the audio.
    TargetSet compute(const Track& t) {
        Audio a = load_audio(t.audio_path);
        TargetSet targets = compute_audio_targets(a, params_);
        targets.arrays["midi/available"] = {0.0f};
        const std::lock_guard lock(mu_);  // the MIDI part is cheap
        audio_seconds_ += a.duration_sec();
        if (auto midi = find_midi_for(t.audio_path); !midi.empty()) {
            try {
                add_midi_targets(read_midi(midi), a.duration_sec(), targets);
                ++with_midi_;
            } catch (const Error& e) {  // the audio targets stand; the MIDI problem is reported
                spdlog::warn("track {}: MIDI skipped: {}", t.track_id, e.what());
                midi_failed_.push_back({{"track_id", t.track_id}, {"midi_path", midi.string()}, {"reason", e.what()}});
            }
        }
        return targets;
    }

    int count_recomputed(const std::string& cause) const {
        int n = 0;
        for (const auto& r : recomputed_) n += r["cause"] == cause ? 1 : 0;
        return n;
    }

    std::mutex mu_;  // guards the counters and lists below
    const Dataset& ds_;
    const TargetsOptions& o_;
    TargetParams params_;
    int computed_ = 0, cached_ = 0, with_midi_ = 0;
    double audio_seconds_ = 0;
    nlohmann::json recomputed_ = nlohmann::json::array(), failed_ = nlohmann::json::array(), midi_failed_ = nlohmann::json::array();
};

// Target files of the old flat layout: adopted when provably this dataset's, else said so (mess/catalog.hpp).
FlatTargetsMigration adopt_flat_targets(const Dataset& ds, const std::vector<Track>& tracks) {
    std::vector<std::string> ids;
    for (const auto& t : tracks) ids.push_back(t.track_id);
    FlatTargetsMigration flat = migrate_flat_targets(ds, ids);
    if (!flat.moved.empty())
        spdlog::info("moved {} target file(s) of the old layout proxy_targets/<track>.targets.npz to {}", flat.moved.size(),
                     ds.targets_dir().string());
    if (!flat.left.empty())
        spdlog::warn("{} track(s) have target files in the old shared layout proxy_targets/<track>.targets.npz that are not "
                     "adopted ({}); their targets are computed again", flat.left.size(), flat.why_left);
    return flat;
}

void print_summary(const nlohmann::json& r) {
    fmt::print("targets {}: {} computed, {} recomputed (source changed), {} recomputed (corrupt), {} cached, {} failed in {:.1f} s → {}\n",
               r["dataset"].get<std::string>(), r["computed"].get<int>(), r["recomputed_source_changed"].get<int>(),
               r["recomputed_corrupt"].get<int>(), r["cached"].get<int>(), r["failed"].size(), r["elapsed_sec"].get<double>(),
               r["output_dir"].get<std::string>());
    if (r["flat_layout"]["moved"].get<int>() > 0)
        fmt::print("  moved {} target file(s) from the old layout proxy_targets/<track>.targets.npz\n", r["flat_layout"]["moved"].get<int>());
    for (const auto& c : r["recomputed"])
        fmt::print("  {}: recomputed: {}: {}\n", c["track_id"].get<std::string>(), c["cause"].get<std::string>(), c["reason"].get<std::string>());
    for (const auto& f : r["failed"]) fmt::print("  failed {}: {}\n", f["track_id"].get<std::string>(), f["reason"].get<std::string>());
}

// Each track's target file in the catalog, in one transaction: the tracks the run left with a file (computed,
// recomputed or cached), their source "audio+midi" when MIDI targets went in, else "audio".
void record_targets(RunRecord& record, const Dataset& ds, const std::vector<Track>& tracks, const nlohmann::json& report) {
    std::set<std::string> failed, midi_failed;
    for (const auto& f : report["failed"]) failed.insert(f["track_id"].get<std::string>());
    for (const auto& f : report["midi_failed"]) midi_failed.insert(f["track_id"].get<std::string>());
    record.catalog().transaction([&] {
        for (const Track& t : tracks) {
            const auto path = ds.targets_path(t.track_id);
            if (failed.contains(t.track_id) || !std::filesystem::exists(path)) continue;
            const bool midi = !midi_failed.contains(t.track_id) && !find_midi_for(t.audio_path).empty();
            record.catalog().upsert_target({.dataset_id = ds.id(), .track_id = t.track_id, .path = catalog_path(ds, path),
                                            .source = midi ? "audio+midi" : "audio", .run_id = record.id()});
        }
    });
}


int run_targets(const Context& ctx, const TargetsOptions& o, bool json) {
    keep_freed_memory_for_batches(256 << 20);  // every file allocates the same spectrograms again
    Dataset ds = open_dataset(ctx, o.source);
    const auto tracks = ds.tracks();
    std::filesystem::create_directories(ds.targets_dir());
    const FlatTargetsMigration flat = adopt_flat_targets(ds, tracks);
    RunRecord record(ctx, "targets", {{"dataset", ds.id()}});
    TargetsRun run(ds, o, ctx);
    Progress progress("targets " + ds.id() + " (tracks)", static_cast<std::int64_t>(tracks.size()));
    const auto t0 = std::chrono::steady_clock::now();
    // Files are independent: `jobs` workers take the next track in turn.
    const auto jobs = std::min<std::size_t>(tracks.size(), o.jobs > 0 ? static_cast<std::size_t>(o.jobs)
                                                                       : std::max(1u, std::thread::hardware_concurrency()));
    std::atomic<std::size_t> next{0};
    std::mutex progress_mu;
    std::exception_ptr failure;  // the first error no track could absorb stops every worker and is rethrown
    std::atomic<bool> stop{false};
    auto work = [&] {
        try {
            for (std::size_t i; !stop && (i = next++) < tracks.size();) {
                run.process(tracks[i]);
                const std::lock_guard lock(progress_mu);
                progress.advance();
            }
        } catch (...) {
            const std::lock_guard lock(progress_mu);
            if (!failure) failure = std::current_exception();
            stop = true;
        }
    };
    std::vector<std::thread> workers;
    for (std::size_t j = 1; j < jobs; ++j) workers.emplace_back(work);
    work();
    for (auto& w : workers) w.join();
    if (failure) std::rethrow_exception(failure);
    progress.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const nlohmann::json report = run.report(tracks.size(), secs, flat);
    write_file_atomic(ds.targets_report_path(), report.dump(2) + "\n");
    record_targets(record, ds, tracks, report);
    record.add_output(ds.targets_dir());
    record.finish(report, report["failed"].empty() ? "ok" : "failed");
    if (json) print_json(report);
    else print_summary(report);
    return report["failed"].empty() ? 0 : 2;
}

}  // namespace

void register_targets(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("targets", "Proxy targets from audio for every track of a dataset: 16 scalars, 5 curves\n"
                                              "(60 frames over the first 30 s), per-window values aligned with the\n"
                                              "extraction windows, and MIDI targets when <stem>.mid/.midi sits beside the\n"
                                              "audio (or in ../midi/, SMD's layout), in\n"
                                              "proxy_targets/<dataset>/<track>.targets.npz (members <category>/<field>,\n"
                                              "numpy-loadable, plus the audio's size and modification time) and a report,\n"
                                              "proxy_targets/<dataset>/targets_report.json. An existing file is kept unless\n"
                                              "--force is given, it is damaged (recomputed: corrupt) or its audio's size or\n"
                                              "modification time changed (recomputed: source changed). Files of the old\n"
                                              "shared layout proxy_targets/<track>.targets.npz are moved in when provably\n"
                                              "this dataset's (its report is the only one there), else left and computed\n"
                                              "again. Bad audio files are reported and skipped (exit 2).");
    static TargetsOptions o;
    add_dataset_options(cmd, o.source);
    cmd->add_flag("--force", o.force, "Recompute existing target files");
    cmd->add_flag("--no-curves", o.no_curves, "Skip the 60-frame curves");
    cmd->add_flag("--no-windows", o.no_windows, "Skip the per-window values");
    cmd->add_option("--jobs", o.jobs, "Files computed at the same time (default: one per core)")->check(CLI::Range(0, 256));
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_targets(ctx, o, json); }; });
}

}  // namespace mess::cli
