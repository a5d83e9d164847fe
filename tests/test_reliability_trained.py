"""Faults with a trained champion (issue 26): a champion whose files are gone is reported before any
training starts, with the fix, and the fix works; runs and temporary files of stopped commands do not
outlive them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow


def _cli(*args):
    from churnml.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A small base, its config (paths relative to the config's folder) and a trained champion."""
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    root = tmp_path_factory.mktemp("trained")
    write_dataset(generate(GeneratorConfig(accounts=300, seed=11, years=2.0)), root / "data")
    conf = root / "churnml.yaml"
    conf.write_text("data_dir: data\noutput_dir: outputs\ntrain: {folds: 1, use_tuned_params: false}\n")
    r = _cli("train", "--config", conf)
    assert r.exit_code == 0, r.output
    return root, conf


def _training_runs(root: Path):
    import mlflow

    from churnml import tracking

    tracking.configure(f"sqlite:///{root / 'outputs' / 'mlflow.db'}", "churnml")
    return mlflow.search_runs(experiment_names=["churnml"], filter_string="tags.kind = 'training'")


def test_a_champion_whose_files_are_gone_is_refused_before_training_and_replace_champion_fixes_it(project):
    from churnml import tracking

    root, conf = project
    before = len(_training_runs(root))
    shutil.rmtree(root / "outputs" / "mlartifacts")  # every file of the champion gone; the registry remains
    t0 = time.monotonic()
    r = _cli("train", "--config", conf)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error: the champion churnml v1 cannot be compared against") and "--replace-champion" in line
    assert time.monotonic() - t0 < 60  # before the backtest, not after it
    assert len(_training_runs(root)) == before  # no training run was even started
    r = _cli("score", "--config", conf)
    assert r.exit_code == 2 and "model churnml v1 (churnml@champion)" in r.output and "--replace-champion" in r.output

    r = _cli("train", "--config", conf, "--replace-champion")
    assert r.exit_code == 0, r.output
    assert "replaces the champion without comparing" in (root / "outputs" / "train" / "run.json").read_text()
    assert tracking.alias_version("churnml", tracking.CHAMPION) == "2"
    r = _cli("score", "--config", conf)
    assert r.exit_code == 0, r.output
