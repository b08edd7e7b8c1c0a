// mess/model.hpp — MERT / HuBERT-family audio encoders loaded from Hugging Face checkpoint directories.
//
//   auto model = mess::Model::load("MERT-v1-95M");          // config.json, preprocessor_config.json,
//                                                            // model.safetensors or pytorch_model.bin
//   // on a GPU: mess::LoadParams lp; lp.device = mess::parse_device("cuda"); Model::load(dir, lp)
//   mess::ModelState state(model);                           // scratch buffers; one per thread
//   mess::EncodeParams p;  p.threads = 2;
//   std::vector<float> batch = ...;                          // [B, N] float32 at 24 kHz, equal-length clips
//   const mess::HiddenStates& h = state.encode(batch, B, N, p);  // [B, L+1, T, H], T = frames_for(N);
//                                                            // owned by `state`, valid until its next encode
//
//   auto emb = mess::embed_audio(*model, state, audio, {}, p);  // whole file: 5-s windows → [S, L+1, T, H]
//
// Architecture (reference/mert.md): 7-layer conv feature encoder (hop 320 samples, 75 frames/s at
// 24 kHz), feature projection (LayerNorm + Linear 512→H), weight-normed grouped positional conv, then
// post-LN (MERT-v1-95M, do_stable_layer_norm=false) or pre-LN (MERT-v1-330M) transformer layers.
// config.json decides every branch; hidden state 0 is the encoder input, state l the output of layer l.
// Preprocessing follows the HF feature extractor: per clip (x - mean) / sqrt(var + 1e-7) when
// preprocessor_config.json says do_normalize (population variance).
//
// Padding: the first conv layer's GroupNorm spans the whole clip, so clips of different lengths must not
// be zero-padded into one batch if results are to equal single-clip runs. embed_audio batches only
// windows of equal length. encode() also accepts `valid_samples` per clip to reproduce Hugging Face's
// padded-batch semantics exactly (frames past a clip's valid length are zeroed before the positional
// conv and masked as attention keys; GroupNorm statistics still include the padding, as in HF).
//
// Errors: Error(input) naming the file and tensor for any checkpoint problem (missing, unexpected,
// mis-shaped or mis-typed tensor, NaN/Inf weights, forbidden pickle content, truncated archive,
// unknown architecture); Error(usage) for bad parameters (e.g. a clip shorter than 400 samples).
// Thread safety: a loaded Model is immutable and may be shared by any number of threads; each thread
// uses its own ModelState.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/audio.hpp"
#include "mess/util.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Configuration (config.json + preprocessor_config.json)
// ---------------------------------------------------------------------------------------------

struct ModelConfig {
    std::string model_type;            // "mert_model" | "hubert"
    std::string architecture;          // "MERTModel" | "HubertModel"
    int hidden_size = 768;             // H
    int num_hidden_layers = 12;        // L (hidden states returned: L + 1)
    int num_attention_heads = 12;      // H must be divisible by it
    int intermediate_size = 3072;      // FFN width
    std::vector<int> conv_dim, conv_kernel, conv_stride;  // feature encoder, one entry per conv layer
    bool conv_bias = false;
    std::string feat_extract_norm = "group";  // "group" (norm on conv 0 only) | "layer" (every conv)
    bool feat_proj_layer_norm = true;
    bool do_stable_layer_norm = false;  // false: post-LN (95M); true: pre-LN (330M)
    int num_conv_pos_embeddings = 128;  // positional conv kernel
    int num_conv_pos_embedding_groups = 16;
    float layer_norm_eps = 1e-5f;
    bool do_normalize = true;  // from preprocessor_config.json
    int sampling_rate = 24000; // Hz

    int num_hidden_states() const { return num_hidden_layers + 1; }
    int head_dim() const { return hidden_size / num_attention_heads; }
    // Frames the conv stack produces for `samples` input samples (0 when too short).
    std::int64_t frames_for(std::int64_t samples) const;
    // Samples of receptive field of one frame (400 for MERT).
    std::int64_t min_samples() const;

    // Parses config.json text (and optionally preprocessor_config.json text); `name` labels errors.
    // Errors: Error(input) for an unknown architecture, unsupported branch (deepnorm, CQT, non-gelu
    // activations, conv_pos_batch_norm) or inconsistent sizes.
    static ModelConfig parse(const std::string& config_json, const std::string& preprocessor_json,
                             const std::string& name);
};

// ---------------------------------------------------------------------------------------------
// Checkpoint files
// ---------------------------------------------------------------------------------------------

// One tensor as stored, widened to float32. `stored_dtype` is the file's ("F32", "F16", "BF16").
struct Tensor {
    std::vector<std::int64_t> shape;
    std::vector<float> values;
    std::string stored_dtype = "F32";
    std::size_t count() const;
};
using TensorMap = std::map<std::string, Tensor>;

// model.safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.
TensorMap read_safetensors(const std::filesystem::path& path);
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors);  // F32, atomic

// pytorch_model.bin (PyTorch zip format): data.pkl (a pickled state dict) + one file per storage.
// The unpickler is restricted to what a state dict needs (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage); anything else is refused
// with an error naming it, and nothing is ever executed. Legacy (non-zip) torch files are refused.
TensorMap read_torch_bin(const std::filesystem::path& path);
void write_torch_bin(const std::filesystem::path& path, const TensorMap& tensors);  // float32, atomic

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

// What loading found: for `mess model info`.
struct CheckpointReport {
    std::filesystem::path weights_file;
    std::string weights_format;              // "safetensors" | "pytorch_bin"
    std::string weight_norm_layout;          // "weight_g/weight_v" | "parametrizations"
    std::int64_t num_parameters = 0;         // every tensor in the file, incl. ignored ones
    std::int64_t num_tensors = 0;
    std::vector<std::string> ignored;        // training-only tensors present and unused
    std::map<std::string, int> stored_dtypes;  // dtype → tensor count
};

// Arithmetic of the matrix products and convolutions. fp32: exact to the PyTorch reference (1e-5).
// bf16: weights converted once at load (round to nearest even), activations converted into every matrix
// product and convolution except, on the CPU, the first conv layer (one input channel); accumulation,
// normalisations, softmax, GELU and the residual stream in fp32. On the CPU it needs AVX-512 (AVX512-BF16
// or AMX for full speed). fp16: the same on a CUDA device only.
// Contract (tests/model): per-layer cosine similarity to fp32 ≥ 0.999.
enum class Precision { fp32, bf16, fp16 };
const char* to_string(Precision p);
Precision parse_precision(const std::string& text);  // "fp32" | "bf16" | "fp16"; Errors: Error(usage)

// Where the forward pass runs. cuda: the weights are uploaded to the current CUDA device at load and
// encode() runs there (Error(usage) at load when this build has no CUDA backend or no device is usable).
enum class Device { cpu, cuda };
const char* to_string(Device d);                   // "cpu" | "cuda"
Device parse_device(const std::string& text);      // "cpu" | "cuda"; Errors: Error(usage) naming the text

struct LoadParams {
    // Prefer this weights file when both exist: "safetensors" (default) or "bin".
    std::string prefer = "safetensors";
    Precision precision = Precision::fp32;
    Device device = Device::cpu;
};
// Whether this build has the CUDA backend (CMake found the CUDA toolkit).
bool cuda_backend_built();
// CUDA devices usable now (0 without the backend, a driver or a device; `why` says which).
int cuda_devices(std::string* why = nullptr);

namespace model_detail {
struct CudaWeights;
class EncoderBackend;
}

class Model {
public:
    // Loads and checks a Hugging Face model directory. Errors: see the top of this file.
    static std::shared_ptr<const Model> load(const std::filesystem::path& dir, const LoadParams& params = {});
    // Builds from an already-read config and tensor map (the same checks as load()).
    static std::shared_ptr<const Model> from_tensors(ModelConfig config, TensorMap tensors, CheckpointReport report,
                                                     Precision precision = Precision::fp32, Device device = Device::cpu);

    const ModelConfig& config() const { return config_; }
    Precision precision() const { return precision_; }
    Device device() const { return device_; }
    // The device copy of the weights (Device::cuda), for the encoder's CUDA backend.
    const std::shared_ptr<const model_detail::CudaWeights>& cuda_weights() const { return cuda_weights_; }
    const CheckpointReport& report() const { return report_; }

    struct Weights;  // the prepared weights (defined in src/model)
    const Weights& weights() const { return *weights_; }
    ~Model();

private:
    Model() = default;
    Precision precision_ = Precision::fp32;
    Device device_ = Device::cpu;
    std::shared_ptr<const model_detail::CudaWeights> cuda_weights_;
    ModelConfig config_;
    CheckpointReport report_;
    std::unique_ptr<Weights> weights_;
};

// The names and shapes of every tensor the architecture needs, with the positional-conv weight norm in
// the weight_g/weight_v layout; training-only tensors (masked_spec_embed) are listed as optional.
struct TensorSpec {
    std::string name;
    std::vector<std::int64_t> shape;
    bool required = true;
};
std::vector<TensorSpec> architecture_table(const ModelConfig& config);

// ---------------------------------------------------------------------------------------------
// Inference
// ---------------------------------------------------------------------------------------------

struct EncodeParams {
    int threads = 1;                   // OpenMP threads for this call (≥ 1)
    std::optional<bool> normalize;     // default: the checkpoint's do_normalize
    bool keep_conv_features = false;   // also return the conv stack output
    bool frames = true;                // return every frame's state (HiddenStates::values)
    bool frame_means = false;          // return each clip's mean over its valid frames (HiddenStates::means)
};

// What encode() returns. With frames off, values stays empty and nothing of size frames × hidden per layer
// is kept or (on a GPU) copied back: the means are all the segments and aggregated views need.
struct HiddenStates {
    std::int64_t batch = 0, layers = 0, frames = 0, hidden = 0;
    std::vector<float> values;          // [batch, layers, frames, hidden] when EncodeParams::frames, else empty
    std::vector<float> means;           // [batch, layers, hidden] when EncodeParams::frame_means, else empty:
                                        // the mean over frames t < valid_frames(clip), accumulated in double
    std::int64_t conv_channels = 0;
    std::vector<float> conv_features;   // [batch, frames, conv_channels] when keep_conv_features
};

// Per-thread scratch space and the compute backend (the model's device, chosen once here); not thread-safe,
// cheap to create (on cuda the device's stream and cuBLAS handle are made on the first encode()).
class ModelState {
public:
    explicit ModelState(std::shared_ptr<const Model> model);
    ~ModelState();
    // Encodes `batch` clips of `samples` samples each (24 kHz float32, [batch, samples] row-major).
    // valid_samples (optional, one per clip, each ≤ samples): HF padded-batch semantics (see top).
    // The result lives in this state and stays valid until the next encode() on it (copy it to keep it):
    // reusing its buffer avoids re-faulting tens of MB per call.
    // Errors: Error(usage) when samples < config.min_samples(), the sizes disagree, or neither frames nor
    // frame_means is asked for.
    const HiddenStates& encode(std::span<const float> waves, std::int64_t batch, std::int64_t samples,
                        const EncodeParams& params, std::span<const std::int64_t> valid_samples = {});

private:
    std::shared_ptr<const Model> model_;  // outlives backend_, which refers to its config and weights
    std::unique_ptr<model_detail::EncoderBackend> backend_;
    HiddenStates out_;  // the last result, its buffers reused across calls
};

// The HF Wav2Vec2FeatureExtractor normalisation of one clip: (x - mean) / sqrt(var + 1e-7).
std::vector<float> normalize_waveform(std::span<const float> clip);

struct EmbedParams {
    WindowParams windows{};  // 5 s, overlap 0.5 at 24 kHz
    int batch_size = 4;      // windows per encode() call (equal-length windows only)
    // Called after each batch with (windows done, windows in total); may be empty. It may throw to abandon the
    // embedding (a caller's interruption): the exception leaves embed() as it was thrown, and the built-in
    // encoders, which run windows on several threads, call it on one thread at a time and stop at the next window.
    std::function<void(std::int64_t, std::int64_t)> on_progress;
    // Keep every frame's state (Embedding::states.values, [S, L, T, D]). Off, only the per-window means are
    // kept: L·D floats a window instead of L·T·D (a 10-min recording through MERT-95M: 10 MB, not 3.6 GB).
    bool keep_frames = true;
};

// A whole recording's hidden states: windows → [S, L, T, D] plus each window's true start.
struct Embedding {
    HiddenStates states;           // batch = S windows (values empty unless keep_frames; means empty)
    std::vector<float> segments;   // [S, L, D]: each window's mean over its frames (always)
    std::vector<Window> windows;   // S entries
};
// Errors: Error(input) when the audio is not at the model's sampling rate or shorter than one frame.
Embedding embed_audio(const Model& model, ModelState& state, AudioView audio, const EmbedParams& params,
                      const EncodeParams& encode);

// Views (docs/ARCHITECTURE.md): segments = mean over frames [S, L, H]; aggregated = mean over windows [L, H]
// (accumulated in double). pool_frames needs h.values (Error(usage) when they were not kept).
std::vector<float> pool_frames(const HiddenStates& h);
std::vector<float> pool_windows(std::span<const float> segments, std::int64_t windows, std::int64_t per_window);

// ---------------------------------------------------------------------------------------------
// Encoders: one interface over MERT checkpoints and the weightless DSP backends
// ---------------------------------------------------------------------------------------------
//
//   auto enc = mess::open_encoder("dsp");                  // or "mfcc-chroma", or a MERT directory
//   auto session = enc->session();                         // per-thread scratch
//   mess::Embedding e = session->embed(load_audio(f, enc->info().sampling_rate), {}, 2);   // [S, L, T, D]
//
// The DSP backend ("dsp", no weights; version 3): each 5-s window is analysed on its own (so a query
// excerpt gets exactly the vectors its window got at indexing) at 24 kHz, and described at 10 frames/s
// (T = 1 + n/2400) by four interpretable descriptor groups, each z-scored with fixed constants (calibrated
// once on the development corpus: bench/dsp_calibrate.sh) and scaled to unit length per frame:
//   layer 0 timbre    MFCC 1–19 of a 64-band mel spectrum in dB relative to the window's peak (loudness-
//                     invariant), spectral contrast (7 bands), log centroid, log flatness            28 dims
//   layer 1 harmony   CRP chroma (log-compressed semitone energies re the window's peak, the spectral
//                     envelope removed by dropping the lowest 38 of 84 DCT coefficients across pitch,
//                     negative pitches clipped: timbre-robust) smoothed over ±0.5 s (CENS-like) and
//                     softly rotated to the window's key (weights: softmax of the Krumhansl–Kessler
//                     correlations, a minor key counted for its relative major), 12 dims; the magnitudes
//                     of its 12-point DFT (k = 1..6) 6 dims; a major/minor score and the key's clarity
//                     2 dims; the 2-D Fourier magnitudes of the window's chroma patch [frames × 12]
//                     (exactly invariant to transposition and to where the window starts; temporal
//                     frequencies pooled in bands 0, 1, 2, 3–4, 5–7, 8–12 cycles per window) 67 dims   87 dims
//   layer 2 rhythm    local autocorrelation of the onset envelope at lags r·P of the window's beat period P
//                     (r = 1/4 … 4), onsets per beat, onset strength relative to the window's peak:
//                     tempo-invariant                                                                      14 dims
//   layer 3 dynamics  level in dBFS (soft 10-dB bins −60..−10, and /60: how loud the playing is), level
//                     relative to the window's peak (soft 10-dB bins: the contour), smoothed level slope
//                     (soft bins), the window's level trend (crescendo/diminuendo)                       15 dims
//   layer 4 overall   weights after pooling: each group's mean over the window's frames, unit length,
//                     weighted timbre 0.10, harmony 1.00, rhythm 0.10, dynamics 0.05 (chosen for same-work
//                     retrieval on the development corpus), the same vector in every frame of the window
//                     (the index default: the layer to search "sounds alike overall"). The harmony group
//                     enters as its coordinates on 40 discriminant directions (dims 28–67, 68–114 zero):
//                     those along which different music differs most relative to how the same music moves
//                     when its instrument, articulation, level or key changes (generalised eigenvectors,
//                     learned from the development works' factor corpus: bench/dsp_harmony_projection.py)
//   layer 5 expression (dims 0–47, rest zero; fixed units, the window's values in every frame, zero when silent; not in overall): tempo (log2 onset rate, median/quartile IOIs, tempo/120,
//                     median IOI in soft bins), dynamics (mean and 90th-percentile dBFS, slope of the 0.5-s level peaks; their median slope over ≤ 1.5 s, share of rising steps, largest fall and rise: a direction a
//                     hairpin starting again inside the window does not hide), articulation (level under each 0.5 s's peak, fall after onsets)
// All layers share one 144-d space (group g: its own block of dimensions, zeros elsewhere): cosine on a group layer is that group's alone. Only dynamics and expression follow the gain.
// The baseline ("mfcc-chroma"): one layer, per-frame MFCC 0–19 (128 mel bands) and STFT chroma at
// 22.05 kHz-equivalent framing (n_fft 2048, hop 512 at 24 kHz), each block scaled to unit length: its
// mean over frames is the classic "mean MFCC + mean chroma" track descriptor.

struct EncoderInfo {
    std::string name;                     // "dsp", "mfcc-chroma" or the checkpoint directory
    std::string architecture;             // "MERTModel", "HubertModel", "dsp", "mfcc-chroma"
    int sampling_rate = kModelSampleRate; // Hz the audio must have
    int layers = 0;                       // hidden states per frame (L + 1 for MERT)
    int hidden = 0;                       // D
    double frame_rate = 0;                // frames per second of audio
    int default_layer = -1;               // the layer an index uses by default (-1: the middle one)
    std::vector<std::string> layer_names; // one per layer (MERT: "0" = conv features, "1".."L" transformer)
    std::vector<std::string> layer_descriptions;  // one per layer (built-in encoders), for `mess model info`
    std::string description;              // one paragraph for `mess model info`
    std::string precision = "fp32";       // the arithmetic (MERT: fp32 | bf16; built-in encoders: fp32)
    std::string device = "cpu";           // to_string(Device) of the model (built-in encoders: "cpu")
    int version = 1;                      // the built-in encoder's definition (dsp: 2); 1 for MERT
    nlohmann::json to_json() const;
};

class Encoder {
public:
    virtual ~Encoder() = default;
    virtual const EncoderInfo& info() const = 0;
    // Per-thread state; not thread-safe itself, cheap to create.
    class Session {
    public:
        virtual ~Session() = default;
        // Whole recording → [S, L, T, D] (when params.keep_frames) and [S, L, D] frame means, plus the windows.
        // `audio` must be at info().sampling_rate; its samples are read in place, never copied whole.
        // Errors: Error(input) for the wrong rate, no samples, non-finite samples, or audio too short.
        virtual Embedding embed(AudioView audio, const EmbedParams& params, int threads) = 0;
    };
    virtual std::unique_ptr<Session> session() const = 0;
};

// "dsp", "mfcc-chroma", or a Hugging Face model directory (Model::load). Errors: as Model::load; an
// unknown name that is not a directory is Error(input) listing the built-in encoders.
std::shared_ptr<const Encoder> open_encoder(const std::string& spec, const LoadParams& params = {});
std::shared_ptr<const Encoder> mert_encoder(std::shared_ptr<const Model> model, std::string name);
std::shared_ptr<const Encoder> dsp_encoder();
std::shared_ptr<const Encoder> mfcc_chroma_encoder();
bool is_builtin_encoder(std::string_view spec);  // "dsp" | "mfcc-chroma"

// Which build of an encoder computed some features. The fingerprint is a built-in encoder's embedding
// [L · D] of one window of a fixed 5-s test signal (a ramped A-minor triad with a click every 0.5 s): a
// change of its code or calibration that changes what it computes moves it. Empty for an encoder that is
// not built in (a checkpoint is named by its files). The digest is 16 fixed ±1 projections of it (each
// / √(L · D)): what a feature sidecar records. Two fingerprints, or two digests, come from the same
// computation when fingerprint_distance (‖a − b‖ / ‖b‖; 1 when the sizes differ) is ≤ kSameFingerprint.
std::vector<float> encoder_fingerprint(const Encoder& encoder);
std::vector<float> fingerprint_digest(const std::vector<float>& fingerprint);
double fingerprint_distance(const std::vector<float>& a, const std::vector<float>& b);
inline constexpr double kSameFingerprint = 1e-3;

// The DSP backend's unscaled per-frame descriptors of one window ([T, 144], before the z-scoring and
// per-group scaling): what its calibration constants were measured on.
std::vector<float> dsp_raw_features(std::span<const float> window, std::int64_t* frames);

// ---------------------------------------------------------------------------------------------
// Random checkpoints (tests, benchmarks)
// ---------------------------------------------------------------------------------------------

struct RandomCheckpointParams {
    std::uint64_t seed = 0;
    std::string format = "safetensors";  // "safetensors" | "bin"
    bool parametrized_weight_norm = false;  // write parametrizations.weight.original0/1 keys
};
// Writes config.json (the given text), preprocessor_config.json and random weights (N(0, 0.02) matrices,
// LayerNorm weights near 1) for the architecture `config_json` describes. Errors as ModelConfig::parse.
void write_random_checkpoint(const std::string& config_json, const std::filesystem::path& out_dir,
                             const RandomCheckpointParams& params);

// config.json text of a published architecture: "mert-v1-95m" or "mert-v1-330m" (reference/mert.md §1).
// Errors: Error(usage) listing the presets for an unknown name.
std::string preset_config_json(std::string_view name);

}  // namespace mess
