"""Warehouse in and out, against a real PostgreSQL server (tests/pgserver.py): a base read from a
schema is the same base as from files; names and text from the database or the scores are never
SQL; a missing table, column or schema is a clear error; credentials are never shown; publishing
is one transaction, idempotent, keyed, and a kill inside it leaves the previous tables whole.

The server is started once per test session (a few seconds) on a unix socket in a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from churnml.api import open_dataset
from churnml.cli import cli
from churnml.config import load_config
from churnml.contract import TABLES, quote_ident
from churnml.features import build_features
from churnml.flows.common import Run, base_id, data_source
from churnml.labels import make_labels
from pgserver import MISSING, PostgresServer, find_bindir, load_base

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[1]
CUTOFFS = ["2025-06-01", "2026-01-01", "2026-08-01"]


@pytest.fixture(scope="session")
def pg():
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(MISSING)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small(base_tables, tmp_path_factory):
    """400 accounts of the session's base, whole (every table's rows of those accounts), and as Parquet files."""
    from churnml.io import write_dataset

    ids = set(base_tables["accounts"]["account_id"].iloc[:400])
    tables = {
        t: df[df["account_id"].isin(ids)].reset_index(drop=True) for t, df in base_tables.items() if df is not None
    }
    folder = tmp_path_factory.mktemp("small") / "data"
    write_dataset(tables, folder)
    return tables, folder


@pytest.fixture(scope="session")
def pg_base(pg, small):
    """That base as schema ``base``, with typed columns."""
    load_base(pg.uri, "base", small[0])
    return "base"


def _run(**over) -> Run:
    return Run(load_config(None, **over), echo=lambda m: None)


def _invoke(*args, env=None):
    return CliRunner(env=env).invoke(cli, [str(a) for a in args])


def _canary(pg) -> None:
    pg.sql("CREATE TABLE IF NOT EXISTS public.canary (x int)")


def _canary_alive(pg) -> bool:
    return bool(
        pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'canary'", fetch=True)[0][0]
    )


# --- reading --------------------------------------------------------------------------------------------
def test_a_base_read_from_postgres_gives_the_same_report_features_and_labels_as_from_files(pg, pg_base, small):
    run = _run(source=pg.uri, source_schema=pg_base)
    with run.open_dataset() as db, open_dataset(small[1]) as files:
        assert db.source == data_source(run.cfg) and pg.password not in db.source
        assert {t: r.n_rows for t, r in db.raw.items()} == {t: r.n_rows for t, r in files.raw.items()}
        assert db.check().violations == files.check().violations
        assert db.feature_columns == files.feature_columns and db.last_date() == files.last_date()
        pd.testing.assert_frame_equal(build_features(db, CUTOFFS), build_features(files, CUTOFFS))
        pd.testing.assert_frame_equal(make_labels(db, CUTOFFS), make_labels(files, CUTOFFS))
        assert all(r.path is None and r.format == "postgres" for r in db.raw.values())
    r = _invoke("validate", "--source", pg.uri, "--schema", pg_base)
    assert r.exit_code == 0, r.output
    assert "OK: 6 tables" in r.output and f"schema {pg_base}" in r.output and pg.password not in r.output


def test_views_and_a_warehouses_own_column_types_read_as_the_files_do(pg, small):
    """Views over tables; numeric money, text dates, naive timestamps, an enum, varchar keys, bigint counts."""
    schema = "typed views"
    pg.sql(
        "DO $$ BEGIN CREATE TYPE public.prio AS ENUM ('low', 'normal', 'high', 'urgent'); "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    load_base(
        pg.uri,
        schema,
        small[0],
        views=True,
        types={
            "accounts": {"signup_date": "text", "account_id": "varchar(20)"},
            "subscriptions": {"mrr": "numeric", "contract_end": "text"},
            "usage": {"events": "bigint", "feature_reports": "smallint"},
            "tickets": {"opened_at": "timestamp", "priority": "public.prio"},
        },
    )
    with _run(source=pg.uri, source_schema=schema).open_dataset() as db, open_dataset(small[1]) as files:
        kinds = {
            t: pg.sql(
                "SELECT table_type FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                (schema, t),
                fetch=True,
            )[0][0]
            for t in TABLES
        }
        assert set(kinds.values()) == {"VIEW"}
        assert db.raw["subscriptions"].columns["mrr"] == "DOUBLE" and db.raw["tickets"].columns["priority"] == "VARCHAR"
        assert db.check().ok, db.check().format()
        pd.testing.assert_frame_equal(
            build_features(db, CUTOFFS), build_features(files, CUTOFFS), check_exact=False, rtol=1e-12
        )


def test_only_the_contracts_columns_are_read(pg, base_tables):
    schema = "wide"
    acc = base_tables["accounts"].head(50).assign(plan_family="Pro", secret_notes="do not read")
    subs = base_tables["subscriptions"][base_tables["subscriptions"]["account_id"].isin(acc["account_id"])]
    load_base(pg.uri, schema, {"accounts": acc, "subscriptions": subs.assign(internal_margin=0.3)})
    with _run(
        source=pg.uri, source_schema=schema, **{"contract.account_attributes": ["plan_family"]}
    ).open_dataset() as ds:
        assert list(ds.raw["accounts"].columns) == [*base_tables["accounts"].columns, "plan_family"]
        assert "internal_margin" not in ds.raw["subscriptions"].columns
        assert ds.attribute_kinds() == {"plan_family": "string"}


def test_hostile_schema_table_and_column_names_execute_nothing(pg, base_tables):
    _canary(pg)
    drop = "; DROP TABLE public.canary; --"
    schema = f"we\"ird'{drop} %_\\"
    acc = base_tables["accounts"].head(40).copy()
    ids = set(acc["account_id"])
    small = {t: (df[df["account_id"].isin(ids)].copy() if df is not None else None) for t, df in base_tables.items()}
    small["accounts"] = acc.assign(**{f'plan"){drop}': "Pro"})
    evil = f'feature_x"{drop}'
    small["usage"] = small["usage"].assign(**{evil: 7})
    load_base(pg.uri, schema, small)
    pg.sql(f'CREATE TABLE "{schema.replace(chr(34), chr(34) * 2)}"."accounts""{drop}" (account_id text)')
    with _run(
        source=pg.uri, source_schema=schema, **{"contract.account_attributes": [f'plan"){drop}']}
    ).open_dataset() as ds:
        assert evil in ds.feature_columns and ds.attribute_kinds() == {f'plan"){drop}': "string"}
        assert ds.usage[evil].eq(7).all()
        assert len(build_features(ds, ["2026-01-01"]))
    assert _canary_alive(pg)
    r = _invoke("validate", "--source", pg.uri, "--schema", schema)
    assert r.exit_code == 0 and _canary_alive(pg), r.output


def _broken(tables: dict) -> dict:
    """A base breaking several rules (negative MRR, unknown priority, a duplicate usage day, an out-of-range
    CES, a missing signup date)."""
    t = {k: (v.copy() if v is not None else None) for k, v in tables.items()}
    t["subscriptions"].loc[t["subscriptions"].index[:2], "mrr"] = -5.0
    t["tickets"].loc[t["tickets"].index[:3], "priority"] = "P1"
    t["usage"] = pd.concat([t["usage"], t["usage"].head(1)], ignore_index=True)
    s = t["surveys"]
    t["surveys"].loc[s.index[s["kind"] == "CES"][:2], "score"] = 9.0
    t["accounts"].loc[t["accounts"].index[:1], "signup_date"] = pd.NaT
    return t


def test_validation_names_the_same_table_column_rule_and_rows_as_for_files(pg, small, tmp_path):
    from churnml.io import write_dataset

    tables = _broken(small[0])
    write_dataset(tables, tmp_path / "broken")
    load_base(pg.uri, "broken", tables)
    with (
        _run(source=pg.uri, source_schema="broken").open_dataset(validate=False) as db,
        open_dataset(tmp_path / "broken", validate=False) as files,
    ):
        a, b = db.check(), files.check()
    assert not a.ok and len(a.errors) >= 5
    shown = [(v.table, v.column, v.rule, v.n_rows, v.message, v.severity) for v in a.violations]
    assert shown == [(v.table, v.column, v.rule, v.n_rows, v.message, v.severity) for v in b.violations]
    neg = next(v for v in a.errors if v.rule == "min" and v.column == "mrr")
    assert neg.examples == next(v for v in b.errors if v.rule == "min" and v.column == "mrr").examples
    r = _invoke("validate", "--source", pg.uri, "--schema", "broken")
    assert r.exit_code == 1 and "ERROR subscriptions.mrr: 2 rows are below 0" in r.output
    assert "ERROR tickets.priority: 3 rows are not one of low, normal, high, urgent" in r.output
    r = _invoke("features", "--source", pg.uri, "--schema", "broken", "--out", tmp_path / "f.parquet")
    assert r.exit_code == 2 and "schema broken breaks the data contract" in r.output and "Traceback" not in r.output


def test_a_missing_table_column_or_schema_is_a_clear_error(pg, base_tables):
    acc, subs = base_tables["accounts"].head(30), base_tables["subscriptions"]
    load_base(pg.uri, "no_subs", {"accounts": acc, "Subscriptions": None})
    pg.sql('CREATE TABLE no_subs."Subscriptions" (account_id text)')
    r = _invoke("validate", "--source", pg.uri, "--schema", "no_subs")
    assert r.exit_code == 1
    assert (
        "ERROR subscriptions: required table missing (no table or view subscriptions in schema no_subs; "
        "'Subscriptions' exists, but names are case-sensitive)"
    ) in r.output
    load_base(
        pg.uri,
        "no_mrr",
        {
            "accounts": acc,
            "subscriptions": subs.drop(columns=["mrr"]),
            "usage": base_tables["usage"].head(100).drop(columns=["events"]),
        },
    )
    r = _invoke("validate", "--source", pg.uri, "--schema", "no_mrr")
    assert r.exit_code == 1 and "ERROR subscriptions.mrr: required column is missing" in r.output
    assert "ERROR usage.events: required column is missing" in r.output
    r = _invoke("validate", "--source", pg.uri, "--schema", "nowhere")
    assert r.exit_code == 2 and "error: schema 'nowhere' does not exist in postgresql:///postgres?host=" in r.output
    pg.sql("CREATE SCHEMA IF NOT EXISTS locked")
    pg.sql("DROP TABLE IF EXISTS locked.accounts")
    pg.sql("CREATE TABLE locked.accounts (account_id text, name text, signup_date date)")
    pg.sql("DROP ROLE IF EXISTS reader")
    pg.sql(f"CREATE ROLE reader LOGIN PASSWORD '{pg.password}'")
    pg.sql("GRANT USAGE ON SCHEMA locked TO reader")
    reader = pg.uri.replace(f"{pg.user}:", "reader:")
    r = _invoke("validate", "--source", reader, "--schema", "locked")
    assert (
        r.exit_code == 1
        and "ERROR accounts: cannot read locked.accounts: permission denied for table accounts" in r.output
        and "subscriptions: required table missing" in r.output
    )
    assert pg.password not in r.output


def test_credentials_come_from_the_uri_pgpassword_or_a_service_file_and_are_never_shown(pg, pg_base, tmp_path):
    r = _invoke("validate", "--source", pg.uri_without_password, "--schema", pg_base, env={"PGPASSWORD": pg.password})
    assert r.exit_code == 0, r.output
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[churnml_test]\nhost={pg.dir}\nuser={pg.user}\ndbname=postgres\n")
    r = _invoke(
        "validate",
        "--source",
        "postgresql:///?service=churnml_test",
        "--schema",
        pg_base,
        env={"PGSERVICEFILE": str(services), "PGPASSWORD": pg.password},
    )
    assert r.exit_code == 0 and "postgresql:///?service=churnml_test schema base" in r.output, r.output
    wrong = pg.uri.replace(pg.password, "Wr0ng%40pass")
    r = _invoke("validate", "--source", wrong, "--schema", pg_base)
    assert r.exit_code == 2 and 'password authentication failed for user "churnml"' in r.output
    assert "Wr0ng" not in r.output and pg.password not in r.output and "Traceback" not in r.output
    r = _invoke("validate", "--source", pg.uri.replace("postgresql", "snowflake"), "--schema", pg_base)
    assert r.exit_code == 2 and "must be a postgresql:// URI" in r.output and pg.password not in r.output
    r = _invoke("validate", "--source", pg.uri, "--data-dir", tmp_path)
    assert r.exit_code == 2 and "--data-dir or --source, not both" in r.output
    r = _invoke("features", "--source", pg.uri, "--schema", pg_base, "--engine", "spark")
    assert r.exit_code == 2 and "--engine spark reads a data folder" in r.output
    cfg = load_config(None, source=pg.uri, source_schema=pg_base)
    assert pg.password not in json.dumps(cfg.model_dump(mode="json")) and pg.password not in repr(cfg)
    assert base_id(cfg) == pg_base == base_id(load_config(None, source=pg.uri_without_password, source_schema=pg_base))


@pytest.mark.parametrize(
    "uri, place, masked",
    [
        (
            "postgresql://ana:s3cr%40t@db.internal:6432/shop?sslmode=require&password=x2y",
            "postgresql://db.internal:6432/shop",
            "postgresql://ana:***@db.internal:6432/shop?sslmode=require&password=***",
        ),
        (
            "postgres://ana@/shop?host=/var/run/postgresql&application_name=cron",
            "postgresql:///shop?host=/var/run/postgresql",
            "postgres://ana@/shop?host=/var/run/postgresql&application_name=cron",
        ),
        ("postgresql:///?service=warehouse", "postgresql:///?service=warehouse", "postgresql:///?service=warehouse"),
    ],
)
def test_a_database_is_named_without_its_credentials(uri, place, masked):
    from churnml.io.database import database_place, mask_uri, scrub

    assert database_place(uri) == place and mask_uri(uri) == masked
    said = scrub(f"cannot use {uri}: password s3cr@t (s3cr%40t) or x2y was refused", uri)
    secret = "s3cr" in uri
    assert said.startswith(f"cannot use {masked}: ") and ("s3cr" in said) != secret and ("x2y" in said) != secret


# --- publishing -----------------------------------------------------------------------------------------
def _score_run(
    out: Path,
    *,
    as_of: str,
    version: str = "3",
    accounts: int = 40,
    seed: int = 0,
    name_of=None,
    forecast: bool = False,
    base: str = "acme-1234abcd",
) -> Path:
    """A score run's folder as `churnml score` leaves it (the columns publish relies on, real dtypes), and
    its rows added to the base's ledger."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:05d}" for i in range(accounts)]
    run_id = f"run{seed:09d}"
    scored_at = pd.Timestamp("2026-11-02 08:00:00") + pd.Timedelta(minutes=seed)
    p = rng.uniform(0, 1, accounts)
    scores = pd.DataFrame(
        {
            "account_id": ids,
            "name": [name_of(i) if name_of else f"Co {i}" for i in range(accounts)],
            "segment": "SMB",
            "csm_owner": "ana",
            "as_of": pd.Timestamp(as_of),
            "churn_probability": p / 2,
            "risk_probability": p,
            "risk_tier": np.where(p > 0.3, "high", "low"),
            "arr": 12_000.0,
            "days_to_renewal": np.where(np.arange(accounts) % 3, 40.0, np.nan),
            "renewal_date": pd.to_datetime(np.where(np.arange(accounts) % 3, "2026-12-10", None)),
            "model_name": "churnml",
            "model_version": version,
            "scored_at": scored_at,
            "run_id": run_id,
            "top_driver": "Active users per seat (7 days): 0.02",
            "backfill": False,
            "what_changed": "first score",
        }
    )
    drivers = pd.DataFrame(
        {
            "account_id": np.repeat(ids, 2),
            "target": "churn",
            "rank": np.tile([1, 2], accounts),
            "direction": "raises",
            "family": "usage",
            "feature": "active_users_per_seat_7d",
            "value": 0.02,
            "points": np.repeat(p / 10, 2),
            "text": "fell",
            "play_id": "",
            "play": "",
        }
    )
    ledger = scores[
        [
            "run_id",
            "scored_at",
            "as_of",
            "account_id",
            "model_name",
            "model_version",
            "churn_probability",
            "risk_probability",
            "risk_tier",
            "backfill",
        ]
    ].assign(reason_1_feature="active_users_per_seat_7d", reason_1_points=p / 10)
    folder = out / f"scores-{seed}"
    folder.mkdir(parents=True)
    scores.to_parquet(folder / "scores.parquet")
    drivers.to_parquet(folder / "drivers.parquet")
    ledger.to_parquet(folder / "ledger_part.parquet")
    if forecast:
        pd.DataFrame(
            {
                "group_by": ["all", "segment", "segment"],
                "group": ["all", "SMB", "Enterprise"],
                "start_arr": [480_000.0, 400_000.0, 80_000.0],
                "expected_arr": [450_000.0, 370_000.0, 80_000.0],
                "expected_nrr": [0.94, 0.925, 1.0],
                "horizon_days": 365,
            }
        ).to_parquet(folder / "forecast.parquet")
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "base": base,
                "as_of": as_of,
                "scored_at": f"{scored_at:%Y-%m-%dT%H:%M:%S}",
                "model_name": "churnml",
                "model_version": version,
                "accounts": accounts,
                "data_dir": "data/acme",
            }
        )
    )
    (out / "ledger" / base).mkdir(parents=True, exist_ok=True)
    ledger.to_parquet(out / "ledger" / base / f"part-{scored_at:%Y%m%dT%H%M%S}-{run_id}.parquet")
    return folder


def _publish(pg, schema: str, folder: Path, out: Path):
    from churnml.flows.publish import run_publish

    return run_publish(_run(output_dir=out), to=pg.uri, schema=schema, scores=folder)


def _table(pg, schema: str, name: str) -> pd.DataFrame:
    import adbc_driver_postgresql.dbapi as db

    with db.connect(pg.uri) as con, con.cursor() as cur:
        cur.execute(f"SELECT xmin::text AS xmin, * FROM {quote_ident(schema)}.{quote_ident(name)} ORDER BY row_key")
        return cur.fetch_arrow_table().to_pandas()


def _counts(result) -> dict:
    return {w.name: (w.inserted, w.updated, w.unchanged) for w in result.written}


def test_publishing_twice_keeps_one_row_per_key_and_changes_nothing(pg, tmp_path):
    out = tmp_path / "outputs"
    first = _score_run(out, as_of="2026-08-01", accounts=40, seed=1)
    res = _publish(pg, "crm", first, out)
    assert _counts(res) == {"churnml_scores": (40, 0, 0), "churnml_drivers": (80, 0, 0), "churnml_ledger": (40, 0, 0)}
    before = {t: _table(pg, "crm", t) for t in ("churnml_scores", "churnml_drivers", "churnml_ledger")}
    res = _publish(pg, "crm", first, out)
    assert _counts(res) == {"churnml_scores": (0, 0, 40), "churnml_drivers": (0, 0, 80), "churnml_ledger": (0, 0, 40)}
    for t, df in before.items():  # not a row rewritten: the same row versions (xmin)
        pd.testing.assert_frame_equal(_table(pg, "crm", t), df)
    s = before["churnml_scores"]
    assert s["row_key"].iloc[0] == "2026-08-01|3|A00000" and s["risk_probability"].notna().all()
    # a rerun of the same model on the same day replaces its rows; a new day adds rows; one row per key
    rerun = _score_run(out, as_of="2026-08-01", accounts=40, seed=2)
    res = _publish(pg, "crm", rerun, out)
    assert _counts(res)["churnml_scores"] == (0, 40, 0) and _counts(res)["churnml_ledger"] == (0, 40, 0)
    res = _publish(pg, "crm", _score_run(out, as_of="2026-09-01", accounts=45, seed=3), out)
    assert _counts(res)["churnml_scores"] == (45, 0, 0) and _counts(res)["churnml_ledger"] == (45, 0, 40)
    n, keys = pg.sql(
        "SELECT count(*), count(DISTINCT (account_id, as_of, model_version)) FROM crm.churnml_scores", fetch=True
    )[0]
    assert n == keys == 85
    ledger = _table(pg, "crm", "churnml_ledger")
    assert len(ledger) == 85 and set(ledger.loc[ledger["as_of"] == pd.Timestamp("2026-08-01").date(), "run_id"]) == {
        "run000000002"
    }
    # declared types, the key as primary key (never null)
    types = dict(
        pg.sql(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'crm' "
            "AND table_name = 'churnml_scores'",
            fetch=True,
        )
    )
    assert types["as_of"] == "date" and types["renewal_date"] == "date" and types["account_id"] == "text"
    assert types["risk_probability"] == "double precision" and types["backfill"] == "boolean"
    assert types["scored_at"] == "timestamp without time zone"
    pk = pg.sql(
        "SELECT string_agg(a.attname, ',' ORDER BY array_position(c.conkey, a.attnum)) FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.conrelid = 'crm.churnml_scores'::regclass AND c.contype = $1 GROUP BY c.oid",
        ("p",),
        fetch=True,
    )
    assert pk == [("as_of,model_version,account_id",)]
    for t in ("churnml_scores", "churnml_drivers", "churnml_ledger"):  # the one-column key: never empty, unique
        assert (
            pg.sql(f"SELECT count(*), count(DISTINCT row_key) FROM crm.{t}", fetch=True)[0]
            == (pg.sql(f"SELECT count(*) FROM crm.{t}", fetch=True)[0][0],) * 2
        )
        assert pg.sql(
            "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'crm' AND "
            "table_name = $1 AND column_name = 'row_key'",
            (t,),
            fetch=True,
        ) == [("NO",)]


def test_the_forecast_is_published_when_the_run_has_one(pg, tmp_path):
    out = tmp_path / "outputs"
    _publish(pg, "fc", _score_run(out, as_of="2026-08-01", seed=1), out)
    assert not pg.sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'fc' AND table_name = 'churnml_forecast'",
        fetch=True,
    )[0][0]
    res = _publish(pg, "fc", _score_run(out, as_of="2026-09-01", seed=2, forecast=True), out)
    assert _counts(res)["churnml_forecast"] == (3, 0, 0)
    f = _table(pg, "fc", "churnml_forecast")
    assert f["row_key"].tolist() == [
        "2026-09-01|3|all|all",
        "2026-09-01|3|segment|Enterprise",
        "2026-09-01|3|segment|SMB",
    ]
    assert f["expected_nrr"].tolist() == [0.94, 1.0, 0.925]


def test_text_in_scores_and_a_hostile_target_schema_are_data_never_sql(pg, tmp_path):
    _canary(pg)
    drop = "'); DROP TABLE public.canary; --"
    schema = f'crm"{drop}'
    out = tmp_path / "outputs"
    names = [f"Robert{drop}", "Ünïcode & <b>", 'O\'Brien "Ltd"', "$1 $$ \\x00", ""]
    res = _publish(pg, schema, _score_run(out, as_of="2026-08-01", accounts=5, seed=1, name_of=lambda i: names[i]), out)
    assert _counts(res)["churnml_scores"] == (5, 0, 0) and _canary_alive(pg)
    assert _table(pg, schema, "churnml_scores")["name"].tolist() == names


def test_the_source_schema_is_never_written(pg, pg_base, tmp_path):
    out = tmp_path / "outputs"
    folder = _score_run(out, as_of="2026-08-01", seed=1)
    before = pg.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", (pg_base,), fetch=True)
    r = _invoke("publish", "--to", pg.uri, "--schema", pg_base, "--scores", folder, "--output-dir", out)
    assert r.exit_code == 2 and f"schema {pg_base} of postgresql:///postgres?host=" in r.output
    assert "holds accounts, milestones, subscriptions, surveys, tickets, usage" in r.output
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(
        json.dumps(
            {**manifest, "data_dir": data_source(load_config(None, source=pg.uri, source_schema="empty_source"))}
        )
    )
    r = _invoke("publish", "--to", pg.uri, "--schema", "empty_source", "--scores", folder, "--output-dir", out)
    assert r.exit_code == 2 and "is where the base is read from: churnml never writes its source" in r.output
    assert (
        pg.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", (pg_base,), fetch=True)
        == before
    )
    assert not pg.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'empty_source'", fetch=True)[0][0]
    assert pg.password not in r.output


def test_a_publish_that_fails_half_way_writes_nothing(pg, tmp_path):
    out = tmp_path / "outputs"
    _publish(pg, "half", _score_run(out, as_of="2026-08-01", seed=1), out)
    before = {t: _table(pg, "half", t) for t in ("churnml_scores", "churnml_drivers")}
    pg.sql("ALTER TABLE half.churnml_ledger ALTER COLUMN risk_tier TYPE integer USING 0")
    r = _invoke(
        "publish",
        "--to",
        pg.uri,
        "--schema",
        "half",
        "--output-dir",
        out,
        "--scores",
        _score_run(out, as_of="2026-09-01", seed=2),
    )
    assert (
        r.exit_code == 2
        and "half.churnml_ledger exists with other column types: risk_tier (integer, not text)" in r.output
    )
    for t, df in before.items():  # the scores and drivers written before the ledger failed were rolled back
        pd.testing.assert_frame_equal(_table(pg, "half", t), df)


def _wait(what: str, check, seconds: float = 60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        v = check()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow  # a churnml process started (its imports: some seconds) and killed
def test_a_kill_inside_the_publish_transaction_leaves_the_previous_tables_whole(pg, tmp_path):
    """SIGKILL of `churnml publish` while its transaction has written the scores and the drivers and waits
    for the ledger's table (held by a lock this test takes): the tables stay as the previous publish left
    them, and they take the next publish."""
    import adbc_driver_postgresql.dbapi as db

    out = tmp_path / "outputs"
    _publish(pg, "killed", _score_run(out, as_of="2026-08-01", seed=1), out)
    names = ("churnml_scores", "churnml_drivers", "churnml_ledger")
    before = {t: _table(pg, "killed", t) for t in names}
    second = _score_run(out, as_of="2026-09-01", seed=2)
    lock = db.connect(pg.uri)
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE killed.churnml_ledger IN ACCESS EXCLUSIVE MODE")
        env = {**os.environ, "PGAPPNAME": "churnml-killed"}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "churnml",
                "publish",
                "--to",
                pg.uri,
                "--schema",
                "killed",
                "--scores",
                str(second),
                "--output-dir",
                str(out),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def inside():  # waiting on the lock, with its writes to the scores table done (row locks held)
                rows = pg.sql(
                    "SELECT a.pid FROM pg_stat_activity a WHERE a.application_name = 'churnml-killed' AND "
                    "a.wait_event_type = 'Lock' AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND "
                    "l.granted AND l.mode = 'RowExclusiveLock' AND l.relation = 'killed.churnml_drivers'::regclass)",
                    fetch=True,
                )
                return rows[0][0] if rows else None

            backend = _wait("the publisher inside its transaction", inside)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        lock.rollback()
        lock.close()
    _wait(
        "the killed publisher's backend to end",
        lambda: not pg.sql("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", (backend,), fetch=True)[0][0],
    )
    for t in names:
        pd.testing.assert_frame_equal(_table(pg, "killed", t), before[t])
    res = _publish(pg, "killed", second, out)
    assert _counts(res)["churnml_scores"] == (40, 0, 0)


# --- the whole flow, with a model ---------------------------------------------------------------------------
@pytest.mark.slow
def test_train_score_and_publish_from_postgres_match_the_files_and_never_leak_the_password(pg, tmp_path):
    from churnml import tracking
    from churnml.flows.publish import run_publish
    from churnml.flows.score import run_scoring
    from churnml.flows.train import run_training
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    tables = generate(GeneratorConfig(accounts=700, seed=3, years=2.5))
    write_dataset(tables, tmp_path / "data")
    load_base(pg.uri, "shop", tables)
    common = {
        "mlflow.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "mlflow.artifact_root": str(tmp_path / "artifacts"),
        "mlflow.model_name": "wh",
        "train.folds": 2,
        "train.tuned_params_file": str(tmp_path / "none.json"),
        "scoring.playbook_file": str(ROOT / "configs" / "playbooks.yaml"),
    }
    db = load_config(None, source=pg.uri, source_schema="shop", output_dir=str(tmp_path / "out_db"), **common)
    files = load_config(None, data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "out_files"), **common)
    trained = run_training(Run(db, echo=lambda m: None))
    a, _ = run_scoring(Run(db, echo=lambda m: None), as_of="2026-08-01")
    b, _ = run_scoring(Run(files, echo=lambda m: None), as_of="2026-08-01")
    skip = ["run_id", "scored_at"]
    pd.testing.assert_frame_equal(a.scores.drop(columns=skip), b.scores.drop(columns=skip))
    pd.testing.assert_frame_equal(a.drivers, b.drivers)
    tracking.configure(db.mlflow.tracking_uri, db.mlflow.experiment)
    import mlflow

    r = mlflow.get_run(trained.run_id)
    assert r.data.params["data_dir"] == data_source(db) == f"postgresql:///postgres?host={pg.dir} schema shop"
    assert len(r.data.tags["data_fingerprint"]) == 16
    assert json.loads(r.inputs.dataset_inputs[0].dataset.source)["tags"]["database"].endswith("#shop")
    res = run_publish(Run(db, echo=lambda m: None), to=pg.uri, schema="churnml")
    assert _counts(res)["churnml_scores"] == (len(a.scores), 0, 0)
    got = _table(pg, "churnml", "churnml_scores").set_index("account_id")
    want = a.scores.set_index("account_id")
    assert np.allclose(got.loc[want.index, "risk_probability"], want["risk_probability"])
    assert (got["as_of"] == pd.Timestamp("2026-08-01").date()).all()
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and pg.password.encode() in p.read_bytes()]
    assert leaks == []
