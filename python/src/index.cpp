// mess.load_index, mess.Index, mess.Hits, mess.Hit: index artifacts searched through mess::Searcher, the one
// search workflow (the CLI, the server and `mess eval` call the same one).
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "bindings.hpp"
#include "convert.hpp"
#include "mess/artifacts.hpp"
#include "mess/model.hpp"
#include "mess/structure.hpp"

namespace mess::python {
namespace {

struct PyIndex {
    std::shared_ptr<const LoadedArtifact> artifact;
    std::shared_ptr<const Searcher> searcher;
    std::vector<std::string> refused;  // newer versions passed over, "<dir>: <why>"
    const SearchIndex& index() const { return artifact->index; }
};

// One hit; the record lives in the artifact, which the hit keeps alive.
struct PyHit {
    std::shared_ptr<const LoadedArtifact> artifact;
    const IndexRecord* record = nullptr;
    IndexKind kind = IndexKind::track;
    std::size_t rank = 0, row = 0;
    float score = 0;
    std::map<std::string, float> aspect_scores;  // Hit::aspect_scores
    bool passage() const { return kind == IndexKind::clip; }
};

struct PyHits {
    std::shared_ptr<const LoadedArtifact> artifact;
    SearchResult result;
    std::size_t size() const { return result.hits.size(); }
    PyHit at(py::ssize_t i) const {
        const auto n = static_cast<py::ssize_t>(size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw py::index_error("hit index out of range");
        const Hit& h = result.hits[static_cast<std::size_t>(i)];
        return {artifact, h.record, result.kind, static_cast<std::size_t>(i) + 1, h.row, h.score, h.aspect_scores};
    }
};

PyIndex load(const py::object& path, const std::string& name, const std::string& model) {
    const std::filesystem::path dir = existing_path(path, "index");
    PyIndex out;
    py::gil_scoped_release release;
    out.artifact = std::make_shared<const LoadedArtifact>(load_newest_artifact(dir, name, &out.refused));
    out.searcher = std::make_shared<const Searcher>(make_searcher(out.artifact, model));
    return out;
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

// The keyword options every query takes (after its own arguments).
struct Options {
    py::object layer_weights, filters;
    std::string exclude_same;
    double min_r2 = 0.5;
    bool scale_by_r2 = true;
    int nprobe = 0, ef_search = 0;
    bool exact = false;
    py::object unlike;                   // learned aspects the hits should differ in (like aspects)
    std::vector<std::string> more, less; // learned directions: more / less of these than the query
    std::string text;                    // "like this but slower and more restrained"
};

std::map<std::string, double> aspect_weights(const py::object& aspects) {
    if (aspects.is_none()) return {};
    if (py::isinstance<py::str>(aspects)) return parse_aspect_request(aspects.cast<std::string>());
    if (py::isinstance<py::dict>(aspects)) return aspects.cast<std::map<std::string, double>>();
    throw py::type_error("aspects must be None, a dict {aspect: weight} or a str such as 'dynamics=0.7,articulation=0.3'");
}

std::vector<Filter> filters_of(const py::object& filters) {
    std::vector<Filter> out;
    if (filters.is_none()) return out;
    if (py::isinstance<py::dict>(filters)) {
        for (const auto& [key, value] : filters.cast<std::map<std::string, std::string>>()) out.push_back({key, value});
        return out;
    }
    if (py::isinstance<py::str>(filters)) throw py::type_error("filters must be a dict {column: value} or a list of 'column=value'");
    for (const auto& text : filters.cast<std::vector<std::string>>()) out.push_back(Filter::parse(text));
    return out;
}

SearchRequest base_request(int k, const py::object& aspects, const Options& o) {
    if (k < 1) throw py::value_error(fmt::format("k must be at least 1, not {}", k));
    SearchRequest r;
    r.options.k = static_cast<std::size_t>(k);
    r.aspects = aspect_weights(aspects);
    r.unlike = aspect_weights(o.unlike);
    for (const auto& a : o.more) r.more_less[a] = 1;
    for (const auto& a : o.less)
        if (!r.more_less.emplace(a, -1).second) throw py::value_error(fmt::format("'{}' is both in more and in less", a));
    r.text = o.text;
    if (!o.layer_weights.is_none()) r.layer_weights = o.layer_weights.cast<std::vector<double>>();
    r.options.filters = filters_of(o.filters);
    r.options.exclude_same = parse_same_scope(o.exclude_same);
    r.min_r2 = o.min_r2;
    r.scale_by_r2 = o.scale_by_r2;
    r.options.search.nprobe = o.nprobe;
    r.options.search.ef_search = o.ef_search;
    r.options.exact = o.exact;
    return r;
}

PyHits run(const PyIndex& self, const SearchRequest& r, const std::string& context = {}) {
    PyHits out{self.artifact, {}};
    py::gil_scoped_release release;
    out.result = context.empty() ? self.searcher->search(r) : in_context(context, [&] { return self.searcher->search(r); });
    return out;
}

void require_kind(const PyIndex& self, IndexKind kind, const char* call) {
    if (self.index().kind != kind)
        throw py::value_error(fmt::format("{} needs a {} index; this is a {} index{}", call, to_string(kind), to_string(self.index().kind),
                                          kind == IndexKind::track ? " (use similar_passages)" : " (use similar_tracks)"));
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

PyHits similar_tracks(const PyIndex& self, const std::string& track_id, int k, const py::object& aspects, const Options& o) {
    require_kind(self, IndexKind::track, "similar_tracks");
    as_unknown_id([&] { return self.index().row_of(track_id); });
    SearchRequest r = base_request(k, aspects, o);
    r.track_id = track_id;
    return run(self, r);
}

PyHits similar_passages(const PyIndex& self, const std::optional<std::string>& track_id, std::optional<double> start, int k,
                        const py::object& aspects, const std::optional<std::string>& clip_id, bool group_by_track, double dedupe_sec,
                        const std::optional<std::string>& role, const Options& o) {
    require_kind(self, IndexKind::clip, "similar_passages");
    if (track_id.has_value() == clip_id.has_value()) throw py::value_error("give a track_id (with start) or a clip_id, not both or neither");
    SearchRequest r = base_request(k, aspects, o);
    if (clip_id) {
        as_unknown_id([&] { return self.index().row_of(*clip_id); });
        r.clip_id = *clip_id;
    } else {
        as_unknown_id([&] { return self.index().rows_of_track(*track_id).size(); });
        r.track_id = *track_id;
        r.start_sec = start || !role ? std::optional<double>(start.value_or(0.0)) : std::nullopt;
    }
    if (role) r.role = parse_role(*role);
    r.group_by_track = group_by_track;
    r.dedupe_sec = dedupe_sec;
    return run(self, r);
}

PyHits search_vector(const PyIndex& self, const py::object& vector, int k, const py::object& aspects, bool group_by_track, double dedupe_sec,
                     const Options& o) {
    const std::span<const float> v = float32_array(vector, "vector", 0);
    SearchRequest r = base_request(k, aspects, o);
    r.vector.assign(v.begin(), v.end());  // the search normalises its own copy, never the caller's array
    r.group_by_track = group_by_track;
    r.dedupe_sec = dedupe_sec;
    return run(self, r);
}

PyHits search_audio(const PyIndex& self, const py::object& audio, double start, int k, const py::object& aspects,
                    std::optional<int> sample_rate, int threads, bool group_by_track, double dedupe_sec, const Options& o) {
    AudioSource source(audio, sample_rate, "audio");
    SearchRequest r = base_request(k, aspects, o);
    r.start_sec = start;
    r.threads = resolve_threads(threads);
    r.group_by_track = group_by_track;
    r.dedupe_sec = dedupe_sec;
    {
        py::gil_scoped_release release;
        const int rate = self.searcher->encoder()->info().sampling_rate;
        r.audio = in_context(source.label(), [&] { return source.load(rate); });
    }
    return run(self, r, source.label());
}

// def_query<Own...>(cls, name, fn, doc, own args...): binds fn(self, own..., Options) as a method whose
// signature is its own arguments followed by the keyword-only options every query shares.
template <class... Own, class F, class... Extra>
void def_query(py::class_<PyIndex>& cls, const char* name, F fn, const char* doc, Extra... own_args) {
    auto method = [fn](const PyIndex& self, Own... own, const py::object& layer_weights, const py::object& filters,
                       const std::string& exclude_same, double min_r2, bool scale_by_r2, int nprobe, int ef_search, bool exact,
                       const py::object& unlike, const std::vector<std::string>& more, const std::vector<std::string>& less,
                       const std::string& text) {
        return fn(self, own..., Options{layer_weights, filters, exclude_same, min_r2, scale_by_r2, nprobe, ef_search, exact, unlike, more, less, text});
    };
    auto bind = [&](auto... keyword_only) {
        cls.def(name, method, doc, own_args..., keyword_only..., py::arg("layer_weights") = py::none(), py::arg("filters") = py::none(),
                py::arg("exclude_same") = "", py::arg("min_r2") = 0.5, py::arg("scale_by_r2") = true, py::arg("nprobe") = 0,
                py::arg("ef_search") = 0, py::arg("exact") = false, py::arg("unlike") = py::none(),
                py::arg("more") = std::vector<std::string>{}, py::arg("less") = std::vector<std::string>{}, py::arg("text") = "");
    };
    if constexpr ((std::is_same_v<Extra, py::kw_only> || ...)) bind();
    else bind(py::kw_only());
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

py::object optional_number(bool present, double value) { return present ? py::object(py::float_(value)) : py::object(py::none()); }

std::string hit_repr(const PyHit& h) {
    const IndexRecord& r = *h.record;
    if (!h.passage()) return fmt::format("Hit(rank={}, score={:.4f}, track_id='{}')", h.rank, h.score, r.track_id);
    return fmt::format("Hit(rank={}, score={:.4f}, track_id='{}', start={:.2f}, end={:.2f}, clip_id='{}')", h.rank, h.score, r.track_id,
                       r.start_sec, r.end_sec, r.id);
}

// A structured array: rank, row, score, id, track_id, start, end (NaN for tracks), segment_idx (-1 for tracks).
py::array hits_to_numpy(const PyHits& hits) {
    std::size_t id_width = 1, track_width = 1;
    py::list rows;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t i = 0; i < hits.size(); ++i) {
        const PyHit h = hits.at(static_cast<py::ssize_t>(i));
        const IndexRecord& r = *h.record;
        id_width = std::max(id_width, r.id.size());
        track_width = std::max(track_width, r.track_id.size());
        rows.append(py::make_tuple(h.rank, h.row, h.score, r.id, r.track_id, h.passage() ? r.start_sec : nan, h.passage() ? r.end_sec : nan,
                                   h.passage() ? r.segment_idx : -1));
    }
    py::list dtype;
    for (const auto& [field, type] : std::vector<std::pair<std::string, std::string>>{
             {"rank", "<i4"}, {"row", "<i8"}, {"score", "<f4"}, {"id", fmt::format("<U{}", id_width)},
             {"track_id", fmt::format("<U{}", track_width)}, {"start", "<f8"}, {"end", "<f8"}, {"segment_idx", "<i4"}})
        dtype.append(py::make_tuple(field, type));
    static const auto* array = new py::object(py::module_::import("numpy").attr("array"));
    return (*array)(rows, py::arg("dtype") = dtype);
}

constexpr const char* kLoadDoc = R"doc(Loads an index artifact: `path` is an artifact directory, or a folder of versions (with `name`,
<path>/<name>), of which the newest that loads is taken (a corrupt or incomplete newer version is passed
over and listed in Index.refused). Every file's size and SHA-256 are checked. `model` replaces the index's
recorded model for audio queries ("dsp", "mfcc-chroma" or a checkpoint directory).
Raises FileNotFoundError for a missing path, mess.Error when no version loads. The GIL is released.)doc";

constexpr const char* kIndexDoc = R"doc(A loaded index artifact and its search service (mess.load_index). Immutable: any number of Python
threads may search one Index at once (each query releases the GIL). Every query returns Hits, best first,
and takes these keyword options: layer_weights (explicit weights over the index's layers, instead of
aspects), filters ({column: value} or ['column=value', ...], case-insensitive equality on record fields
and metadata), exclude_same ('track' | 'recording' | 'work'), min_r2 and scale_by_r2 (aspect selection),
nprobe and ef_search (approximate indexes), exact (scan exactly whatever the family).
aspects: None (the index's own vectors), {aspect: weight}, or 'dynamics=0.7,articulation=0.3'.
Errors: ValueError for bad parameters (the message lists what is known), mess.UnknownIdError for an id the
index does not hold, mess.Error for unusable audio or vectors.)doc";

void bind_hits(py::module_& m) {
    py::class_<PyHit>(m, "Hit", "One search result. For passages (clip indexes) start, end, clip_id and segment_idx are set; "
                                "for tracks they are None. Immutable; keeps its index's records alive.")
        .def_readonly("rank", &PyHit::rank, "1 for the best hit")
        .def_readonly("row", &PyHit::row, "the row in the index")
        .def_property_readonly("score", [](const PyHit& h) { return static_cast<double>(h.score); }, "cosine similarity")
        .def_readonly("aspect_scores", &PyHit::aspect_scores,
                      "why it matched: {aspect: cosine similarity} in each learned aspect space of the index (empty when it has none)")
        .def_property_readonly("id", [](const PyHit& h) { return h.record->id; }, "the row's id: track id or clip id")
        .def_property_readonly("track_id", [](const PyHit& h) { return h.record->track_id; })
        .def_property_readonly("dataset_id", [](const PyHit& h) { return h.record->dataset_id; })
        .def_property_readonly("recording_id", [](const PyHit& h) { return h.record->recording_id; })
        .def_property_readonly("work_id", [](const PyHit& h) { return h.record->work_id; })
        .def_property_readonly("split", [](const PyHit& h) { return h.record->split; })
        .def_property_readonly("metadata", [](const PyHit& h) { return h.record->metadata; })
        .def_property_readonly("start", [](const PyHit& h) { return optional_number(h.passage(), h.record->start_sec); }, "seconds")
        .def_property_readonly("end", [](const PyHit& h) { return optional_number(h.passage(), h.record->end_sec); }, "seconds")
        .def_property_readonly("clip_id", [](const PyHit& h) { return h.passage() ? py::object(py::str(h.record->id)) : py::object(py::none()); })
        .def_property_readonly("segment_idx", [](const PyHit& h) { return h.passage() ? py::object(py::int_(h.record->segment_idx)) : py::object(py::none()); })
        .def("__repr__", &hit_repr);

    py::class_<PyHits>(m, "Hits", "The hits of one query, best first: a sequence of Hit, or a structured array (to_numpy). "
                                  "Immutable; safe to share between threads.")
        .def("__len__", &PyHits::size)
        .def("__getitem__", &PyHits::at)
        .def("__getitem__", [](const PyHits& hits, const py::slice& slice) {
            py::ssize_t start = 0, stop = 0, step = 0, count = 0;
            if (!slice.compute(static_cast<py::ssize_t>(hits.size()), &start, &stop, &step, &count)) throw py::error_already_set();
            py::list out;
            for (py::ssize_t i = 0; i < count; ++i) out.append(hits.at(start + i * step));
            return out;
        })
        .def("__iter__", [](const PyHits& hits) {
            py::list all;
            for (std::size_t i = 0; i < hits.size(); ++i) all.append(hits.at(static_cast<py::ssize_t>(i)));
            return all.attr("__iter__")();
        })
        .def_property_readonly("kind", [](const PyHits& h) { return to_string(h.result.kind); }, "'track' or 'clip'")
        .def_property_readonly("layer_weights", [](const PyHits& h) { return h.result.layer_weights; },
                               "the layer weights the query ranked by (empty: the index's own vectors)")
        .def("to_numpy", &hits_to_numpy, "A structured array: rank, row, score, id, track_id, start, end (NaN for tracks), segment_idx (-1 for tracks).")
        .def("to_json", [](const PyHits& h) { return json_to_python(hits_to_json(h.result)); },
             "The hits as `mess search --json` prints them (its \"results\"): a list of dicts.")
        .def("__repr__", [](const PyHits& h) { return fmt::format("Hits(kind='{}', {} hits)", to_string(h.result.kind), h.size()); });
}

void bind_queries(py::class_<PyIndex>& cls) {
    def_query<std::string, int, py::object>(cls, "similar_tracks", &similar_tracks,
        "The tracks most similar to a track of this track index (the track itself left out).", py::arg("track_id"), py::arg("k") = 10,
        py::arg("aspects") = py::none());
    def_query<std::optional<std::string>, std::optional<double>, int, py::object, std::optional<std::string>, bool, double,
              std::optional<std::string>>(cls, "similar_passages", &similar_passages,
        "The passages most similar to the window of track_id nearest `start` seconds (default 0), or to clip_id, in this clip index. The "
        "query window and its overlapping neighbours are left out; hits of one track closer than dedupe_sec (default: a window; 0: "
        "none) keep the best; group_by_track keeps each track's best passage. role ('climax', 'cadence', 'boundary', 'modulation'): "
        "only passages holding that role are hits, and a track_id query takes its window at the track's moment of that role (the "
        "one nearest `start` when given); modulations also rank by interval. Each hit's moment is in to_json()'s \"role\".",
        py::arg("track_id") = py::none(), py::arg("start") = py::none(), py::arg("k") = 10, py::arg("aspects") = py::none(), py::kw_only(),
        py::arg("clip_id") = py::none(), py::arg("group_by_track") = false, py::arg("dedupe_sec") = -1.0, py::arg("role") = py::none());
    def_query<py::object, int, py::object, bool, double>(cls, "search_vector", &search_vector,
        "The rows most similar to a vector of this index's space: float32 [dimension], or with aspects or layer_weights a "
        "[layers, layer_dim] stack (C-contiguous, never cast; the array is not modified).",
        py::arg("vector"), py::arg("k") = 10, py::arg("aspects") = py::none(), py::kw_only(), py::arg("group_by_track") = false,
        py::arg("dedupe_sec") = -1.0);
    def_query<py::object, double, int, py::object, std::optional<int>, int, bool, double>(cls, "search_audio", &search_audio,
        "The rows most similar to outside audio (a file, or a float32 array at sample_rate, read in place), embedded with the "
        "index's model: for a clip index the 5-s excerpt from `start`, for a track index the audio from `start` on. threads: "
        "embedding threads (0: MESS_WORKERS, default the cores).",
        py::arg("audio"), py::arg("start") = 0.0, py::arg("k") = 10, py::arg("aspects") = py::none(), py::kw_only(),
        py::arg("sample_rate") = py::none(), py::arg("threads") = 0, py::arg("group_by_track") = false, py::arg("dedupe_sec") = -1.0);
}

}  // namespace

void bind_index(py::module_& m) {
    bind_hits(m);
    py::class_<PyIndex> cls(m, "Index", kIndexDoc);
    cls.def_property_readonly("kind", [](const PyIndex& i) { return to_string(i.index().kind); }, "'track' or 'clip'")
        .def("__len__", [](const PyIndex& i) { return i.index().size(); })
        .def_property_readonly("dimension", [](const PyIndex& i) { return i.index().index.dimension(); })
        .def_property_readonly("layers", [](const PyIndex& i) { return i.index().layers; }, "per-layer vectors kept (0: no aspect search)")
        .def_property_readonly("dataset", [](const PyIndex& i) { return i.index().dataset; })
        .def_property_readonly("model_name", [](const PyIndex& i) { return i.index().model_name; })
        .def_property_readonly("layer", [](const PyIndex& i) { return i.index().layer_spec.to_string(); }, "the LayerSpec of its vectors")
        .def_property_readonly("factory", [](const PyIndex& i) { return i.index().index.factory(); })
        .def_property_readonly("version_id", [](const PyIndex& i) { return i.artifact->version_id(); })
        .def_property_readonly("directory", [](const PyIndex& i) { return i.artifact->dir.string(); })
        .def_property_readonly("manifest", [](const PyIndex& i) { return json_to_python(i.artifact->manifest); })
        .def("structure", [](const PyIndex& i, const std::string& track_id) {
            as_unknown_id([&] { return i.index().rows_of_track(track_id).size(); });
            const Structure* s = i.index().structure_of(track_id);
            if (!s) throw Error(ErrorKind::input, fmt::format("track '{}' has no structure in this index (built with --no-structure?)", track_id));
            return json_to_python(structure_to_json(*s));
        }, py::arg("track_id"), "The track's structure as stored in the index (mess structure --json's form): boundaries, sections, keys, "
           "modulations, climax, cadences.")
        .def_readonly("refused", &PyIndex::refused, "newer versions passed over because they did not load ('<dir>: <why>')")
        .def_property_readonly("aspects", [](const PyIndex& i) {
            nlohmann::json all = nlohmann::json::object();
            for (const auto& a : i.searcher->aspects()) all[a.name] = a.to_json();
            return json_to_python(all);
        }, "aspect → what probing resolved it to (target, r2, confidence, layer or layer_weights)")
        .def_property_readonly("ids", [](const PyIndex& i) {
            std::vector<std::string> ids;
            for (const auto& r : i.index().records) ids.push_back(r.id);
            return ids;
        }, "every row's id, in row order")
        .def("__repr__", [](const PyIndex& i) {
            return fmt::format("Index(kind='{}', rows={}, dimension={}, model='{}', version='{}')", to_string(i.index().kind), i.index().size(),
                               i.index().index.dimension(), i.index().model_name, i.artifact->version_id());
        });
    bind_queries(cls);
    m.def("load_index", &load, kLoadDoc, py::arg("path"), py::arg("name") = "", py::kw_only(), py::arg("model") = "");
}

}  // namespace mess::python
