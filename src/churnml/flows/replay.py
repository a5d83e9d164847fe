"""``churnml replay --as-of DATE``: what would churnml have said on DATE, and was it right?

The tables are cut as the contract's point-in-time rules say (only what was known
before DATE: :meth:`churnml.dataset.Dataset.open` with ``as_of``); the same recipe as
``churnml train`` is backtested and fitted on that past alone (nothing is registered),
the base is scored as of DATE, and the baselines are fitted on the same past. When the
outcome window has passed (DATE + horizon is inside the data), the full history says who
churned: how many churners were high risk, the ARR they carried, PR-AUC and lift beside
the baselines. Everything goes to ``<output_dir>/replay/<DATE>/`` (published in one step)
and is logged to MLflow as a ``replay`` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.features import build_features
from churnml.flows.common import Run
from churnml.flows.train import prepare
from churnml.io import artifacts
from churnml.io.outputs import check_target, ensure_writable, publish_dir
from churnml.labels import make_labels
from churnml.modeling.backtest import HEALTH, LOGISTIC, fit_baselines, run_backtest
from churnml.modeling.folds import plan_folds
from churnml.modeling.replay import replay_evaluation, replay_text
from churnml.modeling.training import collect_metrics, cutoff_dates, fit_final_model, merge_params
from churnml.scoring.score import probability_quantiles, score_dataset, tier_rule


@dataclass
class ReplayResult:
    as_of: pd.Timestamp
    scores: pd.DataFrame
    outcomes: pd.DataFrame | None
    evaluation: dict | None
    folder: Path
    summary: str


def run_replay(run: Run, *, as_of, out: Path | None = None) -> ReplayResult:
    cfg, tcfg = run.cfg, run.cfg.train
    as_of = pd.Timestamp(as_of).normalize()
    folder = Path(out) if out else run.paths.replay_dir / f"{as_of:%Y-%m-%d}"
    check_target(folder, "replay")
    ensure_writable(folder.parent)
    h = cfg.labels.horizon_days
    with run.open_dataset() as full:
        last = full.last_date()
        if as_of > last + pd.Timedelta(days=1):
            raise ChurnmlError(f"--as-of {as_of:%Y-%m-%d} is after the data end ({last:%Y-%m-%d}): replay looks back; "
                               f"to score today use `churnml score`")
        outcome_known = as_of + pd.Timedelta(days=h) <= last
        outcome = make_labels(full, [as_of], horizon_days=h, uplift=cfg.labels.uplift) if outcome_known else None
    with Dataset.open(cfg.data_dir, validate=False, as_of=as_of, attributes=tuple(cfg.contract.account_attributes),
                      threads=tcfg.threads, memory_limit=cfg.engine.memory_limit) as past:
        run.echo(f"replay as of {as_of:%Y-%m-%d}: training on what was known before it "
                 f"({past.first_subscription_date():%Y-%m-%d}..{past.last_date():%Y-%m-%d})")
        td = prepare(run, past)
        folds, shrunk = plan_folds(td.D.index.get_level_values("cutoff").unique(), horizon_days=h,
                                   n_folds=tcfg.folds, test_cutoffs=tcfg.test_cutoffs,
                                   calibration_cutoffs=tcfg.calibration_cutoffs, allow_no_gap=td.allow_no_gap)
        if shrunk:
            run.echo(shrunk)
        params, _ = merge_params(run.tuned_params(), tcfg.params)
        bt = run_backtest(td.D, features=td.features, categorical=td.categorical, folds=folds,
                          label_cols=td.label_cols, params=params, seed=tcfg.seed, calibration=tcfg.calibration,
                          threads=tcfg.threads, progress=run.progress)
        model, fit_rows, cal_rows = fit_final_model(td, params, seed=tcfg.seed, calibration=tcfg.calibration,
                                                    threads=tcfg.threads, calibration_cutoffs=len(folds[0].calibrate))
        model.settings.update(horizon_days=h, uplift=td.uplift, train_cutoffs=cutoff_dates(fit_rows),
                              calibration_cutoffs=cutoff_dates(cal_rows))
        model.settings["churn_quantiles"] = probability_quantiles(model.predict_target(cal_rows[td.features], "churn"))
        tiers = run.tiers(model)
        X = build_features(past, [as_of])
        if X.empty:
            raise ChurnmlError(f"no account was paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to replay")
        result = score_dataset(past, model, model_name=f"replay-{as_of:%Y-%m-%d}", model_version="replay",
                               as_of=as_of, top=cfg.scoring.top_drivers, playbook=run.playbook(),
                               expansion_share=cfg.scoring.expansion_explain_share, tier_thresholds=tiers,
                               drift_threshold=cfg.scoring.drift_psi_threshold, X=X)
        labelled = td.D
        numeric = [c for c in td.features if c not in td.categorical]
        base = fit_baselines(labelled[td.features], labelled[td.label_cols["churn"]].astype(int).to_numpy(),
                             numeric=numeric, categorical=td.categorical, seed=tcfg.seed, target="churn")
        Xa = X.droplevel("cutoff")
        s = result.scores.set_index("account_id")
        outcomes = pd.DataFrame({"account_id": Xa.index, "p_churnml": s.loc[Xa.index, "churn_probability"].to_numpy(),
                                 "p_logistic_regression": base[LOGISTIC](Xa[td.features]),
                                 "p_health_score": base[HEALTH](Xa[td.features]),
                                 "risk_tier": s.loc[Xa.index, "risk_tier"].to_numpy(),
                                 "arr": s.loc[Xa.index, "arr"].to_numpy()})
    evaluation, text = None, None
    rule = tier_rule(tiers, f"chance of churning within {h} days")
    if outcome is not None:
        y = outcome.droplevel("cutoff").reindex(outcomes["account_id"])[td.label_cols["churn"]]
        outcomes["churned"] = y.fillna(False).astype(bool).to_numpy()
        evaluation = replay_evaluation(outcomes, h)
        text = replay_text(evaluation, as_of, rule)
    else:
        ends = as_of + pd.Timedelta(days=h - 1)
        text = (f"# What churnml would have said on {as_of:%Y-%m-%d}\n\nThe outcome window ends on {ends:%Y-%m-%d}, "
                f"after the data ({last:%Y-%m-%d}): what happened is not known yet.\n")
    metrics, _ = collect_metrics(bt)
    files = {"scores.parquet": result.scores, "scores.csv": result.scores, "drivers.parquet": result.drivers,
             "outcomes.csv": outcomes, "report.md": text, "backtest_metrics.csv": bt.metrics().round(5).reset_index(),
             "replay.json": {"as_of": f"{as_of:%Y-%m-%d}", "horizon_days": h, "tiers": tiers, "tier_rule": rule,
                             "trained_on": {"fit": model.settings["train_cutoffs"],
                                            "calibrate": model.settings["calibration_cutoffs"]},
                             "evaluation": evaluation}}
    with publish_dir(folder, kind="replay") as tmp:
        artifacts.write_files(files, tmp)
    run.tracking()
    with tracking.run(f"replay-{as_of:%Y-%m-%d}", tags={"kind": "replay", "as_of": f"{as_of:%Y-%m-%d}"}):
        tracking.log_metrics({k: v for k, v in metrics.items() if k.startswith("holdout_churn_lightgbm")})
        if evaluation:
            tracking.log_metrics({"replay_churned": evaluation["churned"],
                                  "replay_churned_in_high": evaluation["churned_in_high"],
                                  "replay_arr_caught_high": evaluation["arr_caught_high"],
                                  **{f"replay_{m}_{k}": r[k] for m, r in evaluation["models"].items()
                                     for k in ("pr_auc", "roc_auc", "top_decile_lift")}})
        tracking.log_text(text, "report.md")
    if evaluation:
        m = evaluation["models"]
        summary = (f"replay as of {as_of:%Y-%m-%d}: {evaluation['churned_in_high']} of {evaluation['churned']} "
                   f"accounts that churned within {h} days were high risk ({_pct(evaluation['recall_high'])}, "
                   f"{_pct(evaluation['arr_caught_high'])} of the ARR lost); PR-AUC {m['churnml']['pr_auc']:.3f} "
                   f"(logistic {m['logistic_regression']['pr_auc']:.3f}, health score "
                   f"{m['health_score']['pr_auc']:.3f}), top-decile lift {m['churnml']['top_decile_lift']:.1f}x; "
                   f"{run.seconds():.0f}s -> {folder}")
    else:
        summary = (f"replay as of {as_of:%Y-%m-%d}: scored {len(result.scores):,} accounts "
                   f"({int((result.scores['risk_tier'] == 'high').sum()):,} high risk); the outcome is not known yet; "
                   f"{run.seconds():.0f}s -> {folder}")
    return ReplayResult(as_of, result.scores, outcomes, evaluation, folder, summary)


def _pct(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.0%}"

