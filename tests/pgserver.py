"""A throwaway PostgreSQL server for the tests and the benchmark, and a loader of contract tables.

:class:`PostgresServer` runs Debian's ``postgresql`` binaries (``initdb``, ``pg_ctl``; ``make test``
installs the package when missing) on a unix socket in a new temporary folder, with no TCP port,
and removes everything when stopped. As root (CI) the server runs as the unprivileged ``postgres``
user, as PostgreSQL requires. The superuser ``churnml`` has a random password, checked by
scram-sha-256: every URI the tests use carries it, so a test can look for it where it must not be.

:func:`load_base` writes contract tables (pandas frames) into a schema as a warehouse would hold
them: typed columns (text, date, timestamptz, integer, double precision) created first, rows
copied in by ADBC's bulk ingest.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

MISSING = (
    "PostgreSQL server binaries not found (initdb and pg_ctl in /usr/lib/postgresql/<version>/bin or on "
    "PATH): install Debian's postgresql package (`make postgres`, which `make test` runs)"
)


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: the newest /usr/lib/postgresql/<v>/bin, else PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


class PostgresServer:
    """One PostgreSQL server on a unix socket in a private temporary folder (see the module docstring)."""

    def __init__(self, bindir: Path):
        self.bindir = Path(bindir)
        self.password = "pw-" + secrets.token_hex(8)
        self.user = "churnml"
        self.dir = Path(tempfile.mkdtemp(prefix="churnml-pg-"))  # short: a socket path has at most 107 bytes
        self.data = self.dir / "data"
        self._as = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, and there is no 'postgres' user to run the server as "
                    "(Debian's postgresql package creates it)"
                ) from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def uri(self) -> str:
        """A URI with the password in it (the way a user may well write one)."""
        return f"postgresql://{self.user}:{self.password}@/postgres?host={self.dir}"

    @property
    def uri_without_password(self) -> str:
        return f"postgresql://{self.user}@/postgres?host={self.dir}"

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], check=True, capture_output=True, text=True, **kw)

    def start(self) -> PostgresServer:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            shutil.chown(pwfile, "postgres")
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            pwfile.unlink()
            opts = (
                f"-k {self.dir} -c listen_addresses='' -c TimeZone=UTC -c fsync=off -c synchronous_commit=off "
                f"-c full_page_writes=off -c max_connections=40"
            )
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                opts,
                "-l",
                str(self.dir / "log"),
                "-w",
                "-t",
                "60",
                "start",
            )
        except subprocess.CalledProcessError as e:
            log = (self.dir / "log").read_text() if (self.dir / "log").is_file() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {e.stderr}\n{log}") from None
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            subprocess.run(
                [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, statement: str, parameters=None, *, fetch: bool = False):
        """Run one statement in its own committed transaction; with ``fetch``, return its rows."""
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(self.uri) as con, con.cursor() as cur:
            cur.execute(statement, parameters)
            rows = cur.fetchall() if fetch else None
            con.commit()
        return rows


# --- contract tables as a warehouse holds them -----------------------------------------------------------
_PG = {
    "string": "text",
    "category": "text",
    "date": "date",
    "timestamp": "timestamptz",
    "float": "double precision",
    "int": "integer",
}


def _qi(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _kind(table: str, name: str, s: pd.Series) -> str:
    """The contract kind of a column (for one it does not name: from its dtype)."""
    from churnml.contract import SPECS

    spec = SPECS[table].column(name) if table in SPECS else None
    if spec is not None:
        return spec.kind
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if pd.api.types.is_integer_dtype(s):
        return "int"
    if pd.api.types.is_numeric_dtype(s):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "timestamp"
    return "string"


def _arrow(s: pd.Series, kind: str) -> pa.Array:
    """A column as Arrow, typed by its kind (dates as dates, timestamps in UTC)."""
    if kind in ("string", "category"):
        return pa.array(
            [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in s], type=pa.string()
        )
    if kind == "date":
        d = pd.to_datetime(s)
        return pa.array([None if pd.isna(v) else v.date() for v in d], type=pa.date32())
    if kind == "timestamp":
        t = pd.to_datetime(s)
        utc = t if t.dt.tz is None else t.dt.tz_convert("UTC").dt.tz_localize(None)
        return pa.array(utc.to_numpy("datetime64[us]"), type=pa.timestamp("us", tz="UTC"), from_pandas=True)
    if kind == "int":
        return pa.array(s.astype("Int64")).cast(pa.int64())
    if kind == "bool":
        return pa.array(s, type=pa.bool_())
    return pa.array(s.astype("float64"), type=pa.float64(), from_pandas=True)


def load_base(uri: str, schema: str, tables: dict, *, types: dict | None = None, views: bool = False) -> None:
    """Create ``schema`` (replacing it) and one typed table per frame (``None`` = absent), rows copied in.

    Columns are declared as a warehouse would (text, date, timestamptz, integer, double precision);
    ``types`` ({table: {column: any PostgreSQL type}}) declares others, the rows cast on the server
    (numeric, an enum, text dates, naive timestamps...). ``views``: the contract's names are views over
    tables named ``src_<table>`` (warehouses often expose views)."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri) as con:
        with con.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {_qi(schema)} CASCADE")
            cur.execute(f"CREATE SCHEMA {_qi(schema)}")
            for name, df in tables.items():
                if df is None:
                    continue
                df = df.reset_index(drop=True)
                kinds = {c: _kind(name, c, df[c]) for c in df.columns}
                declared = {c: (types or {}).get(name, {}).get(c) or _PG.get(k, "boolean") for c, k in kinds.items()}
                stored = f"src_{name}" if views else name
                target = f"{_qi(schema)}.{_qi(stored)}"
                cur.execute(f"CREATE TABLE {target} ({', '.join(f'{_qi(c)} {t}' for c, t in declared.items())})")
                cur.execute("DROP TABLE IF EXISTS pg_temp.churnml_load")
                cur.adbc_ingest(
                    "churnml_load",
                    pa.table({c: _arrow(df[c], k) for c, k in kinds.items()}),
                    mode="create",
                    temporary=True,
                )
                cols = ", ".join(map(_qi, declared))
                cast = ", ".join(f"CAST({_qi(c)} AS {t})" for c, t in declared.items())
                cur.execute(f"INSERT INTO {target} ({cols}) SELECT {cast} FROM pg_temp.churnml_load")
                cur.execute("DROP TABLE pg_temp.churnml_load")
                if views:
                    cur.execute(f"CREATE VIEW {_qi(schema)}.{_qi(name)} AS SELECT * FROM {target}")
        con.commit()
