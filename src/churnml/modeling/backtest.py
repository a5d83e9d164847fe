"""Backtests over time: LightGBM and the baselines on the same time-ordered folds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnml.modeling.baselines import HealthScoreBaseline, as_object_categories, logistic_baseline
from churnml.modeling.events import churn_events
from churnml.modeling.folds import Fold
from churnml.modeling.metrics import METRICS, binary_metrics, metrics_by_segment
from churnml.modeling.model import ChurnmlModel
from churnml.modeling.survival import SurvivalModel
from churnml.modeling.survival_metrics import CURVE_DAYS
from churnml.progress import steps

LIGHTGBM, LOGISTIC, HEALTH = "lightgbm", "logistic_regression", "health_score"


@dataclass
class BacktestResult:
    """Out-of-time predictions and their metrics."""

    predictions: pd.DataFrame  # one row per (target, model, account, cutoff)
    models: dict[int, ChurnmlModel] = field(default_factory=dict)

    def metrics(self, by: tuple[str, ...] = ("target", "model")) -> pd.DataFrame:
        """Metrics on the pooled test predictions of all folds (or per ``by`` groups)."""
        rows = {}
        for key, g in self.predictions.groupby(list(by), sort=True):
            rows[key] = binary_metrics(g["y"], g["p"], g["arr"])
        out = pd.DataFrame(rows).T[list(METRICS)]
        out.index.names = list(by)
        return out

    def by_segment(self, target: str) -> pd.DataFrame:
        parts = []
        for model, g in self.predictions[self.predictions["target"] == target].groupby("model", sort=True):
            t = metrics_by_segment(g["y"], g["p"], g["arr"], g["segment"])
            parts.append(t.assign(model=model).rename_axis("segment").reset_index())
        return pd.concat(parts, ignore_index=True)


def labels_of(part: pd.DataFrame, label_cols: dict[str, str]) -> dict[str, np.ndarray]:
    """The 0/1 label arrays per target of a slice of ``D``."""
    return {t: part[c].astype(int).to_numpy() for t, c in label_cols.items()}


def fit_recipe(
    D: pd.DataFrame,
    fit_cutoffs,
    calibration_cutoffs,
    *,
    features,
    categorical,
    label_cols: dict[str, str],
    params=None,
    seed: int = 0,
    calibration: str = "auto",
    threads: int = 2,
) -> tuple[ChurnmlModel, pd.DataFrame, pd.DataFrame]:
    """The churnml recipe on one split of ``D``: fit on ``fit_cutoffs``, early-stop and calibrate
    on the later ``calibration_cutoffs``. Returns the model and the two slices."""
    cut = D.index.get_level_values("cutoff")
    fit, cal = D[cut.isin(list(fit_cutoffs))], D[cut.isin(list(calibration_cutoffs))]
    model = ChurnmlModel.fit(
        fit[features],
        labels_of(fit, label_cols),
        cal[features],
        labels_of(cal, label_cols),
        categorical=categorical,
        params=params,
        seed=seed,
        calibration=calibration,
        threads=threads,
    )
    return model, fit, cal


def run_backtest(
    D: pd.DataFrame,
    *,
    features,
    categorical,
    folds: list[Fold],
    label_cols: dict[str, str],
    params=None,
    seed: int = 0,
    calibration: str = "auto",
    baselines: bool = True,
    threads: int = 2,
    progress=None,
) -> BacktestResult:
    """Train on each fold's past, predict its test cutoffs; ``D`` is indexed by (account_id, cutoff)."""
    cut = D.index.get_level_values("cutoff")
    numeric = [c for c in features if c not in categorical]
    preds, models = [], {}
    for fold in steps(folds, "backtest", progress, unit="fold"):
        model, fit, _ = fit_recipe(
            D,
            fold.fit,
            fold.calibrate,
            features=features,
            categorical=categorical,
            label_cols=label_cols,
            params=params,
            seed=seed,
            calibration=calibration,
            threads=threads,
        )
        test = D[cut.isin(list(fold.test))]
        models[fold.index] = model
        base = pd.DataFrame(
            {
                "account_id": test.index.get_level_values("account_id"),
                "cutoff": test.index.get_level_values("cutoff"),
                "fold": fold.index,
                "segment": test["segment"].astype("string").to_numpy() if "segment" in test else None,
                "arr": 12.0 * test["mrr"].to_numpy(float),
            }
        )
        for target, col in label_cols.items():
            yt = test[col].astype(int).to_numpy()
            raw = model.predict_raw(test[features], target)
            scored = {LIGHTGBM: (model.targets[target].calibrator.transform(raw), raw)}
            if baselines:
                for name, predict in fit_baselines(
                    fit[features],
                    labels_of(fit, label_cols)[target],
                    numeric=numeric,
                    categorical=categorical,
                    seed=seed,
                    target=target,
                ).items():
                    p = predict(test[features])
                    scored[name] = (p, p)
            for name, (p, p_raw) in scored.items():
                preds.append(base.assign(target=target, model=name, y=yt, p=p, p_raw=p_raw))
    return BacktestResult(pd.concat(preds, ignore_index=True), models)


def fit_baselines(X: pd.DataFrame, y: np.ndarray, *, numeric, categorical, seed: int, target: str) -> dict:
    """The baselines fitted on ``(X, y)``: name -> predict(X) giving probabilities. The logistic
    regression for every target, the health score for churn. A baseline that cannot be fitted
    (a single class, none of its inputs) predicts the training rate for every row."""

    def constant(rate):
        return lambda Z: np.full(len(Z), rate)

    rate = float(np.mean(y)) if len(y) else np.nan
    single = len(np.unique(y)) < 2
    out = {}
    if single:
        out[LOGISTIC] = constant(rate)
    else:
        lr = logistic_baseline(numeric, categorical, seed).fit(as_object_categories(X, categorical), y)
        out[LOGISTIC] = lambda Z: lr.predict_proba(as_object_categories(Z, categorical))[:, 1]
    if target == "churn":
        try:
            hs = None if single else HealthScoreBaseline().fit(X, y)
        except ValueError:  # none of the health score's components in this base
            hs = None
        out[HEALTH] = constant(rate) if hs is None else (lambda Z: hs.predict_proba(Z)[:, 1])
    return out


def uncalibrated_metrics(result: BacktestResult, target: str, folds=None) -> dict:
    """LightGBM Brier/log-loss before calibration, on the same rows."""
    g = result.predictions
    g = g[(g["target"] == target) & (g["model"] == LIGHTGBM)]
    if folds is not None:
        g = g[g["fold"].isin(folds)]
    m = binary_metrics(g["y"], g["p_raw"], g["arr"])
    return {"brier": m["brier"], "log_loss": m["log_loss"]}


def fold_table(result: BacktestResult, target: str) -> pd.DataFrame:
    """PR-AUC and Brier per fold and model (shows the spread over time)."""
    g = result.predictions[result.predictions["target"] == target]
    rows = []
    for (fold, model), h in g.groupby(["fold", "model"], sort=True):
        m = binary_metrics(h["y"], h["p"], h["arr"])
        rows.append(
            {
                "fold": fold,
                "model": model,
                "first_test_cutoff": h["cutoff"].min(),
                **{k: m[k] for k in ("pr_auc", "roc_auc", "brier", "top_decile_lift")},
            }
        )
    return pd.DataFrame(rows)


TIME_TO_CHURN = "time_to_churn"


@dataclass
class SurvivalBacktest:
    """Walk-forward predictions of the time-to-churn model: one row per scored (account, cutoff) with its
    fold, curve (``churn_<d>d``), ``next_renewal`` and ``risk``; and each fold's model."""

    predictions: pd.DataFrame
    models: dict[int, SurvivalModel] = field(default_factory=dict)


def run_survival_backtest(
    X: pd.DataFrame,
    subscriptions: pd.DataFrame,
    folds: list[Fold],
    *,
    categorical,
    params=None,
    seed: int = 0,
    threads: int = 2,
    days=CURVE_DAYS,
    progress=None,
) -> SurvivalBacktest:
    """The time-to-churn model on each fold: fitted on the cutoffs before the fold's first test cutoff
    ``T`` with churn events as known on ``T - 1`` (nothing later is read), then scoring its test
    cutoffs; the newest fold also scores the cutoffs after its test block (their short windows are
    known), so that lead times can look back further."""
    cut = X.index.get_level_values("cutoff")
    cutoffs = sorted(cut.unique())
    newest_end = max(folds[0].test)
    parts, models = [], {}
    for fold in steps(folds, "time to churn", progress, unit="fold"):
        T = fold.test[0]
        known = [t for t in cutoffs if t < T]
        events = churn_events(subscriptions, known, T - pd.Timedelta(days=1))
        m = SurvivalModel(params, seed=seed, threads=threads).fit(X[cut < T], events, categorical=categorical)
        score_at = list(fold.test) + ([t for t in cutoffs if t > newest_end] if fold.index == 0 else [])
        Xs = X[cut.isin(score_at)]
        curve = m.predict_curve(Xs, days)
        curve["next_renewal"] = m.predict_next_renewal(Xs).to_numpy()
        curve["risk"] = m.predict_risk(Xs).to_numpy()
        curve["fold"] = fold.index
        parts.append(curve)
        models[fold.index] = m
    return SurvivalBacktest(pd.concat(parts).sort_index(), models)


def collect_metrics(bt: BacktestResult) -> tuple[dict, dict]:
    """Flat MLflow metrics (backtest pooled over folds, holdout = fold 0) and the holdout dict."""
    metrics: dict[str, float] = {}
    holdout: dict[str, dict[str, dict]] = {}  # target -> model -> metrics
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
