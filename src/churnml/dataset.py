"""One customer base, read and typed by DuckDB: the input every stage works on.

>>> from churnml.api import load_dataset          # doctest: +SKIP
>>> with load_dataset("data/demo") as ds:          # doctest: +SKIP
...     X = build_features(ds, ["2026-06-01"])       # pandas only receives the feature frame

A :class:`Dataset` is built on a DuckDB workspace (:mod:`churnml.duck`) holding the raw
tables the I/O layer opened (:mod:`churnml.io.tables`, files; or a database): it checks
every contract rule in SQL (:mod:`churnml.validate`) and defines typed views over them, so
a base of tens of millions of usage rows is never held in pandas. Flows open bases with
:meth:`churnml.flows.common.Run.open_dataset`; notebooks and scripts with
:func:`churnml.api.load_dataset`.
Two shapes of view are defined on :attr:`Dataset.con`:

* ``t_<table>``: the contract's columns, typed (dates as midnight TIMESTAMPs,
  timestamps in UTC, numbers as DOUBLE, text as VARCHAR); absent optional columns
  are NULL;
* ``accounts``, ``subs``, ``usage``, ``tickets``, ``surveys``, ``milestones``: the
  day-number frames the feature and label SQL expects (see
  :mod:`churnml.cutoffs`). ``feature_*`` usage columns and declared account
  attributes get safe internal names (``f0``, ``f1``, ...; ``a0``, ...), so no column
  name ever becomes SQL text.

:meth:`Dataset.from_frames` does the same for in-memory pandas frames. The
``accounts`` ... ``milestones`` attributes return the typed tables as pandas frames,
for small bases, tests and notebooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from churnml.contract import (
    FACT_DATES,
    SPECS,
    TABLES,
    TypedColumn,
    quote_ident,
    sql_parse,
    storage_class,
    typed_columns,
)
from churnml.duck import OpenProblem, RawTable, Workspace, register_frames
from churnml.errors import ChurnmlError, ContractError
from churnml.validate import ValidationReport, check_tables

EPOCH_SQL = "DATE '1970-01-01'"


@dataclass(frozen=True)
class Context:
    """What the feature SQL needs to know about a base: its ``feature_*`` usage columns (SQL names
    ``f0``, ``f1``, ...), which tables are present, and its declared account attributes as
    ``(name, kind)`` pairs (SQL names ``a0``, ...; kind ``float`` or ``string``)."""

    feature_columns: tuple[str, ...] = ()
    present: frozenset[str] = field(default_factory=frozenset)
    attributes: tuple[tuple[str, str], ...] = ()
    first_value_milestone: str = "first_value"


@dataclass(frozen=True)
class Dialect:
    """How the day-number views are said in one SQL engine: identifier quoting, whole and fractional
    days since 1970-01-01 (UTC)."""

    name: str
    quote: Callable[[str], str]
    day: Callable[[str], str]
    frac: Callable[[str], str]


DUCKDB = Dialect(
    "duckdb", quote_ident, lambda e: f"(CAST({e} AS DATE) - {EPOCH_SQL})", lambda e: f"(epoch_us({e}) / 86400000000.0)"
)
SPARK = Dialect(
    "spark",
    lambda n: "`" + str(n).replace("`", "``") + "`",
    lambda e: f"CAST(floor(unix_micros(CAST({e} AS TIMESTAMP)) / 86400000000.0) AS BIGINT)",
    lambda e: f"(unix_micros(CAST({e} AS TIMESTAMP)) / 86400000000.0)",
)


def day_views(dialect: Dialect, attributes=(), feature_columns=()) -> dict[str, str]:
    """The day-number views the feature and label SQL read (``accounts``, ``subs``, ``usage``, ``tickets``,
    ``surveys``, ``milestones``), over the typed views ``t_<table>``, written once for DuckDB and Spark:
    dates as whole days since 1970-01-01, timestamps as fractional days; declared attributes as ``a0``,
    ``a1`` ... and ``feature_*`` usage columns as ``f0``, ``f1`` ... (no column name becomes SQL text)."""
    q, day, frac = dialect.quote, dialect.day, dialect.frac
    attrs = "".join(f", {q(a)} AS a{i}" for i, a in enumerate(attributes))
    feats = "".join(f", {q(c)} AS f{i}" for i, c in enumerate(feature_columns))
    return {
        "accounts": (
            f"SELECT account_id, {day('signup_date')} AS signup, segment, industry, region{attrs} FROM t_accounts"
        ),
        "subs": f"SELECT account_id, {day('effective_date')} AS day, mrr, seats, plan, "
        f"{day('contract_end')} AS contract_end, "
        "(mrr = 0 AND COALESCE(end_kind, 'churned') <> 'completed') AS churned, "
        "(mrr = 0 AND COALESCE(end_kind, '') = 'completed') AS completed FROM t_subscriptions",
        "usage": f"SELECT account_id, {day('date')} AS day, active_users, events{feats} FROM t_usage",
        "tickets": f"SELECT account_id, {frac('opened_at')} AS opened, {frac('closed_at')} AS closed, priority, "
        "first_response_minutes FROM t_tickets",
        "surveys": f"SELECT account_id, {frac('responded_at')} AS answered, kind, score FROM t_surveys",
        "milestones": f"SELECT account_id, milestone, {day('due_date')} AS due, {day('completed_at')} AS completed "
        "FROM t_milestones",
    }


class Dataset:
    """The six tables of one customer base, on a DuckDB connection (see the module docstring)."""

    def __init__(
        self,
        ws: Workspace,
        raw: dict[str, RawTable],
        problems: list,
        *,
        data_dir: Path | None = None,
        attributes: tuple[str, ...] = (),
        last_date=None,
        as_of=None,
        source: str | None = None,
    ):
        """``ws`` holds the ``raw`` tables as opened (``problems``: the tables that could not be); with
        ``as_of``, the typed views hold only what was known before that day (the contract's point-in-time
        rules: rows dated on or after it are gone, a ticket closed on or after it is open, a first response
        or a milestone completed on or after it has not happened yet, an account signed up on or after it
        does not exist). Validation always checks the whole tables. The dataset owns ``ws`` (closes it).
        ``source`` names a base that is not a data folder (a database schema) in messages."""
        self.ws, self.raw, self.problems = ws, raw, problems
        self.source = source  # how messages name a base that is not a data folder (a database schema)
        self.as_of = pd.Timestamp(as_of).normalize() if as_of is not None else None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.attribute_names = tuple(attributes)
        self._last_date = pd.Timestamp(last_date).normalize() if last_date is not None else None
        self._report: ValidationReport | None = None
        self._built = False
        self._frames: dict[str, pd.DataFrame] = {}
        self._attr_kinds: dict[str, str] | None = None

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        tables: dict,
        *,
        validate: bool = False,
        attributes=(),
        last_date=None,
        today=None,
        threads: int | None = None,
    ) -> Dataset:
        """A base from in-memory pandas frames (``None`` or a missing key = an absent optional table)."""
        ws = Workspace(threads)
        try:
            raw = register_frames(ws, {k: v for k, v in tables.items() if v is not None})
            problems = []
            for name in TABLES:
                if SPECS[name].required and name not in raw:
                    problems.append(
                        OpenProblem(name, "required", f"required table missing ({name}.parquet or {name}.csv)")
                    )
            ds = cls(ws, raw, problems, data_dir=None, attributes=attributes, last_date=last_date)
            if validate:
                ds.require_valid(today=today, where="generated data")
            return ds
        except BaseException:
            ws.close()
            raise

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def con(self):
        """The DuckDB connection with the typed and day-number views (built on first use)."""
        if not self._built:
            self._build()
        return self.ws.con

    # --- validation ----------------------------------------------------------------------------
    def check(self, today=None, progress=None) -> ValidationReport:
        """Every contract rule (cached after the first call)."""
        if self._report is None:
            self._report = check_tables(
                self.ws.con,
                self.raw,
                self.problems,
                data_dir=self.source or (self.data_dir if self.data_dir is not None else "in-memory tables"),
                attributes=self.attribute_kinds(),
                declared=self.attribute_names,
                today=today,
                progress=progress,
            )
        return self._report

    def require_valid(self, today=None, where: str | None = None, progress=None) -> ValidationReport:
        report = self.check(today, progress)
        if not report.ok:
            raise ContractError(
                f"{where or self.source or self.data_dir} breaks the data contract:\n{report.format(errors_only=True)}",
                report.errors,
            )
        return report

    # --- what the base holds ---------------------------------------------------------------------
    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.raw)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        u = self.raw.get("usage")
        return tuple(sorted(c for c in u.columns if c.startswith("feature_"))) if u is not None else ()

    def attribute_kinds(self) -> dict[str, str]:
        """Declared account attributes present in the accounts table: name -> ``float`` (numbers) or ``string``."""
        if self._attr_kinds is None:
            acc = self.raw.get("accounts")
            kinds = {}
            for a in self.attribute_names:
                if acc is None or a not in acc.columns:
                    continue
                kinds[a] = self._attribute_kind(acc, a)
            self._attr_kinds = kinds
        return self._attr_kinds

    def _attribute_kind(self, acc: RawTable, name: str) -> str:
        t = acc.columns[name]
        if storage_class(t) == "number":
            return "float"
        if storage_class(t) != "text":
            return "string"
        p = sql_parse(quote_ident(name), t, "float")
        n_present, n_bad = self.ws.con.sql(
            f"SELECT count_if({p.present}), count_if({p.bad}) FROM {acc.relation}"
        ).fetchall()[0]
        return "float" if n_present and not n_bad else "string"

    def context(self) -> Context:
        return Context(
            feature_columns=self.feature_columns, present=self.present, attributes=tuple(self.attribute_kinds().items())
        )

    def last_date(self) -> pd.Timestamp:
        """The last day the data covers: the latest dated fact in any table."""
        if self._last_date is None:
            parts = [
                f"SELECT max({quote_ident(c)}) AS d FROM t_{t}"
                for t, cols in FACT_DATES.items()
                if t in self.raw
                for c in cols
            ]
            d = self.con.sql(" UNION ALL ".join(f"({p})" for p in parts)).fetchall()
            days = [pd.Timestamp(x[0]).normalize() for x in d if x[0] is not None]
            if not days:
                raise ChurnmlError("the data has no dated rows")
            self._last_date = max(days)
        return self._last_date

    def first_subscription_date(self) -> pd.Timestamp:
        d = self.con.sql("SELECT min(effective_date) FROM t_subscriptions").fetchall()[0][0]
        if d is None:
            raise ChurnmlError("subscriptions has no rows: nothing to measure")
        return pd.Timestamp(d)

    # --- typed views -----------------------------------------------------------------------------
    def typed(self, name: str) -> list[TypedColumn]:
        r = self.raw.get(name)
        extra = dict(self.attribute_kinds().items()) if name == "accounts" else None
        return typed_columns(SPECS[name], r.columns if r else {}, r.zones if r else {}, extra)

    def _build(self) -> None:
        con = self.ws.con
        for name in TABLES:
            cols = self.typed(name)
            select = ", ".join(f"{c.value} AS {quote_ident(c.name)}" for c in cols)
            r = self.raw.get(name)
            source = f"FROM {r.relation}" if r is not None else "WHERE FALSE"
            sql = f"SELECT {select} {source}"
            if self.as_of is not None:
                sql = _known_before(name, sql, f"TIMESTAMP '{self.as_of:%Y-%m-%d}'")
            con.execute(f"CREATE OR REPLACE TEMP VIEW t_{name} AS {sql}")
        for name, sql in day_views(DUCKDB, tuple(self.attribute_kinds()), self.feature_columns).items():
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        self._built = True

    # --- pandas views of the typed tables (small bases, tests, notebooks) ---------------------------
    def frame(self, name: str) -> pd.DataFrame | None:
        """The typed table as pandas (None when the optional table is absent), rows in a fixed order."""
        if name not in self.raw:
            return None
        if name not in self._frames:
            df = self.con.sql(f"SELECT * FROM t_{name} ORDER BY ALL").df()
            self._frames[name] = _pandas_types(df, self.typed(name))
        return self._frames[name]

    def tables(self) -> dict[str, pd.DataFrame | None]:
        return {t: self.frame(t) for t in TABLES}

    accounts = property(lambda self: self.frame("accounts"))
    subscriptions = property(lambda self: self.frame("subscriptions"))
    usage = property(lambda self: self.frame("usage"))
    tickets = property(lambda self: self.frame("tickets"))
    surveys = property(lambda self: self.frame("surveys"))
    milestones = property(lambda self: self.frame("milestones"))


# the contract's point-in-time rules as SQL over a typed table (see Dataset.open(as_of=...))
_KNOWN = {
    "accounts": ("signup_date < {t}", {}),
    "subscriptions": ("effective_date < {t}", {}),
    "usage": ("date < {t}", {}),
    "tickets": (
        "opened_at < {t}",
        {
            "closed_at": "CASE WHEN closed_at < {t} THEN closed_at END",
            "first_response_minutes": "CASE WHEN opened_at + to_microseconds(CAST(first_response_minutes * 60000000 AS "
            "BIGINT)) < {t} THEN first_response_minutes END",
        },
    ),
    "surveys": ("responded_at < {t}", {}),
    "milestones": ("TRUE", {"completed_at": "CASE WHEN completed_at < {t} THEN completed_at END"}),
}


def _known_before(table: str, sql: str, t: str) -> str:
    where, replace = _KNOWN[table]
    rep = ", ".join(f"{expr.format(t=t)} AS {quote_ident(col)}" for col, expr in replace.items())
    star = f"* REPLACE ({rep})" if rep else "*"
    return f"SELECT {star} FROM ({sql}) WHERE {where.format(t=t)}"


def _pandas_types(df: pd.DataFrame, cols: list[TypedColumn]) -> pd.DataFrame:
    out = {}
    for c in cols:
        s = df[c.name]
        if c.kind in ("string", "category"):
            out[c.name] = s.astype("object").where(s.notna(), None)
        elif c.kind in ("date", "timestamp"):
            out[c.name] = pd.to_datetime(s).astype("datetime64[us]")
        elif c.name in ("active_users", "events"):
            out[c.name] = s.fillna(0).astype("int64")
        elif c.name == "seats":
            out[c.name] = pd.array(np.round(s.to_numpy(dtype="float64", na_value=np.nan)), dtype="Float64").astype(
                "Int64"
            )
        else:
            out[c.name] = s.astype("float64")
    return pd.DataFrame(out, index=df.index)


def as_dataset(obj) -> tuple[Dataset, bool]:
    """``obj`` as a :class:`Dataset`, and whether the caller owns (must close) it.

    Takes a Dataset, a dict of frames, or any object with table attributes (``accounts``,
    ``subscriptions``, ... as pandas frames or None) and optionally ``last_date()``.
    """
    if isinstance(obj, Dataset):
        return obj, False
    if isinstance(obj, dict):
        return Dataset.from_frames(obj), True
    tables = {t: getattr(obj, t, None) for t in TABLES}
    last = obj.last_date() if callable(getattr(obj, "last_date", None)) else None
    return Dataset.from_frames(tables, last_date=last), True
