// Aspect model sets in the `mess` command line: a new set that records its encoder, and the check that a
// saved set belongs to a dataset's features. Internal to apps/mess (train aspects, train/eval same-work,
// eval aspects).
#pragma once

#include <string>
#include <vector>

#include "mess/aspects.hpp"
#include "mess/model.hpp"
#include "mess/util.hpp"

namespace mess::cli {

// An empty set for features of `encoder` (input `layers` of `layer_dim` each). A built-in encoder's identity and
// version are fingerprinted, so another build of it is refused later; a checkpoint is not loaded just for that.
inline AspectSet new_aspect_set(const std::string& encoder, std::vector<int> layers, std::int64_t layer_dim) {
    AspectSet set{encoder, std::move(layers), layer_dim, {}, nullptr};
    if (is_builtin_encoder(encoder)) set.encoder_signature = encoder_signature(*open_encoder(encoder));
    return set;
}

// Error(usage) when the set in `models` was trained on another encoder's features than `dataset` holds; for a
// built-in encoder, check_aspect_encoder's refusal of another build.
inline void check_aspect_set_for(const AspectSet& set, const std::string& features_encoder, const std::string& dataset, const std::string& models) {
    if (features_encoder != set.encoder)
        throw_usage("the models in {} were trained on {} features; {} holds {}", models, set.encoder, dataset, features_encoder);
    if (is_builtin_encoder(features_encoder)) check_aspect_encoder(set, *open_encoder(features_encoder), models);
}

}  // namespace mess::cli
