"""Exports that cannot break (issue 26, item 4): every CSV churnml writes is quoted so no carriage return
or line feed inside a value ends a row, no cell starts a formula after parsing, and nothing read from an
output folder chooses where churnml writes."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from churnml.config import load_config
from churnml.flows.common import manifest_ledger
from churnml.flows.score import complete_ledger
from churnml.io import write_dataset
from churnml.io.artifacts import write_files
from churnml.io.outputs import FORMULA_PREFIXES, csv_text, write_csv, write_json, write_parquet

SRC = Path(__file__).resolve().parents[1] / "src" / "churnml"
HOSTILE = ["\r=1+1", "two\nlines", '=HYPERLINK("http://x")', "plain", "a\r\nb", "\n@SUM(A1)"]


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_a_bare_carriage_return_never_ends_a_row_and_no_parsed_cell_is_a_formula(tmp_path):
    df = pd.DataFrame({"account_id": [f"A{i}" for i in range(6)], "name": HOSTILE, "mrr": [1.5, 2, 3, 4, 5, 6]})
    rows = _rows(write_csv(df, tmp_path / "scores.csv"))
    assert len(rows) == 7  # the header and six accounts, whatever the names hold
    names = ["'\r=1+1", "two\nlines", '\'=HYPERLINK("http://x")', "plain", "a\r\nb", "'\n@SUM(A1)"]
    assert [r[1] for r in rows[1:]] == names
    assert not any(cell.startswith(FORMULA_PREFIXES) for r in rows for cell in r)
    # a text cell is always quoted; numbers stay bare
    assert (tmp_path / "scores.csv").read_bytes().startswith(b'"account_id","name","mrr"\n"A0","\'\r=1+1",1.5\n')
    back = pd.read_csv(tmp_path / "scores.csv")
    assert back["mrr"].tolist() == [1.5, 2, 3, 4, 5, 6] and len(back) == 6


def test_the_table_logged_to_mlflow_is_guarded_like_the_files():
    drift = pd.DataFrame({"feature": ["=HYPERLINK(A1)", "tenure_days"], "psi": [0.01, 0.3], "drifted": [False, True]})
    text = csv_text(drift)
    assert text.splitlines() == [
        '"feature","psi","drifted"',
        '"\'=HYPERLINK(A1)",0.01,False',
        '"tenure_days",0.3,True',
    ]


def test_column_names_and_categorical_text_are_guarded_too(tmp_path):
    df = pd.DataFrame({"=cmd|' /C calc'!A0": pd.Categorical(["-2+3", "ok"]), "n": [1, 2]})
    rows = _rows(write_csv(df, tmp_path / "x.csv"))
    assert rows == [["'=cmd|' /C calc'!A0", "n"], ["'-2+3", "1"], ["ok", "2"]]


def test_report_files_written_in_a_set_go_through_the_same_writer(tmp_path):
    write_files({"features.csv": pd.DataFrame({"name": ["\r=1+1"], "v": [1]})}, tmp_path)
    assert _rows(tmp_path / "features.csv") == [["name", "v"], ["'\r=1+1", "1"]]


def test_generated_data_as_csv_read_back_exactly_and_stay_one_row_per_record(tmp_path):
    t = {"accounts": pd.DataFrame({"account_id": ["A1", "A2"], "name": ["\r=1+1", "-minus"]})}
    out = write_dataset(t, tmp_path / "data", fmt="csv")
    rows = _rows(out / "accounts.csv")
    assert rows == [["account_id", "name"], ["A1", "\r=1+1"], ["A2", "-minus"]]  # data, not an export: raw


def test_every_csv_churnml_writes_goes_through_the_one_writer():
    offenders = []
    for p in SRC.rglob("*.py"):
        if p == SRC / "io" / "outputs.py":
            continue
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.to_csv\(", line) and "io.outputs" not in line:
                offenders.append(f"{p.relative_to(SRC)}:{n}: {line.strip()}")
    assert offenders == []


def _published_run(folder: Path, base: str, run_id: str = "0123456789ab") -> None:
    folder.mkdir(parents=True)
    write_json({"run_id": run_id, "base": base, "scored_at": "2026-11-01T10:00:00"}, folder / "manifest.json")
    write_parquet(pd.DataFrame({"account_id": ["A1"], "run_id": [run_id]}), folder / "ledger_part.parquet")


def test_a_manifest_base_never_chooses_where_the_ledger_is_written(tmp_path):
    scores, ledger = tmp_path / "out" / "scores", tmp_path / "out" / "ledger" / "mine-1234"
    _published_run(scores, "../../../escaped")
    assert complete_ledger(scores, ledger, "mine-1234") is False
    assert not (tmp_path / "escaped").exists() and not ledger.exists()
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert written == ["out/scores/ledger_part.parquet"]


def test_a_manifest_run_id_never_names_a_file_outside_the_ledger(tmp_path):
    scores, ledger = tmp_path / "scores", tmp_path / "ledger" / "mine"
    _published_run(scores, "mine", run_id="../../x")
    assert complete_ledger(scores, ledger, "mine") is False and not ledger.exists()


def test_the_same_base_has_its_missing_rows_completed_in_its_own_ledger(tmp_path):
    scores, ledger = tmp_path / "scores", tmp_path / "ledger" / "mine"
    _published_run(scores, "mine")
    assert complete_ledger(scores, ledger, "mine") is True
    assert [p.name for p in ledger.iterdir()] == ["part-20261101T100000-0123456789ab.parquet"]
    assert complete_ledger(scores, ledger, "mine") is False  # once only


def test_report_and_publish_read_only_a_plain_base_name_from_a_manifest(tmp_path):
    cfg = load_config(None, output_dir=str(tmp_path / "out"))
    assert manifest_ledger(cfg, {"base": "data-1a2b3c4d"}) == tmp_path / "out" / "ledger" / "data-1a2b3c4d"
    for bad in ("../../etc", "/etc", ".hidden", "", None, 7, "a/b", "a\\b"):
        assert manifest_ledger(cfg, {"base": bad}) is None, bad
