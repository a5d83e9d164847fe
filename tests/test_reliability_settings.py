"""Settings checked up front (issue 26, item 3): paths in a config file are from the file's folder, `init`
writes a config that works from anywhere, and a path, playbook, memory size or champion that cannot be used
stops a command before any work, naming what it tried."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from churnml.cli import cli
from churnml.config import load_config
from churnml.errors import ChurnmlError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_relative_paths_in_a_config_file_are_from_its_folder_and_flags_from_here(tmp_path, monkeypatch):
    conf = tmp_path / "proj" / "churnml.yaml"
    conf.parent.mkdir()
    conf.write_text(
        "data_dir: tables\noutput_dir: ../out\nscoring: {playbook_file: plays.yaml}\n"
        "mlflow: {tracking_uri: 'sqlite:///store/mlflow.db', artifact_root: art}\n"
        "train: {tuned_params_file: ~/best.json}\n"
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("proj/churnml.yaml"))
    assert cfg.data_dir == tmp_path / "proj" / "tables"
    assert cfg.output_dir == tmp_path / "out"
    assert cfg.scoring.playbook_file == tmp_path / "proj" / "plays.yaml"
    assert cfg.mlflow.tracking_uri == f"sqlite:///{tmp_path / 'proj' / 'store' / 'mlflow.db'}"
    assert cfg.mlflow.artifact_root == tmp_path / "proj" / "art"
    assert cfg.train.tuned_params_file == Path.home() / "best.json"
    flagged = load_config(Path("proj/churnml.yaml"), data_dir="here")  # a flag is from the current folder
    assert flagged.data_dir == Path("here")


def test_init_writes_a_config_that_works_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = _invoke("init", "ws")
    assert r.exit_code == 0, r.output
    for where in (tmp_path, tmp_path / "ws", Path("/")):
        monkeypatch.chdir(where)
        cfg = load_config(tmp_path / "ws" / "churnml.yaml")
        assert cfg.scoring.playbook_file == tmp_path / "ws" / "playbooks.yaml" and cfg.scoring.playbook_file.is_file()
        assert cfg.output_dir == tmp_path / "ws" / "outputs" and cfg.data_dir == tmp_path / "ws" / "data" / "demo"


def test_a_missing_playbook_stops_replay_before_any_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _invoke("init", "ws").exit_code == 0
    monkeypatch.chdir(tmp_path / "ws")
    r = _invoke("generate", "--accounts", 60, "--years", 1.2)
    assert r.exit_code == 0, r.output
    (tmp_path / "ws" / "playbooks.yaml").unlink()
    t0 = time.monotonic()
    r = _invoke("replay", "--as-of", "2026-06-01")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"playbook file not found: {tmp_path / 'ws' / 'playbooks.yaml'}" in r.output
    assert time.monotonic() - t0 < 30  # refused up front, not after a training
    out = tmp_path / "ws" / "outputs"
    assert not list(out.rglob("*.parquet")) and not list(out.glob("*.db"))  # nothing trained, no store opened


def test_a_missing_data_folder_is_named_before_any_work(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("data_dir: nowhere\noutput_dir: out\n")
    for cmd in ("train", "score"):
        r = _invoke(cmd, "--config", conf)
        assert r.exit_code == 2 and f"data folder not found: {tmp_path / 'nowhere'}" in r.output, r.output
    assert not (tmp_path / "out" / "mlflow.db").exists()  # not even the store was touched


@pytest.mark.parametrize("value", ["lots", "500", "4 parsecs", "1KB", "0%", "400MB'; SELECT 1; --"])
def test_a_memory_limit_that_is_no_memory_size_is_a_config_error(tmp_path, value):
    with pytest.raises(ChurnmlError, match=r"engine.memory_limit: .*(not a memory size|too little|between 1%)"):
        load_config(None, **{"engine.memory_limit": value})


@pytest.mark.parametrize("value", ["400MB", "4 GB", "2GiB", "80%", "1.5gb"])
def test_memory_sizes_duckdb_reads_are_accepted(value):
    import duckdb

    cfg = load_config(None, **{"engine.memory_limit": value})
    duckdb.connect().execute(f"SET memory_limit = '{cfg.engine.memory_limit}'")


def test_a_bad_memory_limit_on_the_command_line_is_one_line(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    pd.DataFrame({"account_id": ["A"]}).to_csv(data / "accounts.csv", index=False)
    r = _invoke("validate", "--data-dir", data, "--config", _conf(tmp_path, "engine: {memory_limit: lots}\n"))
    assert r.exit_code == 2 and "engine.memory_limit" in r.output and "Traceback" not in r.output


def _conf(tmp_path: Path, text: str) -> Path:
    p = tmp_path / f"c{os.getpid()}.yaml"
    p.write_text(text)
    return p
