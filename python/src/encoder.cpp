// mess.open_encoder, mess.Encoder, mess.Embedding: the model module's encoders (MERT, dsp, mfcc-chroma).
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "bindings.hpp"
#include "convert.hpp"
#include "mess/model.hpp"

namespace mess::python {
namespace {

struct PyEncoder {
    std::shared_ptr<const Encoder> encoder;
    int threads = 1;     // compute threads of each embed() (resolved: never 0)
    int batch_size = 4;  // windows per forward pass (MERT)
};

struct PyEmbedding {
    py::array segments, starts, ends, aggregated;
    py::object frames = py::none();
    int sample_rate = 0;
};

PyEncoder open(const py::object& name_or_dir, const std::string& precision, const std::string& device, int threads) {
    const std::string spec = to_path(name_or_dir, "name_or_dir").string();
    if (!is_builtin_encoder(spec)) {
        std::error_code ec;
        if (!std::filesystem::exists(spec, ec))
            throw MissingPath(fmt::format("no encoder '{}': not a built-in encoder (dsp, mfcc-chroma) nor a model directory", spec), spec);
    }
    LoadParams lp;
    lp.precision = parse_precision(precision);
    lp.device = parse_device(device);
    PyEncoder e;
    e.threads = resolve_threads(threads);
    e.batch_size = resolve_config({{"device", device}}).batch_size.value;
    py::gil_scoped_release release;
    e.encoder = open_encoder(spec, lp);
    return e;
}

PyEmbedding to_python(Embedding&& e, int sample_rate, bool frames) {
    const HiddenStates& h = e.states;
    const auto S = static_cast<py::ssize_t>(h.batch), L = static_cast<py::ssize_t>(h.layers), D = static_cast<py::ssize_t>(h.hidden);
    std::vector<double> starts, ends;
    for (const Window& w : e.windows) {
        starts.push_back(w.start_sec);
        ends.push_back(w.end_sec);
    }
    // The aggregated view as `mess embed --view aggregated` and extraction compute it.
    std::vector<float> aggregated = pool_windows(e.segments, h.batch, h.layers * h.hidden);
    PyEmbedding out;
    out.sample_rate = sample_rate;
    out.segments = to_numpy(std::move(e.segments), {S, L, D});
    out.starts = to_numpy(std::move(starts), {S});
    out.ends = to_numpy(std::move(ends), {S});
    out.aggregated = to_numpy(std::move(aggregated), {L, D});
    if (frames) out.frames = to_numpy(std::move(e.states.values), {S, L, static_cast<py::ssize_t>(h.frames), D});
    return out;
}

PyEmbedding embed(const PyEncoder& self, const py::object& input, std::optional<int> sample_rate, bool frames, int threads,
                  const py::object& progress) {
    AudioSource source(input, sample_rate, "audio");
    const int rate = self.encoder->info().sampling_rate;
    const int n_threads = threads > 0 ? threads : self.threads;
    CallerProgress report(progress);
    Embedding e;
    {
        py::gil_scoped_release release;
        e = in_context(source.label(), [&] {
            const AudioView audio = source.load(rate);
            EmbedParams p;
            p.batch_size = self.batch_size;
            p.keep_frames = frames;
            p.windows.sample_rate = rate;
            p.on_progress = [&](std::int64_t done, std::int64_t total) { report(done, total); };
            return self.encoder->session()->embed(audio, p, n_threads);
        });
    }
    report.finish();
    return to_python(std::move(e), rate, frames);
}

constexpr const char* kOpenDoc = R"doc(Opens an encoder: "dsp" or "mfcc-chroma" (built in, no weights) or a Hugging Face MERT/HuBERT
checkpoint directory.

precision: "fp32" (default), "bf16" (MERT on an AVX-512 CPU or a GPU), "fp16" (MERT on device="cuda").
device: "cpu" or "cuda". threads: compute threads of each embed() call (0: MESS_WORKERS, default the CPU
cores). Raises FileNotFoundError for a name that is neither built in nor a directory, ValueError for a bad
precision or device, mess.Error for a damaged checkpoint.)doc";

constexpr const char* kEmbedDoc = R"doc(Embeds a recording: a file (any format MESS decodes; resampled to the encoder's rate) or a 1-D
float32 C-contiguous NumPy array of mono samples at `sample_rate` Hz (read in place; resampled when not at
the encoder's rate). 5-s windows with a 2.5-s hop, the last one aligned to the end.

Returns an Embedding: segments [S, L, D] (each window's mean over its frames), starts and ends [S]
(seconds), aggregated [L, D] (the mean over windows), and with frames=True the frames [S, L, T, D]. The
values equal `mess embed` and `mess extract` bit for bit. threads: this call's compute threads (0: the
encoder's). progress: a callable taking (windows done, windows in total), called on this thread as windows
finish (MERT: batches), always last with (total, total); an exception it raises abandons the call and
propagates. The GIL is released; Ctrl-C interrupts between windows (MERT: between batches of windows).
Raises TypeError/ValueError for an array that is not 1-D float32 C-contiguous or lacks its sample_rate,
FileNotFoundError for a missing file, mess.Error for audio that cannot be decoded or is too short.)doc";

}  // namespace

void bind_encoder(py::module_& m) {
    py::class_<PyEmbedding>(m, "Embedding", "A recording's embedding (Encoder.embed): NumPy arrays owning their memory. Immutable (the arrays are "
                                            "the caller's to change); safe to share between threads.")
        .def_readonly("segments", &PyEmbedding::segments, "[S, L, D] float32: each window's mean over its frames")
        .def_readonly("starts", &PyEmbedding::starts, "[S] float64: each window's true start, seconds")
        .def_readonly("ends", &PyEmbedding::ends, "[S] float64: each window's true end, seconds")
        .def_readonly("aggregated", &PyEmbedding::aggregated, "[L, D] float32: the mean of the windows (accumulated in double)")
        .def_readonly("frames", &PyEmbedding::frames, "[S, L, T, D] float32 when embed(frames=True), else None")
        .def_readonly("sample_rate", &PyEmbedding::sample_rate, "Hz the encoder read the audio at")
        .def("__repr__", [](const PyEmbedding& e) {
            return fmt::format("Embedding(windows={}, segments={})", e.segments.shape(0), std::string(py::str(e.segments.attr("shape"))));
        });

    py::class_<PyEncoder>(m, "Encoder",
                          "An audio encoder (mess.open_encoder). Immutable: one Encoder may embed from several Python threads at "
                          "once (each call uses its own scratch state).")
        .def_property_readonly("name", [](const PyEncoder& e) { return e.encoder->info().name; })
        .def_property_readonly("architecture", [](const PyEncoder& e) { return e.encoder->info().architecture; })
        .def_property_readonly("sample_rate", [](const PyEncoder& e) { return e.encoder->info().sampling_rate; }, "Hz")
        .def_property_readonly("layers", [](const PyEncoder& e) { return e.encoder->info().layers; }, "L")
        .def_property_readonly("dimension", [](const PyEncoder& e) { return e.encoder->info().hidden; }, "D")
        .def_property_readonly("frame_rate", [](const PyEncoder& e) { return e.encoder->info().frame_rate; }, "frames per second")
        .def_property_readonly("layer_names", [](const PyEncoder& e) { return e.encoder->info().layer_names; })
        .def_property_readonly("default_layer", [](const PyEncoder& e) { return e.encoder->info().default_layer; })
        .def_property_readonly("precision", [](const PyEncoder& e) { return e.encoder->info().precision; })
        .def_property_readonly("device", [](const PyEncoder& e) { return e.encoder->info().device; })
        .def_readonly("threads", &PyEncoder::threads)
        .def("info", [](const PyEncoder& e) { return json_to_python(e.encoder->info().to_json()); },
             "Everything `mess model info` shows, as a dict.")
        .def("embed", &embed, kEmbedDoc, py::arg("audio"), py::arg("sample_rate") = py::none(), py::kw_only(),
             py::arg("frames") = false, py::arg("threads") = 0, py::arg("progress") = py::none())
        .def("__repr__", [](const PyEncoder& e) {
            const EncoderInfo& i = e.encoder->info();
            return fmt::format("Encoder('{}', layers={}, dimension={}, precision='{}', device='{}')", i.name, i.layers, i.hidden,
                               i.precision, i.device);
        });

    m.def("open_encoder", &open, kOpenDoc, py::arg("name_or_dir"), py::arg("precision") = "fp32", py::arg("device") = "cpu",
          py::arg("threads") = 0);
}

}  // namespace mess::python
