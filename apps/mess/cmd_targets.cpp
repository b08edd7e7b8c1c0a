#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/catalog.hpp"
#include "mess/targets.hpp"

namespace mess::cli {
namespace {

struct TargetsOptions {
    DatasetChoice source;
    bool force = false, no_curves = false, no_windows = false;
};

int run_targets(const Context& ctx, const TargetsOptions& o, bool json) {
    Dataset ds = open_dataset(ctx, o.source);
    const auto tracks = ds.tracks();
    const std::filesystem::path out_dir = ctx.config.data_root.value / "proxy_targets";
    std::filesystem::create_directories(out_dir);
    TargetParams params;
    params.curves = !o.no_curves;
    params.per_window = !o.no_windows;
    params.windows.seconds = ctx.config.window_seconds.value;
    params.windows.overlap = ctx.config.overlap.value;
    Progress progress("targets " + ds.id() + " (tracks)", static_cast<std::int64_t>(tracks.size()));
    int computed = 0, cached = 0, with_midi = 0;
    nlohmann::json failed = nlohmann::json::array(), midi_failed = nlohmann::json::array();
    const auto t0 = std::chrono::steady_clock::now();
    double audio_seconds = 0;
    for (const auto& t : tracks) {
        const auto path = out_dir / (t.track_id + ".targets.npz");
        if (!o.force && std::filesystem::exists(path)) {
            ++cached;
        } else {
            try {
                Audio a = load_audio(t.audio_path);
                audio_seconds += a.duration_sec();
                TargetSet targets = compute_audio_targets(a, params);
                targets.arrays["midi/available"] = {0.0f};
                if (auto midi = find_midi_for(t.audio_path); !midi.empty()) {
                    try {
                        add_midi_targets(read_midi(midi), a.duration_sec(), targets);
                        ++with_midi;
                    } catch (const Error& e) {  // the audio targets stand; the MIDI problem is reported
                        spdlog::warn("track {}: MIDI skipped: {}", t.track_id, e.what());
                        midi_failed.push_back({{"track_id", t.track_id}, {"midi_path", midi.string()}, {"reason", e.what()}});
                    }
                }
                write_targets(path, targets);
                ++computed;
            } catch (const Error& e) {
                spdlog::warn("skipping track {}: {}", t.track_id, e.what());
                failed.push_back({{"track_id", t.track_id}, {"audio_path", t.audio_path.string()}, {"reason", e.what()}});
            }
        }
        progress.advance();
    }
    progress.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json report = {{"dataset", ds.id()},     {"tracks", tracks.size()}, {"computed", computed},
                             {"cached", cached},        {"failed", failed},        {"elapsed_sec", secs},
                             {"with_midi", with_midi},  {"midi_failed", midi_failed},
                             {"audio_seconds", audio_seconds},
                             {"seconds_per_audio_minute", audio_seconds > 0 ? 60.0 * secs / audio_seconds : 0.0},
                             {"output_dir", out_dir.string()}};
    write_file_atomic(out_dir / (ds.id() + "_targets_report.json"), report.dump(2) + "\n");
    if (json) print_json(report);
    else {
        fmt::print("targets {}: {} computed, {} cached, {} failed in {:.1f} s → {}\n", ds.id(), computed, cached, failed.size(),
                   secs, out_dir.string());
        for (const auto& f : failed) fmt::print("  failed {}: {}\n", f["track_id"].get<std::string>(), f["reason"].get<std::string>());
    }
    return failed.empty() ? 0 : 2;
}

}  // namespace

void register_targets(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("targets", "Proxy targets from audio for every track of a dataset: 15 scalars, 5 curves\n"
                                              "(60 frames over the first 30 s), per-window values aligned with the\n"
                                              "extraction windows, and MIDI targets when <stem>.mid/.midi sits beside the\n"
                                              "audio (or in ../midi/, SMD's layout),"
                                              " in proxy_targets/<track>.targets.npz (members\n"
                                              "<category>/<field>, numpy-loadable). Existing files are kept unless --force;\n"
                                              "bad files are reported and skipped (exit 2).");
    static TargetsOptions o;
    add_dataset_options(cmd, o.source);
    cmd->add_flag("--force", o.force, "Recompute existing target files");
    cmd->add_flag("--no-curves", o.no_curves, "Skip the 60-frame curves");
    cmd->add_flag("--no-windows", o.no_windows, "Skip the per-window values");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_targets(ctx, o, json); }; });
}

}  // namespace mess::cli
