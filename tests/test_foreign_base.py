"""The whole path on a base unlike the demo's: any dataset that follows the contract must work unchanged.

CSV with a byte-order mark, four segments with other names, no optional account columns
(csm_owner, industry, region), no surveys or milestones tables, another calendar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    from churnml.generate import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("foreign")
    data = root / "data"
    data.mkdir()
    t = generate(GeneratorConfig(accounts=1000, seed=77, years=2.2, end="2025-06-30"))
    a = t["accounts"]
    a["segment"] = a["segment"].map({"SMB": "Startup", "Mid-Market": "Growth", "Enterprise": "Corporate"})
    a.loc[np.random.default_rng(0).random(len(a)) < 0.1, "segment"] = "Public Sector"
    t["accounts"] = a.drop(columns=["csm_owner", "industry", "region"])
    for name in ("accounts", "subscriptions", "usage", "tickets"):
        t[name].to_csv(data / f"{name}.csv", index=False, encoding="utf-8-sig")
    conf = root / "churnml.yaml"
    conf.write_text(f"""
data_dir: {data}
output_dir: {root / "outputs"}
mlflow: {{tracking_uri: "sqlite:///{root / "mlflow.db"}", artifact_root: "{root / "mlartifacts"}", model_name: foreign}}
train: {{folds: 2, tuned_params_file: "{root / "none.json"}"}}
scoring:
  playbook_file: {Path(__file__).resolve().parents[1] / "configs" / "playbooks.yaml"}
""")
    return root, conf


def _run(*args):
    from churnml.cli import cli

    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_validate_train_score_report_on_a_foreign_base(foreign):
    root, conf = foreign
    assert "OK: 4 tables" in _run("validate", "--data-dir", root / "data")
    out = _run("train", "--config", conf)
    assert "promoted to champion" in out
    out = _run("score", "--config", conf)
    assert "scored" in out and "as of 2025-07-01" in out
    scores = pd.read_parquet(root / "outputs" / "scores" / "scores.parquet")
    drivers = pd.read_parquet(root / "outputs" / "scores" / "drivers.parquet")
    assert len(scores) > 500 and scores["churn_probability"].between(0, 1).all()
    assert set(scores["segment"]) == {"Startup", "Growth", "Corporate", "Public Sector"}
    assert scores["risk_tier"].isin(["high", "medium", "low"]).all() and (scores["risk_tier"] == "high").any()
    # at-risk accounts have reasons; none from the surveys (effort) or milestones (onboarding) it lacks
    churn = drivers[drivers["target"] == "churn"]
    assert set(churn["account_id"]) <= set(scores["account_id"])
    at_risk = scores.loc[scores["risk_tier"] != "low", "account_id"]
    assert at_risk.isin(churn.loc[churn["direction"] == "raises", "account_id"]).mean() > 0.9
    assert not churn["family"].isin(["effort", "onboarding"]).any()
    out = _run("report", "--config", conf)
    pages = root / "outputs" / "report"
    assert len(list((pages / "accounts").glob("*.html"))) == len(scores)
    assert len(list((pages / "csm").glob("*.html"))) == 1  # no csm_owner column: everyone is Unassigned
    assert "Unassigned" in (pages / "index.html").read_text()
