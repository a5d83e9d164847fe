"""Contract v1.1 on literal bases: an end that is not churn (`end_kind = completed`) and declared
account attributes as model inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.api import open_dataset
from churnml.dataset import Dataset
from churnml.features import build_features
from churnml.labels import make_labels

D = pd.Timestamp
T = "2025-01-01"  # cutoff; with H = 90 the window is [2025-01-01, 2025-04-01)


def _accounts(ids, **extra):
    a = pd.DataFrame(
        {
            "account_id": ids,
            "name": ids,
            "segment": "SMB",
            "signup_date": pd.to_datetime(["2024-01-01"] * len(ids)).astype("datetime64[us]"),
        }
    )
    return a.assign(**extra)


def _subs(rows):
    s = pd.DataFrame(rows, columns=["account_id", "effective_date", "mrr", "end_kind"])
    s["effective_date"] = pd.to_datetime(s["effective_date"]).astype("datetime64[us]")
    s["seats"] = 5
    s["contract_end"] = pd.NaT
    return s


def _base(rows, accounts=None, **kw):
    accounts = accounts if accounts is not None else _accounts(sorted({r[0] for r in rows}))
    return Dataset.from_frames({"accounts": accounts, "subscriptions": _subs(rows)}, last_date="2025-12-31", **kw)


def test_a_completed_end_is_never_churn_and_the_account_leaves_the_population():
    rows = [
        ("C", "2024-01-01", 100, None),
        ("C", "2025-02-01", 0, "completed"),  # a fixed term ran its course
        ("X", "2024-01-01", 100, None),
        ("X", "2025-02-01", 0, "churned"),  # a churn, said explicitly
        ("Y", "2024-01-01", 100, None),
        ("Y", "2025-02-01", 0, None),
    ]  # a churn, end_kind empty
    with _base(rows) as ds:
        assert ds.require_valid().ok
        y = make_labels(ds, [T, "2025-03-01"])
        c = y.loc[("C", D(T))]
        assert c["eligible"] and not c["churned_90d"] and not c["expanded_90d"] and c["days_to_churn"] == 90
        assert bool(y.loc[("X", D(T)), "churned_90d"]) and bool(y.loc[("Y", D(T)), "churned_90d"])
        assert y.loc[("X", D(T)), "days_to_churn"] == 31
        # after the end the account is not paying: no label, no feature row, never scored
        assert not y.loc[("C", D("2025-03-01")), "eligible"]
        X = build_features(ds, ["2025-03-01"])
        assert X.empty


def test_a_completed_end_then_a_new_contract_is_not_a_previous_churn():
    rows = [
        ("C", "2024-01-01", 100, None),
        ("C", "2024-06-01", 0, "completed"),
        ("C", "2024-09-01", 80, None),
        ("X", "2024-01-01", 100, None),
        ("X", "2024-06-01", 0, None),
        ("X", "2024-09-01", 80, None),
    ]
    with _base(rows) as ds:
        X = build_features(ds, [T]).droplevel("cutoff")
    assert X.loc["C", "previous_churns"] == 0 and X.loc["X", "previous_churns"] == 1


def test_end_kind_values_are_checked():
    rows = [("C", "2024-01-01", 100, "completed"), ("C", "2025-02-01", 0, "finished")]
    with _base(rows) as ds:
        report = ds.check()
    (err,) = report.errors
    assert (err.table, err.column, err.rule, err.n_rows) == ("subscriptions", "end_kind", "allowed", 1)
    assert "not one of churned, completed" in str(err)
    (warn,) = report.warnings  # an end_kind on a paying row means nothing
    assert warn.column == "end_kind" and warn.n_rows == 1


def test_declared_attributes_become_inputs_text_as_categories_numbers_as_numbers():
    rows = [(a, "2024-01-01", 100, None) for a in ("A1", "A2", "A3")]
    acc = _accounts(
        ["A1", "A2", "A3"], plan_family=["Core", "Plus", None], employees=["12", "250", ""], notes=["x", "y", "z"]
    )
    with _base(rows, accounts=acc, attributes=("plan_family", "employees")) as ds:
        assert ds.attribute_kinds() == {"plan_family": "string", "employees": "float"}
        X = build_features(ds, [T]).droplevel("cutoff")
    assert "notes" not in X.columns  # not declared: ignored
    assert X.loc["A1", "plan_family"] == "Core" and pd.isna(X.loc["A3", "plan_family"])
    assert X["employees"].dtype == "float64" and X.loc["A2", "employees"] == 250
    assert np.isnan(X.loc["A3", "employees"])
    from churnml.features import indicators_for

    with _base(rows, accounts=acc, attributes=("plan_family", "employees")) as ds:
        defs = {i.name: i for i in indicators_for(ds.context())}
    assert defs["plan_family"].kind == "categorical" and defs["employees"].kind == "numeric"
    assert defs["plan_family"].risk == "context"


def test_a_declared_attribute_missing_from_the_table_is_an_error():
    rows = [("A1", "2024-01-01", 100, None)]
    with _base(rows, attributes=("country",)) as ds:
        (err,) = ds.check().errors
    assert (err.table, err.column, err.rule) == ("accounts", "country", "attribute")


def test_attribute_names_never_become_sql(tmp_path):
    rows = [("A1", "2024-01-01", 100, None), ("A2", "2024-01-01", 100, None)]
    evil = 'x") AS a0; DROP TABLE pop; --'
    acc = _accounts(["A1", "A2"], **{evil: ["a", "b"]})
    with _base(rows, accounts=acc, attributes=(evil,)) as ds:
        X = build_features(ds, [T]).droplevel("cutoff")
    assert X.loc["A2", evil] == "b"


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo"])
def test_dates_are_dates_even_when_a_parquet_file_stores_them_zoned(tmp_path, tz):
    """A date stored as a zoned midnight keeps its calendar day (it must not move to the UTC day)."""
    d = tmp_path / "base"
    d.mkdir()
    days = pd.to_datetime(["2024-01-01", "2024-03-01"])
    pd.DataFrame({"account_id": ["A1", "A2"], "name": ["a", "b"], "signup_date": days.tz_localize(tz)}).to_parquet(
        d / "accounts.parquet"
    )
    pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "effective_date": days.tz_localize(tz),
            "mrr": [10.0, 20.0],
            "opened": pd.to_datetime(["2024-01-01 23:30", "2024-03-01 00:30"]).tz_localize(tz),
        }
    ).to_parquet(d / "subscriptions.parquet")
    with open_dataset(d) as ds:
        subs = ds.subscriptions
    assert subs["effective_date"].tolist() == list(days)


def test_an_attribute_named_like_a_contract_column_or_an_indicator_is_refused():
    from churnml.errors import ChurnmlError

    rows = [("A1", "2024-01-01", 100, None)]
    with _base(rows, attributes=("segment",)) as ds:
        (err,) = ds.check().errors
    assert err.column == "segment" and "contract column" in err.message
    acc = _accounts(["A1"], mrr=["5"])
    with (
        _base(rows, accounts=acc, attributes=("mrr",)) as ds,
        pytest.raises(ChurnmlError, match="name of a churnml indicator"),
    ):
        build_features(ds, [T])
