#include <cstdio>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "mess/util.hpp"

namespace mess {

Progress::Progress(std::string label, std::int64_t total, std::chrono::seconds plain_interval)
    : label_(std::move(label)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_report_(start_),
      plain_interval_(plain_interval),
      tty_(::isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() {
    if (!finished_ && done_ > 0) finish();
}

void Progress::advance(std::int64_t items) {
    done_ += items;
    auto now = std::chrono::steady_clock::now();
    auto interval = tty_ ? std::chrono::milliseconds(200) : std::chrono::duration_cast<std::chrono::milliseconds>(plain_interval_);
    if (now - last_report_ >= interval) {
        last_report_ = now;
        report(false);
    }
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    report(true);
}

std::string Progress::summary() const {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
    std::string s = fmt::format("{}/{} {:.2f}/s", done_, total_, rate);
    if (rate > 0 && done_ < total_) s += fmt::format(", ETA {:.0f} s", static_cast<double>(total_ - done_) / rate);
    s += fmt::format(", elapsed {:.1f} s", secs);
    if (!note_.empty()) s += ", " + note_;
    return s;
}

void Progress::report(bool final_line) {
    if (tty_) {
        std::fprintf(stderr, "\r\033[K%s: %s%s", label_.c_str(), summary().c_str(), final_line ? "\n" : "");
        std::fflush(stderr);
    } else {
        spdlog::info("{}: {}", label_, summary());
    }
}

}  // namespace mess
