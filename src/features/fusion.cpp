// Layer fusion: Σ_l w_l · x̂_l over L2-normalised layers, then normalised. Probing and search share it.
#include <algorithm>
#include <vector>

#include "mess/features.hpp"

namespace mess {

namespace {

void check_weights(std::size_t layers, std::span<const double> weights) {
    if (weights.size() != layers) throw_usage("{} layer weights given, the features have {} layers", weights.size(), layers);
}

}  // namespace

void fuse_layers(const float* stack, std::size_t layers, std::size_t dim, std::span<const double> weights, float* out) {
    check_weights(layers, weights);
    std::fill(out, out + dim, 0.0f);
    std::vector<float> layer(dim);
    for (std::size_t l = 0; l < layers; ++l) {
        if (weights[l] == 0) continue;
        std::copy(stack + l * dim, stack + (l + 1) * dim, layer.begin());
        l2_normalize(layer.data(), dim);
        const auto w = static_cast<float>(weights[l]);
        for (std::size_t j = 0; j < dim; ++j) out[j] += w * layer[j];
    }
    l2_normalize(out, dim);
}

void fuse_normalised_layers(const std::uint16_t* stack, std::size_t layers, std::size_t dim, std::span<const double> weights,
                            float* out) {
    check_weights(layers, weights);
    std::fill(out, out + dim, 0.0f);
    for (std::size_t l = 0; l < layers; ++l) {
        if (weights[l] == 0) continue;
        const std::uint16_t* src = stack + l * dim;
        const auto w = static_cast<float>(weights[l]);
        for (std::size_t j = 0; j < dim; ++j) out[j] += w * half_to_float(src[j]);
    }
    l2_normalize(out, dim);
}

}  // namespace mess
