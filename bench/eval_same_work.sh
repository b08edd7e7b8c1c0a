#!/usr/bin/env bash
# Same-work retrieval held out, end to end through the product: the same-work geometry (mess train
# same-work: LDA on the dsp harmony layer) learned on the development corpus of scripts/dev-corpus (93
# works, never evaluated on), then the Booster Music corpus of scripts/corpus (7 works, never trained on)
# indexed as passages with that geometry and evaluated by `mess eval`: passage → passage, passage → track,
# and track → track ranked from passages in two stages (--rerank), with and without the geometry; then
# passages scored with 3 windows of context each side (--context 3: 20-s queries).
# Prints the MAP lines of each run; reports in OUT/*.json. About 10 minutes on 2 cores once the corpora exist.
# Usage: bench/eval_same_work.sh [OUT=build/dev/same-work] [CORPUS=bench-data/corpus] [DEV=build/dev/corpus]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/dev/same-work}
corpus=${2:-bench-data/corpus}
dev=${3:-build/dev/corpus}
mess=build/apps/mess/mess
[[ -x $mess ]] || scripts/build release mess
[[ -f $corpus/booster/labels.json ]] || scripts/corpus "$corpus"
[[ -f $dev/labels.json ]] || scripts/dev-corpus "$dev"
data=$out/data
mkdir -p "$out"
$mess --data-root "$data" extract --audio-dir "$dev/audio" --dataset-id dev --model dsp > /dev/null
$mess --data-root "$data" extract --audio-dir "$corpus/booster/audio" --dataset-id booster --model dsp > /dev/null
$mess --data-root "$data" train same-work --audio-dir "$dev/audio" --dataset-id dev --labels "$dev/labels.json" \
  --layers 1 --rung lda --out "$out/same-work"
$mess --data-root "$data" index build --audio-dir "$corpus/booster/audio" --dataset-id booster --kind clip \
  --aspect-models "$out/same-work" --name booster-clips --out "$out/indices" > /dev/null
run() {  # run NAME [eval options]
  local name=$1; shift
  echo "== $name"
  $mess --data-root "$data" eval --index "$out/indices" --name booster-clips --labels "$corpus/booster/labels.json" \
    --out "$out/$name.json" "$@" | grep -E ' map '
}
run default-layer --rerank mean-min-sym
run same-work --learned same_work=1 --rerank mean-min-sym
run same-work-one-way --learned same_work=1 --rerank mean-min
run default-layer-context3 --context 3 --no-exact-recall
run same-work-context3 --learned same_work=1 --context 3 --no-exact-recall
