"""Which indicator is what: the role each model column plays in an explanation.

**Timing is context, not a cause.** Calendar indicators (:data:`TIMING_FEATURES`, any
indicator about the renewal month, every model column that is not an indicator) are
``timing``; static attributes (segment, industry, region, plan, size, declared attributes)
are ``profile``; every other indicator belongs to its family (:data:`FAMILIES`). Only
numeric behavioural and commercial-state indicators with a risk direction can be a reason
(:func:`is_reason`). The reasons engine (:mod:`churnml.scoring.reasons`) and the model's
card (:mod:`churnml.modeling.reference`: healthy levels, drift resolution) both read these.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import FAMILIES, Indicator

TIMING = "timing"
PROFILE = "profile"
COMPONENTS = (*FAMILIES, TIMING, PROFILE)
"""The parts a probability is split into: the five families' behavioural and commercial-state
indicators, the calendar (``timing``) and who the account is (``profile``)."""

TIMING_FEATURES = frozenset({"days_to_renewal", "term_length_days", "tenure_days", "days_since_mrr_change"})
"""Indicators of the calendar: they say *when* risk falls due, not *why*. ``tenure_days`` is
the account's age; ``days_since_mrr_change`` counts days since the commercial terms last moved
(mostly since the last renewal). Any indicator whose name mentions ``renewal`` (a renewal
month, say) and any model column that is not an indicator (``months_ahead``, ``window``) is
timing too (:func:`component_of`)."""

CHANGE_UNITS = ("relative change", "score points")
"""Units of indicators that are already a change: they are not compared with their own past."""


def component_of(name: str, defs: dict[str, Indicator]) -> str:
    """The component a model column's points belong to: ``timing``, ``profile`` or its family.

    Timing: :data:`TIMING_FEATURES`, any other indicator whose name mentions ``renewal``, and
    any column that is not an indicator (extra inputs of a model). Profile: categorical
    indicators, declared account attributes, and commercial indicators without a risk
    direction (MRR, seats, price per seat).
    """
    ind = defs.get(name)
    if ind is None or name in TIMING_FEATURES:
        return TIMING
    if ind.kind == "categorical" or ind.sql is not None or (ind.family == "commercial" and ind.risk == "context"):
        return PROFILE
    return TIMING if "renewal" in name else ind.family


def is_reason(name: str, defs: dict[str, Indicator]) -> bool:
    """Whether a column can be a reason: a numeric behavioural or commercial-state indicator
    with a risk direction (``low`` or ``high``). Indicators without a direction (``context``:
    weekday share, survey answer counts) stay in their family's points but are never a reason,
    since no words can say which of their sides is healthy."""
    ind = defs.get(name)
    return (
        ind is not None
        and component_of(name, defs) in FAMILIES
        and ind.kind == "numeric"
        and ind.risk in ("low", "high")
    )


def account_segments(X: pd.DataFrame, segment_col: str) -> np.ndarray:
    """Each row's segment as an object array (None where missing, or everywhere when ``X`` has no
    ``segment_col``)."""
    if segment_col not in X:
        return np.full(len(X), None, dtype=object)
    s = X[segment_col].astype("object")
    return s.where(s.notna(), None).to_numpy(dtype=object)
