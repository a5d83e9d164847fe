"""The DuckDB workspace a customer base is read on, and the raw tables on it (no file is read here).

A :class:`Workspace` is a DuckDB connection with its own temporary folder (where parsed
CSV tables and spills go), removed on close. The I/O layer (:mod:`churnml.io.tables`, and
the database reader) puts each contract table on it as a :class:`RawTable`;
:func:`register_frames` does the same for in-memory pandas frames (tests, notebooks, the
generator). :class:`churnml.dataset.Dataset` types and checks what is there.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from churnml.contract import SPECS, quote_literal
from churnml.errors import ChurnmlError


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


_SCRATCH = re.compile(r"^churnml-(\d+)-")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def system_scratch() -> Path:
    """A private folder in the system's temporary folder, ``churnml-<pid>-<random>`` (the caller removes it);
    those left by killed churnml processes (their pid gone) are removed first."""
    root = Path(tempfile.gettempdir())
    try:
        for p in root.iterdir():
            m = _SCRATCH.match(p.name)
            if m and int(m.group(1)) != os.getpid() and p.is_dir() and not p.is_symlink() and _gone(int(m.group(1))):
                shutil.rmtree(p, ignore_errors=True)
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"churnml-{os.getpid()}-"))


class Workspace:
    """A DuckDB connection with a private temporary folder (CSV tables, spills), removed on close."""

    def __init__(self, threads: int | None = None, memory_limit: str | None = None):
        self.tmp = system_scratch()
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


def describe(con, relation: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def count_rows(con, relation: str) -> int:
    return int(con.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


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
        raw[name] = RawTable(name, relation, "frame", describe(ws.con, relation), len(df))
    return raw
