#!/usr/bin/env python3
"""Checks that two data roots hold the same results of one dataset: compare_runs.py ROOT_A ROOT_B DATASET.
Compared: every feature-store array (segments, aggregated: equal values, shapes, dtypes), the clip index
CSV, the proxy targets (every array of each .targets.npz), and the index artifacts (each file's SHA-256
from checksums.json, except the manifest, whose stamp and creation time differ). Exit 1 naming the first
difference."""
import csv
import json
import pathlib
import sys

import numpy as np


def newest(d):
    versions = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not versions:
        sys.exit(f"no artifact version in {d}")
    return versions[-1]


def compare(a, b, ds):
    checked = 0
    for view in ("segments", "aggregated"):
        fa = sorted((a / f"embeddings/{ds}-emb" / view).glob("*.npy"))
        fb = sorted((b / f"embeddings/{ds}-emb" / view).glob("*.npy"))
        if [p.name for p in fa] != [p.name for p in fb] or not fa:
            sys.exit(f"{view}: different or no tracks: {len(fa)} vs {len(fb)}")
        for x, y in zip(fa, fb):
            u, v = np.load(x), np.load(y)
            if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(u, v):
                sys.exit(f"{view}/{x.name}: values differ")
            checked += 1
    with open(a / f"metadata/{ds}_clip_index.csv") as fa, open(b / f"metadata/{ds}_clip_index.csv") as fb:
        ra, rb = list(csv.reader(fa)), list(csv.reader(fb))
    if ra != rb or len(ra) < 2:
        sys.exit(f"clip index differs ({len(ra)} vs {len(rb)} rows)")
    ta = sorted((a / f"proxy_targets/{ds}").glob("*.targets.npz"))
    tb = sorted((b / f"proxy_targets/{ds}").glob("*.targets.npz"))
    if [p.name for p in ta] != [p.name for p in tb] or not ta:
        sys.exit(f"proxy targets: different or no tracks: {len(ta)} vs {len(tb)}")
    for x, y in zip(ta, tb):
        u, v = np.load(x), np.load(y)
        if sorted(u.files) != sorted(v.files) or any(not np.array_equal(u[k], v[k], equal_nan=True) for k in u.files):
            sys.exit(f"targets {x.name} differ")
    for name in ("track_index", "clip_index"):
        sa = json.loads((newest(a / "indices" / name) / "checksums.json").read_text())
        sb = json.loads((newest(b / "indices" / name) / "checksums.json").read_text())
        sa.pop("manifest.json", None), sb.pop("manifest.json", None)
        if sa != sb or not sa:
            sys.exit(f"{name}: artifact files differ: {sorted(sa)} vs {sorted(sb)}")
    print(f"equal: {checked} feature arrays, {len(ra) - 1} clips, {len(ta)} target files, 2 index artifacts")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: compare_runs.py ROOT_A ROOT_B DATASET")
    compare(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3])
