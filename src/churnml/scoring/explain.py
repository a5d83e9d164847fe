"""Per-account explanations: TreeSHAP in probability points, grouped by family, in words.

LightGBM's native TreeSHAP (``pred_contrib``) gives additive contributions in
log-odds: ``base + sum(contributions) = raw log-odds``. A CSM thinks in
probability, so each account's contributions are rescaled to probability points:
``points_i = phi_i * (p - p_base) / (z - z_base)``, where ``p`` is the account's
calibrated probability and ``p_base`` the calibrated probability of the base value.
The points then add up exactly: ``p_base + sum(points) = p``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator


def contributions(model, X: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, float]:
    """Probability-point contributions per feature (rows of X), calibrated probabilities, base probability."""
    tm = model.targets[target]
    Xp = model.prepare(X)
    phi = tm.booster.predict(Xp, pred_contrib=True, num_iteration=tm.best_iteration)
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


def family_points(points: pd.DataFrame, families: dict[str, str]) -> pd.DataFrame:
    """Sum of points per family (columns: usage, effort, support, onboarding, commercial)."""
    fam = pd.Series(families).reindex(points.columns).fillna("other")
    return points.T.groupby(fam.to_numpy()).sum().T


# --- words ---------------------------------------------------------------------------------
def _pct(v: float, signed: bool = False) -> str:
    return f"{v * 100:+.0f}%" if signed else f"{v * 100:.0f}%"


def format_value(ind: Indicator, v) -> str:
    """A value in the indicator's unit, the way a CSM would say it."""
    if ind.kind == "categorical":
        return "not given" if v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) else str(v)
    if v is None or pd.isna(v):
        return "no data"
    unit = ind.unit
    if unit.startswith("relative change"):
        return _pct(v, signed=True)
    if unit.startswith("share"):
        return _pct(v)
    if unit.startswith("days") or unit == "days":
        return f"{v:.0f} days"
    if unit.startswith("flag"):
        return "yes" if v >= 0.5 else "no"
    if unit in ("tickets", "milestones", "answers", "count", "seats"):
        return f"{v:.0f}"
    if unit.startswith("currency"):
        return f"{v:,.0f}"
    if unit.startswith("hours"):
        return f"{v:.0f} h"
    if unit.startswith("minutes"):
        return f"{v:.0f} min"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def describe(ind: Indicator, value, median) -> str:
    """One driver in plain words, with the segment comparison.

    e.g. "Active users (last 30 vs previous 30 days) fell 42%; segment median +1%".
    """
    label = ind.label[0].upper() + ind.label[1:]
    if ind.kind == "categorical":
        return f"{label}: {format_value(ind, value)}"
    if value is None or pd.isna(value):
        return f"{label}: no data ({ind.missing})"
    if ind.unit.startswith("relative change"):
        word = "fell" if value < 0 else "rose" if value > 0 else "did not change"
        amount = "" if value == 0 else f" {abs(value) * 100:.0f}%"
        text = f"{label} {word}{amount}"
    else:
        text = f"{label}: {format_value(ind, value)}"
    if median is not None and not pd.isna(median):
        text += f"; segment median {format_value(ind, median)}"
    return text


def driver_rows(points: pd.DataFrame, X: pd.DataFrame, medians: pd.DataFrame, segments: pd.Series,
                defs: dict[str, Indicator], target: str, top: int, playbook: dict) -> pd.DataFrame:
    """The ``top`` strongest drivers raising the probability and the strongest lowering it, per account.

    Long format: account_id, target, rank, direction (raises/lowers), family, feature, value,
    segment_median, points, text, play.
    """
    P = points.to_numpy()
    if not len(P):
        return pd.DataFrame(columns=["account_id", "target", "rank", "direction", "family", "feature", "value",
                                     "segment_median", "points", "text", "play"])
    cols = list(points.columns)
    acc = points.index.get_level_values("account_id") if isinstance(points.index, pd.MultiIndex) else points.index
    values = {f: X[f].to_numpy() for f in cols}
    med = medians.to_dict(orient="index")
    seg = segments.to_numpy()
    ups = np.argsort(-P, axis=1)[:, :top]
    downs = np.argmin(P, axis=1)
    plays = {fam: f"{p['title']}: {p['text']}" for fam, p in playbook.items()}
    rows = []
    for i in range(len(P)):
        chosen = [j for j in ups[i] if P[i, j] > 0]
        if P[i, downs[i]] < 0:
            chosen.append(downs[i])
        for rank, j in enumerate(chosen, start=1):
            f = cols[j]
            ind = defs[f]
            value = values[f][i]
            m = med.get(seg[i], {}).get(f)
            up = P[i, j] > 0
            numeric = ind.kind != "categorical"
            rows.append((acc[i], target, rank, "raises" if up else "lowers", ind.family, f,
                         float(value) if numeric and not pd.isna(value) else None,
                         float(m) if m is not None and not pd.isna(m) else None, float(P[i, j]),
                         describe(ind, value, m), plays.get(ind.family, "") if up else ""))
    return pd.DataFrame(rows, columns=["account_id", "target", "rank", "direction", "family", "feature", "value",
                                       "segment_median", "points", "text", "play"])


def segment_medians(X: pd.DataFrame, defs: dict[str, Indicator], segment_col: str = "segment") -> pd.DataFrame:
    """Median of each numeric indicator per segment (the peers an account is compared with)."""
    num = [c for c in X.columns if c in defs and defs[c].kind != "categorical"]
    seg = X[segment_col].astype("object").fillna("(none)") if segment_col in X else pd.Series("(none)", X.index)
    return X[num].groupby(seg.to_numpy()).median()


def expansion_cutoff(p: np.ndarray, share: float) -> float:
    """The expansion probability above which accounts get expansion drivers (top ``share``)."""
    if len(p) == 0:
        return np.inf
    k = int(np.ceil(share * len(p)))
    return float(np.sort(p)[::-1][k - 1])


def explain_accounts(model, X: pd.DataFrame, defs: dict[str, Indicator], playbook: dict, *, top: int = 3,
                     expansion_share: float = 0.3, medians: pd.DataFrame | None = None,
                     expansion_threshold: float | None = None):
    """Probabilities, driver rows and churn points per family for the accounts of ``X``.

    Only what a CSM reads is explained: churn drivers for every account; expansion
    drivers only for accounts at or above ``expansion_threshold`` (default: the
    ``expansion_share`` most likely to expand). ``medians`` (segment x indicator) default
    to those of ``X``; a distributed run passes the global ones.
    Returns ``(probabilities: dict target -> array, drivers: DataFrame, churn_family_points: DataFrame)``.
    """
    families = {f: defs[f].family for f in model.features}
    medians = segment_medians(X, defs) if medians is None else medians
    seg = X["segment"].astype("object").fillna("(none)") if "segment" in X else pd.Series("(none)", X.index)
    probs, parts, fam_pts = {}, [], None
    for target in model.targets:
        if target == "churn":
            pts, p, _ = contributions(model, X, target)
            probs[target] = p
            fam_pts = family_points(pts, families)
            rows = np.arange(len(X))
        else:
            p = model.predict_target(X, target)
            probs[target] = p
            cut = expansion_cutoff(p, expansion_share) if expansion_threshold is None else expansion_threshold
            rows = np.flatnonzero(p >= cut)
            pts, _, _ = contributions(model, X.iloc[rows], target)
        parts.append(driver_rows(pts, X.iloc[rows], medians, seg.iloc[rows], defs, target, top,
                                 playbook.get(target, {})))
    return probs, pd.concat(parts, ignore_index=True), fam_pts
