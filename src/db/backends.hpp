// Internal to mess_db: the two backends and the schema's migrations.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mess/db.hpp"

namespace mess::db {

std::unique_ptr<CatalogDb> open_sqlite(const std::string& url, const OpenOptions& options);
std::unique_ptr<CatalogDb> open_postgres(const std::string& url, const OpenOptions& options);

// One migration: statements in portable DDL ({id}, {double}, {bigint} are rewritten by each backend's
// dialect), then the statements of one backend only.
struct Migration {
    int version;
    const char* name;
    std::vector<const char*> common, sqlite_only, postgres_only;
};
const std::vector<Migration>& migrations();

// UTC now as ISO-8601 with milliseconds: 2026-12-01T14:22:33.123Z.
std::string utc_now();
// `text` with every `from` replaced by `to`.
std::string replace_all(std::string text, const std::string& from, const std::string& to);
// Portable DDL → a backend's: {id} (an auto-numbered primary key), {double}, {bigint} become its types.
std::string portable_ddl(const std::string& sql, const char* id, const char* dbl, const char* bigint);
// Parameter list helpers: the text of an integer or a double (full precision).
std::string num(std::int64_t value);
std::string num(double value);

}  // namespace mess::db
