"""Risk tiers: the probability cut-offs of high, medium and low, and the tiers in words.

Tiers are cut on the risk probability (:meth:`churnml.modeling.model.ChurnmlModel.predict_risk`),
from fixed probability levels or from quantiles of a recent population kept with the model
(its card's ``risk_quantiles``). The settings come from the flow (``scoring.tiers`` of the
config): any object with ``method``, ``high_level``, ``medium_level``, ``high_share`` and
``medium_share``.
"""

from __future__ import annotations

import numpy as np

from churnml.errors import ChurnmlError


def tier_thresholds(tiers, quantiles=None) -> dict:
    """The probability cut-offs of the tiers from the tier settings (``method``, levels, shares)."""
    if tiers.method == "levels":
        return {"method": "levels", "high": float(tiers.high_level), "medium": float(tiers.medium_level)}
    if not quantiles:
        raise ChurnmlError(
            "risk tiers by quantiles need the model's probability quantiles: retrain the model "
            "(churnml train), or set scoring.tiers.method: levels"
        )
    grid = np.linspace(0, 1, len(quantiles))

    def q(share: float) -> float:
        return float(np.interp(1 - share, grid, list(quantiles)))

    return {
        "method": "quantiles",
        "high": q(tiers.high_share),
        "medium": q(tiers.high_share + tiers.medium_share),
        "high_share": float(tiers.high_share),
        "medium_share": float(tiers.medium_share),
    }


def tier_texts(thresholds: dict, what: str = "chance of churning within 90 days") -> dict[str, str]:
    """Each tier in words, for every page and report (e.g. high: "30% or more chance of ...")."""
    h, m = thresholds["high"], thresholds["medium"]
    if thresholds.get("method") == "quantiles":
        return {
            "high": f"the {thresholds['high_share']:.0%} of accounts most at risk in recent history ({h:.0%} "
            f"or more {what})",
            "medium": f"the next {thresholds['medium_share']:.0%} ({m:.0%} to {h:.0%})",
            "low": f"below {m:.0%}",
        }
    return {"high": f"{h:.0%} or more {what}", "medium": f"{m:.0%} to {h:.0%}", "low": f"below {m:.0%}"}


def tier_rule(thresholds: dict, what: str = "chance of churning within 90 days") -> str:
    """The tiers in one line: "high: 30% or more chance of ...; medium: 15% to 30%; low: below 15%"."""
    return "; ".join(f"{k}: {v}" for k, v in tier_texts(thresholds, what).items())


def tier(p: np.ndarray, thresholds: dict) -> np.ndarray:
    """Each probability's tier: ``high``, ``medium`` or ``low``."""
    return np.where(p >= thresholds["high"], "high", np.where(p >= thresholds["medium"], "medium", "low"))
