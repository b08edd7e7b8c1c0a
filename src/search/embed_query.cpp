// Embedding an outside excerpt for a query, with the index's model.
#include <algorithm>
#include <cmath>

#include "mess/model.hpp"
#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

std::shared_ptr<const Encoder> open_index_encoder(const SearchIndex& index, const std::string& model_override) {
    const std::string spec = model_override.empty() ? index.model_name : model_override;
    if (spec.empty()) throw_usage("the index records no model; give one (--model DIR|dsp) to embed the query");
    LoadParams lp;  // queries are embedded as the index was
    lp.precision = is_builtin_encoder(spec) ? Precision::fp32 : parse_precision(index.precision);
    return open_encoder(spec, lp);
}

std::vector<float> embed_query_stack(const Encoder& encoder, AudioView audio, double start_sec, IndexKind kind, int threads) {
    if (!std::isfinite(start_sec) || start_sec < 0) throw_usage("start second must be ≥ 0, got {}", start_sec);
    if (audio.sample_rate <= 0 || audio.samples.empty()) throw_input("query audio is empty");
    const auto first = static_cast<std::size_t>(std::llround(start_sec * audio.sample_rate));
    if (first >= audio.samples.size())
        throw_input("start {:.2f} s is past the end of the query audio ({:.2f} s)", start_sec, audio.duration_sec());
    std::size_t last = audio.samples.size();
    if (kind == IndexKind::clip) last = std::min(last, first + static_cast<std::size_t>(std::llround(WindowParams{}.seconds * audio.sample_rate)));
    const AudioView excerpt(audio.samples.subspan(first, last - first), audio.sample_rate);
    if (is_silent(excerpt))
        throw_input("the query audio is silent from {:.2f} s on: there is nothing to compare (every score would be the same)", start_sec);
    if (audio.sample_rate != encoder.info().sampling_rate)
        throw_input("query audio is at {} Hz, the model expects {} Hz", audio.sample_rate, encoder.info().sampling_rate);
    EmbedParams params;
    params.keep_frames = false;  // the query needs each window's frame means only
    const Embedding e = encoder.session()->embed(excerpt, params, std::max(1, threads));
    const auto S = static_cast<std::int64_t>(e.windows.size());
    return pool_windows(e.segments, S, static_cast<std::int64_t>(e.segments.size()) / S);
}

}  // namespace mess
