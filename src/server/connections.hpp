// Internal to the server module: the connection layer under cpp-httplib (included by server.cpp only).
//
// httplib 0.11 gives each connection a pool thread for its whole life: an idle keep-alive client, a
// half-open socket or a client sending its headers one byte a second holds a thread for up to the keep-alive
// plus the read timeout, and 128 of them stop the service. Here httplib only accepts (an inline task
// queue hands each socket to `Connections::adopt`) and parses requests (`process_request`, one request per
// call). Everything else is this file's:
//
//   - One epoll thread owns every connection that is between requests or still sending its headers. It
//     reads the request line and headers into the connection's buffer without a thread per connection,
//     and answers at once, then closes, when they cannot be served: 414 (request line over
//     max_request_line), 431 (headers over max_header_bytes), 408 (headers not complete within
//     header_timeout of their first byte), 400 (a Content-Length that is not a plain number, both
//     Content-Length and Transfer-Encoding, a transfer coding other than chunked), 413 (a Content-Length
//     over max_body_bytes, before any of the body is read). An invalid Range header is removed (it is
//     ignored, RFC 9110 §14.2), so that httplib does not answer 416.
//   - A connection whose headers are complete is queued for the worker threads, which run httplib's
//     request processing on a stream that reads the buffered headers first, then the body from the
//     socket: a body must keep coming (body_idle_timeout between reads) and be complete within
//     body_timeout, and one over max_body_bytes (a chunked one too) is cut off and answered 413.
//   - Workers take queued requests first come, first served, but at most max_client_requests of one client
//     address at a time; /health, /health/* and /metrics skip that cap and have reserved_workers threads
//     of their own, so that a probe is answered while every worker is busy.
//   - At most max_connections connections, max_client_connections of one address: a new connection over
//     either limit closes the one that has waited longest for a request (idle or sending headers). Idle
//     connections close after idle_timeout.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace mess::server {

struct ConnectionLimits {
    int workers = 128, reserved_workers = 2;
    std::size_t max_connections = 10000, max_client_connections = 256, max_client_requests = 32;
    std::size_t max_request_line = 8192, max_header_bytes = 32768, max_body_bytes = 16u << 20;
    double idle_timeout = 30, header_timeout = 10, body_idle_timeout = 5, body_timeout = 60, write_timeout = 10;
};

using Clock = std::chrono::steady_clock;

inline Clock::duration seconds(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

struct Conn {
    // accepted: not yet parked (counted as open, not yet as waiting).
    enum class State { accepted, idle, header, queued, busy, linger };
    int fd = -1;
    std::string ip;
    std::uint64_t seq = 0;      // accept order (the oldest waiting connection is closed first)
    State state = State::accepted;
    std::string buf;            // bytes read and not yet consumed: buf[pos...]
    std::size_t pos = 0;
    Clock::time_point since, deadline;  // since: entered the state; deadline: idle, header or linger end
    bool health = false;        // the queued request is a probe (/health, /metrics)
    bool over_limit = false, timed_out = false;  // set by the stream while a worker reads the body
    bool registered = false;    // in the epoll set
    std::size_t header_bytes = 0;  // of the queued request (request line, headers, blank line)
};

// Set on a worker thread while its request's body went over max_body_bytes or stopped coming: the error
// handler then turns httplib's 400 into 413 or 408.
inline bool& body_over_limit() {
    thread_local bool v = false;
    return v;
}
inline bool& body_timed_out() {
    thread_local bool v = false;
    return v;
}
// Set by the error handler for an answer after which the connection cannot be read on (400, 408, 413).
inline bool& close_after_answer() {
    thread_local bool v = false;
    return v;
}

inline const char* reason_phrase(int status) {
    switch (status) {
        case 400: return "Bad Request";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

// What the worker hands httplib: buffered bytes first, then the socket, within the body limits.
class ConnStream final : public httplib::Stream {
public:
    ConnStream(Conn& c, const ConnectionLimits& l, std::size_t header_bytes, const std::atomic<bool>& stopping)
        : c_(c), l_(l), header_bytes_(header_bytes), stopping_(stopping), deadline_(Clock::now() + seconds(l.body_timeout)) {}

    bool is_readable() const override {
        if (c_.pos < c_.buf.size()) return true;
        pollfd p{c_.fd, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }
    bool is_writable() const override { return wait(POLLOUT, Clock::now() + seconds(l_.write_timeout)); }

    ssize_t read(char* ptr, std::size_t size) override {
        if (size == 0) return 0;
        if (c_.pos < c_.buf.size()) {
            const std::size_t n = std::min(size, c_.buf.size() - c_.pos);
            std::memcpy(ptr, c_.buf.data() + c_.pos, n);
            c_.pos += n;
            if (c_.pos == c_.buf.size()) c_.buf.clear(), c_.pos = 0;
            return count(static_cast<ssize_t>(n));
        }
        for (;;) {
            if (stopping_.load()) return -1;
            const auto now = Clock::now();
            if (now >= deadline_) return c_.timed_out = body_timed_out() = true, -1;
            if (!wait(POLLIN, std::min(deadline_, now + seconds(l_.body_idle_timeout)))) {
                if (!stopping_.load()) c_.timed_out = body_timed_out() = true;
                return -1;
            }
            const ssize_t n = ::recv(c_.fd, ptr, size, MSG_DONTWAIT);
            if (n >= 0) return count(n);
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        }
    }
    ssize_t write(const char* ptr, std::size_t size) override {
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::send(c_.fd, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                done += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
            if (stopping_.load() || !wait(POLLOUT, Clock::now() + seconds(l_.write_timeout))) return -1;
        }
        return static_cast<ssize_t>(size);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
    void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
    // httplib (built without CPPHTTPLIB_USE_POLL) answers 500 for a descriptor ≥ FD_SETSIZE, which it
    // would select() on; this stream never lets it.
    socket_t socket() const override { return c_.fd < FD_SETSIZE ? c_.fd : 0; }

    static void address(int fd, bool remote, std::string& ip, int& port) {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        const int r = remote ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        ip.clear();
        port = 0;
        if (r != 0) return;
        char text[INET6_ADDRSTRLEN] = {};
        if (a.ss_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
            ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
            port = ntohs(in->sin_port);
        } else if (a.ss_family == AF_INET6) {
            const auto* in = reinterpret_cast<const sockaddr_in6*>(&a);
            ::inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof text);
            port = ntohs(in->sin6_port);
        }
        ip = text;
    }

private:
    void address(bool remote, std::string& ip, int& port) const { address(c_.fd, remote, ip, port); }
    ssize_t count(ssize_t n) {
        consumed_ += static_cast<std::size_t>(n);
        if (consumed_ > header_bytes_ + l_.max_body_bytes) return c_.over_limit = body_over_limit() = true, -1;
        return n;
    }
    bool wait(short events, Clock::time_point until) const {
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
            if (left <= 0 || stopping_.load()) return false;
            pollfd p{c_.fd, events, 0};
            const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 200)));  // 200 ms: notice a stop
            if (r > 0) return true;
            if (r < 0 && errno != EINTR) return false;
        }
    }

    Conn& c_;
    const ConnectionLimits& l_;
    std::size_t header_bytes_, consumed_ = 0;
    const std::atomic<bool>& stopping_;
    Clock::time_point deadline_;
};

// httplib's accept loop with an inline task queue: each accepted socket goes straight to `adopt`.
class InlineTaskQueue final : public httplib::TaskQueue {
public:
    void enqueue(std::function<void()> fn) override { fn(); }
    void shutdown() override {}
};

// The header block of a request, as far as the epoll thread checks it.
struct HeaderCheck {
    int status = 0;              // 0: dispatch; else answer this and close
    std::string message;
    std::size_t header_bytes = 0;  // request line, headers and the blank line
    bool health = false;
};

// RFC 9110 §14.1.1 ranges-specifier of the bytes unit: "bytes=" 1#( first-pos "-" [ last-pos ] | "-" suffix ).
inline bool valid_byte_ranges(std::string_view v) {
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    };
    v = trim(v);
    if (v.size() < 6 || !std::equal(v.begin(), v.begin() + 6, "bytes=", [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }))
        return false;
    v.remove_prefix(6);
    auto digits = [](std::string_view s) { return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string_view::npos; };
    std::size_t count = 0;
    while (true) {
        const auto comma = v.find(',');
        const std::string_view spec = trim(v.substr(0, comma));
        if (!spec.empty()) {
            const auto dash = spec.find('-');
            if (dash == std::string_view::npos) return false;
            const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
            if (a.empty()) {
                if (!digits(b)) return false;
            } else {
                if (!digits(a) || (!b.empty() && !digits(b))) return false;
                if (!b.empty() && std::stoull(std::string(b)) < std::stoull(std::string(a))) return false;
            }
            ++count;
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
    return count > 0;
}

inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// Checks buf[pos...] once its header block may be complete; removes an invalid Range line from buf.
// Returns nullopt-like status -1 when more bytes are needed.
// What the header fields say about the body and the Range header.
struct HeaderFacts {
    bool has_length = false, chunked = false, has_coding = false;
    std::string length;
    std::size_t bad_range_at = std::string::npos, bad_range_len = 0;  // an invalid Range field, to drop
};

// 414 for an over-long request line, 431 for over-long headers, -1 while the header block is incomplete;
// 0 otherwise, with r.header_bytes set.
inline void check_header_sizes(std::string_view v, std::size_t line_end, const ConnectionLimits& l, HeaderCheck& r) {
    if ((line_end == std::string_view::npos && v.size() > l.max_request_line) || (line_end != std::string_view::npos && line_end > l.max_request_line)) {
        r.status = 414;
        r.message = fmt::format("request line over the limit of {} bytes (send long queries as fewer or shorter parameters)", l.max_request_line);
        return;
    }
    const auto end = v.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        r.status = v.size() >= l.max_header_bytes ? 431 : -1;
        if (r.status == 431) r.message = fmt::format("request headers over the limit of {} bytes", l.max_header_bytes);
        return;
    }
    r.header_bytes = end + 4;
    if (r.header_bytes > l.max_header_bytes) {
        r.status = 431;
        r.message = fmt::format("request headers over the limit of {} bytes", l.max_header_bytes);
    }
}

inline std::string_view trim_blanks(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    return value;
}

// Reads Content-Length, Transfer-Encoding and Range from the header lines in [first, end); 400 for a bad length.
inline HeaderFacts scan_header_fields(std::string_view v, std::size_t first, std::size_t end, std::size_t pos, HeaderCheck& r) {
    HeaderFacts f;
    for (std::size_t at = first; at < end;) {
        const std::size_t eol = v.find("\r\n", at);
        const std::string_view h = v.substr(at, eol - at);
        const auto colon = h.find(':');
        if (colon != std::string_view::npos) {
            const std::string_view name = h.substr(0, colon), value = trim_blanks(h.substr(colon + 1));
            if (iequals(name, "Content-Length")) {
                if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string_view::npos ||
                    (f.has_length && f.length != value)) {
                    r.status = 400;
                    r.message = fmt::format("invalid Content-Length '{}'", std::string(value.substr(0, 40)));
                    return f;
                }
                f.has_length = true;
                f.length = value;
            } else if (iequals(name, "Transfer-Encoding")) {
                f.has_coding = true;
                f.chunked = iequals(value, "chunked");
            } else if (iequals(name, "Range") && !valid_byte_ranges(value)) {
                f.bad_range_at = pos + at;
                f.bad_range_len = eol + 2 - at;
            }
        }
        at = eol + 2;
    }
    return f;
}

// The body framing's verdict: 400 for mixed or unknown codings, 413 for a declared size over the limit.
inline void check_body_framing(const HeaderFacts& f, const ConnectionLimits& l, HeaderCheck& r) {
    if (f.has_coding && (!f.chunked || f.has_length)) {
        r.status = 400;
        r.message = f.has_length ? "both Content-Length and Transfer-Encoding" : "only the chunked transfer coding is supported";
    } else if (f.has_length && std::stoull(f.length) > l.max_body_bytes) {
        r.status = 413;
        r.message = fmt::format("request body of {} bytes is over the limit of {} bytes", f.length, l.max_body_bytes);
    }
}

inline HeaderCheck check_header_block(std::string& buf, std::size_t pos, const ConnectionLimits& l) {
    HeaderCheck r;
    const std::string_view v(buf.data() + pos, buf.size() - pos);
    const auto line_end = v.find("\r\n");
    check_header_sizes(v, line_end, l, r);
    if (r.status != 0) return r;
    const std::string_view line = v.substr(0, line_end);
    const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) {
        r.status = 400;
        r.message = "malformed request line";
        return r;
    }
    const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view path = target.substr(0, target.find('?'));
    r.health = (method == "GET" || method == "HEAD") && (path == "/health" || path.starts_with("/health/") || path == "/metrics");
    const HeaderFacts f = scan_header_fields(v, line_end + 2, r.header_bytes - 2, pos, r);
    if (r.status != 0) return r;
    check_body_framing(f, l, r);
    if (r.status != 0) return r;
    if (f.bad_range_at != std::string::npos) {  // ignored, as RFC 9110 allows: the whole representation is sent
        buf.erase(f.bad_range_at, f.bad_range_len);
        r.header_bytes -= f.bad_range_len;
    }
    return r;
}

class Connections {
public:
    // Runs one request of a connection (httplib's process_request); false or `closed`: close it.
    using Handle = std::function<bool(httplib::Stream&, bool close, bool& closed)>;
    // An answer given without a worker (414, 431, 408, 400, 413, 503): counted in /metrics.
    using OnEarlyAnswer = std::function<void(int status)>;

    struct Stats {
        std::atomic<std::uint64_t> accepted{0}, evicted{0}, idle_closed{0}, header_timeouts{0}, body_timeouts{0}, refused{0};
        std::atomic<std::int64_t> open{0}, waiting{0}, queued{0}, busy{0};
    };

    Connections(ConnectionLimits limits, Handle handle, OnEarlyAnswer early) : l_(limits), handle_(std::move(handle)), early_(std::move(early)) {}
    ~Connections() { stop(); }

    const ConnectionLimits& limits() const { return l_; }
    const Stats& stats() const { return stats_; }

    void start() {
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.ptr = nullptr;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &e);
        reactor_ = std::thread([this] { run(); });
        for (int i = 0; i < l_.workers + l_.reserved_workers; ++i) workers_.emplace_back([this, reserved = i >= l_.workers] { work(reserved); });
    }

    // From httplib's accept loop.
    void adopt(int fd) {
        {
            std::lock_guard lock(mx_);
            if (stopping_.load()) {
                ::close(fd);
                return;
            }
            incoming_.push_back(fd);
        }
        poke();
    }

    void stop() {
        if (stopping_.exchange(true)) return;
        poke();
        {
            std::lock_guard lock(qx_);
            qcv_.notify_all();
            rcv_.notify_all();
        }
        for (auto& t : workers_) t.join();
        if (reactor_.joinable()) reactor_.join();
        workers_.clear();
        for (auto& [fd, c] : conns_) ::close(fd);
        conns_.clear();
        for (int fd : incoming_) ::close(fd);
        if (ep_ >= 0) ::close(ep_);
        if (wake_ >= 0) ::close(wake_);
        ep_ = wake_ = -1;
    }

private:
    void poke() {
        const std::uint64_t one = 1;
        if (wake_ >= 0) [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    }

    // ---- the epoll thread -----------------------------------------------------------------------

    void run() {
        std::vector<epoll_event> events(256);
        auto last_sweep = Clock::now();
        while (!stopping_.load()) {
            const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 50);
            for (int i = 0; i < n; ++i) {
                if (!events[static_cast<std::size_t>(i)].data.ptr) {
                    std::uint64_t v;
                    while (::read(wake_, &v, sizeof v) > 0) {}
                    continue;
                }
                on_readable(*static_cast<Conn*>(events[static_cast<std::size_t>(i)].data.ptr));
            }
            std::vector<int> fresh;
            std::vector<std::pair<Conn*, bool>> back;
            {
                std::lock_guard lock(mx_);
                fresh.swap(incoming_);
                back.swap(returned_);
            }
            for (int fd : fresh) add(fd);
            for (auto [c, keep] : back) {
                stats_.busy.fetch_sub(1);
                if (keep && !stopping_.load()) park(*c);
                else linger(*c);
            }
            if (const auto now = Clock::now(); now - last_sweep >= std::chrono::milliseconds(100)) {
                sweep(now);
                last_sweep = now;
            }
        }
    }

    void add(int fd) {
        stats_.accepted.fetch_add(1);
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        c->seq = next_seq_++;
        int port = 0;
        ConnStream::address(fd, true, c->ip, port);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (const auto it = per_ip_.find(c->ip); it != per_ip_.end() && it->second >= l_.max_client_connections && !evict(&c->ip))
            return refuse(std::move(c), "too many connections from your address");
        if (conns_.size() >= l_.max_connections && !evict(nullptr)) return refuse(std::move(c), "too many connections");
        ++per_ip_[c->ip];
        Conn& ref = *c;
        conns_.emplace(fd, std::move(c));
        stats_.open.fetch_add(1);
        park(ref);
    }

    void refuse(std::unique_ptr<Conn> c, const char* why) {
        stats_.refused.fetch_add(1);
        early_(503);
        send_now(c->fd, 503, why);
        ::close(c->fd);
    }

    // Closes the connection that has waited longest for its request (of `ip`, or of any address).
    bool evict(const std::string* ip) {
        Conn* oldest = nullptr;
        for (auto& [fd, c] : conns_)
            if ((c->state == Conn::State::idle || c->state == Conn::State::header || c->state == Conn::State::linger) && (!ip || c->ip == *ip) &&
                (!oldest || c->seq < oldest->seq))
                oldest = c.get();
        if (!oldest) return false;
        stats_.evicted.fetch_add(1);
        close(*oldest);
        return true;
    }

    void watch(Conn& c, bool on) {
        if (on == c.registered) return;
        epoll_event e{};
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.ptr = &c;
        ::epoll_ctl(ep_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, c.fd, &e);
        c.registered = on;
    }

    void set_state(Conn& c, Conn::State s) {
        auto waiting = [](Conn::State x) { return x == Conn::State::idle || x == Conn::State::header; };
        if (waiting(c.state) && !waiting(s)) stats_.waiting.fetch_sub(1);
        if (!waiting(c.state) && waiting(s)) stats_.waiting.fetch_add(1);
        c.state = s;
        c.since = Clock::now();
    }

    // Between requests: wait for the next one (or look at what is already buffered: pipelining).
    void park(Conn& c) {
        c.health = c.over_limit = c.timed_out = false;
        if (c.pos > 0) c.buf.erase(0, c.pos), c.pos = 0;
        set_state(c, c.buf.empty() ? Conn::State::idle : Conn::State::header);
        c.deadline = c.since + seconds(c.buf.empty() ? l_.idle_timeout : l_.header_timeout);
        watch(c, true);
        if (!c.buf.empty()) examine(c);
    }

    void on_readable(Conn& c) {
        if (c.state == Conn::State::linger) {
            char sink[16384];
            ssize_t n;
            while ((n = ::recv(c.fd, sink, sizeof sink, MSG_DONTWAIT)) > 0) {}
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) close(c);
            return;
        }
        if (c.state != Conn::State::idle && c.state != Conn::State::header) return;
        const std::size_t cap = l_.max_header_bytes + 1;
        bool eof = false;
        while (c.buf.size() < cap) {
            char tmp[16384];
            const ssize_t n = ::recv(c.fd, tmp, std::min(sizeof tmp, cap - c.buf.size()), MSG_DONTWAIT);
            if (n > 0) {
                c.buf.append(tmp, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) eof = true;
            break;
        }
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        while (c.buf.size() >= 2 && c.buf.compare(0, 2, "\r\n") == 0) c.buf.erase(0, 2);
        if (c.state == Conn::State::idle && !c.buf.empty()) {
            set_state(c, Conn::State::header);
            c.deadline = c.since + seconds(l_.header_timeout);
        }
        if (eof && c.buf.empty()) return close(c);
        if (!c.buf.empty()) examine(c);
        if (eof && c.state == Conn::State::header) close(c);  // a partial request, then EOF
    }

    void examine(Conn& c) {
        const HeaderCheck h = check_header_block(c.buf, c.pos, l_);
        if (h.status < 0) return;
        if (h.status > 0) return reject(c, h.status, h.message);
        c.health = h.health;
        c.header_bytes = h.header_bytes;
        watch(c, false);
        set_state(c, Conn::State::queued);
        stats_.queued.fetch_add(1);
        {
            std::lock_guard lock(qx_);
            queue_.push_back(&c);
        }
        if (c.health) rcv_.notify_one();
        qcv_.notify_one();
    }

    void reject(Conn& c, int status, const std::string& message) {
        if (status == 408) stats_.header_timeouts.fetch_add(1);
        early_(status);
        send_now(c.fd, status, message);
        c.buf.clear();
        c.pos = 0;
        linger(c);
    }

    // A short answer on a socket the epoll thread owns (never blocks; a client that does not read loses it).
    static void send_now(int fd, int status, const std::string& message) {
        const std::string body = nlohmann::json{{"error", message}, {"status", status}}.dump();
        const std::string head = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", status,
                                             reason_phrase(status), body.size());
        const std::string all = head + body;
        [[maybe_unused]] auto n = ::send(fd, all.data(), all.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }

    // Closes after the client has read the answer: no more writes, then discard what it still sends for
    // a second (closing with unread bytes would reset the connection and could destroy the answer).
    void linger(Conn& c) {
        ::shutdown(c.fd, SHUT_WR);
        set_state(c, Conn::State::linger);
        c.deadline = c.since + std::chrono::seconds(1);
        watch(c, true);
    }

    void close(Conn& c) {
        watch(c, false);
        set_state(c, Conn::State::linger);  // leaves the waiting count
        const int fd = c.fd;
        if (auto it = per_ip_.find(c.ip); it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
        ::close(fd);
        conns_.erase(fd);
        stats_.open.fetch_sub(1);
    }

    void sweep(Clock::time_point now) {
        std::vector<Conn*> due;
        for (auto& [fd, c] : conns_)
            if ((c->state == Conn::State::idle || c->state == Conn::State::header || c->state == Conn::State::linger) && now >= c->deadline)
                due.push_back(c.get());
        for (Conn* c : due) {
            if (c->state == Conn::State::idle) {
                stats_.idle_closed.fetch_add(1);
                close(*c);
            } else if (c->state == Conn::State::header) {
                reject(*c, 408, fmt::format("request headers not complete within {} s", l_.header_timeout));
            } else {
                close(*c);
            }
        }
    }

    // ---- workers --------------------------------------------------------------------------------

    Conn* take(bool reserved) {
        std::unique_lock lock(qx_);
        auto& cv = reserved ? rcv_ : qcv_;
        for (;;) {
            if (stopping_.load()) return nullptr;
            for (auto it = queue_.begin(); it != queue_.end(); ++it)
                if ((*it)->health) {
                    Conn* c = *it;
                    queue_.erase(it);
                    return c;
                }
            if (!reserved)
                for (auto it = queue_.begin(); it != queue_.end(); ++it)
                    if (active_[(*it)->ip] < l_.max_client_requests) {
                        Conn* c = *it;
                        ++active_[c->ip];
                        queue_.erase(it);
                        return c;
                    }
            cv.wait(lock);
        }
    }

    void work(bool reserved) {
        while (Conn* c = take(reserved)) {
            stats_.queued.fetch_sub(1);
            stats_.busy.fetch_add(1);
            body_over_limit() = body_timed_out() = close_after_answer() = false;
            ConnStream stream(*c, l_, c->header_bytes, stopping_);
            bool closed = false, ok = false;
            try {
                ok = handle_(stream, stopping_.load(), closed);
            } catch (...) {
                ok = false;
            }
            if (c->timed_out) stats_.body_timeouts.fetch_add(1);
            {
                std::lock_guard lock(qx_);
                if (!c->health)
                    if (auto it = active_.find(c->ip); it != active_.end() && --it->second == 0) active_.erase(it);
            }
            qcv_.notify_one();
            {
                std::lock_guard lock(mx_);
                returned_.emplace_back(c, ok && !closed && !c->over_limit && !c->timed_out && !close_after_answer());
            }
            poke();
        }
    }

    ConnectionLimits l_;
    Handle handle_;
    OnEarlyAnswer early_;
    Stats stats_;
    std::atomic<bool> stopping_{false};
    int ep_ = -1, wake_ = -1;
    std::thread reactor_;
    std::vector<std::thread> workers_;

    // The epoll thread's.
    std::unordered_map<int, std::unique_ptr<Conn>> conns_;
    std::unordered_map<std::string, std::size_t> per_ip_;
    std::uint64_t next_seq_ = 0;

    std::mutex mx_;  // incoming_, returned_
    std::vector<int> incoming_;
    std::vector<std::pair<Conn*, bool>> returned_;

    std::mutex qx_;  // queue_, active_
    std::condition_variable qcv_, rcv_;
    std::deque<Conn*> queue_;
    std::unordered_map<std::string, std::size_t> active_;
};

}  // namespace mess::server
