// mess/eval.hpp — retrieval evaluation (metrics, reports) and labelled benchmark corpora rendered from MIDI.
//
//   mess::CorpusParams cp;  cp.seed = 7;                               // variants per piece, SoundFont, ...
//   mess::CorpusReport c = mess::render_corpus(midi_files, "corpus", cp);  // audio/, midi/, labels.json
//   mess::Labels labels = mess::read_labels("corpus/labels.json");
//   mess::EvalParams ep;  ep.ks = {1, 5, 10};
//   nlohmann::json report = mess::evaluate(searcher, labels, ep);      // metrics per protocol (mess::Searcher)
//   std::string table = mess::format_report(report);
//
// Labels file (labels.json, schema "mess-corpus-labels/1"):
//   {"schema": "mess-corpus-labels/1", "seed": 7, "soundfont": "FluidR3_GM.sf2", "sample_rate": 22050,
//    "items": [{"id": "greensleeves__v02",             track id (the audio file's stem)
//               "file": "audio/greensleeves__v02.wav", relative to the labels file
//               "midi": "midi/greensleeves__v02.mid",  the rendered (transformed) MIDI
//               "source_midi": "06-Greensleeves.mid", "licence": "CC-BY (PianoBooster)",
//               "work_id": "greensleeves",               same work = same source piece
//               "recording_id": "greensleeves__v02",     one rendering = one recording
//               "transform": {"kind": "transpose", "tempo_scale": 1, "rubato_depth": 0, "rubato_period_sec": 0,
//                             "transpose": 3, "velocity_scale": 1, "velocity_compression": 1,
//                             "swell_depth": 0, "swell_period_sec": 0, "note_length_scale": 1,
//                             "pedal": "source" | "off" | "on", "program": -1 (source) | 0..127},
//               "aspects": {"tempo": "slow|medium|fast", "dynamics": "soft|medium|loud",
//                           "articulation": "staccato|normal|legato", "timbre": "<GM family>",
//                           "harmony": "<key offset>"},
//               "time_map": [[source_sec, rendered_sec], ...],   every 0.5 s of the source
//               "duration_sec": 61.2}]}
//   Only id and work_id are required to evaluate; recording_id defaults to id, aspects to none. Any labels
//   file with these fields works (not only rendered corpora).
//
// Relevance: for a query q and a result r (never q itself): same work (work_id equal, recording differs),
// same recording (recording_id equal, a different passage of it), or for an aspect A the result's
// aspects[A] equal to the query's ("aspect faithfulness": the share of the top K that match).
// Metrics per query, averaged over queries: Recall@K (relevant in the top K / all relevant),
// Precision@K, reciprocal rank of the first relevant result, nDCG@K (binary gains, log2 discounts, ideal
// from the number of relevant results), average precision over the full ranking (MAP), and the rank of
// the first relevant result (mean; queries without relevant results are left out of every mean and counted).
// Protocols: track (track index: track → tracks), passage (clip index: passage → passages of other
// tracks), passage_to_track (clip index: passage → tracks, ranked by their best passage).
// Errors: Error(input) naming the file and field for a malformed labels file; Error(usage) for bad params.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mess/align.hpp"
#include "mess/structure.hpp"
#include "mess/search.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Metrics of one ranked list (relevance flags in rank order) — 0-based ranks, binary relevance
// ---------------------------------------------------------------------------------------------

// `relevant` flags of the ranked results (the whole ranking or its head); `total_relevant` = how many
// relevant items exist in all. K larger than the list counts the missing ranks as not relevant.
double recall_at_k(const std::vector<bool>& relevant, std::int64_t total_relevant, int k);
double precision_at_k(const std::vector<bool>& relevant, int k);
double reciprocal_rank(const std::vector<bool>& relevant);   // 0 when none is relevant
double ndcg_at_k(const std::vector<bool>& relevant, std::int64_t total_relevant, int k);
double average_precision(const std::vector<bool>& relevant, std::int64_t total_relevant);
// 1-based rank of the first relevant result, or nullopt.
std::optional<std::int64_t> first_relevant_rank(const std::vector<bool>& relevant);

// ---------------------------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------------------------

struct LabelItem {
    std::string id, file, midi, source_midi, work_id, recording_id;
    std::map<std::string, std::string> aspects;
    nlohmann::json transform;                             // as written (kept in reports)
    std::vector<std::pair<double, double>> time_map;      // source → rendered seconds
    double duration_sec = 0;
    std::string variant_kind() const;  // transform.kind ("original", "tempo", "combined", ...); "" when absent
};
struct Labels {
    std::vector<LabelItem> items;
    nlohmann::json header;  // everything but "items"
    const LabelItem* find(const std::string& id) const;
    std::map<std::string, std::size_t> by_id;
};
Labels read_labels(const std::filesystem::path& path);
Labels parse_labels(const nlohmann::json& j, const std::string& name);

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

struct EvalParams {
    std::vector<int> ks{1, 5, 10};       // cut-offs (each ≥ 1)
    std::int64_t max_queries = 0;        // 0 = every labelled row; else a seeded sample of this many
    std::uint64_t seed = 0;              // query sampling
    std::vector<std::string> aspects;    // aspects to measure faithfulness for (labels' aspects keys)
    int nprobe = 0, ef_search = 0;       // approximate-index settings (0: the index's)
    bool exact_recall = true;            // also measure the approximate index's recall@K against exact scan
    bool per_query = false;              // include every query's ranks in the report
    std::vector<double> layer_weights;   // aspect-fused search (empty: the index's vectors)
    // Rank in the index's learned aspect spaces, as `mess search --aspects` does (e.g. {"same_work", 1}: the
    // same-work geometry of mess train same-work); every name must have a learned space. Empty: not used.
    std::map<std::string, double> learned_aspects;
    // Clip index: also rank tracks from passages in two stages (Searcher's rerank: candidates from every
    // window's passage hits, each scored by a reduction of the passage similarity matrix), one query per
    // labelled track: protocol "track_rerank". Empty: not run.
    std::optional<RerankParams> rerank;
    int passage_context = 0;             // passage protocols: SearchRequest::context (0: each window alone)
    std::function<void(std::int64_t, std::int64_t)> on_progress;  // (queries done, total)
};

// Runs every protocol the index supports (track index: "track"; clip index: "passage" and
// "passage_to_track", and "track_rerank" with EvalParams::rerank) with the labelled rows as queries (rows
// missing from the labels are kept as results but not asked, and counted in the report). Deterministic for the same inputs and seed.
// Report: {"schema": "mess-eval/1", "config": {...}, "dataset": {...}, "protocols": {name: {"queries",
// "queries_without_relevant", "same_work": {"recall@K", "precision@K", "ndcg@K", "mrr", "map",
// "mean_first_rank"}, "same_recording": {...} (passage only), "aspects": {A: {"faithfulness@K"}},
// "variants" (track protocols, labels with transform kinds: `mess corpus render`): {kind: {"queries", "map"
// (of that kind's queries), "mean_rank_from_reference", "references" (the rank, 1 = nearest, of that kind's
// rendering among the results when its work's as-written rendering, kind "original", is the query; a
// rendering the search did not return ranks last, counted in "not_returned")}},
// "approx_recall@K" (approximate indexes), "latency_ms": {"p50", "p90", "p99", "mean"}}}}.
// Every query goes through `searcher` (the one search service), so what is measured is what users get.
nlohmann::json evaluate(const Searcher& searcher, const Labels& labels, const EvalParams& params);

// Readable table of one report; and two reports side by side (metric, A, B, B − A).
std::string format_report(const nlohmann::json& report);
std::string format_comparison(const nlohmann::json& a, const nlohmann::json& b, const std::string& name_a,
                              const std::string& name_b);

// ---------------------------------------------------------------------------------------------
// Alignment accuracy (labels with time maps)
// ---------------------------------------------------------------------------------------------

struct AlignEvalParams {
    AlignParams align;                                // as `mess align` uses them
    std::vector<double> thresholds_ms{50, 100, 200, 500};
    std::string reference_kind = "original";          // transform kind of each work's reference rendering
    bool unrelated_pairs = true;                      // also align each reference with another work's reference
    std::function<void(std::int64_t, std::int64_t)> on_progress;  // (pairs done, total)
};

// For every work, aligns its reference rendering (transform.kind == reference_kind, else its first item)
// with each other rendering of the work that has a time map, and compares the aligned time of every
// time-map point (source second s: A at ref.map(s) → B at item.map(s), points inside both recordings)
// with the truth. Audio files are resolved relative to `labels_dir`.
// Report: {"schema": "mess-eval-align/1", "config": {...}, "pairs": N,
//  "overall" and "variants": {kind: {"pairs", "points", "mean_error_ms", "median_error_ms",
//  "beyond_ms": {"50": share, ...}, "transposition_correct": share, "mean_confidence", "seconds_per_pair"}},
//  "unrelated": {"pairs", "mean_confidence", "reliable": share, "max_cost_ratio"...},
//  "failures": [{"a", "b", "reason"}]}. A pair whose audio cannot be read is reported in failures.
// Errors: Error(input) when no work has a reference and another rendering with time maps.
nlohmann::json evaluate_alignment(const Labels& labels, const std::filesystem::path& labels_dir, const AlignEvalParams& params);
std::string format_alignment_report(const nlohmann::json& report);

// ---------------------------------------------------------------------------------------------
// Benchmark corpora rendered from MIDI (libfluidsynth + a General MIDI SoundFont)
// ---------------------------------------------------------------------------------------------

struct CorpusParams {
    int variants = 6;                // renderings per piece (1..16): 0 is the source as written, then
                                     // tempo+rubato, transposition, dynamics, articulation+pedal, timbre,
                                     // then combinations of all (6); 7 is the source played by another
                                     // piano model (`piano_soundfont`; a combination when there is none);
                                     // 8.. more combinations; parameters drawn from `seed`
    std::uint64_t seed = 0;
    double max_seconds = 60;         // source seconds rendered per piece (0 < s ≤ 86400); pieces end at their own end
    int sample_rate = 22050;         // Hz of the written WAV files (mono, 16-bit)
    std::filesystem::path soundfont; // default: the first of default_soundfonts() that exists
    std::filesystem::path piano_soundfont;  // variant 7's piano; default: Debian's TimGM6mb (timgm6mb-soundfont)
                                            // when installed and not the main SoundFont
    std::string licence;             // recorded per item (e.g. the source collection's licence)
    std::function<void(std::int64_t, std::int64_t)> on_progress;  // (renderings done, total)
};

struct CorpusReport {
    std::int64_t pieces = 0, renderings = 0;
    std::vector<std::pair<std::string, std::string>> skipped;  // (source file, why)
    std::filesystem::path labels_path;
};

// Debian's fluid-soundfont-gm and alternatives, in order of preference.
std::vector<std::filesystem::path> default_soundfonts();

// Renders each source MIDI file (work id = its stem, lower-cased, non-alphanumerics → '-') into `out_dir`:
// audio/<work>__vNN.wav, midi/<work>__vNN.mid, labels.json (written last, atomically), metadata.csv
// (track_id, recording_id, work_id + transform columns; usable as metadata/<dataset>_metadata.csv).
// A bad source file is reported in `skipped`, the rest go on. Deterministic for the same sources, seed
// and SoundFont. Errors: Error(usage) for bad params or no usable SoundFont; Error(input) when no source
// could be rendered.
CorpusReport render_corpus(const std::vector<std::filesystem::path>& midi_files, const std::filesystem::path& out_dir,
                           const CorpusParams& params);

// Factor-controlled corpora (`mess corpus render --factors`): every piece rendered on a grid where ONE factor changes at a time from a
// neutral base; values are ABSOLUTE, the same for every piece (its own tempo and level replaced: one value = one tempo, level, articulation):
//   tempo         100, 125, 200, 250 "beats" per minute (base 160): durations scaled so the median interval between the piece's onset
//                 events is 60/bpm s (an event: a chain of onsets each < 50 ms after the one before, spanning < 0.2 s: a chord, a roll, a strum)
//   dynamics      soft (mean velocity 40), loud (110), crescendo (hairpins 30 → 115, starting again every 5 rendered seconds),
//                 diminuendo (115 → 30); base medium (72); each velocity × level / the piece's mean (accents kept; a gain keeps the
//                 mean where notes stop at 127; where the piece's loud voices would pass 127 at the setting's loudest level
//                 (95th percentile of velocity / mean × level), those ratios are compressed (raised to a power < 1, "velocity_balance")
//                 just enough, so that a melody far above its accompaniment still follows a hairpin). Levels are real and comparable across pieces: no peak normalisation; every rendering
//                 of a piece gets the one gain that puts its base rendering at −26 dBFS RMS (frames within 40 dB of the loudest)
//   articulation  staccato (note length 0.3 × the time to its channel's next onset event), legato (1.25 ×, sustain pedal held in 2-s spans); base normal (0.85 ×)
//   timbre        harpsichord (6), organ (19), guitar (24), strings (48), flute (73); base piano (0)
//   transpose     -5, -2, +3, +6 semitones; base +0.  A piece with fewer than 2 distinct onsets has no tempo: skipped and reported.
// Files: audio/<work>__base.wav and audio/<work>__<factor>-<value>.wav (+ midi/, metadata.csv with factor and
// value columns), labels.json (schema mess-corpus-labels/1, "kind": "factors"); each item adds to the
// corpus fields "factor" (the factor varied, or "base"), "value" (its value, or "base"), "factors" (every
// factor's value in this rendering, also copied to "aspects"), "absolute" (tempo_bpm, median_ioi_sec, mean_velocity_start/_end,
// hairpin_sec (0: a steady level), base_level_dbfs, note_length_over_ioi, pedal), "source_median_ioi_sec", "source_mean_velocity"
// (the piece's own), "level_gain_db" (the piece's gain), "velocity_balance" (1: the piece's own balance of voices), "time_map", "peak" and "clipped".
// Deterministic for the same sources and SoundFont (no randomness). Errors as render_corpus.
struct FactorCorpusParams {
    std::vector<std::string> factors = {"tempo", "dynamics", "articulation", "timbre", "transpose"};
    double max_seconds = 30;         // source seconds rendered per piece (0 < s ≤ 3600)
    int sample_rate = 22050;         // Hz of the WAV files (mono, 16-bit)
    std::filesystem::path soundfont; // default: the first of default_soundfonts() that exists
    std::string licence;
    std::function<void(std::int64_t, std::int64_t)> on_progress;  // (renderings done, total)
};

// The renderings of one piece, in order: "base", then "<factor>-<value>" for each factor asked for.
std::vector<std::string> factor_grid_ids(const std::vector<std::string>& factors);

CorpusReport render_factor_corpus(const std::vector<std::filesystem::path>& midi_files, const std::filesystem::path& out_dir,
                                  const FactorCorpusParams& params);

// Structure corpora (`mess corpus render --structure`): from the source pieces, `items` of each kind —
//   medley-NN: 3–4 excerpts of different pieces (12–20 s each, transposed −3..+3, tempo ×0.9–1.1) played
//     back to back: boundaries at each excerpt's first note, sections A, B, C...;
//   modulation-NN: an excerpt (12–20 s) followed by itself transposed by −5..+6 semitones (never 0): a
//     modulation at the repeat with that interval; keys: the excerpt's symbolic key (best_key of its
//     duration-weighted pitch classes — an estimate from the notes, not an annotation) and that key moved;
//   climax-NN: 24–40 s of a piece with velocities swelling linearly from 40 % to 100 % at the climax time
//     (30–75 % of the way) and back to 40 % at the end.
// labels.json: {"schema": "mess-structure-labels/1", "seed", "items": [{"id", "file", "midi", "kind",
// "duration_sec", "sources", "structure": {"kind", "boundaries" (0, ..., duration), "sections", "keys",
// "modulations", "climax": {"time"}}}]}. Deterministic for the same sources, seed and SoundFont.
// Errors: Error(usage) for bad params or no SoundFont; Error(input) for fewer than 3 usable sources.
struct StructureCorpusParams {
    int items = 8;                   // items of each kind (1..100)
    std::uint64_t seed = 0;
    int sample_rate = 22050;         // Hz of the written WAV files
    std::filesystem::path soundfont; // default: the first of default_soundfonts() that exists
    std::string licence;
    std::function<void(std::int64_t, std::int64_t)> on_progress;  // (items done, total)
};
CorpusReport render_structure_corpus(const std::vector<std::filesystem::path>& midi_files, const std::filesystem::path& out_dir,
                                     const StructureCorpusParams& params);

// ---------------------------------------------------------------------------------------------
// Structure accuracy (labels of a structure corpus)
// ---------------------------------------------------------------------------------------------

// Boundary detection as mir_eval.segment.detection defines it: estimated and reference boundaries match
// when |ref − est| ≤ window, one-to-one (maximum bipartite matching); precision = matches/|est|, recall =
// matches/|ref|, F = 2PR/(P + R) (0 when either is 0). `trim` drops the first and last boundary of both
// lists first. Empty lists give 0.
struct DetectionScore {
    double precision = 0, recall = 0, f = 0;
};
DetectionScore boundary_detection(std::vector<double> reference, std::vector<double> estimated, double window, bool trim);

// MIREX key score (mir_eval.key.weighted_score): 1 same key, 0.5 a perfect fifth above or below in the
// same mode, 0.3 relative major/minor, 0.2 parallel (same tonic), 0 otherwise. Keys 0..23.
double mirex_key_score(int reference, int estimated);

struct StructureEvalParams {
    StructureParams structure;
    std::function<void(std::int64_t, std::int64_t)> on_progress;  // (items done, total)
};
// Analyses every item of a structure corpus's labels (audio relative to `labels_dir`) and reports
// {"schema": "mess-eval-structure/1", "items", "boundaries": {"f@0.5", "f@3", "f@0.5_untrimmed",
// "f@3_untrimmed", "precision@3", "recall@3"} (means over medley items), "keys": {"mirex", "correct"}
// (modulation items, the estimated key at each second of the reference key spans), "modulations":
// {"items", "found_within_3s", "right_interval", "false_per_minute"}, "climax": {"items",
// "within_3s", "mean_error_sec", "median_error_sec"}, "seconds_per_minute" (analysis time), "per_item": [...]}.
// Errors: Error(input) for labels that are not a structure corpus's.
nlohmann::json evaluate_structure(const std::filesystem::path& labels_path, const StructureEvalParams& params);
std::string format_structure_report(const nlohmann::json& report);

// ---------------------------------------------------------------------------------------------
// Human triplet judgements against the geometries of an index (`mess eval triplets FILE`)
// ---------------------------------------------------------------------------------------------

// A judgements file is a CSV with the header columns anchor, a, b, choice and optionally aspect (found by
// name; any other columns, e.g. listener and timing, are ignored). anchor, a and b name rows of the index:
// a clip id, a track id (track index), or "<track_id>@<seconds>" (the window starting nearest that second in
// a clip index; the track in a track index). choice is "a" or "b" (or the chosen row's own text); aspect the
// aspect the listener judged ("" = overall).
struct TripletJudgement {
    std::size_t line = 0;                  // 1-based line in the file (the header is line 1)
    std::string anchor, a, b, choice, aspect;
};
// Errors: Error(input) naming the file for a missing column or an unreadable file.
std::vector<TripletJudgement> read_triplet_judgements(const std::filesystem::path& path);

// Agreement of one geometry with the judgements of one aspect label: the share whose choice the geometry
// makes too (cos(anchor, choice) > cos(anchor, other); a tie counts ½).
struct JudgementAgreement {
    std::string geometry;                  // "index" (the index's own vectors) or "aspect:<name>" (a learned space)
    std::string aspect;                    // the judgements' aspect label ("" = every judgement)
    std::int64_t judged = 0;
    double agree = 0;
    double agreement() const { return judged > 0 ? agree / static_cast<double>(judged) : 0.0; }
};
struct TripletEvalReport {
    std::int64_t judgements = 0;           // usable judgements
    std::vector<std::string> skipped;      // "line N: why" (an id the index does not hold, a bad choice)
    std::vector<JudgementAgreement> rows;  // per geometry: every judgement, then each aspect label
    nlohmann::json to_json() const;
    std::string format() const;            // a table: geometry, aspect, judged, agreement
};
TripletEvalReport evaluate_triplet_judgements(const SearchIndex& index, const std::vector<TripletJudgement>& judgements);

}  // namespace mess
