"""The training report's content: tables, figures and the figures of its page, as objects (no files).

Evaluation (reliability, lift, metrics, early warning, lead time) is of the walk-forward
backtest and its holdout models; the SHAP summary and drivers by family are of the final
model, the one that scores. Every figure the page states is also in ``report.json`` (the
same numbers as ``run.json``, the MLflow run and the registry), so a test can check them.
The flow renders the page (:func:`churnml.pages.training.render_training_report`) and hands
everything to the I/O layer, which writes ``<name>.csv`` / ``.png`` / ``.json`` / ``.html``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnml.modeling import plots
from churnml.modeling.backtest import LIGHTGBM, TIME_TO_CHURN, fold_table
from churnml.modeling.early_warning import HIGH_TIER_RULE
from churnml.modeling.metrics import lift_table


@dataclass
class RiskDrivers:
    """What moves a model's risk probability over a population of accounts (the training report's SHAP
    summary and drivers by family): ``points`` per reason indicator (probability points), their ``values``
    as the model reads them, the indicators' ``labels``, and ``families``: mean points per component for
    "all accounts" and "high-risk accounts"."""

    points: pd.DataFrame
    values: pd.DataFrame
    labels: list[str]
    families: pd.DataFrame


TOP_QUANTILES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0)
MODEL_WORDS = {
    TIME_TO_CHURN: "time to churn (churnml)",
    LIGHTGBM: "90-day classifier (churnml before)",
    "logistic_regression": "logistic regression",
    "health_score": "hand-weighted health score",
}


def reliability_top(y, p, quantiles=TOP_QUANTILES) -> pd.DataFrame:
    """Calibration table on probability quantiles that reach the top risk range: bins at the given
    quantiles of ``p`` (the last ones narrow: the 90-95th, 95-98th, 98-100th percentiles)."""
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    ok = ~np.isnan(p) & ~np.isnan(y)
    y, p = y[ok], p[ok]
    if not len(p):
        return pd.DataFrame(
            columns=["bin", "from_quantile", "to_quantile", "n", "mean_predicted", "observed_rate", "p_min", "p_max"]
        )
    order = np.argsort(p, kind="stable")
    rank = np.empty(len(p))
    rank[order] = (np.arange(len(p)) + 0.5) / len(p)
    b = np.clip(np.searchsorted(np.asarray(quantiles[1:-1]), rank, side="right"), 0, len(quantiles) - 2)
    rows = []
    for i in range(len(quantiles) - 1):
        m = b == i
        if m.any():
            rows.append(
                {
                    "bin": i,
                    "from_quantile": quantiles[i],
                    "to_quantile": quantiles[i + 1],
                    "n": int(m.sum()),
                    "mean_predicted": float(p[m].mean()),
                    "observed_rate": float(y[m].mean()),
                    "p_min": float(p[m].min()),
                    "p_max": float(p[m].max()),
                }
            )
    return pd.DataFrame(rows)


def _round(df: pd.DataFrame, digits: int = 5) -> pd.DataFrame:
    num = df.select_dtypes("number").columns
    return df.assign(**{c: df[c].round(digits) for c in num})


def base_rates(td, folds) -> pd.DataFrame:
    """Labelled rows and event rates per fold's test cutoffs, and per segment over all labelled rows."""
    D = td.D
    cut = D.index.get_level_values("cutoff")
    rows = []
    for f in folds:
        part = D[cut.isin(list(f.test))]
        rows.append(
            {
                "group": f"fold {f.index} test ({f.test[0]:%Y-%m-%d}..{f.test[-1]:%Y-%m-%d})",
                "rows": len(part),
                **{f"{t}_rate": float(part[c].astype(float).mean()) for t, c in td.label_cols.items()},
            }
        )
    seg = D["segment"].astype("object").fillna("(none)") if "segment" in D else pd.Series("(none)", index=D.index)
    for s, part in D.groupby(seg.to_numpy(), sort=True):
        rows.append(
            {
                "group": f"segment {s}",
                "rows": len(part),
                **{f"{t}_rate": float(part[c].astype(float).mean()) for t, c in td.label_cols.items()},
            }
        )
    rows.append(
        {
            "group": "all labelled rows",
            "rows": len(D),
            **{f"{t}_rate": float(D[c].astype(float).mean()) for t, c in td.label_cols.items()},
        }
    )
    return pd.DataFrame(rows)


def report_files(
    fitted, params_source: str, metrics: dict, *, context: dict | None = None, drivers: RiskDrivers | None = None
) -> dict[str, object]:
    """``{file name: DataFrame | Figure | dict | str}`` of the training report (tables, figures and the
    ``report.json`` the page is rendered from) for a :class:`~churnml.modeling.recipe.Fitted` recipe;
    ``drivers``: what moves the final model's risk on the holdout rows (made by the scoring layer,
    :func:`churnml.scoring.overview.risk_drivers`)."""
    bt, td, model, holdout_model, folds = (fitted.backtest, fitted.td, fitted.model, fitted.holdout_model, fitted.folds)
    warning, params = fitted.warning, fitted.spec.lgb()
    context = dict(context or {})
    files: dict[str, object] = {
        "backtest_metrics.csv": _round(bt.metrics().reset_index()),
        "features.csv": pd.DataFrame([i.as_dict() for i in td.definitions]),
        "folds.json": [
            {
                "fold": f.index,
                "fit": [str(t.date()) for t in f.fit],
                "calibrate": [str(t.date()) for t in f.calibrate],
                "test": [str(t.date()) for t in f.test],
            }
            for f in folds
        ],
        "params.json": {"source": params_source, "params": params},
        "base_rates.csv": _round(base_rates(td, folds)),
    }
    preds = bt.predictions
    figures: dict[str, str] = {}
    for target in td.label_cols:
        files[f"fold_metrics_{target}.csv"] = _round(fold_table(bt, target))
        files[f"segment_metrics_{target}.csv"] = _round(bt.by_segment(target))
        g = preds[(preds["target"] == target) & (preds["fold"] == 0)]
        main = TIME_TO_CHURN if target == "churn" and (g["model"] == TIME_TO_CHURN).any() else LIGHTGBM
        m = g[g["model"] == main]
        rel = {"calibrated": reliability_top(m["y"], m["p"])}
        if main == LIGHTGBM:
            rel["uncalibrated"] = reliability_top(m["y"], m["p_raw"])
        files[f"reliability_{target}.csv"] = _round(_long(rel, "version"))
        files[f"calibration_{target}.png"] = plots.calibration_plot(
            rel, f"{target}: holdout reliability, {MODEL_WORDS[main]}"
        )
        figures[f"calibration_{target}.png"] = f"{target}: does the predicted probability match what happened?"
        lifts = {MODEL_WORDS.get(name, name): lift_table(h["y"], h["p"], h["arr"]) for name, h in g.groupby("model")}
        files[f"lift_{target}.csv"] = _round(_long(lifts, "model"))
        files[f"lift_{target}.png"] = plots.lift_plot(lifts, target)
        figures[f"lift_{target}.png"] = f"{target}: how many events the riskiest accounts hold, by model"
    if warning:
        files["time_to_churn_horizons.csv"] = _round(warning["horizons"])
        if len(warning.get("survival", ())):
            files["survival_metrics.csv"] = _round(warning["survival"])
        files["early_warning.csv"] = _round(warning["early_warning"])
        if "within_year" in warning:
            files["within_year.csv"] = _round(warning["within_year"])
        lead = {k: v for k, v in warning["lead_time"].items() if isinstance(v, dict)}
        files["lead_time.csv"] = _round(pd.DataFrame(lead).T.rename_axis("rule").reset_index())
        rel = {
            (f"{int(d)} days" if not isinstance(d, str) else "risk (sets the tier)"): t
            for d, t in warning["reliability"].items()
            if len(t)
        }
        if rel:
            files["reliability_time_to_churn.csv"] = _round(_long(rel, "probability"))
        if rel:
            files["calibration_time_to_churn.png"] = plots.calibration_plot(
                rel, "time to churn: reliability per horizon (backtest)"
            )
            figures["calibration_time_to_churn.png"] = "the churn curve: predicted vs observed, each horizon"
        if lead:
            files["lead_time.png"] = plots.lead_time_plot(lead)
            figures["lead_time.png"] = "how long before a churn the account was first high risk"
    # the final model, explained on the holdout rows: what drives the risk probability
    if drivers is not None:
        files["shap_summary_churn.png"] = plots.beeswarm(
            drivers.points, drivers.values, drivers.labels, "what moves the risk probability (points), final model"
        )
        figures["shap_summary_churn.png"] = "each dot an account: its points on a reason, coloured by the value"
        fam = drivers.families
        files["drivers_by_family.csv"] = _round(fam.rename_axis("component").reset_index())
        files["drivers_by_family.png"] = plots.family_bars(
            fam["high-risk accounts"].fillna(0.0) * 100, "mean points per component, high-risk holdout accounts"
        )
        figures["drivers_by_family.png"] = "which families of reasons carry the risk (timing kept apart)"
    for target, tm in model.targets.items():
        booster = tm.booster
        gain = pd.Series(booster.feature_importance("gain"), index=model.features)  # by position
        files[f"importance_{target}.png"] = plots.bar_plot(
            gain, f"{target}: feature importance (gain), final model", "total gain"
        )
        figures[f"importance_{target}.png"] = f"{target}: which indicators the classifier splits on most"
    report = report_json(bt, td, folds, metrics, holdout_model, model, warning, context, params_source)
    main = TIME_TO_CHURN if (preds["model"] == TIME_TO_CHURN).any() else LIGHTGBM
    fold_tables = {t: fold_table(bt, t) for t in td.label_cols}
    comparisons = paired_comparisons(preds, "churn", main, horizon_days=td.horizon_days, seed=fitted.spec.seed)
    files["comparisons_churn.csv"] = _round(comparisons)
    report["comparisons"] = _records(comparisons)
    seg = bt.by_segment("churn")
    files_seg = seg[seg["model"].isin([main, LIGHTGBM])]
    report["segments"] = _records(files_seg)
    if warning and len(warning.get("decisions", ())):
        dec = warning["decisions"].copy()
        csms = context.get("csms")
        dec["alerts_per_csm"] = dec["alerts_per_cutoff"] / csms if csms else np.nan
        files["decisions.csv"] = _round(dec)
        report["decisions"] = _records(dec)
        report["csms"] = csms
    report["headline"] = headline_metrics(
        metrics, fold_tables.get("churn", pd.DataFrame()), warning, main=main, horizon_days=td.horizon_days
    )
    report["headline"].update(decision_headline(comparisons, report.get("decisions", []), td.horizon_days))
    report["fold_metrics"] = {
        str(k): v for k, v in fold_run_metrics(fold_tables, warning, main=main, horizon_days=td.horizon_days).items()
    }
    files["report.json"] = report
    for name in [k for k in files if k.endswith(".png")]:  # drawn once: the file and the page's image
        files[name] = plots.png(files[name])  # type: ignore[arg-type]
    files["_figures"] = figures
    return files


# --- the headline figures: the few MLflow shows in its runs table, by family ---------------------------
HEADLINE_STATS = ("pr_auc", "roc_auc", "top_decile_lift", "brier")
FOLD_STATS = ("pr_auc", "roc_auc")  # what each fold's child run shows, under the parent's backtest/ names


def model_key(model: str, horizon_days: int) -> str:
    """How a model is named in a headline figure: the main one (time to churn, else the classifier) bare,
    the others as a suffix (``_90d_classifier``, ``_logistic``, ``_health_score``)."""
    return {
        LIGHTGBM: f"{horizon_days}d_classifier",
        "logistic_regression": "logistic",
        "health_score": "health_score",
    }.get(model, model)


def headline_metrics(
    metrics: dict, folds_churn: pd.DataFrame, warning: dict | None, *, main: str, horizon_days: int
) -> dict[str, float]:
    """The headline figures (slash-separated families, the names MLflow's runs table shows), each taken
    from ``metrics`` (the flat figures of :func:`churnml.modeling.backtest.collect_metrics` and
    :func:`churnml.modeling.early_warning.warning_metrics`) or from the churn fold table (the spread of the
    main model's PR-AUC over the folds): ``holdout/`` is fold 0 (what the promotion gate compares),
    ``backtest/`` all folds pooled, ``time_to_churn/`` the curve's 12-month figures, ``lead_time/`` the
    high tier's. NaN figures are left out."""
    out: dict[str, float] = {}

    def put(name: str, key: str) -> None:
        v = metrics.get(key)
        if v is not None and v == v:
            out[name] = float(v)

    for stat in HEADLINE_STATS:
        put(f"holdout/churn_{stat}", f"holdout_churn_{main}_{stat}")
    for other in (LIGHTGBM, "logistic_regression", "health_score"):
        if other != main:
            put(f"holdout/churn_pr_auc_{model_key(other, horizon_days)}", f"holdout_churn_{other}_pr_auc")
    put("holdout/expansion_pr_auc", f"holdout_expansion_{LIGHTGBM}_pr_auc")
    put("backtest/churn_pr_auc", f"backtest_churn_{main}_pr_auc")
    put("backtest/churn_roc_auc", f"backtest_churn_{main}_roc_auc")
    if main != LIGHTGBM:
        put(f"backtest/churn_pr_auc_{model_key(LIGHTGBM, horizon_days)}", f"backtest_churn_{LIGHTGBM}_pr_auc")
    put("backtest/expansion_pr_auc", f"backtest_expansion_{LIGHTGBM}_pr_auc")
    m = folds_churn[folds_churn["model"] == main]["pr_auc"].dropna() if len(folds_churn) else pd.Series(dtype=float)
    if len(m) > 1:
        out["backtest/churn_pr_auc_fold_sd"] = float(m.std(ddof=1))
    put("time_to_churn/pr_auc_365d", "backtest_time_to_churn_365d_pr_auc")
    out.update(survival_headline(warning, "all folds"))
    sv = (warning or {}).get("survival")
    if isinstance(sv, pd.DataFrame) and "fold" in sv and (sv["fold"] == "fold sd").any():
        sd = sv.loc[sv["fold"] == "fold sd", "uno_c"].item()
        if sd == sd:
            out["survival/uno_c_fold_sd"] = float(sd)
    lead = (warning or {}).get("lead_time", {}).get(HIGH_TIER_RULE)
    if isinstance(lead, dict):
        for name, key in (("share_flagged", "share_flagged"), ("median_lead_days", "median_lead_days_flagged")):
            if lead.get(key) == lead.get(key) and lead.get(key) is not None:
                out[f"lead_time/high_tier_{name}"] = float(lead[key])
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        for r in _round(df).to_dict(orient="records")
    ]


def decision_headline(comparisons: pd.DataFrame, decisions: list[dict], horizon_days: int) -> dict[str, float]:
    """The headline comparison (the main model against the classifier on the same target and rows, with its
    bootstrap interval) and the high tier's precision, recall and alert share, from the report's tables."""
    out: dict[str, float] = {}
    key = model_key(LIGHTGBM, horizon_days)
    if len(comparisons):
        c = comparisons[comparisons["versus"] == LIGHTGBM]
        if len(c):
            r = c.iloc[0]
            for suffix in ("", "_low", "_high"):
                v = r[f"pr_auc_difference{suffix}"]
                if v == v:
                    out[f"holdout/churn_pr_auc_gain_vs_{key}{suffix}"] = float(v)
    for d in decisions:
        if d["cut_off"] == "high":
            for k in ("precision", "recall", "alert_share", "churned_arr_covered"):
                if d.get(k) is not None:
                    out[f"decision/high_tier_{k}"] = float(d[k])
    return out


SURVIVAL_STATS = ("uno_c", "auc_90d", "auc_180d", "auc_365d", "ibs", "ibs_skill")


def survival_headline(warning: dict | None, fold: str) -> dict[str, float]:
    """The survival figures of one row of the survival table (a fold's number, or ``all folds``) under
    the ``survival/`` family; NaN left out."""
    sv = (warning or {}).get("survival")
    if not isinstance(sv, pd.DataFrame) or sv.empty or "fold" not in sv or not (sv["fold"] == fold).any():
        return {}
    row = sv[sv["fold"] == fold].iloc[0]
    return {f"survival/{k}": float(row[k]) for k in SURVIVAL_STATS if k in row and row[k] == row[k]}


def fold_run_metrics(
    fold_tables: dict[str, pd.DataFrame], warning: dict | None = None, *, main: str, horizon_days: int
) -> dict[int, dict]:
    """Each backtest fold's figures as its MLflow child run logs them: the fold tables' (the same numbers as
    ``fold_metrics_<target>.csv``) under the headline's ``backtest/`` names, and the fold's row of the
    survival table under ``survival/``."""
    out: dict[int, dict] = {}
    for target, t in fold_tables.items():
        main_t = main if target == "churn" else LIGHTGBM
        for r in t.itertuples(index=False):
            d = out.setdefault(int(r.fold), {})
            if r.model == main_t:
                for stat in FOLD_STATS if target == "churn" else ("pr_auc",):
                    d[f"backtest/{target}_{stat}"] = getattr(r, stat)
            elif target == "churn" and r.model == LIGHTGBM:
                d[f"backtest/churn_pr_auc_{model_key(str(r.model), horizon_days)}"] = r.pr_auc
    for k, d in out.items():
        d.update(survival_headline(warning, str(k)))
    return {k: {n: float(v) for n, v in d.items() if v == v} for k, d in out.items()}


def report_figures(files: dict) -> dict[str, str]:
    """The figure captions of a :func:`report_files` result (and drop them from the files)."""
    return files.pop("_figures", {})


def report_json(bt, td, folds, metrics: dict, holdout_model, model, warning, context: dict, params_source) -> dict:
    """Every figure the report page states, in one JSON-able dict."""

    def table(df: pd.DataFrame) -> list[dict]:
        return [
            {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
            for r in _round(df).to_dict(orient="records")
        ]

    pooled = bt.metrics().reset_index()
    hold = bt.__class__(bt.predictions[bt.predictions["fold"] == 0]).metrics().reset_index()
    cut = td.D.index.get_level_values("cutoff")
    out = {
        **{k: v for k, v in context.items() if k not in ("champion",)},
        "champion": context.get("champion"),
        "version": context.get("version"),
        "horizon_days": td.horizon_days,
        "uplift": td.uplift,
        "params_source": params_source,
        "cutoffs": {
            "count": len(td.cutoffs),
            "first": f"{min(td.cutoffs):%Y-%m-%d}",
            "last": f"{max(td.cutoffs):%Y-%m-%d}",
            "labelled": int(cut.nunique()),
        },
        "rows": {"account_cutoffs": len(td.X), "labelled": len(td.D)},
        "targets": list(td.label_cols),
        "folds": [
            {
                "fold": f.index,
                "fit": f"{f.fit[0]:%Y-%m-%d}..{f.fit[-1]:%Y-%m-%d}",
                "calibrate": f"{f.calibrate[0]:%Y-%m-%d}..{f.calibrate[-1]:%Y-%m-%d}",
                "test": f"{f.test[0]:%Y-%m-%d}..{f.test[-1]:%Y-%m-%d}",
            }
            for f in folds
        ],
        "base_rates": table(base_rates(td, folds)),
        "backtest": table(pooled),
        "holdout": table(hold),
        "calibration": {
            t: {
                "holdout_model": holdout_model.targets[t].calibrator.method
                if t in holdout_model.targets
                else "hazard (Platt by month + frailty)",
                "final_model": model.targets[t].calibrator.method
                if t in model.targets
                else "hazard (Platt by month + frailty)",
            }
            for t in td.label_cols
        },
    }
    if warning:
        out["time_to_churn"] = table(warning["horizons"])
        out["survival"] = table(warning.get("survival", pd.DataFrame()))
        out["early_warning"] = table(warning["early_warning"])
        out["within_year"] = table(warning.get("within_year", pd.DataFrame()))
        out["risk"] = {k: (None if v != v else round(float(v), 5)) for k, v in warning.get("risk", {}).items()}
        out["lead_time"] = dict(warning["lead_time"].items())
    return out


def _long(tables: dict[str, pd.DataFrame], key: str) -> pd.DataFrame:
    """Stack ``{name: table}`` into one table with a ``key`` column first."""
    parts = [t.assign(**{key: name})[[key, *t.columns]] for name, t in tables.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def paired_comparisons(
    preds: pd.DataFrame, target: str, main: str, *, n_boot: int = 300, seed: int = 0, horizon_days: int = 90
) -> pd.DataFrame:
    """The headline comparisons, on the same target and the same rows: ``main``'s PR-AUC and ROC-AUC against
    each other model of ``target``'s holdout (fold 0) predictions, with a 95% interval of the difference from
    a paired bootstrap that resamples accounts (an account's cutoffs stay together), and the difference in
    each fold with its mean and standard deviation over the folds (the spread over time)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    g = preds[preds["target"] == target]
    wide = g.pivot_table(index=["fold", "account_id", "cutoff"], columns="model", values="p", aggfunc="first")
    y = g.groupby(["fold", "account_id", "cutoff"])["y"].first().reindex(wide.index)
    if main not in wide:
        return pd.DataFrame()
    rng = np.random.default_rng(seed)
    rows = []
    for other in [m for m in wide.columns if m != main]:
        both = wide[[main, other]].notna().all(axis=1).to_numpy()
        W, Y = wide[both], y[both].to_numpy(int)
        folds = W.index.get_level_values("fold").to_numpy()
        per_fold = {}
        for k in np.unique(folds):
            m = folds == k
            if len(np.unique(Y[m])) == 2:
                per_fold[int(k)] = average_precision_score(Y[m], W[main].to_numpy()[m]) - average_precision_score(
                    Y[m], W[other].to_numpy()[m]
                )
        h = folds == 0
        yh, a, b = Y[h], W[main].to_numpy()[h], W[other].to_numpy()[h]
        if len(np.unique(yh)) < 2:
            continue
        acc = W.index.get_level_values("account_id").to_numpy()[h]
        codes, uniq = pd.factorize(acc)
        members = [np.flatnonzero(codes == i) for i in range(len(uniq))]
        diffs: dict[str, list[float]] = {"pr_auc": [], "roc_auc": []}
        for _ in range(n_boot):
            pick = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
            if len(np.unique(yh[pick])) < 2:
                continue
            yp, ap, bp = yh[pick], a[pick], b[pick]
            diffs["pr_auc"].append(average_precision_score(yp, ap) - average_precision_score(yp, bp))
            diffs["roc_auc"].append(roc_auc_score(yp, ap) - roc_auc_score(yp, bp))
        pf = np.asarray(list(per_fold.values()), float)
        rows.append(
            {
                "target": target,
                "model": main,
                "versus": other,
                "versus_words": model_key(other, horizon_days),
                "rows": int(h.sum()),
                "pr_auc": float(average_precision_score(yh, a)),
                "pr_auc_versus": float(average_precision_score(yh, b)),
                "pr_auc_difference": float(average_precision_score(yh, a) - average_precision_score(yh, b)),
                "pr_auc_difference_low": float(np.quantile(diffs["pr_auc"], 0.025)) if diffs["pr_auc"] else np.nan,
                "pr_auc_difference_high": float(np.quantile(diffs["pr_auc"], 0.975)) if diffs["pr_auc"] else np.nan,
                "roc_auc_difference": float(roc_auc_score(yh, a) - roc_auc_score(yh, b)),
                "roc_auc_difference_low": float(np.quantile(diffs["roc_auc"], 0.025)) if diffs["roc_auc"] else np.nan,
                "roc_auc_difference_high": float(np.quantile(diffs["roc_auc"], 0.975)) if diffs["roc_auc"] else np.nan,
                "folds": len(pf),
                "pr_auc_difference_fold_mean": float(pf.mean()) if len(pf) else np.nan,
                "pr_auc_difference_fold_sd": float(pf.std(ddof=1)) if len(pf) > 1 else np.nan,
                "folds_main_ahead": int((pf > 0).sum()),
            }
        )
    return pd.DataFrame(rows)
