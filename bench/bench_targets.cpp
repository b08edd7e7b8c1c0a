// Proxy targets: compute time per 30-s file of compute_audio_targets (all scalars, curves and per-window values)
// against a plain reference in the same run — one power spectrogram (n_fft 2048, hop 512) of the same audio,
// computed plainly: one KissFFT real transform per frame, as dsp::power_spectrogram did before its FFT was
// batched (the reference must not get faster with the code it measures). The ratio says how many plain STFTs a
// file's targets cost, which depends little on the machine's speed or load; the times are thread CPU time (a
// shared machine's waiting is not counted), printed beside it. The constant-Q chroma alone (one chroma_cqt of
// the file, as the track's scalars run it) gets its own ratio. Then the same files on every core at once (as
// `mess targets` runs them): wall time per file, what the target (≤ 70 ms per 30-s file on 2 cores) reads, and
// the CPU time per file divided by the cores (what that wall time would be on idle cores).
//   bench_targets [--files 4] [--seconds 30]   (synthetic chord progressions with clicks, 24 kHz)
#include <atomic>
#if defined(__GLIBC__)
#endif
#include <chrono>
#include <cmath>
#include <ctime>
#include <memory>
#include <numbers>
#include <thread>

#include <kissfft/kiss_fftr.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mess/dsp.hpp"
#include "mess/targets.hpp"
#include "support/support.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The plain reference: |STFT|² (n_fft 2048, hop 512, centred, periodic Hann), one KissFFT real transform per frame.
std::vector<float> plain_power_spectrogram(const std::vector<float>& y) {
    constexpr int n_fft = 2048, hop = 512, bins = n_fft / 2 + 1;
    const auto n = static_cast<std::int64_t>(y.size()), frames = 1 + n / hop;
    std::unique_ptr<std::remove_pointer_t<kiss_fftr_cfg>, decltype(&kiss_fftr_free)> cfg(kiss_fftr_alloc(n_fft, 0, nullptr, nullptr),
                                                                                       &kiss_fftr_free);
    std::vector<float> window(n_fft), frame(n_fft), out(static_cast<std::size_t>(frames * bins));
    for (int i = 0; i < n_fft; ++i) window[static_cast<std::size_t>(i)] = static_cast<float>(0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / n_fft));
    std::vector<kiss_fft_cpx> spec(bins);
    for (std::int64_t t = 0; t < frames; ++t) {
        for (std::int64_t i = 0; i < n_fft; ++i) {
            const std::int64_t src = t * hop + i - n_fft / 2;
            frame[static_cast<std::size_t>(i)] = src >= 0 && src < n ? y[static_cast<std::size_t>(src)] * window[static_cast<std::size_t>(i)] : 0.0f;
        }
        kiss_fftr(cfg.get(), frame.data(), spec.data());
        for (int k = 0; k < bins; ++k)
            out[static_cast<std::size_t>(t * bins + k)] = static_cast<float>(static_cast<double>(spec[static_cast<std::size_t>(k)].r) * spec[static_cast<std::size_t>(k)].r +
                                                                            static_cast<double>(spec[static_cast<std::size_t>(k)].i) * spec[static_cast<std::size_t>(k)].i);
    }
    return out;
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
        // The references first, with glibc's default heap thresholds: they must not gain from the targets' setting.
        for (const mess::Audio& a : audio) {
            double t0 = cpu_seconds();
            const std::vector<float> s = plain_power_spectrogram(a.samples);
            plain += cpu_seconds() - t0;
            t0 = cpu_seconds();
            const mess::dsp::Matrix c = mess::dsp::chroma_cqt(a.samples, a.sample_rate, 512, 0.0);
            cqt += cpu_seconds() - t0;
            if (c.rows == 0 || s.empty()) throw mess::Error(mess::ErrorKind::internal, "no reference computed");
        }
        mess::keep_freed_memory_for_batches(256 << 20);
        for (const mess::Audio& a : audio) {
            const double t0 = cpu_seconds();
            const mess::TargetSet t = mess::compute_audio_targets(a, {});
            ours += cpu_seconds() - t0;
            if (t.arrays.empty()) throw mess::Error(mess::ErrorKind::internal, "nothing computed");
        }
        fmt::print("targets: {} files of {:.0f} s: {:.1f} ms of CPU per file\n", files, seconds, 1000 * ours / files);
        fmt::print("plain reference (one power spectrogram, n_fft 2048, hop 512, one KissFFT per frame): {:.2f} ms per file\n", 1000 * plain / files);
        fmt::print("ratio targets / plain STFT: {:.2f}\n", ours / plain);
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
        fmt::print("on {} cores at once: {:.1f} ms of wall time per file (target ≤ 70 ms on 2 cores for 30 s)\n", cores,
                   1000 * seconds_since(t0) / files);
        fmt::print("on {} idle cores: {:.1f} ms per file (CPU time per file / cores: the wall time above without other load)\n", cores,
                   1000 * ours / files / cores);
        return 0;
    } catch (const mess::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return mess::exit_code(e.kind());
    }
}
