"""The probabilities a score shows, and the one that sets the risk tier.

With a time-to-churn model (:mod:`churnml.modeling.survival`) every account gets its churn
curve (30, 90, 180, 365 days), the probability of not renewing at its next renewal, the
month its curve reaches 50%, and a **risk probability**: the chance a CSM can still act on,
before the next renewal where a renewal date is known and the term is longer than a month,
else within 12 months (monthly terms renew every month: no renewal is a moment to prepare for). The tier,
the reasons and "how to lower it" all speak of that one probability. A model without one
(a 90-day classifier only) uses its 90-day probability instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.modeling.survival import next_renewal_days
from churnml.scoring.explain import contributions

CURVE = (30, 180, 365)  # besides churn_probability (the labels' horizon)


def horizon(model) -> int:
    return int(model.settings.get("horizon_days", 90))


def risk_frame(model, X: pd.DataFrame, as_of) -> pd.DataFrame:
    """Every probability of the scores table for the accounts of ``X`` (indexed by account_id)."""
    n = len(X)
    nan = np.full(n, np.nan)
    out = pd.DataFrame(index=X.index)
    h = horizon(model)
    if model.survival is not None:
        sv = model.survival
        days = sorted({h, *CURVE})
        curve = sv.predict_curve(X, days)
        out["churn_probability"] = curve[f"churn_{h}d"].to_numpy()
        for d in CURVE:
            if d != h:
                out[f"churn_probability_{d}d"] = curve[f"churn_{d}d"].to_numpy()
        out["churn_probability_next_renewal"] = sv.predict_next_renewal(X).to_numpy()
        out["median_months_to_churn"] = sv.median_month(X).to_numpy()
        out["risk_probability"] = sv.predict_risk(X).to_numpy()
        window = sv.next_renewal_window(X)
        day = next_renewal_days(X["days_to_renewal"], X["term_length_days"], sv.grace_days)
        renewal = pd.Timestamp(as_of) + pd.to_timedelta(np.where(np.isnan(window), 0, np.nan_to_num(day)), unit="D")
        monthly = sv.risk_window(X) != window  # a known renewal the risk does not run to: a monthly term
        out["risk_basis"] = np.where(
            np.isnan(window), "within 12 months (no renewal date known)",
            np.where(monthly, "within 12 months (monthly term)",
                     "before the renewal on " + pd.Series(renewal).dt.strftime("%Y-%m-%d").to_numpy()))
    else:
        p = model.predict_target(X, "churn")
        out["churn_probability"] = p
        for d in CURVE:
            if d != h:
                out[f"churn_probability_{d}d"] = nan
        out["churn_probability_next_renewal"] = nan
        out["median_months_to_churn"] = nan
        out["risk_probability"] = p
        out["risk_basis"] = f"within {h} days"
    out["expansion_probability"] = (model.predict_target(X, "expansion") if "expansion" in model.targets else nan)
    return out


def explain_risk(model, X: pd.DataFrame) -> tuple[pd.DataFrame, float, np.ndarray, str]:
    """Points of the risk probability per account (features and the model's timing inputs), its base,
    the probability and what it is (``explains``): ``base + points.sum(axis=1) == probability``."""
    if model.survival is not None:
        e = model.survival.explain(X, "risk")
        points = pd.concat([e.points, e.timing], axis=1)
        return points, float(e.base), e.probability.to_numpy(), "churn_risk"
    pts, p, p0 = contributions(model, X, "churn")
    return pts, float(p0), np.asarray(p), f"churn_{horizon(model)}d"


def predict_risk(model, X: pd.DataFrame) -> np.ndarray:
    """The risk probability alone (what "how to lower it" re-predicts)."""
    if model.survival is not None:
        return model.survival.predict_risk(X).to_numpy()
    return model.predict_target(X, "churn")


def risk_words(model) -> str:
    """How the risk probability is said in tier rules and on pages."""
    if model.survival is not None:
        return "chance of churning before the next renewal (or within 12 months)"
    return f"chance of churning within {horizon(model)} days"
