"""Per-account explanations: TreeSHAP in probability points, grouped by family, in words.

Exact TreeSHAP (LightGBM's ``pred_contrib`` values, computed from tables per tree by
:mod:`churnml.modeling.treeshap` at a fraction of the cost) gives additive contributions in
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


def family_points(points: pd.DataFrame, families: dict[str, str]) -> pd.DataFrame:
    """Sum of points per family (columns: usage, effort, support, onboarding, commercial)."""
    fam = pd.Series(families).reindex(points.columns).fillna("other")
    return points.T.groupby(fam.to_numpy()).sum().T


# --- words ---------------------------------------------------------------------------------
# Formatting works on arrays (one indicator, many accounts): batch scoring writes words for
# every account, and per-value pandas calls would cost more than TreeSHAP itself.
def _formatter(ind: Indicator):
    """How a known (non-missing) value of a numeric indicator is said, as ``float -> str``."""
    unit = ind.unit
    if unit.startswith("relative change"):
        return lambda v: f"{v * 100:+.0f}%"
    if unit.startswith("share"):
        return lambda v: f"{v * 100:.0f}%"
    if unit.startswith("days"):
        return lambda v: f"{v:.0f} days"
    if unit.startswith("flag"):
        return lambda v: "yes" if v >= 0.5 else "no"
    if unit in ("tickets", "milestones", "answers", "count", "seats"):
        return lambda v: f"{v:.0f}"
    if unit.startswith("currency"):
        return lambda v: f"{v:,.0f}"
    if unit.startswith("hours"):
        return lambda v: f"{v:.0f} h"
    if unit.startswith("minutes"):
        return lambda v: f"{v:.0f} min"
    if unit.startswith("score points"):  # a change in mean survey score
        return lambda v: f"{v:+.1f} points"
    if unit.startswith("score"):  # survey answers: CES 1..7, CSAT 1..5, NPS 0..10
        return lambda v: f"{v:.1f}"
    return lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def format_values(ind: Indicator, values) -> list[str]:
    """Values in the indicator's unit, the way a CSM would say them ("-42%", "12 days", "no data")."""
    values = np.asarray(values, dtype=object)
    missing = pd.isna(values).tolist()
    if ind.kind == "categorical":
        return ["not given" if m else str(v) for v, m in zip(values.tolist(), missing)]
    fmt = _formatter(ind)
    return ["no data" if m else fmt(float(v)) for v, m in zip(values.tolist(), missing)]


def format_value(ind: Indicator, v) -> str:
    """One value in the indicator's unit."""
    return format_values(ind, [v])[0]


def describe_values(ind: Indicator, values, medians) -> list[str]:
    """Drivers in plain words with the segment comparison, one per (value, segment median).

    e.g. "Active users (last 30 vs previous 30 days) fell 42%; segment median +1%".
    """
    label = ind.label[0].upper() + ind.label[1:]
    if ind.kind == "categorical":
        return [f"{label}: {s}" for s in format_values(ind, values)]
    v = np.asarray(values, dtype="float64")
    m = np.asarray(medians, dtype="float64")
    levels, which = np.unique(m, return_inverse=True)  # medians are per segment: a handful of values
    med_said = np.asarray(format_values(ind, levels), dtype=object)[which.ravel()].tolist()
    relative = ind.unit.startswith("relative change")
    said = [None] * len(v) if relative else format_values(ind, v)  # a change is said in words below
    out = []
    for x, s, mx, ms in zip(v.tolist(), said, m.tolist(), med_said):
        if x != x:  # missing
            out.append(f"{label}: no data ({ind.missing})")
            continue
        if relative:
            word = "fell" if x < 0 else "rose" if x > 0 else "did not change"
            text = f"{label} {word}" + ("" if x == 0 else f" {abs(x) * 100:.0f}%")
        else:
            text = f"{label}: {s}"
        out.append(text if mx != mx else f"{text}; segment median {ms}")
    return out


def describe(ind: Indicator, value, median) -> str:
    """One driver in plain words, with the segment comparison."""
    return describe_values(ind, [value], [np.nan if median is None else median])[0]


DRIVER_COLUMNS = ["account_id", "target", "rank", "direction", "family", "feature", "value",
                  "segment_median", "points", "text", "play"]


def select_drivers(P: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which (row, column) contributions are drivers, and their rank within the row.

    Per row: up to ``top`` strongest positive contributions (ranks 1..), then the single
    strongest negative one. Returned sorted by row, then rank.
    """
    n, k = P.shape
    top = min(top, k)
    order = np.argsort(-P, axis=1, kind="stable")[:, :top]
    up = np.take_along_axis(P, order, axis=1) > 0  # positives form a prefix of each row
    rows_up = np.broadcast_to(np.arange(n)[:, None], (n, top))[up]
    rank_up = np.broadcast_to(np.arange(1, top + 1), (n, top))[up]
    down = P.argmin(axis=1)
    neg = P[np.arange(n), down] < 0
    rows = np.concatenate([rows_up, np.flatnonzero(neg)])
    cols = np.concatenate([order[up], down[neg]])
    ranks = np.concatenate([rank_up, up.sum(axis=1)[neg] + 1])
    o = np.lexsort((ranks, rows))
    return rows[o], cols[o], ranks[o]


def driver_rows(points: pd.DataFrame, X: pd.DataFrame, medians: pd.DataFrame, segments: pd.Series,
                defs: dict[str, Indicator], target: str, top: int, playbook: dict) -> pd.DataFrame:
    """The ``top`` strongest drivers raising the probability and the strongest lowering it, per account.

    Long format: account_id, target, rank, direction (raises/lowers), family, feature, value,
    segment_median, points, text, play.
    """
    P = points.to_numpy()
    if not len(P):
        return pd.DataFrame(columns=DRIVER_COLUMNS)
    cols = list(points.columns)
    acc = points.index.get_level_values("account_id") if isinstance(points.index, pd.MultiIndex) else points.index
    I, J, R = select_drivers(P, top)
    pts = P[I, J]
    # segment median of each chosen (account, feature); categorical indicators have none
    med = medians.reindex(columns=cols).to_numpy(dtype="float64")
    med = np.vstack([med, np.full((1, len(cols)), np.nan)])
    seg_row = pd.Index(medians.index).get_indexer(pd.Index(segments.to_numpy()))
    seg_row = np.where(seg_row < 0, len(med) - 1, seg_row)
    m = med[seg_row[I], J]
    value = np.full(len(I), np.nan)
    text = np.empty(len(I), dtype=object)
    for j in np.unique(J):
        sel = np.flatnonzero(J == j)
        ind = defs[cols[j]]
        v = X[cols[j]].to_numpy()[I[sel]]
        if ind.kind != "categorical":
            value[sel] = np.asarray(v, dtype="float64")
        text[sel] = describe_values(ind, v, m[sel])
    fam = np.array([defs[c].family for c in cols], dtype=object)[J]
    plays = {f: f"{p['title']}: {p['text']}" for f, p in playbook.items()}
    up = pts > 0
    return pd.DataFrame({
        "account_id": np.asarray(acc)[I], "target": target, "rank": R.astype("int64"),
        "direction": np.where(up, "raises", "lowers"), "family": fam, "feature": np.array(cols, dtype=object)[J],
        "value": value, "segment_median": m, "points": pts, "text": text,
        "play": np.where(up, pd.Series(fam).map(plays).fillna("").to_numpy(dtype=object), ""),
    }, columns=DRIVER_COLUMNS)


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


def explain_accounts(model, X: pd.DataFrame, defs: dict[str, Indicator], playbook: dict, *, top: int,
                     expansion_share: float, medians: pd.DataFrame | None = None,
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
    Xp = model.prepare(X)  # encode once; the model calls below see it is encoded
    probs, parts, fam_pts = {}, [], None
    for target in model.targets:
        if target == "churn":
            pts, p, _ = contributions(model, Xp, target)
            probs[target] = p
            fam_pts = family_points(pts, families)
            rows = np.arange(len(X))
        else:
            p = model.predict_target(Xp, target)
            probs[target] = p
            cut = expansion_cutoff(p, expansion_share) if expansion_threshold is None else expansion_threshold
            rows = np.flatnonzero(p >= cut)
            pts, _, _ = contributions(model, Xp.iloc[rows], target)
        parts.append(driver_rows(pts, X.iloc[rows], medians, seg.iloc[rows], defs, target, top,
                                 playbook.get(target, {})))
    return probs, pd.concat(parts, ignore_index=True), fam_pts
