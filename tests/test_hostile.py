"""Hostile and faulty conditions: no injection, no silent garbage, no lost or mixed outputs.

Fast tests first (no model); the ones that need a trained model share one small base and
model (marked slow).
"""

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

from churnml.api import open_dataset, validate_dataset
from churnml.cli import cli
from churnml.features import build_features
from churnml.io.outputs import MARKER, clean_stale, csv_safe, publish_dir, write_csv

ROOT = Path(__file__).resolve().parents[1]


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _tiny_base(folder: Path, usage_columns: dict | None = None, fmt: str = "parquet") -> Path:
    """Two accounts, a year of history, a usage table with the given extra columns."""
    folder.mkdir(parents=True, exist_ok=True)
    days = pd.date_range("2025-01-01", "2025-12-31", freq="D")
    acc = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "name": ["One", "Two"],
            "segment": ["SMB", "SMB"],
            "signup_date": ["2025-01-01", "2025-01-01"],
        }
    )
    subs = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "effective_date": ["2025-01-01", "2025-01-01"],
            "mrr": [100.0, 200.0],
            "seats": [5, 10],
            "contract_end": ["2026-01-01", "2026-01-01"],
        }
    )
    usage = pd.DataFrame(
        {
            "account_id": np.repeat(["A1", "A2"], len(days)),
            "date": np.tile(days.strftime("%Y-%m-%d"), 2),
            "active_users": 3,
            "events": 40,
        }
    )
    for name, values in (usage_columns or {}).items():
        usage[name] = values
    for n, t in (("accounts", acc), ("subscriptions", subs), ("usage", usage)):
        if fmt == "parquet":
            t.to_parquet(folder / f"{n}.parquet", index=False)
        else:
            t.to_csv(folder / f"{n}.csv", index=False)
    return folder


# --- 1. identifiers never become SQL ----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_hostile_column_headers_are_data_never_sql(tmp_path, fmt):
    pwned = tmp_path / "pwned.csv"
    evil = f"feature_x\"; COPY (SELECT 42) TO '{pwned}'; --"
    d = _tiny_base(tmp_path / "base", {evil: 1, "feature_ai-assist": 2, "feature_ok": 0}, fmt)
    report = validate_dataset(d)
    assert report.ok, report.format()
    with open_dataset(d) as ds:
        assert ds.feature_columns == tuple(sorted([evil, "feature_ai-assist", "feature_ok"]))
        X = build_features(ds, ["2025-07-01"])
        usage = ds.usage
    assert np.allclose(X["feature_breadth_30d"], 2 / 3)  # two of the three feature columns used
    assert usage[evil].eq(1).all() and usage["feature_ai-assist"].eq(2).all()
    assert not pwned.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["base"]  # nothing ran, nothing written


# --- 3. spreadsheet formulas ------------------------------------------------------------------------------
def test_csv_outputs_neutralise_formula_prefixes_and_keep_numbers(tmp_path):
    df = pd.DataFrame(
        {
            "name": ['=HYPERLINK("http://x")', "+1 Co", "-minus", "@at", "\tTab", "Plain", None],
            "value": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    safe = csv_safe(df)
    assert safe["name"].tolist()[:6] == ['\'=HYPERLINK("http://x")', "'+1 Co", "'-minus", "'@at", "'\tTab", "Plain"]
    assert pd.isna(safe["name"].iloc[6]) and safe["value"].tolist() == df["value"].tolist()
    back = pd.read_csv(write_csv(df, tmp_path / "x.csv"))
    assert back["name"].iloc[0].startswith("'=") and back["value"].iloc[0] == -1.5
    assert df["name"].iloc[0].startswith("=")  # the frame itself (and Parquet) keep the raw value


# --- 4. only ever remove what churnml wrote ----------------------------------------------------------------
def test_generate_refuses_a_folder_holding_other_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("precious")
    r = _invoke("generate", "--out", out, "--accounts", 5, "--years", 0.3)
    assert r.exit_code == 2 and "holds files churnml did not write" in r.output
    assert (out / "thesis.docx").read_text() == "precious" and [p.name for p in out.iterdir()] == ["thesis.docx"]


def test_report_never_replaces_the_scores_it_reads(tmp_path):
    scores = tmp_path / "run"
    with publish_dir(scores, kind="scores") as tmp:
        pd.DataFrame({"account_id": ["A1"]}).to_parquet(tmp / "scores.parquet")
    r = _invoke("report", "--scores", scores, "--out", scores)
    assert r.exit_code == 2 and "holds churnml's scores output, not report" in r.output
    assert (scores / "scores.parquet").is_file()
    other = tmp_path / "docs"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    r = _invoke("report", "--scores", scores, "--out", other)
    assert r.exit_code == 2 and (other / "keep.txt").is_file()


def test_publishing_is_one_step_and_leaves_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "report"
        with publish_dir(target, kind="report") as tmp:
            (tmp / "index.html").write_text("v1")
        first = target.resolve()
        with pytest.raises(RuntimeError), publish_dir(target, kind="report") as tmp:
            (tmp / "index.html").write_text("half")
            raise RuntimeError("killed")
        assert (target / "index.html").read_text() == "v1" and target.resolve() == first  # old set, never none
        with publish_dir(target, kind="report") as tmp:
            (tmp / "index.html").write_text("v2")
        assert (target / "index.html").read_text() == "v2"
        mode = stat.S_IMODE((target / "index.html").stat().st_mode)
        assert mode == 0o644 and stat.S_IMODE(target.resolve().stat().st_mode) == 0o755
        assert (target / MARKER).is_file()
    finally:
        os.umask(old)


def test_temporary_files_of_dead_runs_are_cleaned_but_not_those_of_live_ones(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale_dir = tmp_path / f".scores.{dead_pid}.abcd1234.tmp"
    stale_dir.mkdir()
    (stale_dir / "scores.parquet").write_text("half")
    stale_file = tmp_path / f".scores.csv.{dead_pid}.ef56.tmp"
    stale_file.write_text("half")
    live = tmp_path / f".report.{os.getpid()}.9999aaaa.tmp"
    live.mkdir()
    gone = clean_stale(tmp_path)
    assert set(gone) == {stale_dir, stale_file} and live.exists()


# --- 7. dates beyond the plausible span ---------------------------------------------------------------------
def test_a_mistyped_year_is_an_error_in_validate_not_two_thousand_cutoffs(tmp_path):
    d = _tiny_base(tmp_path / "base")
    subs = pd.read_parquet(d / "subscriptions.parquet")
    subs = pd.concat(
        [
            subs,
            pd.DataFrame(
                {
                    "account_id": ["A1"],
                    "effective_date": ["2200-01-01"],
                    "mrr": [150.0],
                    "seats": [5],
                    "contract_end": [None],
                }
            ),
        ]
    )
    subs.to_parquet(d / "subscriptions.parquet", index=False)
    r = _invoke("validate", "--data-dir", d)
    assert r.exit_code == 1
    assert "subscriptions.effective_date: 1 row is dated after today" in r.output
    assert "account_id=A1 effective_date=2200-01-01" in r.output
    r = _invoke("features", "--data-dir", d)
    assert r.exit_code == 2 and "dated after today" in r.output


def test_a_date_far_after_the_rest_of_its_table_is_an_error(tmp_path):
    d = _tiny_base(tmp_path / "base")
    acc = pd.read_parquet(d / "accounts.parquet").assign(signup_date="2019-01-01")
    more = pd.DataFrame(
        {"account_id": [f"L{i:03d}" for i in range(150)], "name": "x", "segment": "SMB", "signup_date": "2019-06-01"}
    )
    more.loc[0, "signup_date"] = "2025-11-01"  # one signup years after all the others: 2019 typed as 2025?
    pd.concat([acc, more]).to_parquet(d / "accounts.parquet", index=False)
    report = validate_dataset(d)
    hits = [v for v in report.errors if v.rule == "outlier"]
    assert [(v.table, v.column, v.n_rows) for v in hits] == [("accounts", "signup_date", 1)]
    assert hits[0].examples == ["account_id=L000"]


def test_the_number_of_cutoffs_is_bounded_and_stated():
    from churnml.cutoffs import parse_cutoffs
    from churnml.errors import ChurnmlError

    with pytest.raises(ChurnmlError, match=r"give 1,201 dates \(2000-01-01..2100-01-01\), more than the limit of 400"):
        parse_cutoffs("2000-01-01:2100-01-01", None)


# --- 9. what reaches a terminal -------------------------------------------------------------------------------
def test_terminal_escape_codes_in_names_are_not_passed_to_the_terminal():
    from churnml.pages.story import printable

    assert printable("Acme\x1b[2J\x1b]0;owned\x07 Ltd") == "Acme?[2J?]0;owned? Ltd"
    assert printable("Müller <Technik> & Söhne") == "Müller <Technik> & Söhne"
