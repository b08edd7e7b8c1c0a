#include "catalog_backends.hpp"

#include <unistd.h>

#include <fstream>

namespace mess::db {
namespace {

// PostgreSQL's server programs: `pg_config --bindir` (libpq-dev), else Debian's newest versioned folder.
std::string find_bindir() {
    const test::CommandResult r = test::run_command("pg_config --bindir 2>/dev/null");
    std::string dir = r.out;
    while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
    if (r.exit_code == 0 && std::filesystem::exists(std::filesystem::path(dir) / "initdb")) return dir;
    for (const char* v : {"17", "16", "15"}) {
        const std::string d = std::string("/usr/lib/postgresql/") + v + "/bin";
        if (std::filesystem::exists(d + "/initdb")) return d;
    }
    throw_input("PostgreSQL server programs not found (pg_config --bindir, /usr/lib/postgresql/*/bin): "
                "scripts/setup installs postgresql");
}

void must(const std::string& what, const std::string& command) {
    const test::CommandResult r = test::run_command(command + " 2>&1");
    if (r.exit_code != 0) throw_input("{} failed ({}): {}", what, r.exit_code, r.out);
}

}  // namespace

PostgresServer& PostgresServer::get() {
    static PostgresServer server;
    return server;
}

// initdb refuses to run as root: as root, the server runs as the `postgres` account of Debian's package.
PostgresServer::PostgresServer() : bindir_(find_bindir()), port_(40000 + static_cast<int>(getpid() % 20000)) {
    if (geteuid() == 0) run_as_ = "runuser -u postgres -- ";
    std::filesystem::create_directories(dir_.path() / "socket");
    std::ofstream(dir_.path() / "pw") << "secret\n";
    if (!run_as_.empty()) must("chown", "chown -R postgres " + test::quote(dir_.path().string()));
    const std::string data = test::quote((dir_.path() / "data").string());
    must("initdb", run_as_ + test::quote(bindir_ + "/initdb") + " -D " + data + " -U mess --auth=scram-sha-256 --pwfile=" +
                       test::quote((dir_.path() / "pw").string()) + " --no-sync -E UTF8 --locale=C.UTF-8");
    must("pg_ctl start", run_as_ + test::quote(bindir_ + "/pg_ctl") + " -D " + data + " -w -s -l " +
                             test::quote((dir_.path() / "server.log").string()) + " -o " +
                             test::quote("-c listen_addresses='' -c fsync=off -c full_page_writes=off -p " +
                                         std::to_string(port_) + " -k " + socket_dir()) + " start");
}

PostgresServer::~PostgresServer() {
    test::run_command(run_as_ + test::quote(bindir_ + "/pg_ctl") + " -D " + test::quote((dir_.path() / "data").string()) +
                      " -m immediate -s stop >/dev/null 2>&1");
}

std::string PostgresServer::url(const std::string& password) const {
    return "postgresql://mess:" + (password.empty() ? std::string("secret") : password) + "@/postgres?host=" + socket_dir() +
           "&port=" + std::to_string(port_);
}

void PostgresServer::reset_database() const {
    auto db = CatalogDb::open(url(), {.migrate = false});
    db->exec("DROP SCHEMA public CASCADE");
    db->exec("CREATE SCHEMA public");
}

std::string CatalogSuite::fresh_url() {
    if (!url_.empty()) return url_;
    if (postgres()) {
        PostgresServer::get().reset_database();
        url_ = PostgresServer::get().url();
    } else {
        url_ = "sqlite:" + (dir_.path() / "catalog.sqlite").string();
    }
    return url_;
}

std::unique_ptr<CatalogDb> CatalogSuite::open_fresh(const OpenOptions& options) {
    fresh_url();
    return CatalogDb::open(url_, options);
}

}  // namespace mess::db
