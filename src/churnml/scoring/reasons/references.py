"""References and the agreement check: the levels a reason's value is compared with, and whether its
words agree with its points.

**Words that agree with the numbers.** A reason quotes its value against references that
explain its direction: the level of healthy accounts of the same segment
(:func:`healthy_levels`, from a healthy population such as :func:`lower_risk_half`) and the
account's own level three months ago. A reference is shown only when the value is on the side
the points need (:func:`side`, :func:`needed_side`); :func:`disagrees` and
:func:`reason_disagrees` are the check. :func:`level_rows` and :func:`level_matrix` look an
account's healthy levels up on arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.features.roles import account_segments
from churnml.modeling.reference import ALL_SEGMENTS
from churnml.scoring.reasons.words import displayed


def lower_risk_half(risk, X: pd.DataFrame, *, segment_col: str = "segment") -> np.ndarray:
    """Accounts whose ``risk`` is at or below the median of their segment: a healthy reference
    population any scoring run has, without labels. Pass the probability without its timing
    points (``p - components(points)["timing"]``), so that accounts far from their renewal do not
    pass for healthy."""
    seg = pd.Series(account_segments(X, segment_col)).fillna(ALL_SEGMENTS)
    r = pd.Series(np.asarray(risk, dtype="float64"))
    return (r <= r.groupby(seg.to_numpy()).transform("median")).to_numpy()


def level_rows(levels: pd.DataFrame, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of ``levels`` for each account (its segment's, else :data:`ALL_SEGMENTS`, else a NaN row
    at ``len(levels)``) and whether it is the segment's own."""
    idx = pd.Index(levels.index)
    own = idx.get_indexer(pd.Index(seg, dtype=object))
    fallback = idx.get_indexer([ALL_SEGMENTS])[0]
    fallback = len(idx) if fallback < 0 else fallback
    named = own >= 0
    return np.where(named, own, fallback), named & (idx.to_numpy(dtype=object)[np.maximum(own, 0)] != ALL_SEGMENTS)


def level_matrix(levels: pd.DataFrame, cols: list[str]) -> np.ndarray:
    L = levels.reindex(columns=cols).to_numpy(dtype="float64")
    return np.vstack([L, np.full((1, len(cols)), np.nan)])


def side(ind: Indicator, values, references) -> np.ndarray:
    """Which side of its reference each value is on, as the words show them: +1 the risk side
    (above for an indicator whose ``risk`` is ``high``, below for ``low``), -1 the healthy side,
    0 when they are said alike ("0.40" and "0.40") or either is missing."""
    v, r = displayed(ind, values), displayed(ind, references)
    s = np.sign(v - r) * (1.0 if ind.risk == "high" else -1.0)
    return np.nan_to_num(s, nan=0.0).astype("int8")


def needed_side(points, target: str = "churn") -> np.ndarray:
    """The side of a reference a reason's value must be on for its words to explain its points:
    +1 (risk side) for a reason raising churn or lowering expansion, -1 otherwise."""
    up = np.asarray(points, dtype="float64") > 0
    return np.where(up == (target == "churn"), 1, -1).astype("int8")


def disagrees(ind: Indicator, values, references, points, target: str = "churn") -> np.ndarray:
    """Whether a reason's words contradict its points: it quotes a reference (not NaN) and its
    value is not strictly on the side the points need (e.g. a risk-raising "median first response
    12 min; healthy accounts 30 min"). A missing value or reference quotes no comparison."""
    v = np.asarray(values, dtype="float64")
    r = np.asarray(references, dtype="float64")
    return ~np.isnan(v) & ~np.isnan(r) & (side(ind, v, r) != needed_side(points, target))


def reason_disagrees(reasons: pd.DataFrame, defs: dict[str, Indicator]) -> np.ndarray:
    """:func:`disagrees` for each row of a reasons table, over both references it quotes."""
    out = np.zeros(len(reasons), dtype=bool)
    feat = reasons["feature"].to_numpy(dtype=object)
    tgt = reasons["target"].to_numpy(dtype=object)
    for f in pd.unique(feat):
        for t in pd.unique(tgt[feat == f]):
            sel = np.flatnonzero((feat == f) & (tgt == t))
            r = reasons.iloc[sel]
            for col in ("healthy_level", "past_value"):
                out[sel] |= disagrees(defs[f], r["value"], r[col], r["points"], t)
    return out
