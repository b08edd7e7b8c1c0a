// The catalog suite runs every test against both backends: SQLite (a file in a temporary folder) and a
// real PostgreSQL 15 server that this executable starts once (initdb in a temporary folder, a private
// Unix socket, password authentication) and stops at exit.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "mess/db.hpp"
#include "support/support.hpp"

namespace mess::db {

// The PostgreSQL server of this test run.
class PostgresServer {
public:
    static PostgresServer& get();                 // starts it on first use; Error when it cannot
    std::string url(const std::string& password = "") const;  // the test database, right password by default
    std::string socket_dir() const { return (dir_.path() / "socket").string(); }
    void reset_database() const;                  // drops every table (a fresh schema)
    ~PostgresServer();

private:
    PostgresServer();
    test::TempDir dir_;
    std::string bindir_, run_as_;
    int port_ = 0;
};

class CatalogSuite : public ::testing::TestWithParam<std::string> {
protected:
    // The URL of an empty catalog of the parameter's backend (the same one on each call in a test).
    std::string fresh_url();
    std::unique_ptr<CatalogDb> open_fresh(const OpenOptions& options = {});
    std::unique_ptr<CatalogDb> reopen(const OpenOptions& options = {}) { return CatalogDb::open(url_, options); }
    bool postgres() const { return GetParam() == "postgresql"; }

    test::TempDir dir_;
    std::string url_;
};

#define INSTANTIATE_CATALOG_SUITE(suite)                                                              \
    INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values(std::string("sqlite"), std::string("postgresql")), \
                             [](const auto& param_info) { return param_info.param; })

}  // namespace mess::db
