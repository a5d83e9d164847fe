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

import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.errors import ChurnmlError
from churnml.flows.common import Run, data_source, dataset_ref
from churnml.io import artifacts
from churnml.io.outputs import check_target, ensure_writable, publish_dir, write_json, write_text
from churnml.modeling.backtest import LIGHTGBM, TIME_TO_CHURN, run_backtest, run_survival_backtest
from churnml.modeling.early_warning import add_time_to_churn, evaluate, warning_metrics
from churnml.modeling.folds import Fold, plan_folds
from churnml.modeling.model import lgb_params
from churnml.modeling.promotion import holdout_metrics, promotion_decision
from churnml.modeling.report import render_report, report_figures, report_files
from churnml.modeling.survival import SurvivalModel, churn_events
from churnml.modeling.training import (as_model_input, choose_cutoffs, collect_metrics, cutoff_dates,
                                       fit_final_model, merge_params, span, supported_targets, training_data)
from churnml.scoring import reasons as R
from churnml.scoring.drift import reference_profile
from churnml.scoring.risk import risk_words
from churnml.scoring.score import healthy_levels_state, model_inputs, probability_quantiles, tier_rule

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
    """The whole pipeline for one validated config (see the module docstring). The MLflow run spans
    it all (its duration is the training's), and ends FAILED on any error or interrupt."""
    cfg, paths = run.cfg, run.paths
    check_target(paths.train_dir, "train")
    ensure_writable(paths.train_dir.parent)
    run.tracking()
    started = pd.Timestamp.now()
    with tracking.run(f"train-{started:%Y%m%d-%H%M%S}", tags={"kind": "training"},
                      description=f"churnml training on {data_source(cfg)} (running)") as active:
        result, model_uri, rec = _train(run, active.info.run_id)
    record = {"run_id": result.run_id, "model": cfg.mlflow.model_name, "version": None,
              "promoted": result.promoted, "reason": result.reason}
    with publish_dir(paths.train_dir, kind="train") as out:
        shutil.copytree(rec["artifacts"], out, dirs_exist_ok=True)
        write_json(record, out / "run.json")
    shutil.rmtree(rec["artifacts"], ignore_errors=True)
    name = cfg.mlflow.model_name
    version = tracking.register(model_uri, name, description=rec["description"], tags=rec["version_tags"])
    tracking.describe_model(name, "churnml: each paying account's churn curve (30 days to 12 months), its chance "
                                  "of not renewing at the next renewal and of expanding, with the reasons. Aliases: "
                                  "champion (scores), challenger (newest).")
    if result.promoted:
        tracking.set_alias(name, tracking.CHAMPION, version)
    tracking.log_to_run(result.run_id, tags={"registered_version": version})
    write_json({**record, "version": version}, paths.train_dir / "run.json")
    report = {**rec["report"], "version": version}
    write_json(report, paths.train_dir / "report.json")
    write_text(render_report(report, rec["figures"], rec["tables"]), paths.train_dir / "report.html")
    tracking.log_to_run(result.run_id, text={"report.html": (paths.train_dir / "report.html").read_text()})
    result.version = version
    result.summary = result.summary.replace("{version}", version)
    return result


def _train(run: Run, run_id: str):
    """Everything inside the MLflow run: data, backtests, final models, report files, logging."""
    cfg, tcfg, echo, paths = run.cfg, run.cfg.train, run.echo, run.paths
    with run.open_dataset() as ds:
        td = prepare(run, ds)
        subs = ds.subscriptions
        last_day = ds.last_date()
        fingerprint = run.fingerprint(ds)
        data_rows = sum(r.n_rows for r in ds.raw.values())
        accounts = int(ds.raw["accounts"].n_rows)
        defs = {i.name: i for i in td.definitions}
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
    f = fit_models(run, td, subs, last_day, folds, params, settings, defs)
    bt, sv, warning, model, holdout_model, label_cols = f.bt, f.sv, f.warning, f.model, f.holdout_model, f.label_cols
    metrics, holdout = collect_metrics(bt)
    metrics.update(warning_metrics(warning) if warning else {})
    main = TIME_TO_CHURN if TIME_TO_CHURN in holdout["churn"] else LIGHTGBM

    name = cfg.mlflow.model_name
    hold = td.D[td.D.index.get_level_values("cutoff").isin(list(folds[0].test))]
    champ = tracking.load_holdout_model(name, tracking.CHAMPION)
    champion = None if champ is None else holdout_metrics(champ, hold, td.label_cols["churn"])
    promote, reason = promotion_decision(holdout["churn"][main], champion)

    params_log = {**{f"lgb_{k}": v for k, v in lgb_params(params, tcfg.seed, tcfg.threads).items()},
                  "params_source": params_source, "horizon_days": td.horizon_days, "uplift": td.uplift,
                  "folds": len(folds), "test_cutoffs": len(folds[0].test),
                  "calibration_cutoffs": len(folds[0].calibrate), "calibration": tcfg.calibration,
                  "seed": tcfg.seed, "n_features": len(td.features), "data_dir": data_source(cfg),
                  "cutoffs": len(td.cutoffs),
                  "targets": ",".join((["time_to_churn"] if sv is not None else []) + list(model.targets)),
                  "holdout_cutoffs": settings["holdout_cutoffs"],
                  "final_train_cutoffs": f"{model.settings['train_cutoffs'][0]}..{model.settings['train_cutoffs'][-1]}",
                  "final_calibration_cutoffs": ",".join(model.settings["calibration_cutoffs"]),
                  **{f"best_iteration_{t}": m.best_iteration for t, m in model.targets.items()},
                  **{f"calibration_chosen_{t}": m.calibrator.method for t, m in model.targets.items()}}
    tags = {"data_fingerprint": fingerprint, "data_rows": data_rows, "labelled_rows": len(td.D),
            "churnml_version": _version("churnml"), "kind": "training",
            "promotion": "champion" if promote else "challenger", "promotion_reason": reason}
    context = {"model_name": name, "run_id": run_id, "data_dir": data_source(cfg), "accounts": accounts,
               "data_rows": data_rows, "fingerprint": fingerprint, "promote": promote, "reason": reason,
               "champion": champion, "tier_rule": tier_rule(run.tiers(model), risk_words(model)),
               "tier_high": run.tiers(model)["high"],
               "last_day": f"{last_day:%Y-%m-%d}"}
    files = report_files(bt, td, model, holdout_model, folds, hold, params, params_source, metrics,
                         warning=warning, context=context)
    figures = report_figures(files)
    files["config.json"] = cfg.model_dump(mode="json")
    files["promotion.txt"] = reason + "\n"
    art = Path(tempfile.mkdtemp(prefix="churnml-train-"))
    artifacts.write_files(files, art)
    artifacts.save_model(holdout_model, art / "holdout_model")
    for k, fm in bt.models.items():  # every fold's bundle: the backfill scores past dates with them
        if sv is not None:
            fm.targets.pop("churn", None)
            fm.survival = sv.models[k]
        fm.settings.update(horizon_days=td.horizon_days, first_test_cutoff=f"{folds[k].test[0]:%Y-%m-%d}")
        artifacts.save_model(fm, art / "fold_models" / f"fold_{k}")
    tracking.log_params(params_log)
    tracking.set_tags(tags)
    tracking.log_metrics(metrics)
    dataset, dataset_name = dataset_ref(cfg)
    tracking.log_dataset(dataset, name=dataset_name, digest=fingerprint)
    tracking.log_artifacts(art)
    model_uri = tracking.log_model(model, input_example=as_model_input(hold[td.features].head(5), td.categorical),
                                   pip_requirements=_pip_requirements(),
                                   code_path=Path(tracking.__file__).resolve().parent)
    h = holdout["churn"]
    lg, b = h[main], h.get("logistic_regression", {})
    today = h.get(LIGHTGBM, {})
    exp = (f"expansion PR-AUC {holdout['expansion'][LIGHTGBM]['pr_auc']:.3f}" if "expansion" in holdout
           else "expansion not trained")
    ew = warning["early_warning"].set_index("score") if warning else pd.DataFrame()
    twelve = metrics.get("backtest_time_to_churn_365d_pr_auc", float("nan")) if warning else None
    description = (f"{'time to churn' if warning else 'churn (90-day classifier)'} + "
                   f"{'expansion' if 'expansion' in label_cols else 'no expansion'} on "
                   f"{data_source(cfg)} ({accounts:,} accounts, data to {last_day:%Y-%m-%d}, {len(td.cutoffs)} cutoffs); "
                   f"holdout {td.horizon_days}-day PR-AUC {lg['pr_auc']:.3f} (90-day classifier "
                   f"{today.get('pr_auc', float('nan')):.3f}); {_early_words(twelve, ew)}; {reason}")
    tracking.set_description(description)
    summary = (f"{name} v{{version}}: holdout churn PR-AUC {lg['pr_auc']:.3f} "
               f"(90-day classifier {today.get('pr_auc', float('nan')):.3f}, logistic "
               f"{b.get('pr_auc', float('nan')):.3f}, health score "
               f"{h.get('health_score', {}).get('pr_auc', float('nan')):.3f}), "
               f"top-decile lift {lg['top_decile_lift']:.1f}x, Brier {lg['brier']:.4f}; "
               + _early_words(twelve, ew)
               + f"; {exp}; {'promoted to champion' if promote else 'stays challenger'} ({reason}); "
               f"{run.seconds():.0f}s, run {run_id[:8]}, report {paths.train_dir}")
    version_tags = {"promotion_reason": reason, "run_id": run_id, "data_fingerprint": fingerprint,
                    "holdout_churn_pr_auc": f"{lg['pr_auc']:.4f}",
                    "backtest_churn_365d_pr_auc": "n/a" if twelve is None else f"{twelve:.4f}"}
    rec = {"artifacts": art, "description": description, "version_tags": version_tags, "report": files["report.json"],
           "figures": figures, "tables": sorted(k for k in files if k.endswith(".csv"))}
    result = TrainResult(run_id, "", promote, reason, holdout, bt.metrics(), folds, paths.train_dir, summary)
    result.extra = {"warning": warning}
    return result, model_uri, rec


@dataclass
class Fitted:
    """What training fits: the backtests, the early-warning figures, the final and holdout bundles."""

    bt: object
    sv: object
    warning: dict
    model: object
    holdout_model: object
    label_cols: dict
    fit_rows: pd.DataFrame
    cal_rows: pd.DataFrame


def fit_models(run: Run, td, subs: pd.DataFrame, last_day: pd.Timestamp, folds, params: dict, settings: dict,
               defs: dict) -> Fitted:
    """The recipe on prepared training data: the 90-day classifier and the baselines on every fold, the
    time-to-churn model on every fold, the early-warning figures, then the final bundle (time to churn
    on every cutoff as known on ``last_day``, expansion on the newest labels) and the holdout bundle
    (fold 0's models, which never saw the holdout cutoffs). Used by ``train`` and ``replay``."""
    cfg, tcfg, echo = run.cfg, run.cfg.train, run.echo
    label_cols = {"churn": td.label_cols["churn"], **({"expansion": td.label_cols["expansion"]}
                                                      if "expansion" in td.label_cols else {})}
    bt = run_backtest(td.D, features=td.features, categorical=td.categorical, folds=folds, label_cols=label_cols,
                      params=params, seed=tcfg.seed, calibration=tcfg.calibration, threads=tcfg.threads,
                      progress=run.progress, settings=settings)
    events = churn_events(subs, td.X.index.get_level_values("cutoff").unique(), last_day)
    try:
        sv = run_survival_backtest(td.X, subs, folds, categorical=td.categorical, params=params, seed=tcfg.seed,
                                   threads=tcfg.threads, progress=run.progress)
        # the final bundle: time to churn on every cutoff as known today, expansion on the newest labels
        survival = SurvivalModel(params, seed=tcfg.seed, threads=tcfg.threads).fit(
            td.X, events, categorical=td.categorical, last_day=last_day)
    except ChurnmlError as e:  # a history the hazard model cannot learn from: the 90-day classifier tiers
        echo(f"time to churn skipped: {e}. The {td.horizon_days}-day classifier gives the risk and its tiers "
             f"instead (no 12-month or next-renewal probability)")
        sv = survival = None
    warning = None
    if sv is not None:
        bt = add_time_to_churn(bt, sv, td.horizon_days)
        tiers = cfg.scoring.tiers
        warning = evaluate(bt, sv, events, td.X, horizon_days=td.horizon_days,
                           tier_high=tiers.high_level if tiers.method == "levels" else None,
                           high_share=tiers.high_share)
    model, fit_rows, cal_rows = fit_final_model(td, params, seed=tcfg.seed, calibration=tcfg.calibration,
                                                threads=tcfg.threads, calibration_cutoffs=len(folds[0].calibrate),
                                                targets=[t for t in label_cols if t != "churn" or survival is None])
    model.survival = survival
    echo("final models: " + (f"time to churn on {td.X.index.get_level_values('cutoff').nunique()} cutoffs as "
                              f"known on {last_day:%Y-%m-%d}; " if survival is not None else "")
         + f"{'/'.join(model.targets)} fit {span(fit_rows)}, calibrate {span(cal_rows)}")
    model.settings.update(settings, train_cutoffs=cutoff_dates(fit_rows), calibration_cutoffs=cutoff_dates(cal_rows))
    # behavioural day counts (recency, lateness): a week is the smallest change that matters for drift
    week = {n: 7.0 for n, i in defs.items() if i.unit.startswith("days") and R.component_of(n, defs) != R.TIMING}
    model.settings["reference"] = reference_profile(cal_rows, td.features, td.categorical, resolution=week)
    model.settings["inputs"] = model_inputs(td.context, td.D, td.features, td.categorical)
    model.settings["risk_quantiles"] = probability_quantiles(
        survival.predict_risk(cal_rows[td.features]) if survival is not None
        else model.predict_target(cal_rows[td.features], "churn"))
    healthy = ~cal_rows[td.label_cols["churn"]].astype(bool).to_numpy()
    model.settings["healthy_levels"] = healthy_levels_state(R.healthy_levels(cal_rows[td.features], healthy, defs))
    holdout_model = bt.models[0]
    if sv is not None:
        holdout_model.targets.pop("churn", None)
        holdout_model.survival = sv.models[0]
    holdout_model.settings.update(horizon_days=td.horizon_days)
    return Fitted(bt, sv, warning, model, holdout_model, label_cols, fit_rows, cal_rows)


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


def _early_words(twelve: float, ew: pd.DataFrame) -> str:
    """The 12-month figures of the summary line, or why they are missing (no NaN in a sentence)."""
    if twelve is None:
        return "no time-to-churn model (this history could not train one): the 90-day classifier tiers"
    if twelve != twelve:
        return ("12-month figures not observable: no test cutoff's 12 months fall inside the data "
                "(more history or folds reaching a year back are needed)")
    words = f"12-month PR-AUC {twelve:.3f}"
    if len(ew) > 1 and ew.iloc[1]["roc_auc"] == ew.iloc[1]["roc_auc"]:
        words += (f", renewing in 3-12 months ROC-AUC {ew.iloc[1]['roc_auc']:.3f} "
                  f"(90-day model {ew.iloc[0]['roc_auc']:.3f})")
    return words


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def _pip_requirements() -> list[str]:
    return [f"{p}=={_version(p)}" for p in _RUNTIME_PACKAGES if _version(p) != "unknown"]
