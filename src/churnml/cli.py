"""The ``churnml`` command line: the composition root (nothing imports it).

Each command parses its flags, reads the config (flags override it), calls one flow
(:mod:`churnml.flows`) and prints a one-line summary. A user-facing problem (bad input,
bad config, a missing model) prints ``error: ...`` and exits non-zero, without a
traceback. Defaults shown in ``--help`` come from :mod:`churnml.config`, where they
are written once.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import click

from churnml.config import default
from churnml.errors import ChurnmlError
from churnml.features import FAMILIES


def _d(key: str) -> str:
    return f"[default: {default(key)}]"


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML config file [default: $CHURNML_CONFIG, else configs/churnml.yaml or churnml.yaml here, "
    "else the built-in defaults].",
)
_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder of the six contract tables {_d('data_dir')}.",
)


def _remember(ctx, param, value):
    ctx.meta[f"churnml.{param.name}"] = value  # read by _run: every command that reads a base takes them
    return value


_SOURCE = click.option(
    "--source",
    metavar="URI",
    default=None,
    expose_value=False,
    callback=_remember,
    help="Read the base from a database instead of a folder: a postgresql:// URI; the password from the URI, "
    "PGPASSWORD or a service file (docs/warehouse.md) [default: source from config].",
)
_SCHEMA = click.option(
    "--schema",
    "source_schema",
    metavar="NAME",
    default=None,
    expose_value=False,
    callback=_remember,
    help=f"With --source: the schema holding the contract's tables or views {_d('source_schema')}.",
)


_BASE_NAME = click.option(
    "--base-name",
    metavar="NAME",
    default=None,
    expose_value=False,
    callback=_remember,
    help="The base's name: the scoring ledger keeps one history per name, wherever the base is read from "
    "[default: base_name from config, else the data folder's name or the source's schema].",
)


def DATA_DIR_OPTION(f):  # noqa: N802 - used as the other option decorators
    """--data-dir, or --source URI with --schema NAME: where the base is read from; --base-name: its name."""
    return _DATA_DIR(_SOURCE(_SCHEMA(_BASE_NAME(f))))


CUTOFFS_OPTION = click.option(
    "--cutoffs",
    default=None,
    metavar="SPEC",
    help="'monthly' (every month start after a 90-day warm-up, up to the day after the data ends), "
    "'semimonthly', 'weekly', START:END (month starts in that range) or a comma list of YYYY-MM-DD "
    "[default: monthly].",
)
HORIZON_OPTION = click.option(
    "--horizon", type=click.IntRange(min=1), default=None, help=f"Label window in days {_d('labels.horizon_days')}."
)
UPLIFT_OPTION = click.option(
    "--uplift",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"Expansion = MRR up by at least this share {_d('labels.uplift')}.",
)
ENGINE_OPTION = click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Where the work runs: DuckDB in this process, or Spark (needs churnml[spark]; same results).",
)
SPARK_MASTER_OPTION = click.option(
    "--spark-master",
    default="local[2]",
    show_default=True,
    help="With --engine spark: the Spark master URL (e.g. yarn, spark://host:7077, local[*]).",
)
MODEL_NAME_OPTION = click.option("--model-name", default=None, help=f"Registered model name {_d('mlflow.model_name')}.")
TRACKING_OPTION = click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking URI [default: mlflow.tracking_uri from config, else sqlite:///<output_dir>/mlflow.db].",
)
OUTPUT_DIR_OPTION = click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Where outputs go {_d('output_dir')}.",
)
MODEL_ALIAS_OPTION = click.option(
    "--model-alias", default=None, help=f"Registry alias of the model to use {_d('scoring.model_alias')}."
)
AS_OF_OPTION = click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Score as of the start of this day, YYYY-MM-DD [default: the day after the data ends].",
)


def _run(config_path: Path | None, **overrides):
    """The command's :class:`~churnml.flows.common.Run`: config (flags override it), messages to stderr,
    progress bars when stderr is a terminal."""
    from churnml.config import find_config, load_config
    from churnml.flows.common import Run

    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    source, schema = meta.get("churnml.source"), meta.get("churnml.source_schema")
    if source is not None and overrides.get("data_dir") is not None:
        raise click.UsageError("give --data-dir or --source, not both")
    if overrides.get("data_dir") is not None:
        source = ""  # a folder named on the command line wins over a source in the config
    base_name = meta.get("churnml.base_name")
    if base_name is not None:
        overrides["base_name"] = base_name
    cfg = load_config(find_config(config_path), **overrides, source=source, source_schema=schema)
    if schema is not None and not cfg.source:
        raise click.UsageError("--schema names the schema of a --source database (or of source in the config)")
    from churnml.progress import mode_for

    return Run(cfg, echo=lambda m: click.echo(m, err=True), progress=mode_for(sys.stderr))


class _Group(click.Group):
    """Turns churnml's own errors, and the environment's (a full disk, a folder without write
    permission, a file DuckDB cannot read), into one clear line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChurnmlError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except OSError as e:
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            click.echo(
                f"error: {e.strerror or e}{where}: free space or fix the permissions, or choose another --output-dir",
                err=True,
            )
            ctx.exit(2)
        except Exception as e:
            import duckdb

            if not isinstance(
                e,
                (
                    duckdb.IOException,
                    duckdb.OutOfMemoryException,
                    duckdb.ConversionException,
                    duckdb.InvalidInputException,
                ),
            ):
                raise
            hint = (
                " (raise engine.memory_limit in the config, or free memory)"
                if isinstance(e, duckdb.OutOfMemoryException)
                else ""
            )
            click.echo(f"error: DuckDB: {str(e).strip().splitlines()[0]}{hint}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="churnml")
def cli():
    """churnml: which accounts will churn or expand in the next 90 days, and why.

    Input is a folder of six tables following the data contract
    (docs/DATA_CONTRACT.md). Start with `churnml generate` for a demo base, or
    `churnml init DIR` for an editable config of your own.
    """


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite churnml.yaml and playbooks.yaml if they exist.")
def init(folder, force):
    """Write an editable config (churnml.yaml, every setting with its default and meaning) and the
    playbooks (playbooks.yaml) into FOLDER [default: here]."""
    from churnml.config import default_yaml
    from churnml.io.artifacts import init_project

    # paths in the file are from its own folder: data, outputs and playbooks live beside it, from anywhere
    written = init_project(folder, default_yaml(**{"scoring.playbook_file": "playbooks.yaml"}), force=force)
    click.echo(
        f"wrote {', '.join(map(str, written))}; run churnml from {folder} (it reads ./churnml.yaml), "
        f"or pass --config {written[0]}"
    )


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder to write the six tables to (new, empty, or written by churnml before: it is replaced "
    f"as a whole) {_d('data_dir')}.",
)
@click.option(
    "--accounts", type=click.IntRange(min=1), default=None, help=f"Number of accounts {_d('generate.accounts')}."
)
@click.option(
    "--seed", type=int, default=None, help=f"Random seed; the same seed gives the same base {_d('generate.seed')}."
)
@click.option(
    "--years", type=click.FloatRange(min=0.26), default=None, help=f"Years of history {_d('generate.years')}."
)
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help=f"Last day of the data, YYYY-MM-DD {_d('generate.end')}; yesterday: a fresh base scores as of today.",
)
@click.option(
    "--terms",
    default=None,
    metavar="MIX",
    help="Contract terms: a preset (default, monthly, annual, quarterly, multi-year, mixed), a mix for "
    "every segment such as 30:0.5,365:0.5, or per segment SMB=30:1;Enterprise=365:0.5,1095:0.5 "
    "[default: default, the demo's monthly and annual mix].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="File format of the tables.",
)
@CONFIG_OPTION
def generate(out, accounts, seed, years, end, terms, fmt, config_path):
    """Write a synthetic B2B customer base (all six contract tables).

    The base is checked against the contract before it replaces OUT, so a failed
    run leaves nothing behind.
    """
    from churnml.flows.data import generate as flow

    run = _run(
        config_path,
        **{
            "data_dir": out,
            "generate.accounts": accounts,
            "generate.seed": seed,
            "generate.years": years,
            "generate.end": end.strftime("%Y-%m-%d") if end else None,
            "generate.terms": terms,
        },
    )
    res = flow(run, out=run.cfg.data_dir, fmt=fmt)
    s = res["summary"]
    churn = ", ".join(f"{seg} {s.loc[seg, 'churn_per_year']:.0%}" for seg in s.index if seg != "All")
    click.echo(
        f"wrote {run.cfg.generate.accounts:,} accounts, {res['rows']:,} rows ({fmt}) to {run.cfg.data_dir} in "
        f"{run.seconds():.1f}s; churn {s.loc['All', 'churn_per_year']:.0%}/yr ({churn}); "
        f"expansions {s.loc['All', 'expansions_per_year']:.0%}/yr"
    )


@cli.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
def validate(data_dir, config_path):
    """Check a data folder against the data contract and print a short report.

    Every violation names the table, the column, the rule and how many rows break
    it, with a few example keys. Exit code 1 when any error is found.
    """
    from churnml.flows.data import validate as flow

    run = _run(config_path, data_dir=data_dir)
    report = flow(run)
    click.echo(report.format())
    if not report.ok:
        sys.exit(1)


@cli.command()
@DATA_DIR_OPTION
@CUTOFFS_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Parquet file for the feature table [default: <output_dir>/features.parquet].",
)
@click.option("--list", "list_", is_flag=True, help="List every indicator with its definition and exit.")
@click.option("--family", type=click.Choice(FAMILIES), default=None, help="With --list: only this family.")
@ENGINE_OPTION
@SPARK_MASTER_OPTION
@CONFIG_OPTION
def features(data_dir, cutoffs, out, list_, family, engine, spark_master, config_path):
    """Build the point-in-time feature table, one row per (account_id, cutoff).

    Each indicator as of cutoff t uses only what was known before t. Accounts
    paying on day t-1 get a row. Writes Parquet (atomically).
    """
    if list_:
        from churnml.features import Context, indicators_for

        defs = indicators_for(Context(feature_columns=("feature_*",)))
        for fam in FAMILIES:
            if family and fam != family:
                continue
            click.echo(f"\n== {fam} ==")
            for i in (d for d in defs if d.family == fam):
                click.echo(
                    f"{i.name}  [{i.unit}; risk when {i.risk}]"
                    if i.risk in ("low", "high")
                    else f"{i.name}  [{i.unit}]"
                )
                click.echo(f"    {i.formula}")
                click.echo(f"    missing: {i.missing}")
        return
    from churnml.flows.data import features as flow

    run = _run(config_path, data_dir=data_dir)
    out = out or run.paths.features_file
    X, cuts = flow(run, cutoffs=cutoffs, out=out, engine=engine, spark_master=spark_master)
    n_acc = X.index.get_level_values("account_id").nunique()
    click.echo(
        f"wrote {X.shape[1]} indicators for {len(X):,} (account, cutoff) rows: {len(cuts)} cutoffs "
        f"{cuts[0]:%Y-%m-%d}..{cuts[-1]:%Y-%m-%d}, {n_acc:,} accounts -> {out} ({run.seconds():.1f}s)"
    )


@cli.command()
@DATA_DIR_OPTION
@CUTOFFS_OPTION
@HORIZON_OPTION
@UPLIFT_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Parquet file for the labels [default: <output_dir>/labels.parquet].",
)
@CONFIG_OPTION
def labels(data_dir, cutoffs, horizon, uplift, out, config_path):
    """Build churn/expansion labels per (account_id, cutoff), as the data contract defines them.

    Cutoffs whose label window is not fully observed get no label (they are for
    scoring only). The settings (horizon, uplift) are stored with the labels.
    """
    from churnml.flows.data import labels as flow
    from churnml.labels import label_names

    run = _run(config_path, data_dir=data_dir, **{"labels.horizon_days": horizon, "labels.uplift": uplift})
    out = out or run.paths.labels_file
    y = flow(run, cutoffs=cutoffs, out=out)
    e = y[y["eligible"]]
    h = run.cfg.labels.horizon_days
    churn_col, exp_col = label_names(h)
    n_cut = e.index.get_level_values("cutoff").nunique()
    click.echo(
        f"wrote labels for {len(e):,} eligible (account, cutoff) rows over {n_cut} cutoffs -> {out}; "
        f"churned within {h}d {e[churn_col].mean():.1%}, expanded {e[exp_col].mean():.1%}"
    )


@cli.command()
@DATA_DIR_OPTION
@click.option(
    "--months",
    type=click.IntRange(min=1, max=120),
    default=12,
    show_default=True,
    help="Length of the trailing period for GRR and NRR, in calendar months.",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="End the movements and the trailing period at the start of this day, using only what was known "
    "before it, YYYY-MM-DD [default: the day after the data ends].",
)
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def movements(data_dir, months, as_of, output_dir, config_path):
    """Revenue movements and trailing GRR/NRR, as the data contract defines them.

    Writes, per account and calendar month, the MRR bridge: opening, new, expansion,
    contraction, churn, completed, reactivation and closing, reconciling to the cent
    (<output_dir>/movements.parquet); the base's totals per month (mrr_bridge.csv); and
    the trailing GRR and NRR per segment, CSM and declared attribute (retention.csv).
    """
    from churnml.flows.data import revenue_movements as flow
    from churnml.revenue import DEFINITIONS

    run = _run(config_path, data_dir=data_dir, output_dir=output_dir)
    got = flow(run, months=months, as_of=as_of)
    mv, ret, paths = got["movements"], got["retention"], run.paths
    a = ret[ret["group_by"] == "all"].iloc[0]
    click.echo(
        f"trailing {months} months ({a['start_date']:%Y-%m-%d}..{a['end_date'] - timedelta(days=1):%Y-%m-%d}), "
        f"{a['accounts']:,} accounts paying at the start (new business excluded): GRR {a['grr']:.1%}, "
        f"NRR {a['nrr']:.1%} on start MRR {a['start_mrr']:,.0f} (churn {a['churn_mrr']:,.0f}, contraction "
        f"{a['contraction_mrr']:,.0f}, expansion {a['expansion_mrr']:,.0f}; completed terms {a['completed_mrr']:,.0f}, "
        f"out of both); {mv['month'].nunique()} months, {len(mv):,} account-months reconcile to the cent "
        f"-> {paths.movements_file}, {paths.retention_file} ({run.seconds():.1f}s)"
    )
    seg = ret[ret["group_by"] == "segment"]
    for _, r in seg.iterrows():
        click.echo(f"  segment {r['group']}: GRR {r['grr']:.1%}, NRR {r['nrr']:.1%} ({r['accounts']:,} accounts)")
    click.echo(
        f"  GRR: {DEFINITIONS['grr']}; NRR: {DEFINITIONS['nrr']}; per CSM and attribute in {paths.retention_file}"
    )


@cli.command()
@DATA_DIR_OPTION
@TRACKING_OPTION
@HORIZON_OPTION
@UPLIFT_OPTION
@click.option(
    "--cutoffs",
    default=None,
    metavar="SPEC",
    help=f"Cutoff spec, as for `features`, or 'auto' (monthly, closer when the history is short) "
    f"{_d('train.cutoffs')}.",
)
@click.option("--folds", type=click.IntRange(min=1), default=None, help=f"Backtest folds {_d('train.folds')}.")
@click.option("--seed", type=int, default=None, help=f"Random seed {_d('train.seed')}.")
@click.option(
    "--targets",
    type=click.Choice(["auto", "churn", "both"]),
    default=None,
    help=f"auto: churn, and expansion when the history holds enough expansions; churn: churn only; both: "
    f"require both {_d('train.targets')}.",
)
@click.option(
    "--replace-champion",
    is_flag=True,
    help="Promote this model to champion without comparing it to the current one (e.g. when the champion's "
    "files are gone or damaged).",
)
@MODEL_NAME_OPTION
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def train(
    data_dir,
    tracking_uri,
    horizon,
    uplift,
    cutoffs,
    folds,
    seed,
    targets,
    replace_champion,
    model_name,
    output_dir,
    config_path,
):
    """Backtest, train, calibrate and register the churn and expansion models.

    LightGBM is backtested over time beside a hand-weighted health score and a
    logistic regression. The final model is logged to MLflow with its metrics,
    plots and feature definitions, the report is written to <output_dir>/train,
    and the model is registered with alias `challenger`, and promoted to `champion`
    only if it beats the current champion on the same holdout cutoffs (higher
    PR-AUC, no worse Brier).
    """
    from churnml.flows.train import run_training

    run = _run(
        config_path,
        data_dir=data_dir,
        output_dir=output_dir,
        **{
            "mlflow.tracking_uri": tracking_uri,
            "mlflow.model_name": model_name,
            "labels.horizon_days": horizon,
            "labels.uplift": uplift,
            "train.cutoffs": cutoffs,
            "train.folds": folds,
            "train.seed": seed,
            "train.targets": targets,
        },
    )
    click.echo(run_training(run, replace_champion=replace_champion).summary)


@cli.command()
@DATA_DIR_OPTION
@TRACKING_OPTION
@click.option("--trials", type=click.IntRange(min=1), default=None, help=f"Optuna trials {_d('tune.trials')}.")
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=None,
    help=f"Stop after this many seconds {_d('tune.timeout_seconds')}.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the best parameters go [default: train.tuned_params_file, else <output_dir>/best_params.json].",
)
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def tune(data_dir, tracking_uri, trials, timeout, out, output_dir, config_path):
    """Search LightGBM parameters with Optuna over the backtest folds (not the holdout).

    Pruning stops weak trials after their first folds. The best parameters are
    saved (JSON) and used by `churnml train`; every trial is an MLflow run.
    """
    from churnml.flows.tune import run_tuning

    run = _run(
        config_path,
        data_dir=data_dir,
        output_dir=output_dir,
        **{
            "mlflow.tracking_uri": tracking_uri,
            "tune.trials": trials,
            "tune.timeout_seconds": timeout,
            "train.tuned_params_file": out,
        },
    )
    r = run_tuning(run)
    click.echo(
        f"best mean PR-AUC {r['mean_pr_auc']:.4f} (defaults {r['default_mean_pr_auc']:.4f}) over folds "
        f"{r['folds']} after {r['trials']} trials ({r['pruned']} pruned) in {r['seconds']:.0f}s -> "
        f"{run.paths.tuned_params}"
    )


@cli.command()
@TRACKING_OPTION
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to serve on.")
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def ui(tracking_uri, port, output_dir, config_path):
    """Start the MLflow UI on 127.0.0.1 for the project's tracking store."""
    import os

    from churnml.tracking import resolve_uri

    run = _run(config_path, output_dir=output_dir, **{"mlflow.tracking_uri": tracking_uri})
    uri = resolve_uri(run.paths.tracking_uri)
    art = Path(run.paths.artifact_root).resolve()
    click.echo(f"MLflow UI on http://127.0.0.1:{port} (store {uri}); Ctrl-C to stop", err=True)
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            uri,
            "--default-artifact-root",
            art.as_uri(),
        ],
    )


@cli.command()
@DATA_DIR_OPTION
@AS_OF_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for this run's scores.parquet, scores.csv, drivers.parquet, drift.csv and manifest.json "
    "(new, empty, or written by churnml before) [default: <output_dir>/scores].",
)
@TRACKING_OPTION
@MODEL_NAME_OPTION
@MODEL_ALIAS_OPTION
@OUTPUT_DIR_OPTION
@ENGINE_OPTION
@SPARK_MASTER_OPTION
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Score a base that lacks a table or column the model was trained with; every score is then "
    "flagged (column inputs_missing). Without it, such a base is refused.",
)
@click.option(
    "--backfill",
    type=click.IntRange(0, 36),
    default=0,
    show_default=True,
    metavar="MONTHS",
    help="First score this many monthly as-of dates before the as-of date that the ledger lacks, each "
    "with the backtest fold model that had not seen it (marked backfill in the ledger), so trends "
    "and 'what changed' start with history.",
)
@CONFIG_OPTION
def score(
    data_dir,
    as_of,
    out,
    tracking_uri,
    model_name,
    model_alias,
    output_dir,
    engine,
    spark_master,
    allow_missing,
    backfill,
    config_path,
):
    """Score every account paying at the as-of date: churn and expansion probability,
    risk tier, ARR at risk, renewal, top drivers and plays.

    The run's files appear together in one step; its rows are added to the base's
    ledger (<output_dir>/ledger/<base>). Logs the run to MLflow.
    """
    from churnml.flows.score import run_scoring

    run = _run(
        config_path,
        data_dir=data_dir,
        output_dir=output_dir,
        **{"mlflow.tracking_uri": tracking_uri, "mlflow.model_name": model_name, "scoring.model_alias": model_alias},
    )
    result, paths = run_scoring(
        run,
        as_of=as_of,
        out=out,
        engine=engine,
        spark_master=spark_master,
        allow_missing=allow_missing,
        backfill=backfill,
    )
    click.echo(result.summary(paths))


@cli.command()
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The day to go back to, YYYY-MM-DD: train only on what was known before it, score as of it.",
)
@DATA_DIR_OPTION
@HORIZON_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the replay's scores, outcomes and report [default: <output_dir>/replay/<DATE>].",
)
@TRACKING_OPTION
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def replay(as_of, data_dir, horizon, out, tracking_uri, output_dir, config_path):
    """What would churnml have said on a past day, and was it right?

    Cuts the tables to what was known before --as-of (the contract's point-in-time
    rules), trains the same recipe on that past only (nothing is registered), scores
    as of that day and, when the outcome window has passed, reports who churned: how
    many were high risk, the ARR caught, PR-AUC and lift beside the baselines.
    """
    from churnml.flows.replay import run_replay

    run = _run(
        config_path,
        data_dir=data_dir,
        output_dir=output_dir,
        **{"labels.horizon_days": horizon, "mlflow.tracking_uri": tracking_uri},
    )
    click.echo(run_replay(run, as_of=as_of, out=out).summary)


@cli.command()
@click.option("--account", "account_id", required=True, help="The account_id to explain.")
@DATA_DIR_OPTION
@AS_OF_OPTION
@TRACKING_OPTION
@MODEL_NAME_OPTION
@MODEL_ALIAS_OPTION
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def explain(account_id, data_dir, as_of, tracking_uri, model_name, model_alias, output_dir, config_path):
    """Print one account's story: risk, what drives it (in probability points), the plays,
    the expansion signal and what changed since the last score."""
    from churnml.flows.explain import account_story

    run = _run(
        config_path,
        data_dir=data_dir,
        output_dir=output_dir,
        **{"mlflow.tracking_uri": tracking_uri, "mlflow.model_name": model_name, "scoring.model_alias": model_alias},
    )
    click.echo(account_story(run, account_id, as_of=as_of))


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the pages (new, empty, or written by churnml before) [default: <output_dir>/report].",
)
@click.option(
    "--scores",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The folder of a `churnml score` run [default: <output_dir>/scores].",
)
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def report(out, scores, output_dir, config_path):
    """Write the CSM pages from the latest scores: an index, one book-of-business page
    per CSM (only that CSM's accounts, sortable, with roll-ups by segment and renewal
    month) and one brief per account (risk and its trend, drivers, plays, expansion)."""
    from churnml.flows.report import run_report

    run = _run(config_path, output_dir=output_dir)
    info = run_report(run, out_dir=out, scores=scores)
    click.echo(
        f"wrote {info['csm_pages']} CSM pages and {info['account_pages']:,} account briefs in "
        f"{run.seconds():.1f}s; open {Path(os.path.abspath(info['index']))}"
    )


@cli.command()
@click.option(
    "--to",
    metavar="URI",
    default=None,
    help="The database: a postgresql:// URI; the password from the URI, PGPASSWORD or a service file "
    "[default: publish.to from config].",
)
@click.option(
    "--schema",
    metavar="NAME",
    default=None,
    help=f"The schema churnml's tables go to (created when missing; never the source schema) "
    f"{_d('publish.to_schema')}.",
)
@click.option(
    "--scores",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The folder of a `churnml score` run [default: <output_dir>/scores].",
)
@OUTPUT_DIR_OPTION
@CONFIG_OPTION
def publish(to, schema, scores, output_dir, config_path):
    """Write the latest scores into a database for reverse ETL and CRMs: tables churnml_scores,
    churnml_drivers, churnml_forecast (when the run has one) and churnml_ledger.

    One transaction (all or nothing), an upsert keyed by (account_id, as_of, model_version):
    publishing the same run twice changes nothing. See docs/warehouse.md.
    """
    from churnml.flows.publish import run_publish

    run = _run(config_path, output_dir=output_dir)
    click.echo(run_publish(run, to=to, schema=schema, scores=scores).summary)


def main() -> None:
    """Console-script entry point. SIGTERM stops a command the way Ctrl-C does, so half-built outputs
    are removed and MLflow runs are marked FAILED."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    cli(prog_name="churnml")
