"""``churnml train``: features and labels -> backtest -> final model -> report -> MLflow -> registry.

The backtest runs LightGBM beside two baselines on time-ordered folds. Fold 0 is the
holdout: its model (the *holdout model*) was trained and calibrated only on data
before the holdout cutoffs, and judges the recipe. The model that is registered and
scores (the *final model*) is the same recipe refit on the newest labels
(:func:`churnml.modeling.training.fit_final_model`).

Order of effects: the MLflow run is logged (and ends FINISHED, or FAILED on any error),
the training report is published under ``<output_dir>/train``, and only then is the
model registered with the alias ``challenger``, and promoted to ``champion`` when its
recipe beats the champion's on the same holdout cutoffs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.flows.common import Run
from churnml.io import artifacts
from churnml.io.outputs import check_target, ensure_writable, publish_dir, write_json
from churnml.modeling.backtest import LIGHTGBM, run_backtest
from churnml.modeling.folds import Fold, plan_folds
from churnml.modeling.model import lgb_params
from churnml.modeling.promotion import holdout_metrics, promotion_decision
from churnml.modeling.report import report_files
from churnml.modeling.training import (as_model_input, choose_cutoffs, collect_metrics, cutoff_dates,
                                       fit_final_model, merge_params, span, supported_targets, training_data)
from churnml.scoring.drift import reference_profile
from churnml.scoring.score import model_inputs, probability_quantiles

_RUNTIME_PACKAGES = ("mlflow", "lightgbm", "pandas", "numpy", "scikit-learn", "pyarrow", "duckdb", "tqdm", "click",
                     "pyyaml", "pydantic", "jinja2", "matplotlib")


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


def run_training(run: Run) -> TrainResult:
    """The whole pipeline for one validated config (see the module docstring)."""
    cfg, tcfg, echo, paths = run.cfg, run.cfg.train, run.echo, run.paths
    check_target(paths.train_dir, "train")
    ensure_writable(paths.train_dir.parent)
    with run.open_dataset() as ds:
        td = prepare(run, ds)
        data_files = [r.path for r in ds.raw.values() if r.path is not None]
        data_rows = sum(r.n_rows for r in ds.raw.values())
    labelled = td.D.index.get_level_values("cutoff").unique()
    folds, shrunk = plan_folds(labelled, horizon_days=td.horizon_days, n_folds=tcfg.folds,
                               test_cutoffs=tcfg.test_cutoffs, calibration_cutoffs=tcfg.calibration_cutoffs,
                               allow_no_gap=td.allow_no_gap)
    if shrunk:
        echo(shrunk)
    for f in folds:
        echo(f.describe())
    params, params_source = merge_params(run.tuned_params(), tcfg.params)
    if params_source.startswith("tuned"):
        params_source = params_source.replace("tuned", f"tuned ({paths.tuned_params})", 1)
    settings = {"horizon_days": td.horizon_days, "uplift": td.uplift, "label_columns": td.label_cols,
                "train_cutoffs": [f"{t:%Y-%m-%d}" for t in folds[0].fit],
                "calibration_cutoffs": [f"{t:%Y-%m-%d}" for t in folds[0].calibrate],
                "holdout_cutoffs": [f"{t:%Y-%m-%d}" for t in folds[0].test]}
    bt = run_backtest(td.D, features=td.features, categorical=td.categorical, folds=folds,
                      label_cols=td.label_cols, params=params, seed=tcfg.seed, calibration=tcfg.calibration,
                      threads=tcfg.threads, progress=run.progress, settings=settings)
    holdout_model = bt.models[0]
    hold = td.D[td.D.index.get_level_values("cutoff").isin(list(folds[0].test))]
    model, fit_rows, cal_rows = fit_final_model(td, params, seed=tcfg.seed, calibration=tcfg.calibration,
                                                threads=tcfg.threads, calibration_cutoffs=len(folds[0].calibrate))
    echo(f"final model: fit {span(fit_rows)}, calibrate {span(cal_rows)} (the newest labels)")
    model.settings.update(settings, train_cutoffs=cutoff_dates(fit_rows), calibration_cutoffs=cutoff_dates(cal_rows))
    model.settings["reference"] = reference_profile(cal_rows, td.features, td.categorical)
    model.settings["inputs"] = model_inputs(td.context, td.D, td.features, td.categorical)
    model.settings["churn_quantiles"] = probability_quantiles(model.predict_target(cal_rows[td.features], "churn"))
    metrics, holdout = collect_metrics(bt)

    run.tracking()
    name = cfg.mlflow.model_name
    champ = tracking.load_holdout_model(name, tracking.CHAMPION)
    champion = None if champ is None else holdout_metrics(champ, hold, td.label_cols["churn"])
    promote, reason = promotion_decision(holdout["churn"][LIGHTGBM], champion)

    fingerprint = artifacts.fingerprint_files(data_files) if data_files else "in-memory"
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
    tags = {"data_fingerprint": fingerprint, "data_rows": data_rows, "labelled_rows": len(td.D),
            "churnml_version": _version("churnml"), "kind": "training",
            "promotion": "champion" if promote else "challenger", "promotion_reason": reason}
    files = report_files(bt, td, model, holdout_model, folds, hold, params, params_source, metrics)
    files["config.json"] = cfg.model_dump(mode="json")
    files["promotion.txt"] = reason + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp)
        artifacts.write_files(files, art)
        artifacts.save_model(holdout_model, art / "holdout_model")
        with tracking.run(f"train-{pd.Timestamp.now():%Y%m%d-%H%M%S}") as active:
            run_id = active.info.run_id
            tracking.log_params(params_log)
            tracking.set_tags(tags)
            tracking.log_metrics(metrics)
            tracking.log_artifacts(art)
            model_uri = tracking.log_model(model, input_example=as_model_input(hold[td.features].head(5),
                                                                               td.categorical),
                                           pip_requirements=_pip_requirements(),
                                           code_path=Path(tracking.__file__).resolve().parent)
        record = {"run_id": run_id, "model": name, "version": None, "promoted": promote, "reason": reason}
        with publish_dir(paths.train_dir, kind="train") as out:
            import shutil

            shutil.copytree(art, out, dirs_exist_ok=True)
            write_json(record, out / "run.json")
    version = tracking.register(model_uri, name, description=(
        f"churn + expansion, trained on {model.settings['train_cutoffs'][0]}..{model.settings['train_cutoffs'][-1]}, "
        f"calibrated on {model.settings['calibration_cutoffs'][0]}..{model.settings['calibration_cutoffs'][-1]}"),
        tags={"promotion_reason": reason, "run_id": run_id, "data_fingerprint": fingerprint})
    if promote:
        tracking.set_alias(name, tracking.CHAMPION, version)
    tracking.log_to_run(run_id, tags={"registered_version": version})
    write_json({**record, "version": version}, paths.train_dir / "run.json")
    h = holdout["churn"]
    lg, b = h[LIGHTGBM], h.get("logistic_regression", {})
    exp = (f"expansion PR-AUC {holdout['expansion'][LIGHTGBM]['pr_auc']:.3f}" if "expansion" in holdout
           else "expansion not trained")
    summary = (f"{name} v{version}: holdout churn PR-AUC {lg['pr_auc']:.3f} "
               f"(logistic {b.get('pr_auc', float('nan')):.3f}, health score "
               f"{h.get('health_score', {}).get('pr_auc', float('nan')):.3f}), "
               f"top-decile lift {lg['top_decile_lift']:.1f}x, Brier {lg['brier']:.4f}; {exp}; "
               f"{'promoted to champion' if promote else 'stays challenger'} ({reason}); "
               f"{run.seconds():.0f}s, run {run_id[:8]}, report {paths.train_dir}")
    return TrainResult(run_id, version, promote, reason, holdout, bt.metrics(), folds, paths.train_dir, summary)


def prepare(run: Run, ds):
    """Cutoffs (spaced for the history), features and labels, and the targets the history supports."""
    cfg, tcfg = run.cfg, run.cfg.train
    fold_settings = {"n_folds": tcfg.folds, "test_cutoffs": tcfg.test_cutoffs,
                     "calibration_cutoffs": tcfg.calibration_cutoffs}
    cuts, notes, no_gap = choose_cutoffs(ds, tcfg.cutoffs, horizon_days=cfg.labels.horizon_days,
                                         fold_settings=fold_settings, max_cutoffs=tcfg.max_cutoffs)
    for n in notes:
        run.echo(n)
    run.echo(f"features and labels for {len(cuts)} cutoffs ({cuts[0]:%Y-%m-%d}..{cuts[-1]:%Y-%m-%d})")
    td = training_data(ds, cutoffs=cuts, horizon_days=cfg.labels.horizon_days, uplift=cfg.labels.uplift,
                       progress=run.progress)
    td.label_cols, notes = supported_targets(td.D, td.label_cols, tcfg.targets, tcfg.min_events)
    for n in notes:
        run.echo(n)
    td.allow_no_gap = no_gap
    return td


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _pip_requirements() -> list[str]:
    return [f"{p}=={_version(p)}" for p in _RUNTIME_PACKAGES if _version(p) != "unknown"]
