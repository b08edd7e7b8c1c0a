// Alignment features: semitone energies → chroma and decaying, locally normalised onset chroma (align.hpp).
#include <algorithm>
#include <cmath>
#include <deque>

#include "mess/align.hpp"

namespace mess {
namespace {

constexpr int kFeatureRate = 12000;          // Hz: enough for pitch classes and attacks, a quarter of the work
constexpr int kFftSize = 2048, kHop = 240;   // 170 ms window, 20 ms hop → kAlignFrameRate
constexpr int kLowestMidi = 21, kSemitones = 88;  // A0 .. C8
constexpr double kOnsetCompression = 1e5;   // onsets: log(1 + 10⁵·energy), so a slow attack counts from its start
constexpr double kCompression = 1000.0;     // chroma: E = log(1 + 1000·energy)
constexpr double kNormaliseSeconds = 1.5;    // onset normalisation window, each side
constexpr float kOnsetDecay = 0.8f;          // per frame
constexpr double kChromaFloor = 0.1;         // see add_floor
constexpr float kOnsetWeight = 0.5f;         // weight of the onset distance in the frame cost

// For each semitone, the FFT bins within ±1 semitone and their triangular weights.
std::vector<std::vector<std::pair<std::int64_t, float>>> semitone_bands() {
    const auto freqs = dsp::fft_frequencies(kFeatureRate, kFftSize);
    std::vector<std::vector<std::pair<std::int64_t, float>>> bands(kSemitones);
    for (std::size_t k = 1; k < freqs.size(); ++k) {
        const double midi = 69.0 + 12.0 * std::log2(freqs[k] / 440.0);
        for (int m = static_cast<int>(std::floor(midi)); m <= static_cast<int>(std::ceil(midi)); ++m) {
            const double w = 1.0 - std::fabs(midi - m);
            if (w > 0 && m >= kLowestMidi && m < kLowestMidi + kSemitones)
                bands[static_cast<std::size_t>(m - kLowestMidi)].emplace_back(static_cast<std::int64_t>(k), static_cast<float>(w));
        }
    }
    return bands;
}

// Semitone energies [frames, 88] of audio scaled to unit RMS, resampled to kFeatureRate; a unit-RMS
// full-band frame sums to about 1.
dsp::Matrix semitone_energies(AudioView audio) {
    double sum_squares = 0;
    for (float v : audio.samples) sum_squares += static_cast<double>(v) * v;
    const double gain = 1.0 / std::sqrt(sum_squares / static_cast<double>(audio.samples.size()));
    std::vector<float> y = resample(audio.samples, audio.sample_rate, kFeatureRate);
    for (auto& v : y) v = static_cast<float>(v * gain);
    const dsp::Matrix power = dsp::power_spectrogram(y, {kFftSize, kHop});
    // One-sided |X|² of a unit-RMS signal under a Hann window sums to about n_fft²·3/16 per frame.
    const double scale = 1.0 / (static_cast<double>(kFftSize) * kFftSize * 3.0 / 16.0);
    static const auto bands = semitone_bands();
    dsp::Matrix out{power.rows, kSemitones, std::vector<float>(static_cast<std::size_t>(power.rows * kSemitones))};
    for (std::int64_t t = 0; t < power.rows; ++t)
        for (int s = 0; s < kSemitones; ++s) {
            double e = 0;
            for (auto [k, w] : bands[static_cast<std::size_t>(s)]) e += w * power.at(t, k);
            out.at(t, s) = static_cast<float>(scale * e);
        }
    return out;
}

dsp::Matrix compressed(const dsp::Matrix& energies, double gamma) {
    dsp::Matrix out = energies;
    for (auto& v : out.values) v = static_cast<float>(std::log1p(gamma * v));
    return out;
}

void normalise_rows_l2(dsp::Matrix& m) {
    const float uniform = 1.0f / std::sqrt(static_cast<float>(m.cols));
    for (std::int64_t t = 0; t < m.rows; ++t) {
        double n = 0;
        for (std::int64_t c = 0; c < m.cols; ++c) n += static_cast<double>(m.at(t, c)) * m.at(t, c);
        n = std::sqrt(n);
        for (std::int64_t c = 0; c < m.cols; ++c) m.at(t, c) = n > 1e-6 ? static_cast<float>(m.at(t, c) / n) : uniform;
    }
}

// Adds `share` of a loud frame's mean pitch-class energy (the 90th percentile of frame sums / 12) to every
// class of every frame: quiet frames (silence, count-in clicks, release tails) lean to the uniform vector
// instead of being scaled up to full weight, while loud frames hardly change.
void add_floor(dsp::Matrix& chroma, double share) {
    std::vector<double> sums(static_cast<std::size_t>(chroma.rows), 0.0);
    for (std::int64_t t = 0; t < chroma.rows; ++t)
        for (std::int64_t c = 0; c < chroma.cols; ++c) sums[static_cast<std::size_t>(t)] += chroma.at(t, c);
    if (sums.empty()) return;
    auto p90 = sums.begin() + static_cast<std::ptrdiff_t>(0.9 * static_cast<double>(sums.size() - 1));
    std::nth_element(sums.begin(), p90, sums.end());
    const auto floor = static_cast<float>(share * *p90 / static_cast<double>(chroma.cols));
    for (auto& v : chroma.values) v += floor;
}

dsp::Matrix fold_chroma(const dsp::Matrix& semis) {
    dsp::Matrix c{semis.rows, 12, std::vector<float>(static_cast<std::size_t>(semis.rows * 12), 0.0f)};
    for (std::int64_t t = 0; t < semis.rows; ++t)
        for (int s = 0; s < kSemitones; ++s) c.at(t, (kLowestMidi + s) % 12) += semis.at(t, s);
    return c;
}

// Largest value of x within ±radius of each index (a monotone deque: O(n)).
std::vector<double> running_max(const std::vector<double>& x, std::int64_t radius) {
    const auto n = static_cast<std::int64_t>(x.size());
    std::vector<double> out(x.size());
    std::deque<std::int64_t> q;
    std::int64_t next = 0;
    for (std::int64_t t = 0; t < n; ++t) {
        for (; next < n && next <= t + radius; ++next) {
            while (!q.empty() && x[static_cast<std::size_t>(q.back())] <= x[static_cast<std::size_t>(next)]) q.pop_back();
            q.push_back(next);
        }
        while (q.front() < t - radius) q.pop_front();
        out[static_cast<std::size_t>(t)] = x[static_cast<std::size_t>(q.front())];
    }
    return out;
}

// The onset chroma, and each frame's onset energy relative to the recording's largest (its salience).
dsp::Matrix onset_chroma(const dsp::Matrix& semis, std::vector<float>& salience) {
    dsp::Matrix rises{semis.rows, kSemitones, std::vector<float>(semis.values.size(), 0.0f)};
    for (std::int64_t t = 1; t < semis.rows; ++t)
        for (int s = 0; s < kSemitones; ++s) rises.at(t, s) = std::max(0.0f, semis.at(t, s) - semis.at(t - 1, s));
    dsp::Matrix o = fold_chroma(rises);
    std::vector<double> norms(static_cast<std::size_t>(o.rows));
    for (std::int64_t t = 0; t < o.rows; ++t) {
        double n = 0;
        for (int c = 0; c < 12; ++c) n += static_cast<double>(o.at(t, c)) * o.at(t, c);
        norms[static_cast<std::size_t>(t)] = std::sqrt(n);
    }
    const double global = norms.empty() ? 0.0 : *std::max_element(norms.begin(), norms.end());
    const double floor = std::max(1e-6, 0.02 * global);  // quiet passages: noise is not raised to full scale
    salience.resize(norms.size());
    for (std::size_t t = 0; t < norms.size(); ++t) salience[t] = static_cast<float>(norms[t] / std::max(global, 1e-12));
    const auto local = running_max(norms, static_cast<std::int64_t>(kNormaliseSeconds * kAlignFrameRate));
    for (std::int64_t t = 0; t < o.rows; ++t) {
        const double d = std::max(floor, local[static_cast<std::size_t>(t)]);
        for (int c = 0; c < 12; ++c) {
            const float v = static_cast<float>(o.at(t, c) / d);
            o.at(t, c) = t > 0 ? std::max(v, kOnsetDecay * o.at(t - 1, c)) : v;
        }
    }
    return o;
}

}  // namespace

AlignFeatures alignment_features(AudioView audio) {
    if (audio.samples.empty() || audio.sample_rate <= 0) throw_input("alignment needs audio (got no samples)");
    dsp::require_finite(audio.samples);
    if (is_silent(audio)) throw_input("the audio is silent: there is nothing to align");
    const dsp::Matrix energies = semitone_energies(audio);
    AlignFeatures f;
    f.chroma = fold_chroma(compressed(energies, kCompression));
    add_floor(f.chroma, kChromaFloor);
    normalise_rows_l2(f.chroma);
    f.onsets = onset_chroma(compressed(energies, kOnsetCompression), f.onset_salience);
    f.duration_sec = audio.duration_sec();
    return f;
}

AlignFeatures downsample_features(const AlignFeatures& f, int factor) {
    if (factor < 1) throw_usage("downsampling factor must be ≥ 1 (got {})", factor);
    const std::int64_t rows = (f.frames() + factor - 1) / factor;
    AlignFeatures out{{rows, 12, std::vector<float>(static_cast<std::size_t>(rows * 12), 0.0f)},
                      {rows, 12, std::vector<float>(static_cast<std::size_t>(rows * 12), 0.0f)},
                      std::vector<float>(static_cast<std::size_t>(rows), 0.0f),
                      f.frame_rate / factor,
                      f.duration_sec};
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t begin = r * factor, end = std::min(f.frames(), begin + factor);
        for (std::int64_t t = begin; t < end; ++t) {
            if (!f.onset_salience.empty())
                out.onset_salience[static_cast<std::size_t>(r)] = std::max(out.onset_salience[static_cast<std::size_t>(r)], f.onset_salience[static_cast<std::size_t>(t)]);
            for (int c = 0; c < 12; ++c) {
                out.chroma.at(r, c) += f.chroma.at(t, c);
                out.onsets.at(r, c) += f.onsets.at(t, c) / static_cast<float>(end - begin);
            }
        }
    }
    normalise_rows_l2(out.chroma);
    return out;
}

AlignFeatures shift_pitch_classes(const AlignFeatures& f, int shift) {
    const int s = ((shift % 12) + 12) % 12;
    AlignFeatures out = f;
    for (std::int64_t t = 0; t < f.frames(); ++t)
        for (int c = 0; c < 12; ++c) {
            out.chroma.at(t, c) = f.chroma.at(t, (c + s) % 12);
            out.onsets.at(t, c) = f.onsets.at(t, (c + s) % 12);
        }
    return out;
}

float frame_cost(const AlignFeatures& a, std::int64_t i, const AlignFeatures& b, std::int64_t j) {
    const float* ca = &a.chroma.values[static_cast<std::size_t>(i * 12)];
    const float* cb = &b.chroma.values[static_cast<std::size_t>(j * 12)];
    const float* oa = &a.onsets.values[static_cast<std::size_t>(i * 12)];
    const float* ob = &b.onsets.values[static_cast<std::size_t>(j * 12)];
    float dot = 0, d2 = 0;
    for (int c = 0; c < 12; ++c) {
        dot += ca[c] * cb[c];
        const float d = oa[c] - ob[c];
        d2 += d * d;
    }
    return std::max(0.0f, 1.0f - dot) + kOnsetWeight * std::sqrt(d2);
}

}  // namespace mess
