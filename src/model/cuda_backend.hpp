// Internal: the CUDA backend of the encoder, a plugin (libmess_cuda.so, built when CMake finds the CUDA
// toolkit) that mess_model opens with dlopen the first time a model is loaded with device "cuda". Keeping
// cuBLAS and the CUDA runtime out of the `mess` binary keeps it starting fast and running on machines
// without them.
//
// In the plugin, every matrix product goes through cuBLAS (inputs fp32, bf16 or fp16; fp32 accumulation
// and outputs) and the rest are small fused kernels (im2col with conversion, bias + GELU, layer norm, group
// norm over time, softmax writing the compute type); the residual stream and every normalisation stay fp32,
// as on the CPU.
//
//   CudaRuntime* rt = cuda_runtime(&why);                       // null (why set) when unavailable
//   auto weights = rt->upload(model.weights(), model.config(), Precision::bf16);   // once per Model
//   auto runner = rt->runner(weights, warn);                    // one per ModelState
//   runner->encode(normalised_waves, batch, samples, valid_frames, encode_params, hidden_states);
//
// Memory: a runner allocates its scratch for the largest batch asked so far; when the device runs out of
// memory it halves the batch (down to one window), says so through `warn`, and remembers the size that
// fitted. Host transfers go through pinned buffers on the runner's own stream. MESS_CUDA_MEMORY_BUDGET_MB
// caps the scratch (a test hook for the back-off; 0 or unset: no cap).
// Errors: Error(usage) when no CUDA device is usable; Error(input) when one window does not fit in memory;
// Error(internal) for any other CUDA or cuBLAS failure (the message names the call).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mess/model.hpp"

namespace mess::model_detail {

struct CudaWeights;  // the device copies of a model's weights (defined in the plugin)

class CudaRunner {
public:
    virtual ~CudaRunner() = default;
    // waves: [batch, samples] host floats, already normalised (padded tails zero); valid_frames: one per clip.
    // Fills what `outputs` asks for (others are emptied): out.values [batch, L+1, T, H] (frames), out.means
    // [batch, L+1, H] (frame_means: pooled on the device, so only these come back), out.conv_features
    // [batch, T, C] (keep_conv_features).
    virtual void encode(const float* waves, std::int64_t batch, std::int64_t samples, const std::vector<std::int64_t>& valid_frames,
                        const EncodeParams& outputs, HiddenStates& out) = 0;
};

class CudaRuntime {
public:
    virtual ~CudaRuntime() = default;
    // Usable CUDA devices (0 with `why` set when none).
    virtual int device_count(std::string* why) = 0;
    virtual std::shared_ptr<const CudaWeights> upload(const Model::Weights& weights, const ModelConfig& config, Precision precision) = 0;
    virtual std::unique_ptr<CudaRunner> runner(std::shared_ptr<const CudaWeights> weights, std::function<void(const std::string&)> warn) = 0;
};

// The plugin's runtime, opened on first use (MESS_CUDA_PLUGIN names the library; else it is looked for next
// to the executable, in the build tree, then by name). Null with `why` set when it cannot be opened.
CudaRuntime* cuda_runtime(std::string* why);

}  // namespace mess::model_detail

// The plugin's one exported symbol (its version changes with these interfaces, so a stale plugin is refused).
extern "C" mess::model_detail::CudaRuntime* mess_cuda_runtime_v2();
