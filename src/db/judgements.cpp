#include "backends.hpp"

namespace mess::db {
namespace {

// One CSV field, quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    return "\"" + replace_all(text, "\"", "\"\"") + "\"";
}

void check_judgement(const Judgement& j) {
    if (j.anchor.empty() || j.a.empty() || j.b.empty())
        throw_usage("judgement: anchor, a and b must all be given (anchor '{}', a '{}', b '{}')", j.anchor, j.a, j.b);
    if (j.a == j.b) throw_usage("judgement: a and b are the same item '{}'", j.a);
    if (j.choice != "a" && j.choice != "b") throw_usage("judgement: choice must be 'a' or 'b', got '{}'", j.choice);
    if (!(j.response_ms >= 0)) throw_usage("judgement: response_ms must be ≥ 0, got {}", j.response_ms);
}

}  // namespace

std::int64_t CatalogDb::add_judgement(const Judgement& j) {
    check_judgement(j);
    std::int64_t id = 0;
    transaction([&] {
        const auto rows = exec("INSERT INTO judgements (anchor, a, b, choice, aspect, listener, response_ms, sampler, created_at)"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                               {j.anchor, j.a, j.b, j.choice, j.aspect, j.listener, num(j.response_ms), j.sampler, utc_now()});
        id = std::stoll(rows.at(0).at(0));
    });
    return id;
}

std::vector<Judgement> CatalogDb::judgements(const JudgementFilter& filter) {
    std::string sql = "SELECT id, anchor, a, b, choice, aspect, listener, response_ms, sampler, created_at FROM judgements"
                      " WHERE ($1 = '' OR aspect = $2) AND ($3 = '' OR listener = $3) ORDER BY id";
    if (filter.limit > 0) sql += " LIMIT " + num(filter.limit);
    const std::string aspect = filter.aspect == "overall" ? "" : filter.aspect;
    const std::string any = filter.aspect.empty() ? "" : "x";
    std::vector<Judgement> out;
    for (const Row& r : exec(sql, {any, aspect, filter.listener})) {
        out.push_back({std::stoll(r.at(0)), r.at(1), r.at(2), r.at(3), r.at(4), r.at(5), r.at(6), std::stod(r.at(7)),
                       r.at(8), r.at(9)});
    }
    return out;
}

std::string CatalogDb::judgements_csv(const JudgementFilter& filter, bool with_aspect) {
    std::string out = with_aspect ? "anchor,a,b,choice,aspect\n" : "anchor,a,b,choice\n";
    for (const Judgement& j : judgements(filter)) {
        out += csv_field(j.anchor) + "," + csv_field(j.a) + "," + csv_field(j.b) + "," + j.choice;
        if (with_aspect) out += "," + csv_field(j.aspect);
        out += "\n";
    }
    return out;
}

void CatalogDb::export_judgements(const std::filesystem::path& path, const JudgementFilter& filter, bool with_aspect) {
    write_file_atomic(path, judgements_csv(filter, with_aspect));
}

}  // namespace mess::db
