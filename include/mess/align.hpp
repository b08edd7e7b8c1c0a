// mess/align.hpp — aligning two performances of one piece: which moment of B is this moment of A.
//
//   mess::Audio a = mess::load_audio("gould_1955.flac"), b = mess::load_audio("gould_1981.flac");
//   mess::Alignment al = mess::align_audio(a, b, {});          // multiscale DTW on chroma + onset features
//   if (!al.reliable()) fmt::print("no common material (confidence {:.2f})\n", al.confidence);
//   double t = al.time_b_at(61.0);                             // B's second for A's second 61
//   auto tempo = mess::local_tempo_ratio(al, 0.1, 3.0);        // B's tempo / A's, on A's time axis
//
// Features (`alignment_features`, kAlignFrameRate = 50 frames/s): the audio, scaled to unit RMS, is
// resampled to 12 kHz; a Hann STFT (2048 samples, hop 240, centred) is pooled into the 88 piano semitones
// (A0–C8, triangular weights in log frequency), energies e (a unit-RMS frame sums to about 1).
//   - chroma [frames, 12]: log(1 + 1000·e) folded to pitch classes (C first), plus a floor of 10 % of a
//     loud frame's mean class value (quiet frames — silence, count-in clicks, release tails — lean to the
//     uniform vector), L2-normalised;
//   - onsets [frames, 12]: the positive frame-to-frame increase of log(1 + 10⁵·e) (strong compression, so a
//     slow attack counts from its start) folded to pitch classes, divided by the largest onset norm within
//     ±1.5 s (floor: 2 % of the recording's largest), then held with a decay of 0.8 per frame (a decaying,
//     locally normalised onset chroma: it pins attacks to a frame or two whatever their loudness).
// The cost of matching frame i of A with frame j of B is (1 − chroma_a·chroma_b) + 0.5·‖onsets_a − onsets_b‖.
//
// DTW: steps (1,0), (0,1), (1,1); each adds the cost of the cell it enters, and a non-diagonal step also
// kAlignStepPenalty (so the path runs straight through passages the features cannot place: rests, held
// notes). Any tempo ratio is reachable; the ratio of the two durations is checked separately
// (AlignParams::max_length_ratio). `dtw_full` fills the whole matrix (exact; its step matrix takes
// rows·cols bytes). `dtw_multiscale` computes the exact path of features averaged over blocks at the
// coarsest level (at most `coarsest_frames` frames per side; blocks of 5, 5, then 4, ...), then at each
// finer level runs DTW only inside a band: the coarse path projected to the finer grid and widened by
// `radius` frames; its working memory is O((rows + cols)·band), bounded for any length. Band and full DTW
// agree wherever the optimal path stays inside the band (tests/align: ≥ 99 % of rows within one frame).
// Open begin/end concern B only: A is the query and is always aligned whole.
//
// The path the Alignment reports: one row per frame of A. A's note onsets (local maxima of new onset energy
// ≥ 0.3 in locally normalised units, with an onset salience ≥ 0.2) are paired with the frame of B, among
// those the DTW path pairs with that onset, where B's own onset rises most; both are moved 50 ms later
// (the features see an attack that much early, and a tempo ratio would otherwise stretch the lead).
// Between onsets the path is linear (inside a held note or a rest the features cannot place a moment; the
// onsets on both sides can); before the first and after the last onset it continues at the tempo between
// that onset and the nearest one at least 1.5 s away (lead-ins and release tails differ between
// performances), kept inside the DTW path's span of B.
//
// Transposition: the features averaged down to at most 400 frames per side are aligned once per chroma
// shift (0..11, B's pitch classes rolled down by the shift) and the cheapest shift is applied at every level; `Alignment::transposition` reports
// it in semitones (B = A + shift, as −5..+6).
//
// Confidence: the path's mean frame cost divided by the mean cost of 4096 random frame pairs of the two
// recordings (seeded, so deterministic). confidence = clamp((0.62 − ratio) / 0.3, 0, 1); `reliable()` =
// confidence ≥ 0.2 (ratio ≤ 0.56). Calibrated on the rendered development corpus (scripts/corpus,
// "beginner"): renderings of one piece reach ratios up to 0.53 (a change of instrument), pairs of different
// pieces 0.49–0.70. Different pieces in one key, tempo and instrument can look alike: 3 of its 8
// cross-piece pairs count as reliable; pieces that differ in key or material do not.
//
// Errors: Error(input) for audio that is silent, shorter than kMinAudioSeconds, or non-finite; for two
// recordings whose durations differ by more than max_length_ratio when neither open_begin nor open_end
// is set (naming both durations); Error(usage) for invalid parameters.
// Thread safety: all functions are reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/audio.hpp"
#include "mess/dsp.hpp"

namespace mess {

inline constexpr double kAlignFrameRate = 50.0;  // frames per second of alignment features
inline constexpr double kAlignStepPenalty = 0.1;  // DTW's default extra cost of a non-diagonal step

struct AlignFeatures {
    dsp::Matrix chroma;   // [frames, 12], rows unit L2
    dsp::Matrix onsets;   // [frames, 12], entries in [0, 1]
    std::vector<float> onset_salience;  // [frames]: onset norm before normalisation / the recording's largest (0..1)
    double frame_rate = kAlignFrameRate;
    double duration_sec = 0;
    std::int64_t frames() const { return chroma.rows; }
};

// Features of mono audio at any sample rate (read in place). Errors: Error(input) for silent, non-finite or empty audio.
AlignFeatures alignment_features(AudioView audio);

// Averages blocks of `factor` frames (the last block may be shorter); chroma rows renormalised.
AlignFeatures downsample_features(const AlignFeatures& f, int factor);

// Rolls B's pitch classes: class c of the result is class (c + shift) mod 12 of the input.
AlignFeatures shift_pitch_classes(const AlignFeatures& f, int shift);

// Frame-pair cost (see above).
float frame_cost(const AlignFeatures& a, std::int64_t i, const AlignFeatures& b, std::int64_t j);

struct DtwOptions {
    double step_penalty = kAlignStepPenalty;  // added to every (1,0) and (0,1) step: straight through uninformative passages
    bool open_begin = false;  // the path may start anywhere on the first row or column (extra material at the start of either)
    bool open_end = false;    // ... and end anywhere on the last row or column (extra material at the end)
};

struct DtwPath {
    std::vector<std::array<std::int64_t, 2>> cells;  // (i in A, j in B), monotone, first to last
    double total_cost = 0;                            // sum of the costs of the path's cells and step penalties
    double mean_cost() const { return cells.empty() ? 0.0 : total_cost / static_cast<double>(cells.size()); }
    std::int64_t cells_computed = 0;                  // cost cells evaluated (all levels)
    std::int64_t working_bytes = 0;                   // peak bytes of DP state (steps + cost rows + bands)
};

// Exact DTW over the whole matrix. Errors: Error(usage) for empty features.
DtwPath dtw_full(const AlignFeatures& a, const AlignFeatures& b, const DtwOptions& options);

// A band: for each row i, the columns lo[i]..hi[i] (inclusive); lo and hi non-decreasing, lo[0] = 0 when
// the path must start at (0, 0), hi[rows−1] = cols − 1 when it must end at the last cell.
struct DtwBand {
    std::vector<std::int64_t> lo, hi;
    std::int64_t cells() const;
};
// DTW restricted to the band. Errors: Error(usage) when the band does not fit the features.
DtwPath dtw_banded(const AlignFeatures& a, const AlignFeatures& b, const DtwBand& band, const DtwOptions& options);
// The band of a coarse path (cells of features downsampled by `factor`) on the grid of rows × cols,
// widened by `radius` finer frames on every side and made monotone.
DtwBand project_path(const DtwPath& coarse, int factor, std::int64_t rows, std::int64_t cols, int radius);

struct MultiscaleOptions {
    DtwOptions dtw;
    int radius = 12;                   // finer frames added on each side of the projected path (≥ 1)
    std::int64_t coarsest_frames = 1500;  // the coarsest level has at most this many frames per side (≥ 50)
};
DtwPath dtw_multiscale(const AlignFeatures& a, const AlignFeatures& b, const MultiscaleOptions& options);

struct AlignParams {
    MultiscaleOptions dtw;
    bool detect_transposition = true;  // false: no shift is tried (transposition 0)
    double max_length_ratio = 4.0;     // longer/shorter duration allowed without open_begin/open_end (> 1)
    bool exact = false;                // full-matrix DTW instead of multiscale (for checks; memory rows·cols bytes,
                                       // refused with Error(usage) above 2·10⁹)
    void validate() const;
};

struct Alignment {
    std::vector<std::array<double, 2>> path_sec;  // (time in A, time in B), seconds, monotone; one row per path cell
    double duration_a = 0, duration_b = 0;        // seconds
    double frame_rate = kAlignFrameRate;
    int transposition = 0;                        // semitones, B = A + transposition
    double path_cost = 0;                         // mean cost per path cell
    double cost_ratio = 0;                        // path_cost / mean cost of random frame pairs
    double confidence = 0;                        // 0..1 (see above)
    std::int64_t cells_computed = 0, working_bytes = 0;
    bool reliable() const { return confidence >= 0.2; }
    // B's time for A's time t (linear between path cells; clamped to the aligned span).
    double time_b_at(double time_a) const;
    double time_a_at(double time_b) const;
    // Mean tempo of B relative to A over the aligned span (> 1: B is faster).
    double mean_tempo_ratio() const;
};

Alignment align_features(const AlignFeatures& a, const AlignFeatures& b, const AlignParams& params);
// The summary of an alignment, the form `mess align --json` and the Python module share (the path itself is
// left out): {"duration_a", "duration_b", "transposition", "mean_tempo_ratio", "path_cost", "cost_ratio",
// "confidence", "reliable", "path_rows", "aligned_span_b": [first, last], "dtw_cells", "dtw_working_mb"}.
nlohmann::json alignment_to_json(const Alignment& alignment);
Alignment align_audio(AudioView a, AudioView b, const AlignParams& params);

// B's local tempo relative to A (> 1: B is faster), sampled every `step_sec` of A from 0 to A's duration:
// (A's span)/(B's span) over a window of `window_sec` of A centred on each point (clipped at the ends).
std::vector<double> local_tempo_ratio(const Alignment& alignment, double step_sec, double window_sec);

// ---------------------------------------------------------------------------------------------
// Comparing performances on the reference's time axis
// ---------------------------------------------------------------------------------------------
//
//   std::vector<mess::Performance> takes = {{"gould55", load_audio(a)}, {"gould81", load_audio(b)}};
//   mess::Comparison c = mess::compare_performances(takes, {});   // takes[0] is the reference
//   nlohmann::json j = mess::comparison_to_json(c);                // the form the CLI and the API share

struct Performance {
    std::string name;  // a track id or a file name
    Audio audio;
};

struct CompareParams {
    AlignParams align;
    double start_sec = 0, end_sec = 0;  // the passage on the reference's axis (end 0: to the end)
    double step_sec = 0.1;              // curve sampling step on the reference's axis (≥ 0.02)
    double tempo_window_sec = 3.0;      // window of the local tempo ratio (≥ 0.2)
    double reference_bpm = 0;           // the reference's tempo when a beat grid is known (> 0: curves also in BPM)
    void validate() const;
};

struct PerformanceCurves {
    std::string name;
    Alignment alignment;             // reference → this performance (the reference's own is the identity)
    std::vector<double> tempo_ratio; // this performance's tempo / the reference's, per curve time (> 1: faster)
    std::vector<double> bpm;         // tempo_ratio × reference_bpm, when reference_bpm > 0
    std::vector<double> loudness_db; // RMS level (dBFS, 100-ms window, floor −100) at the aligned moment
    double passage_start = 0, passage_end = 0;  // the passage in this performance's seconds
    double passage_duration() const { return passage_end - passage_start; }
};

struct Comparison {
    std::vector<double> times;                  // curve times, seconds of the reference, in [start, end]
    double start_sec = 0, end_sec = 0;          // the passage on the reference's axis
    std::vector<PerformanceCurves> performances;  // [0] is the reference
    std::vector<std::size_t> longest_first;     // performance indices by passage duration, longest first
    // Pearson correlation of the tempo curves of performances 1.. (the reference's is constant); [n−1, n−1];
    // NaN-free: a constant curve correlates 0 with the others and 1 with itself.
    std::vector<std::vector<double>> tempo_correlation;
};

// Aligns every performance to performances[0]. Errors: Error(usage) for fewer than two performances or
// bad params; Error(input) for a passage outside the reference, or any pair `align_audio` refuses, or an
// unreliable alignment (naming the performance and its confidence).
Comparison compare_performances(const std::vector<Performance>& performances, const CompareParams& params);

// {"schema": "mess-compare/1", "reference", "start_sec", "end_sec", "times": [...],
//  "performances": [{"name", "duration_sec", "transposition", "confidence", "mean_tempo_ratio",
//                    "passage": {"start", "end", "duration"}, "tempo_ratio": [...], "bpm": [...] (with a
//                    reference BPM), "loudness_db": [...]}],
//  "ranking": [{"name", "passage_duration"}] (longest first),
//  "tempo_correlation": {"names": [...], "matrix": [[...]]}}
nlohmann::json comparison_to_json(const Comparison& comparison);

}  // namespace mess
