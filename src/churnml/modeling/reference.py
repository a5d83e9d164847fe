"""What a model keeps of its newest training rows to judge a base it scores: the levels of healthy
accounts its reasons quote, and the reference distribution drift is measured against
(:mod:`churnml.modeling.drift`). Both go on the model's card (:class:`churnml.modeling.model.ModelCard`)
when the recipe finishes (:mod:`churnml.modeling.recipe`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.features.roles import account_segments, is_reason

ALL_SEGMENTS = "(all segments)"
"""The row of :func:`healthy_levels` used for an account whose segment has too few healthy peers."""


def healthy_levels(
    X: pd.DataFrame, healthy, defs: dict[str, Indicator], *, segment_col: str = "segment", min_accounts: int = 30
) -> pd.DataFrame:
    """The level of each reason indicator typical of healthy accounts: the median over the rows
    of ``X`` where ``healthy`` is true, per segment, and over all segments in the row
    :data:`ALL_SEGMENTS`. A segment with fewer than ``min_accounts`` healthy rows is left out
    (its accounts are compared with all healthy accounts).

    Which accounts are healthy is the caller's choice (docs/reasons.md): e.g. the scored
    accounts in the lower-risk half of their segment (:func:`lower_risk_half`), or the
    accounts of the newest training cutoffs that did not churn.
    """
    cols = [c for c in X.columns if is_reason(c, defs)]
    mask = np.asarray(healthy, dtype=bool)
    H = X.loc[mask, cols].astype("float64")
    seg = pd.Series(account_segments(X, segment_col)[mask], index=H.index)
    counts = seg.value_counts()
    keep = counts.index[counts >= min_accounts]
    per = H[seg.isin(keep).to_numpy()].groupby(seg[seg.isin(keep)].to_numpy()).median()
    total = H.median().to_frame(ALL_SEGMENTS).T
    return pd.concat([per, total]).reindex(columns=cols)


def healthy_levels_state(levels: pd.DataFrame) -> dict:
    """Healthy levels as JSON for the model's card."""
    return {
        "index": [str(i) for i in levels.index],
        "columns": list(levels.columns),
        "values": [[None if v != v else float(v) for v in row] for row in levels.to_numpy(dtype="float64")],
    }


def healthy_levels_frame(state: dict | None) -> pd.DataFrame | None:
    """Healthy levels back from :func:`healthy_levels_state` (None when a card keeps none)."""
    if not state:
        return None
    return pd.DataFrame(state["values"], index=state["index"], columns=state["columns"], dtype="float64")
