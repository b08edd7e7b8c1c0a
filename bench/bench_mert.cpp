// MERT inference benchmark: MESS vs the PyTorch reference (bench/mert_reference.py) on the same
// full-size random MERT-v1-95M checkpoint, 5-s windows, in one run. Each implementation runs in its own
// worker process so peak RSS is its own. Prints seconds per window, the ratio, GFLOP/s and peak RSS.
//
//   build/bench/bench_mert                       # batch 1 and 4, 2 threads
//   build/bench/bench_mert --batches 1 --threads 1 --no-reference
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "mess/model.hpp"
#include "mess/util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Multiply-adds ×2 of one window, from the architecture (conv stack, projection, positional conv, layers).
double flops_per_window(const mess::ModelConfig& c, std::int64_t samples) {
    double f = 0, n = static_cast<double>(samples), in = 1;
    for (std::size_t i = 0; i < c.conv_dim.size(); ++i) {
        n = std::floor((n - c.conv_kernel[i]) / c.conv_stride[i]) + 1;
        f += 2.0 * n * c.conv_dim[i] * in * c.conv_kernel[i];
        in = c.conv_dim[i];
    }
    const double T = n, H = c.hidden_size, F = c.intermediate_size;
    f += 2.0 * T * in * H;                                                      // projection
    f += 2.0 * T * H * (H / c.num_conv_pos_embedding_groups) * c.num_conv_pos_embeddings;  // positional conv
    f += c.num_hidden_layers * (2.0 * T * H * 4 * H + 2.0 * 2 * T * T * H + 2.0 * 2 * T * H * F);
    return f;
}

// The machine's practical fp32 matrix-product rate: a 2048³ sgemm through the same oneDNN kernel.
double sgemm_gflops(int threads) {
    omp_set_num_threads(threads);
    const std::int64_t n = 2048;
    std::vector<float> a(static_cast<std::size_t>(n * n), 0.5f), b(a), c(a);
    dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
    auto t0 = std::chrono::steady_clock::now();
    const int reps = 5;
    for (int r = 0; r < reps; ++r) dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    return 2.0 * n * n * n / sec / 1e9;
}

int worker(const fs::path& model_dir, int batch, int reps, int threads, double seconds, const std::string& precision,
           const std::string& device, const std::string& outputs) {
    mess::LoadParams lp;
    lp.precision = mess::parse_precision(precision);
    lp.device = mess::parse_device(device);
    auto model = mess::Model::load(model_dir, lp);
    mess::ModelState state(model);
    const auto samples = static_cast<std::int64_t>(seconds * model->config().sampling_rate);
    std::vector<float> x(static_cast<std::size_t>(batch * samples));
    std::mt19937 rng(0);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    for (auto& v : x) v = nd(rng);
    mess::EncodeParams p;
    p.threads = threads;
    p.frames = outputs != "means";
    p.frame_means = outputs != "frames";
    state.encode(x, batch, samples, p);  // warm-up: primitive creation, page faults
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) state.encode(x, batch, samples, p);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / (reps * batch);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    json j = {{"impl", "mess"}, {"precision", precision}, {"device", device}, {"batch", batch}, {"threads", threads}, {"sec_per_window", sec},
              {"gflops", flops_per_window(model->config(), samples) / sec / 1e9},
              {"peak_rss_mb", static_cast<double>(ru.ru_maxrss) / 1024.0}};
    std::puts(j.dump().c_str());
    return 0;
}

json run_json(const std::string& cmd) {
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw std::runtime_error("cannot run: " + cmd);
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = ::pclose(p);
    auto pos = out.rfind('{');
    if (status != 0 || pos == std::string::npos) throw std::runtime_error("failed (" + std::to_string(status) + "): " + cmd + "\n" + out);
    return json::parse(out.substr(pos));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"MERT inference benchmark: MESS vs the PyTorch reference on a random full-size checkpoint"};
    std::string model_dir, preset = "mert-v1-95m", reference = MESS_REFERENCE_SCRIPT, python = "/usr/bin/python3";
    std::string batches = "1,4", precisions = "fp32,bf16", worker_precision = "fp32", device = "cpu", reference_dtype = "fp32", outputs;
    int threads = 2, reps = 3, worker_batch = 0;
    double seconds = 5.0;
    bool no_reference = false;
    app.add_option("--model", model_dir, "Model directory (default: generate a random --preset checkpoint under the build dir)");
    app.add_option("--preset", preset, "Architecture of the generated checkpoint")->capture_default_str();
    app.add_option("--batches", batches, "Comma-separated batch sizes")->capture_default_str();
    app.add_option("--threads", threads, "Threads for both implementations")->capture_default_str();
    app.add_option("--reps", reps, "Timed repetitions after one warm-up")->capture_default_str();
    app.add_option("--seconds", seconds, "Window length")->capture_default_str();
    app.add_flag("--no-reference", no_reference, "Skip the PyTorch reference");
    app.add_option("--precisions", precisions, "Comma-separated MESS precisions (fp32, bf16), each against the same reference run")
        ->capture_default_str();
    app.add_option("--worker", worker_batch, "(internal) run one MESS measurement at this batch size");
    app.add_option("--worker-precision", worker_precision, "(internal) its precision");
    app.add_option("--device", device, "cpu | cuda (both implementations; e.g. --device cuda --batches 1,16,64 --precisions fp32,bf16,fp16)")
        ->capture_default_str();
    app.add_option("--reference-dtype", reference_dtype, "The reference's dtype (default: fp32 on the CPU, fp16 on cuda)");
    app.add_option("--outputs", outputs,
                   "What MESS hands back to the host: frames (every state, [B, L+1, T, H]) | means (each window's frame means, as "
                   "extract does without raw) | both. Default: frames on the CPU; means on cuda, where the reference's states stay on the GPU")
        ->check(CLI::IsMember({"frames", "means", "both"}));
    CLI11_PARSE(app, argc, argv);

    try {
        if (model_dir.empty()) {
            fs::path dir = fs::path(MESS_BENCH_CACHE) / (preset + "-random");
            if (!fs::exists(dir / "model.safetensors")) {
                std::fprintf(stderr, "generating a random %s checkpoint in %s ...\n", preset.c_str(), dir.c_str());
                mess::RandomCheckpointParams rp;
                rp.seed = 1;
                mess::write_random_checkpoint(mess::preset_config_json(preset), dir, rp);
            }
            model_dir = dir.string();
        }
        if (outputs.empty()) outputs = device == "cuda" ? "means" : "frames";
        if (worker_batch > 0) return worker(model_dir, worker_batch, reps, threads, seconds, worker_precision, device, outputs);
        if (device == "cuda" && reference_dtype == "fp32" && app.count("--reference-dtype") == 0) reference_dtype = "fp16";

        fmt::print("MERT benchmark: {} ({}), {:.1f}-s windows, device {}, {} thread(s), {} timed rep(s) after a warm-up\n", model_dir,
                   preset, seconds, device, threads, reps);
        fmt::print("reproduce: {} --device {} --batches {} --precisions {} --threads {} --reps {} --outputs {}\n", argv[0], device, batches,
                   precisions, threads, reps, outputs);
        fmt::print("reference: PyTorch eager, {}; MESS returns {} to the host\n\n", reference_dtype, outputs);
        fmt::print("{:>5}  {:>9}  {:>14}  {:>14}  {:>11}  {:>11}  {:>7}  {:>8}  {:>11}  {:>12}\n", "batch", "precision", "mess s/window",
                   "torch s/window", "mess win/s", "torch win/s", "speedup", "GFLOP/s", "mess RSS MB", "torch RSS MB");
        for (const std::string& item : mess::split(batches, ',')) {
            int b = std::stoi(item);
            json t;
            if (!no_reference)
                t = run_json(fmt::format("OMP_WAIT_POLICY=passive {} '{}' --bench '{}' --batch {} --threads {} --reps {} --seconds {} "
                                         "--device {} --dtype {}",
                                         python, reference, model_dir, b, threads, reps, seconds, device, reference_dtype));
            for (const std::string& precision : mess::split(precisions, ',')) {
                json m = run_json(fmt::format("{} --model '{}' --worker {} --worker-precision {} --device {} --threads {} --reps {} --seconds {} "
                                              "--outputs {}",
                                              argv[0], model_dir, b, precision, device, threads, reps, seconds, outputs));
                double ms = m["sec_per_window"], ts = no_reference ? 0.0 : t["sec_per_window"].get<double>();
                fmt::print("{:>5}  {:>9}  {:>14.4f}  {:>14}  {:>11.1f}  {:>11}  {:>7}  {:>8.1f}  {:>11.0f}  {:>12}\n", b, precision, ms,
                           no_reference ? "-" : fmt::format("{:.4f}", ts), 1.0 / ms, no_reference ? "-" : fmt::format("{:.1f}", 1.0 / ts),
                           no_reference ? "-" : fmt::format("{:.2f}x", ts / ms), m["gflops"].get<double>(), m["peak_rss_mb"].get<double>(),
                           no_reference ? "-" : fmt::format("{:.0f}", t["peak_rss_mb"].get<double>()));
                std::fflush(stdout);
            }
        }
        if (device != "cpu") return 0;
        const double peak = sgemm_gflops(threads);
        fmt::print("\nfp32 sgemm 2048³ on this machine, same threads: {:.1f} GFLOP/s (mess's GFLOP/s above is model FLOPs /"
                   " time)\n", peak);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_mert: %s\n", e.what());
        return 1;
    }
    return 0;
}
