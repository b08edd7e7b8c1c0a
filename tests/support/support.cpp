#include "support/support.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <stdexcept>

#include <gtest/gtest.h>
#include <sndfile.h>
#include <sys/wait.h>

namespace mess::test {

std::string error_message(const std::function<void()>& fn, ErrorKind kind) {
    try {
        fn();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no mess::Error was thrown";
    return {};
}

std::vector<float> tone(double freq_hz, double seconds, int rate, float amplitude) {
    return chord({freq_hz}, seconds, rate, amplitude);
}

std::vector<float> chord(const std::vector<double>& freqs, double seconds, int rate, float amplitude) {
    auto n = static_cast<std::size_t>(std::llround(seconds * rate));
    std::vector<float> x(n, 0.0f);
    for (double f : freqs)
        for (std::size_t i = 0; i < n; ++i)
            x[i] += static_cast<float>(amplitude / static_cast<double>(freqs.size()) *
                                       std::sin(2.0 * std::numbers::pi * f * static_cast<double>(i) / rate));
    return x;
}

std::vector<float> noise(double seconds, int rate, std::uint32_t seed, float amplitude) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-amplitude, amplitude);
    std::vector<float> x(static_cast<std::size_t>(std::llround(seconds * rate)));
    for (auto& v : x) v = u(rng);
    return x;
}

std::vector<float> silence(double seconds, int rate) {
    return std::vector<float>(static_cast<std::size_t>(std::llround(seconds * rate)), 0.0f);
}

std::vector<float> interleave(const std::vector<std::vector<float>>& channels) {
    std::vector<float> out(channels.size() * channels.at(0).size());
    for (std::size_t i = 0; i < channels[0].size(); ++i)
        for (std::size_t c = 0; c < channels.size(); ++c) out[i * channels.size() + c] = channels[c][i];
    return out;
}

double zero_crossing_freq(const std::vector<float>& x, int rate) {
    std::size_t crossings = 0;
    for (std::size_t i = 1; i < x.size(); ++i)
        if ((x[i - 1] < 0.0f) != (x[i] < 0.0f)) ++crossings;
    return static_cast<double>(crossings) / 2.0 / (static_cast<double>(x.size()) / rate);
}

double rms(const std::vector<float>& x) {
    double s = 0;
    for (float v : x) s += static_cast<double>(v) * v;
    return x.empty() ? 0.0 : std::sqrt(s / static_cast<double>(x.size()));
}

std::vector<float> render_notes(const std::vector<Note>& notes, double seconds, int rate, const Timbre& timbre, float peak) {
    const auto n = static_cast<std::size_t>(std::llround(seconds * rate));
    std::vector<double> x(n, 0.0);
    const double attack = 0.005, release = 0.03;
    for (const Note& note : notes) {
        const double f0 = 440.0 * std::pow(2.0, (note.pitch - 69.0) / 12.0);
        const auto first = static_cast<std::size_t>(std::llround(note.start * rate));
        const auto last = std::min(n, static_cast<std::size_t>(std::llround((note.start + note.length + release) * rate)));
        for (int k = 1; k <= timbre.partials; ++k) {
            const double f = f0 * k;
            if (f >= 0.45 * rate) break;
            const double a = note.velocity / std::pow(static_cast<double>(k), timbre.rolloff);
            for (std::size_t i = first; i < last; ++i) {
                const double t = static_cast<double>(i - first) / rate;
                double env = t < attack ? t / attack : std::exp(-timbre.decay * (std::min(t, note.length) - attack));
                if (t > note.length) env *= 1.0 - (t - note.length) / release;
                x[i] += a * env * std::sin(2.0 * std::numbers::pi * f * t);
            }
        }
    }
    double top = 0;
    for (double v : x) top = std::max(top, std::abs(v));
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(top > 0 ? x[i] * peak / top : 0.0);
    return out;
}

void write_sound(const std::filesystem::path& path, const std::vector<float>& interleaved, int channels, int rate,
                 int format) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!f) throw std::runtime_error("write_sound " + path.string() + ": " + sf_strerror(nullptr));
    sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
    sf_count_t done = sf_writef_float(f, interleaved.data(), frames);
    sf_close(f);
    if (done != frames) throw std::runtime_error("write_sound " + path.string() + ": short write");
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mess-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

CommandResult run_command(const std::string& command) {
    CommandResult r;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string quote(const std::string& arg) {
    std::string q = "'";
    for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

}  // namespace mess::test
