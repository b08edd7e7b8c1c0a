// mess/structure.hpp — the structure of a recording: sections, local keys and modulations, the climax,
// cadences; and the structural roles a passage search can ask for.
//
//   mess::Audio a = mess::load_audio("take.flac");
//   mess::Structure s = mess::analyze_structure(a, {});
//   for (const auto& sec : s.sections) fmt::print("{:.1f}–{:.1f} s {}\n", sec.start, sec.end, sec.label);
//   for (const auto& m : s.modulations) fmt::print("{:.1f} s {} → {} ({:+d})\n", m.time,
//       mess::key_name(m.from), mess::key_name(m.to), m.interval);
//   nlohmann::json j = mess::structure_to_json(s);   // the one JSON form (mess structure --json, storage)
//
// Features (`structure_features`, kStructureFrameRate = 10 frames/s): the audio is resampled to 12 kHz; a
// Hann STFT (4096 samples, hop 1200, centred) is pooled into the 84 semitones C1–B7 (triangular weights in
// log frequency) and into 7 octave bands; per frame:
//   - loudness_db: 10·log10 of the frame's power, relative to the loudest frame (≤ 0; −100 for silence);
//   - chroma [frames, 12]: the semitones folded to pitch classes (C first); not normalised (loud frames weigh
//     more in key windows); frames more than 50 dB below the loudest are zero;
//   - timbre [frames, 7]: each octave band's share of the frame's compressed energy;
//   - register: the mean semitone (MIDI number) of the compressed semitone energies, 0 for silent frames;
//   - onset: the positive change of the compressed semitone energies summed over semitones.
//
// Sections. Novelty (`structure_novelty`): the cosine self-similarity of the unit semitone vectors smoothed
// over novelty_smooth_sec, within a band of ±novelty_half_sec around the diagonal, convolved with a Gaussian
// checkerboard kernel (as dsp::checkerboard_novelty, which the band version reproduces: tests/structure),
// divided by half the kernel's absolute weight (so: weighted mean similarity within the two blocks − across
// them; 0 for a constant signal, whatever its noise), clamped to 0..1. Features made otherwise than by
// structure_features (no semitones): Error(usage).
// Boundaries, in two stages. Which: the novelty peaks that are the largest within ±min_section_sec/2 and
// exceed the local median (±10 s) by peak_threshold. Where: all of them placed at once, each within
// ±place_sec of its peak (and 2 s or more after the previous one), where the frames' unit semitone vectors are
// best explained as constant per section: least Σ over sections of Σ‖x − section mean‖², solved exactly
// by dynamic programming over the candidate frames (a medley's cut is an abrupt change of the whole pitch
// set: docs/STRUCTURE.md). Boundaries closer than min_section_sec/2 to the previous one or to the end are
// dropped. The list of boundaries starts with 0 and ends with the duration (as mir_eval's intervals do).
// The same cost minimised over all frames with a penalty per boundary (no novelty) was measured and not
// kept; the Ward segmenter and the model's window embeddings were not measured (docs/STRUCTURE.md). Labels: sections are compared by their chroma sequences (each
// resampled to 32 steps, mean frame cosine, best of the 12 pitch-class rotations); a section takes the
// letter of the first earlier section with similarity ≥ repeat_similarity (with a prime when the match
// needs a rotation: A, B, A'), else the next letter.
//
// Keys: chroma summed over key_window_sec (centred, stepped every key_step_sec) is correlated with the 24
// Krumhansl–Kessler profiles; a Viterbi pass over the 24 keys and a "no key" state (score no_key_score)
// maximises Σ score − key_change_penalty per change. Key spans with a key are reported (no-key stretches are
// gaps); modulations are the changes between consecutive key spans: time = start of the new span,
// interval = tonic difference in semitones as −5..+6. Keys are numbered 0..23: tonic pitch class (C = 0)
// + 12 for minor; written "C major", "F# minor".
//
// Climax: c(t) = L(t)·(0.75 + 0.25·N(t))·(0.75 + 0.25·R(t)), where L is the loudness (dB, Gaussian-smoothed
// by climax_smooth_sec) mapped from its 10th percentile..maximum to 0..1, N a novelty of its own (as above
// but of [unit chroma, 0.5·timbre] smoothed over 4 s, kernel climax_novelty_half_sec: docs/STRUCTURE.md) and R the register
// (smoothed, mapped from min..max to 0..1); the climax time is c's maximum, its extent the contiguous run
// around it where c ≥ median + 0.75·(max − median).
//
// Cadences: candidates are onset peaks; at each, the chroma over the 1 s before is compared with the local
// key's dominant seventh chord and the chroma over the 0.8 s after with its tonic triad (harmonic arrival
// a = cos(before, V7)·cos(after, I)); lengthening g = clamp((IOI after / median IOI − 1)/2, 0, 1); release
// r = 1 when a boundary lies within 1.5 s after, else clamp((dB before − dB after)/6, 0, 1) over 1 s
// windows. strength = a·(0.5 + 0.25·g + 0.25·r); candidates with strength ≥ cadence_threshold, the
// strongest within ±2 s.
//
// Degenerate input (tests/structure): silence (every frame more than 100 dB below full scale, or digital
// zero) gives one section "A" over the whole duration, no keys, modulations or cadences and no climax
// (`climax` empty); audio shorter than 2·min_section_sec gives one section; noise gives no key spans (its
// key scores stay under no_key_score) and sections by novelty as for music; a single held note gives one
// section, the key whose tonic it is, no modulation. Empty or non-finite audio: Error(input).
//
// Roles (passage search): `role_times` lists the moments of a role — climax: the climax time; cadence: each
// cadence; boundary: each interior boundary; modulation: each modulation. `window_roles` marks the windows
// (start, end seconds) that hold a role's moment.
//
// Errors: Error(input) for empty or non-finite audio; Error(usage) for invalid parameters or role names;
// structure_from_json: Error(input) naming the missing or malformed field.
// Thread safety: all functions are reentrant.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/audio.hpp"
#include "mess/dsp.hpp"

namespace mess {

inline constexpr double kStructureFrameRate = 10.0;  // analysis frames per second
inline constexpr int kStructureSampleRate = 12000;   // Hz the audio is analysed at

struct StructureFeatures {
    dsp::Matrix semitones;           // [frames, 84], ≥ 0: log(1 + 1000·e/ē) of C1..B7 (every frame, not gated)
    dsp::Matrix chroma;              // [frames, 12], ≥ 0, not normalised (see above)
    dsp::Matrix timbre;              // [frames, 7], rows sum to 1 (0 for silent frames)
    std::vector<float> loudness_db;  // [frames], dB relative to the loudest frame (≤ 0)
    std::vector<float> register_semitone;  // [frames], MIDI number (0: silent)
    std::vector<float> onset;        // [frames], ≥ 0
    double frame_rate = kStructureFrameRate;
    double duration_sec = 0;
    bool silent = false;             // every frame below −100 dBFS
    std::int64_t frames() const { return chroma.rows; }
};

// Features of mono audio at any sample rate. Errors: Error(input) for empty or non-finite audio.
StructureFeatures structure_features(const Audio& audio);

struct StructureParams {
    double novelty_half_sec = 12.0;    // the boundaries' checkerboard kernel half-width (s, 0.5..60)
    double climax_novelty_half_sec = 10.0;  // the climax curve's novelty kernel half-width (s, 0.5..60)
    double novelty_smooth_sec = 2.0;   // unit semitone vectors averaged over this before the boundaries' self-similarity (s, > 0)
    double min_section_sec = 10.0;     // boundaries at least this far apart (s, > 0)
    double peak_threshold = 0.03;      // novelty above its local median to count as a boundary (0..1)
    double place_sec = 2.0;            // boundary placed within this of its novelty peak (s, 0..10)
    double repeat_similarity = 0.8;    // section similarity for the same letter (0..1)
    double key_window_sec = 6.0;       // chroma summed over this for the key scores (s, > 0)
    double key_step_sec = 0.5;         // key decisions every this (s, > 0)
    double key_change_penalty = 3.0;   // Viterbi cost of a key change (correlation units, ≥ 0)
    double no_key_score = 0.45;        // score of the "no key" state (−1..1)
    double climax_smooth_sec = 2.0;    // Gaussian σ of the climax curve's components (s, > 0)
    double cadence_threshold = 0.3;    // minimum cadence strength (0..1)
    void validate() const;
};

struct Section {
    double start = 0, end = 0;  // seconds
    std::string label;          // "A", "B", "A'", ...
};
struct KeySpan {
    double start = 0, end = 0;  // seconds
    int key = 0;                // 0..23 (tonic + 12·minor)
};
struct Modulation {
    double time = 0;            // seconds: the start of the new key
    int from = 0, to = 0;       // keys 0..23
    int interval = 0;           // semitones, −5..+6 (to's tonic − from's tonic)
};
struct Climax {
    double time = 0, start = 0, end = 0;  // seconds: the peak and its extent
    double strength = 0;                  // the curve's value at the peak (0..1)
};
struct Cadence {
    double time = 0;      // seconds: the arrival
    double strength = 0;  // 0..1
    int key = 0;          // the local key it resolves in
};

struct Structure {
    double duration_sec = 0;
    std::vector<double> boundaries;  // seconds: 0, interior boundaries, duration
    std::vector<Section> sections;   // one per pair of consecutive boundaries
    std::vector<KeySpan> keys;       // ascending, non-overlapping
    std::vector<Modulation> modulations;
    std::optional<Climax> climax;    // empty for silence
    std::vector<Cadence> cadences;   // ascending in time
    std::vector<float> novelty;      // [frames] at kStructureFrameRate, 0..1: the climax curve's novelty (not the boundaries')
};

Structure analyze_structure(const Audio& audio, const StructureParams& params = {});
Structure analyze_structure(const StructureFeatures& features, const StructureParams& params = {});

// The boundaries' novelty alone ([frames], 0..1; kernel half-width novelty_half_sec, or half_sec when given) and the
// boundary picking, exposed for the segmenter benchmarks.
std::vector<float> structure_novelty(const StructureFeatures& features, const StructureParams& params = {},
                                     std::optional<double> half_sec = std::nullopt);
std::vector<double> pick_boundaries(const StructureFeatures& features, std::span<const float> novelty,
                                    const StructureParams& params = {});
// Band self-similarity + checkerboard: same values as dsp::checkerboard_novelty(dsp::cosine_self_similarity(f), half)
// in O(frames·half²) time and O(frames·half) memory.
std::vector<float> band_checkerboard_novelty(const dsp::Matrix& features, int half);
// Key scores: [steps, 24] correlations with the key profiles, steps of key_step_sec.
dsp::Matrix key_scores(const StructureFeatures& features, const StructureParams& params = {});

// The key (0..23) whose Krumhansl–Kessler profile correlates best with a pitch-class distribution (C
// first; any non-negative weights, e.g. note durations); `correlation` receives that correlation.
int best_key(std::span<const double, 12> pitch_classes, double* correlation = nullptr);

// "C major", "F# minor". Errors: Error(usage) for a key outside 0..23.
std::string key_name(int key);
// Inverse of key_name (also "Db major", "c# minor"). Errors: Error(input) for anything else.
int parse_key(std::string_view name);
// to's tonic − from's tonic as −5..+6.
int key_interval(int from, int to);

// {"duration_sec", "boundaries", "sections": [{"start","end","label"}], "keys": [{"start","end","key"}],
//  "modulations": [{"time","from","to","interval"}], "climax": {"time","start","end","strength"} | null,
//  "cadences": [{"time","strength","key"}]}; keys as key_name. Novelty is not written.
nlohmann::json structure_to_json(const Structure& s);
Structure structure_from_json(const nlohmann::json& j);

// Storage (the path is FeatureStore::structure_path, owned by the features module): the JSON form written
// atomically, and read back. Errors: Error(input) naming the file when it is missing or malformed.
void write_structure_file(const std::filesystem::path& path, const Structure& s);
Structure read_structure_file(const std::filesystem::path& path);

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

enum class Role { climax, cadence, boundary, modulation };
// "climax" | "cadence" | "boundary" | "modulation". Errors: Error(usage) naming the valid roles.
Role parse_role(std::string_view name);
std::string role_name(Role role);
// The moments of a role, seconds, ascending (empty when the recording has none).
std::vector<double> role_times(const Structure& s, Role role);
// For each window [start, end) in seconds: whether a moment of the role lies inside it.
std::vector<bool> window_roles(const Structure& s, Role role, std::span<const std::array<double, 2>> windows);

}  // namespace mess
