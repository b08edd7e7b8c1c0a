// What every part of the Python module shares: errors, arrays in and out, paths, audio inputs, interruption.
//
// Arrays in: float32, C-contiguous, of the rank asked for, read in place (never cast: anything else is a
// TypeError or ValueError saying what to do). Arrays out: each one takes over the C++ buffer it was computed
// in (moved, not copied) and frees it when the array dies; never a view of MESS's internals.
// Errors: mess::Error → ValueError (usage), mess.UnknownIdError (unknown ids), FileNotFoundError (missing
// paths, checked before the call), mess.Error (bad input files, inconsistent data; internal errors).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "mess/audio.hpp"
#include "mess/npy.hpp"
#include "mess/util.hpp"

namespace mess::python {
namespace py = pybind11;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// A path that does not exist (FileNotFoundError with errno ENOENT, the message and the path).
struct MissingPath : Error {
    MissingPath(std::string message, std::filesystem::path p) : Error(ErrorKind::input, std::move(message)), path(std::move(p)) {}
    std::filesystem::path path;
};
// An id the index or store does not hold (mess.UnknownIdError: a mess.Error and a LookupError).
struct UnknownId : Error {
    explicit UnknownId(std::string message) : Error(ErrorKind::input, std::move(message)) {}
};
// Runs fn() and turns an Error(input) it throws into UnknownId (for lookups of ids the caller gave).
template <class F>
decltype(auto) as_unknown_id(F&& fn) {
    try {
        return std::forward<F>(fn)();
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::input) throw;
        throw UnknownId(e.what());
    }
}

// Runs fn(); a mess::Error escaping it gets "context: " in front of its message, its kind kept. Anything else
// (a KeyboardInterrupt on its way out, MemoryError) passes unchanged, unlike mess::with_context.
template <class F>
decltype(auto) in_context(const std::string& context, F&& fn) {
    try {
        return std::forward<F>(fn)();
    } catch (const MissingPath&) {
        throw;
    } catch (const UnknownId&) {
        throw;
    } catch (const Error& e) {
        throw e.with_context(context);
    }
}

// Creates mess.Error and mess.UnknownIdError in `m` and translates the C++ errors above.
void register_errors(py::module_& m);

// ---------------------------------------------------------------------------------------------
// Arrays out (owning their buffer) and JSON
// ---------------------------------------------------------------------------------------------

// The vector moved into a NumPy array of `shape` (the sizes must agree: Error(internal) otherwise).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
    py::ssize_t count = 1;
    for (py::ssize_t n : shape) count *= n;
    if (static_cast<std::size_t>(count) != values.size())
        throw Error(ErrorKind::internal, fmt::format("{} values do not fill the array's shape", values.size()));
    auto* owner = new std::vector<T>(std::move(values));
    py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(std::move(shape), owner->data(), free_when_done);
}
// Any MESS array (every .npy dtype; float16 stays float16).
py::array npy_to_numpy(NpyArray&& array);
// nlohmann JSON → Python dicts, lists, str, int, float, bool, None.
py::object json_to_python(const nlohmann::json& value);

// ---------------------------------------------------------------------------------------------
// Arrays in, paths, audio
// ---------------------------------------------------------------------------------------------

// A float32, C-contiguous array of rank `ndim` (0: 1 or 2), read in place; `what` names it in errors.
// Errors: TypeError (not a NumPy array, or not float32), ValueError (rank, not C-contiguous, empty).
std::span<const float> float32_array(const py::handle& obj, const char* what, int ndim = 1);
// A str or os.PathLike as a path. Errors: TypeError.
std::filesystem::path to_path(const py::handle& obj, const char* what);
// The same, checked to exist. Errors: MissingPath.
std::filesystem::path existing_path(const py::handle& obj, const char* what);
bool is_path_like(const py::handle& obj);

// The audio a call reads: a file (decoded and resampled when loaded) or a float32 array at `sample_rate`
// (read in place when it is at the rate wanted, else resampled). parse with the GIL held; load() may run
// without it. Errors: TypeError/ValueError for the wrong kind of object or a missing/extra sample_rate.
class AudioSource {
public:
    AudioSource(const py::object& obj, std::optional<int> sample_rate, const char* what);
    // Samples at `rate`, valid while this object lives; without a rate, a file at load_audio's default (24 kHz)
    // and an array as it is. Errors: as load_audio and resample.
    AudioView load(std::optional<int> rate);
    bool is_file() const { return !path_.empty(); }
    const std::filesystem::path& path() const { return path_; }
    // "<file>" or "array", for error context.
    std::string label() const { return is_file() ? path_.string() : "array"; }

private:
    std::filesystem::path path_;
    py::object array_;  // keeps the caller's array alive
    std::span<const float> samples_;
    int sample_rate_ = 0;
    Audio owned_;       // a decoded file or resampled samples
};

// ---------------------------------------------------------------------------------------------
// Interruption (Ctrl-C) of long calls
// ---------------------------------------------------------------------------------------------

// The progress callback of a long call made with the GIL released. On the thread that made the call it takes
// the GIL, checks for signals, so that Ctrl-C raises KeyboardInterrupt from the call (throwing
// py::error_already_set out of it), and passes (done, total) to the caller's `progress` callable when there is
// one and the count moved; on other threads it only records the count. finish() reports a last count that
// no call on the caller's thread delivered (call it with the GIL held, after the long call returned).
class CallerProgress {
public:
    explicit CallerProgress(py::object progress = py::none());
    void operator()(std::int64_t done, std::int64_t total);
    void finish();

private:
    std::thread::id caller_;
    py::object progress_;
    std::atomic<std::int64_t> done_{0}, total_{0};
    std::int64_t reported_ = -1;  // the count last passed to progress_ (caller's thread only)
};

// Threads for a call: `threads` when > 0, else the configured default (MESS_WORKERS, default: the cores).
int resolve_threads(int threads);

}  // namespace mess::python
