#!/usr/bin/python3
"""Golden values for the probe confidence band (tests/probe/test_probe.cpp, ConfidenceBand tests).

Computed independently of the C++ code with NumPy: NumPy's legacy RandomState(seed) is the same MT19937
as std::mt19937(seed), so its raw 32-bit outputs drive the same group draws (index = output mod G); R² is
scikit-learn's r2_score convention; percentiles are NumPy's default linear interpolation.
Run: /usr/bin/python3 tests/probe/band_golden.py
"""
import numpy as np

TRUTH = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
PRED = np.array([1.5, 1.8, 3.4, 3.6, 5.9, 5.1, 6.2, 8.8, 8.1, 10.7])
GROUPS = ["b", "b", "a", "a", "c", "c", "e", "e", "d", "d"]
FOLDS = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def r2(t, p):
    ss_tot = ((t - t.mean()) ** 2).sum()
    ss_res = ((t - p) ** 2).sum()
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def band(groups, resamples, seed, level):
    names = sorted(set(groups))
    members = [[i for i, g in enumerate(groups) if g == n] for n in names]
    raw = np.random.RandomState(seed)._bit_generator.random_raw(resamples * len(names))
    scores = []
    for b in range(resamples):
        rows = []
        for k in range(len(names)):
            rows += members[int(raw[b * len(names) + k]) % len(names)]
        scores.append(r2(TRUTH[rows], PRED[rows]))
    tail = (1 - level) / 2
    return np.percentile(scores, 100 * tail), np.percentile(scores, 100 * (1 - tail))


if __name__ == "__main__":
    print("pooled r2 %.12f" % r2(TRUTH, PRED))
    print("fold r2", ["%.12f" % r2(TRUTH[f], PRED[f]) for f in FOLDS])
    print("band groups seed 7, 50 resamples, 0.95: %.12f %.12f" % band(GROUPS, 50, 7, 0.95))
    print("band rows seed 42, 200 resamples, 0.9: %.12f %.12f" % band([str(i) for i in range(10)], 200, 42, 0.9))
