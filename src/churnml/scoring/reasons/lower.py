"""How to lower it: the model re-predicted with a reason moved to its healthy level (the model's
answer, not a causal promise).

:func:`how_to_lower` gives each at-risk account its one or two best moves, measured by
re-predicting; :func:`lower_summary` says them in one line per account.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.scoring.reasons.components import CHANGE_UNITS, account_ids, account_segments, indicator_stem
from churnml.scoring.reasons.references import level_matrix, level_rows, side
from churnml.scoring.reasons.words import formatter

LOWER_COLUMNS = [
    "account_id",
    "rank",
    "feature",
    "value",
    "level",
    "source",
    "p_from",
    "p_to",
    "cut",
    "p_together",
    "text",
]


def how_to_lower(
    X: pd.DataFrame,
    reasons: pd.DataFrame,
    healthy: pd.DataFrame,
    predict,
    p,
    *,
    defs: dict[str, Indicator],
    at_risk,
    past: pd.DataFrame | None = None,
    moves: int = 2,
    candidates: int = 3,
    min_cut: float = 1.0,
    segment_col: str = "segment",
    what: str = "risk",
    past_label: str = "three months ago",
) -> pd.DataFrame:
    """For each account in ``at_risk``, the one or two reasons whose move to a healthy level would cut
    ``p`` most, measured by re-predicting (the model's answer, not a causal promise).

    Candidates are the account's ``candidates`` strongest risk-raising churn reasons with a
    known value. Each is moved to its segment's healthy level (``healthy``) when the value is on
    its risk side, else to the account's own level in ``past`` when that is healthier, else it
    is not a candidate; the indicator's other windows (``active_users_per_seat_30d`` beside
    ``_7d``) on the risk side of their healthy level move with it, so the move is coherent.
    ``predict(X) -> probabilities`` is called once per candidate rank over all accounts having
    one, and once more for the best two moves together. Moves cutting less than ``min_cut``
    points are dropped. ``X`` and ``p`` are aligned (rows = accounts, indexed by account_id).

    Long format, :data:`LOWER_COLUMNS`; ``text`` e.g. "if active users per seat (7 days) returned
    to 0.40, risk would fall from 41% to 18%".
    """
    ids = account_ids(X.index)
    p = np.asarray(p, dtype="float64")
    mask = np.asarray(at_risk, dtype=bool)
    r = reasons[(reasons["target"] == "churn") & (reasons["direction"] == "raises") & reasons["value"].notna()]
    r = r.sort_values(["account_id", "rank"], kind="stable")
    r = r[r.groupby("account_id").cumcount().to_numpy() < candidates]
    row_of = pd.Index(ids).get_indexer(r["account_id"].to_numpy(dtype=object))
    r = r[(row_of >= 0)]
    row_of = row_of[row_of >= 0]
    r, row_of = r[mask[row_of]], row_of[mask[row_of]]
    if r.empty:
        return pd.DataFrame(columns=LOWER_COLUMNS)
    cols = list(healthy.columns)
    L = level_matrix(healthy, cols)
    lrow, _ = level_rows(healthy, account_segments(X, segment_col))
    colpos = {c: j for j, c in enumerate(cols)}
    Q = past.reindex(pd.Index(ids)) if past is not None else None
    # target level of each candidate: healthy level if the value is on its risk side, else its own past level
    feat = r["feature"].to_numpy(dtype=object)
    value = r["value"].to_numpy(dtype="float64")
    level = np.full(len(r), np.nan)
    source = np.full(len(r), "", dtype=object)
    for f in pd.unique(feat):
        sel = np.flatnonzero(feat == f)
        ind = defs[f]
        h = L[lrow[row_of[sel]], colpos[f]] if f in colpos else np.full(len(sel), np.nan)
        use_h = side(ind, value[sel], h) == 1
        level[sel[use_h]] = h[use_h]
        source[sel[use_h]] = "healthy"
        if Q is not None and f in Q and not ind.unit.startswith(CHANGE_UNITS):
            q = Q[f].to_numpy(dtype="float64")[row_of[sel]]
            use_q = ~use_h & (side(ind, value[sel], q) == 1)
            level[sel[use_q]] = q[use_q]
            source[sel[use_q]] = "past"
    # one candidate per indicator family of windows: the account's strongest (its other windows move with it)
    keep = ~np.isnan(level)
    dup = np.zeros(len(r), dtype=bool)
    dup[keep] = (
        pd.DataFrame({"a": r["account_id"].to_numpy(dtype=object)[keep], "s": [indicator_stem(f) for f in feat[keep]]})
        .duplicated()
        .to_numpy()
    )
    keep &= ~dup
    r, row_of, feat, value, level, source = r[keep], row_of[keep], feat[keep], value[keep], level[keep], source[keep]
    rank_in = r.groupby("account_id").cumcount().to_numpy()

    def apply(Xm: pd.DataFrame, which: np.ndarray) -> np.ndarray:
        """Apply candidate ``which[i]`` to row ``i`` of ``Xm`` in place; whether other windows moved too."""
        companions = np.zeros(len(which), dtype=bool)
        rows = row_of[which]
        for f in pd.unique(feat[which]):
            sel = np.flatnonzero(feat[which] == f)
            arr = Xm[f].to_numpy(dtype="float64", copy=True)
            arr[sel] = level[which[sel]]
            Xm[f] = arr
            for c in cols:
                if c == f or indicator_stem(c) != indicator_stem(f) or c not in Xm:
                    continue
                cur = Xm[c].to_numpy(dtype="float64", copy=True)
                h = L[lrow[rows[sel]], colpos[c]]
                go = side(defs[c], cur[sel], h) == 1
                cur[sel[go]] = h[go]
                companions[sel[go]] = True
                Xm[c] = cur
        return companions

    p_to = np.full(len(r), np.nan)
    with_companions = np.zeros(len(r), dtype=bool)
    for k in np.unique(rank_in):  # one call per candidate rank, over every account having one
        which = np.flatnonzero(rank_in == k)
        Xm = X.iloc[row_of[which]].copy()
        with_companions[which] = apply(Xm, which)
        p_to[which] = np.asarray(predict(Xm), dtype="float64")
    cut = p[row_of] - p_to
    out = pd.DataFrame(
        {
            "account_id": r["account_id"].to_numpy(dtype=object),
            "cand": np.arange(len(r)),
            "feature": feat,
            "value": value,
            "level": level,
            "source": source,
            "p_from": p[row_of],
            "p_to": p_to,
            "cut": cut,
            "companions": with_companions,
        }
    )
    out = out[out["cut"] >= min_cut / 100 - 1e-12].sort_values(
        ["account_id", "cut"], ascending=[True, False], kind="stable"
    )
    out = out.groupby("account_id", sort=False).head(moves).copy()
    out["rank"] = out.groupby("account_id").cumcount() + 1
    out["p_together"] = np.nan
    pairs = out.groupby("account_id", sort=False)["cand"].agg(list)
    pairs = pairs[pairs.map(len) >= 2]
    if len(pairs):  # the best two moves together: one more call
        first = np.array([c[0] for c in pairs], dtype=int)
        Xm = X.iloc[row_of[first]].copy()
        apply(Xm, first)
        apply(Xm, np.array([c[1] for c in pairs], dtype=int))
        both = pd.Series(np.asarray(predict(Xm), dtype="float64"), index=pairs.index)
        out["p_together"] = both.reindex(out["account_id"]).to_numpy()
    texts = []
    for o in out.itertuples(index=False):
        ind = defs[o.feature]
        fmt = formatter(ind)
        t = f"if {ind.label} returned to {fmt(o.level)}"
        if o.source == "past":
            t += f" (its level {past_label})"
        if o.companions:
            t += " (and its other windows to healthy levels)"
        texts.append(t + f", {what} would fall from {o.p_from:.0%} to {o.p_to:.0%}")
    out["text"] = texts
    return out[LOWER_COLUMNS].reset_index(drop=True)


def lower_summary(lower: pd.DataFrame, what: str = "risk") -> pd.Series:
    """One line per account from :func:`how_to_lower`: its moves, and both together when there are two."""
    lines = {}
    for a, g in lower.groupby("account_id", sort=False):
        g = g.sort_values("rank")
        line = "; ".join(g["text"])
        both = g["p_together"].iloc[0]
        if len(g) > 1 and both == both:
            line += f"; both together: {what} {g['p_from'].iloc[0]:.0%} -> {both:.0%}"
        lines[a] = line
    return pd.Series(lines, name="how_to_lower", dtype=object)
