"""Runs the family queries on DuckDB and assembles one table indexed by (account_id, cutoff)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from churnml.errors import ChurnmlError
from churnml.features import commercial, effort, onboarding, support, usage
from churnml.features._frames import Context, day_number, from_day_number, to_day_frames
from churnml.features._registry import Indicator
from churnml.features.population import POPULATION_SQL

FAMILY_MODULES = (usage, effort, support, onboarding, commercial)
# which optional table a family needs: absent table -> the family's indicators are missing
_NEEDS = {"usage": "usage", "effort": "surveys", "support": "tickets", "onboarding": "milestones"}
KEY = ["account_id", "cutoff"]


def indicators_for(ctx: Context) -> list[Indicator]:
    """All indicator definitions for a dataset context, in column order."""
    return [i for m in FAMILY_MODULES for i in m.indicators(ctx)]


def cutoff_days(cutoffs: Iterable) -> np.ndarray:
    """Cutoff dates (anything ``pd.to_datetime`` takes) as sorted unique day numbers."""
    ts = pd.to_datetime(pd.Series(list(cutoffs)))
    if ts.isna().any():
        raise ChurnmlError("cutoffs must be dates (YYYY-MM-DD)")
    if (ts != ts.dt.normalize()).any():
        raise ChurnmlError("cutoffs are dates: the start of a day, without a time")
    return np.unique(day_number(ts).to_numpy(dtype="int64"))


class DuckDBRunner:
    """Runs the feature SQL on an in-process DuckDB over pandas frames."""

    def __init__(self, frames: dict[str, pd.DataFrame], cutoffs: np.ndarray, threads: int | None = None):
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        for name, df in frames.items():
            self.con.register(name, df)
        self.con.register("cutoffs", pd.DataFrame({"cutoff": cutoffs.astype("int64")}))

    def table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def fetch(self, sql: str) -> pd.DataFrame:
        return self.con.sql(sql).df()

    def close(self) -> None:
        self.con.close()


def feature_sql(ctx: Context) -> str:
    """The final query: the population joined to every family's view, columns in definition order.

    A family whose optional table is absent gives NULLs (missing), not zeros.
    """
    cols = []
    joins = []
    for module in FAMILY_MODULES:
        names = [i.name for i in module.indicators(ctx)]
        absent = _NEEDS.get(module.FAMILY) not in (None, *ctx.present)
        if absent:
            cols += [f"CAST(NULL AS DOUBLE) AS {n}" for n in names]
        else:
            cols += [f"f_{module.FAMILY}.{n}" for n in names]
            joins.append(f"LEFT JOIN f_{module.FAMILY} ON f_{module.FAMILY}.account_id = p.account_id "
                         f"AND f_{module.FAMILY}.cutoff = p.cutoff")
    return f"SELECT p.account_id, p.cutoff, {', '.join(cols)} FROM pop p {' '.join(joins)}"


def run_feature_sql(runner, ctx: Context, progress: bool = False):
    """Population, one view per family, then the final join: the same SQL on every engine."""
    runner.table("pop", POPULATION_SQL)
    for module in tqdm(FAMILY_MODULES, desc="features", disable=not progress, unit="family"):
        runner.view(f"f_{module.FAMILY}", module.sql(ctx))
    return runner.fetch(feature_sql(ctx))


def build_features(dataset, cutoffs: Sequence, *, progress: bool = False, threads: int | None = None) -> pd.DataFrame:
    """Every indicator for every account paying on day ``t-1``, for each cutoff ``t``.

    Returns a DataFrame indexed by (account_id, cutoff), one column per indicator in
    the order of :func:`indicators_for`. Only data known before each cutoff is used.
    """
    frames, ctx = to_day_frames(dataset)
    runner = DuckDBRunner(frames, cutoff_days(cutoffs), threads)
    try:
        out = run_feature_sql(runner, ctx, progress)
    finally:
        runner.close()
    return finish_features(out, ctx)


def finish_features(out: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Types, cutoff dates and the (account_id, cutoff) index of a fetched feature table."""
    defs = indicators_for(ctx)
    for i in defs:
        if i.kind == "categorical":
            out[i.name] = out[i.name].astype("string")
        else:
            out[i.name] = pd.to_numeric(out[i.name]).astype("float64")
    out["cutoff"] = from_day_number(out["cutoff"]).to_numpy()
    out = out.sort_values(KEY, kind="stable").set_index(KEY)
    out.attrs["indicators"] = [i.name for i in defs]
    return out[[i.name for i in defs]]
