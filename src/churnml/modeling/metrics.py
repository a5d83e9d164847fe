"""Metrics the way CS teams act: ranking (PR-AUC, top-decile lift, revenue capture) and
probability quality (Brier, log-loss), overall and per segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "arr_capture_top_decile", "base_rate", "n")


def top_share_mask(p: np.ndarray, share: float = 0.1) -> np.ndarray:
    """The ``share`` of rows with the highest scores (ties broken by order, stable)."""
    k = max(1, int(np.ceil(share * len(p))))
    order = np.argsort(-p, kind="stable")
    mask = np.zeros(len(p), bool)
    mask[order[:k]] = True
    return mask


def binary_metrics(y, p, arr=None) -> dict[str, float]:
    """All metrics for labels ``y`` (0/1) and probabilities ``p``.

    ``top_decile_lift``: churn rate in the 10% highest-risk rows / overall rate.
    ``arr_capture_top_decile``: share of the ARR of churned rows found in that top 10%
    (``arr`` per row; defaults to equal weights).
    """
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    out = {"n": float(len(y)), "base_rate": float(y.mean()) if len(y) else np.nan}
    if len(y) == 0 or y.min() == y.max():
        out.update({m: np.nan for m in METRICS if m not in out})
        return out
    top = top_share_mask(p)
    w = np.ones_like(y) if arr is None else np.asarray(arr, dtype=float)
    churned_arr = (w * y).sum()
    out.update(
        {
            "roc_auc": roc_auc_score(y, p),
            "pr_auc": average_precision_score(y, p),
            "brier": brier_score_loss(y, p),
            "log_loss": log_loss(y, p, labels=[0, 1]),
            "top_decile_lift": y[top].mean() / y.mean(),
            "arr_capture_top_decile": (w * y)[top].sum() / churned_arr if churned_arr > 0 else np.nan,
        }
    )
    return {k: float(out[k]) for k in METRICS}


def metrics_by_segment(y, p, arr, segment) -> pd.DataFrame:
    """One row per segment plus ``All``."""
    df = pd.DataFrame(
        {
            "y": np.asarray(y, float),
            "p": np.asarray(p, float),
            "arr": np.asarray(arr, float),
            "segment": pd.Series(segment).astype("string").fillna("(none)").to_numpy(),
        }
    )
    rows = {"All": binary_metrics(df["y"], df["p"], df["arr"])}
    for seg, g in df.groupby("segment", sort=True):
        rows[str(seg)] = binary_metrics(g["y"], g["p"], g["arr"])
    return pd.DataFrame(rows).T[list(METRICS)]


def reliability_table(y, p, bins: int = 10) -> pd.DataFrame:
    """Calibration table: equal-count bins of predicted probability, mean predicted vs observed."""
    df = pd.DataFrame({"y": np.asarray(y, float), "p": np.asarray(p, float)})
    q = min(bins, max(1, df["p"].nunique()))
    df["bin"] = pd.qcut(df["p"].rank(method="first"), q=q, labels=False)
    t = df.groupby("bin").agg(
        n=("y", "size"),
        mean_predicted=("p", "mean"),
        observed_rate=("y", "mean"),
        p_min=("p", "min"),
        p_max=("p", "max"),
    )
    return t.reset_index(drop=True)


def lift_table(y, p, arr=None, bins: int = 10) -> pd.DataFrame:
    """Deciles by risk (1 = highest): rate, lift and cumulative capture of events and ARR."""
    y = np.asarray(y, float)
    w = np.ones_like(y) if arr is None else np.asarray(arr, float)
    order = np.argsort(-np.asarray(p, float), kind="stable")
    dec = np.empty(len(y), int)
    dec[order] = np.arange(len(y)) * bins // max(len(y), 1) + 1
    df = pd.DataFrame({"decile": dec, "y": y, "wy": w * y})
    t = df.groupby("decile").agg(n=("y", "size"), events=("y", "sum"), event_arr=("wy", "sum"))
    t["rate"] = t["events"] / t["n"]
    t["lift"] = t["rate"] / (y.mean() if y.mean() > 0 else np.nan)
    t["cum_event_capture"] = t["events"].cumsum() / max(t["events"].sum(), 1e-12)
    t["cum_arr_capture"] = t["event_arr"].cumsum() / max(t["event_arr"].sum(), 1e-12)
    return t.reset_index()
