#!/usr/bin/python3
"""Same-work retrieval of an extracted dataset, read straight from its feature store (aggregated view):
track → track MAP of every layer and of layers fused after pooling (Σ w_l·x̂_l over L2-normalised
layers), and, with the as-written rendering (variant 0) as the query, the mean rank of every other
variant kind; with --per-piece KIND, that variant's rank in every piece (which pieces a layer loses). Used
to calibrate the dsp encoder on the development corpus (bench/dsp_calibrate.sh). --overall recomputes the
dsp encoder's overall layer with other group weights exactly as the encoder pools it (per window: each
group's mean over the window's frames, the harmony group on its discriminant, unit length, weighted; then
the mean over windows), from the segments view, so the weights can be tried without extracting again.
Usage: bench/dsp_eval.py DATA_ROOT DATASET_ID METADATA_CSV [--weights w0,w1,...]... [--overall wt,wh,wr,wd]...
       [--per-piece KIND]"""
import argparse, csv, pathlib, re, sys
import numpy as np


def load(root, dataset, metadata):
    rows = list(csv.DictReader(open(metadata)))
    agg = pathlib.Path(root) / "embeddings" / f"{dataset}-emb" / "aggregated"
    x = np.stack([np.load(agg / f"{r['track_id']}.npy") for r in rows]).astype(np.float64)  # [N, L, D]
    return rows, x


# The dsp encoder's descriptor groups (versions 2 and 3): timbre, harmony, rhythm, dynamics (include/mess/model.hpp).
DSP_GROUPS = [(0, 28), (28, 115), (115, 129), (129, 144)]


def overall_layer(root, dataset, rows, weights, discriminant=None):
    """[N, D] track vectors of the overall layer recomputed from the segments view [S, L, D] with `weights`;
    the harmony group mapped by `discriminant` ([K, 87] rows; None: the encoder's built-in one, harmony_discriminant();
    False: none, as before version 3), zero-padded to its block."""
    if len(weights) != len(DSP_GROUPS):
        sys.exit(f"overall layer: {len(weights)} weights given, the dsp encoder has {len(DSP_GROUPS)} groups")
    w = harmony_discriminant() if discriminant is None else discriminant
    seg = pathlib.Path(root) / "embeddings" / f"{dataset}-emb" / "segments"
    out = []
    for r in rows:
        s = np.load(seg / f"{r['track_id']}.npy").astype(np.float64)
        if s.ndim != 3 or s.shape[1] < len(DSP_GROUPS) or s.shape[-1] != DSP_GROUPS[-1][1]:
            sys.exit(f"overall layer: {seg / r['track_id']}.npy has shape {s.shape}, not a dsp segments view [S, 6, 144]")
        win = np.zeros((s.shape[0], s.shape[-1]))
        for g, (a, b) in enumerate(DSP_GROUPS):
            x = unit(s[:, g, a:b])
            if g == 1 and w is not False:
                x = np.pad(x @ w.T, ((0, 0), (0, b - a - len(w))))
            win[:, a:b] = unit(x) * weights[g]
        out.append(win.mean(axis=0))
    return np.stack(out)


def harmony_discriminant(path=pathlib.Path(__file__).resolve().parents[1] / "src/model/dsp_harmony_projection.inc"):
    """[K, 87] the harmony discriminant rows the encoder applies in its overall layer (bench/dsp_harmony_projection.py)."""
    text = pathlib.Path(path).read_text()
    found = re.search(r"kHarmonyDiscriminants = (\d+);", text)
    if not found:
        sys.exit(f"{path}: no kHarmonyDiscriminants (regenerate it: bench/dsp_harmony_projection.py)")
    dims = int(found.group(1))
    values = [float(v) for v in re.findall(r"(-?[\d.]+(?:e[-+]?\d+)?)f", text.split("{", 1)[1])]
    return np.array(values).reshape(dims, -1)


def unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1)


def scores(rows, v):
    """MAP (same work, self excluded), per variant kind the AP of its queries, and the mean rank of each
    variant kind when variant 0 is the query."""
    v = unit(v)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    works = np.array([r["work_id"] for r in rows])
    aps, ranks, by_kind = [], {}, {}
    for q in range(len(rows)):
        order = np.argsort(-sim[q], kind="stable")[:-1]
        rel = works[order] == works[q]
        hits = np.flatnonzero(rel)
        if len(hits):
            aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))
            by_kind.setdefault(rows[q].get("transform", "?"), []).append(aps[-1])
        if rows[q]["track_id"].endswith("__v00"):
            for pos, t in enumerate(order):
                if rel[pos]:
                    ranks.setdefault(rows[t].get("transform", "?"), []).append(pos + 1)
    mean = lambda d: {k: float(np.mean(v)) for k, v in sorted(d.items())}
    return float(np.mean(aps)), mean(ranks), mean(by_kind)


def piece_ranks(rows, v, kind):
    """Per work, the rank of its `kind` variant (1 = nearest) when its variant 0 is the query."""
    v = unit(v)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    out = {}
    for q, r in enumerate(rows):
        if not r["track_id"].endswith("__v00"):
            continue
        order = np.argsort(-sim[q], kind="stable")[:-1]
        for pos, t in enumerate(order):
            if rows[t]["work_id"] == r["work_id"] and rows[t].get("transform") == kind:
                out[r["work_id"]] = pos + 1
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root"), p.add_argument("dataset"), p.add_argument("metadata")
    p.add_argument("--weights", action="append", default=[], help="fused layers after pooling, e.g. 0.4,0.8,0.2,0.2")
    p.add_argument("--overall", action="append", default=[], help="dsp overall layer with these group weights, e.g. 0,1,0,0")
    p.add_argument("--per-piece", metavar="KIND", help="print the rank of this variant kind in every piece, e.g. combined")
    a = p.parse_args()
    rows, x = load(a.root, a.dataset, a.metadata)
    cases = [(f"layer {l}", x[:, l]) for l in range(x.shape[1])]
    for w in a.weights:
        ws = [float(t) for t in w.split(",")]
        cases.append((f"fused {w}", sum(wi * unit(x[:, l]) for l, wi in enumerate(ws))))
    for w in a.overall:
        cases.append((f"overall {w}", overall_layer(a.root, a.dataset, rows, [float(t) for t in w.split(",")])))
    for name, v in cases:
        m, ranks, by_kind = scores(rows, v)
        print(f"{name:20s} MAP {m:.3f}  rank from v0: " + "  ".join(f"{k} {r:.1f}" for k, r in ranks.items()))
        print(f"{'':20s} AP by query variant: " + "  ".join(f"{k} {a:.2f}" for k, a in by_kind.items()))
        if a.per_piece:
            ranks = piece_ranks(rows, v, a.per_piece)
            print(f"{'':20s} {a.per_piece} by piece: " + "  ".join(f"{w} {r}" for w, r in sorted(ranks.items())))


if __name__ == "__main__":
    sys.exit(main())
