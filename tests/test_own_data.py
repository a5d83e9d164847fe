"""Bringing one's own data (issue 14): bases with no expansions, twelve months of history, a replay of a
past day that never peeks at the future, and churnml installed and run from any folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow


def _cli(*args):
    from churnml.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _write(tables: dict, folder: Path) -> Path:
    from churnml.io import write_dataset

    write_dataset(tables, folder)
    return folder


def _conf(root: Path, extra: str = "") -> Path:
    conf = root / "churnml.yaml"
    conf.write_text(f"output_dir: {root / 'outputs'}\ntrain: {{folds: 1, use_tuned_params: false}}\n{extra}")
    return conf


@pytest.fixture(scope="module")
def flat_base(tmp_path_factory):
    """A generated base whose MRR never rises: no expansion anywhere in its history."""
    from churnml.generate import GeneratorConfig, generate

    t = generate(GeneratorConfig(accounts=450, seed=12, years=2.2))
    s = t["subscriptions"].sort_values(["account_id", "effective_date"])
    paying = s["mrr"].where(s["mrr"] > 0)
    lowest = paying.groupby(s["account_id"]).cummin()  # MRR never above what it ever was before
    s["mrr"] = np.where(s["mrr"] > 0, lowest, 0.0)
    t["subscriptions"] = s
    root = tmp_path_factory.mktemp("flat")
    return _write(t, root / "data"), root


def test_a_base_without_expansions_trains_churn_alone_and_scores_leave_expansion_empty(flat_base):
    data, root = flat_base
    conf = _conf(root)
    r = _cli("train", "--config", conf, "--data-dir", data, "--targets", "both")
    assert r.exit_code == 2 and "only 0 expansions in the labelled history" in r.output and "Traceback" not in r.output
    r = _cli("train", "--config", conf, "--data-dir", data)
    assert r.exit_code == 0, r.output
    assert "expansion not trained: only 0 expansions" in r.output and "expansion not trained;" in r.output
    r = _cli("score", "--config", conf, "--data-dir", data)
    assert r.exit_code == 0, r.output
    s = pd.read_parquet(root / "outputs" / "scores" / "scores.parquet")
    assert s["expansion_probability"].isna().all() and s["churn_probability"].between(0, 1).all()
    assert s["expansion_signal"].str.startswith("expansion not modelled").all()
    d = pd.read_parquet(root / "outputs" / "scores" / "drivers.parquet")
    assert set(d["target"]) == {"churn"}


def test_twelve_months_of_history_train_with_the_folds_stated_and_six_months_say_what_is_needed(tmp_path):
    from churnml.generate import GeneratorConfig, generate

    conf = _conf(tmp_path)
    data = _write(generate(GeneratorConfig(accounts=500, seed=4, years=1.0)), tmp_path / "twelve")
    r = _cli("train", "--config", conf, "--data-dir", data)
    assert r.exit_code == 0, r.output
    assert (
        "warning: history is short" in r.output and "using 1 fold(s) of 1 test and 1 calibration cutoff(s)" in r.output
    )
    assert "fold 0: fit" in r.output
    short = _write(generate(GeneratorConfig(accounts=200, seed=4, years=0.5)), tmp_path / "six")
    r = _cli("train", "--config", conf, "--data-dir", short)
    assert r.exit_code == 2 and "history too short for a backtest" in r.output
    assert "needs at least about 224 days" in r.output and "--horizon" in r.output


@pytest.fixture(scope="module")
def replay_base(tmp_path_factory):
    from churnml.generate import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("replay")
    tables = generate(GeneratorConfig(accounts=500, seed=21, years=2.3))
    return _write(tables, root / "data"), root, tables


def test_replay_trains_on_the_past_only_and_reports_what_happened(replay_base):
    """The generated base ends on 2026-10-31: as of 2026-04-01 the 90-day outcome is known, the 12-month one
    is not. The figures equal a direct computation from the contract's labels and the subscriptions."""
    import json

    from sklearn.metrics import roc_auc_score

    from churnml.api import open_dataset
    from churnml.labels import make_labels

    data, root, tables = replay_base
    conf = _conf(root)
    r = _cli("replay", "--config", conf, "--data-dir", data, "--as-of", "2026-04-01")
    assert r.exit_code == 0, r.output
    assert "replay as of 2026-04-01:" in r.output and "accounts that churned within 90 days were high risk" in r.output
    assert (
        "churned within 12 months: not observable yet: it can be judged once the data reach 2027-04-01; "
        "they end on 2026-10-31" in r.output
    )
    folder = root / "outputs" / "replay" / "2026-04-01"
    rec = json.loads((folder / "replay.json").read_text())
    assert rec["trained_on"]["data_until"] == "2026-03-31"
    assert rec["trained_on"]["fold_cutoffs"]["holdout_cutoffs"][-1] < "2026-01-02"  # t + 90 <= 2026-03-31
    scores = pd.read_parquet(folder / "scores.parquet")
    assert {"risk_probability", "churn_probability_365d", "churn_probability_next_renewal"} <= set(scores.columns)
    assert "before the next renewal" in rec["tier_rule"]
    high = scores["risk_tier"] == "high"  # the tier is cut on the risk probability (and, by default, capacity)
    assert rec["tiers"]["method"] == "capacity" and high.any() and high.mean() <= rec["tiers"]["high_max_share"]
    assert (scores.loc[high, "risk_probability"] >= rec["tiers"]["high"]).all()
    out = pd.read_csv(folder / "outcomes.csv", dtype={"account_id": str}).set_index("account_id")
    ev = rec["evaluation"]["windows"]

    # 90 days: the contract's labels, computed apart
    with open_dataset(data) as ds:
        lab = make_labels(ds, [pd.Timestamp("2026-04-01")], horizon_days=90).droplevel("cutoff")["churned_90d"]
    lab = lab.reindex(out.index).dropna().astype(bool)
    w = ev["90d"]
    assert w["accounts_known"] == len(lab) and w["churned"] == int(lab.sum()) > 0
    tier, arr = out.loc[lab.index, "risk_tier"], out.loc[lab.index, "arr"]
    assert w["churned_in_high"] == int((lab & (tier == "high")).sum())
    assert w["churned_arr_in_high"] == pytest.approx(arr[lab & (tier == "high")].sum())
    assert w["models"]["churnml"]["roc_auc"] == pytest.approx(roc_auc_score(lab, out.loc[lab.index, "p_churnml"]))
    assert set(w["models"]) == {"churnml", "risk_probability", "logistic_regression", "health_score"}

    # the risk window: first exit after the date, read from the subscriptions
    s = tables["subscriptions"]
    t, end = pd.Timestamp("2026-04-01"), pd.Timestamp("2026-10-31")
    exits = s[(s["mrr"] == 0) & (s["effective_date"] >= t)].sort_values("effective_date").groupby("account_id").first()
    days = (exits["effective_date"] - t).dt.days.reindex(out.index)
    completed = (exits["end_kind"].eq("completed") if "end_kind" in exits else pd.Series(False, exits.index)).reindex(
        out.index, fill_value=False
    )
    win = out["risk_window_days"]
    passed = win < (end - t).days + 1
    churned = (days < win) & ~completed
    judged = passed & (churned | ~(days < win))  # a term completed inside the window is neither
    r = ev["risk"]
    assert r["accounts_known"] == int(judged.sum()) and r["still_open"] == int((~passed).sum())
    assert r["churned"] == int(churned[judged].sum()) > 0
    assert r["churned_in_high"] == int((churned & judged & (out["risk_tier"] == "high")).sum())
    assert r["models"]["risk_probability"]["roc_auc"] == pytest.approx(
        roc_auc_score(churned[judged], out.loc[judged, "p_risk_probability"])
    )

    assert not ev["365d"]["observable"] and "models" not in ev["365d"]
    text = (folder / "report.md").read_text()
    assert "What churnml would have said on 2026-04-01" in text and "| churnml, 90-day probability |" in text
    assert "Not observable yet" in text and "nan" not in text.lower()
    r = _cli("replay", "--config", conf, "--data-dir", data, "--as-of", "2027-06-01")
    assert r.exit_code == 2 and "after the data end" in r.output


def test_replay_never_peeks_at_the_future(replay_base, tmp_path):
    """Rewrite everything dated on or after the replay date: the replay's scores do not move."""
    data, root, tables = replay_base
    t = pd.Timestamp("2026-04-01")
    rng = np.random.default_rng(0)
    future = {k: v.copy() for k, v in tables.items()}
    u = future["usage"]
    late = u["date"] >= t
    u.loc[late, "active_users"] = rng.integers(0, 50, late.sum())
    s = future["subscriptions"]
    s.loc[s["effective_date"] >= t, "mrr"] = 0.0
    tk = future["tickets"]
    tk.loc[tk["closed_at"] >= t, "closed_at"] = pd.NaT
    data2 = _write(future, tmp_path / "rewritten")
    conf = _conf(root)
    a = root / "outputs" / "replay" / "2026-04-01" / "scores.parquet"
    if not a.is_file():
        assert _cli("replay", "--config", conf, "--data-dir", data, "--as-of", "2026-04-01").exit_code == 0
    r = _cli("replay", "--config", _conf(tmp_path), "--data-dir", data2, "--as-of", "2026-04-01")
    assert r.exit_code == 0, r.output
    cols = ["account_id", "churn_probability", "risk_tier", "top_driver"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(a)[cols],
        pd.read_parquet(tmp_path / "outputs" / "replay" / "2026-04-01" / "scores.parquet")[cols],
    )


def test_installed_churnml_works_from_any_folder_and_writes_only_under_its_output_folder(tmp_path):
    """The console script, run in an empty folder: no repository configs, built-in playbooks."""
    work = tmp_path / "anywhere"
    work.mkdir()
    exe = Path(sys.executable).with_name("churnml")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("CHURNML_CONFIG", None)

    def run(*args):
        p = subprocess.run([str(exe), *map(str, args)], cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout + p.stderr

    assert "wrote" in run("init")
    conf = (work / "churnml.yaml").read_text()
    assert "playbook_file: playbooks.yaml" in conf
    (work / "churnml.yaml").write_text(conf.replace("folds: 4", "folds: 1"))
    run("generate", "--out", "data/base", "--accounts", 300, "--years", 2)
    run("validate", "--data-dir", "data/base")
    run("train", "--data-dir", "data/base")
    run("score", "--data-dir", "data/base")
    run("report")
    assert sorted(p.name for p in work.iterdir()) == ["churnml.yaml", "data", "outputs", "playbooks.yaml"]
    out = work / "outputs"
    assert {"train", "scores", "report", "ledger", "mlflow.db", "mlartifacts"} <= {p.name for p in out.iterdir()}
    for p in [out / "scores" / "scores.csv", out / "report" / "index.html", out / "train" / "report.html"]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044, p  # readable by others, not 0600


def test_the_wheel_carries_the_playbooks_templates_and_page_assets(tmp_path):
    root = Path(__file__).resolve().parents[1]
    uv = root / ".tools" / "bin" / "uv"
    if not uv.is_file():
        pytest.skip("needs the project's uv (make setup)")
    p = subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(tmp_path), str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    import zipfile

    (wheel,) = tmp_path.glob("churnml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (
        "churnml/resources/playbooks.yaml",
        "churnml/pages/templates/account.html",
        "churnml/pages/static/book.js",
        "churnml/_pyfunc_entry.py",
        "churnml/_mlflow_store.py",
    ):
        assert f in names, f
