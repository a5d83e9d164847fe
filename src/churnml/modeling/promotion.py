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
    if champion.get("not_comparable"):
        return True, f"replaces a champion that cannot be compared: {champion['not_comparable']}"
    better_pr = challenger["pr_auc"] > champion["pr_auc"]
    brier_ok = challenger["brier"] <= champion["brier"]
    figures = (
        f"PR-AUC {challenger['pr_auc']:.4f} vs champion {champion['pr_auc']:.4f}, "
        f"Brier {challenger['brier']:.5f} vs {champion['brier']:.5f}"
    )
    if better_pr and brier_ok:
        return True, f"beats the champion on the holdout: {figures}"
    why = "lower or equal PR-AUC" if not better_pr else "worse Brier"
    return False, f"kept the champion ({why}): {figures}"


def holdout_metrics(model, hold: pd.DataFrame, churn_col: str) -> dict:
    """A holdout model's churn metrics on the holdout rows, from ``churn_probability`` of its
    ``predict_proba`` (what it serves and scores: the chance of churning within its own horizon). A
    model that cannot score today's features, or answers another horizon than ``churn_col`` asks,
    counts as the worst possible, so any working challenger replaces it."""
    if not churn_col.endswith(f"_{model.horizon_days}d"):
        return {
            "pr_auc": -np.inf,
            "brier": np.inf,
            "not_comparable": f"it answers churn within {model.horizon_days} days, not {churn_col}",
        }
    try:
        p = model.predict_proba(hold)["churn_probability"].to_numpy()
    except (ChurnmlError, KeyError) as e:
        return {"pr_auc": -np.inf, "brier": np.inf, "not_comparable": f"it cannot score today's features ({e})"}
    return binary_metrics(hold[churn_col].astype(int), p, 12.0 * hold["mrr"].to_numpy(float))
