// mess/probe.hpp — layer discovery: which hidden layer linearly encodes which musical aspect, and the
// user-facing aspects resolved to layers.
//
//   mess::ProbeData data = mess::load_probe_data(dataset, data_root, mess::ProbeLevel::track);
//   mess::DiscoveryParams p;                         // alpha 1, 5 folds, seed 42, best layer + weighted sum
//   nlohmann::json results = mess::discover_layers(data, p);
//   mess::write_file_atomic("layer_discovery_results.json", results.dump(2));
//   for (const auto& a : mess::resolve_aspects(results, {})) ...;   // aspect → layer or layer weights
//
// A probe is scikit-learn's Pipeline([StandardScaler(), Ridge(alpha)]) evaluated with cross_val_predict:
// the scaler and the ridge are fitted on each fold's training rows only (no leakage), and the metrics are
// computed once on the pooled out-of-fold predictions. Everything is computed in double precision and
// matches scikit-learn 1.2 on float64 data to 1e-6 (tests/probe/sklearn_parity.py checks it).
//
// Results JSON (docs/ARCHITECTURE.md contract, extended):
//   "0".."L-1"     → target → scalar {r2_score, correlation, rmse, n_valid, coverage}
//                              curve  {r2_mean, r2_pc1, rmse_mean, n_valid, coverage}
//                    undersampled targets (fewer valid rows than folds) carry "undersampled": true and
//                    no scores, instead of numbers that look real.
//                    Every scored result also carries (additive) the fold scores and the confidence band:
//                    r2_folds [folds] (R² of each fold's test rows; r2_mean per fold for curves), r2_fold_mean,
//                    r2_fold_std (population spread over folds), r2_band [low, high] (below) and n_tracks.
//   "weighted_sum" → target → {r2_score | r2_mean, layer_weights [L], correlation, rmse, r2_gain_over_best_single,
//                              n_valid, coverage, selection: {temperature, base}}; the R² is nested-cross-validated
//                              (weights chosen inside each outer training fold), so it is not optimistic.
//   "control"      → target → {layer, r2_mean, r2_max, permutations}: the same probe on permuted targets at the
//                              target's best layer — the R² chance gives.
//   "skipped_targets" → target → reason (constant, no valid rows, inconsistent width)
//   "run"          → {level, alpha, folds, seed, mode, dataset, n_rows, n_tracks, layers, dim, targets,
//                     band: {method: "bootstrap_tracks_percentile", level, resamples, seed}}
// Metric names are "<category>/<field>" as in the target files.
//
// Errors: Error(usage) for invalid parameters; Error(input) naming the file or track for inconsistent features.
// Thread safety: reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/aspects.hpp"
#include "mess/catalog.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Cross-validation primitives
// ---------------------------------------------------------------------------------------------

// A row-major matrix of doubles, [rows, cols].
struct ProbeMatrix {
    std::size_t rows = 0, cols = 0;
    std::vector<double> values;
    ProbeMatrix() = default;
    ProbeMatrix(std::size_t r, std::size_t c) : rows(r), cols(c), values(r * c, 0.0) {}
    double& at(std::size_t r, std::size_t c) { return values[r * cols + c]; }
    double at(std::size_t r, std::size_t c) const { return values[r * cols + c]; }
};

// The test rows of each fold, sorted (every row in exactly one fold).
using Folds = std::vector<std::vector<std::size_t>>;

// scikit-learn's KFold(n_splits=folds, shuffle=True, random_state=seed): rows permuted by NumPy's legacy
// MT19937 RandomState(seed).shuffle, then cut into folds of n/folds rows (the first n % folds get one more).
// Errors: Error(usage) unless 2 ≤ folds ≤ n.
Folds shuffled_kfold(std::size_t n, int folds, std::uint32_t seed);

// Group k-fold: no group is split across folds. Groups are taken largest first (ties by name) and each goes
// to the fold with the fewest rows so far (ties: lowest index). Errors: Error(usage) unless
// 2 ≤ folds ≤ number of distinct groups.
Folds group_kfold(const std::vector<std::string>& groups, int folds);

// Out-of-fold predictions [n, m] of StandardScaler + Ridge(alpha, fit_intercept) fitted on each fold's
// training rows: X [n, d] features, Y [n, m] outputs (m ≥ 1, fitted jointly like scikit-learn's
// multi-output Ridge). The scaler uses the population standard deviation and leaves constant features
// unscaled, as scikit-learn does. Errors: Error(usage) for mismatched shapes, alpha ≤ 0 or bad folds.
ProbeMatrix cross_val_predict_ridge(const ProbeMatrix& X, const ProbeMatrix& Y, const Folds& folds, double alpha);

struct ScalarScores {
    double r2 = 0, correlation = 0, rmse = 0;
};
// Pooled R² (scikit-learn's r2_score: 1 if truth and prediction are equal constants, 0 for constant truth
// otherwise), Pearson correlation (0 when either side is constant) and RMSE. Sizes must match.
ScalarScores score_scalar(std::span<const double> truth, std::span<const double> predicted);

struct CurveScores {
    double r2_mean = 0;   // mean over output columns of the per-column R² of the pooled predictions
    double r2_pc1 = 0;    // R² on the first principal component (fitted on each training fold)
    double rmse_mean = 0; // RMSE over all n·m entries
};
// The curve probe: multi-output ridge for r2_mean/rmse_mean; for r2_pc1, per fold, Y is centred on the
// training rows, projected on the first right singular vector of the centred training rows (sign: its
// largest-magnitude component positive) and a scalar ridge predicts the projection.
CurveScores probe_curve(const ProbeMatrix& X, const ProbeMatrix& Y, const Folds& folds, double alpha);

// ---------------------------------------------------------------------------------------------
// Confidence: fold scores, a band for R² and the label
// ---------------------------------------------------------------------------------------------
//
// The band is a percentile bootstrap over GROUPS (tracks; at track level every row is its own track) of the
// pooled out-of-fold predictions: each resample draws G groups with replacement (group index = the next
// std::mt19937(seed) output modulo G, groups numbered in sorted name order), takes all their rows, and
// scores them like the probe (pooled R², or the mean per-column R² for curves); the band is NumPy's linear
// percentile of the scores at (1 − level)/2 and (1 + level)/2. Why this and not an analytic interval:
// the probe's R² is computed on out-of-fold predictions of a regularised, standardised model, whose
// sampling distribution has no closed form (the Fisher z interval assumes an in-sample OLS fit), and
// window-level rows of one track are not independent — resampling whole tracks honours both. Refitting
// inside each resample would cost `resamples` times the cross-validation; resampling the predictions
// measures how much the score depends on which tracks were probed, and is cheap. The bootstrap cannot see
// beyond the tracks it has, so a handful of near-identical tracks can still give a tight band: the label
// also requires a minimum number of tracks (kMinTracksHigh / kMinTracksMedium).
// tests/probe/band_golden.py computes the golden values of tests/probe/test_probe.cpp independently.
struct BandParams {
    int resamples = 200;      // ≥ 1 (0 in DiscoveryParams disables the band)
    double level = 0.95;      // in (0, 1)
    std::uint32_t seed = 42;
};
struct R2Band {
    double low = std::numeric_limits<double>::quiet_NaN(), high = std::numeric_limits<double>::quiet_NaN();
};
// truth/predicted [n, m]; groups: one name per row, or empty (every row its own group).
// Errors: Error(usage) for mismatched shapes, resamples < 1 or a level outside (0, 1).
R2Band bootstrap_r2_band(const ProbeMatrix& truth, const ProbeMatrix& predicted, const std::vector<std::string>& groups,
                         const BandParams& params);
void check_band_params(const BandParams& params);  // Error(usage) for resamples < 0 or a level outside (0, 1)
// R² (mean per-column R²) of each fold's test rows. Errors: Error(usage) for mismatched shapes or bad folds.
std::vector<double> fold_r2(const ProbeMatrix& truth, const ProbeMatrix& predicted, const Folds& folds);

// "high" needs the band's lower bound > 0.8 AND at least kMinTracksHigh tracks; "medium" a lower bound
// > 0.5 and at least kMinTracksMedium tracks; everything else (NaN bound included) is "low". So a probe on
// 8 tracks is never more than "low", whatever its R².
inline constexpr std::int64_t kMinTracksHigh = 30, kMinTracksMedium = 10;
const char* confidence_label(double r2_low, std::int64_t n_tracks);

// ---------------------------------------------------------------------------------------------
// Layer discovery
// ---------------------------------------------------------------------------------------------

enum class ProbeLevel { track, window };
enum class ProbeMode { best_layer, weighted_sum, both };
ProbeLevel parse_probe_level(const std::string& text);  // "track" | "window"; Errors: Error(usage)
ProbeMode parse_probe_mode(const std::string& text);    // "best_layer" | "weighted_sum" | "both"
const char* to_string(ProbeLevel level);
const char* to_string(ProbeMode mode);

struct ProbeTarget {
    std::string name;          // "<category>/<field>"
    std::size_t width = 1;     // 1 for scalars, 60 for curves, ...
    std::vector<double> values;  // [rows, width]; a row with any NaN is missing for this target
};

// One probing problem: rows are tracks (track level) or windows (window level).
struct ProbeData {
    std::string dataset;
    ProbeLevel level = ProbeLevel::track;
    std::vector<std::string> row_ids;   // track ids, or clip ids at window level
    std::vector<std::string> groups;    // the track of each row (window level: folds never split a track)
    std::size_t layers = 0, dim = 0;
    std::vector<float> features;        // [rows, layers, dim]
    std::vector<ProbeTarget> targets;
    std::map<std::string, std::string> skipped_tracks;  // track → why it is not in the rows
    std::size_t rows() const { return row_ids.size(); }
};

// Rows from a dataset's feature store and proxy targets under `data_root`:
//   track level:  aggregated/<track>.npy [L, D] (or the mean of segments/<track>.npy) and every non-window
//                 array of its target file, Dataset::targets_path(track) = proxy_targets/<dataset>/<track>.targets.npz
//                 (shape [1] scalars, [k] curves; a file of the old flat layout proxy_targets/<track>.targets.npz
//                 is never read, its track is skipped with a reason that names it);
//   window level: segments/<track>.npy [S, L, D] and the window/<field> arrays of length S.
// Rows are the sorted tracks that have both; tracks lacking one, or whose window counts disagree, are
// listed in skipped_tracks. Errors: Error(input) when no track has both, or feature shapes disagree.
ProbeData load_probe_data(const Dataset& dataset, ProbeLevel level);

struct DiscoveryParams {
    double alpha = 1.0;             // ridge penalty, > 0
    int folds = 5;                  // ≥ 2
    std::uint32_t seed = 42;        // shuffled k-fold (track level) and permutation controls
    ProbeMode mode = ProbeMode::both;
    int control_permutations = 5;   // 0 disables the shuffled-target control
    std::vector<double> temperatures{0.1, 0.25, 0.5, 1.0, 2.0, 4.0};  // weighted-sum softmax grid
    int bootstrap = 200;            // band resamples (seeded by `seed`); 0 = no band
    double band_level = 0.95;
    // Called after each unit of work (a target's layer sweep, weighted sum or control) with done/total.
    std::function<void(std::int64_t done, std::int64_t total)> on_progress;
};

// Probes every target on every layer (and the weighted sum), as described at the top of this file.
// Errors: Error(usage) for invalid params; Error(input) for data whose shapes disagree.
nlohmann::json discover_layers(const ProbeData& data, const DiscoveryParams& params);

// The score probing ranks by: r2_score for scalars, r2_mean for curves; NaN when absent or undersampled.
double probe_score(const nlohmann::json& metrics);

// Where results live by default: <data_root>/probing/<dataset>/layer_discovery_results[_window].json.
std::filesystem::path default_results_path(const std::filesystem::path& data_root, const std::string& dataset,
                                           ProbeLevel level);

// ---------------------------------------------------------------------------------------------
// Aspects: user-facing names → targets → layers
// ---------------------------------------------------------------------------------------------

struct Aspect {
    std::string name, description;
    std::vector<std::string> targets;  // "<category>/<field>"; window-level results match "window/<field>"
};
// brightness, texture, warmth, tempo, rhythmic_energy, dynamics, harmonic_richness, articulation, phrasing,
// tension, dynamic_arc, rhythmic_flow, brightness_trajectory, structure, micro_articulation,
// performance_expression.
const std::vector<Aspect>& aspect_registry();

enum class AspectMode { automatic, best_layer, weighted_sum };
AspectMode parse_aspect_mode(const std::string& text);  // "auto" | "best_layer" | "weighted_sum"
const char* to_string(AspectMode mode);                 // the same names

struct AspectParams {
    double min_r2 = 0.5;       // aspects below are not validated
    AspectMode mode = AspectMode::automatic;
    double gain = 0.02;        // auto: the weighted sum must beat the best single layer by more than this
};

struct ResolvedAspect {
    std::string name, description, target;
    AspectMode mode = AspectMode::best_layer;  // best_layer | weighted_sum
    double r2 = 0;                    // the target's probe score (r2_score or r2_mean)
    R2Band band;                      // the score's bootstrap band (NaN for results without one)
    double r2_fold_std = std::numeric_limits<double>::quiet_NaN();
    std::int64_t n_tracks = 0;        // tracks behind the score (0 when the results do not say)
    std::string confidence;           // confidence_label(band.low, n_tracks)
    int layer = -1;                   // best_layer
    std::vector<double> layer_weights;  // weighted_sum (sums to 1)
    double r2_gain = 0;               // weighted sum over the best single layer
    std::int64_t n_valid = 0;
    double coverage = 0;
    // Layer weights for fusion: one-hot for best_layer, the dense weights otherwise; size `layers`.
    std::vector<double> weights(std::size_t layers) const;
    nlohmann::json to_json() const;
};

// Each registered aspect resolved through its best target (best layer and/or weighted sum by `mode`);
// only aspects with R² ≥ min_r2 are returned, in registry order. Curve targets resolve too.
// Errors: Error(input) for results without any layer section.
std::vector<ResolvedAspect> resolve_aspects(const nlohmann::json& results, const AspectParams& params);
// Reads the results file. Errors: Error(input) naming a missing or malformed file.
nlohmann::json read_discovery_results(const std::filesystem::path& path);


// ---------------------------------------------------------------------------------------------
// Separability: does aspect A's subspace predict aspect B's target?
// ---------------------------------------------------------------------------------------------
//
// For each ordered pair (A, B) of resolved aspects: inside each training fold, A's subspace is fitted — the
// ridge probe of A's target on A's representation (its layer, or its fused layer weights), and the top
// `directions` left singular vectors of its coefficients in standardised feature space (one direction for
// a scalar target) — then the rows are projected on it and a ridge from those coordinates predicts B's
// target; the score is the pooled out-of-fold R² (mean per-column R² for curves) on the rows where both
// targets are valid. The diagonal is A predicting its own target through its subspace. A high r2[A][B]
// with A ≠ B means B's target is readable from A's directions: the aspects are not separable.
struct SeparabilityParams {
    double alpha = 1.0;        // > 0
    int folds = 5;             // ≥ 2
    std::uint32_t seed = 42;   // shuffled k-fold at track level (window level: group k-fold by track)
    int directions = 4;        // ≥ 1: at most this many directions per subspace
};
struct SeparabilityReport {
    std::vector<std::string> aspects, targets;    // row/column order; targets[i] is aspects[i]'s target
    std::vector<std::vector<double>> r2;          // [from A][to B]; NaN when fewer valid rows than folds
    std::vector<std::vector<std::int64_t>> rows;  // rows both targets cover
    nlohmann::json to_json() const;               // {aspects, targets, r2 (null for NaN), rows, params}
    SeparabilityParams params;
};
// Errors: Error(usage) for invalid params, fewer than 1 aspect, an aspect whose target is not in `data` or
// whose layer weights do not match the data's layers; Error(input) for data whose shapes disagree.
SeparabilityReport separability(const ProbeData& data, const std::vector<ResolvedAspect>& aspects, const SeparabilityParams& params);

// ---------------------------------------------------------------------------------------------
// Aspect subspaces from proxy targets (where no factor corpus exists)
// ---------------------------------------------------------------------------------------------
//
// fit_proxy_aspect: standardised multi-output ridge from window embeddings (ProbeData at window level; the
// chosen layers concatenated, each input column standardised as StandardScaler does) to the named per-window
// targets (window_target_names(), "<category>/<field>", e.g. brightness ← timbre/spectral_centroid,
// timbre/spectral_rolloff), each target standardised to mean 0, variance 1 so that none dominates. The
// coefficients C [Din, m] span the aspect's subspace; the model (mess/aspects.hpp, rung linear) is
//   mean, scale   the scaler of the inputs (scale 1 for a constant input, as StandardScaler)
//   weights W     [k, Din]: the orthonormal left singular vectors of C (k = its numerical rank ≤ m), each
//                 signed so that its largest-magnitude entry is positive
//   direction     W · Σ_j C[:, j], normalised: "more" of the aspect = larger targets (brighter for
//                 brightness); predict() of a normalised y is then the projection's cosine with it
//   info          {"method": "proxy_targets", "targets", "alpha", "cv_r2" {target: R²}, "windows", "tracks"}
// cv_r2: per target, the pooled out-of-fold R² of the target read from the subspace, the subspace and the
// reader (a ridge on the k coordinates) both fitted on the training folds only (group k-fold by track, at
// most `folds` folds).
struct ProxyAspectParams {
    double alpha = 1.0;  // > 0
    int folds = 5;       // ≥ 2 (fewer when there are fewer tracks, never below 2)
};
struct ProxyAspectFit {
    AspectModel model;
    std::vector<std::string> targets;  // as given
    std::vector<double> cv_r2;         // per target, as above
    std::int64_t windows = 0, tracks = 0;
};
// Errors: Error(usage) for a target outside window_target_names() (listing them), a target named twice,
// a target constant over the valid windows, a layer out of range or bad params; Error(input) when the data
// lacks a target (`mess targets` not run), has fewer valid windows than folds or fewer than 2 tracks.
ProxyAspectFit fit_proxy_aspect(const ProbeData& data, const std::vector<int>& layers, const std::string& aspect,
                                const std::vector<std::string>& targets, const ProxyAspectParams& params);
// "brightness=timbre/spectral_centroid,timbre/spectral_rolloff" → {"brightness", {targets}}.
// Errors: Error(usage) for a missing '=', an empty name or an empty target list.
std::pair<std::string, std::vector<std::string>> parse_proxy_aspect_spec(const std::string& text);

struct ProxyAspectEval {
    std::vector<std::string> targets;  // the model's (info "targets")
    std::vector<double> spearman;      // per target: rank correlation of predict(normalised y) with it
    std::vector<double> r2;            // per target: out-of-fold R² of a ridge from the k coordinates W z
    std::int64_t windows = 0, tracks = 0;
    nlohmann::json to_json() const;
};
// A proxy-target aspect model on held-out windows (another corpus): how well its projection orders them by
// each target, and how much of each target its subspace holds. Errors as fit_proxy_aspect, and Error(usage)
// for a model without info "targets" or a direction, or whose in_dim is not the data's.
ProxyAspectEval evaluate_proxy_aspect(const AspectModel& model, const ProbeData& data, const std::vector<int>& layers,
                                      const ProxyAspectParams& params);

// Layer weights for a weighted aspect query {aspect: weight ≥ 0}: Σ weight × R² × the aspect's layer weights,
// normalised to sum 1 (R² scaling off: Σ weight × layer weights). `aspects` are resolved aspects; those below
// min_r2 are not available. Errors: Error(usage) for unknown or unvalidated aspects (listing the available
// ones), negative weights or a zero total.
std::vector<double> aspect_layer_weights(const std::vector<ResolvedAspect>& aspects, const std::map<std::string, double>& request,
                                         std::size_t layers, double min_r2 = 0.5, bool scale_by_r2 = true);
// "dynamics=0.7,articulation=0.3", "dynamics:0.7,articulation:0.3" or "dynamics" (weight 1).
// Errors: Error(usage) naming the bad item, and for an aspect named twice.
std::map<std::string, double> parse_aspect_request(const std::string& text);
// ResolvedAspect from its to_json() form (as stored in index manifests).
ResolvedAspect resolved_aspect_from_json(const nlohmann::json& j);

}  // namespace mess
