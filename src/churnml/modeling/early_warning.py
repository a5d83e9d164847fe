"""How early the models warn: per-horizon quality, the accounts renewing in 3-12 months, lead times.

Judged on the walk-forward backtest: the 90-day classifier churnml used before time to
churn (:func:`churnml.modeling.backtest.run_backtest`) and the time-to-churn model
(:func:`~churnml.modeling.backtest.run_survival_backtest`) score the same test cutoffs of the
same folds. Labels come from :func:`churnml.modeling.events.churn_events` over the whole
data: a row counts for a horizon only when its window is observed (an unobserved future is
never "stayed").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.modeling.backtest import LIGHTGBM, TIME_TO_CHURN, BacktestResult, SurvivalBacktest
from churnml.modeling.events import churned_within, risk_label, window_observed
from churnml.modeling.metrics import binary_metrics, reliability_table, top_share_mask
from churnml.modeling.survival_metrics import survival_table

DAYS = (30, 90, 180, 365)
HIGH_TIER_RULE = "time to churn (high tier)"  # the lead-time rule the tiers give


# --- judging curves and scores over horizons -------------------------------------------------------
def horizon_metrics(
    curves: pd.DataFrame, events: pd.DataFrame, days=DAYS, arr=None, bins: int = 10
) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    """Per-horizon metrics of ``curves`` (columns ``churn_{d}d``, indexed like ``events``)
    on the rows whose label is known and whose window is observed (see
    :func:`churned_within`; a row that churned inside a window running past the data's
    end is left out with its non-churned neighbours, so the rows are not chosen by their
    outcome). Returns a table (one row per horizon: ``binary_metrics``) and a
    reliability table per horizon."""
    ev = events.reindex(curves.index)
    rows, rel = {}, {}
    for d in days:
        y = churned_within(ev, d)
        ok = y.notna().to_numpy() & window_observed(ev, d) & ev["observed_days"].notna().to_numpy()
        p = curves[f"churn_{d}d"].to_numpy(float)[ok]
        yy = y.to_numpy(dtype=float, na_value=np.nan)[ok]
        w = None if arr is None else np.asarray(arr, float)[ok]
        rows[d] = binary_metrics(yy, p, w)
        rel[d] = reliability_table(yy, p, bins) if len(yy) else pd.DataFrame()
    return pd.DataFrame(rows).T.rename_axis("days"), rel


def early_warning_table(
    scores: dict[str, pd.Series],
    events: pd.DataFrame,
    X: pd.DataFrame,
    *,
    renewal_from: int | None = 90,
    renewal_to: int = 365,
    label_days: int = 365,
) -> pd.DataFrame:
    """How well each score ranks the accounts whose renewal is ``renewal_from``..
    ``renewal_to`` days after the cutoff (``days_to_renewal`` of ``X``; ``renewal_from=None``:
    every account, whatever its renewal) by who churns within ``label_days`` (windows
    observed). One row per score: n, churn rate, ROC-AUC, PR-AUC, top-decile lift. All
    scores are judged on the same rows (those every score has)."""
    idx = None
    for s in scores.values():
        idx = s.dropna().index if idx is None else idx.intersection(s.dropna().index)
    if idx is None or len(idx) == 0:
        return pd.DataFrame()
    dtr = X["days_to_renewal"].reindex(idx).to_numpy(float)
    ev = events.reindex(idx)
    y = churned_within(ev, label_days)
    window = np.ones(len(idx), bool) if renewal_from is None else (dtr >= renewal_from) & (dtr < renewal_to)
    ok = window & y.notna().to_numpy() & window_observed(ev, label_days)
    yy = y.to_numpy(dtype=float, na_value=np.nan)[ok]
    out = {}
    for name, s in scores.items():
        m = binary_metrics(yy, s.reindex(idx).to_numpy(float)[ok])
        out[name] = {k: m[k] for k in ("n", "base_rate", "roc_auc", "pr_auc", "top_decile_lift")}
    return pd.DataFrame(out).T


def high_tier(scores: pd.Series, threshold: float | None = None, high_share: float = 0.10) -> pd.Series:
    """Which scored rows are in the high tier: ``score >= threshold``, or (``threshold``
    None) the top ``high_share`` of each cutoff's scored accounts."""
    if threshold is not None:
        return scores >= threshold
    flags = pd.Series(False, index=scores.index)
    for _, g in scores.groupby(level="cutoff", sort=False):
        flags.loc[g.index] = top_share_mask(g.to_numpy(float), high_share)
    return flags


def lead_time(
    scores: pd.Series,
    events: pd.DataFrame,
    *,
    threshold: float | None = None,
    high_share: float = 0.10,
    lookback_days: int = 365,
) -> dict[str, float]:
    """How long before a churn the account first entered the high tier.

    ``scores``: a score per (account_id, cutoff) for every scored account of each cutoff
    (e.g. walk-forward backtest predictions); ``events`` from :func:`churn_events` over the
    whole data. For each churn (account, churn date ``e``) whose ``lookback_days`` before it
    were all scored (``e - lookback`` on or after the first scored cutoff and ``e`` at most
    a month after the last), the lead is ``e`` minus the first cutoff in
    ``[e - lookback, e]`` at which the account was high (:func:`high_tier`), 0 if it never
    was. Returns the number of churns, the median lead (never flagged = 0), the share
    flagged, the median lead of the flagged and the share flagged 90+ days ahead.
    """
    flag = high_tier(scores, threshold, high_share)
    ev = events.reindex(scores.index)
    c = ev["churn_days"].to_numpy(float)
    has = ~np.isnan(c) & (c <= lookback_days)
    cut = scores.index.get_level_values("cutoff")
    df = pd.DataFrame(
        {
            "account_id": scores.index.get_level_values("account_id")[has],
            "churn_date": (cut[has] + pd.to_timedelta(c[has], unit="D")),
            "lead": c[has],
            "flag": flag.to_numpy(bool)[has],
        }
    )
    first, last = cut.min(), cut.max()
    df = df[
        (df["churn_date"] - pd.Timedelta(days=lookback_days) >= first)
        & (df["churn_date"] <= last + pd.Timedelta(days=31))
    ]
    if df.empty:
        return {
            "churns": 0.0,
            "median_lead_days": np.nan,
            "share_flagged": np.nan,
            "median_lead_days_flagged": np.nan,
            "share_flagged_90d_ahead": np.nan,
        }
    df["flag_lead"] = np.where(df["flag"], df["lead"], np.nan)
    per = df.groupby(["account_id", "churn_date"])["flag_lead"].max()  # earliest flagged cutoff = largest lead
    flagged = per.notna()
    lead = per.fillna(0.0)
    return {
        "churns": float(len(per)),
        "median_lead_days": float(lead.median()),
        "share_flagged": float(flagged.mean()),
        "median_lead_days_flagged": float(per[flagged].median()) if flagged.any() else np.nan,
        "share_flagged_90d_ahead": float((lead >= 90).mean()),
    }


def tier_decisions(
    risk: pd.Series,
    label: pd.Series,
    arr: pd.Series,
    fold: pd.Series,
    cuts: dict[str, tuple[float | None, float]],
) -> pd.DataFrame:
    """What a CS team gets from each tier cut-off, on the walk-forward backtest: ``cuts`` maps a name to
    (probability level, or None for the top ``share`` of each cutoff; share). ``risk``, ``label`` (churned in
    the risk window, ``<NA>`` where it is not observed), ``arr`` and ``fold`` share one (account_id, cutoff)
    index. Per cut-off: the alerts per cutoff (every scored account counts) and their share of the accounts,
    the ARR they hold; on the rows whose label is known, precision (churn rate of the alerted), recall (share
    of churners alerted), lift, and the share of churned ARR the alerts cover; and the spread (standard
    deviation) of precision and recall over the folds."""
    cut = risk.index.get_level_values("cutoff")
    known = label.notna().to_numpy()
    y = label.to_numpy(dtype=float, na_value=np.nan)
    w = arr.to_numpy(float)
    f_of = fold.to_numpy(float)
    rows = []
    for name, (level, share) in cuts.items():
        flag = high_tier(risk, level, share).to_numpy(bool)
        per_cut = pd.DataFrame({"flag": flag, "arr": np.where(flag, w, 0.0)}).groupby(np.asarray(cut))
        yk, fk, wk = y[known], flag[known], w[known]
        churned_arr = float((wk * yk).sum())

        def pr(m: np.ndarray, flag=flag) -> tuple[float, float]:
            yy, ff = y[m & known], flag[m & known]
            prec = float(yy[ff].mean()) if ff.any() else np.nan
            rec = float(ff[yy == 1].mean()) if (yy == 1).any() else np.nan
            return prec, rec

        by_fold = [pr(f_of == k) for k in np.unique(f_of[~np.isnan(f_of)])]
        precision, recall = pr(np.ones(len(flag), bool))
        rate = float(yk.mean()) if len(yk) else np.nan

        def sd(v: list[float]) -> float:
            v = [x for x in v if x == x]
            return float(np.std(v, ddof=1)) if len(v) > 1 else np.nan

        rows.append(
            {
                "cut_off": name,
                "probability": level,
                "alerts_per_cutoff": float(per_cut["flag"].sum().mean()),
                "alert_share": float(flag.mean()),
                "arr_alerted_per_cutoff": float(per_cut["arr"].sum().mean()),
                "labelled_rows": int(known.sum()),
                "precision": precision,
                "precision_fold_sd": sd([a for a, _ in by_fold]),
                "recall": recall,
                "recall_fold_sd": sd([b for _, b in by_fold]),
                "lift": precision / rate if rate and rate == rate else np.nan,
                "churned_arr_covered": float((wk * yk * fk).sum() / churned_arr) if churned_arr > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


# --- the training report's early-warning figures -----------------------------------------------------


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


def evaluate(
    bt: BacktestResult,
    sv: SurvivalBacktest,
    events: pd.DataFrame,
    X: pd.DataFrame,
    *,
    horizon_days: int,
    tier_high: float | None,
    high_share: float = 0.10,
    tier_medium: float | None = None,
    medium_share: float = 0.20,
) -> dict:
    """Every early-warning figure of the training report (tables as DataFrames, lead times as dicts).

    ``tier_high``: the high tier's probability level on the risk probability (None: tiers by
    quantiles, then the top ``high_share`` per cutoff, today's rule); ``tier_medium`` (or
    ``medium_share``) the medium tier's. Today's 90-day model is judged with today's rule (its top
    ``high_share`` of each cutoff) and at the high tier's alert volume (the same share of accounts).
    """
    P = sv.predictions
    idx = P.index
    arr = 12.0 * X["mrr"].reindex(idx).to_numpy(float)
    curves = P[[f"churn_{d}d" for d in DAYS if f"churn_{d}d" in P]]
    table, per_horizon = horizon_metrics(curves, events, [d for d in DAYS if f"churn_{d}d" in P], arr)
    p = bt.predictions
    today = p[(p["target"] == "churn") & (p["model"] == LIGHTGBM)]
    today = pd.Series(
        today["p"].to_numpy(),
        index=pd.MultiIndex.from_arrays([today["account_id"], today["cutoff"]], names=["account_id", "cutoff"]),
    )
    scores = {
        f"90-day model (today, {horizon_days} days)": today.reindex(idx),
        "12 months": P["churn_365d"],
        "next renewal": P["next_renewal"],
        "risk (tier)": P["risk"],
    }
    ew = early_warning_table({k: v for k, v in scores.items() if v.notna().any()}, events, X.reindex(idx))
    year = early_warning_table(
        {k: v for k, v in scores.items() if k != "next renewal" and v.notna().any()},
        events,
        X.reindex(idx),
        renewal_from=None,
    )
    common = today.index.intersection(idx)  # the same folds' test cutoffs for both models
    risk = P["risk"].reindex(common)
    cuts = common.get_level_values("cutoff")
    span = (cuts.max() - cuts.min()).days if len(common) else 0
    lookback = int(min(365, max(60, span - 31)))
    # the high tier's alert volume: its share of the accounts scored (so today's rule can flag as many)
    volume = float(high_tier(risk, tier_high, high_share).mean()) if len(risk) else high_share
    volume = min(max(volume, 1e-6), 1.0)
    top = f"top {high_share:.0%}"
    rules = {
        f"today (90-day model, {top})": (today.reindex(common), None, high_share),
        HIGH_TIER_RULE: (risk, tier_high, high_share),
        f"today (90-day model, top {volume:.0%}: the high tier's volume)": (today.reindex(common), None, volume),
        f"time to churn ({top} of risk)": (risk, None, high_share),
    }
    lead: dict = {"lookback_days": lookback, "cutoffs": int(cuts.nunique()), "high_tier_share": volume}
    for name, (sc, level, share) in rules.items():
        lead[name] = {
            **lead_time(sc, events, threshold=level, high_share=share, lookback_days=lookback),
            "alert_share": float(high_tier(sc, level, share).mean()) if len(sc) else np.nan,
        }
    # the tier cut-offs as decisions, on every account scored at the folds' test cutoffs
    fold_of_cutoff = p.groupby("cutoff")["fold"].first()
    fold_of_row = pd.Series(
        fold_of_cutoff.reindex(idx.get_level_values("cutoff")).to_numpy(float), index=idx, name="fold"
    )
    tested = fold_of_row.notna().to_numpy()
    ti = idx[tested]
    decisions = tier_decisions(
        P["risk"][tested],
        risk_label(events.reindex(ti), X.reindex(ti)),
        pd.Series(arr[tested], index=ti),
        fold_of_row[tested],
        {"high": (tier_high, high_share), "medium or high": (tier_medium, high_share + medium_share)},
    )
    # the probability that sets the tier, against what it predicts (its window observed)
    y = risk_label(events.reindex(idx), X.reindex(idx))
    ok = y.notna().to_numpy()
    yy = y.to_numpy(dtype=float, na_value=np.nan)[ok]
    pr = P["risk"].to_numpy(float)[ok]
    risk = {**binary_metrics(yy, pr), "mean_predicted": float(pr.mean()) if len(pr) else np.nan}
    reliability: dict[int | str, pd.DataFrame] = dict(per_horizon.items())  # by horizon (days), then the risk
    reliability["risk"] = reliability_table(yy, pr) if len(yy) else pd.DataFrame()
    # survival figures per fold, on every account scored at the fold's test cutoffs
    surv_cols = [c for c in P.columns if c.startswith("churn_") and c.endswith("d")]
    survival = survival_table(P[surv_cols], events, fold_of_row)
    return {
        "survival": survival,
        "decisions": decisions,
        "horizons": table.reset_index(),
        "reliability": reliability,
        "risk": risk,
        "early_warning": ew.rename_axis("score").reset_index(),
        "within_year": year.rename_axis("score").reset_index(),
        "lead_time": lead,
    }
