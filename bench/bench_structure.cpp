// Structure of a long recording: analysis time of analyze_structure against the plain checkerboard
// baseline (full cosine self-similarity + dsp::checkerboard_novelty of the same features) in the same run.
//   bench_structure [--minutes 10] [--file AUDIO]   (default: a synthetic piece of chord progressions in
//   changing keys; --file: any recording, looped to the length)
#include <chrono>
#include <cmath>
#include <random>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mess/structure.hpp"
#include "support/support.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Chord progressions (I–IV–V7–I, 0.5 s chords) in a new key every 20–40 s.
mess::Audio synthetic(double seconds, int rate) {
    std::mt19937 rng(22);
    std::vector<mess::test::Note> notes;
    const int chords[4][3] = {{0, 4, 7}, {5, 9, 12}, {7, 11, 14}, {0, 4, 7}};
    int tonic = 60, k = 0;
    double next_key = 30;
    for (double t = 0; t < seconds - 1; t += 0.5, ++k) {
        if (t >= next_key) tonic = 55 + static_cast<int>(rng() % 12), next_key += 20 + static_cast<double>(rng() % 20);
        for (int p : chords[k % 4]) notes.push_back({static_cast<double>(tonic + p), t, 0.45, 0.5 + 0.3 * std::sin(t / 40)});
    }
    return {mess::test::render_notes(notes, seconds, rate), rate};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("structure analysis speed against the plain checkerboard baseline");
    double minutes = 10;
    std::string file;
    app.add_option("--minutes", minutes, "Length of the recording analysed")->capture_default_str();
    app.add_option("--file", file, "A recording (looped to the length)");
    CLI11_PARSE(app, argc, argv);
    try {
        mess::Audio audio = file.empty() ? synthetic(minutes * 60, 22050) : mess::load_audio(file);
        const auto want = static_cast<std::size_t>(minutes * 60 * audio.sample_rate);
        const std::size_t original = audio.samples.size();
        for (std::size_t i = original; i < want; ++i) audio.samples.push_back(audio.samples[i % original]);
        audio.samples.resize(want);

        auto t0 = std::chrono::steady_clock::now();
        const mess::Structure s = mess::analyze_structure(audio);
        const double ours = seconds_since(t0);

        // Baseline: the same features, the full self-similarity matrix and dsp's checkerboard novelty.
        t0 = std::chrono::steady_clock::now();
        const mess::StructureFeatures f = mess::structure_features(audio);
        mess::dsp::Matrix rows = f.chroma;
        const auto novelty = mess::dsp::checkerboard_novelty(mess::dsp::cosine_self_similarity(rows), 100);
        const double baseline = seconds_since(t0);

        fmt::print("recording: {:.1f} min ({} frames); {} sections, {} key spans, {} modulations, {} cadences\n", minutes, f.frames(),
                   s.sections.size(), s.keys.size(), s.modulations.size(), s.cadences.size());
        fmt::print("analyze_structure: {:.3f} s (target ≤ 1 s for 10 min on 2 cores)\n", ours);
        fmt::print("baseline (features + full self-similarity + checkerboard, half 10 s): {:.3f} s ({} novelty frames)\n", baseline,
                   novelty.size());
        fmt::print("ratio analyze_structure / baseline: {:.2f}\n", ours / baseline);
        return 0;
    } catch (const mess::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return mess::exit_code(e.kind());
    }
}
