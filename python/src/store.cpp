// mess.load_view, mess.FeatureStore, mess.Dataset, mess.read_targets: the feature store (features), datasets
// and their metadata in the catalog database (catalog, db) and target files (targets), read through their owners.
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "bindings.hpp"
#include "convert.hpp"
#include "mess/catalog.hpp"
#include "mess/db.hpp"
#include "mess/features.hpp"
#include "mess/targets.hpp"

namespace mess::python {
namespace {

// A track id names files of the store: it must stay a plain file name.
void check_track_id(const std::string& id) {
    if (id.empty() || id == "." || id == ".." || id.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
        throw py::value_error(fmt::format("'{}' is not a track id (a plain file name)", id));
}

FeatureStore store_of(const py::object& data_root, const std::string& dataset) {
    return FeatureStore::of(existing_path(data_root, "data root"), dataset);
}

// The least feature level that keeps `view`.
FeatureLevel level_of(View view) {
    return view == View::raw ? FeatureLevel::all : view == View::segments ? FeatureLevel::segments : FeatureLevel::aggregated;
}

py::array read_view(const FeatureStore& store, const std::string& track_id, const std::string& view_name) {
    check_track_id(track_id);
    const View view = parse_view(view_name);
    if (!store.has_sidecar(track_id))
        throw UnknownId(fmt::format("no features for track '{}' in {} (not extracted)", track_id, store.root().string()));
    const std::filesystem::path path = store.view_path(view, track_id);
    if (!std::filesystem::exists(path)) throw MissingPath(fmt::format("track '{}' has no {} view", track_id, view_name), path);
    NpyArray a;
    {
        py::gil_scoped_release release;
        a = store.read_view(view, track_id);
    }
    return npy_to_numpy(std::move(a));
}

py::dict targets_to_python(TargetSet&& t) {
    py::dict out;
    for (auto& [name, values] : t.arrays) {
        const auto n = static_cast<py::ssize_t>(values.size());
        out[py::str(name)] = to_numpy(std::move(values), {n});
    }
    if (t.source) {  // as numpy.load shows the file's members
        out["source/size_bytes"] = to_numpy(std::vector<std::int64_t>{static_cast<std::int64_t>(t.source->size_bytes)}, {1});
        out["source/mtime_ns"] = to_numpy(std::vector<std::int64_t>{t.source->mtime_ns}, {1});
    }
    return out;
}

py::dict read_targets_file(const std::filesystem::path& path) {
    TargetSet t;
    {
        py::gil_scoped_release release;
        t = read_targets(path);
    }
    return targets_to_python(std::move(t));
}

// Iterates a dataset's tracks whose features are complete for a view: (track_id, array) pairs.
class FeatureIterator {
public:
    FeatureIterator(std::vector<Track> tracks, FeatureStore store, View view)
        : tracks_(std::move(tracks)), store_(std::move(store)), view_(view) {}
    py::tuple next() {
        while (next_ < tracks_.size()) {
            const std::string& id = tracks_[next_++].track_id;
            NpyArray a;
            {
                py::gil_scoped_release release;
                if (!store_.is_complete(id, level_of(view_))) continue;
                a = store_.read_view(view_, id);
            }
            return py::make_tuple(id, npy_to_numpy(std::move(a)));
        }
        throw py::stop_iteration();
    }

private:
    std::vector<Track> tracks_;
    FeatureStore store_;
    View view_;
    std::size_t next_ = 0;
};

// A dataset and the catalog database its metadata comes from (as the `mess` commands resolve it).
struct CatalogedDataset {
    Dataset dataset;
    std::string catalog;  // the catalog keyword, else MESS_CATALOG, else sqlite:<data_root>/catalog.sqlite
};

CatalogedDataset open_dataset(const py::object& data_root, const std::string& dataset, const py::object& audio_dir,
                              const std::optional<std::string>& catalog) {
    const std::filesystem::path root = to_path(data_root, "data root");
    Config config;
    config.data_root = {root, "argument data_root"};
    ConfigFlags flags;
    if (catalog) flags["catalog"] = *catalog;  // the keyword plays the part of --catalog
    std::string url = in_context("mess.Dataset(catalog=...)", [&] { return db::catalog_setting(flags, config).value; });
    if (audio_dir.is_none()) return {Dataset::open(root, dataset), std::move(url)};
    return {Dataset::folder(root, existing_path(audio_dir, "audio folder"), dataset), std::move(url)};
}

// The dataset's metadata from its catalog database; a dataset the catalog lacks (or a track it lacks) is
// registered from the metadata CSV (or the files) on first use, as the commands do.
py::list metadata_rows(const CatalogedDataset& d) {
    MetadataTable table;
    {
        py::gil_scoped_release release;
        const auto catalog = db::CatalogDb::open(d.catalog);  // a connection per call: callable from any thread
        Dataset ds = d.dataset;                                // the value itself stays as made
        table = use_catalog_metadata(*catalog, ds);
    }
    py::list rows;
    for (const auto& r : table.rows()) {
        py::dict row;
        row["track_id"] = r.track_id;
        row["recording_id"] = r.recording_id;
        row["work_id"] = r.work_id;
        for (const auto& [key, value] : r.extra) row[py::str(key)] = value;
        rows.append(std::move(row));
    }
    return rows;
}

constexpr const char* kStoreDoc = R"doc(A dataset's feature store, <data_root>/embeddings/<dataset>-emb (what `mess extract` writes):
per track the views raw [S, L, T, D], segments [S, L, D], aggregated [L, D] and the sidecar. A value: its
methods read files and may be called from any thread. Raises FileNotFoundError for a missing data root.)doc";

constexpr const char* kDatasetDoc = R"doc(A dataset: registered ("smd", "maestro": their audio under <data_root>/audio/) or any folder of
audio (audio_dir, with `dataset` its id). Its features and targets live under data_root; its metadata in the
catalog database: `catalog` (a URL, sqlite:<file> or postgresql://..., as `mess --catalog`), else the
environment variable MESS_CATALOG, else sqlite:<data_root>/catalog.sqlite. A value: its methods may be
called from any thread (each metadata() call opens its own connection).)doc";

void bind_feature_store(py::module_& m) {
    py::class_<FeatureStore>(m, "FeatureStore", kStoreDoc)
        .def(py::init(&store_of), py::arg("data_root"), py::arg("dataset"))
        .def_property_readonly("root", [](const FeatureStore& s) { return s.root().string(); })
        .def("view", &read_view, "A view of a track as a NumPy array (float32; raw may be float16).", py::arg("track_id"), py::arg("view"))
        .def("sidecar", [](const FeatureStore& s, const std::string& id) {
            check_track_id(id);
            if (!s.has_sidecar(id)) throw UnknownId(fmt::format("no features for track '{}' in {} (not extracted)", id, s.root().string()));
            return json_to_python(nlohmann::json::parse(s.read_sidecar(id).to_json_text()));
        }, "The track's sidecar (meta/<track>.json) as a dict: windows, model, precision, views, ...", py::arg("track_id"))
        .def("check", [](const FeatureStore& s, const std::string& id, const std::string& level) {
            check_track_id(id);
            const TrackCheck c = s.check_track(id, parse_feature_level(level));
            return py::make_tuple(to_string(c.state), c.reason);
        }, "(state, reason) of a track for a level ('all' | 'segments' | 'aggregated'): state is 'complete', 'missing', 'corrupt' or "
           "'source changed' (the completeness rule extraction uses).", py::arg("track_id"), py::arg("level") = "segments")
        .def("audio_path", [](const FeatureStore& s, const std::string& id) {
            check_track_id(id);
            return s.audio_path(s.read_sidecar(id)).string();
        }, "The audio file the track's features were computed from.", py::arg("track_id"));
}

void bind_dataset(py::module_& m) {
    py::class_<FeatureIterator>(m, "FeatureIterator", "(track_id, array) for each track with complete features, in track order.")
        .def("__iter__", [](py::object self) { return self; })
        .def("__next__", &FeatureIterator::next);

    py::class_<CatalogedDataset>(m, "Dataset", kDatasetDoc)
        .def(py::init(&open_dataset), py::arg("data_root"), py::arg("dataset"), py::arg("audio_dir") = py::none(),
             py::arg("catalog") = py::none())
        .def_property_readonly("id", [](const CatalogedDataset& d) { return d.dataset.id(); })
        .def_property_readonly("kind", [](const CatalogedDataset& d) { return d.dataset.kind(); }, "'smd', 'maestro' or 'folder'")
        .def_property_readonly("data_root", [](const CatalogedDataset& d) { return d.dataset.data_root().string(); })
        .def_property_readonly("audio_dir", [](const CatalogedDataset& d) { return d.dataset.audio_dir().string(); })
        .def_property_readonly("catalog", [](const CatalogedDataset& d) { return db::redact_url(d.catalog); },
                               "The catalog database's URL (password hidden)")
        .def_property_readonly("features", [](const CatalogedDataset& d) { return d.dataset.features(); }, "its FeatureStore")
        .def("tracks", [](const CatalogedDataset& d) {
            std::vector<std::pair<std::string, std::string>> out;
            for (const auto& t : d.dataset.tracks()) out.emplace_back(t.track_id, t.audio_path.string());
            return out;
        }, "(track_id, audio path) of every audio file, sorted by path. Raises mess.Error when the audio folder is missing.")
        .def("iter_features", [](const CatalogedDataset& d, const std::string& view) {
            return FeatureIterator(d.dataset.tracks(), d.dataset.features(), parse_view(view));
        }, "Iterates (track_id, array) over the tracks whose features are complete for `view`; others are skipped.",
           py::arg("view") = "aggregated")
        .def("targets", [](const CatalogedDataset& d, const std::string& id) {
            check_track_id(id);
            const std::filesystem::path path = d.dataset.targets_path(id);
            if (!std::filesystem::exists(path)) throw MissingPath(fmt::format("no proxy targets for track '{}' (run mess targets)", id), path);
            return read_targets_file(path);
        }, "The track's proxy targets (proxy_targets/<dataset>/<track>.targets.npz) as a dict, as read_targets.", py::arg("track_id"))
        .def("metadata", &metadata_rows, "The metadata rows as dicts (track_id, recording_id, work_id, composer, title and the free "
             "columns) from the catalog database, as the mess commands read them; a dataset the catalog lacks is registered from its "
             "metadata CSV (or its files) on first use. Raises mess.Error when the catalog cannot be opened (it is named).")
        .def("__repr__", [](const CatalogedDataset& d) {
            return fmt::format("Dataset('{}', kind='{}', audio_dir='{}')", d.dataset.id(), d.dataset.kind(), d.dataset.audio_dir().string());
        });
}

}  // namespace

void bind_store(py::module_& m) {
    bind_feature_store(m);
    bind_dataset(m);
    m.def("load_view", [](const py::object& data_root, const std::string& dataset, const std::string& track_id, const std::string& view) {
        return read_view(store_of(data_root, dataset), track_id, view);
    }, "A view ('raw' | 'segments' | 'aggregated') of a track in <data_root>/embeddings/<dataset>-emb as a NumPy array (float32; "
       "raw may be float16). Raises mess.UnknownIdError for a track that was not extracted, FileNotFoundError for a missing data root "
       "or view, mess.Error for a damaged file. The GIL is released while reading.",
       py::arg("data_root"), py::arg("dataset"), py::arg("track_id"), py::arg("view"));
    m.def("read_targets", [](const py::object& path) { return read_targets_file(existing_path(path, "target file")); },
          "A proxy-target file (.targets.npz) as a dict {'<category>/<field>': float32 array}, with source/size_bytes and "
          "source/mtime_ns (int64 [1]) when it records its audio: what numpy.load shows, checked as MESS checks it.",
          py::arg("path"));
}

}  // namespace mess::python
