"""Population stability of each feature at scoring time against the training data.

PSI = sum over bins of (a - e) * ln(a / e), with the training quantile bins (plus a
"missing" bin) saved in the model. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate,
> 0.25 drifted (the threshold is in config).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_EPS = 1e-4
PSI_THRESHOLD = 0.25  # rule of thumb: < 0.1 stable, 0.1-0.25 moderate, above: drifted


def _coarse(v: np.ndarray, step: float | None) -> np.ndarray:
    """Values floored to multiples of ``step`` (the smallest difference that matters), NaN kept."""
    return v if not step else np.floor(v / step) * step


def reference_profile(
    X: pd.DataFrame, features, categorical, bins: int = 10, resolution: dict[str, float] | None = None
) -> dict:
    """Per-feature reference distribution of training rows (for drift checks at scoring).

    Training passes the newest training rows, the final model's calibration slice: drift
    then means the population changed since the latest data the model learned from, not
    that the base has aged since its first cutoffs (tenure grows by construction).
    ``resolution``: per feature, the smallest difference that matters: values are binned in
    steps of it, here and at scoring, with edges at 1, 2, 4, 8 ... steps besides the quantiles
    (day counts use a week, so that the weekday of the as-of date, e.g. a Sunday after a
    weekend without activity, never reads as drift, while weeks of silence still do)."""
    resolution = resolution or {}
    prof: dict[str, dict[str, Any]] = {}  # feature -> its profile (a JSON object)
    for c in features:
        s = X[c]
        if c in categorical:
            freq = s.astype("object").fillna("(missing)").value_counts(normalize=True)
            prof[c] = {"kind": "categorical", "freq": {str(k): float(v) for k, v in freq.items()}}
        else:
            step = resolution.get(c)
            v = _coarse(s.to_numpy(float), step)
            ok = v[~np.isnan(v)]
            edges = np.unique(np.quantile(ok, np.linspace(0, 1, bins + 1))[1:-1]) if len(ok) else np.array([])
            if step and len(ok):  # also 1, 2, 4, 8 ... steps: a skewed count keeps bins where a shift would show
                grid = step * 2.0 ** np.arange(0, 12)
                edges = np.unique(np.r_[edges, grid[grid <= ok.max()]])
            counts = np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
            prof[c] = {
                "kind": "numeric",
                "edges": edges.tolist(),
                **({"step": float(step)} if step else {}),
                "share": (counts / max(len(v), 1)).tolist(),
                "missing": float(np.isnan(v).mean()),
                "median": float(np.median(ok)) if len(ok) else None,
            }
    return prof


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(np.asarray(expected, float), _EPS, None)
    a = np.clip(np.asarray(actual, float), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_table(X: pd.DataFrame, reference: dict, threshold: float = PSI_THRESHOLD) -> pd.DataFrame:
    """PSI per feature of ``X`` against ``reference`` (from training); sorted, with a drifted flag."""
    rows = []
    for f, ref in reference.items():
        if f not in X.columns:
            continue
        s = X[f]
        if ref["kind"] == "categorical":
            freq = s.astype("object").fillna("(missing)").astype(str).value_counts(normalize=True)
            levels = sorted(set(ref["freq"]) | set(freq.index))
            e = np.array([ref["freq"].get(k, 0.0) for k in levels])
            a = np.array([freq.get(k, 0.0) for k in levels])
        else:
            v = _coarse(s.to_numpy(float), ref.get("step"))
            ok = v[~np.isnan(v)]
            edges = np.asarray(ref["edges"], float)
            counts = np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
            a = np.r_[counts / max(len(v), 1), np.isnan(v).mean() if len(v) else 0.0]
            e = np.r_[np.asarray(ref["share"], float), ref["missing"]]
        rows.append({"feature": f, "psi": psi(e, a)})
    out = pd.DataFrame(rows, columns=["feature", "psi"]).sort_values("psi", ascending=False, ignore_index=True)
    out["drifted"] = out["psi"] > threshold
    return out
