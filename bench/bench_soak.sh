#!/usr/bin/env bash
# Soak benchmark of `mess serve`: a small dsp corpus (16 synthetic 8-s recordings, track and clip
# indexes with media), then --seconds (default 600) of saturation from bench/soak_client.py: 8 keep-alive
# clients, a quarter of requests audio uploads (6-s WAV excerpts), the rest similar, passages, track
# lists, waveforms, ranged audio and probes. Reports the server's RSS at start (after a 10-s warm-up) and
# end, its peak, the request, upload and error counts (errors: non-2xx answers or failed connections;
# they should be 0 and RSS flat). Then 500 idle connections and the /health/live p99 under them
# (bench/bench_idle_connections.py).
# Usage: [SERVE_FLAGS="--max-client-connections 1024"] bench/bench_soak.sh [--seconds N] [--clients N] [--idle N] [--mess BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=600 clients=8 idle=500 mess=build/apps/mess/mess
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) secs=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --mess) mess=$2; shift 2 ;;
    *) echo "usage: bench/bench_soak.sh [--seconds N] [--clients N] [--idle N] [--mess BINARY]" >&2; exit 1 ;;
  esac
done
[[ $mess == build/apps/mess/mess ]] && scripts/build release mess >/dev/null
work=bench-data/soak
if [[ ! -d $work/indices/clip_index ]]; then
  rm -rf "$work" && mkdir -p "$work/audio" "$work/uploads"
  /usr/bin/python3 - "$work" <<'PY'
import math, random, struct, sys, wave
work = sys.argv[1]
def write(path, seconds, seed):
    rnd = random.Random(seed)
    rate, notes = 24000, [rnd.choice([48, 52, 55, 57, 60, 64, 67, 69, 72]) for _ in range(16)]
    frames = bytearray()
    for i in range(int(seconds * rate)):
        t = i / rate
        f = 440 * 2 ** ((notes[int(t * 2) % len(notes)] - 69) / 12)
        v = 0.3 * math.sin(2 * math.pi * f * t) + 0.1 * math.sin(2 * math.pi * 2 * f * t) + 0.02 * rnd.uniform(-1, 1)
        frames += struct.pack("<h", int(max(-1, min(1, v)) * 32767))
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(bytes(frames))
for k in range(16):
    write(f"{work}/audio/soak{k:02d}.wav", 8, k)
for k in range(4):
    write(f"{work}/uploads/up{k}.wav", 6, 100 + k)
PY
  m="$mess --log-level warn --data-root $work"
  $m extract --model dsp --audio-dir "$work/audio" --dataset-id soak >/dev/null
  $m index build --kind track --audio-dir "$work/audio" --dataset-id soak --out "$work/indices" >/dev/null
  $m index build --kind clip --audio-dir "$work/audio" --dataset-id soak --out "$work/indices" >/dev/null
fi
tracks=$(ls "$work/audio" | sed 's/\.wav$//' | paste -sd,)
port=18977
$mess --log-level warn --data-root "$work" serve --index "$work/indices" --port $port --max-upload-mb 4 ${SERVE_FLAGS:-} > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
echo "warm-up 10 s"
/usr/bin/python3 bench/soak_client.py --port $port --pid $pid --seconds 10 --clients "$clients" --uploads "$work/uploads" --tracks "$tracks" > /dev/null
echo "soak: $secs s, $clients clients, $(nproc) cores shared by server and client"
out=$(/usr/bin/python3 bench/soak_client.py --port $port --pid $pid --seconds "$secs" --clients "$clients" --uploads "$work/uploads" --tracks "$tracks")
/usr/bin/python3 - "$out" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
rss = [m for _, m in r["rss_mb"]]
print(f"requests {r['requests']} ({r['requests'] / r['seconds']:.0f}/s), uploads {r['uploads']}, errors {r['errors']} {r['error_kinds'] or ''}")
print(f"RSS start {rss[0]:.1f} MB, end {rss[-1]:.1f} MB, peak {max(rss):.1f} MB; samples: {' '.join(f'{m:.0f}' for m in rss[::max(1, len(rss) // 12)])}")
PY
if [[ $idle -gt 0 ]]; then
  /usr/bin/python3 bench/bench_idle_connections.py --port $port --idle "$idle" --probes 200
fi
