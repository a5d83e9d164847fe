"""How early the models warn: per-horizon quality, the accounts renewing in 3-12 months, lead times.

Judged on the walk-forward backtest: the 90-day classifier churnml used before time to
churn (:func:`churnml.modeling.backtest.run_backtest`) and the time-to-churn model
(:func:`~churnml.modeling.backtest.run_survival_backtest`) score the same test cutoffs of the
same folds. Labels come from :func:`churnml.modeling.survival.churn_events` over the whole
data: a row counts for a horizon only when its window is observed (an unobserved future is
never "stayed").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.modeling.backtest import LIGHTGBM, TIME_TO_CHURN, BacktestResult, SurvivalBacktest
from churnml.modeling.metrics import binary_metrics, reliability_table
from churnml.modeling.survival import early_warning_table, horizon_metrics, lead_time, risk_label

DAYS = (30, 90, 180, 365)


def add_time_to_churn(bt: BacktestResult, sv: SurvivalBacktest, horizon_days: int) -> BacktestResult:
    """The time-to-churn model's ``horizon_days`` probability as one more model of the churn backtest, on
    exactly the classifier's test rows (so every metric table shows it beside today's 90-day model)."""
    p = bt.predictions
    churn = p[(p["target"] == "churn") & (p["model"] == LIGHTGBM)]
    idx = pd.MultiIndex.from_arrays([churn["account_id"], churn["cutoff"]])
    col = f"churn_{horizon_days}d"
    if col not in sv.predictions:
        return bt
    q = sv.predictions[col].reindex(idx).to_numpy()
    ok = ~np.isnan(q)
    rows = churn[ok].assign(model=TIME_TO_CHURN, p=q[ok], p_raw=q[ok])
    return BacktestResult(pd.concat([p, rows], ignore_index=True), bt.models)


def warning_metrics(warning: dict) -> dict:
    """The early-warning figures as flat MLflow metrics."""
    out = {}
    for k, v in warning.get("risk", {}).items():
        out[f"backtest_risk_{k}"] = v
    for r in warning["horizons"].itertuples(index=False):
        for k in ("pr_auc", "roc_auc", "brier", "top_decile_lift", "base_rate", "n"):
            out[f"backtest_time_to_churn_{int(r.days)}d_{k}"] = getattr(r, k)
    for table, prefix in (("early_warning", "early_warning"), ("within_year", "within_year")):
        for r in warning.get(table, pd.DataFrame(columns=["score"])).itertuples(index=False):
            key = "".join(c if c.isalnum() else "_" for c in r.score.lower()).strip("_")
            out[f"{prefix}_{key}_roc_auc"] = r.roc_auc
            out[f"{prefix}_{key}_pr_auc"] = r.pr_auc
            out[f"{prefix}_{key}_top_decile_lift"] = r.top_decile_lift
    for name, lead in warning["lead_time"].items():
        if isinstance(lead, dict):
            key = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
            for k in ("median_lead_days", "share_flagged", "median_lead_days_flagged", "share_flagged_90d_ahead"):
                out[f"lead_time_{key}_{k}"] = lead[k]
    return {k: float(v) for k, v in out.items() if v == v}


def evaluate(bt: BacktestResult, sv: SurvivalBacktest, events: pd.DataFrame, X: pd.DataFrame, *,
             horizon_days: int, tier_high: float | None, high_share: float = 0.10) -> dict:
    """Every early-warning figure of the training report (tables as DataFrames, lead times as dicts).

    ``tier_high``: the high tier's probability level on the risk probability (None: tiers by
    quantiles, then the top ``high_share`` per cutoff, today's rule). Today's 90-day model is
    judged with today's rule: its top ``high_share`` of each cutoff.
    """
    P = sv.predictions
    idx = P.index
    arr = 12.0 * X["mrr"].reindex(idx).to_numpy(float)
    curves = P[[f"churn_{d}d" for d in DAYS if f"churn_{d}d" in P]]
    table, reliability = horizon_metrics(curves, events, [d for d in DAYS if f"churn_{d}d" in P], arr)
    p = bt.predictions
    today = p[(p["target"] == "churn") & (p["model"] == LIGHTGBM)]
    today = pd.Series(today["p"].to_numpy(), index=pd.MultiIndex.from_arrays([today["account_id"], today["cutoff"]],
                                                                            names=["account_id", "cutoff"]))
    scores = {f"90-day model (today, {horizon_days} days)": today.reindex(idx),
              "12 months": P["churn_365d"], "next renewal": P["next_renewal"], "risk (tier)": P["risk"]}
    ew = early_warning_table({k: v for k, v in scores.items() if v.notna().any()}, events, X.reindex(idx))
    year = early_warning_table({k: v for k, v in scores.items() if k != "next renewal" and v.notna().any()},
                               events, X.reindex(idx), renewal_from=None)
    common = today.index.intersection(idx)  # the same folds' test cutoffs for both models
    risk = P["risk"].reindex(common)
    cuts = common.get_level_values("cutoff")
    span = (cuts.max() - cuts.min()).days if len(common) else 0
    lookback = int(min(365, max(60, span - 31)))
    lead = {"lookback_days": lookback, "cutoffs": int(cuts.nunique()),
            "today (top 10% of 90-day risk)": lead_time(today.reindex(common), events, high_share=high_share,
                                                        lookback_days=lookback),
            "time to churn (high tier)": lead_time(risk, events, threshold=tier_high, high_share=high_share,
                                                   lookback_days=lookback),
            "time to churn (top 10% of risk)": lead_time(risk, events, high_share=high_share,
                                                         lookback_days=lookback)}
    # the probability that sets the tier, against what it predicts (its window observed)
    y = risk_label(events.reindex(idx), X.reindex(idx))
    ok = y.notna().to_numpy()
    yy = y.to_numpy(dtype=float, na_value=np.nan)[ok]
    pr = P["risk"].to_numpy(float)[ok]
    risk = {**binary_metrics(yy, pr), "mean_predicted": float(pr.mean()) if len(pr) else np.nan}
    reliability = {**reliability, "risk": reliability_table(yy, pr) if len(yy) else pd.DataFrame()}
    return {"horizons": table.reset_index(), "reliability": reliability, "risk": risk,
            "early_warning": ew.rename_axis(
        "score").reset_index(), "within_year": year.rename_axis("score").reset_index(), "lead_time": lead}
