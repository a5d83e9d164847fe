"""Checking a data folder against every rule of the data contract.

Each violation names the table, the column, the rule, how many rows break it and a
few example keys. Errors make a dataset unusable; warnings point at something odd
that churnml can still work with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from churnml.contract import PREFIX_KIND, SCORE_RANGES, SPECS, TABLES, TableSpec, parse
from churnml.errors import ChurnmlError, ContractError

ERROR, WARNING = "error", "warning"
_N_EXAMPLES = 3


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
    data_dir: Path
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
        for v in (self.errors if errors_only else self.violations):
            lines.append(f"  {v}")
        if not errors_only:
            rows = sum(t.n_rows for t in self.tables.values())
            verdict = "OK" if self.ok else "FAILED"
            lines.append(f"{verdict}: {len(self.tables)} tables, {rows:,} rows, {len(self.errors)} errors, "
                         f"{len(self.warnings)} warnings")
        return "\n".join(lines)


def validate_dataset(data_dir: str | Path) -> ValidationReport:
    """Check every contract rule; never raises for contract problems (they are in the report)."""
    report, _ = inspect_dataset(data_dir, check=True)
    return report


class _Checker:
    def __init__(self, report: ValidationReport):
        self.report = report

    def add(self, table, column, rule, mask_or_n, frame=None, spec: TableSpec | None = None, message="",
            severity=ERROR):
        if isinstance(mask_or_n, (int, np.integer)):
            n, examples = int(mask_or_n), []
        else:
            mask = np.asarray(mask_or_n, bool)
            n = int(mask.sum())
            examples = _examples(frame, spec, mask) if n and frame is not None else []
        if n:
            self.report.violations.append(Violation(table, column, rule, n, examples, message.format(n=n,
                                                    rows="row" if n == 1 else "rows",
                                                    are="is" if n == 1 else "are"), severity))


def _examples(frame: pd.DataFrame, spec: TableSpec, mask: np.ndarray) -> list[str]:
    keys = [c for c in spec.example_key if c in frame.columns]
    out = []
    for _, row in frame.loc[mask, keys].head(_N_EXAMPLES).iterrows():
        out.append(" ".join(f"{k}={row[k]}" for k in keys) if keys else "")
    return out


def inspect_dataset(data_dir: str | Path, *, check: bool = True) -> tuple[ValidationReport, dict[str, pd.DataFrame]]:
    """Read every table once: return the validation report and the typed tables."""
    d = Path(data_dir)
    if not d.exists():
        raise ChurnmlError(f"data folder {d} does not exist")
    if not d.is_dir():
        raise ChurnmlError(f"{d} is not a folder")
    from churnml.io import find_table_file, read_raw_table

    report = ValidationReport(d)
    ck = _Checker(report)
    typed: dict[str, pd.DataFrame] = {}
    raws: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        spec = SPECS[name]
        try:
            path = find_table_file(d, name)
        except ContractError as e:
            ck.add(name, None, "ambiguous", 1, message=str(e).split(": ", 1)[1])
            continue
        if path is None:
            if spec.required:
                ck.add(name, None, "required", 1, message=f"required table missing ({name}.parquet or {name}.csv)")
            continue
        try:
            raw = read_raw_table(path)
        except ChurnmlError as e:
            ck.add(name, None, "unreadable", 1, message=str(e))
            continue
        raws[name] = raw
        report.tables[name] = TableSummary(len(raw), raw.shape[1], path.suffix.lstrip("."))
        if len(raw) == 0:
            ck.add(name, None, "empty", 1, message="the table has no rows", severity=WARNING)
        out = _check_table(ck, spec, raw) if check else _type_table(spec, raw)
        if out is not None:
            typed[name] = out
            if spec.date_column and spec.date_column in out and len(out):
                report.tables[name].first = out[spec.date_column].min()
                report.tables[name].last = out[spec.date_column].max()
    if check:
        _check_across(ck, typed)
    return report, typed


def _type_table(spec: TableSpec, raw: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for col in spec.columns:
        if col.name in raw.columns:
            out[col.name] = parse(raw[col.name], col.kind)[0]
        else:
            out[col.name] = pd.Series([None] * len(raw), dtype="object") if col.kind in ("string", "category") \
                else parse(pd.Series([None] * len(raw), dtype="object"), col.kind)[0]
    if spec.prefix:
        for c in sorted(c for c in raw.columns if c.startswith(spec.prefix)):
            out[c] = parse(raw[c], PREFIX_KIND)[0]
    df = pd.DataFrame(out, index=raw.index)
    if spec.name == "usage":
        df["active_users"] = df["active_users"].fillna(0).astype("int64")
        df["events"] = df["events"].fillna(0).astype("int64")
    if spec.name == "subscriptions":
        df["seats"] = df["seats"].round().astype("Int64")
    sort = {"subscriptions": ["account_id", "effective_date"], "usage": ["account_id", "date"]}.get(spec.name)
    if sort:
        df = df.sort_values(sort, kind="stable")
    return df.reset_index(drop=True)


def _check_table(ck: _Checker, spec: TableSpec, raw: pd.DataFrame) -> pd.DataFrame | None:
    name = spec.name
    missing_cols = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    for c in missing_cols:
        ck.add(name, c, "required_column", 1, message="required column is missing")
    if missing_cols:
        return None
    bad_rows = np.zeros(len(raw), bool)
    parsed = {}
    cols = [(c.name, c.kind) for c in spec.columns if c.name in raw.columns]
    if spec.prefix:
        cols += [(c, PREFIX_KIND) for c in raw.columns if c.startswith(spec.prefix)]
    for cname, kind in cols:
        values, bad = parse(raw[cname], kind)
        parsed[cname] = values
        word = {"date": "valid dates (YYYY-MM-DD)", "timestamp": "valid ISO 8601 timestamps",
                "float": "numbers", "int": "whole numbers"}.get(kind)
        if word:
            ck.add(name, cname, "type", bad, raw, spec, f"{{n}} {{rows}} {{are}} not {word}")
        bad_rows |= bad
    frame = raw.assign(**{k: v for k, v in parsed.items()})
    for col in spec.columns:
        if col.name not in parsed:
            continue
        v = parsed[col.name]
        if col.nonnull:
            ck.add(name, col.name, "not_null", v.isna().to_numpy() & ~bad_rows, raw, spec,
                   "{n} {rows} {are} empty (a value is required)")
        if col.min is not None:
            ck.add(name, col.name, "min", (v < col.min).fillna(False).to_numpy(), raw, spec,
                   f"{{n}} {{rows}} {{are}} below {col.min:g} (must be >= {col.min:g})")
        if col.allowed is not None:
            bad = v.notna().to_numpy() & ~v.isin(col.allowed).to_numpy()
            ck.add(name, col.name, "allowed", bad, raw, spec,
                   f"{{n}} {{rows}} {{are}} not one of {', '.join(col.allowed)}")
        if col.name == "account_id" or col.name == "ticket_id":
            empty = v.notna().to_numpy() & (v.astype("object").fillna("").str.strip() == "").to_numpy()
            ck.add(name, col.name, "not_empty", empty, raw, spec, "{n} {rows} {are} blank ids")
    if spec.prefix:
        for c in (c for c in parsed if c.startswith(spec.prefix)):
            ck.add(name, c, "min", (parsed[c] < 0).fillna(False).to_numpy(), raw, spec,
                   "{n} {rows} {are} negative (must be >= 0)")
    if spec.key:
        k = frame[list(spec.key)]
        dup = k.duplicated(keep=False).to_numpy() & k.notna().all(axis=1).to_numpy()
        ck.add(name, ",".join(spec.key), "unique", dup, raw, spec,
               f"{{n}} {{rows}} share a ({', '.join(spec.key)}) with another row (must be unique)")
    if name == "tickets":
        early = (parsed["closed_at"] < parsed["opened_at"]).fillna(False).to_numpy()
        ck.add(name, "closed_at", "order", early, raw, spec, "{n} {rows} closed before opened (closed_at < opened_at)")
    if name == "surveys":
        for kind, (lo, hi) in SCORE_RANGES.items():
            s = parsed["score"]
            bad = (parsed["kind"] == kind).fillna(False).to_numpy() & ((s < lo) | (s > hi)).fillna(False).to_numpy()
            ck.add(name, "score", "range", bad, raw, spec, f"{{n}} {kind} {{rows}} outside {lo}..{hi}")
    return _type_table(spec, raw)


def _check_across(ck: _Checker, typed: dict[str, pd.DataFrame]) -> None:
    acc = typed.get("accounts")
    if acc is None:
        return
    known = set(acc["account_id"].dropna())
    for name in TABLES[1:]:
        df = typed.get(name)
        if df is None:
            continue
        unknown = df["account_id"].notna().to_numpy() & ~df["account_id"].isin(known).to_numpy()
        ck.add(name, "account_id", "reference", unknown, df, SPECS[name],
               "{n} {rows} name an account_id not in accounts")
    subs = typed.get("subscriptions")
    if subs is not None:
        no_subs = ~acc["account_id"].isin(set(subs["account_id"])).to_numpy()
        ck.add("accounts", "account_id", "has_subscription", no_subs, acc, SPECS["accounts"],
               "{n} accounts have no subscriptions row (they are never scored)", severity=WARNING)
    sv, tk = typed.get("surveys"), typed.get("tickets")
    if sv is not None and tk is not None:
        orphan = sv["ticket_id"].notna().to_numpy() & ~sv["ticket_id"].isin(set(tk["ticket_id"])).to_numpy()
        ck.add("surveys", "ticket_id", "reference", orphan, sv, SPECS["surveys"],
               "{n} answers name a ticket_id not in tickets", severity=WARNING)
