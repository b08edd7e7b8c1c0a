// Internal: the prepared, read-only weights of a Model, laid out for the kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "mess/model.hpp"

namespace mess {

struct Model::Weights {
    struct Conv {
        int in = 0, out = 0, kernel = 0, stride = 0;
        std::vector<float> w;              // [kernel·in, out]: row tap·in + c, the im2col of a time-major input
        std::vector<float> bias;           // [out] or empty
        std::vector<float> norm_w, norm_b; // GroupNorm (layer 0, "group") or LayerNorm ("layer"), or empty
        std::vector<std::uint16_t> w16;    // w as bf16 (Precision::bf16, layers after the first), else empty
    };
    struct Linear {
        int in = 0, out = 0;
        std::vector<float> w;  // [in, out]: PyTorch's [out, in] transposed once at load
        std::vector<float> b;  // [out]
        std::vector<std::uint16_t> w16;  // w as bf16 (Precision::bf16), else empty
    };
    struct Norm {
        std::vector<float> w, b;
    };
    struct Layer {
        Linear qkv;      // q, k, v projections stacked: [3H, H]
        Linear out_proj;
        Norm attn_norm;  // layer_norm
        Linear ffn_in, ffn_out;
        Norm ffn_norm;   // final_layer_norm
    };
    std::vector<Conv> conv;
    Norm proj_norm;       // empty when feat_proj_layer_norm is false
    Linear proj;
    int pos_kernel = 0, pos_groups = 0;
    std::vector<float> pos_w;  // [H, H/groups, kernel] (= [groups][out][in][kernel]), weight norm applied
    std::vector<float> pos_b;  // [H]
    Norm encoder_norm;
    std::vector<Layer> layers;
    bool bf16 = false;  // Precision::bf16: the matrix products and the positional conv run in bf16
};

}  // namespace mess
