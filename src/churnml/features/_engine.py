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


def _connect(frames: dict[str, pd.DataFrame], cutoffs: np.ndarray, threads: int | None):
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name, df in frames.items():
        con.register(name, df)
    con.register("cutoffs", pd.DataFrame({"cutoff": cutoffs.astype("int64")}))
    return con


def build_features(dataset, cutoffs: Sequence, *, progress: bool = False, threads: int | None = None) -> pd.DataFrame:
    """Every indicator for every account paying on day ``t-1``, for each cutoff ``t``.

    Returns a DataFrame indexed by (account_id, cutoff), one column per indicator in
    the order of :func:`indicators_for`. Only data known before each cutoff is used.
    """
    frames, ctx = to_day_frames(dataset)
    days = cutoff_days(cutoffs)
    con = _connect(frames, days, threads)
    try:
        con.execute(f"CREATE TEMP TABLE pop AS {POPULATION_SQL}")
        out = con.sql("SELECT account_id, cutoff FROM pop").df()
        for module in tqdm(FAMILY_MODULES, desc="features", disable=not progress, unit="family"):
            part = con.sql(module.sql(ctx)).df()
            names = [i.name for i in module.indicators(ctx)]
            if list(part.columns[2:]) != names:
                raise RuntimeError(f"{module.FAMILY}: query columns do not match the definitions")
            if _NEEDS.get(module.FAMILY) not in (None, *ctx.present):
                part[names] = np.nan
            out = out.merge(part, on=KEY, how="left", validate="one_to_one")
    finally:
        con.close()
    return _finish(out, ctx)


def _finish(out: pd.DataFrame, ctx: Context) -> pd.DataFrame:
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
