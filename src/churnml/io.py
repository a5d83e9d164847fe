"""Reading the six contract tables and writing outputs atomically.

Only this module reads and writes data files. Reading: ``<table>.parquet`` or
``<table>.csv`` (UTF-8, a BOM is fine, standard quoting, empty string = missing,
timestamps with offsets converted to UTC). Tables come back typed the same way
whatever the format: strings as Python ``str``; dates as midnight and timestamps as
UTC, both tz-naive ``datetime64[us]``; numbers as ``float64`` (``int64`` for
``active_users``/``events``, nullable ``Int64`` for ``seats``). Writing: every file
goes to a temporary sibling first and is renamed into place, so a crash never
leaves a half-written output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnml.contract import SPECS, TABLES
from churnml.errors import ChurnmlError, ContractError

__all__ = ["TABLES", "Dataset", "atomic_dir", "atomic_write", "find_table_file", "load_dataset", "read_raw_table",
           "read_table_file",
           "write_csv", "write_dataset", "write_parquet", "write_text"]


@dataclass
class Dataset:
    """The six tables of one customer base, typed (optional ones None when absent)."""

    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    usage: pd.DataFrame | None
    tickets: pd.DataFrame | None
    surveys: pd.DataFrame | None
    milestones: pd.DataFrame | None
    data_dir: Path | None = None

    def tables(self) -> dict[str, pd.DataFrame | None]:
        return {t: getattr(self, t) for t in TABLES}

    def last_date(self) -> pd.Timestamp:
        """The last day the data covers: the latest dated fact in any table."""
        candidates = [self.subscriptions["effective_date"].max()]
        for table, cols in (("usage", ["date"]), ("tickets", ["opened_at", "closed_at"]),
                            ("surveys", ["responded_at"]), ("milestones", ["completed_at"])):
            df = getattr(self, table)
            if df is not None:
                candidates += [df[c].max() for c in cols]
        days = [pd.Timestamp(c).normalize() for c in candidates if pd.notna(c)]
        if not days:
            raise ChurnmlError("the data has no dated rows")
        return max(days)


def find_table_file(data_dir: str | Path, table: str) -> Path | None:
    """``<table>.parquet`` or ``<table>.csv`` in ``data_dir``; both present is an error."""
    d = Path(data_dir)
    found = [p for p in (d / f"{table}.parquet", d / f"{table}.csv") if p.is_file()]
    if len(found) > 1:
        raise ContractError(f"{table}: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0] if found else None


def read_raw_table(path: str | Path) -> pd.DataFrame:
    """Read one table file as stored (CSV: every column as text, '' = missing)."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        return df.replace("", None) if len(df) else df
    except Exception as e:  # noqa: BLE001 - any reader failure is a user-facing file problem
        raise ChurnmlError(f"cannot read {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read one of churnml's own outputs (Parquet or CSV, by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise ChurnmlError(f"file not found: {path}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:  # noqa: BLE001
        raise ChurnmlError(f"cannot read {path}: {type(e).__name__}: {e}") from None


def load_dataset(data_dir: str | Path, *, validate: bool = True) -> Dataset:
    """Read, validate (raising :class:`ContractError` on any error) and type the six tables."""
    from churnml.validate import inspect_dataset

    report, typed = inspect_dataset(data_dir, check=validate)
    if validate and not report.ok:
        raise ContractError(f"{data_dir} breaks the data contract:\n{report.format(errors_only=True)}",
                            report.errors)
    return Dataset(**{t: typed.get(t) for t in TABLES}, data_dir=Path(data_dir))


# --- atomic writing ----------------------------------------------------------------------
def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp)`` on a temporary sibling of ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda p: df.to_parquet(p, index=False))


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def write_text(text: str, path: str | Path) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary sibling folder; on success it replaces ``path``, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_dataset(tables: dict[str, pd.DataFrame], out_dir: str | Path, fmt: str = "parquet",
                  check: bool = False) -> Path:
    """Write the tables as ``<table>.<fmt>`` into ``out_dir`` atomically.

    With ``check``, the written folder is validated before it replaces ``out_dir``;
    on a contract error nothing is written.
    """
    if fmt not in ("parquet", "csv"):
        raise ChurnmlError(f"format must be parquet or csv, got {fmt!r}")
    unknown = set(tables) - set(SPECS)
    if unknown:
        raise ChurnmlError(f"not contract tables: {sorted(unknown)}")
    with atomic_dir(out_dir) as tmp:
        for name, df in tables.items():
            if df is None:
                continue
            if fmt == "parquet":
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                df.to_csv(tmp / f"{name}.csv", index=False)
        if check:
            from churnml.validate import validate_dataset

            report = validate_dataset(tmp)
            if not report.ok:
                raise ContractError(f"generated data breaks the contract:\n{report.format(errors_only=True)}",
                                    report.errors)
    return Path(out_dir)
