#!/usr/bin/env bash
# Proxy-target benchmark: seconds of computation per minute of audio for the full target set (15 scalars,
# 5 curves, per-window values, MIDI targets when a .mid sits beside the audio), on 4 generated 60-s tracks
# (44.1 kHz stereo, so decoding and resampling are included). Run after scripts/build: bench/bench_targets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mess=build/apps/mess/mess
work=build/bench-cache/targets
rm -rf "$work" && mkdir -p "$work/audio"
/usr/bin/python3 - "$work/audio" <<'PY'
import sys, wave, numpy as np
sr, out = 44100, sys.argv[1]
rng = np.random.default_rng(0)
for i in range(4):
    t = np.arange(60 * sr) / sr
    beat = (np.sin(2 * np.pi * (1.5 + 0.25 * i) * t) > 0.95).astype(float) * rng.standard_normal(t.size) * 0.3
    x = sum(np.sin(2 * np.pi * f * (1 + i / 12) * t) for f in (196.0, 246.9, 293.7)) * 0.15 * (0.5 + 0.5 * t / 60) + beat
    st = (np.stack([x, x], axis=1) * 32767 * 0.5).astype(np.int16)
    with wave.open(f"{out}/track{i}.wav", "wb") as w:
        w.setnchannels(2); w.setsampwidth(2); w.setframerate(sr); w.writeframes(st.tobytes())
PY
report=$($mess --log-level warn --data-root "$work/data" targets --audio-dir "$work/audio" --dataset-id bench --json)
/usr/bin/python3 - "$report" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"targets benchmark: {r['computed']} tracks, {r['audio_seconds']:.0f} s of audio in {r['elapsed_sec']:.1f} s")
print(f"  {r['seconds_per_audio_minute']:.2f} s per minute of audio (real-time factor {r['elapsed_sec'] / r['audio_seconds']:.3f})")
PY
