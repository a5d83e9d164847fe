"""The ledger is keyed by the base's name, not where it is mounted; two bases under one name are told apart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churnml.config import load_config
from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.flows.common import IDENTITY_FILE, Run, base_id, check_base_identity, ledger_folder, legacy_base_id


def _base(ids, signups) -> Dataset:
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "name": [f"Co {i}" for i in ids],
            "segment": "SMB",
            "industry": "Software",
            "region": "EMEA",
            "csm_owner": "Ann",
            "signup_date": pd.to_datetime(signups),
        }
    )
    subs = pd.DataFrame(
        {
            "account_id": ids,
            "effective_date": pd.to_datetime(signups),
            "mrr": 100.0,
            "seats": 5,
            "plan": "Pro",
            "contract_end": pd.NaT,
        }
    )
    return Dataset.from_frames({"accounts": accounts, "subscriptions": subs}, last_date="2026-06-30")


IDS = [f"A{i:03d}" for i in range(100)]
DAYS = [f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(100)]


def _run(tmp_path: Path, data_dir: Path, **over) -> tuple[Run, list[str]]:
    said: list[str] = []
    cfg = load_config(None, data_dir=str(data_dir), output_dir=str(tmp_path / "out"), **over)
    return Run(cfg, echo=said.append), said


def test_the_base_name_is_the_folders_name_wherever_it_is_mounted(tmp_path):
    a, _ = _run(tmp_path, tmp_path / "here" / "acme")
    b, _ = _run(tmp_path, tmp_path / "mnt" / "data" / "acme")
    c, _ = _run(tmp_path, tmp_path / "x" / "acme", base_name="acme-eu")
    assert base_id(a.cfg) == base_id(b.cfg) == "acme" and base_id(c.cfg) == "acme-eu"
    assert ledger_folder(a.cfg) == ledger_folder(b.cfg) == tmp_path / "out" / "ledger" / "acme"
    d, _ = _run(tmp_path, tmp_path / "we ird#name")
    assert base_id(d.cfg) == "we_ird_name"


def test_a_moved_base_keeps_its_history_and_another_base_under_its_name_is_refused(tmp_path):
    first, said = _run(tmp_path, tmp_path / "old" / "data")
    folder = ledger_folder(first.cfg)
    with _base(IDS, DAYS) as ds:
        ident = check_base_identity(first, ds, "data", folder)
    assert not ident.moved and said == [] and len(ident.record["accounts"]) == 64
    folder.mkdir(parents=True)
    ident.save()
    # the same base read from another place, and grown by 20 accounts: the same history
    moved, said = _run(tmp_path, tmp_path / "container" / "mnt" / "data")
    grown = IDS + [f"B{i:03d}" for i in range(20)]
    with _base(grown, DAYS + ["2026-05-01"] * 20) as ds:
        ident = check_base_identity(moved, ds, "data", folder)
    assert ident.moved and ident.record["places"] == [
        str(tmp_path / "old" / "data"),
        str(tmp_path / "container" / "mnt" / "data"),
    ]
    assert said == [
        f"ledger: base 'data' is now read from {tmp_path / 'container' / 'mnt' / 'data'} (before: "
        f"{tmp_path / 'old' / 'data'}); the same accounts, so its history continues"
    ]
    ident.save()
    # another base with the same ids (a demo of another seed): its signup dates differ; refused
    other, _ = _run(tmp_path, tmp_path / "elsewhere" / "data")
    days = [f"2024-{1 + i % 12:02d}-{1 + (i * 7) % 28:02d}" for i in range(100)]
    with _base(IDS, days) as ds, pytest.raises(ChurnmlError) as e:
        check_base_identity(other, ds, "data", folder)
    msg = str(e.value)
    assert msg.startswith("two different bases share the name 'data': the ledger ") and "base_name in the config" in msg
    assert "--base-name" in msg and f"{tmp_path / 'elsewhere' / 'data'} is another base (" in msg
    assert "of the 64 accounts that identify it match by id and signup date" in msg
    assert (folder / IDENTITY_FILE).is_file()


def test_a_ledger_folder_keyed_by_the_old_path_hash_is_taken_over(tmp_path):
    run, said = _run(tmp_path, tmp_path / "demo")
    old = tmp_path / "out" / "ledger" / legacy_base_id(run.cfg)
    old.mkdir(parents=True)
    (old / "part-1.parquet").write_bytes(b"x")
    with _base(IDS, DAYS) as ds:
        check_base_identity(run, ds, "demo", ledger_folder(run.cfg))
    assert (tmp_path / "out" / "ledger" / "demo" / "part-1.parquet").is_file() and not old.exists()
    assert said and "moved from demo-" in said[0]
