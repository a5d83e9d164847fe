"""``churnml tune``: search LightGBM parameters over the backtest folds (never the holdout), save the best.

Every trial is a nested MLflow run under one ``tune`` run; the best parameters go to
``train.tuned_params_file`` (default ``<output_dir>/best_params.json``), which
``churnml train`` then uses.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

from churnml import tracking
from churnml.errors import ChurnmlError
from churnml.flows.common import Run
from churnml.io.outputs import write_json
from churnml.modeling import recipe
from churnml.modeling.tune import search


def run_tuning(run: Run, *, trials: int | None = None) -> dict:
    """Search, save the best parameters, log to MLflow; returns the saved record (with ``seconds``)."""
    cfg = run.cfg
    n_trials = trials or cfg.tune.trials
    run.check_settings(playbook=False)
    run.tracking()
    spec = run.recipe_spec()
    with run.open_dataset() as ds:
        td = recipe.prepare(ds, spec, progress=run.progress, notes=run.echo)
    folds, shrunk = recipe.plan(td, spec)
    if shrunk:
        run.echo(shrunk)
    tune_folds = folds[1:]
    if not tune_folds:
        raise ChurnmlError(
            "tuning needs at least 2 backtest folds (fold 0 is the holdout it must not see); "
            "set train.folds >= 2 or use more history"
        )
    run.echo(f"tuning on {len(tune_folds)} folds (holdout fold 0 left out), {n_trials} trials")
    run.tracking()

    @contextmanager
    def trial_log(number: int, params: dict):
        with tracking.run(f"trial-{number}", nested=True):
            tracking.log_params(params)

            def log(metrics: dict, state: str) -> None:
                tracking.log_metrics(metrics)
                tracking.set_tags({"state": state})

            yield log

    with tracking.run(f"tune-{time.strftime('%Y%m%d-%H%M%S')}", tags={"kind": "tuning"}) as parent:
        record = search(
            td,
            tune_folds,
            trials=n_trials,
            timeout=cfg.tune.timeout_seconds,
            sampler_seed=cfg.tune.seed,
            seed=spec.seed,
            threads=spec.threads,
            progress=run.progress,
            trial_log=trial_log,
        )
        record["mlflow_run_id"] = parent.info.run_id
        tracking.log_params({f"best_{k}": v for k, v in record["params"].items()})
        tracking.log_metrics(
            {
                "best_mean_pr_auc": record["mean_pr_auc"],
                "default_mean_pr_auc": record["default_mean_pr_auc"],
                "trials": record["trials"],
                "pruned": record["pruned"],
            }
        )
        tracking.log_text(json.dumps(record, indent=1), "best_params.json")
    write_json(record, run.paths.tuned_params)
    record["seconds"] = run.seconds()
    return record
