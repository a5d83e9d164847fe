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

import re

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
def _style(ind: Indicator) -> tuple:
    """How a known (non-missing) value of a numeric indicator is said: ``(float -> str, decimals)``,
    where ``decimals`` is the rounding the words show (``None``: 2 decimals below 100, whole above;
    ``"flag"``: yes/no)."""
    unit = ind.unit
    if unit.startswith("relative change"):
        return (lambda v: f"{v * 100:+.0f}%"), 2
    if unit.startswith("share"):
        return (lambda v: f"{v * 100:.0f}%"), 2
    if unit.startswith("days"):
        return (lambda v: f"{v:.0f} day{'' if abs(round(v)) == 1 else 's'}"), 0
    if unit.startswith("flag"):
        return (lambda v: "yes" if v >= 0.5 else "no"), "flag"
    if unit in ("tickets", "milestones", "answers", "count", "seats"):
        return (lambda v: f"{v:.0f}"), 0
    if unit.startswith("currency"):
        return (lambda v: f"{v:,.0f}"), 0
    if unit.startswith("hours"):
        return (lambda v: f"{v:.0f} h"), 0
    if unit.startswith("minutes"):
        return (lambda v: f"{v:.0f} min"), 0
    if unit.startswith("score points"):  # a change in mean survey score
        return (lambda v: f"{v:+.1f} points"), 1
    if unit.startswith("score"):  # survey answers: CES 1..7, CSAT 1..5, NPS 0..10
        return (lambda v: f"{v:.1f}"), 1
    return (lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"), None


_NEGATIVE_ZERO = re.compile(r"^[-\u2212](0(?:\.0+)?)(?![\d.])")


def _formatter(ind: Indicator):
    """How a known (non-missing) value of a numeric indicator is said, as ``float -> str`` (a value that
    rounds to zero is said without a sign: never "-0.0 points")."""
    say = _style(ind)[0]
    return lambda v: _NEGATIVE_ZERO.sub(r"\1", say(v))


def displayed(ind: Indicator, values) -> np.ndarray:
    """Numeric values rounded the way their words show them (0.404 as "0.40" -> 0.40; a share 0.126
    as "13%" -> 0.13; a flag as 0/1), so that comparisons made in words can be checked on numbers:
    two values said alike compare equal. Missing values stay NaN."""
    v = np.asarray(values, dtype="float64")
    dec = _style(ind)[1]
    if dec == "flag":
        return np.where(np.isnan(v), np.nan, (v >= 0.5).astype("float64"))
    if dec is None:
        return np.where(np.abs(v) >= 100, np.round(v), np.round(v, 2))
    return np.round(v, dec)


# What a missing value means, in words a CSM uses (the definitions' ``missing`` texts are written for
# analysts: "account not paying 90 days before t"). Keys are indicator names; ``{w}`` is the window.
_MISSING_WORDS = [
    (r"active_users_per_seat_(\d+)d", "no licensed seats on record"),
    (r"events_per_active_user_(\d+)d", "no active users in the last {w} days"),
    (r"active_users_trend_30d", "no activity 31 to 60 days ago, or the account is younger than 60 days"),
    (r"events_trend_30d", "no product actions 31 to 60 days ago, or the account is younger than 60 days"),
    (r"weekday_share_30d", "no activity in the last 30 days"),
    (r"peak_active_users_per_seat_30d", "no activity in the last 30 days, or no licensed seats on record"),
    (r"feature_breadth_(\d+)d", "no feature usage columns for this customer base"),
    (r"ces_trend_90d", "no effort survey answered in the last 90 days, or none in the 90 days before"),
    (r"(ces|csat|nps)_responses_(\d+)d", "no survey data for this customer base"),
    (r"ces_\w+_(\d+)d", "no effort survey answered in the last {w} days"),
    (r"csat_\w+_(\d+)d", "no satisfaction survey answered in the last {w} days"),
    (r"nps_\w+_(\d+)d", "no NPS answer in the last {w} days"),
    (r"tickets_per_seat_(\d+)d", "no licensed seats on record, or no ticket data for this customer base"),
    (r"(tickets_opened_90d|high_urgent_tickets_90d|open_tickets|open_high_urgent_tickets|open_tickets_over_7d)",
     "no ticket data for this customer base"),
    (r"(median_hours_to_close|long_tickets_share)_(\d+)d", "no ticket closed in the last {w} days"),
    (r"median_first_response_minutes_(\d+)d", "no ticket of the last {w} days has a recorded first response"),
    (r"milestones_on_time_share", "no onboarding milestone due yet"),
    (r"(milestones_reached|milestones_reached_share|milestones_overdue|max_days_overdue)",
     "no onboarding plan on record"),
    (r"first_value_reached", "no first-value milestone in the onboarding plan"),
    (r"days_to_first_value", "first value not reached yet"),
    (r"mrr_change_(\d+)d", "no MRR {w} days ago: the account is newer, or was not paying then"),
    (r"(seats|mrr_per_seat)", "no seat count on record"),
    (r"(days_to_renewal|term_length_days)", "no contract end date on record"),
]


def plain_missing(ind: Indicator) -> str:
    """What a missing value of ``ind`` means, in plain words ("no MRR 90 days ago: the account is newer,
    or was not paying then"); "no data" for an indicator that is never missing."""
    if ind.kind == "categorical" or ind.sql is not None:
        return "not given"
    for pattern, words in _MISSING_WORDS:
        m = re.fullmatch(pattern, ind.name)
        if m:
            w = next((g for g in m.groups() if g and g.isdigit()), "")
            return words.format(w=w)
    text = ind.missing
    if text.startswith("never missing"):
        return "no data"
    text = re.sub(r"\[t-(\d+), t\)", r"the last \1 days", text)  # analyst notation, for indicators added later
    text = re.sub(r"(\d+) days before t\b", r"\1 days ago", text)
    text = re.sub(r"\bbefore t\b", "before the score date", text)
    return text.replace("in the window", "in the period")


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
    segment_median, points, text, play. ``playbook`` maps a family to its play's words
    (:func:`churnml.scoring.reasons.family_plays`). :mod:`churnml.scoring.reasons` supersedes
    this (timing apart, words that agree with the points, plays that fit).
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
    plays = playbook
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


def family_plays(playbook, target: str) -> dict[str, str]:
    """Family -> play words of a playbook (see :func:`churnml.scoring.reasons.family_plays`)."""
    from churnml.scoring.reasons import family_plays as plays

    return plays(playbook, target)


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
                                 family_plays(playbook, target)))
    return probs, pd.concat(parts, ignore_index=True), fam_pts
