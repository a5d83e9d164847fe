"""Reasons: which indicators explain an account's probability, in words that agree with the numbers.

:func:`select_reasons` ranks the reason indicators (:func:`~.components.is_reason`) by their
points and keeps only those whose words can explain them: a missing value, or a value strictly
on the needed side of a reference (:mod:`.references`). A reason whose value is on the healthy
side of every reference is left out (the model's points come from an interaction the words
cannot explain). :func:`reason_texts` says them; :func:`select_drivers` picks the strongest
per row; :func:`one_window` keeps one window of an indicator measured over several.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.scoring.reasons.components import CHANGE_UNITS, account_ids, account_segments, indicator_stem, is_reason
from churnml.scoring.reasons.references import level_matrix, level_rows, needed_side, side
from churnml.scoring.reasons.words import displayed, formatter, plain_missing

REASON_COLUMNS = [
    "account_id",
    "target",
    "rank",
    "direction",
    "family",
    "feature",
    "value",
    "healthy_level",
    "past_value",
    "points",
    "text",
]


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


def _label(ind: Indicator) -> str:
    return ind.label[0].upper() + ind.label[1:]


def reason_texts(
    ind: Indicator, values, healthy=None, past=None, *, peers=None, past_label: str = "three months ago"
) -> list[str]:
    """Reasons in words, one per value, quoting the references given (NaN: not quoted).

    ``healthy`` are healthy levels, said "healthy <peers> accounts: <level>" (``peers``: the
    segment name, or None for all healthy accounts); ``past`` the account's own earlier level,
    said "down from <level> three months ago". A value already a change (a trend) is said with
    its sign. A missing value is said in plain words.

    e.g. "Active users per seat (7 days): 0.10, down from 0.60 three months ago; healthy SMB
    accounts: 0.40"; "Change in active users (last 30 vs previous 30 days): -42%; healthy
    accounts: +2%"; "MRR change over 90 days: no data (no MRR 90 days ago: the account is newer,
    or was not paying then)".
    """
    n = len(values)
    v = np.asarray(values, dtype="float64")
    h = np.full(n, np.nan) if healthy is None else np.asarray(healthy, dtype="float64")
    q = np.full(n, np.nan) if past is None else np.asarray(past, dtype="float64")
    peers = [None] * n if peers is None else list(peers)
    fmt, label = formatter(ind), _label(ind)
    missing = f"{label}: no data ({plain_missing(ind)})"
    vd, qd = displayed(ind, v), displayed(ind, q)
    out = []
    for x, xd, hx, qx, qxd, seg in zip(v.tolist(), vd.tolist(), h.tolist(), q.tolist(), qd.tolist(), peers):
        if x != x:
            out.append(missing)
            continue
        text = f"{label}: {fmt(x)}"
        if qx == qx:
            text += f", {'down' if xd < qxd else 'up'} from {fmt(qx)} {past_label}"
        if hx == hx:
            text += f"; healthy {seg + ' ' if seg else ''}accounts: {fmt(hx)}"
        out.append(text)
    return out


def one_window(P: np.ndarray, cols: list[str]) -> None:
    """Keep, per row and direction, only the strongest of an indicator's windows (the 7-, 30- and
    90-day active users per seat say one thing); the others are set to 0 in place."""
    stems = pd.Series([indicator_stem(c) for c in cols])
    rows = np.arange(len(P))
    for _, g in stems.groupby(stems.to_numpy()):
        if len(g) < 2:
            continue
        G = g.index.to_numpy()
        sub = P[:, G]
        keep = np.zeros_like(sub, dtype=bool)
        keep[rows, sub.argmax(axis=1)] |= sub.max(axis=1) > 0
        keep[rows, sub.argmin(axis=1)] |= sub.min(axis=1) < 0
        P[:, G] = np.where(keep, sub, 0.0)


def select_reasons(
    points: pd.DataFrame,
    X: pd.DataFrame,
    defs: dict[str, Indicator],
    healthy: pd.DataFrame,
    *,
    past: pd.DataFrame | None = None,
    target: str = "churn",
    top: int = 3,
    min_points: float = 0.1,
    segment_col: str = "segment",
    past_label: str = "three months ago",
) -> pd.DataFrame:
    """The reasons of each account's probability: up to ``top`` raising it, then the one lowering it most.

    Only behavioural and commercial-state indicators with a risk direction (:func:`is_reason`)
    are ranked, by their points, and only those whose words can explain their points: a
    missing value (said in plain words), or a value strictly on the needed side
    (:func:`needed_side`) of its segment's healthy level (``healthy``, from
    :func:`healthy_levels`) or of the account's own level in ``past`` (the same indicators
    three months earlier, indexed by account_id; not used for indicators that are already a
    change). Each reason quotes exactly the references that agree with it. Reasons worth less
    than ``min_points`` probability points (0.1 = 0.001) are not reasons. An indicator measured
    over several windows gives one reason at most in each direction (its strongest window).

    Long format, :data:`REASON_COLUMNS`: ``healthy_level`` and ``past_value`` are the references
    quoted (NaN when not quoted), ``points`` in probability (0.05 = +5 points).
    """
    cols = [c for c in points.columns if is_reason(c, defs)]
    if not len(points) or not cols:
        return pd.DataFrame(columns=REASON_COLUMNS)
    ids = account_ids(points.index)
    n, m = len(points), len(cols)
    P = points[cols].to_numpy(dtype="float64")
    seg = account_segments(X, segment_col)
    lrow, named = level_rows(healthy, seg)
    L = level_matrix(healthy, cols)
    Q = past.reindex(pd.Index(ids)).reindex(columns=cols).to_numpy(dtype="float64") if past is not None else None
    want = needed_side(P, target)
    show_h = np.zeros((n, m), dtype=bool)
    show_q = np.zeros((n, m), dtype=bool)
    ok = np.zeros((n, m), dtype=bool)
    for j, c in enumerate(cols):
        ind = defs[c]
        v = X[c].to_numpy(dtype="float64")
        show_h[:, j] = side(ind, v, L[lrow, j]) == want[:, j]
        if Q is not None and not ind.unit.startswith(CHANGE_UNITS) and not ind.unit.startswith("flag"):
            show_q[:, j] = side(ind, v, Q[:, j]) == want[:, j]
        ok[:, j] = np.isnan(v) | show_h[:, j] | show_q[:, j]
    Pm = np.where(ok & (np.abs(P) >= min_points / 100), P, 0.0)
    one_window(Pm, cols)
    I, J, R = select_drivers(Pm, top)
    pts = P[I, J]
    value = np.full(len(I), np.nan)
    h_shown = np.where(show_h[I, J], L[lrow[I], J], np.nan)
    q_shown = np.where(show_q[I, J], Q[I, J], np.nan) if Q is not None else np.full(len(I), np.nan)
    text = np.empty(len(I), dtype=object)
    seg_words = np.where(named, seg, None)  # type: ignore[call-overload]  # numpy's stubs leave None out of ArrayLike
    for j in np.unique(J):
        sel = np.flatnonzero(j == J)
        ind = defs[cols[j]]
        value[sel] = X[cols[j]].to_numpy(dtype="float64")[I[sel]]
        text[sel] = reason_texts(
            ind, value[sel], h_shown[sel], q_shown[sel], peers=seg_words[I[sel]], past_label=past_label
        )
    return pd.DataFrame(
        {
            "account_id": ids[I],
            "target": target,
            "rank": R.astype("int64"),
            "direction": np.where(pts > 0, "raises", "lowers"),
            "family": np.array([defs[c].family for c in cols], dtype=object)[J],
            "feature": np.array(cols, dtype=object)[J],
            "value": value,
            "healthy_level": h_shown,
            "past_value": q_shown,
            "points": pts,
            "text": text,
        },
        columns=REASON_COLUMNS,
    )
