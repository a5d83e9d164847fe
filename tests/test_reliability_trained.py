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


ODD = 'plan "tier", a:b [x]'  # quotes, a comma, a colon, brackets: what LightGBM refuses as a feature name


@pytest.fixture(scope="module")
def odd_project(tmp_path_factory):
    """A base with an account attribute named with JSON characters, trained with it declared."""
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    root = tmp_path_factory.mktemp("odd")
    t = generate(GeneratorConfig(accounts=300, seed=12, years=2.0))
    t["accounts"][ODD] = ["Gold", "Silver", "Bronze"] * 100
    write_dataset(t, root / "data")
    conf = root / "churnml.yaml"
    conf.write_text(
        "data_dir: data\noutput_dir: outputs\ntrain: {folds: 1, use_tuned_params: false}\n"
        f"contract: {{account_attributes: ['{ODD}']}}\nmlflow: {{model_name: odd}}\n"
    )
    return root, conf


def test_an_attribute_named_with_quotes_and_commas_trains_and_scores(odd_project):
    root, conf = odd_project
    r = _cli("train", "--config", conf)
    assert r.exit_code == 0, r.output
    r = _cli("score", "--config", conf)
    assert r.exit_code == 0, r.output
    import pandas as pd

    drift = pd.read_csv(root / "outputs" / "scores" / "drift.csv")
    assert ODD in set(drift["feature"])  # the model used it, under its own name in every output


def test_scoring_as_of_years_after_the_data_end_is_refused(odd_project):
    _, conf = odd_project
    r = _cli("score", "--config", conf, "--as-of", "2031-01-01")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "--as-of 2031-01-01 is 1,522 days after the data end (2026-10-31)" in r.output
    assert "score as of 2027-01-30 at the latest" in r.output
