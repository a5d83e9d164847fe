"""The promotion gate: a newly trained model replaces the champion only when its recipe does better
on the same held-out cutoffs (higher churn PR-AUC and no worse Brier)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError
from churnml.modeling.metrics import binary_metrics


def promotion_decision(challenger: dict, champion: dict | None) -> tuple[bool, str]:
    """Promote when the challenger has higher churn PR-AUC and no worse Brier on the same holdout."""
    if champion is None:
        return True, "no champion yet"
    better_pr = challenger["pr_auc"] > champion["pr_auc"]
    brier_ok = challenger["brier"] <= champion["brier"]
    figures = (f"PR-AUC {challenger['pr_auc']:.4f} vs champion {champion['pr_auc']:.4f}, "
               f"Brier {challenger['brier']:.5f} vs {champion['brier']:.5f}")
    if better_pr and brier_ok:
        return True, f"beats the champion on the holdout: {figures}"
    why = "lower or equal PR-AUC" if not better_pr else "worse Brier"
    return False, f"kept the champion ({why}): {figures}"


def holdout_metrics(model, hold: pd.DataFrame, churn_col: str) -> dict:
    """A holdout model's churn metrics on the holdout rows (a model that cannot score today's features
    counts as the worst possible, so any working challenger replaces it)."""
    try:
        p = model.predict_target(hold, "churn")
    except (ChurnmlError, KeyError):
        return {"pr_auc": -np.inf, "brier": np.inf}
    return binary_metrics(hold[churn_col].astype(int), p, 12.0 * hold["mrr"].to_numpy(float))
