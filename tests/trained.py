"""The one trained project the suite shares: a generated base, its config and a registered champion.

``tests/conftest.py`` makes it once per session (fixture ``trained_project``); `test_scoring.py` and
`test_train.py` read it and run on the same worker, scoring first, because `test_train.py` later
registers models of its own into the same store (a worse challenger, a 30-day champion).
"""

from __future__ import annotations

from pathlib import Path

from churnml.config import load_config

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS, SEED, YEARS = 1200, 5, 2.5


def project_config(base: Path, root: Path, **over):
    """The settings of a test project: everything it writes under ``root``, two backtest folds, no tuned
    parameters, the repository's playbook."""
    return load_config(
        None,
        **{
            "data_dir": str(base),
            "output_dir": str(root / "outputs"),
            "mlflow.tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "mlflow.artifact_root": str(root / "artifacts"),
            "mlflow.model_name": "churn_test",
            "train.folds": 2,
            "train.tuned_params_file": str(root / "none.json"),
            "scoring.playbook_file": str(ROOT / "configs" / "playbooks.yaml"),
            **over,
        },
    )


def write_base(folder: Path) -> Path:
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    out = folder / "data"
    write_dataset(generate(GeneratorConfig(accounts=ACCOUNTS, seed=SEED, years=YEARS)), out)
    return out


def train_project(base: Path, root: Path):
    """Train and register the champion of a fresh store; returns (config, TrainResult)."""
    from churnml.flows.common import Run
    from churnml.flows.train import run_training

    cfg = project_config(base, root)
    return cfg, run_training(Run(cfg, echo=lambda m: None))
