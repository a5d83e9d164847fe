"""Checking a customer base against every rule of the data contract, in SQL.

Each violation names the table, the column, the rule, how many rows break it and a
few example keys. Errors make a dataset unusable; warnings point at something odd
that churnml can still work with. The checks run as DuckDB queries over the raw
tables (:mod:`churnml.io.tables`), so a base of tens of millions of rows is checked
without loading it into memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from churnml.contract import (
    SCORE_RANGES,
    SPECS,
    TABLES,
    TableSpec,
    TypedColumn,
    quote_ident,
    quote_literal,
    typed_columns,
)
from churnml.progress import steps

ERROR, WARNING = "error", "warning"
_N_EXAMPLES = 3
OUTLIER_DAYS = 365  # a dated row this far after 99% of its table is a typo, not history


@dataclass(frozen=True)
class Violation:
    table: str
    column: str | None
    rule: str
    n_rows: int
    examples: list[str]
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        eg = f"; e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"{self.severity.upper()} {where}: {self.message}{eg}"


@dataclass
class TableSummary:
    n_rows: int
    n_columns: int
    format: str
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None


@dataclass
class ValidationReport:
    data_dir: Path | str
    tables: dict[str, TableSummary] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == ERROR]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self, errors_only: bool = False) -> str:
        lines = [] if errors_only else [f"data contract check of {self.data_dir}"]
        if not errors_only:
            for name, t in self.tables.items():
                span = f"  {t.first:%Y-%m-%d}..{t.last:%Y-%m-%d}" if t.first is not None and pd.notna(t.first) else ""
                lines.append(f"  {name:<14}{t.n_rows:>12,} rows {t.n_columns:>3} columns  {t.format:<8}{span}")
        for v in self.errors if errors_only else self.violations:
            lines.append(f"  {v}")
        if not errors_only:
            rows = sum(t.n_rows for t in self.tables.values())
            verdict = "OK" if self.ok else "FAILED"
            lines.append(
                f"{verdict}: {len(self.tables)} tables, {rows:,} rows, {len(self.errors)} errors, "
                f"{len(self.warnings)} warnings"
            )
        return "\n".join(lines)


def _plural(n: int) -> dict:
    return {"n": n, "rows": "row" if n == 1 else "rows", "are": "is" if n == 1 else "are"}


class _Checker:
    """Counts rows matching SQL conditions over one table's check view and records violations."""

    def __init__(self, con, report: ValidationReport):
        self.con, self.report = con, report

    def add(
        self,
        table: str,
        column: str | None,
        rule: str,
        n: int,
        message: str,
        *,
        where: str | None = None,
        relation: str | None = None,
        keys: tuple[str, ...] = (),
        severity: str = ERROR,
    ) -> None:
        if not n:
            return
        examples = self.examples(relation, keys, where) if where and relation else []
        self.report.violations.append(
            Violation(table, column, rule, int(n), examples, message.format(**_plural(n)), severity)
        )

    def examples(self, relation: str, keys: tuple[str, ...], where: str) -> list[str]:
        if not keys:
            return []
        cols = ", ".join(f"CAST({quote_ident('k_' + k)} AS VARCHAR)" for k in keys)
        rows = self.con.sql(
            f"SELECT {cols} FROM {relation} WHERE {where} ORDER BY {cols} LIMIT {_N_EXAMPLES}"
        ).fetchall()
        return [" ".join(f"{k}={_show(v)}" for k, v in zip(keys, r)) for r in rows]


def _show(v) -> str:
    if v is None:
        return "None"
    s = str(v)
    return s[:-9] if s.endswith(" 00:00:00") else s


def _v(i: int) -> str:
    return f"v{i}"


def _b(i: int) -> str:
    return f"b{i}"


def check_view_sql(raw, spec: TableSpec, cols: list[TypedColumn]) -> str:
    """A view over the raw table with each column's typed value (v<i>), unreadable flag (b<i>) and the
    raw example key columns (k_<name>)."""
    parts = []
    for i, c in enumerate(cols):
        parts.append(f"{c.value} AS {_v(i)}")
        parts.append(f"{c.parsed.bad if c.parsed else 'FALSE'} AS {_b(i)}")
    for k in spec.example_key:
        if k in raw.columns:
            parts.append(f"{quote_ident(k)} AS {quote_ident('k_' + k)}")
    return f"SELECT {', '.join(parts)} FROM {raw.relation}"


def check_tables(
    con,
    raw: dict,
    problems: list,
    *,
    data_dir,
    attributes: dict[str, str] | None = None,
    declared: tuple[str, ...] = (),
    today=None,
    progress=None,
) -> ValidationReport:
    """Every rule of the contract over the opened raw tables; ``problems`` are tables that did not open.

    ``attributes`` are the declared account attributes present in the table (name -> kind);
    ``declared`` all declared names (one missing from the table is an error)."""
    report = ValidationReport(data_dir)
    ck = _Checker(con, report)
    for p in problems:
        ck.add(p.table, None, p.rule, 1, p.message)
    today = pd.Timestamp(today if today is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)).normalize()
    typed: dict[str, tuple[str, list[TypedColumn]]] = {}
    for name in steps([t for t in TABLES if t in raw], "validate", progress, unit="table"):
        r, spec = raw[name], SPECS[name]
        report.tables[name] = TableSummary(r.n_rows, len(r.columns), r.format)
        if r.n_rows == 0:
            ck.add(name, None, "empty", 1, "the table has no rows", severity=WARNING)
        missing = [c.name for c in spec.columns if c.required and c.name not in r.columns]
        for c in missing:
            ck.add(name, c, "required_column", 1, "required column is missing")
        if missing:
            continue
        extra = attributes if name == "accounts" else None
        cols = [c for c in typed_columns(spec, r.columns, r.zones, extra) if c.parsed is not None]
        view = f"chk_{name}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {check_view_sql(r, spec, cols)}")
        typed[name] = (view, cols)
        _check_table(ck, con, name, spec, view, cols, today)
        if spec.date_column:
            i = next(j for j, c in enumerate(cols) if c.name == spec.date_column)
            first, last = con.sql(f"SELECT min({_v(i)}), max({_v(i)}) FROM {view}").fetchall()[0]
            report.tables[name].first = pd.Timestamp(first) if first is not None else None
            report.tables[name].last = pd.Timestamp(last) if last is not None else None
    if "accounts" in raw:
        for a in declared:
            if SPECS["accounts"].column(a) is not None:
                ck.add(
                    "accounts",
                    a,
                    "attribute",
                    1,
                    "is a contract column, used already; declare only further "
                    "columns as account attributes (config contract.account_attributes)",
                )
            elif a not in raw["accounts"].columns:
                ck.add(
                    "accounts",
                    a,
                    "attribute",
                    1,
                    "declared account attribute is not a column of the table (config contract.account_attributes)",
                )
    _check_across(ck, con, typed)
    return report


def _col(cols: list[TypedColumn], name: str) -> int | None:
    return next((i for i, c in enumerate(cols) if c.name == name), None)


def _at(cols: list[TypedColumn], name: str) -> int:
    """The position of a column that is there: a required one (a table missing one is not checked
    further) or one :func:`_col` found."""
    i = _col(cols, name)
    assert i is not None, f"column {name} is not among the typed columns"
    return i


def _check_table(
    ck: _Checker, con, name: str, spec: TableSpec, view: str, cols: list[TypedColumn], today: pd.Timestamp
) -> None:
    word = {
        "date": "valid dates (YYYY-MM-DD)",
        "timestamp": "valid ISO 8601 timestamps",
        "float": "numbers",
        "int": "whole numbers",
    }
    rules: list[tuple] = []  # (column, rule, condition, message template, severity)
    any_bad = " OR ".join(_b(i) for i in range(len(cols))) or "FALSE"
    for i, c in enumerate(cols):
        v, b = _v(i), _b(i)
        if c.kind in word:
            rules.append((c.name, "type", b, f"{{n}} {{rows}} {{are}} not {word[c.kind]}", ERROR))
        s = c.spec
        if s is None:  # prefix (feature_*) columns: numbers >= 0; attributes: anything
            if spec.prefix and c.name.startswith(spec.prefix):
                rules.append((c.name, "min", f"{v} < 0", "{n} {rows} {are} negative (must be >= 0)", ERROR))
            continue
        if c.kind == "float":
            rules.append(
                (
                    c.name,
                    "finite",
                    f"(isinf({v}) OR isnan({v}) OR abs({v}) > {MAX_AMOUNT:g})",
                    f"{{n}} {{rows}} {{are}} infinite or beyond {MAX_AMOUNT:g} (no plausible amount: a unit or "
                    f"export error)",
                    ERROR,
                )
            )
        if s.nonnull:
            rules.append(
                (
                    c.name,
                    "not_null",
                    f"{v} IS NULL AND NOT ({any_bad})",
                    "{n} {rows} {are} empty (a value is required)",
                    ERROR,
                )
            )
        if s.min is not None:
            rules.append(
                (
                    c.name,
                    "min",
                    f"{v} < {s.min!r}",
                    f"{{n}} {{rows}} {{are}} below {s.min:g} (must be >= {s.min:g})",
                    ERROR,
                )
            )
        if s.allowed is not None:
            allowed = ", ".join(quote_literal(a) for a in s.allowed)
            rules.append(
                (
                    c.name,
                    "allowed",
                    f"{v} IS NOT NULL AND {v} NOT IN ({allowed})",
                    f"{{n}} {{rows}} {{are}} not one of {', '.join(s.allowed)}",
                    ERROR,
                )
            )
        if s.event:
            limit = f"TIMESTAMP '{today + pd.Timedelta(days=1):%Y-%m-%d}'"
            rules.append(
                (
                    c.name,
                    "future",
                    f"{v} > {limit}",
                    f"{{n}} {{rows}} {{are}} dated after today ({today:%Y-%m-%d}): a typo in the year, "
                    f"or a clock or time zone problem upstream",
                    ERROR,
                )
            )
    if name == "tickets":
        o, cl = _at(cols, "opened_at"), _at(cols, "closed_at")
        rules.append(
            (
                "closed_at",
                "order",
                f"{_v(cl)} < {_v(o)}",
                "{n} {rows} closed before opened (closed_at < opened_at)",
                ERROR,
            )
        )
    if name == "surveys":
        k, sc = _at(cols, "kind"), _at(cols, "score")
        for kind, (lo, hi) in SCORE_RANGES.items():
            rules.append(
                (
                    "score",
                    "range",
                    f"{_v(k)} = '{kind}' AND ({_v(sc)} < {lo} OR {_v(sc)} > {hi})",
                    f"{{n}} {kind} {{rows}} outside {lo}..{hi}",
                    ERROR,
                )
            )
    if name == "subscriptions" and _col(cols, "end_kind") is not None:
        ek, m = _at(cols, "end_kind"), _at(cols, "mrr")
        rules.append(
            (
                "end_kind",
                "end_kind_paying",
                f"{_v(ek)} IS NOT NULL AND {_v(m)} > 0",
                "{n} {rows} with MRR > 0 {are} given an end_kind, which only applies to rows with MRR 0 (ignored)",
                WARNING,
            )
        )
    if rules:
        agg = ", ".join(f"count_if({cond})" for _, _, cond, _, _ in rules)
        counts = con.sql(f"SELECT {agg} FROM {view}").fetchall()[0]
        for (column, rule, cond, msg, sev), n in zip(rules, counts):
            ck.add(name, column, rule, n, msg, where=cond, relation=view, keys=spec.example_key, severity=sev)
    for i, c in enumerate(cols):
        if c.spec is not None and c.spec.event:
            _check_outliers(ck, con, name, spec, view, cols, i)
    if spec.key:
        idx = [_at(cols, k) for k in spec.key]
        keys = ", ".join(_v(i) for i in idx)
        notnull = " AND ".join(f"{_v(i)} IS NOT NULL" for i in idx)
        dup = f"SELECT {keys} FROM {view} WHERE {notnull} GROUP BY {keys} HAVING count(*) > 1"
        n = con.sql(
            f"SELECT COALESCE(SUM(n), 0) FROM (SELECT count(*) AS n FROM {view} WHERE {notnull} "
            f"GROUP BY {keys} HAVING count(*) > 1)"
        ).fetchall()[0][0]
        ck.add(
            name,
            ",".join(spec.key),
            "unique",
            int(n),
            f"{{n}} {{rows}} share a ({', '.join(spec.key)}) with another row (must be unique)",
            where=f"({keys}) IN ({dup})",
            relation=view,
            keys=spec.example_key,
        )


def _check_outliers(ck, con, name, spec, view, cols, i) -> None:
    """Rows dated far after 99% of their table (e.g. 2200-01-01 typed for 2020-01-01)."""
    v = _v(i)
    n_rows, q = con.sql(f"SELECT count({v}), approx_quantile({v}, 0.99) FROM {view}").fetchall()[
        0
    ]  # t-digest: bounded memory
    if q is None or n_rows < 100:
        return
    limit = f"TIMESTAMP '{pd.Timestamp(q) + pd.Timedelta(days=OUTLIER_DAYS):%Y-%m-%d %H:%M:%S}'"
    cond = f"{v} > {limit}"
    n = con.sql(f"SELECT count_if({cond}) FROM {view}").fetchall()[0][0]
    ck.add(
        name,
        cols[i].name,
        "outlier",
        n,
        f"{{n}} {{rows}} {{are}} dated more than {OUTLIER_DAYS} days after 99% of the table "
        f"({pd.Timestamp(q):%Y-%m-%d}): a typo in the year?",
        where=cond,
        relation=view,
        keys=spec.example_key,
    )


MAX_AMOUNT = 1e12  # no account pays a trillion a month: beyond it a number is a unit or export error


def _id_type_hint(con, view: str, a: str, acc_view: str, acc_id: str) -> str:
    """When ids that match nothing in accounts do match once a trailing ``.0`` is dropped (1.0 vs 1), say
    that the two tables store account_id as different types."""

    def plain(x: str) -> str:
        return f"regexp_replace({x}, '\\.0+$', '')"

    n = con.sql(
        f"SELECT count(*) FROM {view} WHERE {a} IS NOT NULL AND {a} NOT IN (SELECT {acc_id} FROM {acc_view} "
        f"WHERE {acc_id} IS NOT NULL) AND {plain(a)} IN (SELECT {plain(acc_id)} FROM {acc_view} WHERE {acc_id} "
        f"IS NOT NULL)"
    ).fetchall()[0][0]
    if not n:
        return ""
    return (
        f"; {n} of them match once '.0' is dropped (as 1.0 vs 1): account_id is stored as a decimal number in one "
        f"table and as whole numbers or text in the other; export it as text (or whole numbers) everywhere"
    )


def _check_across(ck: _Checker, con, typed: dict) -> None:
    if "accounts" not in typed:
        return
    acc_view, acc_cols = typed["accounts"]
    acc_id = _v(_at(acc_cols, "account_id"))
    known = f"(SELECT {acc_id} FROM {acc_view} WHERE {acc_id} IS NOT NULL)"
    for name in TABLES[1:]:
        if name not in typed:
            continue
        view, cols = typed[name]
        a = _v(_at(cols, "account_id"))
        cond = f"{a} IS NOT NULL AND {a} NOT IN {known}"
        n = con.sql(f"SELECT count_if({cond}) FROM {view}").fetchall()[0][0]
        ck.add(
            name,
            "account_id",
            "reference",
            n,
            "{n} {rows} name an account_id not in accounts"
            + (_id_type_hint(con, view, a, acc_view, acc_id) if n else ""),
            where=cond,
            relation=view,
            keys=SPECS[name].example_key,
        )
    if "subscriptions" in typed:
        sv, scols = typed["subscriptions"]
        cond = (
            f"{acc_id} IS NOT NULL AND {acc_id} NOT IN (SELECT {_v(_at(scols, 'account_id'))} FROM {sv} "
            f"WHERE {_v(_at(scols, 'account_id'))} IS NOT NULL)"
        )
        n = con.sql(f"SELECT count_if({cond}) FROM {acc_view}").fetchall()[0][0]
        ck.add(
            "accounts",
            "account_id",
            "has_subscription",
            n,
            "{n} accounts have no subscriptions row (they are never scored)",
            where=cond,
            relation=acc_view,
            keys=SPECS["accounts"].example_key,
            severity=WARNING,
        )
    if "surveys" in typed and "tickets" in typed and _col(typed["surveys"][1], "ticket_id") is not None:
        sv, scols = typed["surveys"]
        tv, tcols = typed["tickets"]
        st, tt = _v(_at(scols, "ticket_id")), _v(_at(tcols, "ticket_id"))
        cond = f"{st} IS NOT NULL AND {st} NOT IN (SELECT {tt} FROM {tv} WHERE {tt} IS NOT NULL)"
        n = con.sql(f"SELECT count_if({cond}) FROM {sv}").fetchall()[0][0]
        ck.add(
            "surveys",
            "ticket_id",
            "reference",
            n,
            "{n} answers name a ticket_id not in tickets",
            where=cond,
            relation=sv,
            keys=SPECS["surveys"].example_key,
            severity=WARNING,
        )
