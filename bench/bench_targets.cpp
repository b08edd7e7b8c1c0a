// Proxy targets: compute time per 30-s file of compute_audio_targets (all scalars, curves and per-window values)
// against a plain reference in the same run — one power spectrogram (n_fft 2048, hop 512, the STFT every
// target family needs at least once) of the same audio. The ratio says how many plain STFTs a file's targets
// cost, which does not depend on the machine's speed or load; the absolute time is printed beside it.
// The constant-Q chroma alone (one chroma_cqt of the file, as the track's scalars run it) gets its own ratio.
// Then the same files on every core at once (as `mess targets` runs them): wall time per file.
//   bench_targets [--files 4] [--seconds 30]   (synthetic chord progressions with clicks, 24 kHz)
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mess/dsp.hpp"
#include "mess/targets.hpp"
#include "support/support.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// I–IV–V7–I in 0.5-s chords in the key `tonic`, with a click every beat.
mess::Audio synthetic(double seconds, int tonic) {
    std::vector<mess::test::Note> notes;
    const int chords[4][4] = {{0, 4, 7, 12}, {5, 9, 12, 17}, {7, 11, 14, 17}, {0, 4, 7, 12}};
    int k = 0;
    for (double t = 0; t < seconds - 0.5; t += 0.5, ++k)
        for (int p : chords[k % 4]) notes.push_back({static_cast<double>(tonic + p), t, 0.45, 0.5 + 0.3 * std::sin(t / 5)});
    auto y = mess::test::render_notes(notes, seconds, mess::kModelSampleRate);
    const auto click = mess::test::noise(0.01, mess::kModelSampleRate, static_cast<std::uint32_t>(tonic), 0.3f);
    for (double t = 0; t < seconds - 0.05; t += 0.5)
        for (std::size_t i = 0; i < click.size(); ++i) y[static_cast<std::size_t>(t * mess::kModelSampleRate) + i] += click[i];
    return {y, mess::kModelSampleRate};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("proxy-target compute time against a plain STFT of the same audio");
    int files = 4;
    double seconds = 30;
    app.add_option("--files", files, "Synthetic files")->capture_default_str()->check(CLI::Range(1, 100));
    app.add_option("--seconds", seconds, "Length of each")->capture_default_str()->check(CLI::Range(1.0, 600.0));
    CLI11_PARSE(app, argc, argv);
    try {
        double ours = 0, plain = 0, cqt = 0;
        std::vector<mess::Audio> audio;
        for (int i = 0; i < files; ++i) audio.push_back(synthetic(seconds, 55 + i));
        for (const mess::Audio& a : audio) {
            auto t0 = std::chrono::steady_clock::now();
            const mess::TargetSet t = mess::compute_audio_targets(a, {});
            ours += seconds_since(t0);
            t0 = std::chrono::steady_clock::now();
            const mess::dsp::Matrix s = mess::dsp::power_spectrogram(a.samples, {});
            plain += seconds_since(t0);
            t0 = std::chrono::steady_clock::now();
            const mess::dsp::Matrix c = mess::dsp::chroma_cqt(a.samples, a.sample_rate, 512, 0.0);
            cqt += seconds_since(t0);
            if (c.rows == 0) throw mess::Error(mess::ErrorKind::internal, "no chroma");
            if (t.arrays.empty() || s.rows == 0) throw mess::Error(mess::ErrorKind::internal, "nothing computed");
        }
        fmt::print("targets: {} files of {:.0f} s: {:.1f} ms per file (target ≤ 70 ms on 2 cores for 30 s)\n", files, seconds,
                   1000 * ours / files);
        fmt::print("plain reference (one power spectrogram, n_fft 2048, hop 512): {:.2f} ms per file\n", 1000 * plain / files);
        fmt::print("ratio targets / plain STFT: {:.1f}\n", ours / plain);
        fmt::print("ratio one constant-Q chroma (chroma_cqt, hop 512, tuning given) / plain STFT: {:.2f}\n", cqt / plain);
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        std::atomic<int> next{0};
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> workers;
        for (unsigned c = 0; c < cores; ++c)
            workers.emplace_back([&] {
                for (int i; (i = next++) < files;) (void)mess::compute_audio_targets(audio[static_cast<std::size_t>(i)], {});
            });
        for (auto& w : workers) w.join();
        fmt::print("on {} cores at once: {:.1f} ms of wall time per file\n", cores, 1000 * seconds_since(t0) / files);
        return 0;
    } catch (const mess::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return mess::exit_code(e.kind());
    }
}
