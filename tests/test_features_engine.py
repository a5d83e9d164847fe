"""The feature engine: definitions and SQL never drift apart; the CLI lists and builds features."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from churnml.cli import cli
from churnml.features import FAMILY_MODULES, Context, indicators_for
from churnml.features._registry import FAMILIES


@pytest.mark.parametrize("module", FAMILY_MODULES, ids=lambda m: m.FAMILY)
def test_each_family_query_returns_exactly_its_documented_indicators(module):
    ctx = Context(
        feature_columns=("feature_a", "feature_b"),
        attributes=(("plan_family", "string"), ("size", "float")),
        present=frozenset({"accounts", "subscriptions", "usage", "tickets", "surveys", "milestones"}),
    )
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE pop (account_id VARCHAR, cutoff BIGINT, state_day BIGINT, mrr DOUBLE, seats DOUBLE, "
        "plan VARCHAR, contract_end BIGINT, signup BIGINT, segment VARCHAR, industry VARCHAR, "
        "region VARCHAR, a0 VARCHAR, a1 DOUBLE, start_day BIGINT)"
    )
    con.execute(
        "CREATE TABLE usage (account_id VARCHAR, day BIGINT, active_users DOUBLE, events DOUBLE, f0 DOUBLE, f1 DOUBLE)"
    )  # the dataset's SQL names of feature_a, feature_b
    con.execute(
        "CREATE TABLE tickets (account_id VARCHAR, opened DOUBLE, closed DOUBLE, priority VARCHAR, "
        "first_response_minutes DOUBLE)"
    )
    con.execute("CREATE TABLE surveys (account_id VARCHAR, answered DOUBLE, kind VARCHAR, score DOUBLE)")
    con.execute("CREATE TABLE milestones (account_id VARCHAR, milestone VARCHAR, due BIGINT, completed BIGINT)")
    con.execute(
        "CREATE TABLE subs (account_id VARCHAR, day BIGINT, mrr DOUBLE, seats DOUBLE, plan VARCHAR, "
        "contract_end BIGINT, churned BOOLEAN, completed BOOLEAN)"
    )
    cols = list(con.sql(module.sql(ctx)).df().columns)
    defs = module.indicators(ctx)
    assert cols == ["account_id", "cutoff"] + [i.sql_name for i in defs]
    for i in defs:
        assert i.family == module.FAMILY and i.formula and i.unit and i.missing and i.label


def test_indicator_names_are_unique_and_cover_every_family():
    defs = indicators_for(Context(feature_columns=("feature_x",)))
    names = [i.name for i in defs]
    assert len(names) == len(set(names)) and len(names) >= 55
    assert {i.family for i in defs} == set(FAMILIES)


def test_features_list_and_build_from_the_cli(base_dir, tmp_path):
    r = CliRunner()
    res = r.invoke(cli, ["features", "--list"])
    assert res.exit_code == 0 and "ces_difficult_share_90d" in res.output and "missing:" in res.output
    out = tmp_path / "f.parquet"
    res = r.invoke(
        cli, ["features", "--data-dir", str(base_dir), "--cutoffs", "2025-01-01:2025-03-01", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "3 cutoffs" in res.output
    X = pd.read_parquet(out)
    assert set(X["cutoff"].astype(str).str[:10]) == {"2025-01-01", "2025-02-01", "2025-03-01"}
    res = r.invoke(cli, ["features", "--data-dir", str(base_dir), "--cutoffs", "2025-01-01T10:00", "--out", str(out)])
    assert res.exit_code == 2 and "error:" in res.output
    res = r.invoke(cli, ["labels", "--data-dir", str(base_dir), "--out", str(tmp_path / "y.parquet")])
    assert res.exit_code == 0 and "churned within 90d" in res.output
