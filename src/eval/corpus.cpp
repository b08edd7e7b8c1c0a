// Labelled benchmark corpora: MIDI → controlled transformations → libfluidsynth → WAV + labels.json.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <random>
#include <set>

#include <fluidsynth.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mess/catalog.hpp"
#include "mess/eval.hpp"
#include "mess/structure.hpp"
#include "mess/targets.hpp"
#include "corpus_render.hpp"

namespace fs = std::filesystem;

namespace mess {

namespace {

constexpr int kDrumChannel = 9;

struct Transform {
    std::string kind = "original";
    double tempo_scale = 1, rubato_depth = 0, rubato_period_sec = 0;  // duration multiplier and its modulation
    int transpose = 0;
    double velocity_scale = 1, velocity_compression = 1, swell_depth = 0, swell_period_sec = 0;
    double note_length_scale = 1;
    std::string pedal = "source";  // source | off | on
    int program = -1;              // -1: the source's
    std::string soundfont;         // "": the corpus's SoundFont; else the file name of the one playing this variant

    // Rendered seconds of source second t: ∫ scale·(1 + depth·sin(2πu/P)) du.
    double warp(double t) const {
        if (rubato_depth <= 0 || rubato_period_sec <= 0) return tempo_scale * t;
        const double w = 2 * M_PI / rubato_period_sec;
        return tempo_scale * (t + rubato_depth / w * (1 - std::cos(w * t)));
    }
    nlohmann::json to_json() const {
        return {{"kind", kind},
                {"tempo_scale", tempo_scale},
                {"rubato_depth", rubato_depth},
                {"rubato_period_sec", rubato_period_sec},
                {"transpose", transpose},
                {"velocity_scale", velocity_scale},
                {"velocity_compression", velocity_compression},
                {"swell_depth", swell_depth},
                {"swell_period_sec", swell_period_sec},
                {"note_length_scale", note_length_scale},
                {"pedal", pedal},
                {"program", program},
                {"soundfont", soundfont}};
    }
};

const char* gm_family(int program) {
    static const char* names[16] = {"piano", "chromatic-percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
                                    "reed", "pipe", "synth-lead", "synth-pad", "synth-effects", "ethnic", "percussive", "sound-effects"};
    return names[std::clamp(program, 0, 127) / 8];
}

std::map<std::string, std::string> aspect_labels(const Transform& t, int source_program) {
    const int program = t.program >= 0 ? t.program : std::max(source_program, 0);
    return {{"tempo", t.tempo_scale > 1.05 ? "slow" : t.tempo_scale < 0.95 ? "fast" : "medium"},
            {"dynamics", t.velocity_scale < 0.85 ? "soft" : t.velocity_scale > 1.15 ? "loud" : "medium"},
            {"articulation", t.note_length_scale < 0.8 ? "staccato" : t.note_length_scale > 1.25 ? "legato" : "normal"},
            {"timbre", gm_family(program)},
            {"key", fmt::format("{:+d}", t.transpose)}};
}

// The parameters of variant v of a piece, drawn from `rng` (variant 0 is the source as written).
Transform draw_variant(int v, std::mt19937_64& rng, const std::string& piano_soundfont) {
    auto uniform = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
    auto coin = [&] { return (rng() & 1) != 0; };
    auto pick = [&](std::initializer_list<int> options) { return *(options.begin() + static_cast<std::ptrdiff_t>(rng() % options.size())); };
    Transform t;
    auto tempo = [&] {
        t.tempo_scale = coin() ? uniform(0.72, 0.88) : uniform(1.15, 1.35);
        t.rubato_depth = uniform(0.08, 0.18);
        t.rubato_period_sec = uniform(4.0, 9.0);
    };
    auto transpose = [&] { t.transpose = pick({-5, -4, -3, -2, 2, 3, 4, 5}); };
    auto dynamics = [&] {
        t.velocity_scale = (coin() ? 0.55 : 1.4) * uniform(0.95, 1.05);
        t.velocity_compression = uniform(0.5, 1.5);
        t.swell_depth = uniform(0.15, 0.3);
        t.swell_period_sec = uniform(5.0, 10.0);
    };
    auto articulation = [&] {
        t.note_length_scale = coin() ? uniform(0.3, 0.5) : uniform(1.5, 2.0);
        t.pedal = coin() ? "off" : "on";
    };
    auto timbre = [&] { t.program = pick({1, 2, 4, 6, 11, 19, 24, 46, 48, 73}); };
    switch (v) {
        case 0: break;
        case 1: t.kind = "tempo"; tempo(); break;
        case 2: t.kind = "transpose"; transpose(); break;
        case 3: t.kind = "dynamics"; dynamics(); break;
        case 4: t.kind = "articulation"; articulation(); break;
        case 5: t.kind = "timbre"; timbre(); break;
        case 7:
            if (!piano_soundfont.empty()) {
                t.kind = "piano";
                t.soundfont = piano_soundfont;
                break;
            }
            [[fallthrough]];
        default: t.kind = "combined"; tempo(); transpose(); dynamics(); articulation(); timbre(); break;
    }
    return t;
}

using corpus_render::Event;

// The transformed performance as timed synth events (rendered seconds).
std::vector<Event> transform_events(const MidiPerformance& midi, const Transform& t, double max_seconds, double* end_sec) {
    std::vector<Event> ev;
    std::set<int> channels;
    for (const MidiNote& n : midi.notes) {
        if (n.onset_sec >= max_seconds) continue;
        const int pitch = n.channel == kDrumChannel ? n.pitch : n.pitch + t.transpose;
        if (pitch < 0 || pitch > 127) continue;
        const double length = std::max(0.03, (n.offset_sec - n.onset_sec) * t.note_length_scale);
        const double off = std::min(n.onset_sec + length, max_seconds + 0.5);
        double v = (64.0 + (n.velocity - 64.0) * t.velocity_compression) * t.velocity_scale;
        if (t.swell_depth > 0 && t.swell_period_sec > 0) v *= 1 + t.swell_depth * std::sin(2 * M_PI * n.onset_sec / t.swell_period_sec);
        const int vel = std::clamp(static_cast<int>(std::lround(v)), 1, 127);
        ev.push_back({t.warp(n.onset_sec), 4, 0, n.channel, pitch, vel});
        ev.push_back({t.warp(off), 1, 1, n.channel, pitch, 0});
        channels.insert(n.channel);
    }
    std::vector<std::pair<double, double>> pedal;
    if (t.pedal == "source") pedal = midi.pedal;
    else if (t.pedal == "on")
        for (double s = 0; s < max_seconds; s += 2.0) pedal.emplace_back(s, s + 1.95);
    for (auto [down, up] : pedal) {
        if (down >= max_seconds) continue;
        for (int ch : channels) {
            ev.push_back({t.warp(down), 3, 2, ch, 64, 127});
            ev.push_back({t.warp(std::min(up, max_seconds + 0.5)), 0, 2, ch, 64, 0});
        }
    }
    for (int ch : channels) {
        if (ch == kDrumChannel) continue;
        const int source = midi.programs[static_cast<std::size_t>(ch)];
        ev.push_back({0.0, 2, 3, ch, t.program >= 0 ? t.program : std::max(source, 0), 0});
    }
    std::stable_sort(ev.begin(), ev.end(), [](const Event& x, const Event& y) { return x.sec != y.sec ? x.sec < y.sec : x.order < y.order; });
    double end = 0;
    for (const auto& e : ev) end = std::max(end, e.sec);
    *end_sec = end;
    return ev;
}

void put_le(std::string& s, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// 16-bit PCM mono WAV, written atomically.
void write_wav16(const fs::path& path, const std::vector<float>& x, int rate) {
    std::string s = "RIFF";
    const auto data_bytes = static_cast<std::uint32_t>(x.size() * 2);
    put_le(s, 36 + data_bytes, 4);
    s += "WAVEfmt ";
    put_le(s, 16, 4);
    put_le(s, 1, 2);  // PCM
    put_le(s, 1, 2);  // mono
    put_le(s, static_cast<std::uint32_t>(rate), 4);
    put_le(s, static_cast<std::uint32_t>(rate * 2), 4);
    put_le(s, 2, 2);
    put_le(s, 16, 2);
    s += "data";
    put_le(s, data_bytes, 4);
    s.reserve(s.size() + data_bytes);
    for (float v : x) {
        const auto q = static_cast<std::int16_t>(std::lround(std::clamp(v, -1.0f, 1.0f) * 32767.0f));
        put_le(s, static_cast<std::uint16_t>(q), 2);
    }
    write_file_atomic(path, s);
}

// Format-0 SMF of the events: 480 ticks per quarter at 120 BPM (960 ticks per second).
void write_smf(const fs::path& path, const std::vector<Event>& ev) {
    std::string track;
    auto vlq = [&](std::uint32_t v) {
        char buf[5];
        int n = 0;
        buf[n++] = static_cast<char>(v & 0x7f);
        while (v >>= 7) buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        while (n) track += buf[--n];
    };
    vlq(0);
    track += std::string("\xff\x51\x03\x07\xa1\x20", 6);  // 500000 µs per quarter
    std::uint32_t last = 0;
    for (const auto& e : ev) {
        const auto tick = static_cast<std::uint32_t>(std::lround(e.sec * 960.0));
        vlq(tick - std::min(tick, last));
        last = std::max(last, tick);
        const auto ch = static_cast<char>(e.channel & 0x0f);
        switch (e.type) {
            case 0: track += {static_cast<char>(0x90 | ch), static_cast<char>(e.a), static_cast<char>(e.b)}; break;
            case 1: track += {static_cast<char>(0x80 | ch), static_cast<char>(e.a), 0}; break;
            case 2: track += {static_cast<char>(0xb0 | ch), 64, static_cast<char>(e.b)}; break;
            default: track += {static_cast<char>(0xc0 | ch), static_cast<char>(e.a)}; break;
        }
    }
    vlq(0);
    track += std::string("\xff\x2f\x00", 3);
    std::string s = "MThd";
    auto be = [&](std::uint32_t v, int n) {
        for (int i = n - 1; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    be(6, 4);
    be(0, 2);
    be(1, 2);
    be(480, 2);
    s += "MTrk";
    be(static_cast<std::uint32_t>(track.size()), 4);
    s += track;
    write_file_atomic(path, s);
}

using corpus_render::Synth;

std::string work_id_of(const fs::path& p) {
    std::string s;
    for (char c : p.stem().string()) {
        const auto u = static_cast<unsigned char>(c);
        s += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '-';
    }
    while (!s.empty() && s.front() == '-') s.erase(s.begin());
    while (!s.empty() && s.back() == '-') s.pop_back();
    return s.empty() ? "piece" : s;
}

std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
}

}  // namespace

std::vector<fs::path> default_soundfonts() {
    return {"/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
            "/usr/share/sounds/sf3/default-GM.sf3", "/usr/share/sounds/sf2/TimGM6mb.sf2"};
}

namespace {

void check_corpus_params(const std::vector<fs::path>& midi_files, const CorpusParams& params) {
    if (params.variants < 1 || params.variants > 16) throw_usage("variants must be 1..16 (got {})", params.variants);
    // An hour of source per piece is already a long render; beyond a day the value is a mistake.
    if (!(params.max_seconds > 0) || params.max_seconds > 86400)
        throw_usage("max seconds must be in (0, 86400] (got {}); pieces are cut at their own end anyway", params.max_seconds);
    if (params.sample_rate < 8000 || params.sample_rate > 96000) throw_usage("sample rate must be 8000..96000 Hz");
    if (midi_files.empty()) throw_usage("no MIDI files given");
}

// The SoundFont given, or the first of the default ones installed.
fs::path find_soundfont(const CorpusParams& params) {
    fs::path soundfont = params.soundfont;
    if (soundfont.empty())
        for (const auto& candidate : default_soundfonts())
            if (fs::exists(candidate)) {
                soundfont = candidate;
                break;
            }
    if (soundfont.empty() || !fs::exists(soundfont))
        throw_usage("no SoundFont found{}: install fluid-soundfont-gm or pass --soundfont FILE",
                    params.soundfont.empty() ? "" : " at " + params.soundfont.string());
    return soundfont;
}

// Variant 7's SoundFont: the one given, else TimGM6mb when installed; none when it is the main one.
fs::path piano_soundfont(const CorpusParams& params, const fs::path& main) {
    fs::path piano = params.piano_soundfont.empty() ? fs::path("/usr/share/sounds/sf2/TimGM6mb.sf2") : params.piano_soundfont;
    if (!params.piano_soundfont.empty() && !fs::exists(piano)) throw_usage("no SoundFont at {} (--piano-soundfont)", piano.string());
    std::error_code ec;
    if (!fs::exists(piano) || fs::equivalent(piano, main, ec)) return {};
    return piano;
}

// The program of the first pitched note's channel (-1: none given).
int first_pitched_program(const MidiPerformance& midi) {
    for (const auto& note : midi.notes)
        if (note.channel != kDrumChannel) return midi.programs[static_cast<std::size_t>(note.channel)];
    return -1;
}

// Scales the audio down to a peak of 0.99 when it would clip; returns the peak before.
float limit_peak(std::vector<float>& audio) {
    float peak = 0;
    for (float x : audio) peak = std::max(peak, std::fabs(x));
    if (peak > 0.99f)
        for (float& x : audio) x *= 0.99f / peak;  // never clip; the gain is recorded
    return peak;
}

// Source seconds → rendered seconds every 0.5 s up to the source's end.
nlohmann::json time_map_of(const Transform& t, double source_end) {
    nlohmann::json time_map = nlohmann::json::array();
    for (double s = 0; s <= source_end + 1e-9; s += 0.5) time_map.push_back({s, t.warp(s)});
    return time_map;
}

// One source MIDI file: its work id (unique in the corpus) and what every variant shares.
struct Piece {
    const fs::path& src;
    const MidiPerformance& midi;
    std::string work;
    int source_program;
    double source_end;
};

// Renders the variants of every piece into out_dir/{audio,midi}, collecting labels.json items and
// metadata.csv rows; writes both at the end.
class CorpusWriter {
public:
    CorpusWriter(const fs::path& out_dir, const CorpusParams& params, const fs::path& soundfont, std::int64_t total)
        : out_dir_(out_dir), params_(params), soundfont_(soundfont), synth_(soundfont, params.sample_rate), total_(total) {
        if (const fs::path piano = piano_soundfont(params, soundfont); !piano.empty() && params.variants > 7) {
            piano_synth_.emplace(piano, params.sample_rate);
            piano_name_ = piano.filename().string();
        }
    }

    void add_piece(const fs::path& src) {
        const std::optional<MidiPerformance> midi = read_source(src);
        if (!midi) {
            done_ += params_.variants;
            return;
        }
        const Piece piece{src, *midi, unique_work_id(src), first_pitched_program(*midi), std::min(params_.max_seconds, midi->end_sec)};
        std::mt19937_64 rng(params_.seed ^ fnv1a(piece.work));
        for (int v = 0; v < params_.variants; ++v) add_variant(piece, v, rng);
        ++report_.pieces;
    }

    CorpusReport finish() {
        if (report_.renderings == 0) throw_input("no MIDI file could be rendered ({} skipped)", report_.skipped.size());
        MetadataTable(std::move(rows_)).write(out_dir_ / "metadata.csv");
        const nlohmann::json labels = {{"schema", "mess-corpus-labels/1"},
                                       {"seed", params_.seed},
                                       {"variants", params_.variants},
                                       {"max_seconds", params_.max_seconds},
                                       {"sample_rate", params_.sample_rate},
                                       {"soundfont", soundfont_.filename().string()},
                                       {"items", items_}};
        report_.labels_path = out_dir_ / "labels.json";
        write_file_atomic(report_.labels_path, labels.dump(1) + "\n");  // last: the corpus is complete
        return report_;
    }

private:
    // The performance, or nothing when the file cannot be read or holds no notes (reported as skipped).
    std::optional<MidiPerformance> read_source(const fs::path& src) {
        try {
            MidiPerformance midi = read_midi(src);
            if (midi.notes.empty()) throw_input("{}: no notes", src.string());
            return midi;
        } catch (const std::exception& e) {
            report_.skipped.emplace_back(src.string(), e.what());
            spdlog::warn("corpus: skipping {}", e.what());
            return std::nullopt;
        }
    }

    std::string unique_work_id(const fs::path& src) {
        std::string work = work_id_of(src);
        for (int n = 2; used_ids_.count(work); ++n) work = fmt::format("{}-{}", work_id_of(src), n);
        used_ids_.insert(work);
        return work;
    }

    // Variant v: the transformed events as MIDI and rendered WAV, its labels item and its metadata row.
    void add_variant(const Piece& piece, int v, std::mt19937_64& rng) {
        const Transform t = draw_variant(v, rng, piano_name_);
        const std::string id = fmt::format("{}__v{:02d}", piece.work, v);
        double end_sec = 0;
        // Cut at the piece's own end: the legato pedal and tails never run on past what the file holds.
        const std::vector<Event> ev = transform_events(piece.midi, t, piece.source_end, &end_sec);
        std::vector<float> audio = (t.soundfont.empty() ? synth_ : *piano_synth_).render(ev, end_sec, params_.sample_rate);
        const float peak = limit_peak(audio);
        write_smf(out_dir_ / "midi" / (id + ".mid"), ev);
        write_wav16(out_dir_ / "audio" / (id + ".wav"), audio, params_.sample_rate);
        const auto aspects = aspect_labels(t, piece.source_program);
        items_.push_back({{"id", id},
                          {"file", "audio/" + id + ".wav"},
                          {"midi", "midi/" + id + ".mid"},
                          {"source_midi", piece.src.filename().string()},
                          {"licence", params_.licence},
                          {"work_id", piece.work},
                          {"recording_id", id},
                          {"transform", t.to_json()},
                          {"aspects", aspects},
                          {"peak_gain", peak > 0.99f ? 0.99 / peak : 1.0},
                          {"time_map", time_map_of(t, piece.source_end)},
                          {"duration_sec", static_cast<double>(audio.size()) / params_.sample_rate}});
        MetadataTable::Row row{id, id, piece.work, {}};
        row.extra["transform"] = t.kind;
        for (const auto& [k, val] : aspects) row.extra["aspect_" + k] = val;
        row.extra["source_midi"] = piece.src.filename().string();
        rows_.push_back(std::move(row));
        ++report_.renderings;
        if (params_.on_progress) params_.on_progress(++done_, total_);
    }

    const fs::path& out_dir_;
    const CorpusParams& params_;
    const fs::path soundfont_;
    Synth synth_;
    std::optional<Synth> piano_synth_;  // variant 7: another piano model
    std::string piano_name_;
    const std::int64_t total_;
    std::int64_t done_ = 0;
    CorpusReport report_;
    nlohmann::json items_ = nlohmann::json::array();
    std::vector<MetadataTable::Row> rows_;
    std::set<std::string> used_ids_;
};

}  // namespace

CorpusReport render_corpus(const std::vector<fs::path>& midi_files, const fs::path& out_dir, const CorpusParams& params) {
    check_corpus_params(midi_files, params);
    const fs::path soundfont = find_soundfont(params);
    fs::create_directories(out_dir / "audio");
    fs::create_directories(out_dir / "midi");
    auto sources = midi_files;
    std::sort(sources.begin(), sources.end());
    CorpusWriter writer(out_dir, params, soundfont, static_cast<std::int64_t>(sources.size()) * params.variants);
    for (const fs::path& src : sources) writer.add_piece(src);
    return writer.finish();
}

// The pieces the factor corpora (factor_corpus.cpp) share with this file.
namespace corpus_render {
void write_wav16(const fs::path& path, const std::vector<float>& x, int rate) { mess::write_wav16(path, x, rate); }
void save_smf(const fs::path& path, const std::vector<Event>& ev) { mess::write_smf(path, ev); }
fs::path find_soundfont(const CorpusParams& params) { return mess::find_soundfont(params); }
std::string work_id_of(const fs::path& path) { return mess::work_id_of(path); }
int first_pitched_program(const MidiPerformance& midi) { return mess::first_pitched_program(midi); }
}  // namespace corpus_render

}  // namespace mess

// ---------------------------------------------------------------------------------------------
// Structure corpora: medleys, transposed repeats, swells to a climax
// ---------------------------------------------------------------------------------------------

namespace mess {

namespace {

// Source seconds [src_start, src_start + src_len) of a piece, played from `dest` (rendered seconds).
struct Excerpt {
    const MidiPerformance* midi = nullptr;
    double src_start = 0, src_len = 0, tempo = 1, dest = 0;
    int transpose = 0;
    double rendered_len() const { return src_len * tempo; }
};

// The first note onset at or after a random point that leaves `len` source seconds (or the piece's start).
double excerpt_start(const MidiPerformance& midi, double len, std::mt19937_64& rng) {
    const double room = std::max(0.0, midi.notes.back().onset_sec - len);
    const double t = std::uniform_real_distribution<double>(0.0, room)(rng);
    for (const auto& n : midi.notes)
        if (n.onset_sec >= t) return n.onset_sec;
    return midi.notes.front().onset_sec;
}

// Adds the excerpt's notes (cut at its end) and pedal to `out`; velocity(rendered time, source velocity).
void place_excerpt(const Excerpt& x, MidiPerformance& out, const std::function<int(double, int)>& velocity) {
    const double end = x.src_start + x.src_len;
    for (const MidiNote& n : x.midi->notes) {
        if (n.onset_sec < x.src_start || n.onset_sec >= end || n.channel == kDrumChannel) continue;
        MidiNote m = n;
        m.onset_sec = x.dest + (n.onset_sec - x.src_start) * x.tempo;
        m.offset_sec = x.dest + (std::min(n.offset_sec, end) - x.src_start) * x.tempo;
        m.pitch = std::clamp(n.pitch + x.transpose, 0, 127);
        m.velocity = std::clamp(velocity(m.onset_sec, n.velocity), 1, 127);
        out.notes.push_back(m);
        out.end_sec = std::max(out.end_sec, m.offset_sec);
    }
    for (auto [down, up] : x.midi->pedal)
        if (up > x.src_start && down < end)
            out.pedal.emplace_back(x.dest + (std::max(down, x.src_start) - x.src_start) * x.tempo, x.dest + (std::min(up, end) - x.src_start) * x.tempo);
}

// The key of the excerpt's notes (duration-weighted pitch classes against the key profiles).
int symbolic_key(const Excerpt& x) {
    std::array<double, 12> pc{};
    for (const MidiNote& n : x.midi->notes)
        if (n.onset_sec >= x.src_start && n.onset_sec < x.src_start + x.src_len && n.channel != kDrumChannel)
            pc[static_cast<std::size_t>(((n.pitch + x.transpose) % 12 + 12) % 12)] += std::min(n.offset_sec, x.src_start + x.src_len) - n.onset_sec;
    return best_key(pc);
}

class StructureCorpusWriter {
public:
    StructureCorpusWriter(const fs::path& out_dir, const StructureCorpusParams& params, const fs::path& soundfont)
        : out_dir_(out_dir), params_(params), synth_(soundfont, params.sample_rate), rng_(params.seed) {}

    void add_source(const fs::path& src) {
        try {
            MidiPerformance midi = read_midi(src);
            if (midi.notes.size() < 8) throw_input("{}: fewer than 8 notes", src.string());
            names_.push_back(work_id_of(src));
            pieces_.push_back(std::move(midi));
        } catch (const Error& e) {
            report_.skipped.emplace_back(src.string(), e.what());
        }
    }

    CorpusReport finish() {
        if (pieces_.size() < 3) throw_input("structure corpora need at least 3 usable MIDI files (got {})", pieces_.size());
        report_.pieces = static_cast<std::int64_t>(pieces_.size());
        const std::int64_t total = 3 * params_.items;
        for (int i = 0; i < params_.items; ++i) {
            add_medley(i);
            add_modulation(i);
            add_climax(i);
            if (params_.on_progress) params_.on_progress(3 * (i + 1), total);
        }
        const nlohmann::json labels = {{"schema", "mess-structure-labels/1"}, {"seed", params_.seed}, {"items", items_}};
        report_.labels_path = out_dir_ / "labels.json";
        write_file_atomic(report_.labels_path, labels.dump(1) + "\n");
        return report_;
    }

private:
    double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
    std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }

    // An excerpt of piece p lasting about `rendered` seconds.
    Excerpt excerpt(std::size_t p, double rendered, double tempo, int transpose, double dest) {
        const MidiPerformance& m = pieces_[p];
        const double len = std::min(rendered / tempo, std::max(4.0, m.notes.back().onset_sec - m.notes.front().onset_sec));
        return Excerpt{&m, excerpt_start(m, len, rng_), len, tempo, dest, transpose};
    }

    // Renders the performance, writes the WAV and MIDI, and records the item.
    void write_item(const std::string& id, MidiPerformance perf, nlohmann::json truth, nlohmann::json sources) {
        std::sort(perf.notes.begin(), perf.notes.end(), [](const MidiNote& a, const MidiNote& b) {
            return a.onset_sec != b.onset_sec ? a.onset_sec < b.onset_sec : a.pitch < b.pitch;
        });
        perf.programs = pieces_.front().programs;
        double end_sec = 0;
        const std::vector<Event> ev = transform_events(perf, Transform{}, perf.end_sec + 0.01, &end_sec);
        std::vector<float> audio = synth_.render(ev, end_sec, params_.sample_rate);
        limit_peak(audio);
        write_smf(out_dir_ / "midi" / (id + ".mid"), ev);
        write_wav16(out_dir_ / "audio" / (id + ".wav"), audio, params_.sample_rate);
        const double duration = static_cast<double>(audio.size()) / params_.sample_rate;
        truth["boundaries"].push_back(duration);
        items_.push_back({{"id", id}, {"file", "audio/" + id + ".wav"}, {"midi", "midi/" + id + ".mid"}, {"licence", params_.licence},
                          {"kind", truth["kind"]}, {"duration_sec", duration}, {"sources", sources}, {"structure", truth}});
        ++report_.renderings;
    }

    // 3–4 excerpts of different pieces, each 12–20 s, transposed −3..+3, tempo 0.9–1.1.
    void add_medley(int i) {
        const int parts = 3 + static_cast<int>(rng_() % 2);
        std::vector<std::size_t> order(pieces_.size());
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::shuffle(order.begin(), order.end(), rng_);
        MidiPerformance perf;
        nlohmann::json truth = {{"kind", "medley"}, {"boundaries", nlohmann::json::array()}, {"sections", nlohmann::json::array()}};
        nlohmann::json sources = nlohmann::json::array();
        double t = 0;
        for (int k = 0; k < parts && k < static_cast<int>(order.size()); ++k) {
            const Excerpt x = excerpt(order[static_cast<std::size_t>(k)], uniform(12, 20), uniform(0.9, 1.1), static_cast<int>(rng_() % 7) - 3, t);
            place_excerpt(x, perf, [](double, int v) { return v; });
            truth["boundaries"].push_back(t);
            truth["sections"].push_back({{"start", t}, {"label", std::string(1, static_cast<char>('A' + k))}});
            sources.push_back({{"work_id", names_[order[static_cast<std::size_t>(k)]]}, {"source_start", x.src_start}, {"transpose", x.transpose}});
            t += x.rendered_len();
        }
        write_item(fmt::format("medley-{:02d}", i), std::move(perf), std::move(truth), std::move(sources));
    }

    // An excerpt of 12–20 s followed by itself transposed by ±1..6 semitones.
    void add_modulation(int i) {
        static const int intervals[] = {-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6};
        const std::size_t p = pick(pieces_.size());
        const int interval = intervals[pick(std::size(intervals))];
        Excerpt a = excerpt(p, uniform(12, 20), uniform(0.9, 1.1), 0, 0);
        Excerpt b = a;
        b.dest = a.rendered_len();
        b.transpose = interval;
        MidiPerformance perf;
        place_excerpt(a, perf, [](double, int v) { return v; });
        place_excerpt(b, perf, [](double, int v) { return v; });
        const int from = symbolic_key(a), to = (from % 12 + interval + 12) % 12 + (from >= 12 ? 12 : 0);
        const double m = b.dest;
        nlohmann::json truth = {{"kind", "modulation"}, {"boundaries", nlohmann::json::array({0.0, m})}};
        truth["keys"] = nlohmann::json::array({nlohmann::json{{"start", 0.0}, {"end", m}, {"key", key_name(from)}},
                                               nlohmann::json{{"start", m}, {"key", key_name(to)}}});
        truth["modulations"] = nlohmann::json::array(
            {nlohmann::json{{"time", m}, {"from", key_name(from)}, {"to", key_name(to)}, {"interval", interval}}});
        nlohmann::json sources = nlohmann::json::array({nlohmann::json{{"work_id", names_[p]}, {"source_start", a.src_start}, {"source_seconds", a.src_len}}});
        write_item(fmt::format("modulation-{:02d}", i), std::move(perf), std::move(truth), std::move(sources));
    }

    // 24–40 s of a piece whose velocities swell linearly from 40 % to full at the climax (30–75 % of the
    // way through) and fall back to 40 % at the end.
    void add_climax(int i) {
        const std::size_t p = pick(pieces_.size());
        const Excerpt x = excerpt(p, uniform(24, 40), 1.0, 0, 0);
        const double len = x.rendered_len(), peak = uniform(0.3, 0.75) * len;
        MidiPerformance perf;
        place_excerpt(x, perf, [&](double t, int) {
            const double g = t <= peak ? 0.4 + 0.6 * t / peak : 1.0 - 0.6 * (t - peak) / std::max(1e-9, len - peak);
            return static_cast<int>(std::lround(127.0 * g));
        });
        nlohmann::json truth = {{"kind", "climax"}, {"boundaries", nlohmann::json::array({0.0})}};
        truth["climax"] = nlohmann::json{{"time", peak}};
        nlohmann::json sources = nlohmann::json::array({nlohmann::json{{"work_id", names_[p]}, {"source_start", x.src_start}, {"source_seconds", x.src_len}}});
        write_item(fmt::format("climax-{:02d}", i), std::move(perf), std::move(truth), std::move(sources));
    }

    const fs::path& out_dir_;
    const StructureCorpusParams& params_;
    Synth synth_;
    std::mt19937_64 rng_;
    std::vector<MidiPerformance> pieces_;
    std::vector<std::string> names_;
    CorpusReport report_;
    nlohmann::json items_ = nlohmann::json::array();
};

}  // namespace

CorpusReport render_structure_corpus(const std::vector<fs::path>& midi_files, const fs::path& out_dir, const StructureCorpusParams& params) {
    if (params.items < 1 || params.items > 100) throw_usage("items must be 1..100 per kind (got {})", params.items);
    if (params.sample_rate < 8000 || params.sample_rate > 96000) throw_usage("sample rate must be 8000..96000 Hz");
    if (midi_files.empty()) throw_usage("no MIDI files given");
    CorpusParams base;
    base.soundfont = params.soundfont;
    const fs::path soundfont = find_soundfont(base);
    fs::create_directories(out_dir / "audio");
    fs::create_directories(out_dir / "midi");
    auto sources = midi_files;
    std::sort(sources.begin(), sources.end());
    StructureCorpusWriter writer(out_dir, params, soundfont);
    for (const fs::path& src : sources) writer.add_source(src);
    return writer.finish();
}

}  // namespace mess
