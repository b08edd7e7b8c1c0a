// Opening the CUDA plugin (cuda_backend.hpp) on first use.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "cuda_backend.hpp"

namespace mess::model_detail {

CudaRuntime* cuda_runtime(std::string* why) {
    static std::once_flag once;
    static CudaRuntime* runtime = nullptr;
    static std::string error;
    std::call_once(once, [] {
#ifndef MESS_WITH_CUDA
        error = "this build of MESS has no CUDA backend (CMake did not find the CUDA toolkit)";
#else
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("MESS_CUDA_PLUGIN"); env && *env) candidates.emplace_back(env);
        std::error_code ec;
        const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
        if (!ec) candidates.push_back((exe.parent_path() / "libmess_cuda.so").string());
        candidates.emplace_back(MESS_CUDA_PLUGIN_BUILD_PATH);
        candidates.emplace_back("libmess_cuda.so");
        for (const auto& path : candidates) {
            void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!handle) {
                const char* e = ::dlerror();
                if (path.find('/') == std::string::npos || std::filesystem::exists(path, ec))  // a real failure, not a miss
                    error += (error.empty() ? "" : "; ") + std::string(e ? e : path);
                continue;
            }
            using Entry = CudaRuntime* (*)();
            auto entry = reinterpret_cast<Entry>(::dlsym(handle, "mess_cuda_runtime_v2"));
            if (!entry) {
                error += (error.empty() ? "" : "; ") + path + ": not a MESS CUDA plugin of this version (mess_cuda_runtime_v2 missing; rebuild it with this mess)";
                continue;
            }
            runtime = entry();
            error.clear();
            return;
        }
        if (error.empty()) error = "the CUDA plugin libmess_cuda.so was not found (set MESS_CUDA_PLUGIN)";
#endif
    });
    if (!runtime && why) *why = error;
    return runtime;
}

}  // namespace mess::model_detail
