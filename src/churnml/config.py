"""Project configuration: one YAML file (``configs/default.yaml``), validated.

Every command reads the config and lets flags override it. An unknown or mistyped
key is an error that names the key, never silently ignored. Relative paths are taken
from the current working directory (the project root when run through ``make``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from churnml.errors import ChurnmlError

DEFAULT_CONFIG = Path("configs/default.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSettings(_Section):
    accounts: int = Field(5000, ge=1)
    seed: int = 42
    end: str = "2026-10-31"
    years: float = Field(3.0, gt=0.25)


class LabelSettings(_Section):
    horizon_days: int = Field(90, ge=1)
    uplift: float = Field(0.10, gt=0)


class TrainSettings(_Section):
    cutoffs: str = "monthly"
    folds: int = Field(4, ge=1)
    test_cutoffs: int = Field(3, ge=1)
    calibration_cutoffs: int = Field(3, ge=2)
    calibration: Literal["auto", "sigmoid", "isotonic", "none"] = "auto"
    seed: int = 42
    threads: int = Field(2, ge=1)
    params: dict[str, float | int | str] = {}
    use_tuned_params: bool = True
    tuned_params_file: Path = Path("models/best_params.json")


class TuneSettings(_Section):
    trials: int = Field(30, ge=1)
    timeout_seconds: int | None = Field(1800, ge=1)
    seed: int = 42


class MlflowSettings(_Section):
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "churnml"
    model_name: str = "churnml"
    artifact_root: Path = Path("mlartifacts")


class ScoringSettings(_Section):
    model_alias: str = "champion"
    top_drivers: int = Field(3, ge=1, le=10)
    expansion_explain_share: float = Field(0.3, gt=0, le=1)
    playbook_file: Path = Path("configs/playbooks.yaml")
    drift_psi_threshold: float = Field(0.25, gt=0)
    scores_file: Path = Path("outputs/scores.parquet")
    drivers_file: Path = Path("outputs/drivers.parquet")
    ledger_file: Path = Path("outputs/ledger.parquet")
    report_dir: Path = Path("outputs/report")


class Config(_Section):
    data_dir: Path = Path("data/demo")
    output_dir: Path = Path("outputs")
    generate: GenerateSettings = GenerateSettings()
    labels: LabelSettings = LabelSettings()
    train: TrainSettings = TrainSettings()
    tune: TuneSettings = TuneSettings()
    mlflow: MlflowSettings = MlflowSettings()
    scoring: ScoringSettings = ScoringSettings()


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read and validate a config file; ``overrides`` (flag values, None = not given) win.

    Nested settings are overridden with dotted keys in a dict, e.g.
    ``load_config(p, **{"labels.horizon_days": 60})``.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ChurnmlError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ChurnmlError(f"config file {p} is not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise ChurnmlError(f"config file {p} must hold a mapping at the top level")
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
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        where = f"config {path}" if path is not None else "config"
        raise ChurnmlError(f"{where} is invalid: {problems}") from None
