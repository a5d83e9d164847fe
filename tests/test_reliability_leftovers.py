"""No leftovers (issue 26, item 2): runs of stopped commands end FAILED or KILLED, a run left RUNNING by a
killed process is marked FAILED by the next command, and working folders of killed runs are removed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from churnml import tracking
from churnml.duck import system_scratch
from churnml.io.outputs import scratch_dir


def _runs(db: Path, experiment: str):
    import mlflow

    tracking.configure(f"sqlite:///{db}", experiment)
    return mlflow.search_runs(experiment_names=[experiment])


def test_an_interrupted_run_ends_killed_and_a_failed_one_failed(tmp_path):
    db = tmp_path / "mlflow.db"
    tracking.configure(f"sqlite:///{db}", "stops")
    with pytest.raises(KeyboardInterrupt), tracking.run("interrupted"):
        raise KeyboardInterrupt
    with pytest.raises(ValueError), tracking.run("broken"):
        raise ValueError("boom")
    runs = _runs(db, "stops").set_index("tags.mlflow.runName")
    assert runs.loc["interrupted", "status"] == "KILLED" and runs.loc["broken", "status"] == "FAILED"


def test_a_run_left_running_by_a_killed_process_is_marked_failed_by_the_next_command(tmp_path):
    db = tmp_path / "mlflow.db"
    script = textwrap.dedent(f"""
        import os, signal
        from churnml import tracking
        tracking.configure("sqlite:///{db}", "stale")
        with tracking.run("killed-mid-run"):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    (left,) = client.search_runs([client.get_experiment_by_name("stale").experiment_id])
    assert left.info.status == "RUNNING"  # what SIGKILL leaves: nobody could close it
    tracking.configure(f"sqlite:///{db}", "stale")  # the next command: marks the dead process's run
    with tracking.run("live"):  # a run of this process, RUNNING while a later configure looks again
        runs = _runs(db, "stale").set_index("tags.mlflow.runName")
        assert runs.loc["killed-mid-run", "status"] == "FAILED"
        assert "ended without closing the run" in runs.loc["killed-mid-run", "tags.churnml.stopped"]
        assert runs.loc["live", "status"] == "RUNNING"  # a live process's run is left alone


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_killed_runs_working_folder_under_the_output_folder_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "outputs"
    script = textwrap.dedent(f"""
        import os, signal
        from churnml.io.outputs import scratch_dir
        d = scratch_dir({str(out)!r}, "train-artifacts")
        (d / "model.json").write_text("{{}}")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == -9
    (left,) = out.iterdir()
    assert left.name.startswith(".train-artifacts.") and (left / "model.json").is_file()
    mine = scratch_dir(out, "train-artifacts")
    assert list(out.iterdir()) == [mine]  # the dead run's folder went, this run's is there
    live = out / f".train-artifacts.{os.getppid()}.abcd1234.tmp"  # a live process's folder stays
    live.mkdir()
    scratch_dir(out, "train-artifacts")
    assert live.is_dir()


def test_system_temporary_folders_of_dead_processes_are_removed_by_the_next_one():
    import tempfile

    dead = Path(tempfile.gettempdir()) / f"churnml-{_dead_pid()}-{uuid.uuid4().hex[:6]}"
    dead.mkdir()
    (dead / "tables.duckdb").write_bytes(b"x")
    mine = system_scratch()
    try:
        assert not dead.exists() and mine.name.startswith(f"churnml-{os.getpid()}-")
    finally:
        mine.rmdir()
