// mess.align, mess.compare, mess.Alignment, mess.Comparison: the align module (performances of one piece).
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "bindings.hpp"
#include "convert.hpp"
#include "mess/align.hpp"

namespace mess::python {
namespace {

struct PyAlignment {
    Alignment alignment;
    py::array path;  // [N, 2] float64: (time in A, time in B), seconds
};

PyAlignment to_python(Alignment&& al) {
    std::vector<double> flat;
    flat.reserve(al.path_sec.size() * 2);
    for (const auto& [ta, tb] : al.path_sec) flat.insert(flat.end(), {ta, tb});
    const auto n = static_cast<py::ssize_t>(al.path_sec.size());
    PyAlignment out;
    out.path = to_numpy(std::move(flat), {n, 2});
    out.alignment = std::move(al);
    return out;
}

AlignParams align_params(bool transposition, bool open_begin, bool open_end, double max_length_ratio, bool exact, int radius,
                         double step_penalty) {
    AlignParams p;
    p.detect_transposition = transposition;
    p.dtw.dtw.open_begin = open_begin;
    p.dtw.dtw.open_end = open_end;
    p.dtw.dtw.step_penalty = step_penalty;
    p.dtw.radius = radius;
    p.max_length_ratio = max_length_ratio;
    p.exact = exact;
    p.validate();
    return p;
}

// A file, or an array at `sample_rate` (files ignore it: they are decoded at 24 kHz, as `mess align` does).
AudioSource source_of(const py::object& obj, std::optional<int> sample_rate, const char* what) {
    return AudioSource(obj, is_path_like(obj) ? std::nullopt : sample_rate, what);
}

PyAlignment align(const py::object& a, const py::object& b, std::optional<int> sample_rate, bool transposition, bool open_begin, bool open_end,
                  double max_length_ratio, bool exact, int radius, double step_penalty) {
    AudioSource sa = source_of(a, sample_rate, "a"), sb = source_of(b, sample_rate, "b");
    const AlignParams p = align_params(transposition, open_begin, open_end, max_length_ratio, exact, radius, step_penalty);
    Alignment al;
    {
        py::gil_scoped_release release;
        const AudioView va = in_context(sa.label(), [&] { return sa.load(std::nullopt); });
        const AudioView vb = in_context(sb.label(), [&] { return sb.load(std::nullopt); });
        al = align_audio(va, vb, p);
    }
    return to_python(std::move(al));
}

// ---------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------

struct PyComparison {
    Comparison comparison;
    std::vector<PyAlignment> alignments;
};

// [P, T] of one curve per performance (empty curves: None).
py::object curves(const Comparison& c, std::vector<double> PerformanceCurves::*curve) {
    std::vector<double> flat;
    for (const auto& p : c.performances) flat.insert(flat.end(), (p.*curve).begin(), (p.*curve).end());
    if (flat.empty()) return py::none();
    return to_numpy(std::move(flat), {static_cast<py::ssize_t>(c.performances.size()), static_cast<py::ssize_t>(c.times.size())});
}

std::vector<Performance> performances_of(const py::sequence& items, const std::optional<std::vector<std::string>>& names, std::optional<int> sample_rate) {
    if (py::isinstance<py::str>(items)) throw py::type_error("performances must be a list of files or arrays, not one str");
    if (names && names->size() != items.size()) throw py::value_error(fmt::format("{} names for {} performances", names->size(), items.size()));
    std::vector<AudioSource> sources;
    std::vector<std::string> labels;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const py::object item = items[i];
        sources.push_back(source_of(item, sample_rate, "performance"));
        labels.push_back(names ? (*names)[i] : sources.back().is_file() ? sources.back().path().stem().string() : std::to_string(i));
    }
    std::vector<Performance> out;
    py::gil_scoped_release release;
    for (std::size_t i = 0; i < sources.size(); ++i) {
        const AudioView v = in_context(sources[i].label(), [&] { return sources[i].load(std::nullopt); });
        out.push_back({labels[i], Audio{{v.samples.begin(), v.samples.end()}, v.sample_rate}});  // a Performance owns its audio
    }
    return out;
}

PyComparison compare(const py::sequence& performances, const std::optional<std::vector<std::string>>& names, std::optional<int> sample_rate,
                     double start, double end, double step, double tempo_window, double reference_bpm, bool transposition) {
    CompareParams p;
    p.align.detect_transposition = transposition;
    p.start_sec = start;
    p.end_sec = end;
    p.step_sec = step;
    p.tempo_window_sec = tempo_window;
    p.reference_bpm = reference_bpm;
    p.validate();
    const std::vector<Performance> perfs = performances_of(performances, names, sample_rate);
    PyComparison out;
    {
        py::gil_scoped_release release;
        out.comparison = compare_performances(perfs, p);
    }
    for (const auto& c : out.comparison.performances) out.alignments.push_back(to_python(Alignment(c.alignment)));
    return out;
}

constexpr const char* kAlignDoc = R"doc(Aligns two performances of one piece: which moment of b is each moment of a (chroma and onset
features at 50 frames/s, multiscale DTW with bounded memory, transposition detected). a and b: files
(decoded at 24 kHz, as `mess align` does) or 1-D float32 arrays at sample_rate (read in place).
open_begin / open_end: b may hold extra material before / after what a holds. max_length_ratio: the
longer/shorter duration allowed otherwise. exact: full-matrix DTW (memory rows × cols bytes). radius,
step_penalty: the DTW's band and non-diagonal cost.
Returns an Alignment (check .reliable: unrelated recordings align with a low confidence). The GIL is
released (not interruptible: a 10-minute pair takes about 2 s). Raises mess.Error for silent, too short or
non-finite audio and for durations too different, ValueError for bad parameters.)doc";

constexpr const char* kCompareDoc = R"doc(Compares performances of one piece on the first one's time axis (the reference): each is aligned to
it, and tempo (ratio to the reference, and in BPM with reference_bpm) and loudness (dBFS) are sampled
every `step` seconds of the reference between start and end (0: its end). performances: files or float32
arrays at sample_rate (an array is copied: a comparison owns its audio); names default to the file stems
(array: its position). Raises mess.Error when a performance does not align reliably (naming it).)doc";

void bind_alignment(py::module_& m) {
    py::class_<PyAlignment>(m, "Alignment", "Two performances aligned (mess.align). Immutable.")
        .def_readonly("path", &PyAlignment::path, "[N, 2] float64: (time in a, time in b) in seconds, monotone")
        .def_property_readonly("duration_a", [](const PyAlignment& a) { return a.alignment.duration_a; })
        .def_property_readonly("duration_b", [](const PyAlignment& a) { return a.alignment.duration_b; })
        .def_property_readonly("transposition", [](const PyAlignment& a) { return a.alignment.transposition; }, "semitones, b = a + transposition")
        .def_property_readonly("path_cost", [](const PyAlignment& a) { return a.alignment.path_cost; })
        .def_property_readonly("cost_ratio", [](const PyAlignment& a) { return a.alignment.cost_ratio; })
        .def_property_readonly("confidence", [](const PyAlignment& a) { return a.alignment.confidence; }, "0..1")
        .def_property_readonly("reliable", [](const PyAlignment& a) { return a.alignment.reliable(); })
        .def_property_readonly("mean_tempo_ratio", [](const PyAlignment& a) { return a.alignment.mean_tempo_ratio(); }, "> 1: b is faster")
        .def_property_readonly("summary", [](const PyAlignment& a) { return json_to_python(alignment_to_json(a.alignment)); },
                               "the summary `mess align --json` prints (without the file names and timings)")
        .def("time_b_at", [](const PyAlignment& a, double t) { return a.alignment.time_b_at(t); }, "b's second for a's second t", py::arg("t"))
        .def("time_a_at", [](const PyAlignment& a, double t) { return a.alignment.time_a_at(t); }, "a's second for b's second t", py::arg("t"))
        .def("tempo_curve", [](const PyAlignment& a, double step, double window) {
            std::vector<double> v = local_tempo_ratio(a.alignment, step, window);
            const auto n = static_cast<py::ssize_t>(v.size());
            return to_numpy(std::move(v), {n});
        }, "b's local tempo / a's, every `step` seconds of a over a window of `window` seconds", py::arg("step") = 0.1, py::arg("window") = 3.0)
        .def("__repr__", [](const PyAlignment& a) {
            return fmt::format("Alignment(transposition={}, mean_tempo_ratio={:.3f}, confidence={:.2f}, rows={})", a.alignment.transposition,
                               a.alignment.mean_tempo_ratio(), a.alignment.confidence, a.alignment.path_sec.size());
        });
}

void bind_comparison(py::module_& m) {
    py::class_<PyComparison>(m, "Comparison", "Performances compared on the reference's time axis (mess.compare). Immutable.")
        .def_property_readonly("names", [](const PyComparison& c) {
            std::vector<std::string> n;
            for (const auto& p : c.comparison.performances) n.push_back(p.name);
            return n;
        }, "the performances, the reference first")
        .def_property_readonly("times", [](const PyComparison& c) {
            std::vector<double> t = c.comparison.times;
            const auto n = static_cast<py::ssize_t>(t.size());
            return to_numpy(std::move(t), {n});
        }, "[T] float64: curve times, seconds of the reference")
        .def_property_readonly("tempo_ratio", [](const PyComparison& c) { return curves(c.comparison, &PerformanceCurves::tempo_ratio); }, "[P, T] float64")
        .def_property_readonly("bpm", [](const PyComparison& c) { return curves(c.comparison, &PerformanceCurves::bpm); }, "[P, T] float64, or None without reference_bpm")
        .def_property_readonly("loudness_db", [](const PyComparison& c) { return curves(c.comparison, &PerformanceCurves::loudness_db); }, "[P, T] float64, dBFS")
        .def_readonly("alignments", &PyComparison::alignments, "reference → each performance (the reference's own is the identity)")
        .def("to_dict", [](const PyComparison& c) { return json_to_python(comparison_to_json(c.comparison)); },
             "the form `mess compare --json` and the HTTP API share (mess-compare/1): passages, ranking, tempo correlations, curves");
}

}  // namespace

void bind_align(py::module_& m) {
    bind_alignment(m);
    bind_comparison(m);
    m.def("align", &align, kAlignDoc, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("sample_rate") = py::none(),
          py::arg("transposition") = true, py::arg("open_begin") = false, py::arg("open_end") = false, py::arg("max_length_ratio") = 4.0,
          py::arg("exact") = false, py::arg("radius") = 12, py::arg("step_penalty") = kAlignStepPenalty);
    m.def("compare", &compare, kCompareDoc, py::arg("performances"), py::arg("names") = py::none(), py::kw_only(),
          py::arg("sample_rate") = py::none(), py::arg("start") = 0.0, py::arg("end") = 0.0, py::arg("step") = 0.1, py::arg("tempo_window") = 3.0,
          py::arg("reference_bpm") = 0.0, py::arg("transposition") = true);
}

}  // namespace mess::python
