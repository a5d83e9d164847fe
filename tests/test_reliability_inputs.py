"""Files read right or refused plainly (issue 26, item 5): literal tables written the ways real exports
come (semicolons, Latin-1, duplicate headers, Spark part folders, dangling links, zoned timestamps)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from churnml.api import open_dataset, validate_dataset
from churnml.cli import cli

ACCOUNTS = "account_id,name,segment,signup_date\nA1,Caf\u00e9 One,SMB,2025-01-01\nA2,Two,SMB,2025-01-01\n"
SUBS = (
    "account_id,effective_date,mrr,seats,contract_end\n"
    "A1,2025-01-01,100,5,2026-01-01\n"
    "A2,2025-01-01,200,10,2026-01-01\n"
)


def _base(folder: Path, accounts: bytes | str = ACCOUNTS, subs: str = SUBS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    a = accounts if isinstance(accounts, bytes) else accounts.encode("utf-8")
    (folder / "accounts.csv").write_bytes(a)
    (folder / "subscriptions.csv").write_text(subs, encoding="utf-8")
    return folder


def _usage() -> pd.DataFrame:
    days = pd.date_range("2025-01-01", "2025-06-30", freq="D")
    return pd.DataFrame(
        {"account_id": ["A1"] * len(days) + ["A2"] * len(days), "date": list(days) * 2, "active_users": 3, "events": 9}
    )


def _messages(folder: Path) -> str:
    return validate_dataset(folder).format()


def _validate(folder: Path):
    return CliRunner().invoke(cli, ["validate", "--data-dir", str(folder)])


def test_a_semicolon_separated_csv_is_named_as_such(tmp_path):
    d = _base(tmp_path / "d", ACCOUNTS.replace(",", ";"))
    r = _validate(d)
    assert r.exit_code != 0 and "accounts.csv is separated by semicolons, not commas" in r.output, r.output


def test_a_latin1_csv_is_named_not_utf8_with_its_line(tmp_path):
    d = _base(tmp_path / "d", ACCOUNTS.encode("latin-1"))
    r = _validate(d)
    assert r.exit_code != 0 and "accounts.csv is not UTF-8: byte 0xE9 at line 2" in r.output, r.output


def test_duplicate_column_names_are_refused_in_csv_and_parquet(tmp_path):
    d = _base(tmp_path / "d", subs=SUBS.replace("contract_end", "mrr"))
    assert "subscriptions.csv has duplicate column names: 'mrr' (2 times)" in _messages(d)
    import pyarrow as pa
    import pyarrow.parquet as pq

    (d / "subscriptions.csv").unlink()
    pq.write_table(
        pa.table(
            [["A1"], ["2025-01-01"], [100.0], [5], [150.0]],
            names=["account_id", "effective_date", "mrr", "seats", "mrr"],
        ),
        d / "subscriptions.parquet",
    )
    assert "subscriptions.parquet has duplicate column names: 'mrr' (2 times)" in _messages(d)


def test_a_table_given_as_a_folder_of_parquet_parts_is_read_as_one_table(tmp_path):
    d = _base(tmp_path / "d")
    usage = _usage()
    parts = d / "usage.parquet"
    parts.mkdir()
    usage.iloc[:100].to_parquet(parts / "part-00000.parquet", index=False)
    usage.iloc[100:].to_parquet(parts / "part-00001.parquet", index=False)
    (parts / "_SUCCESS").write_text("")
    report = validate_dataset(d)
    assert report.ok, report.format()
    with open_dataset(d) as ds:
        assert "usage" in ds.raw and ds.raw["usage"].n_rows == len(usage)


def test_an_accounts_table_as_a_folder_is_read_not_missing(tmp_path):
    d = _base(tmp_path / "d")
    (d / "accounts.csv").unlink()
    (d / "accounts.parquet").mkdir()
    pd.read_csv(pd.io.common.StringIO(ACCOUNTS)).to_parquet(d / "accounts.parquet" / "part-0.parquet", index=False)
    with open_dataset(d) as ds:
        assert ds.raw["accounts"].n_rows == 2


def test_a_dangling_link_is_refused_not_read_as_no_table(tmp_path):
    d = _base(tmp_path / "d")
    (d / "usage.parquet").symlink_to(tmp_path / "gone" / "usage.parquet")
    r = _validate(d)
    assert r.exit_code != 0 and f"{d / 'usage.parquet'} is a link to nothing" in r.output, r.output


def test_an_empty_part_folder_is_refused(tmp_path):
    d = _base(tmp_path / "d")
    (d / "usage.parquet").mkdir()
    assert "usage.parquet is a folder without .parquet part files" in _messages(d)


def test_the_digest_of_a_part_folder_changes_with_its_files(tmp_path):
    from churnml.io.artifacts import fingerprint_files

    parts = tmp_path / "usage.parquet"
    parts.mkdir()
    _usage().to_parquet(parts / "part-0.parquet", index=False)
    before = fingerprint_files([parts])
    _usage().iloc[:5].to_parquet(parts / "part-1.parquet", index=False)
    assert fingerprint_files([parts]) != before


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_an_absurd_mrr_is_refused_by_validate_with_its_row(tmp_path):
    d = _base(tmp_path / "d", subs=SUBS.replace(",200,", ",1e308,"))
    r = _validate(d)
    assert r.exit_code == 1, r.output
    assert "subscriptions.mrr: 1 row is infinite or beyond 1e+12" in r.output and "account_id=A2" in r.output


def test_nanosecond_zoned_parquet_timestamps_are_converted_to_utc(tmp_path):
    d = _base(tmp_path / "d")
    opened = pd.to_datetime(["2025-03-01 10:00", "2025-03-02 23:30"]).tz_localize("Europe/Berlin")
    opened = opened.astype("datetime64[ns, Europe/Berlin]")  # what pandas writes by default
    pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "ticket_id": ["T1", "T2"],
            "opened_at": opened,
            "closed_at": opened + pd.Timedelta(hours=5),
            "priority": ["high", "low"],
        }
    ).to_parquet(d / "tickets.parquet", index=False)
    report = validate_dataset(d)
    assert report.ok, report.format()
    with open_dataset(d) as ds:
        t = ds.tickets.sort_values("ticket_id")
    assert t["opened_at"].tolist() == [pd.Timestamp("2025-03-01 09:00"), pd.Timestamp("2025-03-02 22:30")]


def test_ids_that_differ_only_as_1_and_1_point_0_are_named_as_a_type_mismatch(tmp_path):
    d = _base(tmp_path / "d", ACCOUNTS.replace("A1", "1").replace("A2", "2"))
    (d / "subscriptions.csv").unlink()
    pd.DataFrame(
        {
            "account_id": [1.0, 2.0],
            "effective_date": ["2025-01-01"] * 2,
            "mrr": [100.0, 200.0],
            "seats": [5, 10],
            "contract_end": ["2026-01-01"] * 2,
        }
    ).to_parquet(d / "subscriptions.parquet", index=False)
    msg = _messages(d)
    assert "2 rows name an account_id not in accounts; 2 of them match once '.0' is dropped (as 1.0 vs 1)" in msg
