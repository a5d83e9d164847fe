"""Writing tables into a PostgreSQL schema in one transaction: an idempotent upsert by key.

:func:`publish_tables` is given Arrow tables, each with its key, and writes them all or
nothing. The schema and each table are created when missing, column types declared from
the Arrow types and the key as the PRIMARY KEY (unique and never null: what reverse-ETL
tools such as Census and Hightouch ask for); a column a newer churnml adds is added. Rows
go in by ADBC's bulk copy (PostgreSQL's binary COPY), in key order: straight into the table
when their leading key value (a run's as_of date) is new to it, else through a temporary
table, merged with an UPDATE of the rows that differ and an INSERT of the keys that are new.
Running it twice with the same rows changes nothing, not even a row's version. A publisher
killed at any moment leaves the tables as they were: PostgreSQL rolls back a transaction
whose client is gone. Text is only ever data (Arrow columns, bound parameters);
identifiers are quoted. A schema that holds a contract table (a source of bases) is
refused: the source is never written. Publishers to one schema take turns (an advisory lock).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import adbc_driver_manager
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnml.contract import TABLES, quote_ident
from churnml.errors import ChurnmlError
from churnml.io.database import connect, database_place, db_message


@dataclass(frozen=True)
class TableWrite:
    """One table to publish: its name, its rows, and its key (the primary key: unique, not null)."""

    name: str
    data: pa.Table
    key: tuple[str, ...]
    not_null: tuple[str, ...] = ()  # further columns never empty (the one-column key, derived from the key)
    skip_present: str | None = None  # an append-only table's batch column (the ledger's run_id): rows of a batch
    # the table holds already are not sent again (they count as unchanged)


@dataclass(frozen=True)
class Written:
    """What one table's upsert did."""

    name: str
    rows: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


# declared PostgreSQL types, and how information_schema.columns.data_type spells them
_SPELLED = {
    "text": "text",
    "bigint": "bigint",
    "integer": "integer",
    "double precision": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
}


def pg_type(name: str, t: pa.DataType) -> str:
    """The PostgreSQL type a column of Arrow type ``t`` is declared with."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return "text"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer" if t.bit_width <= 16 or (t.bit_width == 32 and pa.types.is_signed_integer(t)) else "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    raise ChurnmlError(f"column {name}: values of type {t} cannot be published")


def normalize(table: pa.Table) -> pa.Table:
    """Arrow types the bulk copy takes: strings (not dictionaries), microsecond timestamps, 32- or 64-bit signed
    integers, 64-bit floats."""
    fields, arrays = [], []
    for f, col in zip(table.schema, table.columns):
        t = f.type
        if pa.types.is_dictionary(t):
            col, t = col.cast(t.value_type), t.value_type
        if pa.types.is_null(t):
            col, t = col.cast(pa.string()), pa.string()
        elif pa.types.is_timestamp(t) and t.unit != "us":
            t = pa.timestamp("us", tz=t.tz)
            col = col.cast(t, safe=False)
        elif pa.types.is_integer(t) and pg_type(f.name, t) == "bigint" and t != pa.int64():
            col, t = col.cast(pa.int64()), pa.int64()
        elif pa.types.is_integer(t) and pg_type(f.name, t) == "integer" and t != pa.int32():
            col, t = col.cast(pa.int32()), pa.int32()
        elif pa.types.is_float32(t):
            col, t = col.cast(pa.float64()), pa.float64()
        fields.append(pa.field(f.name, t))
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _q(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _rows(cur, sql: str, params=None) -> list[tuple]:
    cur.execute(sql, params)
    return cur.fetchall()


def _existing(cur, schema: str) -> tuple[bool, dict[str, dict[str, str]]]:
    """Whether the schema exists, and its tables and views: name -> {column: data_type}."""
    exists = bool(_rows(cur, "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1", (schema,))[0][0])
    tables: dict[str, dict[str, str]] = {}
    for (name,) in _rows(cur, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", (schema,)):
        tables[name] = {}
    for name, col, typ in _rows(
        cur,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
        (schema,),
    ):
        tables.setdefault(name, {})[col] = typ
    return exists, tables


def _upsert(cur, schema: str, w: TableWrite, existing: dict[str, str] | None) -> Written:
    data = normalize(w.data)
    order = pc.sort_indices(data, [(k, "ascending") for k in w.key])  # in key order, rows extend the index at its end
    if not pc.all(pc.equal(order, pa.array(np.arange(len(order), dtype=np.uint64)))).as_py():
        data = data.take(order)
    types = {f.name: pg_type(f.name, f.type) for f in data.schema}
    missing_key = [k for k in (*w.key, *w.not_null) if k not in types]
    if missing_key:
        raise ChurnmlError(f"{w.name}: the key column(s) {', '.join(missing_key)} are missing")
    target = _q(schema, w.name)
    rows = data.num_rows
    if existing is None:  # a new table: the rows copied straight in, the key's index built once after
        cols = ", ".join(
            f"{quote_ident(c)} {t}" + (" NOT NULL" if c in w.key or c in w.not_null else "") for c, t in types.items()
        )
        cur.execute(f"CREATE TABLE {target} ({cols})")
        if rows:
            cur.adbc_ingest(w.name, data, mode="append", db_schema_name=schema)
        cur.execute(f"ALTER TABLE {target} ADD PRIMARY KEY ({', '.join(map(quote_ident, w.key))})")
        return Written(w.name, rows, rows, 0)
    clash = [
        f"{c} ({existing[c]}, not {_SPELLED[t]})"
        for c, t in types.items()
        if c in existing and existing[c] != _SPELLED[t]
    ]
    if clash:
        raise ChurnmlError(
            f"{schema}.{w.name} exists with other column types: {'; '.join(clash)}; drop the "
            f"table (churnml fills it again) or publish to another schema"
        )
    for c, t in types.items():
        if c not in existing:  # a column a newer churnml writes: older rows hold NULL
            cur.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(c)} {t}")
    if w.skip_present and w.skip_present in existing:
        col = quote_ident(w.skip_present)
        held = pa.array(
            [r[0] for r in _rows(cur, f"SELECT DISTINCT {col} FROM {target}")], data.schema.field(w.skip_present).type
        )
        data = data.filter(pc.invert(pc.is_in(data.column(w.skip_present), held)))
    # rows whose leading key value (a run's as_of date) the table does not hold cannot meet a row of it: they
    # are copied straight in; the others are merged
    lead = w.key[0]
    probe = (
        f"SELECT EXISTS (SELECT 1 FROM {target} WHERE {quote_ident(lead)} = CAST(CAST($1 AS text) AS {types[lead]}))"
    )
    seen = [v for v in pc.unique(data.column(lead)).to_pylist() if _rows(cur, probe, (str(v),))[0][0]]
    known = pc.is_in(data.column(lead), pa.array(seen, data.schema.field(lead).type))
    fresh, old = data.filter(pc.invert(known)), data.filter(known)
    if fresh.num_rows:
        cur.adbc_ingest(w.name, fresh, mode="append", db_schema_name=schema)
    inserted, updated = _merge(cur, target, w, old, types) if old.num_rows else (0, 0)
    return Written(w.name, rows, fresh.num_rows + inserted, updated)


def _merge(cur, target: str, w: TableWrite, data: pa.Table, types: dict[str, str]) -> tuple[int, int]:
    """Rows that may meet rows of the table: staged, then the rows that differ updated (a row that is the
    same is not touched: not even a new row version) and the new keys inserted. Returns (inserted, updated)."""
    stage = f"pg_temp.{quote_ident('churnml_stage_' + w.name)}"
    cur.execute(f"DROP TABLE IF EXISTS {stage}")
    cur.adbc_ingest(f"churnml_stage_{w.name}", data, mode="create", temporary=True)
    cur.execute(f"ANALYZE {stage} ({', '.join(map(quote_ident, w.key))})")  # the join's sizes, cheaply
    names = list(types)
    val = {c: f"CAST(s.{quote_ident(c)} AS {types[c]})" for c in names}
    match = " AND ".join(f"t.{quote_ident(k)} = {val[k]}" for k in w.key)
    rest = [c for c in names if c not in w.key]
    updated = 0
    if rest:
        sets = ", ".join(f"{quote_ident(c)} = {val[c]}" for c in rest)
        old = ", ".join(f"t.{quote_ident(c)}" for c in rest)
        new = ", ".join(val[c] for c in rest)
        lead = w.key[0]
        updated = _rows(
            cur,
            f"WITH u AS (UPDATE {target} AS t SET {sets} FROM {stage} AS s WHERE {match} AND "
            f"t.{quote_ident(lead)} IN (SELECT DISTINCT {val[lead]} FROM {stage} AS s) AND "
            f"ROW({old}) IS DISTINCT FROM ROW({new}) RETURNING 1) SELECT count(*) FROM u",
        )[0][0]
    cols = ", ".join(map(quote_ident, names))
    inserted = _rows(
        cur,
        f"WITH i AS (INSERT INTO {target} ({cols}) SELECT {', '.join(val[c] for c in names)} "
        f"FROM {stage} AS s WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match}) "
        f"RETURNING 1) SELECT count(*) FROM i",
    )[0][0]
    cur.execute(f"DROP TABLE {stage}")
    return int(inserted), int(updated)


def publish_tables(uri: str, schema: str, writes: Iterable[TableWrite], *, protect=TABLES) -> list[Written]:
    """Upsert every table of ``writes`` into ``schema``, in one transaction (see the module docstring).
    ``writes`` may be a generator: each table is then made only when its turn comes (one in memory).

    ``protect``: table names whose presence marks a schema that must not be written (the contract's: a
    schema that holds a base)."""
    if not schema:
        raise ChurnmlError("publishing needs a schema (--schema NAME)")
    place = database_place(uri)
    con = connect(uri)
    step = "starting"
    try:
        with con.cursor() as cur:
            cur.execute("SET temp_buffers = '256MB'")  # the staged rows stay in memory (before any temporary table)
            cur.execute("SET LOCAL work_mem = '64MB'")  # the merges hash-join the staged rows with the tables
            step = "waiting for another publish to the same schema"
            cur.execute("SELECT pg_advisory_xact_lock(hashtext($1))", (f"churnml.publish.{schema}",))
            step = "reading the schema"
            exists, tables = _existing(cur, schema)
            held = sorted(set(tables) & set(protect))
            if held:
                raise ChurnmlError(
                    f"schema {schema} of {place} holds {', '.join(held)}: it is a source of bases, "
                    f"and churnml never writes one; publish to a schema of its own (--schema)"
                )
            if not exists:
                step = f"creating schema {schema}"
                cur.execute(f"CREATE SCHEMA {quote_ident(schema)}")
            done = []
            for w in writes:
                step = f"writing {schema}.{w.name}"
                done.append(_upsert(cur, schema, w, tables.get(w.name)))
            step = "committing"
        con.commit()
        return done
    except adbc_driver_manager.Error as e:
        _rollback(con)
        raise ChurnmlError(
            f"publish to {place} failed while {step} (nothing was written): {db_message(e, uri)}"
        ) from None
    except BaseException:
        _rollback(con)
        raise
    finally:
        con.close()


def _rollback(con) -> None:
    with contextlib.suppress(adbc_driver_manager.Error):  # a connection that is gone: the server rolls back
        con.rollback()
