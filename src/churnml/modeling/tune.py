"""Hyper-parameter search with Optuna over the backtest folds (never the holdout).

Each trial trains the churn model on every tuning fold's past (early-stopped on its
calibration slice) and scores PR-AUC on the fold's test cutoffs; the running mean
is reported after each fold so the median pruner can stop hopeless trials early.
Trial 0 is LightGBM's churnml defaults, so the saved best is never worse than them
on these folds. The best parameters go to ``models/best_params.json`` (config
``train.tuned_params_file``), which ``churnml train`` then uses. The flow records every
trial as a nested MLflow run under one ``tune`` run.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

import numpy as np
import optuna

from churnml.modeling.encoding import CategoryCodes
from churnml.modeling.metrics import binary_metrics
from churnml.modeling.model import fit_target
from churnml.modeling.params import DEFAULT_PARAMS


def suggest(trial: optuna.trial.BaseTrial) -> dict:
    """The search space (compact trees: explanations must stay fast); a ``FixedTrial`` gives the values of
    a chosen point."""
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
    cut = td.D.index.get_level_values("cutoff")
    col = td.label_cols["churn"]
    scores = []
    for step, fold in enumerate(folds):
        fit, cal, test = (td.D[cut.isin(list(s))] for s in (fold.fit, fold.calibrate, fold.test))
        enc = CategoryCodes(tuple(td.categorical)).fit(fit[td.features])
        tm = fit_target(
            enc.transform(fit[td.features]),
            fit[col].astype(int).to_numpy(),
            enc.transform(cal[td.features]),
            cal[col].astype(int).to_numpy(),
            categorical=td.categorical,
            params=params,
            seed=seed,
            calibration="none",
            threads=threads,
        )
        p = tm.booster.predict(enc.transform(test[td.features]), num_iteration=tm.best_iteration)
        scores.append(binary_metrics(test[col].astype(int), p)["pr_auc"])
        if report is not None:
            report(float(np.mean(scores)), step)
    return scores


def search(
    td,
    tune_folds,
    *,
    trials: int,
    timeout: int | None,
    sampler_seed: int,
    seed: int,
    threads: int,
    progress=None,
    trial_log=None,
) -> dict:
    """Search the parameter space on ``tune_folds`` (never the holdout fold); returns the best record.

    ``trial_log(number, params)`` (optional) is a context manager yielding ``log(metrics, state)``;
    the flow uses it to record every trial (e.g. as a nested MLflow run).
    """
    optuna.logging.set_verbosity(logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner, study_name="churnml-tune")
    study.enqueue_trial({k: v for k, v in DEFAULT_PARAMS.items() if k not in ("objective", "bagging_freq")})

    def objective(trial):
        params = suggest(trial)

        def report(value, step):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        with trial_log(trial.number, params) if trial_log else nullcontext(lambda m, s: None) as log:
            try:
                scores = fold_scores(td, tune_folds, params, seed=seed, threads=threads, report=report)
            except optuna.TrialPruned:
                log({}, "pruned")
                scores = None
            else:
                log({"mean_pr_auc": float(np.mean(scores))}, "complete")
        if scores is None:
            raise optuna.TrialPruned()
        return float(np.mean(scores))

    callbacks = []
    if progress == "lines":
        import sys

        callbacks.append(
            lambda study, trial: print(
                f"tune: trial {trial.number + 1}/{trials} {trial.state.name.lower()}"
                + (f", mean PR-AUC {trial.value:.4f}" if trial.value is not None else ""),
                file=sys.stderr,
                flush=True,
            )
        )
    study.optimize(
        objective, n_trials=trials, timeout=timeout, show_progress_bar=progress == "bar", callbacks=callbacks
    )
    best = study.best_trial
    params = {**suggest(optuna.trial.FixedTrial(best.params)), "objective": "binary"}
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {
        "params": params,
        "mean_pr_auc": best.value,
        "default_mean_pr_auc": study.trials[0].value,
        "trials": len(study.trials),
        "pruned": pruned,
        "folds": [f.index for f in tune_folds],
        "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
