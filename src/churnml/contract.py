"""The data contract (docs/DATA_CONTRACT.md) as declarative table specs.

One definition serves the reader (types) and the validator (rules). Column kinds:
``string``, ``date`` (ISO ``YYYY-MM-DD``), ``timestamp`` (ISO 8601, UTC when no
offset), ``float``, ``int`` (whole numbers) and ``category`` (a string from a fixed
set). ``required`` means the column must exist; ``nonnull`` that every row needs a
value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = True
    nonnull: bool = False
    min: float | None = None
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: bool
    columns: tuple[Column, ...]
    key: tuple[str, ...] | None  # unique key, if any
    example_key: tuple[str, ...]  # columns that identify a row in messages
    date_column: str | None  # the main date, for the summary
    prefix: str | None = None  # a family of extra numeric columns (usage: feature_*)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


C = Column
SPECS: dict[str, TableSpec] = {
    "accounts": TableSpec("accounts", True, (
        C("account_id", "string", nonnull=True), C("name", "string"), C("segment", "string", False),
        C("industry", "string", False), C("region", "string", False), C("csm_owner", "string", False),
        C("signup_date", "date", nonnull=True),
    ), key=("account_id",), example_key=("account_id",), date_column="signup_date"),
    "subscriptions": TableSpec("subscriptions", True, (
        C("account_id", "string", nonnull=True), C("effective_date", "date", nonnull=True),
        C("mrr", "float", nonnull=True, min=0), C("seats", "int", False, min=0), C("plan", "string", False),
        C("contract_end", "date", False),
    ), key=("account_id", "effective_date"), example_key=("account_id", "effective_date"),
        date_column="effective_date"),
    "usage": TableSpec("usage", False, (
        C("account_id", "string", nonnull=True), C("date", "date", nonnull=True),
        C("active_users", "int", nonnull=True, min=0), C("events", "int", nonnull=True, min=0),
    ), key=("account_id", "date"), example_key=("account_id", "date"), date_column="date", prefix="feature_"),
    "tickets": TableSpec("tickets", False, (
        C("ticket_id", "string", nonnull=True), C("account_id", "string", nonnull=True),
        C("opened_at", "timestamp", nonnull=True), C("closed_at", "timestamp"),
        C("priority", "category", nonnull=True, allowed=("low", "normal", "high", "urgent")),
        C("category", "string", False), C("first_response_minutes", "float", False, min=0),
    ), key=("ticket_id",), example_key=("ticket_id",), date_column="opened_at"),
    "surveys": TableSpec("surveys", False, (
        C("account_id", "string", nonnull=True), C("responded_at", "timestamp", nonnull=True),
        C("kind", "category", nonnull=True, allowed=("CES", "CSAT", "NPS")), C("score", "float", nonnull=True),
        C("ticket_id", "string", False),
    ), key=None, example_key=("account_id", "responded_at"), date_column="responded_at"),
    "milestones": TableSpec("milestones", False, (
        C("account_id", "string", nonnull=True), C("milestone", "string", nonnull=True),
        C("due_date", "date", False), C("completed_at", "date"),
    ), key=None, example_key=("account_id", "milestone"), date_column="completed_at"),
}
TABLES = tuple(SPECS)
SCORE_RANGES = {"CES": (1, 7), "CSAT": (1, 5), "NPS": (0, 10)}
PREFIX_KIND = "float"


def parse(values: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray]:
    """Parse raw values to ``kind``; returns (typed values, mask of present-but-unparseable rows).

    Missing values (None, NaN, empty or blank strings) stay missing and are not errors
    here. Fully vectorised: the demo base has millions of rows.
    """
    s = values
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
            or pd.api.types.is_bool_dtype(s)):
        st = s.astype("string")
        s = st.mask(st.str.strip().eq("").fillna(False))
    present = s.notna().to_numpy()
    if kind in ("string", "category"):
        out = s.astype("string").astype("object")
        return out.where(present, None), np.zeros(len(s), bool)
    if kind in ("date", "timestamp"):
        if pd.api.types.is_datetime64_any_dtype(s):
            ts = s.dt.tz_convert("UTC") if getattr(s.dt, "tz", None) is not None else s.dt.tz_localize("UTC")
        else:
            ts = pd.to_datetime(s.astype("object"), utc=True, format="ISO8601", errors="coerce")
        ts = ts.dt.tz_convert(None).astype("datetime64[us]")
        if kind == "date":
            ts = ts.dt.floor("D")
        return ts, present & ts.isna().to_numpy()
    if kind in ("float", "int"):
        num = pd.to_numeric(s, errors="coerce").astype("float64")
        v = num.to_numpy()
        finite = np.isfinite(v)
        bad = present & ~finite
        if kind == "int":
            bad |= present & finite & (v != np.floor(np.where(finite, v, 0)))
        return num.where(~bad), bad
    raise ValueError(f"unknown column kind {kind!r}")
