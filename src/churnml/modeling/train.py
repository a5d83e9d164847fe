"""The training pipeline: features and labels -> backtest -> final model -> MLflow.

``run_training`` builds the point-in-time features and labels for every cutoff and
backtests LightGBM beside the two baselines on time-ordered folds. Fold 0 is the
holdout: its model (the *holdout model*) was trained and calibrated only on data
before the holdout cutoffs, and judges the recipe.

The model that is registered and scores (the *final model*) is the same recipe refit
on the newest labels: fit on every labelled cutoff up to the calibration slice, which
is the newest ``calibration_cutoffs`` labelled cutoffs (early stopping and calibration).
It stands to today as each backtest model stood to its test cutoffs, so the backtest
estimates how it will do; the holdout model would be half a year staler.

The final model is registered with the alias ``challenger`` and becomes ``champion``
only when the recipe beats the champion's on the same holdout cutoffs: the two
holdout models (neither trained on those cutoffs) are compared, higher PR-AUC *and*
no worse Brier for churn. The holdout model is kept with each run (``holdout_model/``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from churnml.cutoffs import parse_cutoffs
from churnml.errors import ChurnmlError
from churnml.features import build_features, indicators_for
from churnml.features._frames import to_day_frames
from churnml.labels import label_names, make_labels
from churnml.modeling import plots
from churnml.modeling.backtest import (LIGHTGBM, BacktestResult, fit_recipe, fold_table, run_backtest,
                                      uncalibrated_metrics)
from churnml.modeling.folds import Fold, plan_folds, split_past
from churnml.modeling.metrics import binary_metrics, lift_table, reliability_table
from churnml.modeling.model import ChurnmlModel, lgb_params

CATEGORICAL = ("segment", "plan", "industry", "region")
_RUNTIME_PACKAGES = ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn", "pyarrow", "duckdb", "tqdm", "click",
                     "pyyaml", "pydantic")


@dataclass
class TrainingData:
    """Features joined to labels for every eligible, labelled (account, cutoff)."""

    X: pd.DataFrame  # all cutoffs, labelled or not
    D: pd.DataFrame  # features + labels, eligible labelled rows
    features: list[str]
    categorical: list[str]
    label_cols: dict[str, str]
    definitions: list
    horizon_days: int
    uplift: float


@dataclass
class TrainResult:
    run_id: str
    version: str
    promoted: bool
    reason: str
    holdout: dict
    backtest: pd.DataFrame
    folds: list[Fold]
    output_dir: Path
    summary: str = ""
    extra: dict = field(default_factory=dict)


def training_data(ds, *, cutoffs: str, horizon_days: int, uplift: float, progress: bool = False) -> TrainingData:
    """Build features and labels for all cutoffs of the spec and join them."""
    cuts = parse_cutoffs(cutoffs, ds)
    X = build_features(ds, cuts, progress=progress)
    Y = make_labels(ds, cuts, horizon_days=horizon_days, uplift=uplift)
    churn_col, exp_col = label_names(horizon_days)
    D = X.join(Y.loc[Y["eligible"], [churn_col, exp_col]], how="inner")
    if D.empty:
        raise ChurnmlError(f"no labelled rows: the data must extend at least {horizon_days} days past a cutoff")
    _, ctx = to_day_frames(ds)
    defs = indicators_for(ctx)
    categorical = [c for c in CATEGORICAL if c in X.columns]
    return TrainingData(X, D, list(X.columns), categorical, {"churn": churn_col, "expansion": exp_col}, defs,
                        horizon_days, uplift)


def resolve_params(train_cfg) -> tuple[dict, str]:
    """LightGBM parameters: tuned ones (if enabled and present), then config overrides."""
    params, source = {}, "defaults"
    f = Path(train_cfg.tuned_params_file)
    if train_cfg.use_tuned_params and f.is_file():
        params.update(json.loads(f.read_text())["params"])
        source = f"tuned ({f})"
    if train_cfg.params:
        params.update(train_cfg.params)
        source += " + config overrides"
    return params, source


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


def data_fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    """A content hash of the loaded tables (order-independent within a table's sort)."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(tables):
        df = tables[name]
        if df is None:
            h.update(f"{name}:absent".encode())
            continue
        h.update(f"{name}:{len(df)}:{','.join(map(str, df.columns))}".encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def run_training(cfg, *, progress: bool = False, echo=print) -> TrainResult:
    """The whole pipeline for a validated :class:`~churnml.config.Config`."""
    from churnml.io import atomic_dir, load_dataset
    from churnml.modeling import tracking

    t0 = time.perf_counter()
    tcfg = cfg.train
    ds = load_dataset(cfg.data_dir)
    td = training_data(ds, cutoffs=tcfg.cutoffs, horizon_days=cfg.labels.horizon_days, uplift=cfg.labels.uplift,
                       progress=progress)
    labelled = td.D.index.get_level_values("cutoff").unique()
    folds, shrunk = plan_folds(labelled, horizon_days=td.horizon_days, n_folds=tcfg.folds,
                               test_cutoffs=tcfg.test_cutoffs, calibration_cutoffs=tcfg.calibration_cutoffs)
    if shrunk:
        echo(shrunk)
    for f in folds:
        echo(f.describe())
    params, params_source = resolve_params(tcfg)
    settings = {"horizon_days": td.horizon_days, "uplift": td.uplift, "label_columns": td.label_cols,
                "train_cutoffs": [f"{t:%Y-%m-%d}" for t in folds[0].fit],
                "calibration_cutoffs": [f"{t:%Y-%m-%d}" for t in folds[0].calibrate],
                "holdout_cutoffs": [f"{t:%Y-%m-%d}" for t in folds[0].test]}
    bt = run_backtest(td.D, features=td.features, categorical=td.categorical, folds=folds,
                      label_cols=td.label_cols, params=params, seed=tcfg.seed, calibration=tcfg.calibration,
                      threads=tcfg.threads, progress=progress, settings=settings)
    holdout_model = bt.models[0]
    hold = td.D[td.D.index.get_level_values("cutoff").isin(list(folds[0].test))]
    model, fit_rows, cal_rows = fit_final_model(td, params, tcfg, calibration_cutoffs=len(folds[0].calibrate))
    echo(f"final model: fit {_span(fit_rows)}, calibrate {_span(cal_rows)} (the newest labels)")
    model.settings.update(settings, train_cutoffs=_dates(fit_rows), calibration_cutoffs=_dates(cal_rows))
    model.settings["reference"] = reference_profile(cal_rows, td.features, td.categorical)
    model.settings["risk_tiers"] = risk_tier_thresholds(model.predict_target(cal_rows[td.features], "churn"))
    metrics, holdout = collect_metrics(bt)
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.artifact_root)
    champion = _champion_holdout_metrics(cfg.mlflow.model_name, hold, td.label_cols["churn"])
    promote, reason = promotion_decision(holdout["churn"][LIGHTGBM], champion)

    out_dir = Path(cfg.output_dir) / "train"
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp)
        write_report(art, bt, td, model, holdout_model, folds, hold, params, params_source, metrics)
        (art / "config.json").write_text(cfg.model_dump_json(indent=1))
        holdout_model.save(art / "holdout_model")
        params_log = {**{f"lgb_{k}": v for k, v in lgb_params(params, tcfg.seed, tcfg.threads).items()},
                      "params_source": params_source, "horizon_days": td.horizon_days, "uplift": td.uplift,
                      "folds": len(folds), "test_cutoffs": len(folds[0].test),
                      "calibration_cutoffs": len(folds[0].calibrate), "calibration": tcfg.calibration,
                      "seed": tcfg.seed, "n_features": len(td.features), "data_dir": str(cfg.data_dir),
                      "holdout_cutoffs": settings["holdout_cutoffs"],
                      "final_train_cutoffs": f"{model.settings['train_cutoffs'][0]}..{model.settings['train_cutoffs'][-1]}",
                      "final_calibration_cutoffs": ",".join(model.settings["calibration_cutoffs"]),
                      **{f"best_iteration_{t}": m.best_iteration for t, m in model.targets.items()},
                      **{f"holdout_best_iteration_{t}": m.best_iteration for t, m in holdout_model.targets.items()},
                      **{f"calibration_chosen_{t}": m.calibrator.method for t, m in model.targets.items()}}
        tags = {"data_fingerprint": data_fingerprint(vars(ds) if not hasattr(ds, "__dataclass_fields__")
                                                     else {k: getattr(ds, k) for k in
                                                           ("accounts", "subscriptions", "usage", "tickets",
                                                            "surveys", "milestones")}),
                "data_rows": int(sum(len(getattr(ds, k)) for k in ("accounts", "subscriptions", "usage", "tickets",
                                                                    "surveys", "milestones")
                                     if getattr(ds, k, None) is not None)),
                "labelled_rows": len(td.D), "churnml_version": _version("churnml")}
        example = as_model_input(hold[td.features].head(5), td.categorical)
        run_id, model_uri = tracking.log_training_run(
            run_name=f"train-{pd.Timestamp.now():%Y%m%d-%H%M%S}", params=params_log, tags=tags, metrics=metrics,
            artifacts_dir=art, model=model, input_example=example, pip_requirements=_pip_requirements(),
            code_path=Path(__file__).resolve().parents[1])
        version = tracking.register(model_uri, cfg.mlflow.model_name,
                                    description=f"churn + expansion, trained on {model.settings['train_cutoffs'][0]}.."
                                                f"{model.settings['train_cutoffs'][-1]}, calibrated on "
                                                f"{model.settings['calibration_cutoffs'][0]}.."
                                                f"{model.settings['calibration_cutoffs'][-1]}")
        if promote:
            tracking.set_alias(cfg.mlflow.model_name, tracking.CHAMPION, version)
        tracking.log_to_run(run_id, tags={"promotion": "champion" if promote else "challenger",
                                          "promotion_reason": reason, "registered_version": version},
                            text={"promotion.txt": reason + "\n"})
        tracking.tag_version(cfg.mlflow.model_name, version, {"promotion_reason": reason, "run_id": run_id})
        (art / "promotion.txt").write_text(reason + "\n")
        (art / "run.json").write_text(json.dumps({"run_id": run_id, "model": cfg.mlflow.model_name,
                                                  "version": version, "promoted": promote}, indent=1))
        with atomic_dir(out_dir) as tmp_out:
            shutil.copytree(art, tmp_out, dirs_exist_ok=True)
    h = holdout["churn"]
    l, b, e = h[LIGHTGBM], h.get("logistic_regression", {}), holdout["expansion"][LIGHTGBM]
    summary = (f"{cfg.mlflow.model_name} v{version}: holdout churn PR-AUC {l['pr_auc']:.3f} "
               f"(logistic {b.get('pr_auc', float('nan')):.3f}, health score {h.get('health_score', {}).get('pr_auc', float('nan')):.3f}), "
               f"top-decile lift {l['top_decile_lift']:.1f}x, Brier {l['brier']:.4f}; expansion PR-AUC {e['pr_auc']:.3f}; "
               f"{'promoted to champion' if promote else 'stays challenger'} ({reason}); "
               f"{time.perf_counter() - t0:.0f}s, run {run_id[:8]}, report {out_dir}")
    return TrainResult(run_id, version, promote, reason, holdout, bt.metrics(), folds, out_dir, summary)


def fit_final_model(td: TrainingData, params: dict, tcfg, *,
                    calibration_cutoffs: int) -> tuple[ChurnmlModel, pd.DataFrame, pd.DataFrame]:
    """The recipe refit on the newest labels: calibrate on the newest ``calibration_cutoffs``
    labelled cutoffs (as many as the backtest folds use), fit on every labelled cutoff whose
    window closes before them."""
    labelled = sorted(td.D.index.get_level_values("cutoff").unique())
    fit, cal = split_past(labelled, labelled[-1] + pd.Timedelta(days=td.horizon_days), td.horizon_days,
                          calibration_cutoffs)
    if not fit:
        raise ChurnmlError(f"history too short for the final model: {len(labelled)} labelled cutoffs")
    return fit_recipe(td.D, fit, cal, features=td.features, categorical=td.categorical, label_cols=td.label_cols,
                      params=params, seed=tcfg.seed, calibration=tcfg.calibration, threads=tcfg.threads)


def _dates(rows: pd.DataFrame) -> list[str]:
    return [f"{t:%Y-%m-%d}" for t in sorted(rows.index.get_level_values("cutoff").unique())]


def _span(rows: pd.DataFrame) -> str:
    d = _dates(rows)
    return f"{d[0]}..{d[-1]} ({len(d)})"


def as_model_input(X: pd.DataFrame, categorical) -> pd.DataFrame:
    """The pyfunc's input: categoricals as plain strings (None when missing)."""
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype("object").where(X[c].notna(), None)
    return X


def reference_profile(X: pd.DataFrame, features, categorical, bins: int = 10) -> dict:
    """Per-feature reference distribution of training rows (for drift checks at scoring).

    The pipeline passes the newest training rows, the final model's calibration slice: drift
    then means the population changed since the latest data the model learned from, not
    that the base has aged since its first cutoffs (tenure grows by construction)."""
    prof = {}
    for c in features:
        s = X[c]
        if c in categorical:
            freq = s.astype("object").fillna("(missing)").value_counts(normalize=True)
            prof[c] = {"kind": "categorical", "freq": {str(k): float(v) for k, v in freq.items()}}
        else:
            v = s.to_numpy(float)
            ok = v[~np.isnan(v)]
            edges = np.unique(np.quantile(ok, np.linspace(0, 1, bins + 1))[1:-1]) if len(ok) else np.array([])
            counts = np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
            prof[c] = {"kind": "numeric", "edges": edges.tolist(),
                       "share": (counts / max(len(v), 1)).tolist(), "missing": float(np.isnan(v).mean()),
                       "median": float(np.median(ok)) if len(ok) else None}
    return prof


def risk_tier_thresholds(p: np.ndarray, high_share: float = 0.10, medium_share: float = 0.30) -> dict:
    """Churn probability cut-offs for the tiers from predictions on a recent population
    (the final model's calibration slice): its top 10% is high risk, the next 20% medium."""
    p = np.asarray(p, float)
    return {"high": float(np.quantile(p, 1 - high_share)), "medium": float(np.quantile(p, 1 - medium_share)),
            "high_share": high_share, "medium_share": medium_share}


def collect_metrics(bt: BacktestResult) -> tuple[dict, dict]:
    """Flat MLflow metrics (backtest pooled over folds, holdout = fold 0) and the holdout dict."""
    metrics, holdout = {}, {}
    pooled = bt.metrics()
    for (target, model), row in pooled.iterrows():
        for k, v in row.items():
            metrics[f"backtest_{target}_{model}_{k}"] = v
    hold = BacktestResult(bt.predictions[bt.predictions["fold"] == 0]).metrics()
    for (target, model), row in hold.iterrows():
        holdout.setdefault(target, {})[model] = row.to_dict()
        for k, v in row.items():
            metrics[f"holdout_{target}_{model}_{k}"] = v
    for target in holdout:
        unc = uncalibrated_metrics(bt, target, folds=[0])
        metrics[f"holdout_{target}_lightgbm_brier_uncalibrated"] = unc["brier"]
        holdout[target]["lightgbm_uncalibrated"] = unc
        unc_all = uncalibrated_metrics(bt, target)
        metrics[f"backtest_{target}_lightgbm_brier_uncalibrated"] = unc_all["brier"]
    return metrics, holdout


def write_report(art: Path, bt: BacktestResult, td: TrainingData, model: ChurnmlModel, holdout_model: ChurnmlModel,
                 folds, hold, params, params_source, metrics) -> None:
    """Tables (CSV), plots (PNG), definitions and a short markdown summary into ``art``.

    Evaluation (reliability, lift, metrics) is of the backtest and its holdout model;
    importance and SHAP summaries are of the final model, the one that scores."""
    bt.metrics().round(5).to_csv(art / "backtest_metrics.csv")
    pd.DataFrame([i.as_dict() for i in td.definitions]).to_csv(art / "features.csv", index=False)
    (art / "folds.json").write_text(json.dumps([{"fold": f.index, "fit": [str(t.date()) for t in f.fit],
                                                 "calibrate": [str(t.date()) for t in f.calibrate],
                                                 "test": [str(t.date()) for t in f.test]} for f in folds], indent=1))
    (art / "params.json").write_text(json.dumps({"source": params_source, "params": params}, indent=1))
    preds = bt.predictions
    lines = ["# churnml training report", ""]
    for target in td.label_cols:
        fold_table(bt, target).to_csv(art / f"fold_metrics_{target}.csv", index=False, float_format="%.5f")
        bt.by_segment(target).round(5).to_csv(art / f"segment_metrics_{target}.csv", index=False)
        g = preds[(preds["target"] == target) & (preds["fold"] == 0)]
        lgbm = g[g["model"] == LIGHTGBM]
        rel = {"uncalibrated": reliability_table(lgbm["y"], lgbm["p_raw"]),
               "calibrated": reliability_table(lgbm["y"], lgbm["p"])}
        pd.concat(rel, names=["version"]).round(5).to_csv(art / f"reliability_{target}.csv")
        plots.calibration_plot(rel, art / f"calibration_{target}.png", f"{target}: holdout reliability")
        lifts = {m: lift_table(h["y"], h["p"], h["arr"]) for m, h in g.groupby("model")}
        pd.concat(lifts, names=["model"]).round(5).to_csv(art / f"lift_{target}.csv")
        plots.lift_plot(lifts, art / f"lift_{target}.png", target)
        booster = model.targets[target].booster
        gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
        plots.bar_plot(gain, art / f"importance_{target}.png", f"{target}: feature importance (gain), final model", "total gain")
        Xh = model.prepare(hold[td.features].head(5000))
        contrib = booster.predict(Xh, pred_contrib=True, num_iteration=model.targets[target].best_iteration)
        mean_abs = pd.Series(np.abs(contrib[:, :-1]).mean(axis=0), index=td.features)
        plots.bar_plot(mean_abs, art / f"shap_summary_{target}.png", f"{target}: mean |SHAP| on the holdout rows, final model",
                       "mean |contribution| (log-odds)")
        lines += [f"## {target}", "", "holdout (fold 0) and backtest (all folds pooled):", ""]
        for scope in ("holdout", "backtest"):
            for m in sorted({k.split("_", 2)[2].rsplit("_", 2)[0] for k in metrics if k.startswith(f"{scope}_{target}_")}):
                pr = metrics.get(f"{scope}_{target}_{m}_pr_auc")
                if pr is None:
                    continue
                lines.append(f"- {scope} {m}: PR-AUC {pr:.3f}, ROC-AUC {metrics[f'{scope}_{target}_{m}_roc_auc']:.3f}, "
                             f"lift {metrics[f'{scope}_{target}_{m}_top_decile_lift']:.2f}, "
                             f"Brier {metrics[f'{scope}_{target}_{m}_brier']:.5f}")
        lines += [f"- holdout lightgbm Brier before calibration: "
                  f"{metrics[f'holdout_{target}_lightgbm_brier_uncalibrated']:.5f} "
                  f"(calibration chosen: {holdout_model.targets[target].calibrator.method}; final model: "
                  f"{model.targets[target].calibrator.method})", ""]
    (art / "report.md").write_text("\n".join(lines) + "\n")


def _champion_holdout_metrics(name: str, hold: pd.DataFrame, churn_col: str) -> dict | None:
    """The champion recipe's churn metrics on the same holdout rows, from its holdout model
    (None if there is no champion)."""
    from churnml.modeling import tracking

    champ = tracking.load_holdout_model(name, tracking.CHAMPION)
    if champ is None:
        return None
    try:
        p = champ.predict_target(hold, "churn")
    except ChurnmlError:
        return {"pr_auc": -np.inf, "brier": np.inf}  # champion cannot score today's features
    return binary_metrics(hold[churn_col].astype(int), p, 12.0 * hold["mrr"].to_numpy(float))


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _pip_requirements() -> list[str]:
    return [f"{p}=={_version(p)}" for p in _RUNTIME_PACKAGES if _version(p) != "unknown"]
