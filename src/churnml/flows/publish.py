"""``churnml publish``: the latest score run into a database schema, for reverse ETL and CRMs.

Reads one scoring run's folder (``<output_dir>/scores``, or ``--scores DIR``) and its
base's ledger, and upserts them, in one transaction, into churnml's own tables of the
target schema (:mod:`churnml.io.publish`, docs/warehouse.md):

* ``churnml_scores``: one row per scored account, keyed by (as_of, model_version, account_id);
* ``churnml_drivers``: the reasons, keyed by (as_of, model_version, account_id, target, rank);
* ``churnml_forecast``: the run's forecast, when its folder has one (``forecast.parquet``),
  keyed by (as_of, model_version, group_by, group);
* ``churnml_ledger``: every score of the base ever made, keyed as the scores (a later run of
  the same model on the same day wins, as it does in the files); the rows of runs the table
  holds already are not sent again, so a publish costs one run's rows, not the history's.

Every table also has ``row_key``: its key in one text column (the parts joined by ``|``),
unique, for the tools whose sync or upsert takes a single external id. The source schema
of the base is never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnml.errors import ChurnmlError
from churnml.flows.common import Run, manifest_ledger, read_ledger
from churnml.flows.score import output_paths
from churnml.io.database import database_place, source_label
from churnml.io.outputs import read_json, read_table_file
from churnml.io.publish import TableWrite, Written, publish_tables

# the key of each table, the run's (as_of, model_version) first: a new run's rows go to the end of the indexes
SCORE_KEY = ("as_of", "model_version", "account_id")
KEYS = {
    "churnml_scores": SCORE_KEY,
    "churnml_drivers": (*SCORE_KEY, "target", "rank"),
    "churnml_forecast": ("as_of", "model_version", "group_by", "group"),
    "churnml_ledger": SCORE_KEY,
}
DATES = ("as_of", "renewal_date")  # day columns (stored as midnight timestamps in the files)
FORECAST_FILE = "forecast.parquet"


@dataclass
class PublishResult:
    target: str
    manifest: dict
    written: list[Written]
    seconds: float

    @property
    def summary(self) -> str:
        parts = "; ".join(
            f"{w.name} {w.inserted:,} new, {w.updated:,} updated, {w.unchanged:,} unchanged" for w in self.written
        )
        m = self.manifest
        return (
            f"published the scores as of {m.get('as_of')} ({m.get('model_name')} v{m.get('model_version')}, "
            f"run {str(m.get('run_id', ''))[:8]}) to {self.target}: {parts} ({self.seconds:.1f}s)"
        )


def _prepared(frame: pd.DataFrame, table: str, manifest: dict) -> pa.Table:
    """A frame as the table's rows: the run's as_of and model version where the frame lacks them, day
    columns as dates; ``row_key`` and the key's columns first."""
    df = frame.reset_index(drop=True).copy()
    for c, v in (("as_of", manifest.get("as_of")), ("model_version", manifest.get("model_version"))):
        if c not in df.columns:
            if v is None:
                raise ChurnmlError(f"{table}: the run's manifest has no {c}")
            df.insert(0, c, v)
    key = KEYS[table]
    missing = [k for k in key if k not in df.columns]
    if missing:
        raise ChurnmlError(
            f"{table}: the run's files have no {', '.join(missing)} column (this churnml cannot publish them)"
        )
    for c in DATES:
        if c in df.columns:
            df[c] = pd.to_datetime(df[c]).dt.normalize()
    if df[list(key)].isna().any().any():
        bad = [k for k in key if df[k].isna().any()]
        raise ChurnmlError(f"{table}: {', '.join(bad)} is empty in some rows (a key is never empty)")
    df = df[[*key, *[c for c in df.columns if c not in key]]]  # the key first
    t = pa.Table.from_pandas(df, preserve_index=False)
    for c in DATES:
        if c in t.column_names:
            t = t.set_column(t.column_names.index(c), c, t.column(c).cast(pa.timestamp("us")).cast(pa.date32()))
    parts = [pc.strftime(t.column(k), "%Y-%m-%d") if k in DATES else t.column(k).cast(pa.string()) for k in key]
    return t.add_column(0, "row_key", pc.binary_join_element_wise(*parts, "|"))


def _ledger(folder: Path | None, part: Path) -> pd.DataFrame | None:
    """The base's ledger (the run's own rows when the base's folder has none), one row per key: the latest
    scored (a rerun of the same model on the same day replaces it)."""
    ledger = read_ledger(folder) if folder is not None else None
    if ledger is None:
        if not part.is_file():
            return None
        ledger = read_table_file(part)
    order = ledger.sort_values("scored_at", kind="stable") if "scored_at" in ledger.columns else ledger
    return order.drop_duplicates(list(SCORE_KEY), keep="last")


def run_publish(
    run: Run, *, to: str | None = None, schema: str | None = None, scores: Path | None = None
) -> PublishResult:
    """Publish the score run in ``scores`` (default ``<output_dir>/scores``) to ``schema`` of ``to``."""
    cfg = run.cfg
    to = to or cfg.publish.to
    schema = schema or cfg.publish.to_schema
    if not to:
        raise ChurnmlError("publish needs a database: --to URI (or publish.to in the config)")
    folder = Path(scores) if scores else run.paths.scores_dir
    p = output_paths(folder)
    if not (p["scores"].is_file() and p["manifest"].is_file()):
        raise ChurnmlError(f"no score run in {folder}: run `churnml score` (make score) first")
    manifest = read_json(p["manifest"])
    target = source_label(to, schema)
    sources = {manifest.get("data_dir")} | ({source_label(cfg.source, cfg.source_schema)} if cfg.source else set())
    if target in sources:
        raise ChurnmlError(
            f"{target} is where the base is read from: churnml never writes its source; publish "
            f"to a schema of its own (--schema)"
        )
    ledger_dir = manifest_ledger(cfg, manifest)
    readers = {"churnml_scores": lambda: read_table_file(p["scores"])}
    if p["drivers"].is_file():
        readers["churnml_drivers"] = lambda: read_table_file(p["drivers"])
    if (folder / FORECAST_FILE).is_file():
        readers["churnml_forecast"] = lambda: read_table_file(folder / FORECAST_FILE)
    readers["churnml_ledger"] = lambda: _ledger(ledger_dir, p["ledger_part"])

    def writes():  # one table in memory at a time: read, prepared, written, let go
        for name, read in readers.items():
            df = read()
            if df is None:
                continue
            skip = "run_id" if name == "churnml_ledger" and "run_id" in df.columns else None
            data = _prepared(df, name, manifest)
            del df  # the frame goes before the table is written
            yield TableWrite(name, data, KEYS[name], not_null=("row_key",), skip_present=skip)

    run.echo(f"publishing {', '.join(readers)} to {database_place(to)} schema {schema}")
    written = publish_tables(to, schema, writes())
    return PublishResult(target, manifest, written, run.seconds())
