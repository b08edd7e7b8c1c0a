#!/usr/bin/env bash
# The development check for aspect training options: trains the four factor aspects on the development
# works minus one part of them and evaluates on that part (works it did not train on), so that a training
# option is chosen without looking at the held-out Booster corpus that scripts/train-aspects reports.
# HELD: beginner (8 piano pieces), dev-abcmidi (17 folk tunes), dev-planetblupi (10), dev-freedoom (66).
# Needs the corpora and features scripts/train-aspects made (run it first). Extra arguments go to
# `mess train aspects` after the shipped configuration of scripts/train-aspects (e.g. --hidden 128).
# Prints per aspect and rung the windows' and tracks' triplet accuracy and content leak; the full report
# in OUT/eval.json. About 8 minutes on 2 cores.
# Usage: bench/aspects_dev_check.sh OUT HELD [train options ...]   (env MESS_ASPECT_ENCODER, default dsp)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { sed -n 2,10p "$0"; exit 2; }
out=$1 held=$2; shift 2
enc=${MESS_ASPECT_ENCODER:-dsp}
aspects=bench-data/aspects
data=$aspects/$enc/data
mess=build/apps/mess/mess
for f in "$aspects/factors-train/labels.json" "$aspects/factors-$held/labels.json"; do
  [[ -f $f ]] || { echo "aspects_dev_check: $f is missing; run scripts/train-aspects first" >&2; exit 1; }
done
mkdir -p "$out"
# The training corpus split by work: HELD's works are evaluated, the others trained on (ids as in factors-train).
/usr/bin/python3 - "$aspects/factors-train/labels.json" "$aspects/factors-$held/labels.json" "$out" <<'PY'
import json, sys
train, part, out = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
held = {it["work_id"] for it in part["items"]}
items = train["items"]
for name, keep in (("labels-train.json", lambda it: it["work_id"] not in held), ("labels-held.json", lambda it: it["work_id"] in held)):
    json.dump(train | {"items": [it for it in items if keep(it)]}, open(f"{out}/{name}", "w"), indent=1)
print(f"{len({it['work_id'] for it in items}) - len(held)} works trained on, {len(held)} held out")
PY
$mess --data-root "$data" train aspects --audio-dir "$aspects/factors-train/audio" --dataset-id factors-train \
  --labels "$out/labels-train.json" --out "$out/models" --rung mlp --dim 32 --hidden 64 --loss infonce --epochs 15 --seed 0 \
  --restarts 3 --ensemble --quiet "$@" > "$out/train.log"
$mess --data-root "$data" eval aspects --audio-dir "$aspects/factors-train/audio" --dataset-id factors-train \
  --labels "$out/labels-held.json" --models "$out/models" --out "$out/eval.json" > /dev/null
/usr/bin/python3 - "$out/eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["aspects"]
print(f"{'aspect':<13} {'rung':<11} windows: accuracy (leak)   tracks: accuracy (leak)")
for aspect, rungs in sorted(r.items()):
    for rung in ("identity", "standardise", "diagonal", "linear", "mlp"):
        if rung in rungs:
            e, t = rungs[rung], rungs[rung]["tracks"]
            print(f"{aspect:<13} {rung:<11} {e['triplet_accuracy']:.3f} ({e['content_leak']:.3f})            "
                  f"{t['triplet_accuracy']:.3f} ({t['content_leak']:.3f})")
PY
