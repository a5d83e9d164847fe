"""What a replay found: a model trained only on what was known before a date, judged on what happened.

The outcome table has one row per account scored as of the date: its churn probability
from the replayed model and from each baseline (trained on the same past), its risk tier,
its ARR, and whether it churned within the horizon (read from the full history).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.modeling.metrics import binary_metrics

MODELS = ("churnml", "logistic_regression", "health_score")


def replay_evaluation(outcomes: pd.DataFrame, horizon_days: int) -> dict:
    """Figures a team reads before trusting a model: churners caught in the high tier, the ARR they
    carried, and the ranking metrics of churnml beside the baselines on the same accounts."""
    y = outcomes["churned"].astype(int).to_numpy()
    arr = outcomes["arr"].to_numpy(float)
    high = (outcomes["risk_tier"] == "high").to_numpy()
    churned = y == 1
    out = {
        "accounts": int(len(y)), "churned": int(churned.sum()), "horizon_days": int(horizon_days),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "high_risk": int(high.sum()), "churned_in_high": int((high & churned).sum()),
        "churned_arr": float(arr[churned].sum()), "churned_arr_in_high": float(arr[high & churned].sum()),
        "precision_high": float(y[high].mean()) if high.any() else float("nan"),
        "models": {},
    }
    out["recall_high"] = out["churned_in_high"] / out["churned"] if out["churned"] else float("nan")
    out["arr_caught_high"] = out["churned_arr_in_high"] / out["churned_arr"] if out["churned_arr"] else float("nan")
    for m in MODELS:
        col = f"p_{m}"
        if col in outcomes:
            out["models"][m] = binary_metrics(y, outcomes[col].to_numpy(float), arr)
    return out


def replay_text(ev: dict, as_of: pd.Timestamp, tier_rule: str) -> str:
    """The evaluation in plain words (Markdown)."""
    m = ev["models"]
    lines = [f"# What churnml would have said on {as_of:%Y-%m-%d}", "",
             f"Trained only on what was known before {as_of:%Y-%m-%d}, scored as of that day, judged on the "
             f"next {ev['horizon_days']} days.", "",
             f"- {ev['accounts']:,} accounts scored; {ev['churned']:,} churned within {ev['horizon_days']} days "
             f"({ev['base_rate']:.1%}).",
             f"- {ev['high_risk']:,} were high risk ({tier_rule}); {ev['churned_in_high']:,} of the "
             f"{ev['churned']:,} churners were among them ({_pct(ev['recall_high'])}), carrying "
             f"{_pct(ev['arr_caught_high'])} of the ARR lost ({ev['churned_arr_in_high']:,.0f} of "
             f"{ev['churned_arr']:,.0f}). Of the high-risk accounts, {_pct(ev['precision_high'])} churned.", "",
             "| model | PR-AUC | ROC-AUC | top-decile lift | churned ARR in the top decile | Brier |",
             "|---|---|---|---|---|---|"]
    for name, r in m.items():
        lines.append(f"| {name.replace('_', ' ')} | {_f(r['pr_auc'])} | {_f(r['roc_auc'])} | "
                     f"{_f(r['top_decile_lift'], 2)}x | {_pct(r['arr_capture_top_decile'])} | {_f(r['brier'], 4)} |")
    return "\n".join(lines) + "\n"


def _pct(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.0%}"


def _f(v, d: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"
