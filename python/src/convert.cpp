// Errors, arrays, paths, audio inputs and interruption shared by the bindings (convert.hpp).
#include "convert.hpp"

#include <cerrno>

#include <nlohmann/json.hpp>

#include "mess/util.hpp"

namespace mess::python {

namespace {

PyObject* g_error = nullptr;       // mess.Error
PyObject* g_unknown_id = nullptr;  // mess.UnknownIdError

void raise_missing_path(const MissingPath& e) {
    py::object err = py::reinterpret_borrow<py::object>(PyExc_FileNotFoundError)(ENOENT, e.what(), e.path.string());
    PyErr_SetObject(PyExc_FileNotFoundError, err.ptr());
}

void translate(std::exception_ptr p) {
    try {
        if (p) std::rethrow_exception(p);
    } catch (const MissingPath& e) {
        raise_missing_path(e);
    } catch (const UnknownId& e) {
        PyErr_SetString(g_unknown_id, e.what());
    } catch (const Error& e) {
        PyErr_SetString(e.kind() == ErrorKind::usage ? PyExc_ValueError : g_error, e.what());
    }
}

}  // namespace

void register_errors(py::module_& m) {
    g_error = PyErr_NewExceptionWithDoc("mess.Error",
                                        "A MESS error: a bad or inconsistent input file, silent or unusable audio, an index that does "
                                        "not load. The message is MESS's own, outermost context first.",
                                        PyExc_Exception, nullptr);
    py::tuple bases = py::make_tuple(py::handle(g_error), py::handle(PyExc_LookupError));
    g_unknown_id = PyErr_NewExceptionWithDoc("mess.UnknownIdError",
                                             "A track or clip id the index or store does not hold (the message names the closest "
                                             "known ones). Both a mess.Error and a LookupError.",
                                             bases.ptr(), nullptr);
    if (!g_error || !g_unknown_id) throw py::error_already_set();
    m.add_object("Error", py::handle(g_error));
    m.add_object("UnknownIdError", py::handle(g_unknown_id));
    py::register_local_exception_translator(translate);
}

py::array npy_to_numpy(NpyArray&& a) {
    std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
    const py::dtype dtype(std::string(dtype_descr(a.dtype)));
    auto* owner = new std::vector<std::byte>(std::move(a.data));
    py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<std::byte>*>(p); });
    return py::array(dtype, std::move(shape), owner->data(), free_when_done);
}

py::object json_to_python(const nlohmann::json& value) {
    static const auto* loads = new py::object(py::module_::import("json").attr("loads"));  // kept past finalisation
    return (*loads)(value.dump());
}

bool is_path_like(const py::handle& obj) {
    static const auto* path_like = new py::object(py::module_::import("os").attr("PathLike"));
    return py::isinstance<py::str>(obj) || py::isinstance(obj, *path_like);
}

std::filesystem::path to_path(const py::handle& obj, const char* what) {
    if (!is_path_like(obj))
        throw py::type_error(fmt::format("{} must be a str or os.PathLike, not {}", what, std::string(py::str(obj.get_type().attr("__name__")))));
    static const auto* fspath = new py::object(py::module_::import("os").attr("fspath"));
    return std::filesystem::path((*fspath)(obj).cast<std::string>());
}

std::filesystem::path existing_path(const py::handle& obj, const char* what) {
    std::filesystem::path p = to_path(obj, what);
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) throw MissingPath(fmt::format("{} not found", what), p);
    return p;
}

std::span<const float> float32_array(const py::handle& obj, const char* what, int ndim) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(fmt::format("{} must be a numpy.ndarray of float32, not {}", what,
                                         std::string(py::str(obj.get_type().attr("__name__")))));
    const auto a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<float>>(obj))
        throw py::type_error(fmt::format("{} must be float32, not {} (convert it with .astype(numpy.float32))", what,
                                         std::string(py::str(a.dtype()))));
    const bool rank_ok = ndim > 0 ? a.ndim() == ndim : (a.ndim() == 1 || a.ndim() == 2);
    if (!rank_ok)
        throw py::value_error(fmt::format("{} must have {} dimension(s), not {}", what, ndim > 0 ? std::to_string(ndim) : "1 or 2", a.ndim()));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(fmt::format("{} must be C-contiguous (numpy.ascontiguousarray makes it so)", what));
    if (a.size() == 0) throw py::value_error(fmt::format("{} is empty", what));
    return {static_cast<const float*>(a.data()), static_cast<std::size_t>(a.size())};
}

AudioSource::AudioSource(const py::object& obj, std::optional<int> sample_rate, const char* what) {
    if (is_path_like(obj)) {
        if (sample_rate) throw py::value_error("sample_rate applies to arrays; a file is decoded at its own rate");
        path_ = existing_path(obj, what);
        return;
    }
    samples_ = float32_array(obj, what, 1);
    if (!sample_rate) throw py::value_error(fmt::format("{} is an array: give its sample_rate (Hz)", what));
    if (*sample_rate <= 0) throw py::value_error(fmt::format("sample_rate must be positive, not {}", *sample_rate));
    array_ = obj;
    sample_rate_ = *sample_rate;
}

AudioView AudioSource::load(std::optional<int> rate) {
    if (is_file()) {
        owned_ = load_audio(path_, rate.value_or(kModelSampleRate));
        return owned_;
    }
    if (!rate || sample_rate_ == *rate) return {samples_, sample_rate_};
    owned_.samples = resample(samples_, sample_rate_, *rate);
    owned_.sample_rate = *rate;
    return owned_;
}

CallerProgress::CallerProgress(py::object progress) : caller_(std::this_thread::get_id()), progress_(std::move(progress)) {
    if (!progress_.is_none() && !PyCallable_Check(progress_.ptr()))
        throw py::type_error("progress must be a callable taking (done, total), or None");
}

void CallerProgress::operator()(std::int64_t done, std::int64_t total) {
    done_.store(done);
    total_.store(total);
    if (std::this_thread::get_id() != caller_) return;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    const std::int64_t now = done_.load();  // another thread may have moved it on
    if (progress_.is_none() || now == reported_) return;
    reported_ = now;
    progress_(now, total_.load());
}

void CallerProgress::finish() {
    if (progress_.is_none() || total_.load() == 0 || reported_ == done_.load()) return;
    reported_ = done_.load();
    progress_(reported_, total_.load());
}

int resolve_threads(int threads) {
    if (threads < 0) throw Error(ErrorKind::usage, fmt::format("threads must be ≥ 0 (0: the default), not {}", threads));
    return threads > 0 ? threads : resolve_config().workers.value;
}

}  // namespace mess::python
