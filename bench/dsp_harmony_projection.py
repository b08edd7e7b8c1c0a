#!/usr/bin/python3
"""Learns the dsp encoder's harmony discriminant (src/model/dsp_harmony_projection.inc): the directions of
the harmony group in which windows of different music differ most relative to how much the SAME music moves
when only its instrument, articulation, level or key changes. The overall layer maps each window's pooled
harmony group onto these directions before weighting it (include/mess/model.hpp).

Data: a factor corpus of development works (`mess corpus render --factors`; scripts/train-aspects makes
factors-train: the Beginner pieces and the Freedoom, Planet Blupi and abcMIDI works, never the Booster
evaluation pieces), extracted with the dsp encoder. Nuisance scatter S_n: for every work, window k of a
rendering with one factor changed (timbre, articulation, dynamics, transpose: the renderings that keep the
base rendering's timing) minus window k of the base rendering, both harmony vectors at unit length. Signal
scatter S_s: the covariance of the base renderings' windows. Directions: the generalised eigenvectors of
S_s v = mu (S_n + r I) v, r = REG times the mean eigenvalue of S_n, largest mu first, normalised so that
v' (S_n + r I) v = 1; the overall layer keeps the first DIMS coordinates v' x.

  learn:  bench/dsp_harmony_projection.py DATA_ROOT DATASET LABELS [--dims 40] [--reg 0.2] [--out INC]
  select: ... --select DEV_ROOT:DEV_DATASET:DEV_METADATA [...]  learns without the development corpora's
          works and prints, for a grid of DIMS and REG, their same-work MAP and the combined variant's mean
          rank (bench/dsp_eval.py) with the overall layer recomputed from their segments view.
The constants in the tree: factors-train (101 works, 2020 renderings), DIMS 40, REG 0.2, chosen with
--select on the Beginner corpora (corpus and corpus8, whose 8 works were left out of the learning).
After a change to the harmony descriptors or the calibration (bench/dsp_calibrate.sh): extract factors-train
again (scripts/train-aspects does; the harmony layer it reads does not depend on this projection), run this,
rebuild, then scripts/train-aspects --ship (the aspect models read the overall layer, which does)."""
import argparse, csv, json, pathlib, sys
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import dsp_eval  # noqa: E402

HARMONY = dsp_eval.DSP_GROUPS[1]
ALIGNED_FACTORS = ("timbre", "articulation", "dynamics", "transpose")
OVERALL_WEIGHTS = (0.10, 1.00, 0.10, 0.05)  # kOverallWeight of src/model/dsp_encoder.cpp


def harmony_windows(root, dataset, track):
    """[S, 87] unit-length harmony group vectors of a track's windows (segments view, layer 1)."""
    path = pathlib.Path(root) / "embeddings" / f"{dataset}-emb" / "segments" / f"{track}.npy"
    if not path.is_file():
        sys.exit(f"dsp_harmony_projection: {path} is missing; extract {dataset} with --model dsp first")
    s = np.load(path).astype(np.float64)
    if s.ndim != 3 or s.shape[1] < 2 or s.shape[2] != dsp_eval.DSP_GROUPS[-1][1]:
        sys.exit(f"dsp_harmony_projection: {path} has shape {s.shape}, not a dsp segments view [S, 6, 144]")
    return dsp_eval.unit(s[:, 1, HARMONY[0]:HARMONY[1]])


def scatters(root, dataset, labels, exclude=frozenset()):
    """(S_n, S_s, pairs): nuisance and signal scatter of the harmony group over the factor corpus's works."""
    if not pathlib.Path(labels).is_file():
        sys.exit(f"dsp_harmony_projection: {labels} is missing (the factor corpus's labels.json)")
    items = json.load(open(labels))["items"]
    base = {it["work_id"]: it["id"] for it in items if it.get("factor") == "base" and it["work_id"] not in exclude}
    if not base:
        sys.exit(f"dsp_harmony_projection: {labels} has no base renderings (a factor corpus: mess corpus render --factors)")
    diffs, bases = [], []
    for it in items:
        if it["work_id"] not in base or it.get("factor") not in ALIGNED_FACTORS:
            continue
        hb, hv = harmony_windows(root, dataset, base[it["work_id"]]), harmony_windows(root, dataset, it["id"])
        n = min(len(hb), len(hv))
        diffs.append(hv[:n] - hb[:n])
    for track in base.values():
        bases.append(harmony_windows(root, dataset, track))
    if not diffs:
        sys.exit(f"dsp_harmony_projection: {labels} has no renderings with one of {', '.join(ALIGNED_FACTORS)} changed")
    d, b = np.concatenate(diffs), np.concatenate(bases)
    return d.T @ d / len(d), np.cov(b.T), len(d)


def discriminant(s_n, s_s, dims, reg):
    """[dims, 87] rows v' with S_s v = mu (S_n + r I) v, largest mu first, v' (S_n + r I) v = 1."""
    b = s_n + reg * np.trace(s_n) / len(s_n) * np.eye(len(s_n))
    l_inv = np.linalg.inv(np.linalg.cholesky(b))
    mu, u = np.linalg.eigh(l_inv @ s_s @ l_inv.T)
    v = l_inv.T @ u[:, ::-1][:, :dims]
    v *= np.where(v[np.abs(v).argmax(axis=0), range(dims)] < 0, -1, 1)  # a fixed sign per direction
    return v.T


def write_inc(path, w, dataset, pairs, dims, reg):
    rows = ",\n".join("    " + ", ".join(f"{x:.9e}f" for x in row) for row in w)  # float32 round trip
    text = (f"// Generated by bench/dsp_harmony_projection.py from {dataset} ({pairs} aligned window pairs), DIMS {dims},"
            f" REG {reg}.\n// Rows: the harmony discriminant directions (largest ratio of signal to nuisance first).\n"
            f"constexpr int kHarmonyDiscriminants = {dims};\n"
            f"constexpr std::array<float, {dims} * {w.shape[1]}> kHarmonyDiscriminant{{\n{rows}}};\n")
    tmp = pathlib.Path(str(path) + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def select(args):
    corpora = []
    for spec in args.select:
        try:
            root, dataset, metadata = spec.split(":")
        except ValueError:
            sys.exit(f"dsp_harmony_projection: --select {spec}: expected DEV_ROOT:DEV_DATASET:DEV_METADATA")
        corpora.append((root, dataset, list(csv.DictReader(open(metadata)))))
    held = frozenset(r["work_id"] for _, _, rows in corpora for r in rows)
    items = json.load(open(args.labels))["items"]
    removed = {it["work_id"] for it in items if it.get("factor") == "base"} & held
    s_n, s_s, pairs = scatters(args.root, args.dataset, args.labels, held)
    print(f"learned from {args.dataset} without {len(removed)} of the {len(held)} development works ({pairs} window pairs)")
    for dims in (0, 16, 24, 32, 40, 48, 64, 87):
        for reg in ((0.05, 0.2) if dims else (0,)):
            w = discriminant(s_n, s_s, dims, reg) if dims else False
            cells = []
            for root, dataset, rows in corpora:
                m, ranks, _ = dsp_eval.scores(rows, dsp_eval.overall_layer(root, dataset, rows, OVERALL_WEIGHTS, w))
                cells.append(f"{dataset}: MAP {m:.3f} combined {ranks.get('combined', float('nan')):.1f}")
            print(f"{'none' if not dims else f'dims {dims} reg {reg}':18s} " + " | ".join(cells), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="data root holding the factor corpus's dsp features (e.g. bench-data/aspects/dsp/data)")
    p.add_argument("dataset", help="its dataset id (e.g. factors-train)")
    p.add_argument("labels", help="its labels.json (mess corpus render --factors)")
    p.add_argument("--dims", type=int, default=40, help="directions kept (1..87; default 40)")
    p.add_argument("--reg", type=float, default=0.2, help="r as a share of the mean nuisance variance (default 0.2)")
    p.add_argument("--out", default=str(REPO / "src/model/dsp_harmony_projection.inc"),
                   help="the generated constants (default: the encoder's, src/model/dsp_harmony_projection.inc)")
    p.add_argument("--select", action="append", default=[], metavar="DEV_ROOT:DEV_DATASET:DEV_METADATA",
                   help="instead of writing: the grid of DIMS and REG scored on these development corpora (repeatable)")
    a = p.parse_args()
    width = HARMONY[1] - HARMONY[0]
    if not 1 <= a.dims <= width or not (np.isfinite(a.reg) and a.reg > 0):
        sys.exit(f"dsp_harmony_projection: --dims must be 1..{width} and --reg > 0 (got {a.dims}, {a.reg})")
    if a.select:
        return select(a)  # the grid of DIMS and REG: --dims and --reg are not used
    if not pathlib.Path(a.out).parent.is_dir():
        sys.exit(f"dsp_harmony_projection: --out {a.out}: its folder does not exist")
    s_n, s_s, pairs = scatters(a.root, a.dataset, a.labels)
    w = discriminant(s_n, s_s, a.dims, a.reg)
    if not np.isfinite(w).all():
        sys.exit(f"dsp_harmony_projection: the discriminant of {a.dataset} is not finite (degenerate scatter); nothing written")
    write_inc(a.out, w, a.dataset, pairs, a.dims, a.reg)
    print(f"{pathlib.Path(a.out).name}: {a.dims} directions from {pairs} window pairs of {a.dataset}")


if __name__ == "__main__":
    sys.exit(main())
