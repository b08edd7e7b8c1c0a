// mess/targets.hpp — proxy targets: interpretable descriptors of each musical aspect, for probing.
//
//   mess::Audio a = mess::load_audio("take.flac");                  // 24 kHz mono
//   mess::TargetSet t = mess::compute_audio_targets(a, {});         // scalars, curves, per-window values
//   t.source = mess::file_stamp("take.flac");                       // what they were computed from
//   mess::write_targets(dataset.targets_path("take"), t);           // NumPy-loadable, no pickles
//
// File contract (docs/ARCHITECTURE.md): an .npz whose members are plain float32 arrays named "<category>/<field>":
//   scalars  rhythm/tempo, rhythm/tempo_refined, rhythm/onset_density, harmony/harmonic_complexity, timbre/spectral_centroid,
//            timbre/spectral_rolloff, timbre/spectral_bandwidth, timbre/zero_crossing_rate,
//            articulation/attack_slopes, articulation/attack_sharpness, dynamics/dynamic_range,
//            dynamics/dynamic_variance, dynamics/crescendo_strength, dynamics/diminuendo_strength,
//            phrasing/phrase_regularity, phrasing/num_phrases                              shape [1]
//   curves   curves/tis_tension, curves/dynamic_arc, curves/local_tempo, curves/centroid_trajectory,
//            curves/novelty: 60 frames at 2 Hz over the first 30 s (shorter audio is zero-padded to
//            30 s first, as the predecessor did: its curves end in silence values)        shape [60]
//   windows  window/start_sec, window/end_sec and window/<field> for the window-meaningful scalars
//            (timbre ×4, dynamics ×4, harmonic_complexity, attack_slopes, attack_sharpness), one value
//            per extraction window (5 s, hop 2.5 s, tail aligned to the end)                shape [S]
//   source   source/size_bytes, source/mtime_ns: int64, the audio file's FileStamp (size in bytes,
//            modification time in ns since the Unix epoch) when the targets were computed     shape [1]
//            — not targets: read_targets puts them in TargetSet::source. Files written before stamps
//            existed lack them; `mess targets` then keeps the file without comparing it with the audio.
// Where the files live belongs to the catalog: Dataset::targets_path(track) =
// <data root>/proxy_targets/<dataset>/<track>.targets.npz (mess/catalog.hpp, also for the old flat layout).
// Definitions follow the predecessor (reference/predecessor.md §2.6.2, §2.6.3, §2.6.5), with librosa 0.11's
// algorithms re-implemented in mess/dsp.hpp:
//   chroma (harmonic_complexity, phrase_regularity, tis_tension, novelty): dsp::chroma_cqt, librosa's chroma_cqt
//   (tuning estimated from the same audio: once per track at 24 kHz, once for the 30-s curve signal); a window's
//   harmonic_complexity reads the track's chroma (frames round(start/512) .. + 1 + length/512, clipped), not a
//   constant-Q analysis of the window alone: it then differs by the tuning (the track's), by up to 256 samples of
//   frame offset, and at the window's edges (the track's filters hear the neighbouring audio, the window's own
//   hear zero padding). Measured with the NumPy reference (make_cqt.py) on a 20-s chord progression: ≤ 0.36 %
//   (7 windows); on 12 s of rendered chords in C++ (test_targets) < 1 %; on pure sine chords the window's own
//   value is up to 4 % higher, its cut edges spreading energy over all pitch classes.
//   the only difference is the 2:1 resampler between octaves (a half-band FIR instead of soxr, both flat far
//   beyond the band the filters read).
//   rhythm/tempo: what librosa.beat.beat_track returns — dsp::beat_track_tempo (librosa.feature.tempo: 8-s
//   tempogram, log-normal prior, integer lags) on the MEDIAN-aggregated onset envelope, 0 when that envelope is
//   all zero. The predecessor's value, kept under its name although it is wrong where most mel bands never
//   rise (a band-limited recording, sustained orchestral sound): it then reads 0 BPM.
//   rhythm/tempo_refined (new, the corrected tempo): dsp::estimate_tempo on the MEAN-aggregated envelope (the
//   one onset_density uses), with the lag refined by a parabola (librosa's integer lags are 2–3 % coarse).
//   peak picking for onset_density: local maxima ≥ 0.5·mean, then scipy's find_peaks distance rule.
// Definitions re-derived from the predecessor's code where MESS had drifted: crescendo/diminuendo strength
// score the LONGEST monotone run of the smoothed RMS (|Δ| × steps, the first on ties), not the run with the
// largest score; attack_sharpness is |ΔdB| of the step AFTER each onset frame (NumPy's diff at the onset).
// Errors: Error(input) for audio not at 24 kHz or with non-finite samples. Silence and very short audio
// give defined values (0 for scalars, per-curve neutral values), never NaN.
// Cost: one STFT per analysed stretch (the track, each window, the 30-s curve signal) gives the magnitudes for the
// spectral shape and the power for the onset mel bands; the curves' MFCCs read every second frame of the curve
// signal's STFT; one constant-Q chroma per track (24 kHz) and one for the curves. bench/bench_targets prints the
// CPU time per 30-s file and its ratio to a plain STFT.
// Thread safety: reentrant.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <string>
#include <vector>

#include "mess/audio.hpp"
#include "mess/util.hpp"

namespace mess {

struct TargetSet {
    std::map<std::string, std::vector<float>> arrays;  // "<category>/<field>" → values
    std::optional<FileStamp> source;                   // the audio's stamp when computed; absent in older files
    float scalar(const std::string& name) const;       // Errors: Error(usage) for an unknown name
};

struct TargetParams {
    WindowParams windows{};      // the extraction windows (per-window values)
    bool per_window = true;
    bool curves = true;
};

// All audio targets of one recording. `audio` must be mono at 24 kHz (load_audio's default).
TargetSet compute_audio_targets(const Audio& audio, const TargetParams& params);

// The 16 scalar names and the 11 per-window field names, "<category>/<field>".
const std::vector<std::string>& scalar_target_names();
const std::vector<std::string>& window_target_names();
const std::vector<std::string>& curve_target_names();

// ---------------------------------------------------------------------------------------------
// MIDI (Standard MIDI Files, formats 0 and 1)
// ---------------------------------------------------------------------------------------------

struct MidiNote {
    double onset_sec = 0, offset_sec = 0;
    int pitch = 0, velocity = 0, channel = 0;
};
struct MidiPerformance {
    std::vector<MidiNote> notes;  // sorted by onset, then pitch
    // Sustain pedal (CC64 ≥ 64) intervals [down, up) in seconds, any channel.
    std::vector<std::pair<double, double>> pedal;
    double end_sec = 0;  // time of the last event
    std::array<int, 16> programs = filled_programs();  // first General MIDI program change per channel, -1: none
    static constexpr std::array<int, 16> filled_programs() {
        std::array<int, 16> a{};
        for (int& p : a) p = -1;
        return a;
    }
};

// A strict SMF reader: "MThd"/"MTrk" chunks with exact lengths, variable-length quantities of at most 4
// bytes, running status, meta events (tempo changes build the tempo map; end-of-track required), SysEx
// skipped by length, PPQ or SMPTE time division. Note-on with velocity 0 is a note-off; overlapping notes
// of one pitch and channel are paired first-in first-out; notes still sounding at the end are closed there.
// Errors: Error(input) naming the file and byte offset of anything malformed or truncated.
MidiPerformance read_midi(const std::filesystem::path& path);
MidiPerformance parse_midi(std::string_view bytes, const std::string& name);

// MIDI targets (reference/predecessor.md §2.6.4 and §2.6.6), members named as in the target file:
//   expression/{rubato, velocity_mean, velocity_std, velocity_range, articulation_ratio, tempo_variability,
//   onset_timing_std} (only with ≥ 10 notes), midi/articulation_hist [16], midi/velocity_std,
//   midi/ioi_std, midi/pedal_ratio, midi/perf_tempo [60] (only with ≥ 4 onsets in the first 30 s), and
//   midi/available [1] = 1. `duration_sec` is the audio's (MIDI past it is ignored; 30 s at most for the
//   midi/ curves and scalars).
void add_midi_targets(const MidiPerformance& midi, double duration_sec, TargetSet& targets);

// The MIDI file of an audio file: same folder and stem with .mid/.midi, else <dataset audio>/../midi/<stem>.mid
// (SMD's layout); empty when none exists.
std::filesystem::path find_midi_for(const std::filesystem::path& audio_path);

// Atomic compressed .npz of `targets.arrays` plus, when set, the source/ members.
// Errors: Error(input) when the file cannot be written; Error(usage) for an array named source/*.
void write_targets(const std::filesystem::path& path, const TargetSet& targets);
// Reads and validates a target file: every member decodes (a truncated or damaged file is an error, so a
// caller can tell a usable file from a corrupt one by reading it), targets are 1-D, curves 60 frames, the
// source/ members int64 [1] and both or neither.
// Errors: Error(input) naming the file (and member).
TargetSet read_targets(const std::filesystem::path& path);

// For a process that computes the targets of many files one after another (`mess targets`, bench_targets):
// keeps up to `bytes` of freed blocks on the heap for the next file. glibc serves large blocks with fresh
// mappings and returns a heap's free top to the kernel, so every file's spectrograms would cost page faults
// and zeroed pages again (about a tenth of the targets' CPU time, as system time). Process-wide, so a batch
// command's setting and not a service's; does nothing without glibc.
void keep_freed_memory_for_batches(int bytes);

}  // namespace mess
