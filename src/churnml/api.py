"""The library's entry points for notebooks and scripts: open a customer base, check it.

>>> from churnml.api import load_dataset                  # doctest: +SKIP
>>> with load_dataset("data/demo") as ds:                 # doctest: +SKIP
...     X = build_features(ds, ["2026-06-01"])

Like the CLI (and :meth:`churnml.flows.common.Run.open_dataset`), these join the I/O layer
(:func:`churnml.io.tables.open_raw_tables`: the files of a data folder on a DuckDB workspace)
to the typed, checked :class:`~churnml.dataset.Dataset`.
"""

from __future__ import annotations

from pathlib import Path

from churnml.dataset import Dataset
from churnml.duck import Workspace
from churnml.io.database import open_raw_tables_db
from churnml.io.tables import open_raw_tables
from churnml.validate import ValidationReport


def open_dataset(
    data_dir: str | Path,
    *,
    validate: bool = True,
    attributes=(),
    threads: int | None = None,
    memory_limit: str | None = None,
    today=None,
    as_of=None,
    progress=None,
) -> Dataset:
    """Open a data folder; with ``validate``, raise :class:`~churnml.errors.ContractError` on any contract
    error. With ``as_of``, the typed views hold only what was known before that day (see
    :class:`~churnml.dataset.Dataset`)."""
    ws = Workspace(threads, memory_limit)
    try:
        raw, problems = open_raw_tables(ws, data_dir)
        ds = Dataset(ws, raw, problems, data_dir=Path(data_dir), attributes=tuple(attributes), as_of=as_of)
        if validate:
            ds.require_valid(today=today, progress=progress)
        return ds
    except BaseException:
        ws.close()
        raise


def open_database(
    uri: str,
    schema: str,
    *,
    name: str | None = None,
    validate: bool = True,
    attributes=(),
    threads: int | None = None,
    memory_limit: str | None = None,
    today=None,
    as_of=None,
    progress=None,
) -> Dataset:
    """Open the contract tables (or views) of a PostgreSQL ``schema`` (:mod:`churnml.io.database`: the
    contract's columns, one read-only snapshot, streamed into the workspace's on-disk database); as
    :func:`open_dataset` otherwise. ``name`` says the base in messages (never the URI: it may hold a password)."""
    ws = Workspace(threads, memory_limit)
    try:
        raw, problems = open_raw_tables_db(ws, uri, schema, attributes=tuple(attributes), progress=progress)
        ds = Dataset(ws, raw, problems, data_dir=None, source=name or schema, attributes=tuple(attributes), as_of=as_of)
        if validate:
            ds.require_valid(today=today, progress=progress)
        return ds
    except BaseException:
        ws.close()
        raise


def load_dataset(data_dir: str | Path, *, validate: bool = True, attributes=()) -> Dataset:
    """Open and (by default) validate a data folder: :func:`open_dataset`."""
    return open_dataset(data_dir, validate=validate, attributes=attributes)


def validate_dataset(data_dir: str | Path, *, attributes=(), today=None) -> ValidationReport:
    """Check every contract rule of a data folder; never raises for contract problems (they are in the report)."""
    with open_dataset(data_dir, validate=False, attributes=attributes) as ds:
        return ds.check(today=today)
