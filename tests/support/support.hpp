// Helpers shared by the tests: generated signals, audio files in every format, temp dirs, the CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mess/util.hpp"

namespace mess::test {

// The message of the mess::Error that `fn` throws; records a test failure (and returns "") when it
// throws nothing or an Error of another kind.
std::string error_message(const std::function<void()>& fn, ErrorKind kind = ErrorKind::input);

// Signals (mono float32 unless said otherwise).
std::vector<float> tone(double freq_hz, double seconds, int rate, float amplitude = 0.5f);
std::vector<float> chord(const std::vector<double>& freqs_hz, double seconds, int rate, float amplitude = 0.5f);
std::vector<float> noise(double seconds, int rate, std::uint32_t seed, float amplitude = 0.3f);
std::vector<float> silence(double seconds, int rate);
// Interleaves channels of equal length.
std::vector<float> interleave(const std::vector<std::vector<float>>& channels);
// Dominant frequency estimated from zero crossings (for pure tones).
double zero_crossing_freq(const std::vector<float>& x, int rate);
double rms(const std::vector<float>& x);

// A note of a synthetic performance: MIDI pitch, onset and length in seconds, velocity in (0, 1].
struct Note {
    double pitch = 60, start = 0, length = 0.5, velocity = 0.7;
};
// The sound of a synthetic instrument: `partials` harmonics with amplitudes 1/k^rolloff, a 5-ms attack,
// an exponential decay of `decay` per second while the note is held (0: sustained), a 30-ms release.
struct Timbre {
    int partials = 6;
    double rolloff = 1.0, decay = 3.0;
};
// Additive synthesis of `notes` into `seconds` of mono audio (notes past the end are cut), scaled to a
// peak of `peak`. Deterministic: the same notes give the same samples.
std::vector<float> render_notes(const std::vector<Note>& notes, double seconds, int rate, const Timbre& timbre = {},
                                float peak = 0.8f);

// Writes interleaved float samples with libsndfile; `format` is an SF_FORMAT_* combination.
void write_sound(const std::filesystem::path& path, const std::vector<float>& interleaved, int channels, int rate,
                 int format);

// A fresh directory removed when the object dies.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

// Runs a shell command; returns its exit status and captured stdout.
struct CommandResult {
    int exit_code = -1;
    std::string out;
};
CommandResult run_command(const std::string& command);
// Shell-quotes one argument.
std::string quote(const std::string& arg);

// The real recording installed by scripts/setup (Debian package sound-theme-freedesktop).
inline const char* kRealRecording = "/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga";

}  // namespace mess::test
