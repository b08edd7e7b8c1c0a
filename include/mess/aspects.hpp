// mess/aspects.hpp — learned aspect geometry: per aspect (tempo, dynamics, articulation, timbre, ...), a
// small map of frozen window embeddings into a space where windows are close when they share that
// aspect's value, whatever the piece. Trained on factor-controlled corpora (`mess corpus render --factors`,
// one factor changed at a time from a neutral base), from any encoder's feature store.
//
//   mess::FactorWindows data = mess::load_factor_windows(store, "corpus/labels.json", {});  // every layer
//   mess::AspectTrainParams p;  p.rung = mess::AspectRung::linear;  p.seed = 1;
//   mess::AspectTraining t = mess::train_aspect(data, "tempo", p);    // the ladder, rung by rung
//   mess::AspectSet set{...};  set.aspects["tempo"] = t.model;  mess::save_aspect_set(set, "aspects/");
//   mess::AspectEval e = mess::evaluate_aspect(set.aspects.at("tempo"), held_out, "tempo", {});
//
// Input of every model: one window's segments row [L, D] (features.hpp), the chosen `layers` concatenated
// as the encoder gave them (no normalisation, so levels stay visible) → x of Din = |layers| · D. The ladder (each rung a superset of the one before):
//   identity     y = x
//   standardise  y = z,          z = (x − mean) / scale        (mean, scale: [Din], from the training windows)
//   diagonal     y = w ⊙ z       (w: [Din], learned)
//   linear       y = W z         (W: [k, Din], learned, rank k = out_dim)
//   mlp          y = W2 relu(W1 z + b1)   (W1: [H, Din], b1: [H], W2: [k, H]; H = hidden_dim), started from
//                the linear rung's W exactly (units W z and −W z, W2 = [I, −I]) so it begins where linear ended
// Similarity in an aspect space is the cosine of y's. Learning (AspectTrainParams::loss): soft triplet loss
//   ℓ = softplus(γ · (cos(y_a, y_n) − cos(y_a, y_p) + margin))
// or InfoNCE over the batch: for anchor a_i the candidates are its positive p_i and every positive or
// negative of the batch whose value differs from a_i's (windows sharing a_i's value are never negatives),
//   ℓ_i = −cos(y_a, y_p)/τ + log Σ_c exp(cos(y_a, y_c)/τ)
// on factor triplets: anchor a and positive p share the aspect's value but are different works; the
// negative n is the positive's own work at another value, at the same relative position in the piece (so
// the content is the same and only the aspect differs). Hand-written Adam over minibatches, triplets drawn
// from `seed` (deterministic: the same data, params and seed give the same model bit for bit). Works are
// split into train and validation works (val_fraction); the validation triplet accuracy is measured after
// every epoch and the best epoch is kept.
//
// Factor labels: a labels.json written by `mess corpus render --factors` (eval.hpp): items with id (the
// track id in the store), work_id, factor (varied factor or "base") and factors {factor: value}. An
// aspect's windows are those of the renderings that vary it plus the base renderings; their value is
// factors[aspect].
//
// Saved form (save_aspect_set; NumPy applies it in a few lines, see README): a directory with
//   aspects.json  {"schema": "mess-aspects/1", "encoder", "layers": [...], "layer_dim": D,
//                  "encoder_signature": encoder_signature() of the encoder trained on (identity and version),
//                  "input": "...", "aspects": {name: {"rung", "in_dim", "out_dim", "mean", "scale",
//                  "weights" (file names or null), "trained_on", "validation_accuracy"}}}
//   <name>.mean.npy, <name>.scale.npy [Din] float32; <name>.direction.npy [k] (json "direction": file or null); <name>.weights.npy [Din] (diagonal) or [k, Din] (linear);
//   mlp: "hidden_dim" H and "w1", "b1", "w2" naming <name>.w1.npy [H, Din], <name>.b1.npy [H], <name>.w2.npy [k, H] ("weights" null)
// Files are written atomically, aspects.json last.
//
// Errors: Error(input) for a malformed labels file, model directory or a track missing from the store;
// Error(usage) for bad params, an unknown aspect or too few works/values to draw triplets.
// Thread safety: everything is reentrant; AspectModel is a value and `apply` is const.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mess/features.hpp"

namespace mess {

class Encoder;

enum class AspectRung { identity, standardise, diagonal, linear, mlp };
const char* to_string(AspectRung rung);           // "identity" | "standardise" | "diagonal" | "linear" | "mlp"
AspectRung parse_aspect_rung(const std::string&);  // Errors: Error(usage)
enum class AspectLoss { triplet, infonce };
const char* to_string(AspectLoss loss);           // "triplet" | "infonce"
AspectLoss parse_aspect_loss(const std::string&);  // Errors: Error(usage)

// Windows of a factor corpus: one row per window of every labelled track found in the store.
struct FactorWindows {
    std::int64_t n = 0, dim = 0;          // rows, Din
    std::vector<float> x;                 // [n, dim] row-major: concatenated layers
    std::vector<int> layers;              // the layers used
    std::int64_t layer_dim = 0;           // D
    std::string encoder;                  // the store's model label (sidecar "model")
    std::vector<std::int32_t> track;      // [n] index into track_ids
    std::vector<double> position;         // [n] window centre / track duration, in [0, 1]
    std::vector<double> source_sec;       // [n] window centre in the source's seconds, through the item's
                                          // time_map ([source, rendered] pairs) when it has one, else its own
    std::vector<std::string> track_ids, track_work, track_factor;  // per track
    std::vector<std::map<std::string, std::string>> track_values;  // per track: factor → value
    const float* row(std::int64_t i) const { return x.data() + i * dim; }
};

// Reads labels.json (factor labels, above) and each labelled track's segments from `store`. `layers`
// empty = every layer. Tracks without complete features are skipped with a warning; none at all is an
// Error(input).
FactorWindows load_factor_windows(const FeatureStore& store, const std::filesystem::path& labels, const std::vector<int>& layers);
// The windows of a same-work corpus (labels with id, work_id and optionally time_map, as `mess eval` reads
// them: several renderings or performances of each work); factors are not needed. Errors as above.
FactorWindows load_work_windows(const FeatureStore& store, const std::filesystem::path& labels, const std::vector<int>& layers);
// The concatenated layers of a segments array [S, L, D] (float32) → [S, |layers| · D]. Errors: Error(usage)
// for a layer out of range, Error(input) for an array that is not [S, L, D].
std::vector<float> concat_layers(const NpyArray& segments, const std::vector<int>& layers);

struct AspectModel {
    std::string name;
    AspectRung rung = AspectRung::identity;
    std::int64_t in_dim = 0, out_dim = 0;      // Din; k (= Din except for linear and mlp)
    std::int64_t hidden_dim = 0;               // H of the mlp rung (0 otherwise)
    std::vector<float> mean, scale;            // [Din] (empty for identity)
    // [Din] diagonal, [k, Din] linear, mlp: W1 [H, Din] then b1 [H] then W2 [k, H] in one flat vector
    // (what Adam updates; saved as three arrays); empty otherwise
    std::vector<float> weights;
    nlohmann::json info;                       // trained_on, validation_accuracy, ... (saved as is)
    // "More" of the aspect (faster, louder, more legato): a unit vector [out_dim] in the normalised space,
    // fitted by fit_direction; empty when the aspect's values have no order (timbre, transposition).
    std::vector<float> direction;

    // y for one input row x [in_dim] → [out_dim] (not normalised).
    std::vector<float> apply(const float* x) const;
    // Rows [n, in_dim] → [n, out_dim], each L2-normalised (ready for cosine by dot product).
    std::vector<float> apply_normalised(const float* x, std::int64_t n) const;
    // The predicted amount of the aspect of a normalised y [out_dim]: y · direction (a relative scale, for
    // comparing windows: larger = faster, louder, more legato). Needs a direction.
    double predict(const float* y) const;
};

// The order of a factor's values (factor labels, eval.hpp): tempo by ln(beats per minute) (faster =
// more), dynamics soft < medium < loud, articulation staccato < normal < legato; nullopt for a value or
// aspect without one (crescendo, diminuendo, timbre, transposition).
std::optional<double> aspect_value_rank(const std::string& aspect, const std::string& value);
// Fits model.direction: Σ (rank − mean rank) · ŷ over the aspect's windows whose value has a rank,
// normalised. False (direction left empty) when fewer than 2 windows have one or they all agree.
bool fit_direction(AspectModel& model, const FactorWindows& data, const std::string& aspect);

struct AspectTrainParams {
    AspectRung rung = AspectRung::linear;  // the top rung trained (every rung below is reported too)
    std::int64_t out_dim = 32;              // k of the linear and mlp rungs
    std::int64_t hidden_dim = 64;           // H of the mlp rung (≥ 2k keeps the linear start exact)
    AspectLoss loss = AspectLoss::triplet;
    double temperature = 0.1;               // τ of InfoNCE
    // true: the model returned is the rung with the best validation accuracy (ties: the lower rung),
    // false: the top rung
    bool pick_best = false;
    int epochs = 30;
    int triplets_per_epoch = 4000;
    int batch = 64;
    double learning_rate = 0.01;            // Adam's step (β1 0.9, β2 0.999, ε 1e-8)
    double gamma = 16, margin = 0.1;        // loss sharpness and margin
    double val_fraction = 0.25;             // share of works held out for validation (≥ 1 work)
    int val_triplets = 2000;
    std::uint64_t seed = 0;
    // Restarts of the ladder from seeds seed, seed + 1, ... (the same train/validation split and validation
    // triplets, from `seed`); the run of best validation accuracy is kept (ties: the earlier). 1: one run.
    // The kept run's validation accuracy is then the best of N on the same triplets: an optimistic figure.
    int restarts = 1;
    // With restarts > 1 and the mlp rung kept by every run: the runs as one mlp (hidden units stacked, outputs
    // concatenated, each run's block scaled to unit mean norm: rank restarts × out_dim), kept when its
    // validation accuracy is at least the best run's (info: ensemble, ensemble_validation_accuracy).
    bool ensemble = false;
    // After each epoch: (rung, epoch 1.., mean training loss, validation triplet accuracy).
    std::function<void(AspectRung, int, double, double)> on_epoch;
};

struct RungReport {
    AspectRung rung;
    double validation_accuracy = 0, train_loss = 0, seconds = 0;
    int best_epoch = 0;
};

struct AspectTraining {
    AspectModel model;               // the top rung's model, with its info filled in
    std::vector<RungReport> ladder;  // identity, standardise, ... up to params.rung
};

// Trains aspect `aspect` (a factor of the corpus) up the ladder. Errors: Error(usage) when the aspect
// has fewer than 2 values or 2 works in train or validation, or bad params.
AspectTraining train_aspect(const FactorWindows& data, const std::string& aspect, const AspectTrainParams& params);

// ---- pieces of training, public for tests and benchmarks ----------------------------------------
struct Triplet {
    std::int64_t a, p, n;  // window rows
};
// `count` triplets for `aspect` drawn among the tracks whose work is in `works` (empty = every work).
std::vector<Triplet> draw_triplets(const FactorWindows& data, const std::string& aspect, const std::vector<std::string>& works,
                                   int count, std::uint64_t seed);
// Mean soft-triplet loss of `model` over `triplets` and its gradient with respect to model.weights
// (grad resized to weights.size()). Model rung diagonal, linear or mlp.
double triplet_loss(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets, double gamma,
                    double margin, std::vector<double>* grad);
// Mean InfoNCE loss (above) over `triplets` (a batch) and its gradient, like triplet_loss; `aspect` gives
// each window's value. Model rung diagonal, linear or mlp.
double infonce_loss(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets, const std::string& aspect,
                    double temperature, std::vector<double>* grad);
// Share of triplets with cos(y_a, y_p) > cos(y_a, y_n).
double triplet_accuracy(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets);

// One Adam optimiser over a flat parameter vector.
class Adam {
public:
    explicit Adam(std::size_t size, double learning_rate, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
    void step(std::vector<float>& params, const std::vector<double>& grad);

private:
    double lr_, b1_, b2_, eps_;
    std::int64_t t_ = 0;
    std::vector<double> m_, v_;
};

// ---- evaluation ---------------------------------------------------------------------------------
struct AspectEval {
    double triplet_accuracy = 0;   // on `triplets` factor triplets drawn from the data
    double content_leak = 0;       // share of query windows whose nearest window (other tracks of the
                                   // aspect's renderings) is the query's own work at another value
    double value_precision = 0;    // share whose nearest window has the query's value (and another work)
    std::int64_t triplets = 0, queries = 0;
    // Whole tracks, as a track index holds them (the model applied to the mean of a track's windows): the
    // distinct track triplets of the same draw, and each aspect rendering's nearest other track.
    double track_triplet_accuracy = 0, track_content_leak = 0;
    std::int64_t track_triplets = 0, track_queries = 0;
};
AspectEval evaluate_aspect(const AspectModel& model, const FactorWindows& data, const std::string& aspect, int triplets = 4000,
                           std::uint64_t seed = 7);

// ---- the same-work geometry --------------------------------------------------------------------
// A space where windows of different performances of one work at the same moment are close (and the whole
// performances, by their mean), learned in closed form from a same-work corpus (load_work_windows). A
// window's class is (work, ⌊source_sec / bin_seconds⌋): the aligned moment of the work. The ladder:
//   identity     cosine of the raw concatenated layers
//   standardise  z = (x − mean) / scale over all windows
//   wccn         y = Sw^(−1/2) z: within-class covariance normalisation (whitening), Sw the within-class
//                covariance of z shrunk towards its mean variance: Sw ← (1 − s) Sw + s · tr(Sw)/Din · I
//   lda          y = V z: the out_dim generalised eigenvectors of (Sb, Sw) of largest eigenvalue (between-
//                class over within-class variance), vᵀ Sw v = 1
// wccn and lda are saved as linear-rung models (AspectModel rung linear, info.method "wccn" | "lda") named
// "same_work", so indexes, search and NumPy apply them like any aspect model.
enum class SameWorkRung { identity, standardise, wccn, lda };
const char* to_string(SameWorkRung rung);
SameWorkRung parse_same_work_rung(const std::string&);  // Errors: Error(usage)
struct SameWorkParams {
    std::int64_t out_dim = 32;    // k of lda (at most Din)
    double shrinkage = 0.1;       // s in [0, 1]
    double bin_seconds = 2.5;     // class width in source seconds
};
// Errors: Error(usage) for bad params or fewer than 2 works.
AspectModel fit_same_work(const FactorWindows& data, SameWorkRung rung, const SameWorkParams& params);
// The classes of fit_same_work: one id per window, [n].
std::vector<std::int64_t> same_work_classes(const FactorWindows& data, double bin_seconds);

struct SameWorkEval {
    double track_map = 0;    // each track (its windows' normalised mean) against every other track;
                             // relevant: the same work
    double passage_map = 0;  // each window against the windows of every other track; relevant: the same
                             // work within passage_tolerance_sec of source time (half a window: ≥ half overlap)
    std::int64_t track_queries = 0, passage_queries = 0;  // queries with at least one relevant result
};
SameWorkEval evaluate_same_work(const AspectModel& model, const FactorWindows& data, double passage_tolerance_sec = 2.5);

// Cross-validation over works (src/aspects/same_work_cv.cpp), for choosing shrinkage and out_dim on the
// development works only: the works are shuffled by `seed` into `folds` folds; for each fold and each
// candidate of `grid`, the rung is fitted on the other folds' windows and evaluated on the fold's (track and
// passage MAP, averaged over folds). Errors: Error(usage) for fewer than 2 folds, a fold of fewer than 2
// works, or an empty grid.
struct SameWorkCvRow {
    SameWorkParams params;
    double track_map = 0, passage_map = 0;
};
std::vector<SameWorkCvRow> cross_validate_same_work(const FactorWindows& data, SameWorkRung rung, const std::vector<SameWorkParams>& grid,
                                                    int folds, std::uint64_t seed = 0);
// The works shuffled by `seed` and dealt into `folds` lists. Errors as above.
std::vector<std::vector<std::string>> work_folds(const FactorWindows& data, int folds, std::uint64_t seed);
// The windows (and tracks) of the works in `works`, tracks renumbered in their order.
FactorWindows select_works(const FactorWindows& data, const std::set<std::string>& works);

// ---- a set of aspect models for one encoder, saved and loaded -------------------------------------
struct AspectSet {
    std::string encoder;                        // model label of the store it was trained on
    std::vector<int> layers;
    std::int64_t layer_dim = 0;
    std::map<std::string, AspectModel> aspects;
    // encoder_signature() of the encoder the models were trained on (aspects.json "encoder_signature");
    // null when not recorded (sets saved before it existed: applied only after the structural checks).
    nlohmann::json encoder_signature;

    // The models' input for one [L, D] stack (a window's segments row, or a track's aggregated row): the
    // chosen layers concatenated → [|layers| · D]. Errors: Error(input) when D ≠ layer_dim or a layer ≥ L.
    std::vector<float> input_of(const float* stack, std::size_t layers_in_stack, std::size_t dim) const;
};
// `prefix` is put before every file name (aspects.json → <prefix>aspects.json, <name>.mean.npy →
// <prefix><name>.mean.npy): how index artifacts hold a set beside their own files ("aspect_models.").
void save_aspect_set(const AspectSet& set, const std::filesystem::path& dir, const std::string& prefix = "");
AspectSet load_aspect_set(const std::filesystem::path& dir, const std::string& prefix = "");
// The aspect models that ship with MESS for a built-in encoder ("dsp", "mfcc-chroma"): the first of
// $MESS_ASPECT_MODELS/<encoder>, <executable's dir>/../share/mess/aspects/<encoder> and the source tree's
// models/aspects/<encoder> that holds an aspects.json; nullopt when none does.
std::optional<std::filesystem::path> default_aspect_models_dir(const std::string& encoder);
// The identity-rung model of `dim` inputs (cosine on the concatenated layers), named `name`.
AspectModel identity_model(const std::string& name, std::int64_t dim);

// ---- which encoder a set belongs to ---------------------------------------------------------------
// An encoder's identity and version, as features depend on it: {"name", "architecture", "layers",
// "hidden", "layer_names", "fingerprint"}. The fingerprint is the [L · D] mean embedding of a fixed 5-s
// synthetic test signal (a ramped A-minor triad with clicks every 0.5 s), computed for the built-in encoders
// (dsp, mfcc-chroma: a few milliseconds) and null for checkpoints (loading MERT only to compare would cost
// seconds): any change to a built-in encoder's computation changes it, even at the same dimensions.
nlohmann::json encoder_signature(const Encoder& encoder);
// Refuses a set trained on other features than `encoder` gives: Error(input) naming `what` (the set's
// directory) and the difference (name, architecture, layers, hidden size, or a fingerprint further than
// 1e-3 relative L2 from the recorded one: "the encoder changed since these models were trained; retrain
// them"). A set without a recorded signature passes when its encoder name matches.
void check_aspect_encoder(const AspectSet& set, const Encoder& encoder, const std::string& what);
// The fingerprint_digest of the encoder build the set was trained on; empty when it records no fingerprint.
std::vector<float> aspect_set_digest(const AspectSet& set);
// Refuses to map features of another build of the encoder with a set whose digest is `set_digest` (from
// aspect_set_digest; empty: nothing to compare): Error(input) naming the track when the sidecar's
// encoder_digest is further than kSameFingerprint from it ("re-extract, or retrain the models") or records
// none ("extracted by an older build: re-extract, or build without the models").
void check_aspect_features(const std::vector<float>& set_digest, const Sidecar& side);
}  // namespace mess
