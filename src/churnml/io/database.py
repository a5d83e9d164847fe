"""A customer base read from one schema of a SQL database: PostgreSQL, through ADBC.

:func:`open_raw_tables_db` is the database twin of :func:`churnml.io.tables.open_raw_tables`:
it loads each contract table (or view) of the schema into the DuckDB workspace, so that
validation, the typed views and the features run unchanged on top. Only the columns the
contract names are read (plus ``feature_*`` usage columns and declared account
attributes); the rows arrive as Arrow record batches (the driver reads them with
PostgreSQL's binary COPY) and are streamed into a table of the workspace's temporary
on-disk database, so a base of tens of millions of usage rows never sits in pandas or in
memory. All tables are read in one read-only, repeatable-read transaction: one consistent
snapshot of the base, and the source is never written.

The driver is ADBC's PostgreSQL driver (``adbc-driver-postgresql``: libpq ships inside the
wheel, nothing is downloaded at run time). Credentials come from the URI, from libpq's
environment (``PGPASSWORD``, ``PGSERVICEFILE`` and a ``service=`` name, ``~/.pgpass``) or
from the config's URI; they never appear in a message: :func:`source_label` names a
source by host, port, database and schema, and :func:`mask_uri` hides the password.
Identifiers are always quoted (:func:`churnml.contract.quote_ident`); a name from the
database is never SQL text.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg_dbapi

from churnml.contract import SPECS, TABLES, quote_ident
from churnml.duck import OpenProblem, RawTable, Workspace, count_rows, describe
from churnml.errors import ChurnmlError
from churnml.progress import steps

SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = ("password", "sslpassword")
_PLACE_PARAMS = ("host", "hostaddr", "port", "dbname", "service")  # what names a database (not who reads it)

# PostgreSQL types Arrow and DuckDB read as they are; numeric becomes double precision (as Parquet's decimals
# become numbers), anything else (uuid, json, enums, intervals, arrays, money...) is read as its text
_AS_IS = {
    "text",
    "varchar",
    "bpchar",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
}
_AS_DOUBLE = {"numeric"}


# --- URIs: which database, without the credentials --------------------------------------------------------
def is_database_uri(text: str | None) -> bool:
    """Whether ``text`` is a database URI churnml reads (``postgresql://`` or ``postgres://``)."""
    return bool(text) and urlsplit(str(text)).scheme.lower() in SCHEMES


def check_uri(uri: str) -> None:
    """Refuse what is not a PostgreSQL URI, naming only its scheme."""
    scheme = urlsplit(str(uri)).scheme.lower()
    if scheme not in SCHEMES:
        shown = f"{scheme}://..." if scheme else "a text that is not a URI"
        raise ChurnmlError(
            f"a database source is a postgresql:// URI (got {shown}); churnml reads PostgreSQL "
            f"(tested), see docs/warehouse.md"
        )


SQLITE = "sqlite:///"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI as written (``sqlite:////abs.db`` absolute, ``sqlite:///rel.db``
    relative), or None for any other URI."""
    return Path(uri[len(SQLITE) :]) if uri.startswith(SQLITE) else None


def mask_uri(uri: str) -> str:
    """The URI with its password (in the authority or as a ``password=`` parameter) replaced by ``***``."""
    parts = urlsplit(str(uri))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = [
        (k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    q = urlencode(query, safe="/*:,")
    tail = (f"?{q}" if q else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def database_place(uri: str) -> str:
    """The database a URI names, as ``postgresql://host:port/dbname`` (plus the host, port, dbname or
    service given as parameters): no user, no password, no other option."""
    parts = urlsplit(str(uri))
    host = parts.netloc.rsplit("@", 1)[-1]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in _PLACE_PARAMS]
    q = urlencode(sorted(query), safe="/:,")
    return f"postgresql://{host}{parts.path or '/'}" + (f"?{q}" if q else "")


def source_label(uri: str, schema: str) -> str:
    """How messages, the ledger and MLflow name a database base: its place and schema, without credentials."""
    return f"{database_place(uri)} schema {schema}"


def source_key(uri: str, schema: str) -> str:
    """A short stable hash of the place and schema (a base's identity in the ledger)."""
    return hashlib.sha1(source_label(uri, schema).encode()).hexdigest()[:8]


def _secrets(uri: str) -> list[str]:
    parts = urlsplit(str(uri))
    out = []
    if "@" in parts.netloc and ":" in parts.netloc.rsplit("@", 1)[0]:
        out.append(parts.netloc.rsplit("@", 1)[0].split(":", 1)[1])
    out += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in _SECRET_PARAMS]
    return [s for v in out if v for s in {v, unquote(v), quote(unquote(v), safe="")}]


def scrub(text: str, uri: str) -> str:
    """``text`` with the URI's password (raw, decoded or encoded) replaced by ``***``."""
    text = str(text).replace(str(uri), mask_uri(uri))
    for s in sorted(_secrets(uri), key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def db_message(e: BaseException, uri: str) -> str:
    """The server's or driver's own words for an error, one line, without the query text or a password."""
    text = str(e)
    m = re.search(r"(?:ERROR|FATAL):\s+(.*)", text)
    if m:
        text = m.group(1)
    elif "Failed to connect: " in text:
        text = text.split("Failed to connect: ", 1)[1]
    text = re.sub(r"\s*SQLSTATE: \w+\s*$", "", text.strip())
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    return scrub(line, uri)


def connect(uri: str):
    """An ADBC DB-API connection (autocommit off: every statement is inside a transaction until commit)."""
    check_uri(uri)
    try:
        return pg_dbapi.connect(str(uri))
    except adbc_driver_manager.Error as e:
        raise ChurnmlError(f"cannot connect to {database_place(uri)}: {db_message(e, uri)}") from None


# --- what a schema holds ----------------------------------------------------------------------------------
def schema_objects(con, schema: str) -> dict[str, dict[str, str]] | None:
    """Tables and views (plain, materialized, partitioned, foreign) of ``schema``: name -> {column: type name},
    columns in their order; None when there is no such schema. The catalogs are asked with the name as a bound
    parameter, so a table this user may not read is still listed (reading it then says why)."""
    with con.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1", (schema,))
        if not cur.fetchall()[0][0]:
            return None
        cur.execute(
            "SELECT c.relname, a.attname, t.typname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY c.relname, a.attnum",
            (schema,),
        )
        found: dict[str, dict[str, str]] = {}
        for table, column, typ in cur.fetchall():
            cols = found.setdefault(table, {})
            if column is not None:
                cols[column] = typ or ""
    return found


def wanted_columns(table: str, columns: dict[str, str], attributes=()) -> list[str]:
    """The columns of a stored table that churnml reads: the contract's, ``feature_*`` for usage, declared
    attributes for accounts; in the table's order."""
    spec = SPECS[table]
    names = {c.name for c in spec.columns} | (set(attributes) if table == "accounts" else set())
    return [c for c in columns if c in names or (spec.prefix and c.startswith(spec.prefix))]


def _select(schema: str, table: str, columns: dict[str, str], names: list[str]) -> str:
    parts = []
    for c in names:
        t, q = columns[c].lower(), quote_ident(c)
        if t in _AS_IS:
            parts.append(q)
        elif t in _AS_DOUBLE:
            parts.append(f"CAST({q} AS double precision) AS {q}")
        else:
            parts.append(f"CAST({q} AS text) AS {q}")
    return f"SELECT {', '.join(parts)} FROM {quote_ident(schema)}.{quote_ident(table)}"


def _begin_snapshot(con) -> None:
    with con.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


# --- reading a base ---------------------------------------------------------------------------------------
def open_raw_tables_db(
    ws: Workspace, uri: str, schema: str, *, attributes=(), progress=None
) -> tuple[dict[str, RawTable], list[OpenProblem]]:
    """Load every contract table of ``schema`` into the workspace; problems are returned, not raised (as
    :func:`churnml.io.tables.open_raw_tables`). A database that cannot be reached, or a schema that does not
    exist, is a :class:`ChurnmlError`."""
    if not schema:
        raise ChurnmlError("a database source needs a schema (--schema NAME, or source_schema in the config)")
    con = connect(uri)
    place = database_place(uri)
    try:
        _begin_snapshot(con)
        try:
            objects = schema_objects(con, schema)
        except adbc_driver_manager.Error as e:
            raise ChurnmlError(f"cannot list the tables of {place}: {db_message(e, uri)}") from None
        if objects is None:
            raise ChurnmlError(f"schema {schema!r} does not exist in {place} (or this user may not use it)")
        raw, problems = {}, []
        lower = {n.lower(): n for n in objects}
        for name in steps(list(TABLES), "read", progress, unit="table"):
            if name not in objects:
                if SPECS[name].required:
                    near = lower.get(name)
                    hint = f"; {near!r} exists, but names are case-sensitive" if near else ""
                    problems.append(
                        OpenProblem(
                            name,
                            "required",
                            f"required table missing (no table or view {name} in schema {schema}{hint})",
                        )
                    )
                continue
            try:
                raw[name] = _load(ws, con, schema, name, objects[name], attributes)
            except adbc_driver_manager.Error as e:
                problems.append(OpenProblem(name, "unreadable", f"cannot read {schema}.{name}: {db_message(e, uri)}"))
                con.rollback()  # the failed statement ended the transaction's usefulness: start a new one
                _begin_snapshot(con)
        return raw, problems
    finally:
        try:
            con.rollback()
        finally:
            con.close()


def _load(ws: Workspace, con, schema: str, name: str, columns: dict[str, str], attributes) -> RawTable:
    names = wanted_columns(name, columns, attributes)
    relation = f"{ws.store()}.raw_{name}"
    if not names:  # none of the contract's columns: validation says which are missing
        with con.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(name)}")
            n = int(cur.fetchone()[0])
        ws.con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT NULL AS {quote_ident('__none')} WHERE FALSE")
        return RawTable(name, relation, "postgres", {}, n)
    with con.cursor() as cur:
        cur.execute(_select(schema, name, columns, names))
        reader = cur.fetch_record_batch()
        view = f"__arrow_{name}"
        ws.con.register(view, reader)  # DuckDB pulls the batches one by one into its on-disk table
        try:
            ws.con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM {view}")
        finally:
            ws.con.unregister(view)
    return RawTable(name, relation, "postgres", describe(ws.con, relation), count_rows(ws.con, relation))


def fingerprint_tables(ws: Workspace, raw: dict[str, RawTable]) -> str:
    """A digest of the tables' contents as read (row order does not matter): the data fingerprint of a base
    that has no files."""
    h = hashlib.sha1()
    for name in sorted(raw):
        r = raw[name]
        n, s = ws.con.sql(f"SELECT count(*), COALESCE(sum(hash(t)), 0) FROM {r.relation} AS t").fetchall()[0]
        h.update(f"{name}:{sorted(r.columns.items())}:{n}:{s};".encode())
    return h.hexdigest()[:16]
