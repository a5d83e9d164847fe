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

import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from churnml.contract import SPECS, TABLES, quote_literal
from churnml.errors import ChurnmlError, ContractError


@dataclass
class RawTable:
    """One table as stored: where it came from and its columns with their DuckDB types."""

    name: str
    relation: str  # the relation name on the connection
    format: str  # parquet | csv | frame
    columns: dict[str, str]
    n_rows: int
    path: Path | None = None
    zones: dict[str, str] = field(default_factory=dict)  # time zone of zoned Parquet timestamp columns


@dataclass
class OpenProblem:
    """A table that could not be opened (ambiguous, unreadable, missing)."""

    table: str
    rule: str
    message: str


def find_table_file(data_dir: str | Path, table: str) -> Path | None:
    """``<table>.parquet`` or ``<table>.csv`` in ``data_dir``; both present is an error."""
    d = Path(data_dir)
    found = [p for p in (d / f"{table}.parquet", d / f"{table}.csv") if p.is_file()]
    if len(found) > 1:
        raise ContractError(f"{table}: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0] if found else None


class Workspace:
    """A DuckDB connection with a private temporary folder (CSV tables, spills), removed on close."""

    def __init__(self, threads: int | None = None, memory_limit: str | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="churnml-"))
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"SET temp_directory = {quote_literal(str(self.tmp / 'spill'))}")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET enable_external_file_cache = false")  # Parquet is read as needed, not cached
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
        self._store = False
        self._frames: list = []  # registered frames must outlive their views
        # a workspace nobody closed (an interactive session, a test) still removes its folder
        self._finalizer = weakref.finalize(self, _cleanup, self.con, self.tmp)

    def store(self) -> str:
        """The attached on-disk database that holds parsed CSV tables (created on first use)."""
        if not self._store:
            self.con.execute(f"ATTACH {quote_literal(str(self.tmp / 'tables.duckdb'))} AS store")
            self._store = True
        return "store"

    def close(self) -> None:
        self._finalizer()


def _cleanup(con, tmp: Path) -> None:
    try:
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _describe(con, relation: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _count(con, relation: str) -> int:
    return int(con.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def _parquet_zones(path: Path) -> dict[str, str]:
    """Time zones of zoned timestamp columns, from the Arrow schema stored in the Parquet file."""
    try:
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
    except Exception:  # noqa: BLE001 - a file DuckDB reads but pyarrow not: zones default to UTC
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
                problems.append(OpenProblem(name, "required",
                                            f"required table missing ({name}.parquet or {name}.csv)"))
            continue
        relation = f"raw_{name}"
        try:
            if path.suffix == ".parquet":
                ws.con.execute(f"CREATE OR REPLACE VIEW {relation} AS SELECT * FROM read_parquet("
                               f"{quote_literal(str(path))})")
                zones = _parquet_zones(path)
            else:
                relation = f"{ws.store()}.raw_{name}"
                ws.con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM read_csv("
                               f"{quote_literal(str(path))}, header = true, delim = ',', quote = '\"', "
                               f"escape = '\"', all_varchar = true)")
                zones = {}
            raw[name] = RawTable(name, relation, path.suffix.lstrip("."), _describe(ws.con, relation),
                                 _count(ws.con, relation), path, zones)
        except duckdb.Error as e:
            problems.append(OpenProblem(name, "unreadable", f"cannot read {path}: {type(e).__name__}: "
                                                             f"{_first_line(e)}"))
    return raw, problems


def register_frames(ws: Workspace, tables: dict) -> dict[str, RawTable]:
    """In-memory pandas frames as raw tables (``None`` = an absent optional table)."""
    unknown = set(tables) - set(SPECS)
    if unknown:
        raise ChurnmlError(f"not contract tables: {sorted(unknown)}")
    raw = {}
    for name, df in tables.items():
        if df is None:
            continue
        relation = f"raw_{name}"
        df = df.reset_index(drop=True)
        ws._frames.append(df)
        ws.con.register(relation, df)
        raw[name] = RawTable(name, relation, "frame", _describe(ws.con, relation), len(df))
    return raw

