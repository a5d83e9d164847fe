"""``churnml generate``, ``validate``, ``features`` and ``labels``: the data-side commands."""

from __future__ import annotations

from pathlib import Path

from churnml.cutoffs import parse_cutoffs
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.features import build_features
from churnml.flows.common import Run
from churnml.generate import GeneratorConfig, parse_terms, resolve_end, summarize
from churnml.generate import generate as simulate
from churnml.io.outputs import write_dataset, write_parquet
from churnml.labels import make_labels
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
