// Background servers for tests (s3rver, helper scripts): a TCP port check, a free port, and a process
// started through /bin/sh in its own process group, killed with its group on destruction.
#pragma once

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

namespace mess::test {

inline bool port_open(int port) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

// A port the kernel has just handed out on loopback (bound to port 0, then released): unlike a scan from a
// fixed start, it never lands on the local port of one of the machine's own outgoing connections.
inline int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    ::close(s);
    if (!ok) throw std::runtime_error("no free loopback port");
    return ntohs(a.sin_port);
}

// `command_with_port` with {} replaced by a free port; waits up to 10 s for the port to open.
struct BackgroundServer {
    int port = -1;
    pid_t pid = -1;
    // A server that exits before its port opens (the port was taken in between) is started again on
    // another port, three times at most.
    explicit BackgroundServer(const std::string& command_with_port) {
        for (int attempt = 0; attempt < 3 && !start(command_with_port); ++attempt) stop();
    }
    BackgroundServer(const BackgroundServer&) = delete;
    BackgroundServer& operator=(const BackgroundServer&) = delete;
    ~BackgroundServer() { stop(); }

private:
    bool start(const std::string& command_with_port) {
        port = free_port();
        const std::string cmd = fmt::format(fmt::runtime(command_with_port), port);
        pid = ::fork();
        if (pid == 0) {
            ::setpgid(0, 0);
            ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
            std::_Exit(127);
        }
        for (int i = 0; i < 200; ++i) {
            if (port_open(port)) return true;
            if (::waitpid(pid, nullptr, WNOHANG) == pid) return false;  // exited: try another port
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return true;  // still starting after 10 s: the caller's port check reports it
    }
    void stop() {
        if (pid > 0) ::kill(-pid, SIGKILL), ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, WNOHANG);
        pid = -1;
    }
};

// s3rver (tools/s3rver, installed by scripts/setup) over `dir` with bucket "mess", and the AWS_*
// environment pointing at it.
inline const std::string& s3rver_path() {
    static const std::string p = std::string(MESS_SOURCE_DIR) + "/tools/s3rver/node_modules/.bin/s3rver";
    return p;
}
inline std::unique_ptr<BackgroundServer> start_s3rver(const std::string& dir) {
    auto s3 = std::make_unique<BackgroundServer>(s3rver_path() + " --silent --address 127.0.0.1 --port {} --directory '" + dir +
                                                 "' --configure-bucket mess");
    ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    ::setenv("AWS_REGION", "us-east-1", 1);
    ::setenv("AWS_ENDPOINT_URL", fmt::format("http://127.0.0.1:{}", s3->port).c_str(), 1);
    return s3;
}

}  // namespace mess::test
