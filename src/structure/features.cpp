// Structure features at 10 frames/s: semitone and octave pooling of a 12-kHz STFT.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "mess/structure.hpp"

namespace mess {

namespace {

constexpr int kFft = 4096;
constexpr int kHop = 1200;  // 12000 / 1200 = 10 frames/s
constexpr int kSemitones = 84;
constexpr double kC1 = 32.703195662574829;
constexpr double kSilentDb = -100.0;  // dBFS below which a frame counts as silent
constexpr double kGateDb = -50.0;     // frames this far below the loudest carry no chroma

// Triangular semitone weights for every FFT bin: (bin, semitone, weight).
struct Band {
    std::int64_t bin;
    int semitone;
    float weight;
};
std::vector<Band> semitone_bands() {
    const auto freqs = dsp::fft_frequencies(kStructureSampleRate, kFft);
    std::vector<Band> bands;
    for (std::size_t k = 1; k < freqs.size(); ++k) {
        const double semis = 12.0 * std::log2(freqs[k] / kC1);
        for (int s = std::max(0, static_cast<int>(std::floor(semis))); s <= std::min(kSemitones - 1, static_cast<int>(std::ceil(semis))); ++s) {
            const double w = 1.0 - std::fabs(semis - s);
            if (w > 0) bands.push_back({static_cast<std::int64_t>(k), s, static_cast<float>(w)});
        }
    }
    return bands;
}

dsp::Matrix pool_semitones(const dsp::Matrix& power) {
    static const std::vector<Band> bands = semitone_bands();
    dsp::Matrix out{power.rows, kSemitones, std::vector<float>(static_cast<std::size_t>(power.rows * kSemitones), 0.0f)};
    for (std::int64_t t = 0; t < power.rows; ++t)
        for (const Band& b : bands) out.at(t, b.semitone) += b.weight * power.at(t, b.bin);
    return out;
}

// Loudness per frame (dB relative to the loudest, and whether all are below kSilentDb in absolute terms).
std::vector<float> frame_db(const dsp::Matrix& power, bool* silent) {
    std::vector<float> db(static_cast<std::size_t>(power.rows));
    double peak = -1e9;
    for (std::int64_t t = 0; t < power.rows; ++t) {
        double e = 0;
        for (std::int64_t k = 0; k < power.cols; ++k) e += power.at(t, k);
        // Parseval: a full-scale sine under a Hann window sums to about 0.09375·n_fft² over the half spectrum.
        const double ref = 0.09375 * kFft * kFft;
        db[static_cast<std::size_t>(t)] = static_cast<float>(10.0 * std::log10(e / ref + 1e-20));
        peak = std::max(peak, static_cast<double>(db[static_cast<std::size_t>(t)]));
    }
    *silent = power.rows == 0 || peak < kSilentDb;
    for (float& v : db) v = std::max(static_cast<float>(kSilentDb), static_cast<float>(v - peak));
    return db;
}

// Compressed semitones, chroma, timbre, register and onset from the semitone energies.
void describe_frames(const dsp::Matrix& semis, StructureFeatures& f) {
    const std::int64_t n = semis.rows;
    double mean_e = 0;
    for (float v : semis.values) mean_e += v;
    mean_e = std::max(mean_e / static_cast<double>(std::max<std::int64_t>(n, 1)), 1e-20);
    f.chroma = {n, 12, std::vector<float>(static_cast<std::size_t>(n * 12), 0.0f)};
    f.timbre = {n, 7, std::vector<float>(static_cast<std::size_t>(n * 7), 0.0f)};
    f.register_semitone.assign(static_cast<std::size_t>(n), 0.0f);
    f.onset.assign(static_cast<std::size_t>(n), 0.0f);
    f.semitones = {n, kSemitones, std::vector<float>(static_cast<std::size_t>(n * kSemitones), 0.0f)};
    std::vector<float> prev(kSemitones, 0.0f), cur(kSemitones);
    for (std::int64_t t = 0; t < n; ++t) {
        for (int s = 0; s < kSemitones; ++s) cur[static_cast<std::size_t>(s)] = f.semitones.at(t, s) = static_cast<float>(std::log1p(1000.0 * semis.at(t, s) / mean_e));
        double onset = 0;
        for (int s = 0; s < kSemitones; ++s) onset += std::max(0.0f, cur[static_cast<std::size_t>(s)] - prev[static_cast<std::size_t>(s)]);
        f.onset[static_cast<std::size_t>(t)] = static_cast<float>(onset);
        prev = cur;
        if (f.loudness_db[static_cast<std::size_t>(t)] < kGateDb) continue;
        double total = 0, weighted = 0;
        for (int s = 0; s < kSemitones; ++s) {
            const double c = cur[static_cast<std::size_t>(s)];
            f.chroma.at(t, s % 12) += static_cast<float>(c);
            f.timbre.at(t, s / 12) += static_cast<float>(c);
            total += c;
            weighted += c * (24 + s);
        }
        if (total <= 0) continue;
        for (int b = 0; b < 7; ++b) f.timbre.at(t, b) = static_cast<float>(f.timbre.at(t, b) / total);
        f.register_semitone[static_cast<std::size_t>(t)] = static_cast<float>(weighted / total);
    }
}

}  // namespace

StructureFeatures structure_features(const Audio& audio) {
    if (audio.samples.empty() || audio.sample_rate <= 0) throw_input("structure: empty audio");
    dsp::require_finite(audio.samples);
    const std::vector<float> y =
        audio.sample_rate == kStructureSampleRate ? audio.samples : resample(audio.samples, audio.sample_rate, kStructureSampleRate);
    const dsp::Matrix power = dsp::power_spectrogram(y, dsp::StftParams{kFft, kHop});
    StructureFeatures f;
    f.duration_sec = audio.duration_sec();
    f.loudness_db = frame_db(power, &f.silent);
    describe_frames(pool_semitones(power), f);
    return f;
}

}  // namespace mess
