"""Opening the six contract tables of a data folder as DuckDB relations (no pandas).

A table is ``<table>.parquet`` or ``<table>.csv`` (UTF-8, a BOM is fine, comma-separated,
standard quoting, empty string = missing), or ``<table>.parquet/`` as a folder of Parquet part
files (the Spark / Hive layout, read as one table). A CSV in another encoding or with another
separator, duplicate column names and a link to nothing are refused with a message that says
so. Parquet files are scanned in place by views, so
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
    """``<table>.parquet`` (a file or a folder of part files) or ``<table>.csv`` in ``data_dir``; both
    present is an error. A symbolic link is found even when it points to nothing (and then refused)."""
    d = Path(data_dir)
    found = [p for p in (d / f"{table}.parquet", d / f"{table}.csv") if p.exists() or p.is_symlink()]
    if len(found) > 1:
        raise ContractError(f"{table}: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0] if found else None


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of a table: the file itself, or every ``*.parquet`` under a folder (Spark / Hive
    layout; ``_SUCCESS`` and hidden files left out), in name order."""
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.rglob("*.parquet")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )


def _parquet_schema(path: Path):
    import pyarrow.parquet as pq

    parts = parquet_parts(path)
    return pq.read_schema(parts[0]) if parts else None


def _parquet_zones(path: Path) -> dict[str, str]:
    """Time zones of zoned timestamp columns, from the Arrow schema stored in the Parquet file."""
    try:
        schema = _parquet_schema(path)
    except Exception:
        return {}
    out = {}
    for f in schema or []:
        tz = getattr(f.type, "tz", None)
        if tz:
            out[f.name] = str(tz)
    return out


def _duplicates(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return [f"{n!r} ({k} times)" for n, k in seen.items() if k > 1]


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _csv_header_problem(path: Path) -> str | None:
    """What is wrong with a CSV file's first line, before DuckDB reads it: not UTF-8, another separator
    than the comma, duplicate column names (None: nothing)."""
    import csv

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    line = head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return utf8_problem(path)
    names = next(csv.reader([text.rstrip("\r")]), [])
    if len(names) <= 1:
        for sep, word in SEPARATORS.items():
            if sep in text:
                return (
                    f"{path.name} is separated by {word}, not commas: churnml reads comma-separated CSV "
                    f"(save it with commas, or as Parquet)"
                )
    dup = _duplicates([n.strip() for n in names])
    if dup:
        return f"{path.name} has duplicate column names: {', '.join(dup)}; keep one of each"
    return None


def utf8_problem(path: Path) -> str | None:
    """Where a file stops being UTF-8 (None: it is UTF-8 throughout), read in blocks."""
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")("strict")
    offset, line = 0, 1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            try:
                dec.decode(block)
            except UnicodeDecodeError as e:
                at = offset + e.start
                line += block[: e.start].count(b"\n")
                byte = block[e.start : e.start + 1].hex().upper()
                return (
                    f"{path.name} is not UTF-8: byte 0x{byte} at line {line} (offset {at}), as in a Latin-1 or "
                    f"Windows-1252 export; save it as UTF-8"
                )
            offset += len(block)
            line += block.count(b"\n")
    return None


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
        if not path.exists():
            problems.append(
                OpenProblem(name, "unreadable", f"{path} is a link to nothing ({path.readlink()}); fix or remove it")
            )
            continue
        refused = _refused(path)
        if refused:
            problems.append(OpenProblem(name, "unreadable", refused))
            continue
        try:
            if path.suffix == ".parquet":
                files = ", ".join(quote_literal(str(p)) for p in parquet_parts(path))
                ws.con.execute(
                    f"CREATE OR REPLACE VIEW {relation} AS SELECT * FROM read_parquet([{files}], union_by_name = true)"
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
            why = utf8_problem(path) if path.suffix == ".csv" else None
            problems.append(
                OpenProblem(name, "unreadable", why or f"cannot read {path}: {type(e).__name__}: {_first_line(e)}")
            )
    return raw, problems


def _refused(path: Path) -> str | None:
    """Why a table's file cannot be read as it is (None: read it)."""
    if path.suffix == ".csv":
        if path.is_dir():
            return f"{path} is a folder, not a CSV file (a folder of part files is read as <table>.parquet/)"
        return _csv_header_problem(path)
    if path.is_dir() and not parquet_parts(path):
        return f"{path} is a folder without .parquet part files"
    try:
        schema = _parquet_schema(path)
    except Exception:
        return None  # DuckDB says what is wrong with the file
    dup = _duplicates(list(schema.names)) if schema is not None else []
    return f"{path.name} has duplicate column names: {', '.join(dup)}; keep one of each" if dup else None
