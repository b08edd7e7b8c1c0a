#include <optional>

#include <fmt/format.h>

#include "cli.hpp"
#include "mess/audio.hpp"

namespace mess::cli {
namespace {

nlohmann::json check_to_json(const AudioCheck& c) {
    nlohmann::json j = {{"path", c.path.string()}, {"valid", c.valid}, {"problem", c.problem_name()}};
    if (!c.message.empty()) j["message"] = c.message;
    if (!c.warnings.empty()) j["warnings"] = c.warnings;
    if (c.info.sample_rate > 0) {
        j["format"] = c.info.format;
        j["sample_rate"] = c.info.sample_rate;
        j["channels"] = c.info.channels;
        j["frames"] = c.info.frames;
        j["duration_sec"] = c.decoded_duration_sec;
    }
    if (c.valid) {
        j["num_windows"] = c.windows.size();
        nlohmann::json starts = nlohmann::json::array();
        for (const auto& w : c.windows) starts.push_back(w.start_sec);
        j["window_starts_sec"] = starts;
    }
    return j;
}

void print_check(const AudioCheck& c) {
    if (!c.valid) {
        fmt::print("{}\n  INVALID ({}): {}\n", c.path.string(), c.problem_name(), c.message);
        return;
    }
    fmt::print("{}\n  format      {}\n  sample rate {} Hz, {} channel{}\n  duration    {:.3f} s\n", c.path.string(),
               c.info.format, c.info.sample_rate, c.info.channels, c.info.channels == 1 ? "" : "s", c.decoded_duration_sec);
    std::string starts;
    for (std::size_t i = 0; i < c.windows.size(); ++i) {
        if (i == 12 && c.windows.size() > 16) {
            starts += fmt::format(" … ({} more)", c.windows.size() - 13);
            i = c.windows.size() - 1;
        }
        starts += fmt::format("{}{:.2f}", starts.empty() ? "" : " ", c.windows[i].start_sec);
    }
    fmt::print("  windows     {} starting at [{}] s\n  valid\n", c.windows.size(), starts);
    for (const auto& w : c.warnings) fmt::print("  warning: {}\n", w);
}

}  // namespace

void register_audio(CLI::App& app, Context& ctx) {
    auto* audio = app.add_subcommand("audio", "Audio files: decode checks");
    audio->require_subcommand(1);
    auto* info = audio->add_subcommand("info", "Decode each FILE and report format, rate, channels, duration and the\n"
                                               "5-s windows; invalid files are reported with the reason and the\n"
                                               "batch continues (exit 2 if any file was invalid).");
    static std::vector<std::string> files;
    static double min_duration = 1.0;
    info->add_option("FILE", files, "Audio files (wav, flac, ogg, opus, mp3, ...)")->required();
    info->add_option("--min-duration", min_duration, "Shorter files are invalid (seconds)")->capture_default_str()->check(CLI::NonNegativeNumber);
    bool& json = add_json_flag(info);
    info->callback([&ctx, &json] {
        ctx.run = [&ctx, &json] {
            AudioCheckParams p;
            p.min_duration_sec = min_duration;
            p.windows.sample_rate = ctx.config.sample_rate.value;
            p.windows.seconds = ctx.config.window_seconds.value;
            p.windows.overlap = ctx.config.overlap.value;
            nlohmann::json out = nlohmann::json::array();
            int bad = 0;
            std::optional<Progress> progress;
            if (files.size() > 1) progress.emplace("audio info", static_cast<std::int64_t>(files.size()));
            for (const auto& f : files) {
                AudioCheck c = check_audio(f, p);
                bad += c.valid ? 0 : 1;
                if (progress) progress->advance();
                if (json) out.push_back(check_to_json(c));
                else print_check(c);
            }
            if (progress) progress->finish();
            if (json) print_json({{"files", out}, {"valid", files.size() - static_cast<std::size_t>(bad)}, {"invalid", bad}});
            else if (files.size() > 1) fmt::print("{} file(s): {} valid, {} invalid\n", files.size(), files.size() - static_cast<std::size_t>(bad), bad);
            return bad ? 2 : 0;
        };
    });
}

}  // namespace mess::cli
