// Learned aspect spaces of an index: rows mapped by aspect models, queries mapped the same way.
#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

const float* AspectSpaces::row(const std::string& aspect, std::size_t r) const {
    const auto it = vectors.find(aspect);
    if (it == vectors.end()) throw_usage("no learned aspect space '{}'", aspect);
    return it->second.data() + r * static_cast<std::size_t>(models.aspects.at(aspect).out_dim);
}

std::map<std::string, std::vector<float>> AspectSpaces::embed(const float* stack, std::size_t size) const {
    const auto dim = static_cast<std::size_t>(models.layer_dim);
    if (size != stack_layers * dim)
        throw_usage("a learned aspect query needs a [{} × {}] layer stack, got {} values", stack_layers, dim, size);
    const std::vector<float> x = models.input_of(stack, stack_layers, dim);
    std::map<std::string, std::vector<float>> out;
    for (const auto& [name, model] : models.aspects) out[name] = model.apply_normalised(x.data(), 1);
    return out;
}

}  // namespace mess
