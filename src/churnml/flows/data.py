"""``churnml generate``, ``validate``, ``features`` and ``labels``: the data-side commands."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnml.cutoffs import parse_cutoffs
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.features import build_features
from churnml.flows.common import Run
from churnml.generate import GeneratorConfig, parse_terms, resolve_end, summarize
from churnml.generate import generate as simulate
from churnml.io.outputs import write_csv, write_dataset, write_parquet
from churnml.labels import make_labels
from churnml.revenue import monthly_summary, movements, reconcile, trailing_retention
from churnml.spark import build_features_spark, features_to_pandas, local_session
from churnml.validate import ValidationReport


def generate(run: Run, *, out: Path, fmt: str = "parquet") -> dict:
    """Simulate a base, check it against the contract in memory, then publish it to ``out``."""
    g = run.cfg.generate
    try:
        terms = parse_terms(g.terms)
        end = f"{resolve_end(g.end):%Y-%m-%d}"
    except ValueError as e:
        raise ChurnmlError(f"generate: {e}") from None
    tables = simulate(
        GeneratorConfig(
            accounts=g.accounts, seed=g.seed, end=end, years=g.years, terms=terms, hostile_names=g.hostile_names
        )
    )
    with Dataset.from_frames(tables) as ds:
        ds.require_valid(where="generated data")
    write_dataset(tables, out, fmt=fmt)
    return {"tables": tables, "summary": summarize(tables), "rows": sum(len(t) for t in tables.values())}


def validate(run: Run, data_dir: Path | None = None) -> ValidationReport:
    with run.open_dataset(data_dir, validate=False) as ds:
        return ds.check(progress=run.progress)


def features(run: Run, *, cutoffs: str | None, out: Path, engine: str = "duckdb", spark_master: str = "local[2]"):
    """Build the feature table for the cutoffs and write it (Parquet); returns (table, cutoffs)."""
    cfg = run.cfg
    if engine == "spark":
        run.require_folder("--engine spark")
    with run.open_dataset() as ds:
        cuts = parse_cutoffs(cutoffs, ds, max_cutoffs=cfg.train.max_cutoffs)
        if engine == "spark":
            sdf, ctx, _ = build_features_spark(
                local_session(spark_master), cfg.data_dir, cuts, attributes=tuple(cfg.contract.account_attributes)
            )
            X = features_to_pandas(sdf, ctx)
        else:
            X = build_features(ds, cuts, progress=run.progress)
    write_parquet(X.reset_index(), out)
    return X, cuts


def labels(run: Run, *, cutoffs: str | None, out: Path):
    cfg = run.cfg
    with run.open_dataset() as ds:
        cuts = parse_cutoffs(cutoffs, ds, max_cutoffs=cfg.train.max_cutoffs)
        y = make_labels(ds, cuts, horizon_days=cfg.labels.horizon_days, uplift=cfg.labels.uplift)
    write_parquet(y.reset_index(), out)
    return y


def revenue_movements(run: Run, *, months: int = 12, as_of=None) -> dict:
    """The MRR bridge per account and month (``movements.parquet``), the base's monthly totals
    (``mrr_bridge.csv``) and the trailing GRR/NRR per segment, CSM and declared attribute
    (``retention.csv``), each published in one step. With ``as_of``: only what was known before that day."""
    cfg, paths = run.cfg, run.paths
    with run.open_dataset(as_of=as_of) as ds:
        end = pd.Timestamp(as_of) if as_of is not None else ds.last_date() + pd.Timedelta(days=1)
        mv = movements(ds, end=end)
        broken = reconcile(mv)
        if not broken.empty:  # a guard, not an expected path: the bridge is built to reconcile
            raise ChurnmlError(f"revenue movements: {len(broken):,} account-months do not reconcile to the cent")
        ret = trailing_retention(ds, as_of=end, months=months, attributes=tuple(cfg.contract.account_attributes))
    bridge = monthly_summary(mv)
    write_parquet(mv, paths.movements_file)
    write_csv(bridge, paths.bridge_file)
    write_csv(ret, paths.retention_file)
    return {"movements": mv, "bridge": bridge, "retention": ret, "end": end, "months": months}
