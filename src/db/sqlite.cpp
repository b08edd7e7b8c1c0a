#include <sqlite3.h>

#include <chrono>
#include <map>
#include <thread>

#include "backends.hpp"

namespace mess::db {
namespace {

// "$12" → "?12": the catalog writes PostgreSQL's numbered parameters; SQLite numbers them "?NNN".
std::string sqlite_params(const std::string& sql) {
    std::string out = sql;
    for (std::size_t i = 0; i + 1 < out.size(); ++i)
        if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
    return out;
}

class SqliteDb final : public CatalogDb {
public:
    SqliteDb(const std::string& url, const std::filesystem::path& file) : CatalogDb(url), file_(file) {
        if (file.has_parent_path()) {
            std::error_code ec;
            std::filesystem::create_directories(file.parent_path(), ec);
        }
        const int rc = sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                       nullptr);
        if (rc != SQLITE_OK) {
            const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
            sqlite3_close(db_);
            db_ = nullptr;
            throw_input("catalog {}: cannot open: {}", url, why);
        }
        sqlite3_busy_timeout(db_, kBusyTimeoutMs);
        enable_wal();
        exec("PRAGMA synchronous=NORMAL");
        exec("PRAGMA foreign_keys=ON");
    }
    ~SqliteDb() override {
        for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
        sqlite3_close(db_);
    }

    std::string backend() const override { return "sqlite"; }

    std::vector<Row> run_sql(const std::string& sql, const std::vector<std::optional<std::string>>& params) override {
        sqlite3_stmt* stmt = prepare(sql);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        for (std::size_t i = 0; i < params.size(); ++i) {
            const int at = static_cast<int>(i + 1);
            const int rc = params[i] ? sqlite3_bind_text(stmt, at, params[i]->data(), static_cast<int>(params[i]->size()),
                                                         SQLITE_TRANSIENT)
                                     : sqlite3_bind_null(stmt, at);
            if (rc != SQLITE_OK) fail(sql, rc);
        }
        std::vector<Row> rows;
        while (true) {
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) {
                sqlite3_reset(stmt);
                fail(sql, rc);
            }
            Row row;
            const int n = sqlite3_column_count(stmt);
            for (int c = 0; c < n; ++c) {
                const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
                if (text == nullptr) row.values.emplace_back(std::nullopt);
                else row.values.emplace_back(std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, c))));
            }
            rows.push_back(std::move(row));
        }
        sqlite3_reset(stmt);
        return rows;
    }

protected:
    void begin_write() override { exec("BEGIN IMMEDIATE"); }
    bool retryable(const Error& e) const override {
        const std::string what = e.what();
        return what.find("database is locked") != std::string::npos || what.find("database is busy") != std::string::npos;
    }
    std::string dialect(const std::string& sql) const override {
        return portable_ddl(sql, "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL", "INTEGER");
    }
    std::string json_text(const std::string& column, const std::string& key_param) const override {
        return "json_extract(" + column + ", '$.\"' || " + key_param + " || '\"')";
    }
    // The FTS5 table drives (CROSS JOIN keeps it the outer loop) and yields its rowids, the tracks' ids, in order.
    TextScan text_scan(const std::string& alias, const std::string& pattern_param, const std::string& words_param) const override {
        const std::string index = words_param.empty() ? "track_text" : "track_words";
        return {index + " CROSS JOIN tracks " + alias + " ON " + alias + ".id = " + index + ".rowid",
                words_param.empty() ? " AND track_text.haystack LIKE " + pattern_param
                                    : " AND track_words MATCH " + words_param + " AND " + alias + ".haystack LIKE " + pattern_param,
                index + ".rowid"};
    }

private:
    static constexpr int kBusyTimeoutMs = 30000;

    // Switching a new file to WAL takes an exclusive lock for which SQLite does not call the busy handler
    // when another process opens the same new file at the same moment (two commands started together):
    // retried every 50 ms for up to the busy timeout. The mode is persistent, so this happens once per file.
    void enable_wal() {
        for (int waited = 0;; waited += 50) {
            try {
                exec("PRAGMA journal_mode=WAL");
                return;
            } catch (const Error& e) {
                if (waited >= kBusyTimeoutMs || !retryable(e)) throw;
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    }

    sqlite3_stmt* prepare(const std::string& sql) {
        if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
        sqlite3_stmt* stmt = nullptr;
        const std::string text = sqlite_params(sql);
        const int rc = sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &stmt, nullptr);
        if (rc != SQLITE_OK) fail(sql, rc);
        statements_[sql] = stmt;
        return stmt;
    }
    [[noreturn]] void fail(const std::string& sql, int rc) const {
        const std::string first = sql.substr(0, sql.find(' ', 20));
        throw_input("catalog {}: {} ({}): {}", url(), sqlite3_errmsg(db_), sqlite3_errstr(rc), first);
    }

    std::filesystem::path file_;
    sqlite3* db_ = nullptr;
    std::map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

std::unique_ptr<CatalogDb> open_sqlite(const std::string& url, const OpenOptions& options) {
    std::string file = url.substr(std::string("sqlite:").size());
    if (file.starts_with("//")) file = file.substr(2);  // sqlite://relative or sqlite:///absolute
    if (file.empty()) throw_usage("catalog '{}': no file after sqlite:", url);
    (void)options;
    return std::make_unique<SqliteDb>(url, file);
}

}  // namespace mess::db
