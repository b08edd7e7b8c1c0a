#!/usr/bin/env bash
# Same-work retrieval of the DSP backend against the mean-MFCC + mean-chroma baseline, in one run, on the
# corpus scripts/corpus renders from Debian's PianoBooster MIDI files (7 pieces × 7 labelled variants:
# original, tempo+rubato, transposition, dynamics, articulation+pedal, timbre, combined). Prints both
# reports side by side, and the encoders' speed (extraction CPU and wall time, real-time factor on 2 cores,
# and the ratio of dsp's CPU time to the mfcc-chroma reference run: target ≥ 300x real time on 2 cores).
# Usage: bench/bench_eval.sh [WORK=bench-data]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench-data}
mess=$PWD/build/apps/mess/mess
[[ -x $mess ]] || scripts/build release mess
scripts/corpus "$work/corpus" >/dev/null
corpus=$work/corpus/booster
export MESS_DATA_ROOT=$work/data OMP_WAIT_POLICY=passive
rm -rf "$MESS_DATA_ROOT"
mkdir -p "$MESS_DATA_ROOT/metadata" "$work/reports"
audio_sec=$(/usr/bin/python3 -c "import json;print(sum(i['duration_sec'] for i in json.load(open('$corpus/labels.json'))['items']))")
for model in dsp mfcc-chroma; do
  id=bench-$model
  cp "$corpus/metadata.csv" "$MESS_DATA_ROOT/metadata/${id}_metadata.csv"
  /usr/bin/time -f "%e %U %S" -o "$work/time-$model" \
    $mess extract --audio-dir "$corpus/audio" --dataset-id "$id" --model $model --log-level warn >/dev/null
  read -r wall user sys < "$work/time-$model"
  cpu=$(echo "$user + $sys" | bc)
  echo "$cpu" > "$work/cpu-$model"
  # Real time on 2 cores from CPU time (the extraction is CPU-bound and parallel over windows), which a
  # shared machine does not distort the way it distorts wall time.
  printf '%-12s extraction %.1f s wall, %.1f CPU-s for %.0f s of audio: %.0fx real time on 2 cores (%.0fx by wall time)\n' \
    $model "$wall" "$cpu" "$audio_sec" "$(echo "2 * $audio_sec / $cpu" | bc -l)" "$(echo "$audio_sec / $wall" | bc -l)"
  for kind in track clip; do
    $mess index build --audio-dir "$corpus/audio" --dataset-id "$id" --kind $kind --name "${kind}_$model" >/dev/null
    $mess eval --index "$MESS_DATA_ROOT/indices" --name "${kind}_$model" --labels "$corpus/labels.json" \
      --out "$work/reports/${kind}_$model.json" --log-level warn >/dev/null
  done
done
printf 'CPU time ratio dsp / mfcc-chroma (the reference run): %.2f\n' "$(echo "$(cat "$work/cpu-dsp") / $(cat "$work/cpu-mfcc-chroma")" | bc -l)"
for kind in track clip; do
  echo
  echo "== $kind index: A = dsp, B = mfcc-chroma baseline"
  $mess eval compare "$work/reports/${kind}_dsp.json" "$work/reports/${kind}_mfcc-chroma.json" | grep -E "metric|same_work (map|mrr|recall@10|ndcg@10|mean_first)|faithfulness@5"
done
