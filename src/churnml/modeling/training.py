"""Training data and the model recipe: features joined to labels, the final model, metrics.

``training_data`` builds the point-in-time features and labels once per command; the
backtest (:mod:`churnml.modeling.backtest`) and the final model use the same rows.
The final model is the recipe refit on the newest labels: fit on every labelled
cutoff up to the calibration slice, which is the newest ``calibration_cutoffs``
labelled cutoffs (early stopping and calibration). It stands to today as each backtest
model stood to its test cutoffs, so the backtest estimates how it will do.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnml.cutoffs import parse_cutoffs
from churnml.errors import ChurnmlError
from churnml.features import build_features, indicators_for
from churnml.labels import label_names, make_labels
from churnml.modeling.backtest import BacktestResult, fit_recipe, uncalibrated_metrics
from churnml.modeling.folds import split_past
from churnml.modeling.model import ChurnmlModel


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
    cutoffs: list


def training_data(ds, *, cutoffs, horizon_days: int, uplift: float, progress: bool = False,
                  max_cutoffs: int | None = None) -> TrainingData:
    """Build features and labels for all cutoffs (a spec string or a list of dates) and join them."""
    cuts = parse_cutoffs(cutoffs, ds, **({"max_cutoffs": max_cutoffs} if max_cutoffs else {})) \
        if isinstance(cutoffs, str) else list(cutoffs)
    X = build_features(ds, cuts, progress=progress)
    Y = make_labels(ds, cuts, horizon_days=horizon_days, uplift=uplift)
    churn_col, exp_col = label_names(horizon_days)
    D = X.join(Y.loc[Y["eligible"], [churn_col, exp_col]], how="inner")
    if D.empty:
        raise ChurnmlError(f"no labelled rows: the data must extend at least {horizon_days} days past a cutoff")
    defs = indicators_for(ds.context())
    categorical = [i.name for i in defs if i.kind == "categorical"]
    return TrainingData(X, D, list(X.columns), categorical, {"churn": churn_col, "expansion": exp_col}, defs,
                        horizon_days, uplift, cuts)


def fit_final_model(td: TrainingData, params: dict, *, seed: int, calibration: str, threads: int,
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
                      params=params, seed=seed, calibration=calibration, threads=threads)


def cutoff_dates(rows: pd.DataFrame) -> list[str]:
    return [f"{t:%Y-%m-%d}" for t in sorted(rows.index.get_level_values("cutoff").unique())]


def span(rows: pd.DataFrame) -> str:
    d = cutoff_dates(rows)
    return f"{d[0]}..{d[-1]} ({len(d)})"


def as_model_input(X: pd.DataFrame, categorical) -> pd.DataFrame:
    """The pyfunc's input: categoricals as plain strings (None when missing)."""
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype("object").where(X[c].notna(), None)
    return X


def merge_params(tuned: dict | None, overrides: dict | None) -> tuple[dict, str]:
    """LightGBM parameters: tuned ones (when given), then config overrides; and where they came from."""
    params, source = dict(tuned or {}), "tuned" if tuned else "defaults"
    if overrides:
        params.update(overrides)
        source += " + config overrides"
    return params, source


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
