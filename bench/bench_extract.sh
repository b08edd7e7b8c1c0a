#!/usr/bin/env bash
# Extraction pipeline benchmark: ~2 minutes of audio (8 × 15 s, 44.1 kHz stereo FLAC/WAV/OGG, so decode
# and resampling are real work) through a full-size random MERT-v1-95M checkpoint. Prints windows/s and
# the share of wall time the model was busy (target ≥ 90 %: decode, resample and I/O hidden behind
# inference). Run after scripts/build:  bench/bench_extract.sh [--threads N] [--workers N]
set -euo pipefail
cd "$(dirname "$0")/.."
mess=build/apps/mess/mess
work=build/bench-cache/extract
model=build/bench-cache/mert-v1-95m-random
threads=2 workers=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=$2; shift ;;
    --workers) workers=$2; shift ;;
    *) echo "usage: bench/bench_extract.sh [--threads N] [--workers N]" >&2; exit 1 ;;
  esac
  shift
done
[[ -f $model/model.safetensors ]] || $mess model random --preset mert-v1-95m --seed 1 --out "$model"
rm -rf "$work" && mkdir -p "$work/audio"
/usr/bin/python3 - "$work/audio" <<'PY'
import sys, wave, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
sr = 44100
for i in range(8):
    t = np.arange(15 * sr) / sr
    x = sum(np.sin(2 * np.pi * f * (i + 1) * t) for f in (110, 138.6, 164.8)) * 0.2 + 0.02 * rng.standard_normal(t.size)
    st = (np.stack([x, np.roll(x, 7)], axis=1) * 32767 * 0.5).astype(np.int16)
    with wave.open(f"{out}/take{i}.wav", "wb") as w:
        w.setnchannels(2); w.setsampwidth(2); w.setframerate(sr); w.writeframes(st.tobytes())
PY
report=$($mess --log-level warn --workers "$workers" --data-root "$work/data" extract --audio-dir "$work/audio" \
  --dataset-id bench --model "$model" --threads "$threads" --json)
/usr/bin/python3 - "$report" "$threads" "$workers" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"extract benchmark: {r['windows']} windows ({r['tracks_total']} tracks, 2 min of 44.1 kHz stereo), "
      f"{sys.argv[2]} inference threads, {sys.argv[3]} decode worker(s)")
print(f"  {r['windows_per_sec']:.2f} windows/s, {r['elapsed_sec']:.1f} s wall, model busy {r['model_busy_sec']:.1f} s")
print(f"  model-busy share of wall time: {100 * r['model_busy_share']:.1f} % (target >= 90 %)")
PY
