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
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from churnml import tracking
from churnml.api import open_database, open_dataset
from churnml.config import Config, Paths
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.io import artifacts
from churnml.io.database import database_place, fingerprint_tables, source_key, source_label
from churnml.io.outputs import read_json, read_table_file, rename_folder, write_json, write_parquet
from churnml.modeling.model import ChurnmlModel
from churnml.modeling.recipe import FoldSpec, RecipeSpec
from churnml.modeling.training import merge_params
from churnml.scoring.reasons import Playbook, parse_playbook
from churnml.scoring.score import ScoringSpec
from churnml.scoring.tiers import tier_thresholds
from churnml.serving import load_model
from churnml.tracking import CHAMPION

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
        """The base: ``data_dir``, else the configured database source (``source``, ``source_schema``), else the
        configured data folder; validated unless told not to; with ``as_of``, only what was known before that day
        (see :class:`churnml.dataset.Dataset`)."""
        cfg = self.cfg
        kw = {
            "validate": validate,
            "attributes": tuple(cfg.contract.account_attributes),
            "threads": cfg.train.threads,
            "memory_limit": cfg.engine.memory_limit,
            "progress": self.progress,
            "as_of": as_of,
        }
        if data_dir is None and cfg.source:
            return open_database(cfg.source, cfg.source_schema, name=data_source(cfg), **kw)
        return open_dataset(data_dir or cfg.data_dir, **kw)

    def require_folder(self, what: str) -> None:
        """Refuse ``what`` (e.g. the Spark engine) when the base is a database source: it reads folders."""
        if self.cfg.source:
            raise ChurnmlError(
                f"{what} reads a data folder (--data-dir); a --source database is read by the "
                f"local engine (--engine duckdb)"
            )

    def fingerprint(self, ds: Dataset) -> str:
        """The base's content digest: of its files, or of the tables read from the database."""
        files = [r.path for r in ds.raw.values() if r.path is not None]
        if files:
            return artifacts.fingerprint_files(files)
        if ds.source is not None:
            return fingerprint_tables(ds.ws, ds.raw)
        return "in-memory"

    def check_settings(self, *, playbook: bool = True) -> None:
        """Check, before any work, what the config points at: the data folder (unless the base is a database
        source), the playbook (read and parsed) and the tuned parameters; a path that cannot be used is one
        error naming the path tried and the setting."""
        cfg = self.cfg
        if not cfg.source:
            d = Path(cfg.data_dir)
            if not d.is_dir():
                what = "is not a folder" if d.exists() else "not found"
                raise ChurnmlError(
                    f"data folder {what}: {d} (config data_dir, or --data-dir; a path in a config file is from "
                    f"the file's folder)"
                )
        if playbook:
            self.playbook()
        self.tuned_params()

    def playbook(self) -> Playbook:
        """The playbook, parsed and checked."""
        path = self.cfg.scoring.playbook_file
        return parse_playbook(artifacts.read_playbook(path), str(path or "the built-in playbooks"))

    def recipe_spec(self) -> RecipeSpec:
        """The model recipe's settings (:mod:`churnml.modeling.recipe`), read once from the config: labels,
        cutoffs, targets, folds, LightGBM parameters (tuned ones, then config overrides), calibration, seed,
        threads and the high tier the early-warning figures judge."""
        cfg, t = self.cfg, self.cfg.train
        params, source = merge_params(self.tuned_params(), t.params)
        if source.startswith("tuned"):
            source = source.replace("tuned", f"tuned ({self.paths.tuned_params})", 1)
        tiers = cfg.scoring.tiers
        return RecipeSpec(
            horizon_days=cfg.labels.horizon_days,
            uplift=cfg.labels.uplift,
            cutoffs=t.cutoffs,
            max_cutoffs=t.max_cutoffs,
            targets=t.targets,
            min_events=t.min_events,
            folds=FoldSpec(t.folds, t.test_cutoffs, t.calibration_cutoffs),
            params=params,
            params_source=source,
            calibration=t.calibration,
            seed=t.seed,
            threads=t.threads,
            tier_high=tiers.high_level if tiers.method == "levels" else None,
            # capacity tiers: judged as their largest high tier, the top high_max_share of each cutoff
            high_share=tiers.high_max_share if tiers.method == "capacity" else tiers.high_share,
            tier_medium=tiers.medium_level if tiers.method != "quantiles" else None,
            medium_share=tiers.medium_share,
        )

    def tiers(self, model: ChurnmlModel) -> dict:
        """The risk tiers' probability cut-offs for a model, from the tier settings."""
        return tier_thresholds(self.cfg.scoring.tiers, model.card.risk_quantiles)

    def scoring_spec(self, model: ChurnmlModel, **changes) -> ScoringSpec:
        """How scoring explains (:class:`churnml.scoring.score.ScoringSpec`), read once from the config, with
        the model's tier cut-offs; ``changes`` override single settings (``explain`` uses none, so its story
        is scored exactly as the pages' scores)."""
        sc = self.cfg.scoring
        spec = ScoringSpec(
            playbook=self.playbook(),
            tier_thresholds=self.tiers(model),
            top=sc.top_drivers,
            expansion_share=sc.expansion_explain_share,
            drift_threshold=sc.drift_psi_threshold,
            play_min_points=sc.play_min_points,
            lower_moves=sc.how_to_lower_moves,
        )
        return replace(spec, **changes) if changes else spec

    def tracking(self, kind: str | None = None) -> str:
        """Point MLflow at the configured store and experiment (``kind``, e.g. ``scoring``: the experiment
        ``<experiment>-<kind>``, so those runs stay out of the training runs); returns the store URI."""
        tracking.quiet()
        p = self.paths
        name = self.cfg.mlflow.experiment + (f"-{kind}" if kind else "")
        tracking.configure(p.tracking_uri, name, p.artifact_root, lock_timeout=self.cfg.mlflow.lock_timeout_seconds)
        return tracking.resolve_uri(p.tracking_uri)

    def registered_model(self, alias: str | None = None) -> tuple[ChurnmlModel, str]:
        """The registered model behind ``<model_name>@<alias>`` (the configured scoring alias by default),
        and its version."""
        name, alias = self.cfg.mlflow.model_name, alias or self.cfg.scoring.model_alias
        folder, version = tracking.registered_model_dir(name, alias)
        return _load(folder, f"model {name} v{version} ({name}@{alias})"), version

    def holdout_model(self, alias: str = CHAMPION) -> ChurnmlModel | None:
        """The holdout model of the run behind ``<model_name>@<alias>`` (the recipe trained without the holdout
        cutoffs, which the promotion gate compares); the registered model itself for runs that kept none;
        None when the alias is unset."""
        name = self.cfg.mlflow.model_name
        if tracking.alias_version(name, alias) is None:
            return None
        folder = tracking.run_artifact_dir(name, alias, "holdout_model")
        if folder is None:
            return self.registered_model(alias)[0]
        return _load(folder, f"the holdout model of {name}@{alias} (v{tracking.alias_version(name, alias)})")

    def fold_models(self, alias: str | None = None) -> list[ChurnmlModel]:
        """The backtest folds' models of the run behind ``<model_name>@<alias>``, each trained only on labels
        known before its card's ``first_test_cutoff``; [] when the run kept none."""
        name, alias = self.cfg.mlflow.model_name, alias or self.cfg.scoring.model_alias
        folder = tracking.run_artifact_dir(name, alias, "fold_models")
        if folder is None:
            return []
        return [_load(d, f"backtest model {d.name} of {name}@{alias}") for d in sorted(folder.iterdir()) if d.is_dir()]

    def tuned_params(self) -> dict | None:
        """The parameters `churnml tune` saved, when enabled and present."""
        f = self.paths.tuned_params
        if not self.cfg.train.use_tuned_params or not f.is_file():
            return None
        rec = read_json(f)
        if not isinstance(rec, dict) or not isinstance(rec.get("params"), dict):
            raise ChurnmlError(
                f'{f} is not a tuned-parameters file (expected {{"params": {{...}}}}); '
                f"rerun `churnml tune` or set train.use_tuned_params: false"
            )
        return rec["params"]


def _load(folder: Path, what: str) -> ChurnmlModel:
    """A model from the store's files; damaged files are one line naming the model version and what to do."""
    try:
        return load_model(folder)
    except ChurnmlError as e:
        raise ChurnmlError(
            f"{what} in the MLflow store {tracking.store_name()} cannot be used ({e}); restore its files from a "
            f"backup, or train a new model to replace it (churnml train --replace-champion)"
        ) from None


def check_as_of(as_of: pd.Timestamp, last_day: pd.Timestamp, horizon_days: int) -> None:
    """Refuse to score as of a day more than a horizon after the data end: the days between would be read
    as real silence (no usage, no tickets), not as data that were never delivered."""
    as_of, last_day = pd.Timestamp(as_of), pd.Timestamp(last_day)
    gap = (as_of - (last_day + pd.Timedelta(days=1))).days
    if gap > horizon_days:
        latest = last_day + pd.Timedelta(days=1 + horizon_days)
        raise ChurnmlError(
            f"--as-of {as_of:%Y-%m-%d} is {gap:,} days after the data end ({last_day:%Y-%m-%d}):"
            f" the days between would read as silence (no usage, no tickets), not as missing data; bring the data "
            f"up to date, or score as of {latest:%Y-%m-%d} at the latest"
        )


def data_source(cfg: Config) -> str:
    """Where the base is read from, as messages, manifests and MLflow name it: the data folder, or the
    database source's host, port, database and schema (never its credentials)."""
    if cfg.source:
        return source_label(cfg.source, cfg.source_schema)
    return str(cfg.data_dir)


def dataset_ref(cfg: Config) -> tuple[str, str]:
    """The base as an MLflow dataset input: (source, name)."""
    if cfg.source:
        return f"{database_place(cfg.source)}#{cfg.source_schema}", cfg.source_schema
    return str(Path(cfg.data_dir).resolve()), Path(cfg.data_dir).name


def _folder_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".") or "base"


def base_id(cfg: Config) -> str:
    """The name of a customer base, which keys its history in the ledger: ``base_name`` from the config
    (or ``--base-name``), else the data folder's name, else the source's schema. It does not depend on
    where the base is mounted: the same folder moved, remounted in a container or read by cron from
    another path keeps its history. Two different bases that would share a name are told apart by
    :func:`check_base_identity`."""
    if cfg.base_name:
        return cfg.base_name
    if cfg.source:
        return _folder_name(cfg.source_schema)
    return _folder_name(Path(os.path.abspath(cfg.data_dir)).name)


def legacy_base_id(cfg: Config) -> str:
    """The ledger folder's name before bases were keyed by name (the name and a hash of the place)."""
    if cfg.source:
        return f"{_folder_name(cfg.source_schema)}-{source_key(cfg.source, cfg.source_schema)}"
    d = Path(os.path.abspath(cfg.data_dir))
    return f"{d.name or 'base'}-{hashlib.sha1(str(d).encode()).hexdigest()[:8]}"


def base_place(cfg: Config) -> str:
    """Where the base is read from, for the ledger's identity record (a folder's absolute path, or the
    source's host, database and schema; never credentials)."""
    return source_label(cfg.source, cfg.source_schema) if cfg.source else os.path.abspath(cfg.data_dir)


IDENTITY_FILE = "_base.json"  # "_": pandas.read_parquet(folder) skips it
IDENTITY_SAMPLE = 64  # accounts whose id and signup date identify a base
_FP = "md5(CAST(account_id AS VARCHAR) || '|' || coalesce(CAST(signup_date AS VARCHAR), ''))"


def account_fingerprints(ds: Dataset, ids: list[str] | None = None) -> dict[str, str]:
    """A hash of each account's id and signup date: of ``ids`` where they are in the base, else of the
    :data:`IDENTITY_SAMPLE` accounts whose ids hash lowest (the same ones in any copy of the base)."""
    if ids is None:
        sql = (
            f"SELECT CAST(account_id AS VARCHAR), {_FP} FROM t_accounts "
            f"ORDER BY md5(CAST(account_id AS VARCHAR)), 1 LIMIT {IDENTITY_SAMPLE}"
        )
        rows = ds.con.sql(sql).fetchall()
    else:
        rows = ds.con.execute(
            f"SELECT CAST(account_id AS VARCHAR), {_FP} FROM t_accounts "
            "WHERE list_contains($ids, CAST(account_id AS VARCHAR))",
            {"ids": list(ids)},
        ).fetchall()
    return {str(a): str(h) for a, h in rows}


@dataclass
class BaseIdentity:
    """What the ledger folder of a base records about it (``_base.json``): its name, the accounts that
    identify it, and every place it has been read from. ``moved``: this run reads it from a new place."""

    folder: Path
    record: dict
    moved: bool = False

    def save(self) -> None:
        write_json(self.record, self.folder / IDENTITY_FILE)


def check_base_identity(run: Run, ds: Dataset, base: str, ledger_dir: Path) -> BaseIdentity:
    """Make sure the ledger folder ``ledger_dir`` of the base named ``base`` holds this base's history.

    The first run records the base (a sample of its accounts' ids and signup dates, and its place). A
    later run compares: the same accounts (at least half of the sample, so a base that grew or lost
    accounts is still itself) read from another place is the same base moved, and its history continues;
    other accounts under the same name are another base, refused with a line that says how to tell the
    two apart. A ledger folder of the form before names (``<name>-<hash of the path>``) is taken over."""
    cfg = run.cfg
    place = base_place(cfg)
    legacy = ledger_dir.parent / legacy_base_id(cfg)
    if not ledger_dir.exists() and legacy.is_dir() and not cfg.base_name:
        rename_folder(legacy, ledger_dir)
        run.echo(
            f"ledger: the history of {place} moved from {legacy.name} to {ledger_dir.name} (bases are keyed by name)"
        )
    path = ledger_dir / IDENTITY_FILE
    if not path.is_file():
        record = {"base_name": base, "accounts": account_fingerprints(ds), "places": [place]}
        return BaseIdentity(ledger_dir, record, moved=False)
    record = read_json(path)
    sample: dict[str, str] = record.get("accounts") or {}
    now = account_fingerprints(ds, list(sample))
    same = sum(now.get(a) == h for a, h in sample.items())
    if sample and 2 * same < len(sample):
        seen = ", ".join(record.get("places") or ["another place"])
        raise ChurnmlError(
            f"two different bases share the name {base!r}: the ledger {ledger_dir} holds the history of the "
            f"base read from {seen}, and {place} is another base ({same} of the {len(sample)} accounts that "
            f"identify it match by id and signup date). Give this one its own name (base_name in the config, "
            f"or --base-name), or remove {ledger_dir} to start its history over"
        )
    places = list(record.get("places") or [])
    moved = place not in places
    if moved:
        run.echo(
            f"ledger: base {base!r} is now read from {place} (before: {', '.join(places)}); the same accounts, "
            f"so its history continues"
        )
        record = {**record, "places": [*places, place]}
    return BaseIdentity(ledger_dir, record, moved=moved)


# --- the ledger: one part file per scoring run, one folder per base --------------------------------------
def ledger_folder(cfg: Config, base: str | None = None) -> Path:
    return cfg.paths().ledger_dir / (base or base_id(cfg))


def manifest_ledger(cfg: Config, manifest: dict) -> Path | None:
    """The ledger folder of the base a score run's manifest names, when that name is a plain folder name
    (what :func:`base_id` makes); None otherwise: a name read from an output folder never points elsewhere."""
    name = manifest.get("base") if isinstance(manifest, dict) else None
    if not isinstance(name, str) or not re.fullmatch(r"[^/\\\x00]+", name) or name.startswith("."):
        return None
    return cfg.paths().ledger_dir / name


def read_ledger(folder: Path) -> pd.DataFrame | None:
    """Every score ever written for one base (None when there is none yet)."""
    parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if not parts:
        return None
    return pd.concat([read_table_file(p) for p in parts], ignore_index=True)


def write_ledger_part(folder: Path, rows: pd.DataFrame, run_id: str, scored_at: pd.Timestamp) -> Path:
    """Append one run's rows: a new part file (concurrent runs never overwrite each other)."""
    return write_parquet(rows, folder / f"part-{scored_at:%Y%m%dT%H%M%S}-{run_id}.parquet")


def ledger_has(folder: Path, run_id: str) -> bool:
    return folder.is_dir() and any(p.name.endswith(f"-{run_id}.parquet") for p in folder.glob("part-*.parquet"))
