"""The ``churnml`` command line: the composition root (nothing imports it).

Each command reads the config (``--config``), lets its flags override it, calls the
package and prints a one-line summary. A user-facing problem (bad input, bad config)
prints ``error: ...`` and exits non-zero, without a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from churnml.errors import ChurnmlError

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="YAML config file [default: configs/default.yaml if present].",
)


DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of the six contract tables [default: data_dir from config].")
CUTOFFS_OPTION = click.option(
    "--cutoffs", default=None, metavar="SPEC",
    help="'monthly' (every month start after a 90-day warm-up, up to the day after the data ends), "
         "START:END (month starts in that range) or a comma list of YYYY-MM-DD [default: monthly].")


HORIZON_OPTION = click.option("--horizon", type=click.IntRange(min=1), default=None,
                              help="Label window in days [default: 90].")
UPLIFT_OPTION = click.option("--uplift", type=click.FloatRange(min=0, min_open=True), default=None,
                             help="Expansion = MRR up by at least this share [default: 0.10].")
ENGINE_OPTION = click.option(
    "--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
    help="Where the work runs: DuckDB in this process, or Spark (needs churnml[spark]; same results).")
SPARK_MASTER_OPTION = click.option(
    "--spark-master", default="local[2]", show_default=True,
    help="With --engine spark: the Spark master URL (e.g. yarn, spark://host:7077, local[*]).")

def _config(config_path: Path | None, **overrides):
    from churnml.config import DEFAULT_CONFIG, load_config

    if config_path is None and DEFAULT_CONFIG.is_file():
        config_path = DEFAULT_CONFIG
    return load_config(config_path, **overrides)


class _Group(click.Group):
    """Turns churnml's own errors into a clear message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChurnmlError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="churnml")
def cli():
    """churnml: which accounts will churn or expand in the next 90 days, and why.

    Input is a folder of six tables following the data contract
    (docs/DATA_CONTRACT.md). Start with `churnml generate` for a demo base.
    """


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write the six tables to (replaced atomically) [default: data_dir from config].")
@click.option("--accounts", type=click.IntRange(min=1), default=None, help="Number of accounts [default: 5000].")
@click.option("--seed", type=int, default=None, help="Random seed; the same seed gives the same base [default: 42].")
@click.option("--years", type=click.FloatRange(min=0.26), default=None, help="Years of history [default: 3].")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day of the data, YYYY-MM-DD [default: 2026-10-31].")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True,
              help="File format of the tables.")
@CONFIG_OPTION
def generate(out, accounts, seed, years, end, fmt, config_path):
    """Write a synthetic B2B customer base (all six contract tables).

    The base is validated against the contract before it replaces OUT, so a
    failed run leaves nothing behind.
    """
    from churnml.generate import GeneratorConfig, generate as run, summarize
    from churnml.io import write_dataset

    cfg = _config(config_path, **{
        "data_dir": out, "generate.accounts": accounts, "generate.seed": seed, "generate.years": years,
        "generate.end": end.strftime("%Y-%m-%d") if end else None,
    })
    g = cfg.generate
    t0 = time.perf_counter()
    tables = run(GeneratorConfig(accounts=g.accounts, seed=g.seed, end=g.end, years=g.years))
    write_dataset(tables, cfg.data_dir, fmt=fmt, check=True)
    s = summarize(tables)
    rows = sum(len(t) for t in tables.values())
    churn = ", ".join(f"{seg} {s.loc[seg, 'churn_per_year']:.0%}" for seg in s.index if seg != "All")
    click.echo(
        f"wrote {g.accounts:,} accounts, {rows:,} rows ({fmt}) to {cfg.data_dir} in {time.perf_counter() - t0:.1f}s; "
        f"churn {s.loc['All', 'churn_per_year']:.0%}/yr ({churn}); "
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
    from churnml.validate import validate_dataset

    cfg = _config(config_path, data_dir=data_dir)
    report = validate_dataset(cfg.data_dir)
    click.echo(report.format())
    if not report.ok:
        sys.exit(1)


@cli.command()
@DATA_DIR_OPTION
@CUTOFFS_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Parquet file for the feature table [default: <output_dir>/features.parquet].")
@click.option("--list", "list_", is_flag=True, help="List every indicator with its definition and exit.")
@click.option("--family", type=click.Choice(["usage", "effort", "support", "onboarding", "commercial"]), default=None,
              help="With --list: only this family.")
@ENGINE_OPTION
@SPARK_MASTER_OPTION
@CONFIG_OPTION
def features(data_dir, cutoffs, out, list_, family, engine, spark_master, config_path):
    """Build the point-in-time feature table, one row per (account_id, cutoff).

    Each indicator as of cutoff t uses only what was known before t. Accounts
    paying on day t-1 get a row. Writes Parquet (atomically).
    """
    from churnml.features import Context, build_features, indicators_for

    if list_:
        defs = indicators_for(Context(feature_columns=("feature_*",)))
        for fam in ("usage", "effort", "support", "onboarding", "commercial"):
            if family and fam != family:
                continue
            click.echo(f"\n== {fam} ==")
            for i in (d for d in defs if d.family == fam):
                click.echo(f"{i.name}  [{i.unit}; risk when {i.risk}]" if i.risk in ("low", "high")
                           else f"{i.name}  [{i.unit}]")
                click.echo(f"    {i.formula}")
                click.echo(f"    missing: {i.missing}")
        return
    from churnml.cutoffs import parse_cutoffs
    from churnml.io import load_dataset, write_parquet

    cfg = _config(config_path, data_dir=data_dir)
    out = out or cfg.output_dir / "features.parquet"
    t0 = time.perf_counter()
    ds = load_dataset(cfg.data_dir)
    cuts = parse_cutoffs(cutoffs, ds)
    if engine == "spark":
        from churnml.spark import build_features_spark, features_to_pandas, local_session

        sdf, ctx, _ = build_features_spark(local_session(spark_master), cfg.data_dir, cuts)
        X = features_to_pandas(sdf, ctx)
    else:
        X = build_features(ds, cuts, progress=sys.stderr.isatty())
    write_parquet(X.reset_index(), out)
    n_acc = X.index.get_level_values("account_id").nunique()
    click.echo(f"wrote {X.shape[1]} indicators for {len(X):,} (account, cutoff) rows: {len(cuts)} cutoffs "
               f"{cuts[0]:%Y-%m-%d}..{cuts[-1]:%Y-%m-%d}, {n_acc:,} accounts -> {out} "
               f"({time.perf_counter() - t0:.1f}s)")


@cli.command()
@DATA_DIR_OPTION
@CUTOFFS_OPTION
@HORIZON_OPTION
@UPLIFT_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Parquet file for the labels [default: <output_dir>/labels.parquet].")
@CONFIG_OPTION
def labels(data_dir, cutoffs, horizon, uplift, out, config_path):
    """Build churn/expansion labels per (account_id, cutoff), as the data contract defines them.

    Cutoffs whose label window is not fully observed get no label (they are for
    scoring only). The settings (horizon, uplift) are stored with the labels.
    """
    from churnml.cutoffs import parse_cutoffs
    from churnml.io import load_dataset, write_parquet
    from churnml.labels import label_names, make_labels

    cfg = _config(config_path, data_dir=data_dir, **{"labels.horizon_days": horizon, "labels.uplift": uplift})
    out = out or cfg.output_dir / "labels.parquet"
    ds = load_dataset(cfg.data_dir)
    h = cfg.labels.horizon_days
    y = make_labels(ds, parse_cutoffs(cutoffs, ds), horizon_days=h, uplift=cfg.labels.uplift)
    write_parquet(y.reset_index(), out)
    e = y[y["eligible"]]
    churn_col, exp_col = label_names(h)
    n_cut = e.index.get_level_values("cutoff").nunique()
    click.echo(f"wrote labels for {len(e):,} eligible (account, cutoff) rows over {n_cut} cutoffs -> {out}; "
               f"churned within {h}d {e[churn_col].mean():.1%}, expanded {e[exp_col].mean():.1%}")


MODEL_NAME_OPTION = click.option("--model-name", default=None, help="Registered model name [default: churnml].")
TRACKING_OPTION = click.option(
    "--tracking-uri", default=None,
    help="MLflow tracking URI [default: mlflow.tracking_uri from config, sqlite:///mlflow.db].")


@cli.command()
@DATA_DIR_OPTION
@TRACKING_OPTION
@HORIZON_OPTION
@UPLIFT_OPTION
@click.option("--cutoffs", default=None, metavar="SPEC", help="Cutoff spec, as for `features` [default: monthly].")
@click.option("--folds", type=click.IntRange(min=1), default=None, help="Backtest folds [default: 4].")
@click.option("--seed", type=int, default=None, help="Random seed [default: 42].")
@MODEL_NAME_OPTION
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the training report goes (<output-dir>/train) [default: outputs].")
@CONFIG_OPTION
def train(data_dir, tracking_uri, horizon, uplift, cutoffs, folds, seed, model_name, output_dir, config_path):
    """Backtest, train, calibrate and register the churn and expansion models.

    LightGBM is backtested over time beside a hand-weighted health score and a
    logistic regression. The newest fold's model is logged to MLflow with its
    metrics, plots and feature definitions, registered with alias `challenger`,
    and promoted to `champion` only if it beats the current champion on the same
    holdout cutoffs (higher PR-AUC, no worse Brier).
    """
    from churnml.modeling.tracking import quiet
    from churnml.modeling.train import run_training

    quiet()
    cfg = _config(config_path, data_dir=data_dir, output_dir=output_dir, **{
        "mlflow.tracking_uri": tracking_uri, "mlflow.model_name": model_name, "labels.horizon_days": horizon,
        "labels.uplift": uplift, "train.cutoffs": cutoffs, "train.folds": folds, "train.seed": seed})
    result = run_training(cfg, progress=sys.stderr.isatty(), echo=lambda m: click.echo(m, err=True))
    click.echo(result.summary)


@cli.command()
@DATA_DIR_OPTION
@TRACKING_OPTION
@click.option("--trials", type=click.IntRange(min=1), default=None, help="Number of Optuna trials [default: 30].")
@click.option("--timeout", type=click.IntRange(min=1), default=None, help="Stop after this many seconds [default: 1800].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the best parameters go [default: models/best_params.json].")
@CONFIG_OPTION
def tune(data_dir, tracking_uri, trials, timeout, out, config_path):
    """Search LightGBM parameters with Optuna over the backtest folds (not the holdout).

    Pruning stops weak trials after their first folds. The best parameters are
    saved (JSON) and used by `churnml train`; every trial is an MLflow run.
    """
    from churnml.modeling.tracking import quiet
    from churnml.modeling.tune import run_tuning

    quiet()
    cfg = _config(config_path, data_dir=data_dir, **{
        "mlflow.tracking_uri": tracking_uri, "tune.trials": trials, "tune.timeout_seconds": timeout,
        "train.tuned_params_file": out})
    r = run_tuning(cfg, progress=sys.stderr.isatty(), echo=lambda m: click.echo(m, err=True))
    click.echo(f"best mean PR-AUC {r['mean_pr_auc']:.4f} (defaults {r['default_mean_pr_auc']:.4f}) over folds "
               f"{r['folds']} after {r['trials']} trials ({r['pruned']} pruned) in {r['seconds']:.0f}s -> "
               f"{cfg.train.tuned_params_file}")


@cli.command()
@TRACKING_OPTION
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to serve on.")
@CONFIG_OPTION
def ui(tracking_uri, port, config_path):
    """Start the MLflow UI on 127.0.0.1 for the project's tracking store."""
    import os

    from churnml.modeling.tracking import resolve_uri

    cfg = _config(config_path, **{"mlflow.tracking_uri": tracking_uri})
    uri = resolve_uri(cfg.mlflow.tracking_uri)
    art = Path(cfg.mlflow.artifact_root).resolve()
    click.echo(f"MLflow UI on http://127.0.0.1:{port} (store {uri}); Ctrl-C to stop", err=True)
    os.execvp(sys.executable, [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", uri,
                               "--default-artifact-root", art.as_uri()])


MODEL_ALIAS_OPTION = click.option("--model-alias", default=None,
                                  help="Registry alias of the model to use [default: champion].")
AS_OF_OPTION = click.option(
    "--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
    help="Score as of the start of this day, YYYY-MM-DD [default: the day after the data ends].")


@cli.command()
@DATA_DIR_OPTION
@AS_OF_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Scores file (.parquet; the .csv, drivers.parquet and drift.csv are written beside it) "
                   "[default: outputs/scores.parquet with outputs/drivers.parquet].")
@TRACKING_OPTION
@MODEL_NAME_OPTION
@MODEL_ALIAS_OPTION
@ENGINE_OPTION
@SPARK_MASTER_OPTION
@CONFIG_OPTION
def score(data_dir, as_of, out, tracking_uri, model_name, model_alias, engine, spark_master, config_path):
    """Score every account paying at the as-of date: churn and expansion probability,
    risk tier, ARR at risk, renewal, top drivers and plays.

    Writes the scores table (Parquet + CSV), the drivers table, a drift table, and
    appends to the scoring ledger; all writes are atomic. Logs the run to MLflow.
    """
    from churnml.modeling.tracking import quiet
    from churnml.scoring.score import run_scoring

    quiet()
    cfg = _config(config_path, data_dir=data_dir, **{"mlflow.tracking_uri": tracking_uri,
                                                     "mlflow.model_name": model_name,
                                                     "scoring.model_alias": model_alias})
    result, paths = run_scoring(cfg, as_of=as_of, out=out, echo=lambda m: click.echo(m, err=True),
                                engine=engine, spark_master=spark_master)
    click.echo(result.summary(paths))


@cli.command()
@click.option("--account", "account_id", required=True, help="The account_id to explain.")
@DATA_DIR_OPTION
@AS_OF_OPTION
@TRACKING_OPTION
@MODEL_NAME_OPTION
@MODEL_ALIAS_OPTION
@CONFIG_OPTION
def explain(account_id, data_dir, as_of, tracking_uri, model_name, model_alias, config_path):
    """Print one account's story: risk, what drives it (in probability points), the plays,
    the expansion signal and what changed since the last score."""
    from churnml.modeling.tracking import quiet
    from churnml.scoring.story import account_story

    quiet()
    cfg = _config(config_path, data_dir=data_dir, **{"mlflow.tracking_uri": tracking_uri,
                                                     "mlflow.model_name": model_name,
                                                     "scoring.model_alias": model_alias})
    click.echo(account_story(cfg, account_id, as_of=as_of))


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the pages (replaced atomically) [default: outputs/report].")
@click.option("--scores", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Scores file of a `churnml score --out FILE` run; its drivers.parquet is read from the same "
                   "folder [default: scoring.scores_file from config, outputs/scores.parquet].")
@CONFIG_OPTION
def report(out, scores, config_path):
    """Write the CSM pages from the latest scores: an index, one book-of-business page
    per CSM (only that CSM's accounts, sortable, with roll-ups by segment and renewal
    month) and one brief per account (risk and its trend, drivers, plays, expansion)."""
    from churnml.pages.render import run_report

    cfg = _config(config_path)
    info = run_report(cfg, out_dir=out, scores=scores)
    click.echo(f"wrote {info['csm_pages']} CSM pages and {info['account_pages']:,} account briefs; "
               f"open {info['index'].resolve()}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="churnml")
