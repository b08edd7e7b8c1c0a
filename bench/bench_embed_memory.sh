#!/usr/bin/env bash
# Peak memory of embedding one long recording with a full-size random MERT-v1-95M checkpoint (bf16):
# the pooled view (`mess embed --view segments`, which keeps only each window's frame means) against the
# raw view of the same run (every frame's state, [S, 13, 374, 768] floats, kept by necessity). Prints both
# peak RSS figures, their ratio, and the bytes the raw states take. The outputs must agree: the raw view
# averaged over frames equals the segments view (checked here with numpy).
# Run after scripts/build:  bench/bench_embed_memory.sh [--minutes M] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."
mess=build/apps/mess/mess
work=build/bench-cache/embed-memory
model=build/bench-cache/mert-v1-95m-random
minutes=3 threads=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --threads) threads=$2; shift ;;
    *) echo "usage: bench/bench_embed_memory.sh [--minutes M] [--threads N]" >&2; exit 1 ;;
  esac
  shift
done
[[ -f $model/model.safetensors ]] || $mess model random --preset mert-v1-95m --seed 1 --out "$model"
mkdir -p "$work"
/usr/bin/python3 - "$work" "$minutes" "$mess" "$model" "$threads" <<'PY'
import json, resource, subprocess, sys, wave
import numpy as np
work, minutes, mess, model, threads = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
sr = 24000
t = np.arange(int(minutes * 60 * sr)) / sr
x = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.5 * t) + 0.02 * np.random.default_rng(0).standard_normal(t.size)
with wave.open(f"{work}/long.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr); w.writeframes((x * 32767).astype(np.int16).tobytes())

def peak_rss(view):
    # Each view in its own child process, measured by a fresh Python that waits for it alone.
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, mess, "--log-level", "warn", "embed", f"{work}/long.wav", "--model", model,
                          "--precision", "bf16", "--threads", threads, "--view", view, "--out", f"{work}/{view}.npy"],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) * 1024

lean = peak_rss("segments")
full = peak_rss("raw")
raw = np.load(f"{work}/raw.npy", mmap_mode="r")
seg = np.load(f"{work}/segments.npy")
worst = max(float(np.abs(raw[s].astype(np.float64).mean(axis=1) - seg[s]).max()) for s in range(raw.shape[0]))
S, L, T, D = raw.shape
print(f"embed memory benchmark: {minutes:g} min of audio, {S} windows, MERT-v1-95M random, bf16, {threads} threads")
print(f"  raw view (all frames, reference): peak RSS {full / 2**20:8.0f} MiB   (the states alone: {S * L * T * D * 4 / 2**20:.0f} MiB)")
print(f"  segments view (frame means):      peak RSS {lean / 2**20:8.0f} MiB   ratio {lean / full:.3f}")
print(f"  max |mean over frames of raw - segments| = {worst:.2e}")
PY
