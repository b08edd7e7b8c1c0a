// Factor-controlled corpora: each MIDI piece rendered on a grid where one factor changes at a time from a
// neutral base (tempo, dynamics, articulation, timbre, transposition), labelled with factor and value.
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "corpus_render.hpp"
#include "mess/catalog.hpp"
#include "mess/eval.hpp"

namespace mess {

namespace {

namespace fs = std::filesystem;
using corpus_render::Event;

constexpr int kDrums = 9;

// One rendering's settings; the defaults are the neutral base.
struct FactorSetting {
    std::string factor = "base", value = "base";
    double tempo_scale = 1;                 // duration multiplier (0.7 = faster)
    double velocity_start = 1, velocity_end = 1;  // velocity multipliers, linear over the piece
    double note_length_scale = 1;
    bool pedal = false;
    int program = 0;  // GM program for every pitched channel
    int transpose = 0;

    // The value of every factor in this rendering (the base's where it is not the factor varied).
    nlohmann::json factors() const;
};

struct TimbreChoice {
    int program;
    const char* name;
};
constexpr TimbreChoice kTimbres[] = {{0, "piano"}, {6, "harpsichord"}, {19, "organ"}, {24, "guitar"}, {48, "strings"}, {73, "flute"}};

const char* timbre_name(int program) {
    for (const auto& t : kTimbres)
        if (t.program == program) return t.name;
    return "other";
}

std::string dynamics_name(const FactorSetting& s) {
    if (s.velocity_start == s.velocity_end) return s.velocity_start < 0.9 ? "soft" : s.velocity_start > 1.1 ? "loud" : "medium";
    return s.velocity_start < s.velocity_end ? "crescendo" : "diminuendo";
}

nlohmann::json FactorSetting::factors() const {
    return {{"tempo", fmt::format("{:.2f}", tempo_scale)},
            {"dynamics", dynamics_name(*this)},
            {"articulation", note_length_scale < 0.8 ? "staccato" : note_length_scale > 1.25 ? "legato" : "normal"},
            {"timbre", timbre_name(program)},
            {"transpose", fmt::format("{:+d}", transpose)}};
}

// The grid: the base, then each factor's values with every other factor at the base.
std::vector<FactorSetting> factor_grid(const std::vector<std::string>& factors) {
    std::vector<FactorSetting> grid(1);
    auto add = [&](const std::string& factor, auto&& set) {
        FactorSetting s;
        s.factor = factor;
        set(s);
        s.value = s.factors()[factor].get<std::string>();
        grid.push_back(s);
    };
    auto wanted = [&](const char* f) { return std::find(factors.begin(), factors.end(), f) != factors.end(); };
    if (wanted("tempo"))
        for (double t : {0.7, 0.85, 1.2, 1.4}) add("tempo", [&](FactorSetting& s) { s.tempo_scale = t; });
    if (wanted("dynamics"))
        for (auto [a, b] : {std::pair{0.4, 0.4}, {1.6, 1.6}, {0.35, 1.6}, {1.6, 0.35}})
            add("dynamics", [&](FactorSetting& s) { s.velocity_start = a, s.velocity_end = b; });
    if (wanted("articulation")) {
        add("articulation", [](FactorSetting& s) { s.note_length_scale = 0.35; });
        add("articulation", [](FactorSetting& s) { s.note_length_scale = 1.8, s.pedal = true; });
    }
    if (wanted("timbre"))
        for (const auto& t : kTimbres)
            if (t.program != 0) add("timbre", [&](FactorSetting& s) { s.program = t.program; });
    if (wanted("transpose"))
        for (int k : {-5, -2, 3, 6}) add("transpose", [&](FactorSetting& s) { s.transpose = k; });
    return grid;
}

// The notes of the piece's first `source_end` seconds under setting s, as timed synth events.
std::vector<Event> factor_events(const MidiPerformance& midi, const FactorSetting& s, double source_end, double* end_sec) {
    std::vector<Event> ev;
    std::set<int> channels;
    for (const MidiNote& n : midi.notes) {
        if (n.onset_sec >= source_end) continue;
        const int pitch = n.channel == kDrums ? n.pitch : n.pitch + s.transpose;
        if (pitch < 0 || pitch > 127) continue;
        const double off = std::min(n.onset_sec + std::max(0.03, (n.offset_sec - n.onset_sec) * s.note_length_scale), source_end + 0.5);
        const double f = std::clamp(n.onset_sec / std::max(source_end, 1e-9), 0.0, 1.0);
        const double gain = s.velocity_start + (s.velocity_end - s.velocity_start) * f;
        const int vel = std::clamp(static_cast<int>(std::lround(n.velocity * gain)), 1, 127);
        ev.push_back({s.tempo_scale * n.onset_sec, 4, 0, n.channel, pitch, vel});
        ev.push_back({s.tempo_scale * off, 1, 1, n.channel, pitch, 0});
        channels.insert(n.channel);
    }
    for (int ch : channels) {
        if (ch != kDrums) ev.push_back({0.0, 2, 3, ch, s.program, 0});
        for (double t = 0; s.pedal && t < source_end; t += 2.0) {  // legato: pedal held through each 2-s span
            ev.push_back({s.tempo_scale * t, 3, 2, ch, 64, 127});
            ev.push_back({s.tempo_scale * std::min(t + 1.95, source_end + 0.5), 0, 2, ch, 64, 0});
        }
    }
    std::stable_sort(ev.begin(), ev.end(), [](const Event& x, const Event& y) { return x.sec != y.sec ? x.sec < y.sec : x.order < y.order; });
    *end_sec = 0;
    for (const auto& e : ev) *end_sec = std::max(*end_sec, e.sec);
    return ev;
}

void check_factor_params(const std::vector<fs::path>& midi_files, const FactorCorpusParams& p) {
    if (!(p.max_seconds > 0) || p.max_seconds > 3600) throw_usage("max seconds must be in (0, 3600] (got {})", p.max_seconds);
    if (p.sample_rate < 8000 || p.sample_rate > 96000) throw_usage("sample rate must be 8000..96000 Hz");
    if (midi_files.empty()) throw_usage("no MIDI files given");
    static const std::set<std::string> known = {"tempo", "dynamics", "articulation", "timbre", "transpose"};
    for (const auto& f : p.factors)
        if (!known.count(f)) throw_usage("unknown factor '{}' (known: tempo, dynamics, articulation, timbre, transpose)", f);
}

// Renders every piece × grid setting into out_dir; collects labels items and metadata rows.
class FactorWriter {
public:
    FactorWriter(const fs::path& out, const FactorCorpusParams& p, const fs::path& soundfont, std::vector<FactorSetting> grid, std::int64_t total)
        : out_(out), p_(p), soundfont_(soundfont), synth_(soundfont, p.sample_rate), grid_(std::move(grid)), total_(total) {}

    void add_piece(const fs::path& src) {
        MidiPerformance midi;
        try {
            midi = read_midi(src);
            if (midi.notes.empty()) throw_input("{}: no notes", src.string());
        } catch (const std::exception& e) {
            report_.skipped.emplace_back(src.string(), e.what());
            spdlog::warn("factor corpus: skipping {}", e.what());
            done_ += static_cast<std::int64_t>(grid_.size());
            return;
        }
        std::string work = corpus_render::work_id_of(src);
        for (int n = 2; used_.count(work); ++n) work = fmt::format("{}-{}", corpus_render::work_id_of(src), n);
        used_.insert(work);
        for (const FactorSetting& s : grid_) add_rendering(src, midi, work, s);
        ++report_.pieces;
    }

    CorpusReport finish() {
        if (report_.renderings == 0) throw_input("no MIDI file could be rendered ({} skipped)", report_.skipped.size());
        MetadataTable(std::move(rows_)).write(out_ / "metadata.csv");
        const nlohmann::json labels = {{"schema", "mess-corpus-labels/1"}, {"kind", "factors"}, {"max_seconds", p_.max_seconds},
                                       {"sample_rate", p_.sample_rate}, {"soundfont", soundfont_.filename().string()},
                                       {"factors", p_.factors}, {"items", items_}};
        report_.labels_path = out_ / "labels.json";
        write_file_atomic(report_.labels_path, labels.dump(1) + "\n");
        return report_;
    }

private:
    void add_rendering(const fs::path& src, const MidiPerformance& midi, const std::string& work, const FactorSetting& s) {
        const std::string id = s.factor == "base" ? work + "__base" : fmt::format("{}__{}-{}", work, s.factor, s.value);
        const double source_end = std::min(p_.max_seconds, midi.end_sec);
        double end_sec = 0;
        const std::vector<Event> ev = factor_events(midi, s, source_end, &end_sec);
        const std::vector<float> audio = synth_.render(ev, end_sec, p_.sample_rate);
        float peak = 0;
        for (float x : audio) peak = std::max(peak, std::fabs(x));  // no normalisation: levels stay real
        corpus_render::save_smf(out_ / "midi" / (id + ".mid"), ev);
        corpus_render::write_wav16(out_ / "audio" / (id + ".wav"), audio, p_.sample_rate);
        const nlohmann::json factors = s.factors();
        items_.push_back({{"id", id}, {"file", "audio/" + id + ".wav"}, {"midi", "midi/" + id + ".mid"},
                          {"source_midi", src.filename().string()}, {"licence", p_.licence}, {"work_id", work},
                          {"recording_id", id}, {"factor", s.factor}, {"value", s.value}, {"factors", factors},
                          {"aspects", factors}, {"peak", peak}, {"clipped", peak > 1.0f},
                          {"time_map", nlohmann::json::array({{0.0, 0.0}, {source_end, s.tempo_scale * source_end}})},
                          {"duration_sec", static_cast<double>(audio.size()) / p_.sample_rate}});
        MetadataTable::Row row{id, id, work, {}};
        row.extra["factor"] = s.factor;
        row.extra["value"] = s.value;
        rows_.push_back(std::move(row));
        ++report_.renderings;
        if (p_.on_progress) p_.on_progress(++done_, total_);
    }

    const fs::path& out_;
    const FactorCorpusParams& p_;
    const fs::path soundfont_;
    corpus_render::Synth synth_;
    const std::vector<FactorSetting> grid_;
    const std::int64_t total_;
    std::int64_t done_ = 0;
    CorpusReport report_;
    nlohmann::json items_ = nlohmann::json::array();
    std::vector<MetadataTable::Row> rows_;
    std::set<std::string> used_;
};

}  // namespace

std::vector<std::string> factor_grid_ids(const std::vector<std::string>& factors) {
    std::vector<std::string> ids;
    for (const auto& s : factor_grid(factors)) ids.push_back(s.factor == "base" ? "base" : s.factor + "-" + s.value);
    return ids;
}

CorpusReport render_factor_corpus(const std::vector<fs::path>& midi_files, const fs::path& out_dir, const FactorCorpusParams& params) {
    check_factor_params(midi_files, params);
    CorpusParams cp;
    cp.soundfont = params.soundfont;
    const fs::path soundfont = corpus_render::find_soundfont(cp);
    fs::create_directories(out_dir / "audio");
    fs::create_directories(out_dir / "midi");
    auto sources = midi_files;
    std::sort(sources.begin(), sources.end());
    std::vector<FactorSetting> grid = factor_grid(params.factors);
    const auto total = static_cast<std::int64_t>(sources.size() * grid.size());
    FactorWriter writer(out_dir, params, soundfont, std::move(grid), total);
    for (const fs::path& src : sources) writer.add_piece(src);
    return writer.finish();
}

}  // namespace mess
