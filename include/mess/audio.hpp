// mess/audio.hpp — decode, downmix, resample, window and validate audio files.
//
//   mess::Audio a = mess::load_audio("take.flac");                 // mono float32 at 24 kHz
//   auto windows = mess::plan_windows(a.samples.size(), {});       // 5 s windows, 2.5 s hop, tail aligned
//   for (const auto& w : windows)                                   // w.start_sec is the true start
//       run_model(std::span(a.samples).subspan(w.start_sample, w.length));
//
//   mess::AudioCheck c = mess::check_audio("maybe_bad.mp3");        // never throws for a bad file
//   if (!c.valid) fmt::print("{}: {} ({})\n", c.path, c.problem_name(), c.message);
//
// Formats: whatever libsndfile decodes — WAV (PCM/float), FLAC, Ogg/Vorbis, Opus, MP3 and more. The
// container is recognised by content, not by extension. MP3 files are read to the end (their frame
// count is only an estimate). Downmix = mean of channels. Resampling: soxr, high quality (HQ).
// Samples are float32 in [-1, 1] for integer sources; float sources keep their values.
// Errors: Error(input) naming the file for anything wrong with it (see AudioProblem).
// Thread safety: all functions are reentrant; they share no state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "mess/util.hpp"

namespace mess {

inline constexpr int kModelSampleRate = 24000;  // Hz; the rate every model in MESS consumes
inline constexpr int kMinSampleRate = 4000;     // Hz; files declaring less (or more than kMaxSampleRate) are refused
inline constexpr int kMaxSampleRate = 768000;

// What an audio file's header says (before decoding all of it).
struct AudioInfo {
    std::filesystem::path path;
    std::string format;       // "WAV (PCM_16)", "OGG (VORBIS)", "MPEG (MPEG_LAYER_III)", ...
    int sample_rate = 0;      // Hz
    int channels = 0;
    std::int64_t frames = 0;  // per channel, as the header reports (an estimate for MP3)
    double duration_sec() const { return sample_rate > 0 ? static_cast<double>(frames) / sample_rate : 0.0; }
};

// Decoded mono audio.
struct Audio {
    std::vector<float> samples;  // mono
    int sample_rate = 0;         // Hz
    double duration_sec() const { return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0; }
};

// Mono samples borrowed from whoever owns them (an Audio, a caller's buffer such as a NumPy array): what the
// encoders and alignment read, so that a caller's samples are never copied just to be read. Valid while the
// owner lives and is not resized. An Audio converts to it implicitly.
struct AudioView {
    std::span<const float> samples;
    int sample_rate = 0;         // Hz
    AudioView() = default;
    AudioView(std::span<const float> s, int rate) : samples(s), sample_rate(rate) {}
    AudioView(const Audio& audio) : samples(audio.samples), sample_rate(audio.sample_rate) {}  // NOLINT: implicit by design
    double duration_sec() const { return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0; }
};

// Reads the header only. Errors: Error(input) when the file is missing, unreadable or not audio.
AudioInfo probe_audio(const std::filesystem::path& path);

// Decodes the whole file, downmixed to mono at its own sample rate.
// Errors: Error(input) when missing, unreadable, unsupported, truncated (fewer frames than the header
// promises, except MP3), empty (no samples) or containing NaN/Inf samples.
Audio decode_audio(const std::filesystem::path& path);

// Resamples mono audio with soxr (HQ). Returns a copy when the rates are equal.
// Output length = round(n * to_rate / from_rate). Errors: Error(usage) for non-positive rates.
std::vector<float> resample(std::span<const float> samples, int from_rate, int to_rate);

// The one minimum duration: audio shorter than this is too short for every command (extraction, targets,
// embedding, audio queries, uploads) and for `mess audio info`'s default.
inline constexpr double kMinAudioSeconds = 1.0;

// decode_audio + resample to `sample_rate` (default 24 kHz). Errors: as decode_audio, and Error(input)
// "too short" for audio under `min_seconds` (default kMinAudioSeconds), naming the file.
Audio load_audio(const std::filesystem::path& path, int sample_rate = kModelSampleRate, double min_seconds = kMinAudioSeconds);

// True when every sample is exactly zero (digital silence).
bool is_silent(AudioView audio) noexcept;

// ---------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------

struct WindowParams {
    double seconds = 5.0;          // window length, s (> 0)
    double overlap = 0.5;          // fraction of a window shared with the next, in [0, 1)
    int sample_rate = kModelSampleRate;  // Hz (> 0)
};

struct Window {
    std::int64_t start_sample = 0;  // first sample, at params.sample_rate
    std::int64_t length = 0;        // samples; equal to the window length except for short audio
    double start_sec = 0.0;         // true start (the tail window starts at duration - seconds)
    double end_sec = 0.0;
};

// Windows over `num_samples` samples: starts 0, hop, 2·hop, ... while a whole window fits, where
// hop = round(seconds · (1 - overlap) · rate); then, when the last window does not end at the last
// sample, one tail window aligned to the end. Audio shorter than one window gives one short window;
// no samples give no windows. Errors: Error(usage) for invalid params.
std::vector<Window> plan_windows(std::int64_t num_samples, const WindowParams& params = {});

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

enum class AudioProblem { none, missing, unreadable, unsupported, truncated, empty, too_short, non_finite };

// "ok", "missing", "unreadable", "unsupported", "truncated", "empty", "too_short", "non_finite".
std::string_view audio_problem_name(AudioProblem p) noexcept;

struct AudioCheckParams {
    double min_duration_sec = kMinAudioSeconds;  // shorter audio is reported as too_short (≥ 0)
    WindowParams windows{};         // used to report the window plan of a valid file
};

// The verdict on one file. Valid files carry their header info, decoded duration and windows.
struct AudioCheck {
    std::filesystem::path path;
    bool valid = false;
    AudioProblem problem = AudioProblem::none;
    std::string message;                // why it is invalid (empty when valid)
    std::vector<std::string> warnings;  // e.g. the extension does not match the content
    AudioInfo info;                     // header values (when the header could be read)
    double decoded_duration_sec = 0.0;  // from the samples actually decoded
    std::vector<Window> windows;        // at params.windows.sample_rate
    std::string_view problem_name() const noexcept { return audio_problem_name(problem); }
};

// Decodes the file fully and reports what is wrong with it, if anything. Never throws for a bad
// file (the batch goes on); throws Error(usage) only for invalid params.
AudioCheck check_audio(const std::filesystem::path& path, const AudioCheckParams& params = {});

}  // namespace mess
