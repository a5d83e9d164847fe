"""Faults with a trained model: data that do not match it, a read-only output folder, kills at several
points of scoring and reporting, concurrent runs, interrupted training (issue 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    from churnml.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A small base, its config (every output under root/outputs) and a trained champion."""
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    root = tmp_path_factory.mktemp("faults")
    write_dataset(generate(GeneratorConfig(accounts=500, seed=9, years=2.2)), root / "data")
    conf = root / "churnml.yaml"
    conf.write_text(
        f"data_dir: {root / 'data'}\noutput_dir: {root / 'outputs'}\n"
        f"train: {{folds: 1, use_tuned_params: false}}\nmlflow: {{model_name: faults}}\n"
    )
    r = _cli("train", "--config", conf)
    assert r.exit_code == 0, r.output
    return root, conf


def _ledger(conf: Path):
    from churnml.config import load_config
    from churnml.flows.common import ledger_folder, read_ledger

    rows = read_ledger(ledger_folder(load_config(conf)))
    return rows if rows is not None else pd.DataFrame(columns=["run_id"])


def _script(conf: Path, body: str) -> str:
    return textwrap.dedent(f"""
        import sys, time
        from churnml.config import load_config
        from churnml.flows.common import Run
        cfg = load_config({str(conf)!r})
    """) + textwrap.dedent(body)


def _run_until(script: str, marker: str, sig=signal.SIGKILL, timeout=300):
    """Start a Python process, wait for a line ``marker`` on its stdout, then send ``sig``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        t0 = time.time()
        while time.time() - t0 < timeout:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip() == marker:
                proc.send_signal(sig)
                break
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc


def test_a_base_without_a_table_or_column_the_model_needs_is_refused_unless_forced(project, tmp_path):
    root, conf = project
    no_usage = tmp_path / "no_usage"
    no_usage.mkdir()
    for p in (root / "data").iterdir():
        if p.suffix == ".parquet" and p.stem != "usage":
            (no_usage / p.name).write_bytes(p.read_bytes())
    r = _cli("score", "--config", conf, "--data-dir", no_usage, "--out", tmp_path / "s1")
    assert r.exit_code == 2 and "trained with the usage table" in r.output and "--allow-missing" in r.output
    assert not (tmp_path / "s1").exists()
    r = _cli("score", "--config", conf, "--data-dir", no_usage, "--out", tmp_path / "s2", "--allow-missing")
    assert r.exit_code == 0, r.output
    s = pd.read_parquet(tmp_path / "s2" / "scores.parquet")
    assert (s["inputs_missing"] == "the usage table").all()
    # the feature_* columns the model learned from, missing from a base that has a usage table
    thin = tmp_path / "thin"
    thin.mkdir()
    for p in (root / "data").iterdir():
        if p.suffix == ".parquet":
            df = pd.read_parquet(p)
            if p.stem == "usage":
                df = df[[c for c in df.columns if not c.startswith("feature_")]]
            df.to_parquet(thin / p.name, index=False)
    r = _cli("score", "--config", conf, "--data-dir", thin, "--out", tmp_path / "s3")
    assert r.exit_code == 2 and "usage column(s) feature_" in r.output


def test_a_read_only_output_folder_is_one_error_line_and_registers_nothing(project, tmp_path):
    import mlflow

    from churnml import tracking

    root, conf = project
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the check needs an unprivileged user")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = _cli("train", "--config", conf, "--output-dir", ro / "outputs")
        assert r.exit_code == 2 and r.output.startswith("error: cannot write into") and "Traceback" not in r.output
    finally:
        ro.chmod(0o700)
    tracking.configure(f"sqlite:///{root / 'outputs' / 'mlflow.db'}", "churnml")
    assert len(mlflow.MlflowClient().search_model_versions("name='faults'")) == 1


def test_read_only_output_files_are_refused_before_any_work(project, tmp_path, monkeypatch):
    """The same check as above, as root can see it: the outputs cannot be created under a file."""
    _root, conf = project
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = _cli("score", "--config", conf, "--output-dir", blocker / "outputs")
    assert r.exit_code == 2 and r.output.startswith("error: cannot write into")


@pytest.mark.parametrize(
    "marker, where",
    [
        ("FEATURES", "churnml.features._engine.finish_features"),  # while computing
        ("WRITING", "churnml.io.artifacts.write_files"),  # while writing the new set
        ("PUBLISHED", "churnml.flows.common.write_ledger_part"),  # published, ledger part not yet written
    ],
)
def test_a_killed_scoring_run_leaves_a_consistent_set(project, marker, where):
    root, conf = project
    out = root / "outputs"
    r = _cli("score", "--config", conf, "--as-of", "2026-08-01")
    assert r.exit_code == 0, r.output
    before = pd.read_parquet(out / "scores" / "scores.parquet")
    runs_before = set(_ledger(conf)["run_id"])
    mod, func = where.rsplit(".", 1)
    script = _script(
        conf,
        f"""
        import importlib
        m = importlib.import_module({mod!r})
        real = getattr(m, {func!r})
        def hooked(*a, **k):
            if {marker!r} == "WRITING":
                real(*a, **k)
            print({marker!r}, flush=True)
            time.sleep(300)
        setattr(m, {func!r}, hooked)
        if {mod!r} == "churnml.flows.common":
            import churnml.flows.score as s; s.write_ledger_part = hooked
        if {mod!r} == "churnml.features._engine":
            import churnml.features._engine as e; e.finish_features = hooked
        from churnml.flows.score import run_scoring
        run_scoring(Run(cfg), as_of="2026-09-01")
    """,
    )
    proc = _run_until(script, marker)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    after = pd.read_parquet(out / "scores" / "scores.parquet")
    drivers = pd.read_parquet(out / "scores" / "drivers.parquet")
    assert set(drivers["account_id"]) <= set(after["account_id"])  # scores and drivers of one run
    if marker == "PUBLISHED":
        assert (after["as_of"] == pd.Timestamp("2026-09-01")).all()  # the new set is complete...
        r = _cli("score", "--config", conf, "--as-of", "2026-09-01")  # ...and the next run completes the ledger
        assert r.exit_code == 0 and "completed the ledger" in r.output
        assert len(set(_ledger(conf)["run_id"]) - runs_before) == 2  # the killed run's rows, then the rerun's
    else:
        pd.testing.assert_frame_equal(after, before)  # the old set, untouched
        assert set(_ledger(conf)["run_id"]) == runs_before
    names = [p.name for p in out.iterdir()]
    assert sum(n.startswith(".scores.") and n.endswith(".tmp") for n in names) <= 1  # at most the dead run's temp
    _cli("score", "--config", conf, "--as-of", "2026-08-01")
    assert not any(n.startswith(".scores.") and n.endswith(".tmp") for n in (p.name for p in out.iterdir()))


def test_a_killed_report_leaves_the_old_pages(project):
    root, conf = project
    out = root / "outputs"
    assert _cli("score", "--config", conf).exit_code == 0
    assert _cli("report", "--config", conf).exit_code == 0
    index = (out / "report" / "index.html").read_text()
    script = _script(
        conf,
        """
        import churnml.flows.report as rep
        real = rep.artifacts.write_pages
        def slow(pages, folder):
            real(dict(list(pages.items())[:3]), folder)
            print("HALF", flush=True)
            time.sleep(300)
        rep.artifacts.write_pages = slow
        rep.run_report(Run(cfg))
    """,
    )
    proc = _run_until(script, "HALF")
    assert proc.returncode == -signal.SIGKILL
    assert (out / "report" / "index.html").read_text() == index
    assert len(list((out / "report" / "accounts").glob("*.html"))) > 3


def test_two_scoring_runs_at_once_both_reach_the_ledger(project):
    _root, conf = project
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = [sys.executable, "-m", "churnml", "score", "--config", str(conf)]
    before = set(_ledger(conf)["run_id"])
    procs = [
        subprocess.Popen(cmd + ["--as-of", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for d in ("2026-07-01", "2026-07-15")
    ]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read().decode()
    assert len(set(_ledger(conf)["run_id"]) - before) == 2


def test_an_interrupted_training_ends_its_mlflow_run_killed(project):
    import mlflow

    from churnml import tracking

    root, conf = project
    script = textwrap.dedent(f"""
        import sys, time
        import churnml.flows.train as t
        def slow(*a, **k):  # the MLflow run has started; the recipe is where a training spends its time
            print("FITTING", flush=True)
            time.sleep(300)
        t.recipe.run = slow
        from churnml.cli import main
        sys.argv = ["churnml", "train", "--config", {str(conf)!r}]
        main()
    """)
    proc = _run_until(script, "FITTING", sig=signal.SIGTERM)
    assert proc.returncode != 0
    tracking.configure(f"sqlite:///{root / 'outputs' / 'mlflow.db'}", "churnml")
    runs = mlflow.search_runs(experiment_names=["churnml"], filter_string="tags.kind = 'training'")
    assert "RUNNING" not in set(runs["status"]) and "KILLED" in set(runs["status"])  # SIGTERM: killed
    assert not (root / "outputs" / "train").resolve().name.endswith(".tmp")
