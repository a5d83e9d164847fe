"""What a replay found: a model trained only on what was known before a date, judged on what happened.

The outcome table (:func:`replay_outcomes`) has one row per account scored as of the
date: its probabilities from the replayed model (the churn curve at the labels' horizon
and at 12 months, and the **risk probability** that sets the tier), the baselines'
churn probabilities (trained on the same past), its risk tier, its ARR, and what
happened in each window, read from the full history with
:func:`churnml.modeling.survival.churned_within`:

* ``churned_{H}d``: churned within the labels' horizon (what the 90-day probability and
  the baselines predict);
* ``churned_in_risk_window``: churned before the next renewal + grace where a renewal
  date is known, else within 12 months (what the risk probability predicts;
  ``risk_window_days`` per account);
* ``churned_365d``: churned within 12 months.

Each is ``True``, ``False`` or empty (unknown): a window that runs past the end of the
data, or a term that completed inside it, is never read as "stayed".
:func:`replay_evaluation` judges every score on the accounts whose outcome is known,
and says so plainly when a window is not observable yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churnml.modeling.events import churned_within
from churnml.modeling.metrics import binary_metrics

RISK = "risk_probability"
LABELS = {
    "churnml": "churnml, {h}-day probability",
    "churnml_365d": "churnml, 12-month probability",
    RISK: "churnml, risk probability (sets the tier)",
    "logistic_regression": "logistic regression ({h} days)",
    "health_score": "health score",
}


def windows(horizon_days: int) -> list[dict]:
    """The windows a replay judges: key, words, outcome column, window length column (or days), the
    scores judged on it (outcome columns ``p_<score>``) and the ones that *predict* it (whose
    calibration, the Brier score, means something there)."""
    h = int(horizon_days)
    return [
        {
            "key": f"{h}d",
            "words": f"churned within {h} days",
            "label": f"churned_{h}d",
            "days": h,
            "scores": ["churnml", RISK, "logistic_regression", "health_score"],
            "predicts": ["churnml", "logistic_regression"],
        },
        {
            "key": "risk",
            "words": "churned before the next renewal (+ grace), else within 12 months",
            "label": "churned_in_risk_window",
            "days": "risk_window_days",
            "scores": [RISK, "logistic_regression", "health_score"],
            "predicts": [RISK],
        },
        {
            "key": "365d",
            "words": "churned within 12 months",
            "label": "churned_365d",
            "days": 365,
            "scores": ["churnml_365d", RISK, "logistic_regression", "health_score"],
            "predicts": ["churnml_365d"],
        },
    ]


def replay_outcomes(
    scores: pd.DataFrame, events: pd.DataFrame, *, horizon_days: int, data_end, risk_window_days: pd.Series
) -> pd.DataFrame:
    """Add what happened to ``scores`` (one row per account: ``account_id``, the ``p_*`` columns,
    ``risk_tier``, ``arr``).

    ``events``: :func:`churnml.modeling.survival.churn_events` of the full history at the replay
    date (indexed by account_id or by (account_id, cutoff)); ``risk_window_days``: per account
    (indexed by account_id), the days the risk probability covers. An account without an event row
    (not paying on the day before the date in the full history) has unknown outcomes.
    """
    ev = events.droplevel("cutoff") if isinstance(events.index, pd.MultiIndex) else events
    ids = pd.Index(scores["account_id"].astype(str))
    ev = ev.set_axis(ev.index.astype(str)).reindex(ids)
    out = scores.copy()
    out["days_observed"] = int(ev["observed_days"].max()) if ev["observed_days"].notna().any() else 0
    out["risk_window_days"] = (
        pd.Series(risk_window_days)
        .set_axis(pd.Index(pd.Series(risk_window_days).index.astype(str)))
        .reindex(ids)
        .to_numpy(float)
    )
    known = ev["observed_days"].notna().to_numpy()
    for col, days in (
        (f"churned_{int(horizon_days)}d", float(horizon_days)),
        ("churned_in_risk_window", out["risk_window_days"].to_numpy(float)),
        ("churned_365d", 365.0),
    ):
        lab = churned_within(ev.fillna({"observed_days": 0}), days).array.copy()
        lab[~known] = pd.NA
        out[col] = lab
    out.attrs["data_end"] = pd.Timestamp(data_end)
    return out


def replay_evaluation(outcomes: pd.DataFrame, horizon_days: int, *, as_of, data_end) -> dict:
    """Per window (:func:`windows`): whether it is observable yet, how many accounts have a known
    outcome (and why the others do not), how many churned, how many of the churners were high risk
    and the ARR they carried, the share of high-risk accounts that churned, and the ranking metrics
    (:func:`churnml.modeling.metrics.binary_metrics`) of every score on the same accounts. A window
    with no account whose window has passed says when it can be judged instead of carrying figures."""
    as_of, data_end = pd.Timestamp(as_of), pd.Timestamp(data_end)
    observed = int((data_end - as_of).days) + 1  # days of the future in the data
    arr_all = outcomes["arr"].to_numpy(float)
    high_all = (outcomes["risk_tier"] == "high").to_numpy()
    out: dict[str, Any] = {
        "as_of": f"{as_of:%Y-%m-%d}",
        "data_end": f"{data_end:%Y-%m-%d}",
        "accounts": len(outcomes),
        "high_risk": int(high_all.sum()),
        "days_observed": max(observed, 0),
        "windows": {},
    }
    risk_is_horizon = "risk_window_days" in outcomes and bool(
        (outcomes["risk_window_days"].to_numpy(float) == float(horizon_days)).all()
    )
    for w in windows(horizon_days):
        if risk_is_horizon and w["key"] == f"{int(horizon_days)}d":
            w = {**w, "predicts": [*w["predicts"], RISK]}  # the risk is this window's probability
        if w["key"] == "risk" and risk_is_horizon:
            # no time-to-churn model: the risk is the horizon's probability, judged in the first window
            out["windows"][w["key"]] = {
                "words": "churned within the risk's window",
                "observable": False,
                "churned_so_far_in_open": 0,
                "not_observable": f"the same as the {int(horizon_days)}-day window: without a time-to-churn "
                f"model the risk is the {int(horizon_days)}-day probability",
            }
            continue
        lab = outcomes[w["label"]].astype("boolean")
        days = (
            outcomes[w["days"]].to_numpy(float)
            if isinstance(w["days"], str)
            else np.full(len(outcomes), float(w["days"]))
        )
        # judged only where the whole window has passed: a churn already seen inside a window still open is
        # left out with the stayers it cannot yet be told from (leaving out only those would bias the figures)
        still_open = ~(days < observed)
        known = lab.notna().to_numpy() & ~still_open
        r: dict[str, Any] = {
            "words": w["words"],
            "accounts_known": int(known.sum()),
            "still_open": int(still_open.sum()),
            "churned_so_far_in_open": int((lab.fillna(False).to_numpy(bool) & still_open).sum()),
            "unknown_other": int((~known & ~still_open).sum()),
        }
        # the day a window [as_of, as_of + days) can be judged: the data must reach it (the contract's rule)
        ends = as_of + pd.to_timedelta(np.nan_to_num(days, nan=0.0), unit="D")
        r["judged_from"] = f"{ends.max():%Y-%m-%d}" if len(ends) else None
        r["observable"] = bool(known.any())
        if isinstance(w["days"], str):
            r["first_open_judged_from"] = f"{ends[still_open].min():%Y-%m-%d}" if still_open.any() else None
        if not r["observable"]:
            r["not_observable"] = (
                f"not observable yet: it can be judged once the data reach {ends.max():%Y-%m-%d}; "
                f"they end on {data_end:%Y-%m-%d}"
                if len(ends) and still_open.any()
                else "no account has a known outcome"
            )
            out["windows"][w["key"]] = r
            continue
        y = lab.to_numpy(dtype=bool, na_value=False)[known]
        arr, high = arr_all[known], high_all[known]
        churned = y
        r.update(
            {
                "churned": int(churned.sum()),
                "base_rate": float(churned.mean()),
                "high_risk": int(high.sum()),
                "churned_in_high": int((high & churned).sum()),
                "churned_arr": float(arr[churned].sum()),
                "churned_arr_in_high": float(arr[high & churned].sum()),
                "precision_high": float(churned[high].mean()) if high.any() else None,
            }
        )
        r["recall_high"] = r["churned_in_high"] / r["churned"] if r["churned"] else None
        r["arr_caught_high"] = r["churned_arr_in_high"] / r["churned_arr"] if r["churned_arr"] else None
        r["models"] = {}
        for m in w["scores"]:
            col = f"p_{m}"
            if col in outcomes:
                res: dict[str, float | None] = dict(
                    binary_metrics(churned.astype(int), outcomes[col].to_numpy(float)[known], arr)
                )
                if m not in w["predicts"]:
                    res["brier"] = res["log_loss"] = None  # it does not predict this window: ranking only
                r["models"][m] = {k: (None if v is not None and v != v else v) for k, v in res.items()}
        out["windows"][w["key"]] = r
    return out


def replay_text(ev: dict, as_of: pd.Timestamp, tier_rule: str, horizon_days: int) -> str:
    """The evaluation in plain words (Markdown)."""
    h = int(horizon_days)
    lines = [
        f"# What churnml would have said on {as_of:%Y-%m-%d}",
        "",
        f"Trained only on what was known before {as_of:%Y-%m-%d} (the same recipe as `churnml train`, nothing "
        f"registered), scored as of that day, judged on what happened up to {ev['data_end']} "
        f"({ev['days_observed']:,} days later).",
        "",
        f"- {ev['accounts']:,} accounts scored; {ev['high_risk']:,} high risk ({tier_rule}).",
        "",
    ]
    for w in windows(h):
        r = ev["windows"][w["key"]]
        lines.append(f"## {r['words'].capitalize()}")
        lines.append("")
        if not r["observable"]:
            lines += [
                f"{r['not_observable'][0].upper()}{r['not_observable'][1:]}."
                + (
                    f" {r['churned_so_far_in_open']:,} of the {ev['accounts']:,} accounts churned already "
                    f"(not judged until the window has passed)."
                    if r["churned_so_far_in_open"]
                    else ""
                ),
                "",
            ]
            continue
        unknown = []
        if r["still_open"]:
            unknown.append(
                f"{r['still_open']:,} whose window is still open"
                + (
                    f" (the first can be judged on {r['first_open_judged_from']})"
                    if r.get("first_open_judged_from")
                    else ""
                )
                + (f"; {r['churned_so_far_in_open']:,} of them churned already" if r["churned_so_far_in_open"] else "")
            )
        if r["unknown_other"]:
            unknown.append(f"{r['unknown_other']:,} whose term completed inside it or that left the population")
        lines.append(
            f"- Outcome known for {r['accounts_known']:,} of {ev['accounts']:,} accounts"
            + (f"; unknown, and left out, for {' and '.join(unknown)}" if unknown else "")
            + "."
        )
        lines.append(
            f"- {r['churned']:,} churned ({r['base_rate']:.1%}); {r['churned_in_high']:,} of them were high "
            f"risk ({_pct(r['recall_high'])}), carrying {_pct(r['arr_caught_high'])} of the ARR lost "
            f"({r['churned_arr_in_high']:,.0f} of {r['churned_arr']:,.0f}). Of the {r['high_risk']:,} "
            f"high-risk accounts, {_pct(r['precision_high'])} churned."
        )
        lines += [
            "",
            "| score | PR-AUC | ROC-AUC | top-decile lift | churned ARR in the top decile | Brier |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in r["models"].items():
            lines.append(
                f"| {LABELS.get(name, name).format(h=h)} | {_f(m['pr_auc'])} | {_f(m['roc_auc'])} | "
                f"{_f(m['top_decile_lift'], 2)}x | {_pct(m['arr_capture_top_decile'])} | "
                f"{_f(m['brier'], 4) if m['brier'] is not None else 'does not predict this window'} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def flat_metrics(ev: dict) -> dict[str, float]:
    """The evaluation as flat MLflow metrics (``replay_<window>_...``); unobservable windows are absent."""
    out = {}
    for key, r in ev["windows"].items():
        if not r["observable"]:
            continue
        for k in ("accounts_known", "churned", "churned_in_high", "recall_high", "arr_caught_high"):
            out[f"replay_{key}_{k}"] = r[k]
        for m, res in r["models"].items():
            for k in ("pr_auc", "roc_auc", "top_decile_lift"):
                out[f"replay_{key}_{m}_{k}"] = res[k]
    return {k: float(v) for k, v in out.items() if v is not None and v == v}


def _pct(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.0%}"


def _f(v, d: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"
