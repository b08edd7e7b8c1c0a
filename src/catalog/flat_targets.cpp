// Proxy targets of the old flat layout (proxy_targets/<track>.targets.npz): adopted only when provably
// the dataset's (mess/catalog.hpp).
#include <algorithm>

#include "mess/catalog.hpp"

namespace mess {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kReportSuffix = "_targets_report.json";

fs::path flat_dir(const Dataset& dataset) { return dataset.data_root() / "proxy_targets"; }

// The datasets whose old reports lie in proxy_targets/ (sorted).
std::vector<std::string> flat_report_datasets(const Dataset& dataset) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(flat_dir(dataset), ec)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file(ec) && name.size() > kReportSuffix.size() && name.ends_with(kReportSuffix))
            out.push_back(name.substr(0, name.size() - kReportSuffix.size()));
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool any_flat_target_left(const Dataset& dataset) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(flat_dir(dataset), ec))
        if (e.path().filename().string().ends_with(".targets.npz")) return true;
    return false;
}

std::string why_not_adopted(const Dataset& dataset, const std::vector<std::string>& writers) {
    const std::string where = flat_dir(dataset).string();
    if (writers.empty())
        return fmt::format("{} holds no <dataset>_targets_report.json that says which dataset wrote them", where);
    std::string reports;
    for (const auto& w : writers) reports += (reports.empty() ? "" : ", ") + w + std::string(kReportSuffix);
    return fmt::format("{} holds {}: a target file there may be another dataset's", where, reports);
}

}  // namespace

fs::path flat_targets_path(const Dataset& dataset, const std::string& track_id) {
    return flat_dir(dataset) / (track_id + ".targets.npz");
}

FlatTargetsMigration migrate_flat_targets(const Dataset& dataset, const std::vector<std::string>& track_ids) {
    FlatTargetsMigration m;
    std::vector<std::string> candidates;
    std::error_code ec;
    for (const auto& t : track_ids)
        if (fs::exists(flat_targets_path(dataset, t), ec) && !fs::exists(dataset.targets_path(t), ec)) candidates.push_back(t);
    if (candidates.empty()) return m;
    const std::vector<std::string> writers = flat_report_datasets(dataset);
    if (writers != std::vector<std::string>{dataset.id()}) {
        m.left = std::move(candidates);
        m.why_left = why_not_adopted(dataset, writers);
        return m;
    }
    fs::create_directories(dataset.targets_dir(), ec);
    for (const auto& t : candidates) {
        fs::rename(flat_targets_path(dataset, t), dataset.targets_path(t), ec);
        if (ec) throw_input("{}: cannot move it to {}: {}", flat_targets_path(dataset, t).string(), dataset.targets_path(t).string(), ec.message());
        m.moved.push_back(t);
    }
    if (!any_flat_target_left(dataset)) fs::remove(flat_dir(dataset) / (dataset.id() + std::string(kReportSuffix)), ec);
    return m;
}

}  // namespace mess
