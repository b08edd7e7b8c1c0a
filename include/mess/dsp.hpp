// mess/dsp.hpp — spectral analysis and descriptors, defined as librosa documents its defaults.
//
//   mess::dsp::StftParams p;                                  // n_fft 2048, hop 512, centred
//   mess::dsp::Matrix S = mess::dsp::power_spectrogram(y, p); // [frames, 1 + n_fft/2], |X|²
//   mess::dsp::Matrix M = mess::dsp::mfcc(y, 22050, 20, p, {});   // [frames, 20]
//   std::vector<float> onset = mess::dsp::onset_strength(y, 22050, p, {});  // [frames]
//
// Conventions: every matrix is time-major, [frames, features] (librosa returns the transpose). Frames are
// centred: the signal is zero-padded by n_fft/2 on both sides and frame t starts at t·hop in the padded
// signal, so frames = 1 + len/hop (integer division). Window: periodic Hann. Frequencies in Hz.
// Definitions (golden values: tests/fixtures/dsp/, made by an independent NumPy implementation):
// - mel: Slaney mel scale (linear below 1 kHz, log above) or HTK (2595·log10(1 + f/700)); triangular
//   filters between mel-spaced edges; Slaney area normalisation 2/(f[i+2] − f[i]).
// - power_to_db: 10·log10(max(amin, S)) − 10·log10(max(amin, ref)), floored at max − top_db.
// - mfcc: DCT-II (orthonormal) of power_to_db(mel power spectrogram).
// - chroma: librosa's chroma filterbank (Gaussian bumps per pitch class, L2-normalised per frequency,
//   weighted by a Gaussian over octaves centred on octave 5, width 2; starting at C), tuning 0 (librosa
//   estimates tuning by default: a documented deviation), applied to the power spectrogram, each frame
//   scaled to max 1 (frames of silence stay 0).
// - rms: sqrt(mean(x²)) over centred frames (zero padding); where the frames are whole hops (n_fft/2 and n_fft
//   multiples of the hop) each frame adds the energies of its hops, each hop summed once.
// - zero_crossing_rate: fraction of sign changes inside each centred frame (edge padding, |x| ≤ 1e-10
//   counts as 0, 0 counts as positive, the first sample of a frame never counts).
// - spectral centroid/bandwidth (p = 2)/rolloff (85 %) on the magnitude spectrum normalised to sum 1
//   per frame (silent frames: centroid 0, bandwidth 0, rolloff 0 Hz); flatness = geometric / arithmetic mean
//   of max(1e-10, power).
// - onset_strength: mean over mel bands of max(0, Δ power_to_db(mel)) with lag 1, delayed by
//   1 + n_fft/(2·hop) frames (zeros in front) to line up with the centred frames.
// Errors: Error(usage) for invalid parameters (validated when used); Error(input) for NaN/Inf samples
// (naming the first one); empty input gives empty output.
// Thread safety: all functions are reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mess/util.hpp"

namespace mess::dsp {

// A dense row-major matrix of float.
struct Matrix {
    std::int64_t rows = 0, cols = 0;
    std::vector<float> values;
    float& at(std::int64_t r, std::int64_t c) { return values[static_cast<std::size_t>(r * cols + c)]; }
    float at(std::int64_t r, std::int64_t c) const { return values[static_cast<std::size_t>(r * cols + c)]; }
};

struct StftParams {
    int n_fft = 2048;  // samples, even, ≥ 4
    int hop = 512;     // samples, ≥ 1
    void validate() const;
    std::int64_t frames(std::int64_t samples) const { return samples > 0 ? 1 + samples / hop : 0; }
};

struct MelParams {
    int n_mels = 128;
    double fmin = 0.0;   // Hz
    double fmax = 0.0;   // Hz; 0 = sample_rate / 2
    bool htk = false;    // HTK mel scale instead of Slaney
    void validate(double sample_rate) const;
};

// Error(input) naming the first non-finite sample, if any.
void require_finite(std::span<const float> y);

// Centre frequency of each STFT bin: k · sr / n_fft for k = 0 .. n_fft/2.
std::vector<double> fft_frequencies(double sample_rate, int n_fft);

// |STFT|^power, [frames, 1 + n_fft/2]. A power-of-two n_fft runs several frames per SIMD vector (AVX-512, AVX2 or
// baseline, chosen at run time); other lengths one frame at a time (KissFFT). Both agree to float rounding.
Matrix power_spectrogram(std::span<const float> y, const StftParams& params, double power = 2.0);
// Both |STFT| (what the spectral shape descriptors read) and |STFT|² (what the filterbanks read) from one
// transform: equal to power_spectrogram(y, params, 1.0) and power_spectrogram(y, params).
struct Spectra {
    Matrix magnitude, power;
};
Spectra stft_spectra(std::span<const float> y, const StftParams& params);

Matrix mel_filterbank(double sample_rate, int n_fft, const MelParams& params);    // [n_mels, 1 + n_fft/2]
Matrix mel_spectrogram(std::span<const float> y, double sample_rate, const StftParams& stft, const MelParams& mel);  // power
void power_to_db(Matrix& s, double ref = 1.0, double amin = 1e-10, double top_db = 80.0);  // in place
Matrix mfcc(std::span<const float> y, double sample_rate, int n_mfcc, const StftParams& stft, const MelParams& mel);
// The same from a power spectrogram already computed ([frames, 1 + n_fft/2], e.g. stft_spectra(y, stft).power).
Matrix mel_from_power(const Matrix& power, double sample_rate, int n_fft, const MelParams& mel);
Matrix mfcc_from_power(const Matrix& power, double sample_rate, int n_mfcc, int n_fft, const MelParams& mel);

Matrix chroma_filterbank(double sample_rate, int n_fft, int n_chroma = 12, double tuning = 0.0);  // [n_chroma, bins]
Matrix chroma_stft(std::span<const float> y, double sample_rate, const StftParams& stft);         // [frames, 12]

std::vector<float> rms(std::span<const float> y, const StftParams& framing);
std::vector<float> zero_crossing_rate(std::span<const float> y, const StftParams& framing);

// Spectral shape per frame of a magnitude spectrogram [frames, bins] (e.g. power_spectrogram(y, p, 1.0)).
std::vector<float> spectral_centroid(const Matrix& magnitude, double sample_rate, int n_fft);
std::vector<float> spectral_bandwidth(const Matrix& magnitude, double sample_rate, int n_fft);
// Both at once (one pass for the sums): what spectral_centroid and spectral_bandwidth return.
struct SpectralShape {
    std::vector<float> centroid, bandwidth;
};
SpectralShape spectral_shape(const Matrix& magnitude, double sample_rate, int n_fft);
std::vector<float> spectral_rolloff(const Matrix& magnitude, double sample_rate, int n_fft, double roll_percent = 0.85);
// Spectral contrast (librosa.feature.spectral_contrast): bands [0, fmin], then octaves from fmin (the last
// reaching Nyquist); per band and frame, the means of the lowest and highest `quantile` of its magnitudes
// (at least one bin; bands other than the last drop their top bin and borrow the bin below their lower
// edge); contrast = power_to_db(peak) − power_to_db(valley), each matrix floored at its own max − 80 dB.
// [frames, n_bands + 1].
Matrix spectral_contrast(const Matrix& magnitude, double sample_rate, int n_fft, int n_bands = 6, double fmin = 200.0,
                         double quantile = 0.02);
// Of a power spectrogram.
std::vector<float> spectral_flatness(const Matrix& power, double amin = 1e-10);

std::vector<float> onset_strength(std::span<const float> y, double sample_rate, const StftParams& stft, const MelParams& mel);
// The same with the median over mel bands instead of the mean (what librosa.beat.beat_track uses: zero wherever
// more than half the bands do not rise, e.g. everywhere in band-limited recordings).
std::vector<float> onset_strength_median(std::span<const float> y, double sample_rate, const StftParams& stft, const MelParams& mel);
// Both from one mel spectrogram.
struct OnsetEnvelopes {
    std::vector<float> mean, median;
};
OnsetEnvelopes onset_envelopes(std::span<const float> y, double sample_rate, const StftParams& stft, const MelParams& mel);
// Both from a power spectrogram already computed with `stft` (the mean alone: onset_strength's).
OnsetEnvelopes onset_envelopes_from_power(const Matrix& power, double sample_rate, const StftParams& stft, const MelParams& mel);
std::vector<float> onset_strength_from_power(const Matrix& power, double sample_rate, const StftParams& stft, const MelParams& mel);

// ---------------------------------------------------------------------------------------------
// Filters (1-D), as SciPy defines them
// ---------------------------------------------------------------------------------------------

// Savitzky–Golay smoothing: least-squares polynomial of `order` over `window` samples (odd, > order,
// ≤ x.size()); the first and last window/2 samples come from the polynomial fitted to the edge window
// (scipy.signal.savgol_filter, mode "interp").
std::vector<float> savgol_filter(std::span<const float> x, int window, int order);
// Gaussian smoothing, sigma in samples, kernel radius round(4·sigma), edges repeat the end values
// (scipy.ndimage.gaussian_filter1d, mode "nearest").
std::vector<float> gaussian_filter(std::span<const float> x, double sigma);
// Running median over `size` (odd) samples, edges repeat the end values (scipy.ndimage.median_filter, "nearest").
std::vector<float> median_filter(std::span<const float> x, int size);

// ---------------------------------------------------------------------------------------------
// Rhythm
// ---------------------------------------------------------------------------------------------

// Autocorrelation tempogram of an onset envelope (librosa.feature.tempogram): for each frame, the
// envelope around it (win_length frames, linear ramps to 0 beyond the ends) times a periodic Hann
// window, autocorrelated for lags 0 .. win_length-1, scaled to max 1. [frames, win_length]. Computed as librosa
// does, through the power spectrum (real FFTs of the next power of two ≥ 2·win_length − 1, in double, several
// frames per SIMD lane): equal to the direct sums to double rounding; an all-zero frame stays exactly 0.
Matrix tempogram(std::span<const float> onset_envelope, int win_length = 384);

struct TempoParams {
    double start_bpm = 120.0;  // centre of the log-normal prior
    double std_bpm = 1.0;      // its width in octaves
    double min_bpm = 30.0;     // lags outside [min_bpm, max_bpm] are excluded
    double max_bpm = 320.0;
    double ac_seconds = 8.0;   // autocorrelation window
    void validate() const;
};
// Global tempo (BPM): mean tempogram over time, weighted by the log-normal prior
// (argmax of log1p(1e6·tempogram) − ½((log2 bpm − log2 start)/std)²) as librosa does, then refined between
// lags by a parabola through the peak and its neighbours (a deviation: librosa returns the integer lag's
// BPM, which is 2–3 % coarse at 43 frames/s). Returns 0 when the envelope has no energy.
double estimate_tempo(std::span<const float> onset_envelope, double sample_rate, int hop, const TempoParams& params = {});
// Global tempo exactly as librosa.feature.tempo with its defaults (what librosa.beat.beat_track returns): the
// mean of the tempogram (window floor(8 s · sr / hop) frames), argmax over lags of log1p(1e6·tempogram) −
// ½(log2(bpm/120))², lags of 320 BPM or faster excluded, no lower bound; the integer lag's BPM 60·sr/(hop·lag).
// 0 when the envelope is all zero (beat_track's answer without onsets).
double beat_track_tempo(std::span<const float> onset_envelope, double sample_rate, int hop);

// Onset frames picked from an onset envelope as librosa.onset.onset_detect does by default: the envelope
// is scaled to [0, 1]; frame n is an onset when it is the maximum of [n − pre_max, n + post_max], at least
// delta above the mean of [n − pre_avg, n + post_avg] (windows clipped at the ends), and more than `wait`
// frames after the previous onset. Windows in frames from seconds: pre_max 0.03 s, post_max 0 s (+1),
// pre_avg 0.1 s, post_avg 0.1 s (+1), wait 0.03 s (each floor(seconds·sr/hop)); delta 0.07.
std::vector<std::int64_t> onset_detect(std::span<const float> onset_envelope, double sample_rate, int hop);

// ---------------------------------------------------------------------------------------------
// Structure
// ---------------------------------------------------------------------------------------------

// Pitch-class profile from a semitone filterbank: 84 semitones from C1 (32.70 Hz) to B7, each a
// triangular band ±1 semitone (in log frequency) over a power spectrogram taken with n_fft = 8192 (so
// semitones are resolved from about 60 Hz), folded to 12 classes starting at C, each frame scaled to max 1.
// Not librosa's chroma_cqt (that is chroma_cqt above, which the proxy targets use); the dsp encoder keeps
// this one (its embeddings and calibration depend on it). [frames, 12] at `hop`.
Matrix chroma_semitone(std::span<const float> y, double sample_rate, int hop = 512);
// The 84 semitone band energies (C1..B7) before folding: [frames, 84] power at `hop`.
Matrix semitone_spectrogram(std::span<const float> y, double sample_rate, int hop = 512);

// ---------------------------------------------------------------------------------------------
// Constant-Q (librosa 0.11: estimate_tuning, cqt = vqt with gamma 0, chroma_cqt; golden values from an
// independent NumPy implementation in tests/fixtures/dsp/make_cqt.py)
// ---------------------------------------------------------------------------------------------

// Tuning deviation from A440 in fractions of a bin (bins_per_octave per octave), in [-0.5, 0.5) by steps of 0.01,
// as librosa.estimate_tuning: piptrack peaks of a magnitude spectrogram (n_fft 2048, hop 512) between 150 Hz and
// min(4 kHz, sr/2) — local maxima of each frame above 0.1 × its max, parabolically interpolated — whose
// interpolated magnitude is at least the median of all peaks; the deviation of each from the nearest bin of the
// grid; the left edge of the fullest of 100 histogram bins. 0 without peaks.
double estimate_tuning(const Matrix& magnitude, double sample_rate, int n_fft, int bins_per_octave);
double estimate_tuning(std::span<const float> y, double sample_rate, int bins_per_octave);

// Halving the sample rate: a zero-phase half-band low-pass (windowed sinc, radius kHalfbandRadius samples, Kaiser
// beta kHalfbandBeta, taps normalised to sum 1), every second output sample, times √2 (librosa's resample with
// scale=True keeps the energy). ceil(n/2) samples out. (librosa uses soxr's "HQ" resampler here; both are flat far
// beyond the band any constant-Q filter reads, which is at most 0.35 of the new Nyquist frequency.)
inline constexpr int kHalfbandRadius = 32;
inline constexpr double kHalfbandBeta = 8.0;
std::vector<float> halve_rate(std::span<const float> y);
const std::vector<double>& halfband_taps();  // 2·kHalfbandRadius + 1 taps, centre in the middle

struct CqtParams {
    int hop = 512;                           // samples
    double fmin = 32.70319566257483;         // Hz, C1
    int n_bins = 252;                        // 7 octaves
    int bins_per_octave = 36;
    double tuning = 0.0;                     // bins; fmin is raised by 2^(tuning / bins_per_octave)
    void validate(double sample_rate) const; // Error(usage) also when the top filter reaches past Nyquist
};
// |CQT| as librosa.cqt computes it (Hann filters, filter_scale 1, L1 norm, sparsity 0.01, scale=True): bin k at
// f_k = fmin·2^((tuning + k)/bpo), Q = 1/α with α = (2^(2/bpo) − 1)/(2^(2/bpo) + 1), filter length Q·sr/f_k
// samples; octaves from the top, each filtered in the frequency domain (filters padded to a power of two n_fft,
// scaled by length/n_fft, FFT, sparsified to 99 % of their L1 mass) against a centred ones-window STFT with zero
// padding, the signal then halved in rate (halve_rate) and the hop halved while it is even; early downsampling
// when the top octave is far below Nyquist; each bin divided by √(filter length). [frames, n_bins], frames =
// the fewest any octave gives (1 + len/hop at the top one). Cost: the filters are built once per process (cached by
// frequencies in cycles per sample; every whole octave of one transform shares the top octave's filters, its gain
// √(sr/octave rate) applied to the magnitudes; at most 64 octaves kept); the frames' real FFTs run several at a time
// (one per SIMD lane, AVX-512/AVX2/baseline chosen at run time) and the filters are summed across the lanes; where
// the hop divides n_fft and is small enough (the lowest octave: hop 8 at 512 and 24 kHz), the bins the filters read
// come from a block-wise sliding DFT in double precision instead; both agree to float rounding (the NumPy golden
// values hold to 1e-4 of the peak either way).
Matrix cqt_magnitude(std::span<const float> y, double sample_rate, const CqtParams& params);
// Chroma of the CQT (librosa.feature.chroma_cqt defaults: C1, 7 octaves × 36 bins, tuning estimated from y):
// bins folded to 12 classes starting at C (bin b → ((b mod 36) + 1) / 3 mod 12, i.e. three bins per semitone
// centred on it), each frame divided by its max (silent frames stay 0). [frames, 12].
Matrix chroma_cqt(std::span<const float> y, double sample_rate, int hop = 512);
Matrix chroma_cqt(std::span<const float> y, double sample_rate, int hop, double tuning);

// Contiguous segmentation into k segments by agglomerative clustering with temporal connectivity and
// Ward's criterion (librosa.segment.agglomerative): starting from single frames, repeatedly merge the
// adjacent pair whose merge least increases the within-segment sum of squares. Returns the k segment
// start frames (the first is 0), ascending. Errors: Error(usage) when k < 1 or k > frames.
std::vector<std::int64_t> agglomerative_segments(const Matrix& features, int k);

// Cosine self-similarity of feature rows ([frames, dims] → [frames, frames]); rows normalised by
// max(‖row‖, 1e-10).
Matrix cosine_self_similarity(const Matrix& features);
// Foote novelty: a checkerboard kernel with offsets ±1..±half, weights sign(i)·sign(j)·exp(−(i²+j²)/half²),
// slid along the diagonal; frames closer than `half` to either end are 0.
std::vector<float> checkerboard_novelty(const Matrix& similarity, int half = 8);

}  // namespace mess::dsp
