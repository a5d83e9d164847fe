"""Project configuration: one YAML file, validated. The defaults are written here, once.

Every command reads a config file and lets flags override it. Which file: ``--config
FILE``, else ``$CHURNML_CONFIG``, else ``configs/churnml.yaml`` or ``churnml.yaml`` in
the current folder, else the built-in defaults below. ``churnml init DIR`` writes an
editable copy of these defaults (with their descriptions as comments) and of the
playbooks. An unknown or mistyped key is an error that names the key, never ignored.
Relative paths in a config file are taken from that file's folder (so a config works from
wherever it is used); relative paths given as flags are taken from the current folder.

Every output goes under ``output_dir`` unless a setting says otherwise (see
:class:`Paths`): the training report, scores, ledger, pages, the MLflow store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

from churnml.contract import DEFAULT_HORIZON_DAYS, DEFAULT_UPLIFT
from churnml.errors import ChurnmlError
from churnml.io.artifacts import read_yaml
from churnml.io.database import SQLITE, is_database_uri, mask_uri, sqlite_file
from churnml.modeling.drift import PSI_THRESHOLD
from churnml.pages.settings import PageSettings

CONFIG_CANDIDATES = (Path("configs/churnml.yaml"), Path("churnml.yaml"))
CONFIG_ENV = "CHURNML_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSettings(_Section):
    """The synthetic customer base (churnml generate)."""

    accounts: int = Field(5000, ge=1, description="number of accounts")
    seed: int = Field(42, description="same seed, same base")
    end: str = Field(
        "yesterday",
        description="last day of the data: YYYY-MM-DD, or yesterday (a fresh base, scored as of today: "
        "its first pages are not old data)",
    )
    years: float = Field(3.0, gt=0.25, description="length of history in years")
    terms: str = Field(
        "default",
        description="contract terms: a preset (default, monthly, annual, quarterly, "
        "multi-year, mixed), 30:0.5,365:0.5, or per segment "
        "SMB=30:1;Enterprise=365:0.5,1095:0.5",
    )
    hostile_names: bool = Field(
        False, description="give about 3% of the accounts names with markup and quotes, to test escaping"
    )


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib|%)\s*$", re.I)
_UNIT = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class EngineSettings(_Section):
    """How DuckDB reads and computes (validation, features, labels)."""

    memory_limit: str = Field(
        "400MB",
        description="DuckDB's working memory; beyond it, work spills to a temporary "
        "folder (raise it on big machines for speed, e.g. 4GB)",
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v):
        m = _MEMORY.match(str(v))
        if m is None:
            raise ValueError(f"{v!r} is not a memory size: a number and a unit, e.g. 400MB, 4GB, 2GiB or 50%")
        n, unit = float(m.group(1)), m.group(2).lower()
        if unit == "%" and not 0 < n <= 100:
            raise ValueError(f"{v!r}: a share of the machine's memory is between 1% and 100%")
        if unit != "%" and n * _UNIT[unit] < 16e6:
            raise ValueError(f"{v!r} is too little working memory for DuckDB: give at least 16MB")
        return str(v).strip()


class ContractSettings(_Section):
    """How this base uses the data contract's optional parts."""

    account_attributes: list[str] = Field(
        [],
        description="static account columns (known at signup: plan family, country, size band...) to use as "
        "model inputs; text becomes categories, numbers stay numbers",
    )


class LabelSettings(_Section):
    """Labels (see the contract): churned / expanded within the horizon after a cutoff."""

    horizon_days: int = Field(DEFAULT_HORIZON_DAYS, ge=1, description="label window in days")
    uplift: float = Field(DEFAULT_UPLIFT, gt=0, description="expansion = MRR up by at least this share")


class TrainSettings(_Section):
    """Training and the backtest over time (churnml train). Folds walk back from the newest labelled
    cutoffs; each has test cutoffs, a calibration / early-stopping slice whose labels end before the test
    starts, and fit cutoffs whose labels end before that slice. Fold 0 (the newest) is the held-out period
    of the promotion gate."""

    cutoffs: str = Field(
        "auto",
        description="'auto' (monthly, or semi-monthly / weekly when the history is too "
        "short for monthly folds), 'monthly', 'semimonthly', 'weekly', "
        "START:END or a comma list of dates",
    )
    targets: Literal["auto", "churn", "both"] = Field(
        "auto",
        description="auto: churn, and expansion when the history holds enough expansions; churn: churn "
        "only; both: require both",
    )
    min_events: int = Field(
        30, ge=1, description="events (churns, expansions) a target needs in the labelled history to be trained"
    )
    folds: int = Field(4, ge=1, description="backtest folds")
    test_cutoffs: int = Field(3, ge=1, description="test cutoffs per fold")
    calibration_cutoffs: int = Field(3, ge=1, description="calibration cutoffs per fold")
    calibration: Literal["auto", "sigmoid", "isotonic", "none"] = Field(
        "auto", description="auto | sigmoid | isotonic | none (auto: only when it clearly helps)"
    )
    seed: int = Field(42, description="random seed")
    threads: int = Field(2, ge=1, description="threads for DuckDB and LightGBM")
    params: dict[str, float | int | str] = Field({}, description="LightGBM parameter overrides, e.g. {num_leaves: 31}")
    use_tuned_params: bool = Field(True, description="use the parameters `churnml tune` saved")
    tuned_params_file: Path | None = Field(
        None, description="where `churnml tune` saves its parameters [default: <output_dir>/best_params.json]"
    )
    max_cutoffs: int = Field(
        400, ge=1, description="refuse to build more cutoffs than this (a mistyped date would otherwise make thousands)"
    )


class TuneSettings(_Section):
    """Hyper-parameter search (churnml tune) over the backtest folds except the holdout."""

    trials: int = Field(30, ge=1, description="Optuna trials")
    timeout_seconds: int | None = Field(1800, ge=1, description="stop the search after this many seconds")
    seed: int = Field(42, description="sampler seed")


class MlflowSettings(_Section):
    """MLflow: the tracking store, where run artifacts go, and the registered model's name (aliases:
    champion, challenger)."""

    tracking_uri: str | None = Field(None, description="tracking store [default: sqlite:///<output_dir>/mlflow.db]")
    experiment: str = Field("churnml", description="experiment the runs go to")
    model_name: str = Field("churnml", description="registered model name")
    artifact_root: Path | None = Field(
        None,
        description="run artifacts of a new experiment [default: mlartifacts beside a SQLite store, "
        "else <output_dir>/mlartifacts]",
    )
    lock_timeout_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="how long to wait for a store another process has locked before giving up with a message",
    )


class TierSettings(_Section):
    """Risk tiers: by default (method capacity) the high tier is what a team can work: at least high_level
    of risk and among the capacity_per_csm accounts of a CSM's book with the most expected ARR lost, at
    most high_max_share of the base; method levels: fixed probability levels; method quantiles: shares of
    a recent population (the newest labelled cutoffs of training)."""

    method: Literal["capacity", "levels", "quantiles"] = Field(
        "capacity",
        description="capacity (high: what a team can work, see capacity_per_csm) | levels | quantiles",
    )
    high_level: float = Field(
        0.30, gt=0, le=1, description="capacity and levels: high risk from this churn probability"
    )
    medium_level: float = Field(
        0.15, gt=0, le=1, description="capacity and levels: medium risk from this churn probability"
    )
    capacity_per_csm: int = Field(
        25, ge=1, description="capacity: at most this many high-risk accounts per CSM's book (unassigned: one book)"
    )
    high_max_share: float = Field(
        0.10, gt=0, le=1, description="capacity: the high tier holds at most this share of the paying accounts"
    )
    rank_by: Literal["expected_arr_lost", "risk"] = Field(
        "expected_arr_lost",
        description="capacity: which accounts of a book come first: expected_arr_lost (ARR x risk) or "
        "risk (lift over the base rate)",
    )
    high_share: float = Field(0.10, gt=0, lt=1, description="quantiles: this share of accounts, most at risk, is high")
    medium_share: float = Field(0.20, gt=0, lt=1, description="quantiles: the next share is medium")

    @model_validator(mode="after")
    def _ordered(self):
        if self.medium_level >= self.high_level:
            raise ValueError("medium_level must be below high_level")
        if self.high_share + self.medium_share >= 1:
            raise ValueError("high_share + medium_share must be below 1")
        return self


class ScoringSettings(_Section):
    """Batch scoring, explanations and CSM pages (churnml score / explain / report)."""

    model_alias: str = Field("champion", description="which registered model scores")
    top_drivers: int = Field(3, ge=1, le=10, description="drivers shown per account")
    expansion_explain_share: float = Field(
        0.3, gt=0, le=1, description="expansion drivers for this share of accounts most likely to expand"
    )
    playbook_file: Path | None = Field(None, description="plays per driver family [default: the built-in playbooks]")
    tiers: TierSettings = TierSettings()
    play_min_points: float = Field(
        1.0, ge=0, description="a play only for a reason worth at least this many probability points"
    )
    how_to_lower_moves: int = Field(
        2, ge=0, le=5, description="moves shown per at-risk account in 'how to lower it' (re-predicted)"
    )
    drift_psi_threshold: float = Field(
        PSI_THRESHOLD, gt=0, description="population stability index above which a feature has drifted"
    )


def _database_uri(v):
    """A database URI setting: empty means none; only postgresql:// is read (the value is never echoed: it may
    hold a password)."""
    if v is None or not str(v).strip():
        return None
    if not is_database_uri(v):
        raise ValueError("must be a postgresql:// URI (see docs/warehouse.md)")
    return str(v).strip()


def _masked(v):
    return None if v is None else mask_uri(v)


class PublishSettings(_Section):
    """Where `churnml publish` writes the latest scores: churnml's own tables in a database schema
    (docs/warehouse.md)."""

    to: str | None = Field(None, repr=False, description="a postgresql:// URI (credentials as for source)")
    to_schema: str = Field(
        "churnml",
        min_length=1,
        description="the schema the tables go to (created when missing; never the source schema)",
    )

    @field_validator("to", mode="before")
    @classmethod
    def _uri(cls, v):
        return _database_uri(v)

    @field_serializer("to", when_used="json")
    def _mask(self, v):
        return _masked(v)


class ReportSettings(_Section):
    """The CSM pages (churnml report)."""

    # the defaults are the pages' own (a dataclass's class attributes are its fields' defaults)
    title: str = Field(PageSettings.title, description="the name in every page's header")
    currency: str = Field(PageSettings.currency, description="ISO 4217 currency of MRR and ARR, e.g. EUR")
    locale: str = Field(PageSettings.locale, description="how figures and dates are written, e.g. de_DE")
    stale_after_days: int = Field(
        PageSettings.stale_after_days,
        ge=1,
        description="pages warn when the data end this many days before they are made",
    )
    call_list_size: int = Field(PageSettings.call_list_size, ge=1, description="accounts in each CSM's call list")
    page_size: int = Field(PageSettings.page_size, ge=1, description="rows per page of a book of business")


class Config(_Section):
    """churnml configuration. Flags override it; unknown keys are errors."""

    data_dir: Path = Field(
        Path("data/demo"), description="folder of the six contract tables (see docs/DATA_CONTRACT.md)"
    )
    output_dir: Path = Field(Path("outputs"), description="where every command writes its outputs")
    source: str | None = Field(
        None,
        repr=False,
        description="read the base from a database instead of data_dir: a "
        "postgresql:// URI (credentials in it, or from PGPASSWORD "
        "or a service file; see docs/warehouse.md)",
    )
    source_schema: str = Field(
        "public",
        min_length=1,
        description="the schema of the source database that holds the contract's tables or views",
    )
    base_name: str | None = Field(
        None,
        description="a name for this customer base: the scoring ledger keeps "
        "one history per name, wherever the base is mounted [default: the data folder's name, "
        "or the source's schema]",
    )
    generate: GenerateSettings = GenerateSettings()
    engine: EngineSettings = EngineSettings()
    contract: ContractSettings = ContractSettings()
    labels: LabelSettings = LabelSettings()
    train: TrainSettings = TrainSettings()
    tune: TuneSettings = TuneSettings()
    mlflow: MlflowSettings = MlflowSettings()
    scoring: ScoringSettings = ScoringSettings()
    report: ReportSettings = ReportSettings()
    publish: PublishSettings = PublishSettings()

    @field_validator("source", mode="before")
    @classmethod
    def _uri(cls, v):
        return _database_uri(v)

    @field_serializer("source", when_used="json")
    def _mask(self, v):
        return _masked(v)

    @field_validator("base_name")
    @classmethod
    def _base_name(cls, v):
        if v is not None and (not v.strip() or "/" in v or v.startswith(".")):
            raise ValueError("a base name is a plain folder name (no '/', not starting with '.')")
        return v

    def paths(self) -> Paths:
        return Paths.of(self)


@dataclass(frozen=True)
class Paths:
    """Where every output goes, derived from ``output_dir`` unless a setting names another place."""

    output_dir: Path
    train_dir: Path
    scores_dir: Path
    ledger_dir: Path
    report_dir: Path
    features_file: Path
    labels_file: Path
    tuned_params: Path
    tracking_uri: str
    artifact_root: Path
    replay_dir: Path
    movements_file: Path
    retention_file: Path
    bridge_file: Path

    @classmethod
    def of(cls, cfg: Config) -> Paths:
        out = Path(cfg.output_dir)
        uri = cfg.mlflow.tracking_uri or f"sqlite:///{out / 'mlflow.db'}"
        return cls(
            output_dir=out,
            train_dir=out / "train",
            scores_dir=out / "scores",
            ledger_dir=out / "ledger",
            report_dir=out / "report",
            features_file=out / "features.parquet",
            labels_file=out / "labels.parquet",
            tuned_params=Path(cfg.train.tuned_params_file or out / "best_params.json"),
            tracking_uri=uri,
            artifact_root=Path(cfg.mlflow.artifact_root or _store_folder(uri, out) / "mlartifacts"),
            replay_dir=out / "replay",
            movements_file=out / "movements.parquet",
            retention_file=out / "retention.csv",
            bridge_file=out / "mrr_bridge.csv",
        )


def _store_folder(tracking_uri: str, output_dir: Path) -> Path:
    """The folder of a SQLite tracking store (a new experiment's artifacts go beside the store they belong
    to, whichever output folder the command writes to); ``output_dir`` for a server or other store."""
    db = sqlite_file(tracking_uri)
    return db.parent if db is not None else output_dir


def find_config(path: str | Path | None) -> Path | None:
    """The config file a command uses (see the module docstring); None means the built-in defaults."""
    if path is not None:
        return Path(path)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return next((p for p in CONFIG_CANDIDATES if p.is_file()), None)


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read and validate a config file; ``overrides`` (flag values, None = not given) win.

    Nested settings are overridden with dotted keys in a dict, e.g.
    ``load_config(p, **{"labels.horizon_days": 60})``.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml(path, "config file") or {}
        if not isinstance(raw, dict):
            raise ChurnmlError(f"config file {path} must hold a mapping at the top level")
        anchor_paths(raw, Path(os.path.abspath(path)).parent)
    for key, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        where = f"config {path}" if path is not None else "config"
        raise ChurnmlError(f"{where} is invalid: {problems}") from None


PATH_SETTINGS = ("data_dir", "output_dir", "train.tuned_params_file", "mlflow.artifact_root", "scoring.playbook_file")


def anchor_paths(raw: dict, folder: Path) -> None:
    """Make the relative paths of a config file's settings (and a relative ``sqlite:///`` store) relative to
    ``folder``, the file's own folder, in place."""
    for key in (*PATH_SETTINGS, "mlflow.tracking_uri"):
        node: Any = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(leaf), str) or not node[leaf].strip():
            continue
        v = node[leaf]
        if leaf == "tracking_uri":
            db = sqlite_file(v)
            if db is not None and not db.is_absolute():
                node[leaf] = SQLITE + os.path.normpath(folder / db.expanduser())
            continue
        p = Path(v).expanduser()
        node[leaf] = str(p) if p.is_absolute() else os.path.normpath(folder / p)


def default(key: str):
    """The built-in default of a dotted setting, e.g. ``default("labels.horizon_days")`` -> 90."""
    node: Any = Config()
    for part in key.split("."):
        node = getattr(node, part)
    return node


def default_yaml(**values: Any) -> str:
    """Every setting with its default (or ``values``, dotted keys) and its description as a comment:
    the file ``churnml init`` writes."""
    cfg = load_config(None, **values)
    lines = [
        "# churnml configuration (written by `churnml init`; edit freely).",
        "# Every command reads this file; flags override it. Unknown keys are errors.",
        "# Relative paths here are from this file's folder (flags: from the folder you run churnml in).",
        "",
    ]
    _emit(cfg, Config, lines, 0)
    return "\n".join(lines) + "\n"


def _yaml_value(v) -> str:
    if isinstance(v, Path):
        v = str(v)
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _emit(obj: BaseModel, model: type[BaseModel], lines: list[str], depth: int) -> None:
    pad = "  " * depth
    for name, field in model.model_fields.items():
        value = getattr(obj, name)
        if isinstance(value, BaseModel):
            lines.append("")
            doc = (type(value).__doc__ or "").strip().split("\n")
            lines += [f"{pad}# {d.strip()}" for d in doc if d.strip()]
            lines.append(f"{pad}{name}:")
            _emit(value, type(value), lines, depth + 1)
        else:
            desc = f"  # {field.description}" if field.description else ""
            lines.append(f"{pad}{name}: {_yaml_value(value)}{desc}")
