#!/usr/bin/python3
"""Golden values of fit_proxy_aspect (test_probe.cpp, ProxyAspect.GoldenDirections), computed independently
with NumPy: StandardScaler (population deviation) on the inputs, each target standardised, Ridge(alpha=1)
with an intercept, the orthonormal left singular vectors of the coefficients (each signed by its largest-
magnitude entry) and the direction W · Σ_j coef_j normalised. The data is the formula the test builds."""
import numpy as np

n, L, D = 40, 2, 3
i = np.arange(n)[:, None, None].astype(float)
l = np.arange(L)[None, :, None].astype(float)
d = np.arange(D)[None, None, :].astype(float)
X = (np.sin(0.7 * i + 3.9 * l + 0.9 * d) + 0.1 * d).reshape(n, L * D)
c = np.arange(n).astype(float)
Y = np.stack([2 * X[:, 0] - X[:, 3] + 0.3 * np.cos(c), X[:, 1] + 0.5 * X[:, 0] + 0.2 * np.sin(3 * c)], axis=1)
Z = (X - X.mean(0)) / X.std(0)
Ys = (Y - Y.mean(0)) / Y.std(0)
coef = np.linalg.solve(Z.T @ Z + np.eye(L * D), Z.T @ Ys)
U = np.linalg.svd(coef, full_matrices=False)[0]
for k in range(U.shape[1]):
    if U[np.argmax(np.abs(U[:, k])), k] < 0:
        U[:, k] *= -1
direction = U.T @ coef.sum(1)
direction /= np.linalg.norm(direction)
np.set_printoptions(precision=12, floatmode="fixed")
print("weights (W, [k, Din]):", ", ".join(f"{v:.9f}" for v in U.T.ravel()))
print("direction:", ", ".join(f"{v:.9f}" for v in direction))
