"""Point-in-time feature builders: the leading indicators of churn and expansion.

>>> from churnml.features import build_features, indicators_for   # doctest: +SKIP
>>> X = build_features(dataset, ["2025-01-01", "2025-02-01"])      # doctest: +SKIP

One family per module (usage, effort, support, onboarding, commercial); each pairs
its indicator definitions with the SQL that computes them.
"""

from churnml.dataset import Context
from churnml.features._engine import FAMILY_MODULES, build_features, indicators_for
from churnml.features._registry import FAMILIES, WINDOWS, Indicator

__all__ = ["FAMILIES", "FAMILY_MODULES", "WINDOWS", "Context", "Indicator", "build_features", "indicators_for"]
