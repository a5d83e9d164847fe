"""What every flow shares: opening the base, the playbook, the ledger, tracking, timing and messages.

Flows are the only code that reads the config, calls the I/O layer (:mod:`churnml.io`)
and the MLflow module (:mod:`churnml.tracking`), and wires the pure stages.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.config import Config, Paths
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.io import artifacts
from churnml.io.outputs import read_json, write_parquet

Echo = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Run:
    """One command's settings, paths, messages and clock."""

    cfg: Config
    echo: Echo = _stderr
    progress: object = None  # "bar" on a terminal, "lines" in logs, None: quiet (churnml.progress)
    started: float = field(default_factory=time.perf_counter)

    @property
    def paths(self) -> Paths:
        return self.cfg.paths()

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def open_dataset(self, data_dir: Path | None = None, *, validate: bool = True, as_of=None) -> Dataset:
        """The base: ``data_dir``, else the configured database source, else the configured data folder."""
        cfg = self.cfg
        if data_dir is None and cfg.source:
            return self._open_database(cfg.source, validate=validate, as_of=as_of)
        return Dataset.open(data_dir or cfg.data_dir, validate=validate,
                            attributes=tuple(cfg.contract.account_attributes), threads=cfg.train.threads,
                            memory_limit=cfg.engine.memory_limit, progress=self.progress, as_of=as_of)

    def _open_database(self, source: str, *, validate: bool, as_of) -> Dataset:
        from churnml.io.database import open_raw_tables_db
        from churnml.io.tables import Workspace

        cfg = self.cfg
        attributes = tuple(cfg.contract.account_attributes)
        ws = Workspace(cfg.train.threads, cfg.engine.memory_limit)
        try:
            raw, problems = open_raw_tables_db(ws, source, cfg.source_schema, attributes=attributes,
                                               progress=self.progress)
            ds = Dataset(ws, raw, problems, data_dir=None, source=data_source(cfg), attributes=attributes,
                         as_of=as_of)
            if validate:
                ds.require_valid(progress=self.progress)
            return ds
        except BaseException:
            ws.close()
            raise

    def require_folder(self, what: str) -> None:
        """Refuse ``what`` (e.g. the Spark engine) when the base is a database source: it reads folders."""
        if self.cfg.source:
            raise ChurnmlError(f"{what} reads a data folder (--data-dir); a --source database is read by the "
                               f"local engine (--engine duckdb)")

    def fingerprint(self, ds: Dataset) -> str:
        """The base's content digest: of its files, or of the tables read from the database."""
        files = [r.path for r in ds.raw.values() if r.path is not None]
        if files:
            return artifacts.fingerprint_files(files)
        if ds.source is not None:
            from churnml.io.database import fingerprint_tables

            return fingerprint_tables(ds.ws, ds.raw)
        return "in-memory"

    def playbook(self):
        """The playbook, parsed and checked (:class:`churnml.scoring.reasons.Playbook`)."""
        from churnml.scoring.reasons import parse_playbook

        path = self.cfg.scoring.playbook_file
        return parse_playbook(artifacts.read_playbook(path), str(path or "the built-in playbooks"))

    def scoring_settings(self) -> dict:
        """The keyword settings of :func:`churnml.scoring.score.score_dataset` from the config."""
        sc = self.cfg.scoring
        return {"top": sc.top_drivers, "playbook": self.playbook(), "expansion_share": sc.expansion_explain_share,
                "drift_threshold": sc.drift_psi_threshold, "play_min_points": sc.play_min_points,
                "lower_moves": sc.how_to_lower_moves}

    def tracking(self) -> str:
        """Point MLflow at the configured store and experiment; returns the store URI."""
        tracking.quiet()
        p = self.paths
        tracking.configure(p.tracking_uri, self.cfg.mlflow.experiment, p.artifact_root)
        return tracking.resolve_uri(p.tracking_uri)

    def tiers(self, model) -> dict:
        """The risk tiers' probability cut-offs for a model, from the tier settings."""
        from churnml.scoring.score import tier_thresholds

        return tier_thresholds(self.cfg.scoring.tiers, model.settings.get("risk_quantiles"))

    def tuned_params(self) -> dict | None:
        """The parameters `churnml tune` saved, when enabled and present."""
        f = self.paths.tuned_params
        if not self.cfg.train.use_tuned_params or not f.is_file():
            return None
        rec = read_json(f)
        if not isinstance(rec, dict) or not isinstance(rec.get("params"), dict):
            raise ChurnmlError(f"{f} is not a tuned-parameters file (expected {{\"params\": {{...}}}}); "
                               f"rerun `churnml tune` or set train.use_tuned_params: false")
        return rec["params"]


def data_source(cfg: Config) -> str:
    """Where the base is read from, as messages, manifests and MLflow name it: the data folder, or the
    database source's host, port, database and schema (never its credentials)."""
    if cfg.source:
        from churnml.io.database import source_label

        return source_label(cfg.source, cfg.source_schema)
    return str(cfg.data_dir)


def dataset_ref(cfg: Config) -> tuple[str, str]:
    """The base as an MLflow dataset input: (source, name)."""
    if cfg.source:
        from churnml.io.database import database_place

        return f"{database_place(cfg.source)}#{cfg.source_schema}", cfg.source_schema
    return str(Path(cfg.data_dir).resolve()), Path(cfg.data_dir).name


def base_id(cfg: Config) -> str:
    """The identity of a customer base in the ledger: ``base_name`` from config, else the data folder's
    name and a hash of its absolute path (two bases never share a history by accident). Symbolic links
    are not followed: a folder that `churnml generate` replaced in one step keeps its history. A database
    source: its schema's name and a hash of its host, port, database and schema."""
    if cfg.base_name:
        return cfg.base_name
    if cfg.source:
        from churnml.io.database import source_key

        name = re.sub(r"[^A-Za-z0-9_.-]", "_", cfg.source_schema).lstrip(".") or "base"
        return f"{name}-{source_key(cfg.source, cfg.source_schema)}"
    d = Path(os.path.abspath(cfg.data_dir))
    return f"{d.name or 'base'}-{hashlib.sha1(str(d).encode()).hexdigest()[:8]}"


# --- the ledger: one part file per scoring run, one folder per base --------------------------------------
def ledger_folder(cfg: Config, base: str | None = None) -> Path:
    return cfg.paths().ledger_dir / (base or base_id(cfg))


def read_ledger(folder: Path) -> pd.DataFrame | None:
    """Every score ever written for one base (None when there is none yet)."""
    parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if not parts:
        return None
    from churnml.io.outputs import read_table_file

    return pd.concat([read_table_file(p) for p in parts], ignore_index=True)


def write_ledger_part(folder: Path, rows: pd.DataFrame, run_id: str, scored_at: pd.Timestamp) -> Path:
    """Append one run's rows: a new part file (concurrent runs never overwrite each other)."""
    return write_parquet(rows, folder / f"part-{scored_at:%Y%m%dT%H%M%S}-{run_id}.parquet")


def ledger_has(folder: Path, run_id: str) -> bool:
    return folder.is_dir() and any(p.name.endswith(f"-{run_id}.parquet") for p in folder.glob("part-*.parquet"))
