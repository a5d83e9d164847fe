"""The worked real example: UCI Online Retail invoice lines mapped to the data contract.

Golden facts of the mapping on a few literal invoice lines (fast), and the whole
shared file mapped, validated and cut at the reference cutoff (slow; skipped when
the file is absent).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "online_retail"
SHARED_REL = Path("shared/data/online_retail/online_retail_invoice_lines.parquet")
SHA256 = "5e9e379f6d1407ba441543a25b759317ebd30fb3214f0b3d8c4f8c091a50378e"


def _load(name: str):
    mod_name = f"online_retail_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, EXAMPLE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def m():
    return _load("map_to_contract")


@pytest.fixture(scope="module")
def cmp():
    return _load("compare")


def _line(inv, code, qty, ts, price, cust, country="United Kingdom"):
    return {
        "InvoiceNo": inv,
        "StockCode": code,
        "Description": f"item {code}",
        "Quantity": float(qty),
        "InvoiceDate": pd.Timestamp(ts),
        "UnitPrice": float(price),
        "CustomerID": float(cust) if cust is not None else None,
        "Country": country,
    }


# Customer 100: two orders on 2011-01-10 (one line duplicated, one free line), an order on
# 2011-02-15, a return on 2011-02-20, then silence until 2011-07-01.
# Customer 200 (France): a large first order on 2011-03-03, back on 2011-11-20 and 2011-12-09.
# Customer 300: only a return (of something bought before the data starts).
LINES = [
    _line("500001", "85123A", 10, "2011-01-10 10:00", 2.5, 100),
    _line("500001", "85123A", 10, "2011-01-10 10:00", 2.5, 100),  # exact duplicate
    _line("500001", "71053", 5, "2011-01-10 10:00", 15.0, 100),
    _line("500002", "22423", 1, "2011-01-10 11:30", 50.0, 100),
    _line("500002", "22424", 1, "2011-01-10 11:30", 0.0, 100),  # zero price: not a purchase
    _line("500003", "22423", 3, "2011-01-10 12:00", 50.0, None),  # no CustomerID
    _line("500010", "22423", 4, "2011-02-15 09:00", 25.0, 100),
    _line("C500011", "22423", -2, "2011-02-20 14:00", 25.0, 100),
    _line("500020", "21212", 100, "2011-03-03 08:00", 12.0, 200, "France"),
    _line("C500021", "M", -1, "2011-04-04 10:00", 9.0, 300),
    _line("500050", "84879", 1, "2011-07-01 16:00", 300.0, 100),
    _line("500090", "21212", 1, "2011-11-20 10:00", 10.0, 200, "France"),
    _line("500099", "21212", 2, "2011-12-09 12:00", 5.0, 200, "France"),
]


@pytest.fixture(scope="module")
def lines():
    return pd.DataFrame(LINES)


@pytest.fixture(scope="module")
def mapped(m, lines):
    return m.map_lines(lines)


def _rows(df, account):
    return [tuple(r) for r in df[df["account_id"] == account].drop(columns="account_id").itertuples(index=False)]


def test_report_counts_what_was_dropped(mapped):
    _, rep = mapped
    assert (rep.lines_in, rep.duplicate_lines, rep.lines_without_customer, rep.other_lines_dropped) == (13, 1, 1, 1)
    assert (rep.purchase_lines, rep.return_lines) == (8, 2)
    assert (rep.customers_without_purchase, rep.tickets_of_customers_without_purchase) == (1, 1)


def test_accounts_are_customers_with_a_purchase_and_static_attributes_known_at_signup(mapped):
    t, _ = mapped
    assert t["accounts"].to_dict("records") == [
        {
            "account_id": "100",
            "name": "Customer 100",
            "segment": "small first order",
            "region": "United Kingdom",
            "signup_date": "2011-01-10",
            "country": "United Kingdom",
            "first_order_gbp": 100.0,
        },
        {
            "account_id": "200",
            "name": "Customer 200",
            "segment": "large first order",
            "region": "France",
            "signup_date": "2011-03-03",
            "country": "France",
            "first_order_gbp": 1200.0,
        },
    ]


def test_mrr_is_trailing_spend_and_churn_is_dated_when_known(mapped):
    subs = mapped[0]["subscriptions"]
    third = 100 / 3
    got = [(d, round(v, 6), k) for d, v, k in _rows(subs, "100")]
    assert got == [
        ("2011-01-10", 50.0, None),  # 150 GBP that day x 30/90
        ("2011-02-01", 50.0, None),
        ("2011-03-01", round(250 / 3, 6), None),  # the return of 2011-02-20 does not lower MRR
        ("2011-04-01", round(250 / 3, 6), None),
        ("2011-05-01", round(third, 6), None),  # 2011-01-10 left the 90-day window
        ("2011-05-16", 0.0, "churned"),  # last purchase 2011-02-15 + 90 days, not back-dated
        ("2011-07-01", 100.0, None),  # back: a new paying period
        ("2011-08-01", 100.0, None),
        ("2011-09-01", 100.0, None),
        ("2011-09-29", 0.0, "churned"),
    ]
    got = [(d, round(v, 6), k) for d, v, k in _rows(subs, "200")]
    assert got == [
        ("2011-03-03", 400.0, None),
        ("2011-04-01", 400.0, None),
        ("2011-05-01", 400.0, None),
        ("2011-06-01", 0.0, "churned"),  # a month start on the churn day carries only the churn row
        ("2011-11-20", round(10 / 3, 6), None),
        ("2011-12-01", round(10 / 3, 6), None),
        # 2011-12-09 is the last day of the data: its churn day is unobserved, so no churn row
    ]


def test_usage_counts_orders_and_lines_per_purchase_day(mapped):
    assert _rows(mapped[0]["usage"], "100") == [("2011-01-10", 2, 3), ("2011-02-15", 1, 1), ("2011-07-01", 1, 1)]


def test_returns_are_tickets_of_known_accounts(mapped):
    tk = mapped[0]["tickets"]
    assert tk.to_dict("records") == [
        {
            "ticket_id": "C500011",
            "account_id": "100",
            "opened_at": "2011-02-20T14:00:00",
            "closed_at": "2011-02-20T14:00:00",
            "priority": "normal",
            "category": "product return",
        }
    ]


def test_v1_output_has_only_v1_columns(m, lines):
    t, _ = m.map_lines(lines, contract="v1")
    assert list(t["subscriptions"].columns) == ["account_id", "effective_date", "mrr"]
    assert list(t["accounts"].columns) == ["account_id", "name", "segment", "region", "signup_date"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("contract", ["v1", "v1.1"])
def test_output_passes_the_contract_validator(m, lines, tmp_path, fmt, contract):
    from churnml.api import validate_dataset

    t, _ = m.map_lines(lines, contract=contract)
    m.write_tables(t, tmp_path / "out", fmt)
    report = validate_dataset(tmp_path / "out")
    assert report.ok, report.format()
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == sorted(
        f"{n}.{fmt}" for n in t
    )


def test_a_contract_error_writes_nothing(m, mapped, tmp_path):
    from churnml.errors import ContractError

    t = dict(mapped[0])
    t["usage"] = t["usage"].assign(events=-1)
    with pytest.raises(ContractError, match=r"usage\.events"):
        m.write_tables(t, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "as_of",
    [
        "2011-01-10",
        "2011-01-11",
        "2011-02-01",
        "2011-02-21",
        "2011-03-01",
        "2011-05-16",
        "2011-05-17",
        "2011-06-01",
        "2011-06-02",
        "2011-09-29",
        "2011-09-30",
        "2011-12-09",
    ],
)
def test_cutting_the_output_equals_mapping_the_lines_known_then(m, lines, mapped, as_of):
    """Every row dated d uses lines dated on or before d only: no row sees the future."""
    t = pd.Timestamp(as_of)
    known, _ = m.map_lines(lines[lines["InvoiceDate"] < t], end=t - pd.Timedelta(days=1))
    cut = m.cut_tables(mapped[0], t)
    assert set(known) == set(cut)
    for name in known:
        pd.testing.assert_frame_equal(known[name], cut[name], check_dtype=False)


def test_churn_is_not_known_before_its_day(m, mapped):
    subs = m.cut_tables(mapped[0], "2011-05-16")["subscriptions"]
    assert not (subs["mrr"] == 0).any()
    subs = m.cut_tables(mapped[0], "2011-05-17")["subscriptions"]
    assert subs.loc[subs["mrr"] == 0, ["account_id", "effective_date"]].values.tolist() == [["100", "2011-05-16"]]


def test_subscriptions_need_positive_inactive_days(m, lines):
    with pytest.raises(ValueError, match="inactive_days"):
        m.map_lines(lines, inactive_days=0)


def test_reference_frame_population_label_and_recency(cmp, lines):
    df = cmp.identified_lines(lines)
    f = cmp.rfm_frame(df, "2011-09-01")
    # 100 bought on 2011-07-01 16:00 and not after; 200 bought on 2011-03-03 and came back on 2011-11-20
    assert list(f.index) == ["100", "200"]
    assert f["churned"].tolist() == [1.0, 0.0]
    assert f["recency_days"].round(4).tolist() == [round(61 + 8 / 24, 4), round(181 + 16 / 24, 4)]
    assert f[["invoices_365d", "spend_365d", "returns_365d", "returned_value_365d"]].loc["100"].tolist() == [
        4.0,
        550.0,
        1.0,
        50.0,
    ]
    # the 90-day window of 2011-11-01 runs past the data (last day 2011-12-09): no label
    assert cmp.rfm_frame(df, "2011-11-01")["churned"].isna().all()


def test_evaluate_scores_counts_and_same_account_baselines(cmp):
    test = pd.DataFrame(
        {"cutoff": pd.Timestamp("2011-09-01"), "churned": [1.0, 0.0, 1.0, 0.0, 1.0], "recency": [50, 10, 5, 40, 300]},
        index=pd.Index(list("abcde"), name="account_id"),
    )
    ref = cmp.Reference(test, ("recency",), [], 0)
    risk = pd.Series([0.9, 0.1, 0.2, 0.8, 0.5], index=["a", "b", "c", "d", "z"], name="churn_probability")
    ev = cmp.evaluate_scores(ref, risk)
    assert (ev["population"], ev["scored_in_population"], ev["scored_outside_population"], ev["not_scored"]) == (
        5,
        4,
        1,
        1,
    )
    assert ev["not_scored_churn_rate"] == 1.0
    # scored: a (1, .9), b (0, .1), c (1, .2), d (0, .8): 3 of 4 pairs ordered right
    assert ev["churnml"]["roc_auc"] == pytest.approx(0.75)
    assert ev["baselines_on_scored"]["recency"]["roc_auc"] == pytest.approx(0.5)  # 50>10, 50>40, 5<10, 5<40
    assert ev["churnml_lapsed_first"]["n"] == 5


# --- the shared file ---------------------------------------------------------------------


def _shared_file() -> Path | None:
    env = os.environ.get("ONLINE_RETAIL_PARQUET")
    if env:
        return Path(env)
    for parent in ROOT.parents:
        if (parent / SHARED_REL).is_file():
            return parent / SHARED_REL
    return None


@pytest.fixture(scope="module")
def shared_lines():
    path = _shared_file()
    if path is None:
        pytest.skip(
            f"the UCI Online Retail file is absent: looked for {SHARED_REL} above {ROOT} "
            "(set ONLINE_RETAIL_PARQUET to its path)"
        )
    if not path.is_file():
        pytest.skip(f"the UCI Online Retail file is absent: ONLINE_RETAIL_PARQUET names {path}, which does not exist")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SHA256, f"{path} is not the documented file (sha256 {digest})"
    return pd.read_parquet(path)


@pytest.mark.slow
def test_shared_file_maps_validates_and_cuts(m, shared_lines, tmp_path):
    from churnml.api import validate_dataset

    tables, rep = m.map_lines(shared_lines)
    assert (rep.lines_in, rep.duplicate_lines, rep.lines_without_customer) == (541_909, 5_268, 135_037)
    assert rep.counts["accounts"] == 4_338
    m.write_tables(tables, tmp_path / "all")
    assert validate_dataset(tmp_path / "all").ok
    subs = tables["subscriptions"]
    assert (subs.loc[subs["end_kind"].isna(), "mrr"] > 0).all()
    assert subs["effective_date"].max() <= "2011-12-09"
    # as of the reference cutoff: exactly the reference population exists, and it equals mapping the lines known then
    t = pd.Timestamp("2011-09-01")
    cut = m.cut_tables(tables, t)
    assert len(cut["accounts"]) == 3_317
    known, _ = m.map_lines(shared_lines[shared_lines["InvoiceDate"] < t], end=t - pd.Timedelta(days=1))
    for name in known:
        pd.testing.assert_frame_equal(known[name], cut[name], check_dtype=False)
    m.write_tables(cut, tmp_path / "cut", "csv")
    assert validate_dataset(tmp_path / "cut").ok


@pytest.mark.slow
def test_shared_file_reproduces_the_reference_figures(cmp, shared_lines):
    ref = cmp.reference_baselines(shared_lines)
    figures = {k: v["roc_auc"] for k, v in ref.table().items()}
    assert ref.table()["recency"]["n"] == 3_317
    assert figures["recency"] == pytest.approx(0.684, abs=0.0005)  # README: 0.684
    assert figures["logistic"] == pytest.approx(0.743, abs=0.003)  # README: 0.743
    assert figures["lightgbm"] == pytest.approx(0.743, abs=0.005)  # README: 0.743


@pytest.mark.slow
def test_the_example_runs_end_to_end_and_is_judged_on_the_reference_question(m, cmp, shared_lines, tmp_path):
    """map -> validate -> train -> replay as of 2011-09-01 -> score -> report, with the example's config
    (one backtest fold instead of four, for time), then churnml's replayed risk on the README's question
    beside the reference figures."""
    import yaml
    from click.testing import CliRunner

    from churnml.cli import cli

    def run(*args):
        r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r.output

    tables, _ = m.map_lines(shared_lines)
    m.write_tables(tables, tmp_path / "data")
    conf = yaml.safe_load((ROOT / "examples" / "online_retail" / "config.yaml").read_text())
    conf.update(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "outputs"))
    conf["train"] = {**conf.get("train", {}), "folds": 1}  # one backtest fold: the replay is what is judged
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(conf))
    c = tmp_path / "config.yaml"
    assert "OK: 4 tables" in run("validate", "--config", c)
    assert "promoted to champion" in run("train", "--config", c)
    # 9 months before the date: the time-to-churn model needs the 30-day horizon there (docs/online_retail.md)
    out = run("replay", "--config", c, "--as-of", "2011-09-01", "--horizon", "30")
    assert "replay as of 2011-09-01:" in out and "were high risk" in out
    assert "churned within 12 months: not observable yet" in out  # the file ends on 2011-12-09
    run("score", "--config", c)
    run("report", "--config", c)
    assert (tmp_path / "outputs" / "report" / "index.html").is_file()
    ref = cmp.reference_baselines(shared_lines)
    res = cmp.evaluate_scores(
        ref, cmp.read_scores(tmp_path / "outputs" / "replay" / "2011-09-01" / "scores.parquet", "risk_probability")
    )
    assert res["scored_in_population"] > 1_500 and res["scored_outside_population"] == 0
    churnml, recency = res["churnml"]["roc_auc"], res["baselines_on_scored"]["recency"]["roc_auc"]
    assert churnml > recency  # it learns more than how long ago the last purchase was
