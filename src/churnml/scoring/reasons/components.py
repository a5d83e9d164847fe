"""The components a probability is split into (which indicator is what: :mod:`churnml.features.roles`).

**Timing is context, not a cause.** Calendar indicators (:data:`TIMING_FEATURES`, any
indicator about the renewal month, every model column that is not an indicator) form one
``timing`` component, said as a timing line (:mod:`.timing`). Static attributes (segment,
industry, region, plan, size, declared attributes) form a ``profile`` component. Neither is
ever a reason (:func:`is_reason`). :func:`components` splits the points so that
``p0 + components.sum(axis=1) == p`` still holds.

Also the small readers every part of the engine shares: :func:`account_ids`,
:func:`account_segments`, :func:`indicator_stem`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.features.roles import (
    CHANGE_UNITS,
    COMPONENTS,
    PROFILE,
    TIMING,
    TIMING_FEATURES,
    account_segments,
    component_of,
    is_reason,
)

__all__ = [
    "CHANGE_UNITS",
    "COMPONENTS",
    "PROFILE",
    "TIMING",
    "TIMING_FEATURES",
    "account_ids",
    "account_segments",
    "component_of",
    "components",
    "indicator_stem",
    "is_reason",
]


def components(points: pd.DataFrame, defs: dict[str, Indicator]) -> pd.DataFrame:
    """Points per component (columns :data:`COMPONENTS`, in that order): each row adds up to the
    row's total points, so ``p0 + components(points).sum(axis=1) == p``."""
    comp = np.array([component_of(c, defs) for c in points.columns], dtype=object)
    P = points.to_numpy(dtype="float64")
    return pd.DataFrame({c: P[:, comp == c].sum(axis=1) for c in COMPONENTS}, index=points.index)


def account_ids(index: pd.Index) -> np.ndarray:
    """The account ids of a frame's index (its ``account_id`` level when it has several)."""
    return np.asarray(index.get_level_values("account_id") if isinstance(index, pd.MultiIndex) else index)


def indicator_stem(name: str) -> str:
    """An indicator's name without its window ("active_users_per_seat_7d" -> "active_users_per_seat")."""
    return re.sub(r"_\d+d$", "", name)
