"""``churnml train``: features and labels -> backtest -> final model -> report -> MLflow -> registry.

The recipe (:mod:`churnml.modeling.recipe`) backtests LightGBM beside two baselines on
time-ordered folds. Fold 0 is the holdout: its model (the *holdout model*) was trained and
calibrated only on data before the holdout cutoffs, and judges the recipe. The model that is
registered and scores (the *final model*) is the same recipe refit on the newest labels.
This flow opens the base, runs the recipe, writes the report and talks to MLflow.

Order of effects: the MLflow run is logged (and ends FINISHED, or FAILED on any error),
the training report is published under ``<output_dir>/train``, and only then is the
model registered with the alias ``challenger``, and promoted to ``champion`` when its
recipe beats the champion's on the same holdout cutoffs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.errors import ChurnmlError
from churnml.flows.common import Run, data_source, dataset_ref
from churnml.io import artifacts
from churnml.io.outputs import check_target, ensure_writable, publish_dir, scratch_dir, write_json, write_text
from churnml.modeling import recipe
from churnml.modeling.backtest import LIGHTGBM, TIME_TO_CHURN, collect_metrics
from churnml.modeling.early_warning import warning_metrics
from churnml.modeling.folds import Fold
from churnml.modeling.params import lgb_params
from churnml.modeling.promotion import holdout_metrics, promotion_decision
from churnml.modeling.report import report_figures, report_files
from churnml.modeling.training import as_model_input
from churnml.pages.training import render_training_report
from churnml.scoring.overview import risk_drivers
from churnml.scoring.tiers import tier_rule
from churnml.serving import ENTRY

_RUNTIME_PACKAGES = (
    "mlflow",
    "lightgbm",
    "pandas",
    "numpy",
    "scikit-learn",
    "pyarrow",
    "duckdb",
    "tqdm",
    "click",
    "pyyaml",
    "pydantic",
    "jinja2",
    "matplotlib",
)


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


def run_training(run: Run, *, replace_champion: bool = False) -> TrainResult:
    """The whole pipeline for one validated config (see the module docstring). The MLflow run spans
    it all (its duration is the training's), and ends FAILED on any error or interrupt.

    Before any work: the settings' paths, the store, and the champion the new model will be compared
    against (its holdout model is loaded; a champion whose files are gone or damaged is an error that
    says how to fix it). ``replace_champion``: promote the new model without loading the champion."""
    paths = run.paths
    check_target(paths.train_dir, "train")
    ensure_writable(paths.train_dir.parent)
    run.check_settings()
    run.tracking()
    champ = None if replace_champion else _champion(run)
    started = pd.Timestamp.now()
    # the run's files are built under the output folder and removed on any exit (a killed run's: by the next)
    art = scratch_dir(paths.output_dir, "train-artifacts")
    try:
        return _run_training(run, champ, replace_champion, started, art)
    finally:
        shutil.rmtree(art, ignore_errors=True)


def _run_training(run: Run, champ, replace_champion: bool, started: pd.Timestamp, art: Path) -> TrainResult:
    cfg, paths = run.cfg, run.paths
    with tracking.run(
        f"train-{started:%Y%m%d-%H%M%S}",
        tags={"kind": "training"},
        description=f"churnml training on {data_source(cfg)} (running)",
    ) as active:
        result, model_uri, rec = _train(run, active.info.run_id, champ, art, replace_champion)
    record = {
        "run_id": result.run_id,
        "model": cfg.mlflow.model_name,
        "version": None,
        "promoted": result.promoted,
        "reason": result.reason,
    }
    with publish_dir(paths.train_dir, kind="train") as out:
        shutil.copytree(rec["artifacts"], out, dirs_exist_ok=True)
        write_json(record, out / "run.json")
    name = cfg.mlflow.model_name
    version = tracking.register(model_uri, name, description=rec["description"], tags=rec["version_tags"])
    tracking.describe_model(
        name,
        "churnml: each paying account's churn curve (30 days to 12 months), its chance "
        "of not renewing at the next renewal and of expanding, with the reasons. Aliases: "
        "champion (scores), challenger (newest).",
    )
    if result.promoted:
        tracking.set_alias(name, tracking.CHAMPION, version)
    tracking.log_to_run(result.run_id, tags={"registered_version": version})
    write_json({**record, "version": version}, paths.train_dir / "run.json")
    report = {**rec["report"], "version": version}
    write_json(report, paths.train_dir / "report.json")
    write_text(
        render_training_report(report, rec["figures"], rec["tables"], rec["images"]), paths.train_dir / "report.html"
    )
    tracking.log_to_run(result.run_id, text={"report.html": (paths.train_dir / "report.html").read_text()})
    result.version = version
    result.summary = result.summary.replace("{version}", version)
    return result


def _champion(run: Run):
    """The champion's holdout model (None when there is no champion), loaded before any work: a champion
    whose files are gone or damaged stops the training here, with the fix."""
    name = run.cfg.mlflow.model_name
    version = tracking.alias_version(name, tracking.CHAMPION)
    if version is None:
        return None
    try:
        return run.holdout_model(tracking.CHAMPION)
    except ChurnmlError as e:
        raise ChurnmlError(
            f"the champion {name} v{version} cannot be compared against: {e}. To register this training's "
            f"model as champion without the comparison, run `churnml train --replace-champion`"
        ) from None


def _train(run: Run, run_id: str, champ, art: Path, replace_champion: bool = False):
    """Everything inside the MLflow run: data, the recipe, report files, logging."""
    cfg, echo, paths = run.cfg, run.echo, run.paths
    spec = run.recipe_spec()
    with run.open_dataset() as ds:
        fitted = recipe.run(ds, spec, progress=run.progress, notes=echo)
        last_day = ds.last_date()
        fingerprint = run.fingerprint(ds)
        data_rows = sum(r.n_rows for r in ds.raw.values())
        accounts = int(ds.raw["accounts"].n_rows)
        csms = int(ds.accounts["csm_owner"].nunique()) if "csm_owner" in ds.accounts else None
    td, folds, model = fitted.td, fitted.folds, fitted.model
    bt, sv, warning, label_cols = fitted.backtest, fitted.survival_backtest, fitted.warning, fitted.label_cols
    metrics, holdout = collect_metrics(bt)
    metrics.update(warning_metrics(warning) if warning else {})
    main = TIME_TO_CHURN if TIME_TO_CHURN in holdout["churn"] else LIGHTGBM

    name = cfg.mlflow.model_name
    hold = fitted.holdout_rows()
    champion = None if champ is None else holdout_metrics(champ, hold, td.label_cols["churn"])
    promote, reason = promotion_decision(holdout["churn"][main], champion)
    if replace_champion:
        promote, reason = True, "replaces the champion without comparing (--replace-champion)"

    params_log = {
        **{f"lgb_{k}": v for k, v in lgb_params(spec.lgb(), spec.seed, spec.threads).items()},
        "params_source": spec.params_source,
        "horizon_days": td.horizon_days,
        "uplift": td.uplift,
        "folds": len(folds),
        "test_cutoffs": len(folds[0].test),
        "calibration_cutoffs": len(folds[0].calibrate),
        "calibration": spec.calibration,
        "seed": spec.seed,
        "n_features": len(td.features),
        "data_dir": data_source(cfg),
        "cutoffs": len(td.cutoffs),
        "targets": ",".join((["time_to_churn"] if sv is not None else []) + list(model.targets)),
        "holdout_cutoffs": list(model.card.holdout_cutoffs),
        "final_train_cutoffs": f"{model.card.fit_cutoffs[0]}..{model.card.fit_cutoffs[-1]}",
        "final_calibration_cutoffs": ",".join(model.card.calibration_cutoffs),
        **{f"best_iteration_{t}": m.best_iteration for t, m in model.targets.items()},
        **{f"calibration_chosen_{t}": m for t, m in model.calibration.items()},
    }
    tags = {
        "data_fingerprint": fingerprint,
        "data_rows": data_rows,
        "labelled_rows": len(td.D),
        "churnml_version": _version("churnml"),
        "kind": "training",
        "promotion": "champion" if promote else "challenger",
        "promotion_reason": reason,
    }
    tiers = run.tiers(model)
    context = {
        "model_name": name,
        "run_id": run_id,
        "data_dir": data_source(cfg),
        "accounts": accounts,
        "csms": csms,
        "data_rows": data_rows,
        "fingerprint": fingerprint,
        "promote": promote,
        "reason": reason,
        "champion": champion,
        "tier_rule": tier_rule(tiers, model.risk_words()),
        "tier_high": tiers["high"],
        "last_day": f"{last_day:%Y-%m-%d}",
    }
    defs = {i.name: i for i in td.definitions}
    drivers = risk_drivers(model, recipe.risk_sample(fitted), defs, tiers["high"])
    files = report_files(fitted, spec.params_source, metrics, context=context, drivers=drivers)
    figures = report_figures(files)
    report = files["report.json"]
    assert isinstance(report, dict)  # report_files makes it with report_json
    images = {k: v for k, v in files.items() if k.endswith(".png") and isinstance(v, bytes)}
    files["report.html"] = render_training_report(
        report, figures, sorted(k for k in files if k.endswith(".csv")), images
    )
    files["config.json"] = cfg.model_dump(mode="json")
    files["promotion.txt"] = reason + "\n"
    artifacts.write_files(files, art)
    artifacts.save_model(fitted.holdout_model, art / "holdout_model")
    for k, fm in fitted.fold_models.items():  # every fold's bundle: the backfill scores past dates with them
        artifacts.save_model(fm, art / "fold_models" / f"fold_{k}")
    tracking.log_params(params_log)
    tracking.set_tags(tags)
    tracking.log_metrics(report["headline"])  # the few figures of the runs table; the rest as JSON and tables
    tracking.log_dict(metrics, "metrics.json")
    for fname, table in files.items():
        if isinstance(table, pd.DataFrame) and fname.endswith(".csv") and fname != "features.csv":
            tracking.log_table(table, f"tables/{fname[: -len('.csv')]}.json")
    _log_fold_runs(report, run_id)
    dataset, dataset_name = dataset_ref(cfg)
    tracking.log_dataset(dataset, name=dataset_name, digest=fingerprint)
    tracking.log_artifacts(art)
    model_uri = tracking.log_model(
        model,
        input_example=as_model_input(hold[td.features].head(5), td.categorical),
        pip_requirements=_pip_requirements(),
        entry=ENTRY,
        code_path=Path(tracking.__file__).resolve().parent,
    )
    h = holdout["churn"]
    lg, b = h[main], h.get("logistic_regression", {})
    today = h.get(LIGHTGBM, {})
    exp = (
        f"expansion PR-AUC {holdout['expansion'][LIGHTGBM]['pr_auc']:.3f}"
        if "expansion" in holdout
        else "expansion not trained"
    )
    ew = warning["early_warning"].set_index("score") if warning else pd.DataFrame()
    twelve = metrics.get("backtest_time_to_churn_365d_pr_auc", float("nan")) if warning else None
    description = (
        f"{'time to churn' if warning else f'churn ({td.horizon_days}-day classifier)'} + "
        f"{'expansion' if 'expansion' in label_cols else 'no expansion'} on "
        f"{data_source(cfg)} ({accounts:,} accounts, data to {last_day:%Y-%m-%d}, {len(td.cutoffs)} cutoffs); "
        f"holdout {td.horizon_days}-day PR-AUC {lg['pr_auc']:.3f} ({td.horizon_days}-day classifier "
        f"{today.get('pr_auc', float('nan')):.3f}); {_early_words(twelve, ew)}; {reason}"
    )
    tracking.set_description(description)
    summary = (
        f"{name} v{{version}}: holdout churn PR-AUC {lg['pr_auc']:.3f} "
        f"({td.horizon_days}-day classifier {today.get('pr_auc', float('nan')):.3f}, logistic "
        f"{b.get('pr_auc', float('nan')):.3f}, health score "
        f"{h.get('health_score', {}).get('pr_auc', float('nan')):.3f}), "
        + _gain_words(report["headline"], td.horizon_days)
        + f"top-decile lift {lg['top_decile_lift']:.1f}x, Brier {lg['brier']:.4f}; "
        + _early_words(twelve, ew)
        + f"; {exp}; {'promoted to champion' if promote else 'stays challenger'} ({reason}); "
        f"{run.seconds():.0f}s, run {run_id[:8]}, report {paths.train_dir}"
    )
    version_tags = {
        "promotion_reason": reason,
        "run_id": run_id,
        "data_fingerprint": fingerprint,
        **{k: f"{v:.4f}" for k, v in report["headline"].items()},
    }
    rec = {
        "artifacts": art,
        "description": description,
        "version_tags": version_tags,
        "report": files["report.json"],
        "figures": figures,
        "images": images,
        "tables": sorted(k for k in files if k.endswith(".csv")),
    }
    result = TrainResult(run_id, "", promote, reason, holdout, bt.metrics(), folds, paths.train_dir, summary)
    result.extra = {"warning": warning}
    return result, model_uri, rec


def _log_fold_runs(report: dict, parent_id: str) -> None:
    """One child run per backtest fold: its cutoffs as params, its figures under the headline's
    ``backtest/`` names (the parent's are the folds pooled)."""
    for f in report["folds"]:
        k = f["fold"]
        with tracking.run(
            f"fold-{k}",
            nested=True,
            tags={"kind": "backtest_fold", "fold": k, "holdout": k == 0, "parent_run": parent_id},
            description=f"backtest fold {k}{' (the holdout)' if k == 0 else ''}: fit {f['fit']}, "
            f"calibrate {f['calibrate']}, test {f['test']}",
        ):
            tracking.log_params(
                {"fit_cutoffs": f["fit"], "calibration_cutoffs": f["calibrate"], "test_cutoffs": f["test"]}
            )
            tracking.log_metrics(report["fold_metrics"].get(str(k), {}))


def _gain_words(headline: dict, horizon_days: int) -> str:
    """The gain over the classifier on the same target and rows, with its bootstrap interval (or nothing)."""
    key = f"holdout/churn_pr_auc_gain_vs_{horizon_days}d_classifier"
    if key not in headline or f"{key}_low" not in headline:
        return ""
    return (
        f"gain over the classifier {headline[key]:+.3f} "
        f"[95% {headline[key + '_low']:+.3f}..{headline[key + '_high']:+.3f}], "
    )


def _early_words(twelve: float | None, ew: pd.DataFrame) -> str:
    """The 12-month figures of the summary line, or why they are missing (no NaN in a sentence)."""
    if twelve is None:
        return "no time-to-churn model (this history could not train one): the 90-day classifier tiers"
    if twelve != twelve:
        return (
            "12-month figures not observable: no test cutoff's 12 months fall inside the data "
            "(more history or folds reaching a year back are needed)"
        )
    words = f"12-month PR-AUC {twelve:.3f}"
    if len(ew) > 1 and ew.iloc[1]["roc_auc"] == ew.iloc[1]["roc_auc"]:
        words += (
            f", renewing in 3-12 months ROC-AUC {ew.iloc[1]['roc_auc']:.3f} (90-day model {ew.iloc[0]['roc_auc']:.3f})"
        )
    return words


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _pip_requirements() -> list[str]:
    return [f"{p}=={_version(p)}" for p in _RUNTIME_PACKAGES if _version(p) != "unknown"]
