#!/usr/bin/env bash
# Checks that two builds of `mess` give the same outputs on one corpus: extraction (.npy views and
# sidecars), track and clip index builds (index.faiss, records, vectors, layers, manifests) and searches
# (track, passage, aspect, audio). Sidecars are compared without created_at_utc and audio_path (which may
# be stored relative to the data root); manifests without their version id, creation time and paths.
# Both index builds take their aspects from the OLD run's probing results, so that index building and
# search are compared on equal inputs; the two probing results are compared on their own (reported, not
# counted: probing may change by design).
# Usage: tools/dev/compare_outputs.sh OLD_MESS NEW_MESS [WORKDIR]
# The corpus: 3 pianobooster pieces × 3 variants rendered by fluidsynth (scripts/fetch-midi), 30 s each.
set -euo pipefail
old=$(realpath "${1:?usage: compare_outputs.sh OLD_MESS NEW_MESS [WORKDIR]}")
new=$(realpath "${2:?usage: compare_outputs.sh OLD_MESS NEW_MESS [WORKDIR]}")
work=${3:-$(mktemp -d)}
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$work"
if [[ ! -f $work/corpus/labels.json ]]; then
  "$root/scripts/fetch-midi" "$work/midi"
  mkdir -p "$work/midi3"
  ls "$work/midi/booster/"*.mid | head -3 | while read -r f; do cp "$f" "$work/midi3/"; done
  "$old" corpus render --midi "$work/midi3" --out "$work/corpus" --variants 3 --seed 5 --max-seconds 30 >/dev/null
fi

run() {  # run NAME MESS
  local name=$1 mess=$2 d=$work/$1
  rm -rf "$d" && mkdir -p "$d/data"
  local m=(--data-root "$d/data" --log-level warn)
  "$mess" extract "${m[@]}" --audio-dir "$work/corpus/audio" --dataset-id corpus --model dsp --json > "$d/extract.json"
  "$mess" targets "${m[@]}" --audio-dir "$work/corpus/audio" --dataset-id corpus --json > "$d/targets.json" 2>/dev/null || true
  "$mess" probe "${m[@]}" --audio-dir "$work/corpus/audio" --dataset-id corpus --json > "$d/probe.json" 2>/dev/null || true
  for kind in track clip; do
    "$mess" index build "${m[@]}" --audio-dir "$work/corpus/audio" --dataset-id corpus --kind $kind --out "$d/indices" \
      --results "$work/old/data/probing/corpus/layer_discovery_results.json" --json > "$d/build_$kind.json"
  done
  local track; track=$(ls "$work/corpus/audio" | head -1); track=${track%.*}
  "$mess" search "${m[@]}" --index "$d/indices" --name track_index --track "$track" --k 5 --json > "$d/search_track.json"
  "$mess" search "${m[@]}" --index "$d/indices" --name clip_index --track "$track" --start 10 --k 5 --json > "$d/search_clip.json"
  "$mess" search "${m[@]}" --index "$d/indices" --name clip_index --audio "$work/corpus/audio/$track.wav" --start 2.5 --k 5 --json > "$d/search_audio.json"
  "$mess" search "${m[@]}" --index "$d/indices" --name track_index --track "$track" --aspect dynamics --min-r2 -1000 --k 5 --json \
    > "$d/search_aspect.json" 2>&1 || true
}

run old "$old"
run new "$new"
/usr/bin/python3 - "$work" <<'PY'
import gzip, json, sys
from pathlib import Path
work = Path(sys.argv[1]); old, new = work / "old", work / "new"
bad = 0
def same(a, b, what):
    global bad
    if a != b:
        bad += 1
        print("DIFFERENT", what)
def strip_json(text, drop):
    j = json.loads(text)
    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str):
            return x.replace(str(old), "ROOT").replace(str(new), "ROOT")
        return x
    return walk(j)
files = 0
for a in sorted((old / "data" / "embeddings").rglob("*")):
    if not a.is_file() or a.name.startswith(".") or ".locks" in a.parts or a.name.startswith("extract_report"):
        continue
    b = new / a.relative_to(old)
    files += 1
    if a.suffix == ".json":
        same(strip_json(a.read_text(), {"created_at_utc", "audio_path"}), strip_json(b.read_text(), {"created_at_utc", "audio_path"}), a.relative_to(old))
    else:
        same(a.read_bytes(), b.read_bytes(), a.relative_to(old))
drop = {"created_at_utc", "artifact_version_id", "version_id", "artifact_dir", "feature_source_dir", "probing_results", "index"}
for kind in ("track", "clip"):
    da = next((old / "indices" / f"{kind}_index").iterdir()); db = next((new / "indices" / f"{kind}_index").iterdir())
    for f in sorted(da.iterdir()):
        g = db / f.name
        files += 1
        if f.name in ("manifest.json", "checksums.json"):
            ja, jb = strip_json(f.read_text(), drop), strip_json(g.read_text(), drop)
            if f.name == "checksums.json":
                ja.pop("manifest.json", None); jb.pop("manifest.json", None)
            same(ja, jb, f"{kind} {f.name}")
        elif f.name.endswith(".gz"):
            same(gzip.decompress(f.read_bytes()), gzip.decompress(g.read_bytes()), f"{kind} {f.name}")
        else:
            same(f.read_bytes(), g.read_bytes(), f"{kind} {f.name}")
for s in ("search_track", "search_clip", "search_audio", "search_aspect"):
    files += 1
    ta, tb = (old / f"{s}.json").read_text(), (new / f"{s}.json").read_text()
    try:
        same(strip_json(ta, drop), strip_json(tb, drop), s)
    except json.JSONDecodeError:
        same(ta.replace(str(old), "ROOT"), tb.replace(str(new), "ROOT"), s)
probe = "probing/corpus/layer_discovery_results.json"
same_probe = json.loads((old / "data" / probe).read_text()) == json.loads((new / "data" / probe).read_text())
print("probing results:", "identical" if same_probe else "different (not counted)")
print(f"{files} outputs compared, {bad} different")
sys.exit(1 if bad else 0)
PY
