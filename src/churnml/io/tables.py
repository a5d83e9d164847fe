"""Opening the six contract tables of a data folder as DuckDB relations (no pandas).

A table is ``<table>.parquet`` or ``<table>.csv`` (UTF-8, a BOM is fine, standard
quoting, empty string = missing). Parquet files are scanned in place by views, so
nothing is loaded until a query needs it. A CSV file is parsed once, every column
as text, into a table of a temporary on-disk DuckDB database, so memory stays
bounded whatever its size. In-memory pandas frames (tests, notebooks, the generator)
can stand in for files. Each raw relation keeps the columns and types as stored;
typing and validation happen in SQL on top (:mod:`churnml.contract`,
:mod:`churnml.validate`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from churnml.contract import SPECS, TABLES, quote_literal
from churnml.duck import OpenProblem, RawTable, Workspace, count_rows, describe, register_frames
from churnml.errors import ChurnmlError, ContractError

__all__ = ["OpenProblem", "RawTable", "Workspace", "find_table_file", "open_raw_tables", "register_frames"]


def find_table_file(data_dir: str | Path, table: str) -> Path | None:
    """``<table>.parquet`` or ``<table>.csv`` in ``data_dir``; both present is an error."""
    d = Path(data_dir)
    found = [p for p in (d / f"{table}.parquet", d / f"{table}.csv") if p.is_file()]
    if len(found) > 1:
        raise ContractError(f"{table}: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0] if found else None


def _parquet_zones(path: Path) -> dict[str, str]:
    """Time zones of zoned timestamp columns, from the Arrow schema stored in the Parquet file."""
    try:
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
    except Exception:
        return {}
    out = {}
    for f in schema:
        tz = getattr(f.type, "tz", None)
        if tz:
            out[f.name] = str(tz)
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def open_raw_tables(ws: Workspace, data_dir: str | Path) -> tuple[dict[str, RawTable], list[OpenProblem]]:
    """Open every contract table of ``data_dir`` on the workspace; problems are returned, not raised."""
    d = Path(data_dir)
    if not d.exists():
        raise ChurnmlError(f"data folder {d} does not exist")
    if not d.is_dir():
        raise ChurnmlError(f"{d} is not a folder")
    raw, problems = {}, []
    for name in TABLES:
        try:
            path = find_table_file(d, name)
        except ContractError as e:
            problems.append(OpenProblem(name, "ambiguous", str(e).split(": ", 1)[1]))
            continue
        if path is None:
            if SPECS[name].required:
                problems.append(OpenProblem(name, "required", f"required table missing ({name}.parquet or {name}.csv)"))
            continue
        relation = f"raw_{name}"
        try:
            if path.suffix == ".parquet":
                ws.con.execute(
                    f"CREATE OR REPLACE VIEW {relation} AS SELECT * FROM read_parquet({quote_literal(str(path))})"
                )
                zones = _parquet_zones(path)
            else:
                relation = f"{ws.store()}.raw_{name}"
                ws.con.execute(
                    f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM read_csv("
                    f"{quote_literal(str(path))}, header = true, delim = ',', quote = '\"', "
                    f"escape = '\"', all_varchar = true)"
                )
                zones = {}
            raw[name] = RawTable(
                name,
                relation,
                path.suffix.lstrip("."),
                describe(ws.con, relation),
                count_rows(ws.con, relation),
                path,
                zones,
            )
        except duckdb.Error as e:
            problems.append(
                OpenProblem(name, "unreadable", f"cannot read {path}: {type(e).__name__}: {_first_line(e)}")
            )
    return raw, problems
