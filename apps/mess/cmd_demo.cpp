#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/audio.hpp"
#include "mess/npy.hpp"

namespace mess::cli {
namespace {

// A real recording every Debian machine set up by scripts/setup has (package sound-theme-freedesktop).
constexpr const char* kDemoAudio = "/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga";

int run_demo(const Context& ctx, const std::string& audio_path, bool json) {
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

    if (json) {
        print_json({{"audio", audio_path},
                    {"format", check.info.format},
                    {"source_rate", check.info.sample_rate},
                    {"samples_24k", audio.samples.size()},
                    {"windows", windows.size()},
                    {"waveform_npy", wave_path.string()},
                    {"windows_npy", win_path.string()}});
        return 0;
    }
    fmt::print("MESS demo\n  audio     {}\n  format    {}, {} Hz, {} channel(s), {:.3f} s\n", audio_path,
               check.info.format, check.info.sample_rate, check.info.channels, check.decoded_duration_sec);
    fmt::print("  resampled {} samples at {} Hz (soxr HQ)\n  windows   {} × {:.1f} s:", audio.samples.size(),
               kModelSampleRate, windows.size(), 5.0);
    for (const auto& w : windows) fmt::print(" [{:.2f}, {:.2f})", w.start_sec, w.end_sec);
    fmt::print("\n  wrote     {}\n            {}\n  load them with numpy.load(...)\n", wave_path.string(), win_path.string());
    return 0;
}

}  // namespace

void register_demo(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("demo", "End-to-end demo on a real recording: decode, resample to 24 kHz, plan\n"
                                           "5-s windows, write NumPy files under <data root>/demo/");
    static std::string audio = kDemoAudio;
    cmd->add_option("--audio", audio, "Audio file to use")->capture_default_str();
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_demo(ctx, audio, json); }; });
}

}  // namespace mess::cli
