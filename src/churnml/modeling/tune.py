"""Hyper-parameter search with Optuna over the backtest folds (never the holdout).

Each trial trains the churn model on every tuning fold's past (early-stopped on its
calibration slice) and scores PR-AUC on the fold's test cutoffs; the running mean
is reported after each fold so the median pruner can stop hopeless trials early.
Trial 0 is LightGBM's churnml defaults, so the saved best is never worse than them
on these folds. The best parameters go to ``models/best_params.json`` (config
``train.tuned_params_file``), which ``churnml train`` then uses. Every trial is a
nested MLflow run under one ``tune`` run.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import optuna

from churnml.errors import ChurnmlError
from churnml.modeling.folds import plan_folds
from churnml.modeling.metrics import binary_metrics
from churnml.modeling.model import DEFAULT_PARAMS, fit_target


def suggest(trial: optuna.Trial) -> dict:
    """The search space (compact trees: explanations must stay fast)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 31, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 400, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
    }


def fold_scores(td, folds, params: dict, *, seed: int, threads: int, report=None) -> list[float]:
    """Churn PR-AUC on each fold's test cutoffs for ``params``; ``report(mean, step)`` after each."""
    from churnml.modeling.encoding import CategoryCodes

    cut = td.D.index.get_level_values("cutoff")
    col = td.label_cols["churn"]
    scores = []
    for step, fold in enumerate(folds):
        fit, cal, test = (td.D[cut.isin(list(s))] for s in (fold.fit, fold.calibrate, fold.test))
        enc = CategoryCodes(tuple(td.categorical)).fit(fit[td.features])
        tm = fit_target(enc.transform(fit[td.features]), fit[col].astype(int).to_numpy(),
                        enc.transform(cal[td.features]), cal[col].astype(int).to_numpy(),
                        categorical=td.categorical, params=params, seed=seed, calibration="none", threads=threads)
        p = tm.booster.predict(enc.transform(test[td.features]), num_iteration=tm.best_iteration)
        scores.append(binary_metrics(test[col].astype(int), p)["pr_auc"])
        if report is not None:
            report(float(np.mean(scores)), step)
    return scores


def run_tuning(cfg, *, trials: int | None = None, progress: bool = False, echo=print) -> dict:
    """Search, save the best parameters, log to MLflow; returns the saved record."""
    from churnml.io import load_dataset, write_text
    from churnml.modeling import tracking
    from churnml.modeling.train import training_data

    t0 = time.perf_counter()
    n_trials = trials or cfg.tune.trials
    ds = load_dataset(cfg.data_dir)
    td = training_data(ds, cutoffs=cfg.train.cutoffs, horizon_days=cfg.labels.horizon_days,
                       uplift=cfg.labels.uplift, progress=progress)
    folds, shrunk = plan_folds(td.D.index.get_level_values("cutoff").unique(), horizon_days=td.horizon_days,
                               n_folds=cfg.train.folds, test_cutoffs=cfg.train.test_cutoffs,
                               calibration_cutoffs=cfg.train.calibration_cutoffs)
    if shrunk:
        echo(shrunk)
    tune_folds = folds[1:]
    if not tune_folds:
        raise ChurnmlError("tuning needs at least 2 backtest folds (fold 0 is the holdout it must not see); "
                           "set train.folds >= 2 or use more history")
    echo(f"tuning on {len(tune_folds)} folds (holdout fold 0 left out), {n_trials} trials")
    optuna.logging.set_verbosity(logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=cfg.tune.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner, study_name="churnml-tune")
    study.enqueue_trial({k: v for k, v in DEFAULT_PARAMS.items() if k not in ("objective", "bagging_freq")})
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.artifact_root)
    mlflow = tracking._mlflow()

    with mlflow.start_run(run_name=f"tune-{time.strftime('%Y%m%d-%H%M%S')}") as parent:
        def objective(trial):
            params = suggest(trial)

            def report(value, step):
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
                mlflow.log_params(params)
                try:
                    scores = fold_scores(td, tune_folds, params, seed=cfg.train.seed, threads=cfg.train.threads,
                                         report=report)
                except optuna.TrialPruned:
                    mlflow.set_tag("state", "pruned")
                    raise
                mlflow.log_metric("mean_pr_auc", float(np.mean(scores)))
                mlflow.set_tag("state", "complete")
            return float(np.mean(scores))

        study.optimize(objective, n_trials=n_trials, timeout=cfg.tune.timeout_seconds,
                       show_progress_bar=progress)
        best = study.best_trial
        default_score = study.trials[0].value
        params = {**suggest(optuna.trial.FixedTrial(best.params)), "objective": "binary"}
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
        record = {"params": params, "mean_pr_auc": best.value, "default_mean_pr_auc": default_score,
                  "trials": len(study.trials), "pruned": pruned, "folds": [f.index for f in tune_folds],
                  "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "mlflow_run_id": parent.info.run_id}
        mlflow.log_params({f"best_{k}": v for k, v in params.items()})
        mlflow.log_metrics({"best_mean_pr_auc": best.value, "default_mean_pr_auc": default_score,
                            "trials": len(study.trials), "pruned": pruned})
        mlflow.log_text(json.dumps(record, indent=1), "best_params.json")
    write_text(json.dumps(record, indent=1) + "\n", Path(cfg.train.tuned_params_file))
    record["seconds"] = time.perf_counter() - t0
    return record
