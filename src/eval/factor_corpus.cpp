// Factor-controlled corpora: each MIDI piece rendered on a grid where one factor changes at a time from a
// neutral base (tempo, dynamics, articulation, timbre, transposition), labelled with factor and value.
#include <algorithm>
#include <cmath>
#include <map>
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

// Absolute targets (the same for every piece, so that one value means one tempo, level or articulation
// whatever the piece's own): tempo as the median inter-onset interval (one beat per median IOI of the
// piece's distinct onsets), dynamics as the mean MIDI velocity, articulation as note length over the time
// to the channel's next onset.
constexpr double kBaseBpm = 160;                          // median IOI 0.375 s
constexpr double kTempoGrid[] = {100, 125, 200, 250};     // steps of ×1.25
constexpr double kSoft = 40, kMedium = 72, kLoud = 110;   // p, mf, f (mean velocity)
constexpr double kRampLow = 30, kRampHigh = 115;          // crescendo/diminuendo: pp ↔ ff in each hairpin
constexpr double kHairpinSec = 5;                         // a hairpin's length (rendered seconds): one per window
constexpr double kStaccato = 0.3, kNormal = 0.85, kLegato = 1.25;  // note length / IOI (legato: + pedal)
constexpr double kSameOnset = 0.05;  // onsets closer than this to the one before are one event (a chord, a roll, a strum)
constexpr double kMaxEventSpan = 0.2; // ... unless the event would last longer (a trill, a tremolo: several events)
constexpr double kBaseLevelDb = -26; // every piece's base rendering at this RMS level (dBFS), its other renderings at its gain

// One rendering's settings; the defaults are the neutral base.
struct FactorSetting {
    std::string factor = "base", value = "base";
    double tempo_bpm = kBaseBpm;
    double velocity_start = kMedium, velocity_end = kMedium;  // mean velocity, linear over the piece
    double note_length = kNormal;                             // note length / IOI to the channel's next onset
    bool pedal = false;
    int program = 0;  // GM program for every pitched channel
    int transpose = 0;

    // The value of every factor in this rendering (the base's where it is not the factor varied).
    nlohmann::json factors() const;
    // The absolute quantities behind the values (labels "absolute").
    nlohmann::json absolute() const {
        return {{"tempo_bpm", tempo_bpm}, {"median_ioi_sec", 60.0 / tempo_bpm}, {"mean_velocity_start", velocity_start},
                {"mean_velocity_end", velocity_end}, {"hairpin_sec", velocity_start != velocity_end ? kHairpinSec : 0.0},
                {"base_level_dbfs", kBaseLevelDb}, {"note_length_over_ioi", note_length}, {"pedal", pedal}};
    }
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
    if (s.velocity_start == s.velocity_end) return s.velocity_start < kMedium - 10 ? "soft" : s.velocity_start > kMedium + 10 ? "loud" : "medium";
    return s.velocity_start < s.velocity_end ? "crescendo" : "diminuendo";
}

nlohmann::json FactorSetting::factors() const {
    return {{"tempo", fmt::format("{:.0f}", tempo_bpm)},
            {"dynamics", dynamics_name(*this)},
            {"articulation", note_length < 0.6 ? "staccato" : note_length > 1.0 ? "legato" : "normal"},
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
        for (double bpm : kTempoGrid) add("tempo", [&](FactorSetting& s) { s.tempo_bpm = bpm; });
    if (wanted("dynamics"))
        for (auto [a, b] : {std::pair{kSoft, kSoft}, {kLoud, kLoud}, {kRampLow, kRampHigh}, {kRampHigh, kRampLow}})
            add("dynamics", [&](FactorSetting& s) { s.velocity_start = a, s.velocity_end = b; });
    if (wanted("articulation")) {
        add("articulation", [](FactorSetting& s) { s.note_length = kStaccato; });
        add("articulation", [](FactorSetting& s) { s.note_length = kLegato, s.pedal = true; });
    }
    if (wanted("timbre"))
        for (const auto& t : kTimbres)
            if (t.program != 0) add("timbre", [&](FactorSetting& s) { s.program = t.program; });
    if (wanted("transpose"))
        for (int k : {-5, -2, 3, 6}) add("transpose", [&](FactorSetting& s) { s.transpose = k; });
    return grid;
}

// Onset events: the times at which a chain of onsets, each closer than kSameOnset to the one before and
// within kMaxEventSpan of the chain's first, begins (what a listener hears as one onset: a chord, a roll, a
// strummed arpeggio). `onsets` sorted.
std::vector<double> onset_events(const std::vector<double>& onsets) {
    std::vector<double> events;
    for (std::size_t i = 0; i < onsets.size(); ++i)
        if (i == 0 || onsets[i] - onsets[i - 1] >= kSameOnset || onsets[i] - events.back() >= kMaxEventSpan) events.push_back(onsets[i]);
    return events;
}

// What a piece's own playing is, over its first `source_end` seconds (pitched channels): the median
// interval between its onset events and its mean velocity; each note's time to its channel's next onset event.
struct PieceStats {
    double median_ioi = 0, mean_velocity = 0;
    std::vector<double> ratio;  // each pitched note's velocity / mean_velocity (the piece's balance of voices)
    std::vector<double> gap;  // per note of midi.notes (its own duration when its channel has no later onset)
};

PieceStats piece_stats(const MidiPerformance& midi, double source_end) {
    PieceStats st;
    std::vector<double> onsets;
    std::map<int, std::vector<double>> by_channel;
    double vel = 0;
    for (const MidiNote& n : midi.notes) {
        if (n.onset_sec >= source_end || n.channel == kDrums) continue;
        onsets.push_back(n.onset_sec);
        by_channel[n.channel].push_back(n.onset_sec);
        vel += n.velocity;
    }
    std::sort(onsets.begin(), onsets.end());
    const std::vector<double> events = onset_events(onsets);
    std::vector<double> ioi;
    for (std::size_t i = 1; i < events.size(); ++i) ioi.push_back(events[i] - events[i - 1]);
    if (ioi.empty()) throw_input("fewer than 2 onset events in the first {:.0f} s: no tempo to set", source_end);
    std::nth_element(ioi.begin(), ioi.begin() + static_cast<std::ptrdiff_t>(ioi.size() / 2), ioi.end());
    st.median_ioi = ioi[ioi.size() / 2];
    st.mean_velocity = vel / static_cast<double>(onsets.size());
    for (const MidiNote& n : midi.notes)
        if (n.onset_sec < source_end && n.channel != kDrums) st.ratio.push_back(n.velocity / st.mean_velocity);
    std::sort(st.ratio.begin(), st.ratio.end());
    for (auto& [ch, v] : by_channel) {
        std::sort(v.begin(), v.end());
        v = onset_events(v);
    }
    for (const MidiNote& n : midi.notes) {
        double gap = n.offset_sec - n.onset_sec;
        if (const auto c = by_channel.find(n.channel); c != by_channel.end()) {
            const auto next = std::upper_bound(c->second.begin(), c->second.end(), n.onset_sec);
            if (next != c->second.end()) gap = *next - n.onset_sec;
        }
        st.gap.push_back(gap);
    }
    return st;
}

// How one setting scales the piece's velocities: each note's ratio to the piece's mean raised to
// `balance` (≤ 1; divided by `norm`, the ratios' mean after it, so the mean stays the setting's level)
// and multiplied by `gain`.
struct VelocityScale {
    double balance = 1, norm = 1, gain = 1;
};

// The velocity of note n under setting s: its ratio to the piece's mean (scaled as `v` says) × the
// setting's level at its time, in 1..127. A changing level repeats as hairpins of kHairpinSec rendered seconds.
double note_velocity(const MidiNote& n, const PieceStats& st, const FactorSetting& s, double tempo_scale, const VelocityScale& v) {
    const double f = std::fmod(n.onset_sec * tempo_scale, kHairpinSec) / kHairpinSec;
    const double level = s.velocity_start + (s.velocity_end - s.velocity_start) * f;
    const double ratio = std::pow(std::max(n.velocity, 1) / st.mean_velocity, v.balance) / v.norm;
    return std::clamp(ratio * level * v.gain, 1.0, 127.0);
}

// The balance exponent that keeps the piece's loud voices under 127 at the setting's loudest level: 1
// unless the 95th percentile of the ratios (relative to their mean) times that level would pass 127;
// then the largest exponent that keeps it there (bisection). Without it a melody and bass far above
// their accompaniment stop at 127 for most of a hairpin or every note of a loud rendering, and the
// rendering's loudest voices do not follow its level.
VelocityScale velocity_balance(const PieceStats& st, const FactorSetting& s) {
    constexpr double kMaxVelocity = 127;
    VelocityScale v;
    if (st.ratio.empty()) return v;
    const double loudest = std::max(s.velocity_start, s.velocity_end);
    const double q95 = st.ratio[static_cast<std::size_t>(0.95 * static_cast<double>(st.ratio.size() - 1))];
    auto mean_at = [&](double b) {
        double sum = 0;
        for (double r : st.ratio) sum += std::pow(r, b);
        return sum / static_cast<double>(st.ratio.size());
    };
    auto top_at = [&](double b) { return std::pow(q95, b) / mean_at(b) * loudest; };
    if (top_at(1) > kMaxVelocity) {
        double lo = 0, hi = 1;
        for (int i = 0; i < 30; ++i) (top_at((lo + hi) / 2) > kMaxVelocity ? hi : lo) = (lo + hi) / 2;
        v.balance = lo;
    }
    v.norm = mean_at(v.balance);
    return v;
}

// The velocity scale of setting s: its balance, then the gain that brings the mean velocity of the
// rendered notes to the setting's mean level although loud notes stop at 127 and a hairpin may be cut
// short by the piece's end (bisection, up or down; 1 when the mean is already there).
VelocityScale velocity_scale(const MidiPerformance& midi, const PieceStats& st, const FactorSetting& s, double source_end, double tempo_scale) {
    const double target = (s.velocity_start + s.velocity_end) / 2;
    VelocityScale v = velocity_balance(st, s);
    auto mean_at = [&](double g) {
        v.gain = g;
        double sum = 0, count = 0;
        for (const MidiNote& n : midi.notes)
            if (n.onset_sec < source_end && n.channel != kDrums) sum += note_velocity(n, st, s, tempo_scale, v), ++count;
        return count > 0 ? sum / count : target;
    };
    double lo = 1, hi = 1;
    while (mean_at(hi) < target - 0.01 && hi < 64) hi *= 2;
    while (mean_at(lo) > target + 0.01 && lo > 1.0 / 64) lo /= 2;  // a hairpin cut short can start the mean above it
    for (int i = 0; i < 40 && hi > lo; ++i) (mean_at((lo + hi) / 2) < target ? lo : hi) = (lo + hi) / 2;
    v.gain = hi;
    return v;
}

// The notes of the piece's first `source_end` seconds under setting s, as timed synth events: durations
// scaled so the median IOI is 60 / tempo_bpm, velocities so their mean follows the setting's level, note
// lengths a fraction of each note's time to its channel's next onset.
std::vector<Event> factor_events(const MidiPerformance& midi, const PieceStats& st, const FactorSetting& s, double source_end,
                                 double* end_sec) {
    const double scale = 60.0 / s.tempo_bpm / st.median_ioi;
    const VelocityScale velocity = velocity_scale(midi, st, s, source_end, scale);
    std::vector<Event> ev;
    std::set<int> channels;
    for (std::size_t i = 0; i < midi.notes.size(); ++i) {
        const MidiNote& n = midi.notes[i];
        if (n.onset_sec >= source_end) continue;
        const int pitch = n.channel == kDrums ? n.pitch : n.pitch + s.transpose;
        if (pitch < 0 || pitch > 127) continue;
        const double length = n.channel == kDrums ? n.offset_sec - n.onset_sec : st.gap[i] * s.note_length;
        const double off = std::min(n.onset_sec + std::max(0.03 / scale, length), source_end + 0.5);
        const int vel = static_cast<int>(std::lround(note_velocity(n, st, s, scale, velocity)));
        ev.push_back({scale * n.onset_sec, 4, 0, n.channel, pitch, vel});
        ev.push_back({scale * off, 1, 1, n.channel, pitch, 0});
        channels.insert(n.channel);
    }
    for (int ch : channels) {
        if (ch != kDrums) ev.push_back({0.0, 2, 3, ch, s.program, 0});
        for (double t = 0; s.pedal && t < source_end; t += 2.0) {  // legato: pedal held through each 2-s span
            ev.push_back({scale * t, 3, 2, ch, 64, 127});
            ev.push_back({scale * std::min(t + 1.95, source_end + 0.5), 0, 2, ch, 64, 0});
        }
    }
    std::stable_sort(ev.begin(), ev.end(), [](const Event& x, const Event& y) { return x.sec != y.sec ? x.sec < y.sec : x.order < y.order; });
    *end_sec = 0;
    for (const auto& e : ev) *end_sec = std::max(*end_sec, e.sec);
    return ev;
}

// The RMS level (dBFS) of a rendering's sounding part: its 2048-sample frames within 40 dB of the loudest.
double active_level_db(const std::vector<float>& audio) {
    constexpr std::size_t kFrame = 2048;
    std::vector<double> energy;
    for (std::size_t a = 0; a < audio.size(); a += kFrame) {
        double e = 0;
        const std::size_t b = std::min(audio.size(), a + kFrame);
        for (std::size_t i = a; i < b; ++i) e += static_cast<double>(audio[i]) * audio[i];
        energy.push_back(e / static_cast<double>(b - a));
    }
    const double top = energy.empty() ? 0.0 : *std::max_element(energy.begin(), energy.end());
    if (!(top > 0)) return -200;
    double sum = 0, count = 0;
    for (double e : energy)
        if (e >= top * 1e-4) sum += e, ++count;
    return 10 * std::log10(sum / count);
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
        PieceStats stats;
        try {
            midi = read_midi(src);
            if (midi.notes.empty()) throw_input("{}: no notes", src.string());
            stats = with_context(src.string(), [&] { return piece_stats(midi, std::min(p_.max_seconds, midi.end_sec)); });
        } catch (const std::exception& e) {
            report_.skipped.emplace_back(src.string(), e.what());
            spdlog::warn("factor corpus: skipping {}", e.what());
            done_ += static_cast<std::int64_t>(grid_.size());
            return;
        }
        std::string work = corpus_render::work_id_of(src);
        for (int n = 2; used_.count(work); ++n) work = fmt::format("{}-{}", corpus_render::work_id_of(src), n);
        used_.insert(work);
        const double gain = level_gain(midi, stats);
        for (const FactorSetting& s : grid_) add_rendering(src, midi, stats, work, s, gain);
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
    // The gain that puts the piece's base rendering at kBaseLevelDb (so that one dynamics value means one
    // level whatever the piece's instruments and texture; the piece's other renderings get the same gain).
    double level_gain(const MidiPerformance& midi, const PieceStats& stats) {
        const double source_end = std::min(p_.max_seconds, midi.end_sec);
        double end_sec = 0;
        const std::vector<Event> ev = factor_events(midi, stats, FactorSetting{}, source_end, &end_sec);
        const double level = active_level_db(synth_.render(ev, end_sec, p_.sample_rate));
        return level > -150 ? std::pow(10.0, (kBaseLevelDb - level) / 20) : 1.0;
    }

    void add_rendering(const fs::path& src, const MidiPerformance& midi, const PieceStats& stats, const std::string& work,
                       const FactorSetting& s, double gain) {
        const std::string id = s.factor == "base" ? work + "__base" : fmt::format("{}__{}-{}", work, s.factor, s.value);
        const double source_end = std::min(p_.max_seconds, midi.end_sec);
        double end_sec = 0;
        const std::vector<Event> ev = factor_events(midi, stats, s, source_end, &end_sec);
        const double scale = 60.0 / s.tempo_bpm / stats.median_ioi;
        std::vector<float> audio = synth_.render(ev, end_sec, p_.sample_rate);
        float peak = 0;
        for (float& x : audio) peak = std::max(peak, std::fabs(x *= static_cast<float>(gain)));  // no peak normalisation: levels stay real
        corpus_render::save_smf(out_ / "midi" / (id + ".mid"), ev);
        corpus_render::write_wav16(out_ / "audio" / (id + ".wav"), audio, p_.sample_rate);
        const nlohmann::json factors = s.factors();
        items_.push_back({{"id", id}, {"file", "audio/" + id + ".wav"}, {"midi", "midi/" + id + ".mid"},
                          {"source_midi", src.filename().string()}, {"licence", p_.licence}, {"work_id", work},
                          {"recording_id", id}, {"factor", s.factor}, {"value", s.value}, {"factors", factors},
                          {"aspects", factors}, {"absolute", s.absolute()},
                          {"source_median_ioi_sec", stats.median_ioi}, {"source_mean_velocity", stats.mean_velocity}, {"level_gain_db", 20 * std::log10(gain)}, {"velocity_balance", velocity_balance(stats, s).balance}, {"peak", peak}, {"clipped", peak > 1.0f},
                          {"time_map", nlohmann::json::array({{0.0, 0.0}, {source_end, scale * source_end}})},
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
