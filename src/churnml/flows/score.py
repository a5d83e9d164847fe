"""``churnml score``: score every paying account with the registered model, explain, publish, log.

One run's outputs appear together or not at all: the scores (Parquet and CSV), the
drivers, the drift table, a manifest and the run's ledger rows are written into a new
folder that replaces ``<output_dir>/scores`` (or ``--out DIR``) in one step. The run's
ledger rows are then added to the base's ledger as their own part file
(``<output_dir>/ledger/<base>/part-*.parquet``), so concurrent runs never lose each
other's rows; a run killed between the two steps is completed by the next run, which
finds its rows in the published folder. ``engine="spark"`` computes features, scores
and explanations on Spark (same results) and writes the same outputs here.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.errors import ChurnmlError
from churnml.features._engine import finish_features
from churnml.flows.common import (
    Run,
    base_id,
    check_as_of,
    check_base_identity,
    data_source,
    ledger_folder,
    ledger_has,
    read_ledger,
    write_ledger_part,
)
from churnml.io import artifacts
from churnml.io.outputs import check_target, csv_text, ensure_writable, publish_dir, read_json, read_table_file
from churnml.modeling.drift import drift_table
from churnml.progress import steps
from churnml.scoring.reasons import play_counts
from churnml.scoring.score import ScoringResult, ScoringSpec, add_previous, ledger_rows, score_dataset, scoring_inputs
from churnml.scoring.tiers import tier_texts
from churnml.spark import local_session, score_spark

FILES = {
    "scores": "scores.parquet",
    "scores_csv": "scores.csv",
    "drivers": "drivers.parquet",
    "drift": "drift.csv",
    "plays": "plays.csv",
    "ledger_part": "ledger_part.parquet",
    "manifest": "manifest.json",
}


def output_paths(folder: Path) -> dict[str, Path]:
    """The files of a scoring run's folder."""
    return {k: Path(folder) / v for k, v in FILES.items()} | {"folder": Path(folder)}


RUN_ID = re.compile(r"^[0-9a-f]{12}$")


def complete_ledger(folder: Path, ledger_dir: Path, base: str) -> bool:
    """Add a published run's ledger rows to this base's ledger (``ledger_dir``) when a killed run left them out.

    Nothing read from the scores folder chooses where this writes: the rows go to ``ledger_dir`` (the
    configured base's ledger) only when the folder's manifest names that same ``base`` and a run id
    churnml makes; a manifest of another base, or one not in churnml's form, is left alone."""
    p = output_paths(folder)
    if not (p["manifest"].is_file() and p["ledger_part"].is_file()):
        return False
    try:
        m = read_json(p["manifest"])
    except ChurnmlError:
        return False  # a damaged manifest: the folder is replaced by this run
    if not isinstance(m, dict) or m.get("base") != base or not RUN_ID.match(str(m.get("run_id", ""))):
        return False
    try:
        scored_at = pd.Timestamp(m["scored_at"])
    except (KeyError, TypeError, ValueError):
        return False
    if ledger_has(ledger_dir, m["run_id"]):
        return False
    write_ledger_part(ledger_dir, read_table_file(p["ledger_part"]), m["run_id"], scored_at)
    return True


def run_scoring(
    run: Run,
    *,
    as_of=None,
    out: Path | None = None,
    engine: str = "duckdb",
    spark_master: str = "local[2]",
    allow_missing: bool = False,
    backfill: int = 0,
) -> tuple[ScoringResult, dict]:
    """Load data and the registered model, score, publish the outputs, append the ledger, log to MLflow.

    ``backfill``: first score the ``backfill`` monthly as-of dates before ``as_of`` that the base's
    ledger lacks, each with the backtest fold model that had not seen it (:func:`backfill_scores`),
    so that trends and "what changed" start with honest history."""
    cfg = run.cfg
    folder = Path(out) if out else run.paths.scores_dir
    check_target(folder, "scores")
    ensure_writable(folder.parent)
    ensure_writable(run.paths.ledger_dir)
    run.check_settings()
    base = base_id(cfg)
    ledger_dir = ledger_folder(cfg, base)
    if complete_ledger(folder, ledger_dir, base):
        run.echo(f"completed the ledger with the rows of the last run published in {folder}")
    run.tracking("scoring")
    model, version = run.registered_model()
    spec = run.scoring_spec(model)
    if engine == "spark":
        run.require_folder("--engine spark")
        if backfill:
            raise ChurnmlError("--backfill runs on the local engine: score the history once with --engine duckdb")
        with run.open_dataset(validate=False) as ds:
            identity = check_base_identity(run, ds, base, ledger_dir)
        ledger = read_ledger(ledger_dir)
        result = _score_on_spark(run, model, spec, version, as_of, ledger, spark_master, allow_missing)
    else:
        with run.open_dataset() as ds:
            identity = check_base_identity(run, ds, base, ledger_dir)
            ledger = read_ledger(ledger_dir)
            as_of = pd.Timestamp(as_of) if as_of is not None else ds.last_date() + pd.Timedelta(days=1)
            check_as_of(as_of, ds.last_date(), cfg.labels.horizon_days)
            if backfill:
                ledger = backfill_scores(run, ds, spec, version, as_of, backfill, ledger, ledger_dir)
            result = score_dataset(
                ds,
                model,
                spec,
                model_name=cfg.mlflow.model_name,
                model_version=version,
                as_of=as_of,
                ledger=ledger,
                allow_missing=allow_missing,
            )
    rows = ledger_rows(result)
    plays = play_counts(result.drivers, result.scores, spec.playbook)
    what = model.risk_words()
    tiers = spec.tier_thresholds
    scored_at = pd.Timestamp(result.scores["scored_at"].iloc[0]) if len(result.scores) else pd.Timestamp.now()
    manifest = {
        "run_id": result.run_id,
        "base": base,
        "as_of": f"{result.as_of:%Y-%m-%d}",
        "scored_at": f"{scored_at:%Y-%m-%dT%H:%M:%S}",
        "model_name": result.model_name,
        "model_version": result.model_version,
        "accounts": len(result.scores),
        "data_dir": data_source(cfg),
        "tiers": tiers,
        "tier_texts": tier_texts(tiers, what),
        "plays": {r.play_id: int(r.accounts) for r in plays.itertuples()},
        "files": [v for k, v in FILES.items() if k != "manifest"],
    }
    with publish_dir(folder, kind="scores") as tmp:
        artifacts.write_files(
            {
                FILES["scores"]: result.scores,
                FILES["scores_csv"]: result.scores,
                FILES["drivers"]: result.drivers,
                FILES["drift"]: result.drift,
                FILES["plays"]: plays,
                FILES["ledger_part"]: rows,
                FILES["manifest"]: manifest,
            },
            tmp,
        )
    write_ledger_part(ledger_dir, rows, result.run_id, scored_at)
    identity.save()
    churn_plays = plays[plays["target"] == "churn"].sort_values("first_play_accounts", ascending=False)
    if len(churn_plays) and churn_plays["first_play_accounts"].sum():
        run.echo(
            "plays proposed first (accounts; share of the high tier): "
            + ", ".join(
                f"{r.title} {r.first_play_accounts:,} ({r.first_play_share_of_high:.0%})"
                for r in churn_plays.head(5).itertuples()
                if r.first_play_accounts
            )
            + f" (all plays: {FILES['plays']})"
        )
    drifted = result.drift.loc[result.drift["drifted"], "feature"].tolist()
    if drifted:
        run.echo(
            f"warning: {len(drifted)} feature(s) drifted from the newest training data (PSI > "
            f"{cfg.scoring.drift_psi_threshold}): {', '.join(drifted)}"
        )
    with tracking.run(
        f"score-{result.as_of:%Y-%m-%d}",
        tags={
            "kind": "scoring",
            "as_of": f"{result.as_of:%Y-%m-%d}",
            "model": result.model_name,
            "model_version": version,
            "scoring_run_id": result.run_id,
            "base": base,
            "drifted": ",".join(drifted),
        },
    ):
        tracking.log_metrics(
            {
                "accounts_scored": len(result.scores),
                "high_risk_accounts": int((result.scores["risk_tier"] == "high").sum()),
                "arr_at_risk": float(result.scores["arr_at_risk"].sum()),
                "mean_churn_probability": float(result.scores["churn_probability"].mean()),
                "drifted_features": len(drifted),
                "max_psi": float(result.drift["psi"].max()) if len(result.drift) else 0.0,
                "seconds": run.seconds(),
            }
        )
        tracking.log_text(csv_text(result.drift), "drift.csv")
    result.seconds = run.seconds()
    return result, output_paths(folder) | {"ledger": ledger_dir}


def backfill_dates(as_of: pd.Timestamp, months: int, ledger: pd.DataFrame | None) -> list[pd.Timestamp]:
    """The ``months`` monthly as-of dates before ``as_of`` (oldest first) that the ledger has no score for."""
    done = set() if ledger is None or ledger.empty else set(pd.to_datetime(ledger["as_of"]).dt.normalize())
    dates = [(pd.Timestamp(as_of) - pd.DateOffset(months=k)).normalize() for k in range(months, 0, -1)]
    return [d for d in dates if d not in done]


def fold_for(models: list, day: pd.Timestamp):
    """The backtest fold model that had not seen ``day``: trained only on labels known before its first
    test cutoff, the newest such cutoff on or before ``day`` (None when every fold saw it)."""
    best, best_t = None, None
    for m in models:
        t = m.card.first_test_cutoff
        if t is None:
            continue
        t = pd.Timestamp(t)
        if t <= day and (best_t is None or t > best_t):
            best, best_t = m, t
    return best


def backfill_scores(
    run: Run,
    ds,
    spec: ScoringSpec,
    version: str,
    as_of: pd.Timestamp,
    months: int,
    ledger: pd.DataFrame | None,
    ledger_dir: Path,
) -> pd.DataFrame | None:
    """Score up to ``months`` past monthly as-of dates, each with a fold model of the registered run that
    never saw it, and add them to the ledger marked ``backfill`` (model version ``<v>-fold<k>``). ``spec``
    is the registered model's (its tiers among it), so a trend reads on one scale. Returns the ledger with
    them."""
    dates = backfill_dates(as_of, months, ledger)
    if not dates:
        run.echo(f"backfill: the ledger already holds the {months} month(s) before {as_of:%Y-%m-%d}")
        return ledger
    folds = run.fold_models()
    if not folds:
        run.echo("backfill skipped: the registered model's run kept no backtest fold models (retrain it)")
        return ledger
    done = []
    for day in steps(dates, "backfill", run.progress, unit="as-of date"):
        fm = fold_for(folds, day)
        if fm is None:
            run.echo(f"backfill: no backtest fold was trained before {day:%Y-%m-%d}; skipped")
            continue
        k = folds.index(fm)
        try:
            res = score_dataset(
                ds,
                fm,
                spec,
                model_name=run.cfg.mlflow.model_name,
                model_version=f"{version}-fold{k}",
                as_of=day,
                ledger=ledger,
                backfill=True,
            )
        except ChurnmlError as e:
            run.echo(f"backfill: {day:%Y-%m-%d} skipped: {e}")
            continue
        rows = ledger_rows(res)
        write_ledger_part(ledger_dir, rows, res.run_id, pd.Timestamp(res.scores["scored_at"].iloc[0]))
        ledger = rows if ledger is None else pd.concat([ledger, rows], ignore_index=True)
        done.append(day)
    if done:
        run.echo(
            f"backfill: scored {len(done)} past as-of date(s) ({done[0]:%Y-%m-%d}..{done[-1]:%Y-%m-%d}) with "
            f"backtest fold models that had not seen them; marked backfill in the ledger"
        )
    return ledger


def _score_on_spark(
    run: Run, model, spec: ScoringSpec, version, as_of, ledger, spark_master, allow_missing
) -> ScoringResult:
    cfg = run.cfg
    t0 = time.perf_counter()
    spark = local_session(spark_master)
    if as_of is None:
        with run.open_dataset(validate=False) as ds:
            as_of = ds.last_date() + pd.Timedelta(days=1)
    s_sdf, d_sdf, l_sdf, f_sdf, ctx = score_spark(
        spark,
        cfg.data_dir,
        model,
        spec,
        as_of=as_of,
        model_name=cfg.mlflow.model_name,
        model_version=version,
        allow_missing=allow_missing,
        attributes=tuple(cfg.contract.account_attributes),
    )
    scores = s_sdf.toPandas().sort_values("account_id", ignore_index=True)
    drivers = d_sdf.toPandas()
    explained = l_sdf.toPandas().set_index("account_id")
    _, defs = scoring_inputs(model, ctx, allow_missing=True)
    add_previous(scores, explained, ledger, defs)
    X = finish_features(f_sdf.toPandas(), ctx).droplevel("cutoff")
    drift = drift_table(X, model.card.reference, spec.drift_threshold)
    return ScoringResult(
        scores,
        drivers,
        drift,
        scores["run_id"].iloc[0],
        cfg.mlflow.model_name,
        str(version),
        pd.Timestamp(as_of),
        time.perf_counter() - t0,
        explained,
    )
