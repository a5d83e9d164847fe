"""Runs the family queries on DuckDB and assembles one table indexed by (account_id, cutoff)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from churnml.cutoffs import cutoff_days, from_day_number
from churnml.dataset import Context, as_dataset
from churnml.errors import ChurnmlError
from churnml.features import commercial, effort, onboarding, support, usage
from churnml.features._registry import Indicator
from churnml.features.population import POPULATION_SQL
from churnml.progress import steps

FAMILY_MODULES = (usage, effort, support, onboarding, commercial)
# which optional table a family needs: absent table -> the family's indicators are missing
FAMILY_TABLE = {"usage": "usage", "effort": "surveys", "support": "tickets", "onboarding": "milestones"}
KEY = ["account_id", "cutoff"]
_WORK_TABLES = ("cutoffs", "pop", "f_family", *(f"f_{m.FAMILY}" for m in FAMILY_MODULES))


def indicators_for(ctx: Context) -> list[Indicator]:
    """All indicator definitions for a dataset context, in column order."""
    defs = [i for m in FAMILY_MODULES for i in m.indicators(ctx)]
    names = [i.name for i in defs]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ChurnmlError(
            f"declared account attribute(s) {clash} have the name of a churnml indicator; rename the "
            f"column(s) or leave them out of contract.account_attributes"
        )
    return defs


class DuckDBRunner:
    """Runs the feature SQL on the dataset's DuckDB connection; work tables are dropped on close."""

    def __init__(self, con, cutoffs: np.ndarray):
        self.con = con
        self.con.register("_cutoffs_frame", pd.DataFrame({"cutoff": cutoffs.astype("int64")}))
        self.con.execute("CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT cutoff FROM _cutoffs_frame")
        self.con.unregister("_cutoffs_frame")

    def table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def fetch(self, sql: str) -> pd.DataFrame:
        return self.con.sql(sql).df()

    def close(self) -> None:
        for t in _WORK_TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS {t}")


def feature_sql(ctx: Context) -> str:
    """The final query: the population joined to every family's table, columns in definition order.

    A family whose optional table is absent gives NULLs (missing), not zeros.
    """
    cols = []
    joins = []
    for module in FAMILY_MODULES:
        names = [i.sql_name for i in module.indicators(ctx)]
        absent = FAMILY_TABLE.get(module.FAMILY) not in (None, *ctx.present)
        if absent:
            cols += [f"CAST(NULL AS DOUBLE) AS {n}" for n in names]
        else:
            cols += [f"f_{module.FAMILY}.{n}" for n in names]
            joins.append(
                f"LEFT JOIN f_{module.FAMILY} ON f_{module.FAMILY}.account_id = p.account_id "
                f"AND f_{module.FAMILY}.cutoff = p.cutoff"
            )
    return (
        f"SELECT p.account_id, p.cutoff, {', '.join(cols)} FROM pop p {' '.join(joins)} ORDER BY p.account_id, p.cutoff"
    )


def run_feature_sql(runner, ctx: Context, progress: bool = False):
    """Population, one table per family (computed one after the other, so the working memory is one
    family's), then the final join: the same SQL on every engine."""
    runner.table("pop", POPULATION_SQL(ctx))
    for module in steps(FAMILY_MODULES, "features", progress, unit="family", units="families"):
        if FAMILY_TABLE.get(module.FAMILY) in (None, *ctx.present):
            runner.table(f"f_{module.FAMILY}", module.sql(ctx))
    return runner.fetch(feature_sql(ctx))


def build_features(dataset, cutoffs: Sequence, *, progress=None) -> pd.DataFrame:
    """Every indicator for every account paying on day ``t-1``, for each cutoff ``t``.

    ``dataset`` is a :class:`~churnml.dataset.Dataset` (or frames, see
    :func:`~churnml.dataset.as_dataset`). Returns a DataFrame indexed by (account_id,
    cutoff), one column per indicator in the order of :func:`indicators_for`. Only
    data known before each cutoff is used.

    Each family's query runs on its own into a table (DuckDB spills it if need be), then its
    rows stream out in the population's order, in batches, straight into their columns: the
    working memory is one family's and no result is held twice. The same SQL as
    :func:`run_feature_sql`, which joins the families in the engine (Spark).
    """
    ds, owned = as_dataset(dataset)
    try:
        ctx = ds.context()
        runner = DuckDBRunner(ds.con, cutoff_days(cutoffs))
        try:
            runner.table("pop", POPULATION_SQL(ctx))
            keys = runner.fetch("SELECT account_id, cutoff FROM pop ORDER BY account_id, cutoff")
            n = len(keys)
            columns: dict[str, np.ndarray] = {}
            for module in steps(FAMILY_MODULES, "features", progress, unit="family", units="families"):
                defs = module.indicators(ctx)
                for i in defs:
                    columns[i.sql_name] = (
                        np.full(n, None, dtype=object) if i.kind == "categorical" else np.full(n, np.nan)
                    )
                if FAMILY_TABLE.get(module.FAMILY) not in (None, *ctx.present):
                    continue  # the family's table is absent: its indicators stay missing
                runner.table("f_family", module.sql(ctx))  # one row per population row, spilled if need be
                cols = ", ".join(i.sql_name for i in defs)
                start = 0
                reader = runner.con.sql(f"SELECT {cols} FROM f_family ORDER BY account_id, cutoff")
                for batch in reader.to_arrow_reader(batch_size=65_536):
                    end = start + batch.num_rows
                    for i in defs:
                        col = batch.column(i.sql_name)
                        columns[i.sql_name][start:end] = (
                            col.to_numpy(zero_copy_only=False)
                            if i.kind == "categorical"
                            else col.cast("double").to_numpy(zero_copy_only=False)
                        )
                    start = end
                if start != n:
                    raise RuntimeError(f"family {module.FAMILY} returned {start} rows for {n} population rows")
                runner.con.execute("DROP TABLE f_family")
        finally:
            runner.close()
    finally:
        if owned:
            ds.close()
    out = pd.DataFrame(
        {"account_id": keys["account_id"].to_numpy(), "cutoff": keys["cutoff"].to_numpy(), **columns}, copy=False
    )
    return finish_features(out, ctx)


def finish_features(out: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Types, names, cutoff dates and the (account_id, cutoff) index of a fetched feature table.

    Works in place on ``out`` (columns are converted one at a time, so the table is not held twice).
    """
    defs = indicators_for(ctx)
    index = pd.MultiIndex.from_arrays(
        [out["account_id"].astype(str).to_numpy(dtype=object), from_day_number(out["cutoff"]).to_numpy()], names=KEY
    )
    out = out.drop(columns=["account_id", "cutoff"])
    for i in defs:
        col = out[i.sql_name]
        if i.kind == "categorical":
            out[i.sql_name] = col.astype("string")
        elif col.dtype != "float64":
            out[i.sql_name] = pd.to_numeric(col).astype("float64")
    out = out.rename(columns={i.sql_name: i.name for i in defs if i.sql_name != i.name})[[i.name for i in defs]]
    out.index = index
    if not index.is_monotonic_increasing:
        out = out.sort_index(kind="stable")
    out.attrs["indicators"] = [i.name for i in defs]
    return out
