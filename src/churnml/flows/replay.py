"""``churnml replay --as-of DATE``: what would churnml have said on DATE, and was it right?

The tables are cut as the contract's point-in-time rules say (only what was known
before DATE: :meth:`churnml.flows.common.Run.open_dataset` with ``as_of``); the recipe of
``churnml train`` (:func:`churnml.modeling.recipe.run`: the 90-day classifier and the
baselines backtested on every fold, the time-to-churn model, the final bundle with its
risk quantiles and healthy levels) is fitted on that past alone, nothing is registered,
and the base is scored as of DATE exactly as ``churnml score`` would have: the risk
probability (before the next renewal, else within 12 months) sets the tier. The
logistic regression and the health score are fitted on the same past.

The full history then says what happened (:mod:`churnml.modeling.replay`): churn within
the labels' horizon (the 90-day probability beside the baselines), churn before the next
renewal + grace or within 12 months (the risk probability), and churn within 12 months.
A window the data do not cover yet is reported as not observable, never read as
"stayed". Everything goes to ``<output_dir>/replay/<DATE>/`` (published in one step) and
is logged to MLflow as a ``replay`` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.errors import ChurnmlError
from churnml.features import build_features
from churnml.flows.common import Run
from churnml.io import artifacts
from churnml.io.outputs import check_target, ensure_writable, publish_dir
from churnml.modeling import recipe
from churnml.modeling.backtest import HEALTH, LOGISTIC, collect_metrics, fit_baselines
from churnml.modeling.early_warning import warning_metrics
from churnml.modeling.events import churn_events
from churnml.modeling.replay import flat_metrics, replay_evaluation, replay_outcomes, replay_text
from churnml.scoring.score import score_dataset
from churnml.scoring.tiers import tier_rule


@dataclass
class ReplayResult:
    as_of: pd.Timestamp
    scores: pd.DataFrame
    outcomes: pd.DataFrame | None
    evaluation: dict | None
    folder: Path
    summary: str


def run_replay(run: Run, *, as_of, out: Path | None = None) -> ReplayResult:
    """Train on what was known before ``as_of``, score as of it, judge on the full history (see the
    module docstring); publish the folder and log the MLflow run."""
    cfg = run.cfg
    as_of = pd.Timestamp(as_of).normalize()
    folder = Path(out) if out else run.paths.replay_dir / f"{as_of:%Y-%m-%d}"
    check_target(folder, "replay")
    ensure_writable(folder.parent)
    run.check_settings()
    h = cfg.labels.horizon_days
    with run.open_dataset() as full:
        last = full.last_date()
        if as_of > last + pd.Timedelta(days=1):
            raise ChurnmlError(
                f"--as-of {as_of:%Y-%m-%d} is after the data end ({last:%Y-%m-%d}): replay looks back; "
                f"to score today use `churnml score`"
            )
        events = churn_events(full.subscriptions, [as_of], last)
    spec = run.recipe_spec()
    with run.open_dataset(validate=False, as_of=as_of) as past:
        past_last = past.last_date()
        run.echo(
            f"replay as of {as_of:%Y-%m-%d}: training on what was known before it "
            f"({past.first_subscription_date():%Y-%m-%d}..{past_last:%Y-%m-%d})"
        )
        fitted = recipe.run(past, spec, progress=run.progress, notes=run.echo)
        td, model = fitted.td, fitted.model
        tiers = run.tiers(model)
        X = build_features(past, [as_of])
        if X.empty:
            raise ChurnmlError(f"no account was paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to replay")
        result = score_dataset(
            past,
            model,
            run.scoring_spec(model),
            model_name=f"replay-{as_of:%Y-%m-%d}",
            model_version="replay",
            as_of=as_of,
            X=X,
        )
        numeric = [c for c in td.features if c not in td.categorical]
        base = fit_baselines(
            td.D[td.features],
            td.D[td.label_cols["churn"]].astype(int).to_numpy(),
            numeric=numeric,
            categorical=td.categorical,
            seed=spec.seed,
            target="churn",
        )
        Xa = X.droplevel("cutoff")
        Xa = Xa.set_axis(Xa.index.astype(str))
        s = result.scores.set_index("account_id").loc[Xa.index]
        scored = pd.DataFrame(
            {
                "account_id": Xa.index,
                "p_churnml": s["churn_probability"].to_numpy(),
                "p_churnml_365d": s["churn_probability_365d"].to_numpy(),
                "p_risk_probability": s["risk_probability"].to_numpy(),
                "p_logistic_regression": base[LOGISTIC](Xa[td.features]),
                "p_health_score": base[HEALTH](Xa[td.features]),
                "risk_tier": s["risk_tier"].to_numpy(),
                "arr": s["arr"].to_numpy(),
                "risk_basis": s["risk_basis"].to_numpy(),
            }
        )
        window = pd.Series(s["risk_window_days"].to_numpy(float), index=Xa.index)
    outcomes = replay_outcomes(scored, events, horizon_days=h, data_end=last, risk_window_days=window)
    rule = tier_rule(tiers, model.risk_words())
    evaluation = replay_evaluation(outcomes, h, as_of=as_of, data_end=last)
    text = replay_text(evaluation, as_of, rule, h)
    metrics, _ = collect_metrics(fitted.backtest)
    metrics.update(warning_metrics(fitted.warning) if fitted.warning else {})
    files = {
        "scores.parquet": result.scores,
        "scores.csv": result.scores,
        "drivers.parquet": result.drivers,
        "outcomes.csv": outcomes,
        "report.md": text,
        "backtest_metrics.csv": fitted.backtest.metrics().round(5).reset_index(),
        "replay.json": {
            "as_of": f"{as_of:%Y-%m-%d}",
            "horizon_days": h,
            "tiers": tiers,
            "tier_rule": rule,
            "trained_on": {
                "data_until": f"{past_last:%Y-%m-%d}",
                "fold_cutoffs": {
                    "train_cutoffs": recipe.cutoff_dates_of(fitted.folds[0].fit),
                    "calibration_cutoffs": recipe.cutoff_dates_of(fitted.folds[0].calibrate),
                    "holdout_cutoffs": list(model.card.holdout_cutoffs),
                },
                "risk_model": f"time to churn on every cutoff as known on {past_last:%Y-%m-%d}",
                "expansion_fit": list(model.card.fit_cutoffs),
                "expansion_calibrate": list(model.card.calibration_cutoffs),
            },
            "evaluation": evaluation,
        },
    }
    with publish_dir(folder, kind="replay") as tmp:
        artifacts.write_files(files, tmp)
    run.tracking("replay")
    with tracking.run(f"replay-{as_of:%Y-%m-%d}", tags={"kind": "replay", "as_of": f"{as_of:%Y-%m-%d}"}):
        tracking.log_metrics({k: v for k, v in metrics.items() if k.startswith("holdout_churn_")})
        tracking.log_metrics(flat_metrics(evaluation))
        tracking.log_text(text, "report.md")
    return ReplayResult(
        as_of,
        result.scores,
        outcomes,
        evaluation,
        folder,
        _summary(evaluation, h, len(result.scores), run.seconds(), folder),
    )


def _summary(ev: dict, h: int, n: int, seconds: float, folder: Path) -> str:
    """One line per window for the terminal."""
    head = f"replay as of {ev['as_of']}: scored {n:,} accounts ({ev['high_risk']:,} high risk)"
    parts = []
    for key, r in ev["windows"].items():
        if not r["observable"]:
            parts.append(f"{r['words']}: {r['not_observable']}")
            continue
        m = r["models"]
        lead = "risk_probability" if key != f"{h}d" else "churnml"
        base = [
            f"{k.replace('_', ' ')} {m[k]['roc_auc']:.3f}"
            for k in ("logistic_regression", "health_score")
            if k in m and m[k]["roc_auc"] is not None
        ]
        auc = m.get(lead, {}).get("roc_auc")
        parts.append(
            f"{r['churned_in_high']} of {r['churned']} accounts that {r['words']} were high risk "
            f"({_pct(r['recall_high'])}, {_pct(r['arr_caught_high'])} of the ARR lost; outcome known for "
            f"{r['accounts_known']:,}); ROC-AUC "
            f"{'n/a' if auc is None else f'{auc:.3f}'} ({lead.replace('_', ' ')}"
            + (f"; {', '.join(base)}" if base else "")
            + ")"
        )
    return head + "\n  " + "\n  ".join(parts) + f"\n  {seconds:.0f}s -> {folder}"


def _pct(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.0%}"
