// Standard MIDI File reader and MIDI targets.
#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <optional>

#include "mess/dsp.hpp"
#include "mess/targets.hpp"
#include "stats.hpp"

namespace mess {
namespace {

struct RawEvent {
    std::uint64_t tick;
    int order;       // file order, to keep simultaneous events stable
    int kind;        // 0 tempo, 1 note on, 2 note off, 3 control change, 4 end of track, 5 program change
    int channel, a, b;
    std::uint32_t tempo_us = 0;
};

class Reader {
public:
    Reader(std::string_view d, const std::string& name) : d_(d), name_(name) {}
    [[noreturn]] void fail(const std::string& why) const { throw_input("{}: malformed MIDI at byte {}: {}", name_, pos_, why); }
    bool done() const { return pos_ >= d_.size(); }
    std::size_t pos() const { return pos_; }
    std::size_t size() const { return d_.size(); }
    std::uint32_t u8() {
        if (pos_ >= d_.size()) fail("unexpected end of file");
        return static_cast<unsigned char>(d_[pos_++]);
    }
    std::uint32_t be(int n) {
        std::uint32_t v = 0;
        for (int i = 0; i < n; ++i) v = v << 8 | u8();
        return v;
    }
    std::uint32_t vlq() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const std::uint32_t b = u8();
            v = v << 7 | (b & 0x7f);
            if (!(b & 0x80)) return v;
        }
        fail("variable-length quantity longer than 4 bytes");
    }
    std::string_view take(std::size_t n) {
        if (n > d_.size() - pos_) fail(fmt::format("chunk or event of {} bytes runs past the end of the file", n));
        auto s = d_.substr(pos_, n);
        pos_ += n;
        return s;
    }

private:
    std::string_view d_;
    std::string name_;
    std::size_t pos_ = 0;
};

struct MidiHeader {
    std::uint32_t ntracks, division;
};

// The MThd chunk: format 0 or 1, the number of tracks and the time division.
MidiHeader read_header(Reader& r, const std::string& name) {
    if (r.size() < 14 || r.take(4) != "MThd") throw_input("{}: not a Standard MIDI File (no MThd header)", name);
    const std::uint32_t hlen = r.be(4);
    if (hlen < 6) r.fail("header shorter than 6 bytes");
    const std::uint32_t format = r.be(2), ntracks = r.be(2), division = r.be(2);
    r.take(hlen - 6);
    if (format > 1) throw_input("{}: MIDI format {} is not supported (formats 0 and 1)", name, format);
    if (division == 0) r.fail("time division 0");
    if ((division & 0x8000) && ((division & 0xff) == 0 || static_cast<std::int8_t>(division >> 8) >= 0))
        r.fail("SMPTE time division with 0 ticks per frame or a non-negative frame rate");
    return {ntracks, division};
}

// The events of one MTrk chunk, appended to `events` with running file order.
class TrackReader {
public:
    TrackReader(Reader& r, std::vector<RawEvent>& events, int& order) : r_(r), events_(events), order_(order) {}

    void read(std::size_t end) {
        while (r_.pos() < end) {
            if (ended_) r_.fail("events after end-of-track");
            tick_ += r_.vlq();
            const std::uint32_t first = r_.u8();
            if (first == 0xff) meta_event();
            else if (first == 0xf0 || first == 0xf7) sysex_event();
            else channel_event(first);
        }
        if (r_.pos() != end) r_.fail("an event runs past the end of its track");
        if (!ended_) r_.fail("track without end-of-track");
    }

private:
    void add(int kind, std::uint32_t channel, std::uint32_t a, std::uint32_t b, std::uint32_t tempo_us = 0) {
        events_.push_back({tick_, order_++, kind, static_cast<int>(channel), static_cast<int>(a), static_cast<int>(b), tempo_us});
    }

    void meta_event() {
        const std::uint32_t type = r_.u8(), mlen = r_.vlq();
        const std::string_view data = r_.take(mlen);
        if (type == 0x2f) {
            ended_ = true;
            add(4, 0, 0, 0);  // the file lasts until its last end-of-track
        }
        if (type == 0x51) add(0, 0, 0, 0, tempo_of(data, mlen));
        status_ = 0;  // meta and SysEx cancel running status
    }

    std::uint32_t tempo_of(std::string_view data, std::uint32_t mlen) const {
        if (mlen != 3) r_.fail("tempo meta event with length " + std::to_string(mlen));
        const auto tempo = static_cast<std::uint32_t>(static_cast<unsigned char>(data[0]) << 16 | static_cast<unsigned char>(data[1]) << 8 |
                                                      static_cast<unsigned char>(data[2]));
        if (tempo == 0) r_.fail("tempo of 0 µs per quarter note");
        return tempo;
    }

    void sysex_event() {
        r_.take(r_.vlq());
        status_ = 0;
    }

    void channel_event(std::uint32_t first) {
        std::uint32_t d1;
        if (first & 0x80) {
            if (first >= 0xf0) r_.fail(fmt::format("system message 0x{:02x} inside a track", first));
            status_ = first;
            d1 = r_.u8();
        } else {
            if (!status_) r_.fail("data byte without a running status");
            d1 = first;
        }
        const std::uint32_t type = status_ & 0xf0, channel = status_ & 0x0f;
        const bool two = type != 0xc0 && type != 0xd0;
        const std::uint32_t d2 = two ? r_.u8() : 0;
        if (d1 > 127 || d2 > 127) r_.fail("data byte above 127");
        if (type == 0x90 && d2 > 0) add(1, channel, d1, d2);
        else if (type == 0x80 || type == 0x90) add(2, channel, d1, 0);
        else if (type == 0xb0) add(3, channel, d1, d2);
        else if (type == 0xc0) add(5, channel, d1, 0);
    }

    Reader& r_;
    std::vector<RawEvent>& events_;
    int& order_;
    std::uint64_t tick_ = 0;
    std::uint32_t status_ = 0;
    bool ended_ = false;
};

// Every track's events in file order; unknown chunks are skipped, as the standard asks.
std::vector<RawEvent> read_tracks(Reader& r, std::uint32_t ntracks, const std::string& name) {
    std::vector<RawEvent> events;
    int order = 0;
    std::uint32_t tracks_seen = 0;
    while (!r.done()) {
        const std::string_view id = r.take(4);
        const std::uint32_t len = r.be(4);
        const std::size_t end = r.pos() + len;
        if (len > r.size() - r.pos()) r.fail(fmt::format("chunk '{}' of {} bytes is truncated", std::string(id), len));
        if (id != "MTrk") {
            r.take(len);
            continue;
        }
        ++tracks_seen;
        TrackReader(r, events, order).read(end);
    }
    if (tracks_seen != ntracks) throw_input("{}: header announces {} track(s), file holds {}", name, ntracks, tracks_seen);
    return events;
}

// By tick; at equal ticks tempo changes first, then file order.
void sort_by_time(std::vector<RawEvent>& events) {
    std::stable_sort(events.begin(), events.end(), [](const RawEvent& a, const RawEvent& b) {
        return a.tick != b.tick ? a.tick < b.tick : (a.kind == 0) > (b.kind == 0) || ((a.kind == 0) == (b.kind == 0) && a.order < b.order);
    });
}

// Ticks → seconds through the tempo map (PPQ), or a fixed rate (SMPTE).
class TickClock {
public:
    explicit TickClock(std::uint32_t division)
        : division_(division),
          smpte_(division & 0x8000),
          smpte_tick_(smpte_ ? 1.0 / (-static_cast<std::int8_t>(division >> 8) * static_cast<double>(division & 0xff)) : 0.0) {}

    // Seconds at `tick` (ticks arrive in order).
    double advance(std::uint64_t tick) {
        seconds_ += smpte_ ? static_cast<double>(tick - last_tick_) * smpte_tick_
                           : static_cast<double>(tick - last_tick_) * tempo_ / 1e6 / static_cast<double>(division_);
        last_tick_ = tick;
        return seconds_;
    }
    void set_tempo(std::uint32_t us_per_quarter) { tempo_ = us_per_quarter; }
    double seconds() const { return seconds_; }

private:
    std::uint32_t division_;
    bool smpte_;
    double smpte_tick_;
    double tempo_ = 500000.0, seconds_ = 0.0;
    std::uint64_t last_tick_ = 0;
};

// Timed events → notes (each note-off closes the oldest sounding note of its channel and pitch), sustain
// pedal intervals and each channel's first program.
class Performer {
public:
    void play(const RawEvent& e, double seconds) {
        switch (e.kind) {
            case 1: sounding_[{e.channel, e.a}].push_back({seconds, e.b}); break;
            case 2: note_off(e, seconds); break;
            case 5:
                if (out_.programs[static_cast<std::size_t>(e.channel)] < 0) out_.programs[static_cast<std::size_t>(e.channel)] = e.a;
                break;
            case 3: sustain_pedal(e, seconds); break;
        }
    }

    // Notes and pedals still held end with the file.
    MidiPerformance finish(double end_sec) {
        out_.end_sec = end_sec;
        for (auto& [key, q] : sounding_)
            for (auto [on, vel] : q) out_.notes.push_back({on, end_sec, key.second, vel, key.first});
        for (auto [ch, down] : pedal_down_) out_.pedal.emplace_back(down, end_sec);
        std::sort(out_.notes.begin(), out_.notes.end(), [](const MidiNote& a, const MidiNote& b) {
            return a.onset_sec != b.onset_sec ? a.onset_sec < b.onset_sec : a.pitch < b.pitch;
        });
        std::sort(out_.pedal.begin(), out_.pedal.end());
        return std::move(out_);
    }

private:
    void note_off(const RawEvent& e, double seconds) {
        auto& q = sounding_[{e.channel, e.a}];
        if (q.empty()) return;  // a stray note-off: nothing to close
        out_.notes.push_back({q.front().first, seconds, e.a, q.front().second, e.channel});
        q.pop_front();
    }

    void sustain_pedal(const RawEvent& e, double seconds) {
        if (e.a != 64) return;
        if (e.b >= 64 && !pedal_down_.count(e.channel)) pedal_down_[e.channel] = seconds;
        else if (e.b < 64 && pedal_down_.count(e.channel)) {
            out_.pedal.emplace_back(pedal_down_[e.channel], seconds);
            pedal_down_.erase(e.channel);
        }
    }

    MidiPerformance out_;
    std::map<std::pair<int, int>, std::deque<std::pair<double, int>>> sounding_;  // (channel, pitch) → (onset, velocity)
    std::map<int, double> pedal_down_;
};

MidiPerformance perform(const std::vector<RawEvent>& events, std::uint32_t division) {
    TickClock clock(division);
    Performer performer;
    for (const auto& e : events) {
        const double seconds = clock.advance(e.tick);
        if (e.kind == 0) clock.set_tempo(e.tempo_us);
        else performer.play(e, seconds);
    }
    return performer.finish(clock.seconds());
}

}  // namespace

MidiPerformance parse_midi(std::string_view bytes, const std::string& name) {
    Reader r(bytes, name);
    const MidiHeader header = read_header(r, name);
    std::vector<RawEvent> events = read_tracks(r, header.ntracks, name);
    sort_by_time(events);
    return perform(events, header.division);
}

MidiPerformance read_midi(const std::filesystem::path& path) { return parse_midi(read_file(path), path.string()); }

std::filesystem::path find_midi_for(const std::filesystem::path& audio) {
    std::error_code ec;
    const std::string stem = audio.stem().string();
    for (const char* ext : {".mid", ".midi", ".MID", ".MIDI"}) {
        auto p = audio.parent_path() / (stem + ext);
        if (std::filesystem::exists(p, ec)) return p;
    }
    for (const char* ext : {".mid", ".midi"}) {  // SMD: audio/smd/wav-44/<id>.wav ↔ audio/smd/midi/<id>.mid
        auto p = audio.parent_path().parent_path() / "midi" / (stem + ext);
        if (std::filesystem::exists(p, ec)) return p;
    }
    return {};
}

namespace {

using targets_detail::median;
using targets_detail::stdev;

constexpr int kDrumChannel = 9;
using targets_detail::kCurveFrames;

void put(TargetSet& out, const std::string& name, double v) { out.arrays[name] = {static_cast<float>(v)}; }

// The notes with onsets up to `until` seconds (drums left out when `pitched_only`).
std::vector<MidiNote> notes_until(const std::vector<MidiNote>& notes, double until, bool pitched_only) {
    std::vector<MidiNote> kept;
    for (const auto& n : notes)
        if ((!pitched_only || n.channel != kDrumChannel) && n.onset_sec <= until) kept.push_back(n);
    return kept;
}

std::vector<double> velocities(const std::vector<MidiNote>& notes) {
    std::vector<double> v;
    for (const auto& n : notes) v.push_back(n.velocity);
    return v;
}

std::vector<double> onsets(const std::vector<MidiNote>& notes) {
    std::vector<double> v;
    for (const auto& n : notes) v.push_back(n.onset_sec);
    return v;
}

// Spread of the onsets around a grid of the median positive IOI (0 with fewer than 4 onsets).
double onset_timing_std(const std::vector<double>& onset_secs, const std::vector<double>& pos_ioi) {
    if (onset_secs.size() < 4 || pos_ioi.empty()) return 0.0;
    const double g = median(pos_ioi);
    std::vector<double> dev;
    for (double o : onset_secs) dev.push_back(o - std::round(o / g) * g);
    return stdev(dev);
}

// Expression (v1) from every non-drum note of the performance; nothing with fewer than 10 notes.
void add_expression_targets(const std::vector<MidiNote>& notes, TargetSet& out) {
    if (notes.size() < 10) return;
    const std::vector<double> vel = velocities(notes);
    std::vector<double> pos_ioi, ratio_dur, bpm;
    for (std::size_t i = 0; i + 1 < notes.size(); ++i) {
        const double ioi = notes[i + 1].onset_sec - notes[i].onset_sec;
        if (ioi > 0) {
            pos_ioi.push_back(ioi);
            ratio_dur.push_back((notes[i].offset_sec - notes[i].onset_sec) / ioi);
            bpm.push_back(60.0 / ioi);
        }
    }
    std::vector<double> ratios;
    for (std::size_t i = 0; i + 1 < pos_ioi.size(); ++i) ratios.push_back(pos_ioi[i] / pos_ioi[i + 1]);
    put(out, "expression/rubato", pos_ioi.size() >= 3 ? stdev(ratios) : 0.0);
    put(out, "expression/velocity_mean", targets_detail::mean(vel));
    put(out, "expression/velocity_std", stdev(vel));
    put(out, "expression/velocity_range", *std::max_element(vel.begin(), vel.end()) - *std::min_element(vel.begin(), vel.end()));
    put(out, "expression/articulation_ratio", ratio_dur.empty() ? 1.0 : targets_detail::mean(ratio_dur));
    put(out, "expression/tempo_variability", stdev(bpm));
    put(out, "expression/onset_timing_std", onset_timing_std(onsets(notes), pos_ioi));
}

// T6: histogram (16 bins over 0..1.5) of sounding length / IOI; uniform with fewer than 2 notes.
std::vector<float> articulation_histogram(const std::vector<MidiNote>& early, double window) {
    std::vector<float> hist(16, 0.0f);
    if (early.size() < 2) {
        std::fill(hist.begin(), hist.end(), 1.0f / 16);
        return hist;
    }
    for (std::size_t i = 0; i + 1 < early.size(); ++i) {
        const double off = std::min(early[i].offset_sec, window);
        double r = (off - early[i].onset_sec) / std::max(early[i + 1].onset_sec - early[i].onset_sec, 1e-3);
        r = std::clamp(r, 0.0, 1.5);
        hist[static_cast<std::size_t>(std::min(15.0, std::floor(r / 1.5 * 16)))] += 1.0f;
    }
    const float total = std::accumulate(hist.begin(), hist.end(), 0.0f);
    for (auto& h : hist) h /= total;
    return hist;
}

// Spread of the log positive IOIs.
double log_ioi_std(const std::vector<MidiNote>& early) {
    std::vector<double> logioi;
    for (std::size_t i = 0; i + 1 < early.size(); ++i) {
        const double ioi = early[i + 1].onset_sec - early[i].onset_sec;
        if (ioi > 0) logioi.push_back(std::log(ioi + 1e-6));
    }
    return stdev(logioi);
}

// Fraction of each 0.5-s frame held (10-ms steps), zero past the audio, mean over 60 frames.
double pedal_ratio(const std::vector<std::pair<double, double>>& pedal, double duration) {
    double held = 0.0;
    for (int f = 0; f < kCurveFrames; ++f)
        for (int s = 0; s < 50; ++s) {
            const double t = f * 0.5 + (s + 0.5) * 0.01;
            if (t >= duration) continue;
            for (auto [down, up] : pedal)
                if (t >= down && t < up) {
                    held += 1.0;
                    break;
                }
        }
    return held / (60.0 * 50.0);
}

// log2(BPM/60) from the median IOI of the onsets within ±1 s of `centre`; none with fewer than 3 of them.
std::optional<double> local_log2_tempo(const std::vector<double>& onset_secs, double centre) {
    std::vector<double> near;
    for (double o : onset_secs)
        if (std::fabs(o - centre) <= 1.0) near.push_back(o);
    if (near.size() < 3) return std::nullopt;
    std::vector<double> iois;
    for (std::size_t i = 0; i + 1 < near.size(); ++i) iois.push_back(near[i + 1] - near[i]);
    return std::log2(std::clamp(60.0 / median(iois), 40.0, 240.0) / 60.0);
}

// Performance tempo per frame (the previous frame's value where too few onsets), median-filtered; none with
// fewer than 4 distinct onsets.
void add_performance_tempo(const std::vector<MidiNote>& early, TargetSet& out) {
    std::vector<double> onset_secs = onsets(early);
    onset_secs.erase(std::unique(onset_secs.begin(), onset_secs.end()), onset_secs.end());
    if (onset_secs.size() < 4) return;
    std::vector<float> curve(kCurveFrames);
    double previous = 1.0;
    for (int f = 0; f < kCurveFrames; ++f) {
        if (const auto tempo = local_log2_tempo(onset_secs, (f + 0.5) / 2.0)) previous = *tempo;
        curve[static_cast<std::size_t>(f)] = static_cast<float>(previous);
    }
    out.arrays["midi/perf_tempo"] = dsp::median_filter(curve, 3);
}

}  // namespace

void add_midi_targets(const MidiPerformance& midi, double duration, TargetSet& out) {
    out.arrays["midi/available"] = {1.0f};
    add_expression_targets(notes_until(midi.notes, duration, /*pitched_only=*/true), out);
    // T6–T8: every note, first 30 s of the audio.
    const double window = std::min(30.0, duration);
    const std::vector<MidiNote> early = notes_until(midi.notes, window, /*pitched_only=*/false);
    out.arrays["midi/articulation_hist"] = articulation_histogram(early, window);
    if (early.size() >= 2) put(out, "midi/velocity_std", stdev(velocities(early)));
    put(out, "midi/ioi_std", log_ioi_std(early));
    put(out, "midi/pedal_ratio", pedal_ratio(midi.pedal, duration));
    add_performance_tempo(early, out);
}

}  // namespace mess
