"""TreeSHAP points in probability: what each feature adds to an account's probability.

Exact TreeSHAP (LightGBM's ``pred_contrib`` values, computed from tables per tree by
:mod:`churnml.modeling.treeshap` at a fraction of the cost) gives additive contributions in
log-odds: ``base + sum(contributions) = raw log-odds``. A CSM thinks in
probability, so each account's contributions are rescaled to probability points:
``points_i = phi_i * (p - p_base) / (z - z_base)``, where ``p`` is the account's
calibrated probability and ``p_base`` the calibrated probability of the base value.
The points then add up exactly: ``p_base + sum(points) = p``. The reasons engine
(:mod:`churnml.scoring.reasons`) turns them into words; :func:`expansion_cutoff` says which
accounts get expansion reasons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def contributions(model, X: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, float]:
    """Probability-point contributions per feature (rows of X), calibrated probabilities, base probability."""
    tm = model.targets[target]
    Xp = model.prepare(X)
    phi = tm.explainer().contributions(Xp)  # exact, equal to LightGBM's pred_contrib, a fraction of its cost
    z = phi.sum(axis=1)
    z0 = float(phi[0, -1]) if len(phi) else 0.0
    cal = tm.calibrator.transform
    p = cal(1 / (1 + np.exp(-z)))
    p0 = float(cal(np.array([1 / (1 + np.exp(-z0))]))[0])
    dz = z - z0
    # where z == z0 the ratio is the local slope of p(z); estimate it numerically
    eps = 1e-4
    slope = (cal(1 / (1 + np.exp(-(z + eps)))) - cal(1 / (1 + np.exp(-(z - eps))))) / (2 * eps)
    scale = np.where(np.abs(dz) > 1e-9, (p - p0) / np.where(np.abs(dz) > 1e-9, dz, 1.0), slope)
    points = phi[:, :-1] * scale[:, None]
    return pd.DataFrame(points, index=X.index, columns=model.features), p, p0


def expansion_cutoff(p: np.ndarray, share: float) -> float:
    """The expansion probability above which accounts get expansion reasons (top ``share``)."""
    if len(p) == 0:
        return np.inf
    k = int(np.ceil(share * len(p)))
    return float(np.sort(p)[::-1][k - 1])
