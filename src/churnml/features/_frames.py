"""Day-number frames: the contract tables in the shape the feature SQL expects.

Dates become whole day numbers (days since 1970-01-01) and timestamps fractional day
numbers, so every window is integer arithmetic (``day >= cutoff - 30``) and the same
SQL runs on DuckDB locally and on Spark SQL. A cutoff ``t`` is the day number of the
start of day ``t``: a timestamp is before ``t`` exactly when its day number is ``< t``.
Optional tables that are absent become empty frames with the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnml.contract import SPECS

EPOCH = pd.Timestamp("1970-01-01")
_DAY = pd.Timedelta(days=1)


def day_number(values) -> pd.Series:
    """Whole day numbers of dates/timestamps (nullable Int64; NaT -> <NA>)."""
    s = pd.Series(pd.to_datetime(values))
    return np.floor((s - EPOCH) / _DAY).astype("Int64")


def day_fraction(values) -> pd.Series:
    """Fractional day numbers of timestamps (float64; NaT -> NaN)."""
    s = pd.Series(pd.to_datetime(values))
    return ((s - EPOCH) / _DAY).astype("float64")


def from_day_number(days) -> pd.Series:
    """Day numbers back to midnight timestamps (datetime64[us])."""
    return (EPOCH + pd.to_timedelta(pd.Series(days, dtype="int64"), unit="D")).astype("datetime64[us]")


def _table_or_empty(dataset, name: str) -> pd.DataFrame:
    """The table, or an empty frame with the contract's columns when the optional table is absent."""
    df = getattr(dataset, name)
    if df is not None:
        return df
    return pd.DataFrame({c.name: pd.Series(dtype=object) for c in SPECS[name].columns})


@dataclass(frozen=True)
class Context:
    """What the feature SQL needs to know about a dataset."""

    feature_columns: tuple[str, ...] = ()
    present: frozenset[str] = field(default_factory=frozenset)
    first_value_milestone: str = "first_value"


def to_day_frames(dataset) -> tuple[dict[str, pd.DataFrame], Context]:
    """Convert a loaded :class:`~churnml.io.Dataset` to day-number frames and a context."""
    a = dataset.accounts
    accounts = pd.DataFrame({
        "account_id": a["account_id"].astype(str),
        "signup": day_number(a["signup_date"]),
        "segment": a["segment"].astype("string"),
        "industry": a["industry"].astype("string"),
        "region": a["region"].astype("string"),
    })
    s = dataset.subscriptions
    subs = pd.DataFrame({
        "account_id": s["account_id"].astype(str),
        "day": day_number(s["effective_date"]),
        "mrr": s["mrr"].astype("float64"),
        "seats": pd.to_numeric(s["seats"]).astype("Float64"),
        "plan": s["plan"].astype("string"),
        "contract_end": day_number(s["contract_end"]),
    })
    tables = {name: _table_or_empty(dataset, name) for name in ("usage", "tickets", "surveys", "milestones")}
    present = {"accounts", "subscriptions"} | {n for n in tables if getattr(dataset, n) is not None}
    u = tables["usage"]
    feature_cols = tuple(sorted(c for c in u.columns if c.startswith("feature_")))
    usage = pd.DataFrame({
        "account_id": u["account_id"].astype(str),
        "day": day_number(u["date"]),
        "active_users": u["active_users"].astype("float64"),
        "events": u["events"].astype("float64"),
    })
    for c in feature_cols:
        usage[c] = u[c].astype("float64")
    t = tables["tickets"]
    tickets = pd.DataFrame({
        "account_id": t["account_id"].astype(str),
        "opened": day_fraction(t["opened_at"]),
        "closed": day_fraction(t["closed_at"]),
        "priority": t["priority"].astype("string"),
        "first_response_minutes": pd.to_numeric(t["first_response_minutes"]).astype("float64"),
    })
    v = tables["surveys"]
    surveys = pd.DataFrame({
        "account_id": v["account_id"].astype(str),
        "answered": day_fraction(v["responded_at"]),
        "kind": v["kind"].astype("string"),
        "score": v["score"].astype("float64"),
    })
    m = tables["milestones"]
    milestones = pd.DataFrame({
        "account_id": m["account_id"].astype(str),
        "milestone": m["milestone"].astype("string"),
        "due": day_number(m["due_date"]),
        "completed": day_number(m["completed_at"]),
    })
    frames = {"accounts": accounts, "subs": subs, "usage": usage, "tickets": tickets,
              "surveys": surveys, "milestones": milestones}
    return frames, Context(feature_columns=feature_cols, present=frozenset(present))
