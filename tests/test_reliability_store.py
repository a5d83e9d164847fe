"""The MLflow store as a dependency with clear failures (issue 26, item 1): real SQLite files, damaged on
purpose, a lock held by a real second process, and real processes racing to create a new store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from churnml import tracking
from churnml.cli import cli
from churnml.errors import ChurnmlError
from churnml.flows.common import _load

LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    c.execute("BEGIN EXCLUSIVE")
    print("LOCKED", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _tiny_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"account_id": ["A1"], "name": ["One"], "segment": ["SMB"], "signup_date": ["2025-01-01"]}).to_csv(
        folder / "accounts.csv", index=False
    )
    pd.DataFrame(
        {"account_id": ["A1"], "effective_date": ["2025-01-01"], "mrr": [100.0], "seats": [5], "contract_end": [""]}
    ).to_csv(folder / "subscriptions.csv", index=False)
    return folder


def _project(tmp_path: Path) -> tuple[Path, Path]:
    data = _tiny_data(tmp_path / "data")
    conf = tmp_path / "churnml.yaml"
    conf.write_text(f"data_dir: {data}\noutput_dir: {tmp_path / 'out'}\nmlflow: {{lock_timeout_seconds: 1}}\n")
    (tmp_path / "out").mkdir()
    return conf, tmp_path / "out" / "mlflow.db"


def _store_with_runs(db: Path, runs: int = 30) -> None:
    import mlflow

    tracking.configure(f"sqlite:///{db}", "store-test", db.parent / "art")
    for i in range(runs):
        with tracking.run(f"r{i}"):
            tracking.log_params({f"p{k}": k for k in range(20)})
            mlflow.log_metrics({f"m{k}": float(k) for k in range(20)})


def _score(conf: Path):
    return CliRunner().invoke(cli, ["score", "--config", str(conf)])


def _one_error_line(r, *parts: str) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the MLflow store "), r.output
    assert "Traceback" not in r.output
    for p in parts:
        assert p in lines[0], lines[0]
    return lines[0]


def test_a_store_that_is_not_a_database_is_one_line_naming_it(tmp_path):
    conf, db = _project(tmp_path)
    db.write_bytes(os.urandom(4096))
    _one_error_line(_score(conf), str(db), "is not an SQLite database", "restore it from a backup", "--tracking-uri")


def test_a_truncated_store_is_reported_as_damaged(tmp_path):
    conf, db = _project(tmp_path)
    _store_with_runs(db)
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(size // 3)
    _one_error_line(_score(conf), str(db), "is damaged", "restore it from a backup")


def test_a_store_that_is_a_folder_or_a_dangling_link_is_refused(tmp_path):
    db = tmp_path / "mlflow.db"
    db.mkdir()
    with pytest.raises(ChurnmlError, match=r"mlflow.db is not a file"):
        tracking.configure(f"sqlite:///{db}", "x")
    db.rmdir()
    db.symlink_to(tmp_path / "gone.db")
    with pytest.raises(ChurnmlError, match=r"is a link to nothing"):
        tracking.configure(f"sqlite:///{db}", "x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_store_is_refused(tmp_path):
    db = tmp_path / "mlflow.db"
    _store_with_runs(db, runs=1)
    db.chmod(0)
    with pytest.raises(ChurnmlError, match=r"cannot be read"):
        tracking.configure(f"sqlite:///{db}", "x")


def _locked(db: Path, seconds: float):
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "LOCKED"
    return proc


def test_a_locked_store_is_waited_on_for_the_configured_time_then_one_line(tmp_path):
    conf, db = _project(tmp_path)
    _store_with_runs(db, runs=1)
    proc = _locked(db, 60)
    try:
        t0 = time.monotonic()
        with pytest.raises(ChurnmlError) as e:
            tracking.configure(f"sqlite:///{db}", "store-test", lock_timeout=1)
        waited = time.monotonic() - t0
        assert "is locked by another process (waited 1 s)" in str(e.value) and str(db) in str(e.value)
        assert 0.9 <= waited < 8
        _one_error_line(_score(conf), "locked by another process (waited 1 s)", "lock_timeout_seconds")
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_taken_during_a_run_is_bounded_too_and_named(tmp_path):
    db = tmp_path / "mlflow.db"
    _store_with_runs(db, runs=1)
    tracking.configure(f"sqlite:///{db}", "store-test", lock_timeout=1)
    with tracking.run("before-the-lock") as active:
        run_id = active.info.run_id
    proc = _locked(db, 60)
    try:
        t0 = time.monotonic()
        with pytest.raises(ChurnmlError, match=r"is locked by another process \(waited 1 s\)"):
            tracking.log_to_run(run_id, metrics={"x": 1.0})
        assert time.monotonic() - t0 < 8  # not MLflow's fixed 20 s per statement
    finally:
        proc.kill()
        proc.wait()
    tracking.log_to_run(run_id, metrics={"x": 1.0})  # the lock gone, the store works again


RACER = textwrap.dedent("""
    import sys, time
    from churnml import tracking
    start = float(sys.argv[2])
    while time.time() < start:
        time.sleep(0.001)
    tracking.configure(f"sqlite:///{sys.argv[1]}/mlflow.db", "churnml", f"{sys.argv[1]}/art")
    print("OK", flush=True)
""")


@pytest.mark.slow
def test_commands_starting_at_once_on_a_new_store_create_it_once(tmp_path):
    start = time.time() + 15  # all three have imported churnml by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-800:] for _, e in outs]
    assert [o.strip() for o, _ in outs] == ["OK", "OK", "OK"]
    import mlflow

    tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}", "churnml")
    assert [e.name for e in mlflow.search_experiments()].count("churnml") == 1


def test_a_damaged_model_file_names_the_model_version_and_what_to_do(tmp_path):
    folder = tmp_path / "churnml_model"
    folder.mkdir()
    (folder / "model.json").write_text('{"features": ["f0"], "levels": {}, "targets": {}}')  # no "categorical"
    with pytest.raises(ChurnmlError) as e:
        _load(folder, "model churnml v3 (churnml@champion)")
    msg = str(e.value)
    assert msg.startswith("model churnml v3 (churnml@champion) in the MLflow store ")
    assert "KeyError: 'categorical'" in msg and "churnml train --replace-champion" in msg
    (folder / "model.json").write_text('{"feat')
    with pytest.raises(ChurnmlError, match=r"v3 \(churnml@champion\) .* cannot be used \(cannot read the model"):
        _load(folder, "model churnml v3 (churnml@champion)")
