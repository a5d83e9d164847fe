"""The data contract: every rule with a small literal bad table, CSV quirks, both formats, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from churnml.api import load_dataset, validate_dataset
from churnml.cli import cli
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError, ContractError
from churnml.io import atomic_write, publish_dir, write_dataset

GOOD_CSV = {
    "accounts": "\ufeffaccount_id,name,segment,industry,region,csm_owner,signup_date\n"
    'A1,"Smith & Sons, <Ltd>",SMB,Retail,NA,Ann,2024-01-01\n'
    'A2,"The ""Best"" Co",Enterprise,,EMEA,,2024-02-01\n'
    "A3,Plain,Mid-Market,Media,APAC,Bob,2024-03-01\n",
    "subscriptions": "account_id,effective_date,mrr,seats,plan,contract_end\n"
    "A1,2024-01-01,100,5,Starter,2025-01-01\n"
    "A1,2024-06-01,150.5,7,Starter,2025-01-01\n"
    "A2,2024-02-01,5000,200,Enterprise,2025-02-01\n"
    "A3,2024-03-01,800,,Pro,\n"
    "A3,2024-09-01,0,0,,\n",
    "usage": "account_id,date,active_users,events,feature_reports,extra_col\n"
    "A1,2024-06-01,3,40,2,x\nA1,2024-06-02,4,41,0,y\nA2,2024-06-01,120,3000,50,z\n",
    "tickets": "ticket_id,account_id,opened_at,closed_at,priority,category,first_response_minutes\n"
    "T1,A1,2024-06-01T10:00:00Z,2024-06-02T10:00:00Z,high,bug,30\n"
    "T2,A2,2024-06-01T23:30:00-05:00,,urgent,,\n",
    "surveys": "account_id,responded_at,kind,score,ticket_id\n"
    "A1,2024-06-03T09:00:00+02:00,CES,2,T1\nA2,2024-06-05 12:00:00,NPS,9,\n"
    "A3,2024-06-05T12:00:00,CSAT,5,\n",
    "milestones": "account_id,milestone,due_date,completed_at\n"
    "A1,kickoff,2024-01-05,2024-01-04\nA1,first_value,2024-02-01,\nA2,kickoff,,2024-02-10\n",
}


def write_csvs(folder: Path, tables: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def with_row(table: str, row: str) -> dict[str, str]:
    t = dict(GOOD_CSV)
    t[table] = t[table] + row + "\n"
    return t


def test_good_csv_dataset_passes_and_reads_quirks_correctly(tmp_path):
    d = write_csvs(tmp_path / "d", GOOD_CSV)
    report = validate_dataset(d)
    assert report.ok, report.format()
    assert "OK: 6 tables" in report.format()
    ds = load_dataset(d)
    acc = ds.accounts.set_index("account_id")
    assert acc.loc["A1", "name"] == "Smith & Sons, <Ltd>"  # BOM header, quoted comma, HTML characters
    assert acc.loc["A2", "name"] == 'The "Best" Co'
    assert acc.loc["A1", "region"] == "NA"  # the string NA is North America, not missing
    assert acc.loc["A2", "csm_owner"] is None and acc.loc["A2", "industry"] is None
    t2 = ds.tickets.set_index("ticket_id").loc["T2"]
    assert t2["opened_at"] == pd.Timestamp("2024-06-02 04:30:00")  # -05:00 offset converted to UTC
    assert pd.isna(t2["closed_at"]) and pd.isna(t2["first_response_minutes"])
    assert ds.surveys["responded_at"].iloc[0] == pd.Timestamp("2024-06-03 07:00:00")
    assert ds.subscriptions["seats"].isna().sum() == 1 and str(ds.subscriptions["seats"].dtype) == "Int64"
    assert list(ds.usage.columns) == ["account_id", "date", "active_users", "events", "feature_reports"]
    assert ds.last_date() == pd.Timestamp("2024-09-01")


def test_csv_and_parquet_load_to_the_same_typed_tables(tmp_path):
    csv = load_dataset(write_csvs(tmp_path / "csv", GOOD_CSV))
    pq = tmp_path / "pq"
    write_dataset(dict(csv.tables().items()), pq, fmt="parquet")
    back = load_dataset(pq)
    for name in ("accounts", "subscriptions", "usage", "tickets", "surveys", "milestones"):
        pd.testing.assert_frame_equal(getattr(csv, name), getattr(back, name), check_dtype=True)


def test_optional_tables_may_be_absent(tmp_path):
    d = write_csvs(tmp_path / "d", {k: GOOD_CSV[k] for k in ("accounts", "subscriptions")})
    assert validate_dataset(d).ok
    ds = load_dataset(d)
    assert ds.usage is None and ds.tickets is None and ds.surveys is None and ds.milestones is None


BAD_CASES = [
    # (id, tables, table, column, rows)
    ("missing required table", {k: v for k, v in GOOD_CSV.items() if k != "subscriptions"}, "subscriptions", None, 1),
    (
        "missing required column",
        {**GOOD_CSV, "usage": "account_id,date,events\nA1,2024-06-01,3\n"},
        "usage",
        "active_users",
        1,
    ),
    ("bad date", with_row("subscriptions", "A2,2024-13-45,10,1,,"), "subscriptions", "effective_date", 1),
    ("bad timestamp", with_row("tickets", "T9,A1,yesterday,,low,,"), "tickets", "opened_at", 1),
    ("text in a number", with_row("subscriptions", "A2,2024-07-01,lots,1,,"), "subscriptions", "mrr", 1),
    ("fractional int", with_row("usage", "A3,2024-06-01,2.5,10,0,"), "usage", "active_users", 1),
    ("negative mrr", with_row("subscriptions", "A2,2024-07-01,-5,1,,"), "subscriptions", "mrr", 1),
    ("negative seats", with_row("subscriptions", "A2,2024-07-01,5,-1,,"), "subscriptions", "seats", 1),
    ("negative events", with_row("usage", "A3,2024-06-01,2,-10,0,"), "usage", "events", 1),
    ("negative feature", with_row("usage", "A3,2024-06-01,2,10,-1,"), "usage", "feature_reports", 1),
    (
        "negative first response",
        with_row("tickets", "T9,A1,2024-06-01T00:00:00,,low,,-3"),
        "tickets",
        "first_response_minutes",
        1,
    ),
    ("duplicate account", with_row("accounts", "A1,Again,SMB,,,,2024-01-01"), "accounts", "account_id", 2),
    ("blank account id", with_row("accounts", " ,Blank,SMB,,,,2024-01-01"), "accounts", "account_id", 1),
    ("duplicate usage day", with_row("usage", "A1,2024-06-01,9,9,0,"), "usage", "account_id,date", 2),
    ("duplicate ticket id", with_row("tickets", "T1,A2,2024-06-01T00:00:00,,low,,"), "tickets", "ticket_id", 2),
    (
        "duplicate subscription day",
        with_row("subscriptions", "A1,2024-06-01,1,1,,"),
        "subscriptions",
        "account_id,effective_date",
        2,
    ),
    ("unknown priority", with_row("tickets", "T9,A1,2024-06-01T00:00:00,,critical,,"), "tickets", "priority", 1),
    ("unknown survey kind", with_row("surveys", "A1,2024-06-01T00:00:00,ces,3,"), "surveys", "kind", 1),
    ("CES out of range", with_row("surveys", "A1,2024-06-01T00:00:00,CES,8,"), "surveys", "score", 1),
    ("CSAT out of range", with_row("surveys", "A1,2024-06-01T00:00:00,CSAT,0,"), "surveys", "score", 1),
    ("NPS out of range", with_row("surveys", "A1,2024-06-01T00:00:00,NPS,11,"), "surveys", "score", 1),
    (
        "closed before opened",
        with_row("tickets", "T9,A1,2024-06-05T00:00:00,2024-06-04T00:00:00,low,,"),
        "tickets",
        "closed_at",
        1,
    ),
    ("unknown account in usage", with_row("usage", "ZZ,2024-06-01,1,1,0,"), "usage", "account_id", 1),
    (
        "unknown account in subscriptions",
        with_row("subscriptions", "ZZ,2024-06-01,1,1,,"),
        "subscriptions",
        "account_id",
        1,
    ),
    ("unknown account in milestones", with_row("milestones", "ZZ,kickoff,,"), "milestones", "account_id", 1),
    ("missing signup date", with_row("accounts", "A9,Nine,SMB,,,,"), "accounts", "signup_date", 1),
    ("missing mrr", with_row("subscriptions", "A2,2024-07-01,,1,,"), "subscriptions", "mrr", 1),
]


@pytest.mark.parametrize("case, tables, table, column, rows", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_each_rule_gives_a_clear_error_and_non_zero_exit(tmp_path, case, tables, table, column, rows):
    d = write_csvs(tmp_path / "d", tables)
    report = validate_dataset(d)
    hits = [v for v in report.errors if v.table == table and v.column == column]
    assert len(hits) == 1, report.format()
    assert hits[0].n_rows == rows
    text = report.format()
    assert f"{table}.{column}" in text if column else table in text
    assert "FAILED" in text
    with pytest.raises(ContractError):
        load_dataset(d)
    res = CliRunner().invoke(cli, ["validate", "--data-dir", str(d)])
    assert res.exit_code == 1 and "ERROR" in res.output


def test_violation_messages_give_counts_and_example_keys(tmp_path):
    d = write_csvs(tmp_path / "d", with_row("usage", "A3,2024-06-01,-2,10,0,"))
    (v,) = validate_dataset(d).errors
    assert v.n_rows == 1 and v.examples == ["account_id=A3 date=2024-06-01"]
    assert str(v).startswith("ERROR usage.active_users: 1 row is below 0")


def test_both_formats_of_one_table_is_an_error(tmp_path):
    d = write_csvs(tmp_path / "d", GOOD_CSV)
    pd.DataFrame({"account_id": ["A1"], "date": ["2024-06-01"], "active_users": [1], "events": [1]}).to_parquet(
        d / "usage.parquet"
    )
    report = validate_dataset(d)
    assert any(v.table == "usage" and "both" in v.message for v in report.errors)


def test_corrupt_parquet_is_named_not_a_traceback(tmp_path):
    d = write_csvs(tmp_path / "d", {k: v for k, v in GOOD_CSV.items() if k != "usage"})
    (d / "usage.parquet").write_bytes(b"not a parquet file")
    (v,) = validate_dataset(d).errors
    assert v.table == "usage" and "usage.parquet" in v.message


def test_warnings_do_not_fail(tmp_path):
    t = with_row("accounts", "A4,No subs,SMB,,,,2024-01-01")
    t["surveys"] += "A1,2024-06-03T09:00:00,CES,5,T404\n"
    report = validate_dataset(write_csvs(tmp_path / "d", t))
    assert report.ok and len(report.warnings) == 2


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ChurnmlError, match="does not exist"):
        validate_dataset(tmp_path / "nope")
    res = CliRunner().invoke(cli, ["validate", "--data-dir", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "error:" in res.output


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_text("old")

    def boom(p: Path):
        p.write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    with pytest.raises(RuntimeError), publish_dir(tmp_path / "folder") as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("crash")
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_generated_data_that_breaks_the_contract_is_not_written(tmp_path):
    bad = {
        "accounts": pd.DataFrame({"account_id": ["A1", "A1"], "name": ["x", "y"], "signup_date": ["2024-01-01"] * 2}),
        "subscriptions": pd.DataFrame({"account_id": ["A1"], "effective_date": ["2024-01-01"], "mrr": [1.0]}),
    }
    with pytest.raises(ContractError, match=r"accounts\.account_id"), Dataset.from_frames(bad) as ds:
        ds.require_valid(where="generated data")
    res = CliRunner().invoke(
        cli, ["generate", "--out", str(tmp_path / "out"), "--accounts", "5", "--years", "0.3", "--end", "2099-01-01"]
    )
    assert res.exit_code == 2 and "dated after today" in res.output  # the generated base breaks the contract
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_generate_and_validate_commands(tmp_path):
    r = CliRunner()
    out = tmp_path / "base"
    res = r.invoke(
        cli, ["generate", "--out", str(out), "--accounts", "80", "--seed", "1", "--years", "1", "--format", "csv"]
    )
    assert res.exit_code == 0, res.output
    assert "wrote 80 accounts" in res.output and "churn" in res.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(f"{t}.csv" for t in GOOD_CSV)
    res = r.invoke(cli, ["validate", "--data-dir", str(out)])
    assert res.exit_code == 0 and "OK: 6 tables" in res.output
    # a fresh base ends yesterday, so it scores as of today and its first pages are not old data
    usage = pd.read_csv(out / "usage.csv", parse_dates=["date"])
    assert usage["date"].max() == pd.Timestamp.today().normalize() - pd.Timedelta(days=1)


def test_the_generated_base_ends_the_day_before_it_is_made(tmp_path):
    from churnml.generate import resolve_end

    assert resolve_end("yesterday", today="2027-03-01") == pd.Timestamp("2027-02-28")
    assert resolve_end("Today", today="2027-03-01 17:45") == pd.Timestamp("2027-03-01")
    assert resolve_end("2026-10-31") == pd.Timestamp("2026-10-31")
    with pytest.raises(ValueError, match="'soon'"):
        resolve_end("soon")
    conf = tmp_path / "c.yaml"
    conf.write_text("generate:\n  end: soon\n")
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "x"), "--accounts", "5", "--config", str(conf)])
    assert res.exit_code != 0
    assert "generate: end must be a date YYYY-MM-DD, 'yesterday' or 'today', not 'soon'" in res.output
    assert not (tmp_path / "x").exists()


def test_bad_config_key_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  foldz: 3\n")
    res = CliRunner().invoke(cli, ["validate", "--config", str(cfg)])
    assert res.exit_code == 2 and "train.foldz" in res.output


def test_the_repository_config_is_what_init_writes(tmp_path):
    """configs/ holds `churnml init configs` output (defaults are written once, in churnml.config)."""
    from churnml.config import default_yaml, load_config
    from churnml.io.artifacts import builtin_text

    root = Path(__file__).resolve().parents[1]
    values = {  # paths in a config file are from its folder: the repository's data/, outputs/ and models/
        "data_dir": "../data/demo",
        "output_dir": "../outputs",
        "scoring.playbook_file": "playbooks.yaml",
        "train.tuned_params_file": "../models/best_params.json",
    }
    assert (root / "configs" / "churnml.yaml").read_text() == default_yaml(**values), (
        "regenerate: python -c \"from churnml.config import default_yaml; open('configs/churnml.yaml','w').write("
        f'default_yaml(**{values!r}))"'
    )
    assert (root / "configs" / "playbooks.yaml").read_text() == builtin_text("playbooks.yaml")
    cfg = load_config(root / "configs" / "churnml.yaml")
    assert cfg.labels.horizon_days == 90 and cfg.train.tuned_params_file == root / "models" / "best_params.json"
    assert cfg.data_dir == root / "data" / "demo" and cfg.scoring.playbook_file == root / "configs" / "playbooks.yaml"
