#!/usr/bin/env python3
"""Checks MESS's probe numbers against scikit-learn on the same data (tests/probe/test_probe_sklearn.cpp).

Usage: sklearn_parity.py CASES.npz  — every case <k>/... in the file holds the inputs (X, Y, fold_of_row,
alpha, n, seed) and MESS's outputs (kfold_test_of_row, pred, r2, corr, rmse, r2_mean, r2_pc1, rmse_mean).
Compares with Pipeline([StandardScaler(), Ridge(alpha)]) + cross_val_predict on float64, KFold(shuffle=True,
random_state=seed), r2_score, np.corrcoef and the RMSE; exits 1 naming the first mismatch beyond 1e-6.
"""
import sys

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

TOL = 1e-6
failures = []


def check(case, what, mine, ref):
    mine, ref = np.asarray(mine, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    err = float(np.max(np.abs(mine - ref))) if mine.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    status = "ok" if err <= TOL * scale else "MISMATCH"
    print(f"{case:>10} {what:<12} max |mess - sklearn| = {err:.2e} {status}")
    if status != "ok":
        failures.append(f"{case} {what}")


def pipeline(alpha):
    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])


def main(path):
    data = np.load(path)
    cases = sorted({k.split("/")[0] for k in data.files})
    for c in cases:
        g = lambda name: data[f"{c}/{name}"]
        X, Y = g("X").astype(np.float64), g("Y").astype(np.float64)
        alpha, seed = float(g("alpha")[0]), int(g("seed")[0])
        fold_of_row = g("fold_of_row").astype(int)
        n_folds = int(fold_of_row.max()) + 1

        # KFold(shuffle=True, random_state=seed) must give the same folds as shuffled_kfold.
        kf = np.empty(X.shape[0], dtype=int)
        for f, (_, test) in enumerate(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(X)):
            kf[test] = f
        if not np.array_equal(kf, g("kfold_test_of_row")):
            print(f"{c:>10} folds differ from sklearn KFold: {kf} vs {g('kfold_test_of_row')}")
            failures.append(f"{c} folds")
        cv = [(np.where(fold_of_row != f)[0], np.where(fold_of_row == f)[0]) for f in range(n_folds)]

        pred = cross_val_predict(pipeline(alpha), X, Y if Y.shape[1] > 1 else Y[:, 0], cv=cv)
        pred = pred.reshape(Y.shape)
        check(c, "predictions", g("pred"), pred)
        if Y.shape[1] == 1:
            y, p = Y[:, 0], pred[:, 0]
            corr = 0.0 if np.std(y) == 0 or np.std(p) == 0 else np.corrcoef(y, p)[0, 1]
            check(c, "r2", g("r2"), [r2_score(y, p)])
            check(c, "correlation", g("corr"), [corr])
            check(c, "rmse", g("rmse"), [np.sqrt(np.mean((y - p) ** 2))])
        else:
            check(c, "r2_mean", g("r2_mean"), [r2_score(Y, pred, multioutput="uniform_average")])
            check(c, "rmse_mean", g("rmse_mean"), [np.sqrt(np.mean((Y - pred) ** 2))])
            # First principal component per training fold (sign: largest-magnitude component positive).
            truth, guess = np.empty(len(Y)), np.empty(len(Y))
            for train, test in cv:
                mean = Y[train].mean(axis=0)
                v = np.linalg.svd(Y[train] - mean, full_matrices=False)[2][0]
                v = v if v[np.argmax(np.abs(v))] > 0 else -v
                model = pipeline(alpha).fit(X[train], (Y[train] - mean) @ v)
                truth[test], guess[test] = (Y[test] - mean) @ v, model.predict(X[test])
            check(c, "r2_pc1", g("r2_pc1"), [r2_score(truth, guess) if np.var(truth) > 0 else 0.0])
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    print(f"all {len(cases)} cases match scikit-learn within {TOL}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
