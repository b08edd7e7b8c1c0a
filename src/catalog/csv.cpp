#include "mess/catalog.hpp"

namespace mess {

int CsvTable::column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return static_cast<int>(i);
    return -1;
}

CsvTable parse_csv(const std::string& text, const std::string& name) {
    std::vector<std::vector<std::string>> records;
    std::vector<std::string> record;
    std::string field;
    bool quoted = false, field_started = false;
    std::size_t line = 1;
    auto end_field = [&] {
        record.push_back(std::move(field));
        field.clear();
        field_started = false;
    };
    auto end_record = [&] {
        end_field();
        if (!(record.size() == 1 && record[0].empty())) records.push_back(std::move(record));  // skip blank lines
        record.clear();
    };
    std::size_t start = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // UTF-8 byte order mark
    for (std::size_t i = start; i < text.size(); ++i) {
        char c = text[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    quoted = false;
                }
            } else {
                if (c == '\n') ++line;
                field += c;
            }
        } else if (c == '"' && !field_started) {
            quoted = field_started = true;
        } else if (c == ',') {
            end_field();
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            end_record();
            ++line;
        } else {
            field += c;
            field_started = true;
        }
    }
    if (quoted) throw_input("{}: unterminated quoted field (from line {})", name, line);
    if (!field.empty() || !record.empty()) end_record();
    CsvTable t;
    if (records.empty()) throw_input("{}: empty CSV file (no header)", name);
    t.header = std::move(records[0]);
    for (std::size_t r = 1; r < records.size(); ++r) {
        if (records[r].size() != t.header.size())
            throw_input("{}: row {} has {} fields, the header has {}", name, r + 1, records[r].size(), t.header.size());
        t.rows.push_back(std::move(records[r]));
    }
    return t;
}

CsvTable read_csv(const std::filesystem::path& path) { return parse_csv(read_file(path), path.string()); }

std::string format_csv(const CsvTable& t) {
    auto put = [](std::string& out, const std::string& f) {
        if (f.find_first_of(",\"\n\r") == std::string::npos) {
            out += f;
            return;
        }
        out += '"';
        for (char c : f) out += c == '"' ? std::string("\"\"") : std::string(1, c);
        out += '"';
    };
    std::string out;
    auto line = [&](const std::vector<std::string>& fields) {
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i) out += ',';
            put(out, fields[i]);
        }
        out += '\n';
    };
    line(t.header);
    for (const auto& r : t.rows) line(r);
    return out;
}

void write_csv(const std::filesystem::path& path, const CsvTable& table) { write_file_atomic(path, format_csv(table)); }

}  // namespace mess
