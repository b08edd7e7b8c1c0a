// Shared by the libFuzzer harnesses: the error policy and temporary files for path-only readers.
//
// Policy: a parser of outside input may reject it only with mess::Error of kind input or usage. Any other
// exception escaping it (std::bad_alloc, nlohmann::json::exception, std::out_of_range, ...), an Error of
// kind internal (with_context turns stray std::exceptions into those), a crash or a sanitizer report is a
// finding: the harness aborts so libFuzzer keeps the input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "mess/util.hpp"

namespace mess_fuzz {

[[noreturn]] inline void finding(const char* what, const char* detail) {
    std::fprintf(stderr, "\n== MESS fuzz finding: %s: %s\n", what, detail);
    std::fflush(stderr);
    std::abort();
}

// Runs fn(); expected rejections (Error of kind input or usage) are swallowed, anything else aborts.
template <class F>
void guarded(F&& fn) {
    try {
        fn();
    } catch (const mess::Error& e) {
        if (e.kind() == mess::ErrorKind::internal) finding("mess::Error(internal) for outside input", e.what());
    } catch (const std::exception& e) {
        finding(typeid(e).name(), e.what());
    } catch (...) {
        finding("non-std exception", "?");
    }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// One scratch directory per process (under $TMPDIR, /dev/shm when it exists: files stay in memory).
inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        namespace fs = std::filesystem;
        fs::path base = std::getenv("TMPDIR") ? fs::path(std::getenv("TMPDIR"))
                        : fs::is_directory("/dev/shm")   ? fs::path("/dev/shm")
                                                         : fs::temp_directory_path();
        fs::path d = base / ("mess-fuzz-" + std::to_string(::getpid()));
        fs::create_directories(d);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_dir(), ec);
        });
        return d;
    }();
    return dir;
}

// Writes bytes to <scratch>/<name> (replacing it) and returns the path.
inline std::filesystem::path write_scratch(const std::string& name, std::string_view bytes) {
    const std::filesystem::path p = scratch_dir() / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) finding("harness", "cannot write the scratch file");
    return p;
}

// Logging off: some readers warn through spdlog, which would flood the fuzzer's output.
inline int quiet() {
    spdlog::set_level(spdlog::level::off);
    return 0;
}

}  // namespace mess_fuzz
