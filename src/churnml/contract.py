"""The data contract (docs/DATA_CONTRACT.md, v1.1) as declarative table specs.

One definition serves the reader (types), the validator (rules) and the typed views
the features run on. Column kinds: ``string``, ``date`` (ISO ``YYYY-MM-DD``),
``timestamp`` (ISO 8601, UTC when no offset), ``float``, ``int`` (whole numbers) and
``category`` (a string from a fixed set). ``required`` means the column must exist;
``nonnull`` that every row needs a value. ``event`` marks the date of something that
happened (checked against today and the rest of the table); a date that is planned
(``contract_end``, ``due_date``) may lie in the future.

:func:`sql_parse` turns a raw column of any stored type (CSV text, Parquet numbers,
dates, naive or zoned timestamps, pandas frames) into the kind's typed value with
SQL, and says which rows are present but unreadable: validation counts those, the
typed views use the values. Identifiers always go through :func:`quote_ident`, so a
column name can never be read as SQL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = True
    nonnull: bool = False
    min: float | None = None
    allowed: tuple[str, ...] | None = None
    event: bool = False


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


# the contract's label settings when none are given (section "Labels")
DEFAULT_HORIZON_DAYS = 90
DEFAULT_UPLIFT = 0.10

C = Column
END_KINDS = ("churned", "completed")
SPECS: dict[str, TableSpec] = {
    "accounts": TableSpec(
        "accounts",
        True,
        (
            C("account_id", "string", nonnull=True),
            C("name", "string"),
            C("segment", "string", False),
            C("industry", "string", False),
            C("region", "string", False),
            C("csm_owner", "string", False),
            C("signup_date", "date", nonnull=True, event=True),
        ),
        key=("account_id",),
        example_key=("account_id",),
        date_column="signup_date",
    ),
    "subscriptions": TableSpec(
        "subscriptions",
        True,
        (
            C("account_id", "string", nonnull=True),
            C("effective_date", "date", nonnull=True, event=True),
            C("mrr", "float", nonnull=True, min=0),
            C("seats", "int", False, min=0),
            C("plan", "string", False),
            C("contract_end", "date", False),
            C("end_kind", "category", False, allowed=END_KINDS),
        ),
        key=("account_id", "effective_date"),
        example_key=("account_id", "effective_date"),
        date_column="effective_date",
    ),
    "usage": TableSpec(
        "usage",
        False,
        (
            C("account_id", "string", nonnull=True),
            C("date", "date", nonnull=True, event=True),
            C("active_users", "int", nonnull=True, min=0),
            C("events", "int", nonnull=True, min=0),
        ),
        key=("account_id", "date"),
        example_key=("account_id", "date"),
        date_column="date",
        prefix="feature_",
    ),
    "tickets": TableSpec(
        "tickets",
        False,
        (
            C("ticket_id", "string", nonnull=True),
            C("account_id", "string", nonnull=True),
            C("opened_at", "timestamp", nonnull=True, event=True),
            C("closed_at", "timestamp", event=True),
            C("priority", "category", nonnull=True, allowed=("low", "normal", "high", "urgent")),
            C("category", "string", False),
            C("first_response_minutes", "float", False, min=0),
        ),
        key=("ticket_id",),
        example_key=("ticket_id",),
        date_column="opened_at",
    ),
    "surveys": TableSpec(
        "surveys",
        False,
        (
            C("account_id", "string", nonnull=True),
            C("responded_at", "timestamp", nonnull=True, event=True),
            C("kind", "category", nonnull=True, allowed=("CES", "CSAT", "NPS")),
            C("score", "float", nonnull=True),
            C("ticket_id", "string", False),
        ),
        key=None,
        example_key=("account_id", "responded_at"),
        date_column="responded_at",
    ),
    "milestones": TableSpec(
        "milestones",
        False,
        (
            C("account_id", "string", nonnull=True),
            C("milestone", "string", nonnull=True),
            C("due_date", "date", False),
            C("completed_at", "date", event=True),
        ),
        key=None,
        example_key=("account_id", "milestone"),
        date_column="completed_at",
    ),
}
TABLES = tuple(SPECS)
SCORE_RANGES = {"CES": (1, 7), "CSAT": (1, 5), "NPS": (0, 10)}
PREFIX_KIND = "float"
# dated facts a table's "last day" is read from (the latest of them is the end of the data)
FACT_DATES = {
    "subscriptions": ("effective_date",),
    "usage": ("date",),
    "tickets": ("opened_at", "closed_at"),
    "surveys": ("responded_at",),
    "milestones": ("completed_at",),
}


def quote_ident(name: str) -> str:
    """A SQL identifier in double quotes, embedded quotes doubled: safe for any column name."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal, embedded single quotes doubled."""
    return "'" + str(text).replace("'", "''") + "'"


_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "DECIMAL",
    "BOOLEAN",
)


def storage_class(sql_type: str) -> str:
    """How a column is stored, from its DuckDB type: text, number, date, timestamp, timestamptz or other."""
    t = sql_type.upper()
    if t.startswith(("VARCHAR", "ENUM", "STRING", "TEXT", "NULL", '"NULL"')) or t == "":
        return "text"
    if t.startswith(_NUMERIC):
        return "number"
    if t == "DATE":
        return "date"
    if "WITH TIME ZONE" in t or t.startswith("TIMESTAMPTZ"):  # TIMESTAMPTZ_NS: what pandas writes by default
        return "timestamptz"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


@dataclass(frozen=True)
class Parsed:
    """SQL expressions over one raw column: its typed value, and which rows are present and unreadable."""

    value: str
    present: str
    bad: str


def sql_parse(col: str, sql_type: str, kind: str, zone: str | None = None) -> Parsed:
    """Typed value of the raw column ``col`` (an identifier expression) stored as ``sql_type``.

    Missing values (NULL, NaN, empty or blank text) stay missing and are not errors.
    Dates are dates: a date column holding a zoned timestamp keeps the calendar day
    it was written with (``zone``: the zone of a Parquet timestamp column, if known).
    Timestamps with an offset are converted to UTC; without one they are taken as UTC.
    Values come out as TIMESTAMP (dates at midnight), DOUBLE or VARCHAR.
    """
    store = storage_class(sql_type)
    if store == "text":
        text = f"CAST({col} AS VARCHAR)"
        present = f"({text} IS NOT NULL AND TRIM({text}) <> '')"
        if kind in ("string", "category"):
            return Parsed(f"CASE WHEN {present} THEN {text} END", present, "FALSE")
        trimmed = f"TRIM({text})"
        if kind == "date":
            value = f"CAST(TRY_CAST({trimmed} AS DATE) AS TIMESTAMP)"
        elif kind == "timestamp":
            value = f"timezone('UTC', TRY_CAST({trimmed} AS TIMESTAMPTZ))"
        else:
            num = f"TRY_CAST({trimmed} AS DOUBLE)"
            value = f"CASE WHEN isfinite({num}) THEN {num} END"
            if kind == "int":
                return Parsed(
                    f"CASE WHEN {value} = floor({value}) THEN {value} END",
                    present,
                    f"({present} AND ({value} IS NULL OR {value} <> floor({value})))",
                )
        return Parsed(f"CASE WHEN {present} THEN {value} END", present, f"({present} AND {value} IS NULL)")
    if store == "number":
        if kind in ("string", "category"):
            as_num = f"TRY_CAST({col} AS DOUBLE)"
            present = f"({col} IS NOT NULL AND NOT ({as_num} IS NOT NULL AND isnan({as_num})))"
            return Parsed(f"CASE WHEN {present} THEN CAST({col} AS VARCHAR) END", present, "FALSE")
        num = f"CAST({col} AS DOUBLE)"
        present = f"({col} IS NOT NULL AND NOT isnan({num}))"
        if kind in ("float", "int"):
            ok = f"isfinite({num})" + (f" AND {num} = floor({num})" if kind == "int" else "")
            return Parsed(f"CASE WHEN {present} AND {ok} THEN {num} END", present, f"({present} AND NOT ({ok}))")
        return Parsed("CAST(NULL AS TIMESTAMP)", present, present)  # a number is not a date
    if store in ("date", "timestamp", "timestamptz"):
        present = f"({col} IS NOT NULL)"
        if kind in ("float", "int"):
            return Parsed("CAST(NULL AS DOUBLE)", present, present)
        if kind in ("string", "category"):
            return Parsed(f"CAST({col} AS VARCHAR)", present, "FALSE")
        if store == "timestamptz":
            zoned = f"CAST({col} AS TIMESTAMPTZ)"  # nanosecond zoned timestamps too, to UTC like the others
            local = f"timezone({quote_literal(zone or 'UTC')}, {zoned})"
            value = f"CAST(CAST({local} AS DATE) AS TIMESTAMP)" if kind == "date" else f"timezone('UTC', {zoned})"
        elif kind == "date":
            value = f"CAST(CAST({col} AS DATE) AS TIMESTAMP)"
        else:
            value = f"CAST({col} AS TIMESTAMP)"
        return Parsed(value, present, "FALSE")
    present = f"({col} IS NOT NULL)"
    if kind in ("string", "category"):
        return Parsed(f"TRY_CAST({col} AS VARCHAR)", present, f"({present} AND TRY_CAST({col} AS VARCHAR) IS NULL)")
    null = {"date": "TIMESTAMP", "timestamp": "TIMESTAMP"}.get(kind, "DOUBLE")
    return Parsed(f"CAST(NULL AS {null})", present, present)


SQL_TYPE = {
    "string": "VARCHAR",
    "category": "VARCHAR",
    "date": "TIMESTAMP",
    "timestamp": "TIMESTAMP",
    "float": "DOUBLE",
    "int": "DOUBLE",
}


@dataclass(frozen=True)
class TypedColumn:
    """A contract column as the typed views see it, with the SQL that reads it from the raw table."""

    name: str
    kind: str
    parsed: Parsed | None  # None: the optional column is absent from the file (all missing)
    spec: Column | None  # None for prefix (feature_*) and declared attribute columns

    @property
    def value(self) -> str:
        return self.parsed.value if self.parsed else f"CAST(NULL AS {SQL_TYPE[self.kind]})"


def typed_columns(
    spec: TableSpec, stored: dict[str, str], zones: dict[str, str] | None = None, extra: dict[str, str] | None = None
) -> list[TypedColumn]:
    """Every contract column of ``spec`` (present or not), then the prefix columns in name order,
    then ``extra`` columns (name -> kind, e.g. declared account attributes) that are stored."""
    zones = zones or {}
    out = []
    for c in spec.columns:
        t = stored.get(c.name)
        out.append(
            TypedColumn(
                c.name, c.kind, None if t is None else sql_parse(quote_ident(c.name), t, c.kind, zones.get(c.name)), c
            )
        )
    if spec.prefix:
        for name in sorted(n for n in stored if n.startswith(spec.prefix)):
            out.append(TypedColumn(name, PREFIX_KIND, sql_parse(quote_ident(name), stored[name], PREFIX_KIND), None))
    for name, kind in (extra or {}).items():
        if name in stored:
            out.append(TypedColumn(name, kind, sql_parse(quote_ident(name), stored[name], kind, zones.get(name)), None))
    return out
