// mess/util.hpp — errors, atomic files, configuration, logging, progress, half floats.
//
// The bottom layer of MESS: every other module includes this header, and it includes no other module.
//
//   try {
//       mess::AtomicFile out("data/x.npy");          // writes to a temp file beside the target
//       out.write(bytes.data(), bytes.size());
//       out.commit();                                  // fsync + rename: readers never see half a file
//   } catch (const mess::Error& e) {                   // e.kind() → CLI exit code, HTTP status
//       spdlog::error("{}", e.what());
//   }
//
//   mess::Config cfg = mess::resolve_config(flags);    // flags > MESS_* environment > defaults
//   fmt::print("{} (from {})\n", cfg.data_root.value, cfg.data_root.source);
//
// Thread safety: everything here is safe to use from several threads, except that one AtomicFile or
// Progress object belongs to one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace mess {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// What went wrong, from the caller's point of view. The CLI maps these to exit codes
// (usage 1, input 2, internal 3); the server to HTTP statuses (400 for usage and input, 500 for internal).
enum class ErrorKind { usage, input, internal };

// The one exception type MESS throws. The message reads as one line, outermost context first:
// "track.flac: decode: truncated file (read 1200 of 44100 frames)".
class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string message) : std::runtime_error(std::move(message)), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }
    // The same error with "context: " in front of the message.
    Error with_context(std::string_view context) const;

private:
    ErrorKind kind_;
};

template <class... Args>
[[noreturn]] void throw_input(fmt::format_string<Args...> f, Args&&... args) {
    throw Error(ErrorKind::input, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
[[noreturn]] void throw_usage(fmt::format_string<Args...> f, Args&&... args) {
    throw Error(ErrorKind::usage, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
[[noreturn]] void throw_internal(fmt::format_string<Args...> f, Args&&... args) {
    throw Error(ErrorKind::internal, fmt::format(f, std::forward<Args>(args)...));
}

// Runs fn(); any mess::Error escaping it gets `context` prepended; any other std::exception becomes
// an internal Error with the context. Use at each stage boundary (file, track, tensor name).
template <class F>
decltype(auto) with_context(std::string_view context, F&& fn) {
    try {
        return std::forward<F>(fn)();
    } catch (const Error& e) {
        throw e.with_context(context);
    } catch (const std::bad_alloc&) {
        throw Error(ErrorKind::internal, fmt::format("{}: out of memory", context));
    } catch (const std::exception& e) {
        throw Error(ErrorKind::internal, fmt::format("{}: {}", context, e.what()));
    }
}

// Exit code of the `mess` command for an error kind: usage 1, input 2, internal 3.
int exit_code(ErrorKind kind) noexcept;

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

// A file that appears at `path` complete or not at all. Bytes go to a temporary file in the same
// directory (so the final rename is atomic on POSIX); commit() flushes, fsyncs, renames over `path`
// and fsyncs the directory. Destroying an uncommitted AtomicFile removes the temporary file.
// Errors: Error(input) when the directory does not exist or is not writable, or a write fails.
class AtomicFile {
public:
    explicit AtomicFile(std::filesystem::path path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, std::size_t size);
    void commit();
    const std::filesystem::path& path() const noexcept { return path_; }
    // The temporary file the bytes are going to (for libraries that want a file name).
    const std::filesystem::path& temp_path() const noexcept { return temp_; }

private:
    std::filesystem::path path_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Whole-file helpers. read_file: Error(input) naming the file when missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// The parts of `text` between `separator`s, empty parts kept ("a,,b" → {"a", "", "b"}; "" → {""}).
std::vector<std::string> split(std::string_view text, char separator);
// ASCII lower case (bytes outside A–Z unchanged).
std::string to_lower(std::string text);
// Lower-case hexadecimal of raw bytes ("\x01\xab" → "01ab").
std::string hex_encode(std::string_view bytes);
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// A file's size and modification time as stat(2) reports them: what MESS records about the audio a cached
// result (features, proxy targets) was computed from, so that a changed file is noticed and recomputed.
// Nanoseconds, because a rewrite within one second is common in scripts; copies that keep times
// (cp -a, rsync -a) keep them to the nanosecond on Linux file systems.
struct FileStamp {
    std::uint64_t size_bytes = 0;
    std::int64_t mtime_ns = 0;  // modification time, nanoseconds since the Unix epoch
    bool operator==(const FileStamp&) const = default;
};
// Errors: Error(input) naming the file when it does not exist or cannot be stat'd.
FileStamp file_stamp(const std::filesystem::path& path);
// How `now` differs from `then`, for reports: "size 1200 → 1300 bytes", "modified 3.250 s later".
std::string describe_change(const FileStamp& then, const FileStamp& now);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

// A configured value and where it came from: "default", "flag --workers", "env MESS_WORKERS",
// "contract" (fixed by the file contracts in docs/ARCHITECTURE.md; not configurable).
template <class T>
struct Setting {
    T value{};
    std::string source = "default";
};

// The effective configuration of one `mess` invocation. Sample rate, window and overlap are
// contract constants: every stored embedding depends on them.
struct Config {
    Setting<std::filesystem::path> data_root{"data", "default"};  // MESS_DATA_ROOT
    Setting<std::string> device{"cpu", "default"};                // MESS_DEVICE: cpu | cuda
    Setting<int> workers{1, "default"};                           // MESS_WORKERS: ≥ 1 (default: cores)
    Setting<int> batch_size{4, "default"};                        // MESS_BATCH_SIZE: ≥ 1 windows (default 4 on the
                                                                  // CPU, 32 on cuda: a GPU needs wide batches)
    Setting<std::string> log_level{"info", "default"};            // MESS_LOG_LEVEL
    Setting<int> sample_rate{24000, "contract"};                  // Hz
    Setting<double> window_seconds{5.0, "contract"};              // s
    Setting<double> overlap{0.5, "contract"};                     // fraction of a window
};

// Values given on the command line, keyed by setting name ("data_root", "device", "workers",
// "batch_size", "log_level"); absent keys fall through to the environment, then defaults.
using ConfigFlags = std::map<std::string, std::string>;

// Resolves flags > MESS_* environment variables > defaults. `getenv` is injectable for tests.
// Errors: Error(usage) naming the flag or variable for an unparsable or out-of-range value.
Config resolve_config(const ConfigFlags& flags = {},
                      const char* (*getenv_fn)(const char*) = nullptr);

// ---------------------------------------------------------------------------------------------
// Logging and progress
// ---------------------------------------------------------------------------------------------

// Sets spdlog's level from "trace|debug|info|warn|error|off" and logs to stderr.
// Errors: Error(usage) for an unknown level.
void init_logging(std::string_view level);

// Progress of a long job: items done, rate, ETA. On a terminal it redraws one line on stderr;
// otherwise it logs a plain line at most every `plain_interval` and at the end.
class Progress {
public:
    Progress(std::string label, std::int64_t total,
             std::chrono::seconds plain_interval = std::chrono::seconds(10));
    ~Progress();
    void advance(std::int64_t items = 1);
    // Extra text shown after the counts, e.g. "1,024 windows, 2.9 windows/s".
    void set_note(std::string note) { note_ = std::move(note); }
    // For jobs whose size is known only once they start.
    void set_total(std::int64_t total) { total_ = total; }
    void finish();
    // "12/40 items, 3.1/s, ETA 9 s" for the current state.
    std::string summary() const;

private:
    void report(bool final_line);
    std::string label_, note_;
    std::int64_t total_, done_ = 0;
    std::chrono::steady_clock::time_point start_, last_report_;
    std::chrono::seconds plain_interval_;
    bool tty_, finished_ = false;
};

// ---------------------------------------------------------------------------------------------
// Reduced-precision floats (IEEE binary16 and bfloat16), round-to-nearest-even on conversion.
// ---------------------------------------------------------------------------------------------
float half_to_float(std::uint16_t h) noexcept;
std::uint16_t float_to_half(float f) noexcept;
float bf16_to_float(std::uint16_t b) noexcept;
std::uint16_t float_to_bf16(float f) noexcept;

// ---------------------------------------------------------------------------------------------
// Vector arithmetic shared by the feature store, probing and search.
// ---------------------------------------------------------------------------------------------
// L2-normalises v[dim] in place (sum of squares in double); a zero vector stays zero.
void l2_normalize(float* v, std::size_t dim) noexcept;
// The index of the first NaN or infinity in `v`, or v.size() when every value is finite.
std::size_t first_non_finite(std::span<const float> v) noexcept;
// out[c] = mean over r of x[r, c] for a row-major [rows, cols] matrix, accumulated in double (0 when rows = 0).
void mean_of_rows(const float* x, std::int64_t rows, std::int64_t cols, float* out);

}  // namespace mess
