"""What moves a model's risk over a population of accounts: the training report's SHAP summary and
drivers by family, in the reasons' own components (timing and profile kept apart)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features import Indicator
from churnml.modeling.model import ChurnmlModel
from churnml.modeling.report import RiskDrivers
from churnml.scoring import reasons as R


def risk_drivers(
    model: ChurnmlModel, X: pd.DataFrame, defs: dict[str, Indicator], tier_high: float | None
) -> RiskDrivers | None:
    """The points of ``model``'s risk probability on the accounts of ``X`` (exact TreeSHAP), per indicator
    and per component; "high-risk accounts" are those at or above ``tier_high`` (None: the top 10%). None
    for an empty ``X`` or a model without time to churn (its classifier's importance is reported instead)."""
    if model.survival is None or not len(X):
        return None
    points, _, p_risk, _ = model.explain_risk(X)
    feats = [c for c in points.columns if c in defs]
    comp = R.components(points, defs)
    high = p_risk >= tier_high if tier_high is not None else p_risk >= np.quantile(p_risk, 0.9)
    fam = pd.DataFrame({"all accounts": comp.mean(), "high-risk accounts": comp[high].mean() if high.any() else np.nan})
    return RiskDrivers(points[feats], model.prepare(X)[feats], [defs[c].label for c in feats], fam)
