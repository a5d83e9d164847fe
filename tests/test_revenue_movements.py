"""Revenue movements and GRR/NRR (contract v1.2, "Revenue movements"): hand-computed on literal rows for
every kind, reconciled to the cent on generated bases, and `churnml movements` end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from churnml.dataset import Dataset
from churnml.errors import ChurnmlError
from churnml.generate import GeneratorConfig, generate, parse_terms
from churnml.revenue import KINDS, monthly_summary, movements, reconcile, retention, trailing_retention

D = pd.Timestamp


def base(subs, segments, last="2025-12-31"):
    """A base of literal subscriptions rows (account, effective_date, mrr, end_kind)."""
    acc = pd.DataFrame(
        {
            "account_id": list(segments),
            "name": list(segments),
            "segment": list(segments.values()),
            "industry": None,
            "region": None,
            "csm_owner": ["Ann" if i % 2 else "Bo" for i in range(len(segments))],
            "signup_date": pd.to_datetime(["2024-12-01"] * len(segments)).astype("datetime64[us]"),
        }
    )
    sb = pd.DataFrame(
        [
            {
                "account_id": a,
                "effective_date": D(d),
                "mrr": float(m),
                "seats": 1,
                "plan": "Pro",
                "contract_end": pd.NaT,
                "end_kind": kind,
            }
            for a, d, m, kind in subs
        ]
    )
    for c in ("effective_date", "contract_end"):
        sb[c] = sb[c].astype("datetime64[us]")
    return {"accounts": acc, "subscriptions": sb, "last_date": D(last)}


class _Base:
    def __init__(self, tables):
        self.accounts, self.subscriptions, self._last = tables["accounts"], tables["subscriptions"], tables["last_date"]

    def last_date(self):
        return self._last


ROWS = [
    # A: new mid-January, expansion dated on the 1st of March (counts in March), contraction in April,
    # churn in June, back in September (reactivation)
    ("A", "2025-01-15", 100, None),
    ("A", "2025-03-01", 150, None),
    ("A", "2025-04-10", 120, None),
    ("A", "2025-06-20", 0, None),
    ("A", "2025-09-05", 80, None),
    # B: a fixed term from February that runs its course at the end of July (no loss)
    ("B", "2025-02-01", 200, None),
    ("B", "2025-07-31", 0, "completed"),
    # C: churns and comes back within May at a lower price: one contraction of 10
    ("C", "2025-01-01", 100, None),
    ("C", "2025-05-03", 0, None),
    ("C", "2025-05-20", 90, None),
    # D: amounts that are not exact in binary floating point
    ("D", "2025-02-10", 10.10, None),
    ("D", "2025-07-01", 30.30, None),
    ("D", "2025-10-15", 20.20, None),
]
SEGMENTS = {"A": "SMB", "B": "SMB", "C": "Enterprise", "D": "Enterprise"}


@pytest.fixture(scope="module")
def literal():
    return _Base(base(ROWS, SEGMENTS))


@pytest.fixture(scope="module")
def mv(literal):
    return movements(literal)


def _row(mv, account, month):
    r = mv[(mv["account_id"] == account) & (mv["month"] == D(month))]
    assert len(r) == 1, (account, month)
    return r.iloc[0]


@pytest.mark.parametrize(
    ("account", "month", "kind", "amount", "opening", "closing"),
    [
        ("A", "2025-01-01", "new", 100, 0, 100),
        ("A", "2025-02-01", "flat", 0, 100, 100),
        ("A", "2025-03-01", "expansion", 50, 100, 150),
        ("A", "2025-04-01", "contraction", 30, 150, 120),
        ("A", "2025-06-01", "churn", 120, 120, 0),
        ("A", "2025-09-01", "reactivation", 80, 0, 80),
        ("B", "2025-02-01", "new", 200, 0, 200),
        ("B", "2025-07-01", "completed", 200, 200, 0),
        ("C", "2025-05-01", "contraction", 10, 100, 90),
        ("D", "2025-07-01", "expansion", 20.20, 10.10, 30.30),
        ("D", "2025-10-01", "contraction", 10.10, 30.30, 20.20),
    ],
)
def test_every_kind_of_movement_on_literal_rows(mv, account, month, kind, amount, opening, closing):
    r = _row(mv, account, month)
    assert r["movement"] == kind
    assert r["opening_mrr"] == pytest.approx(opening, abs=1e-9)
    assert r["closing_mrr"] == pytest.approx(closing, abs=1e-9)
    for k in KINDS:
        assert r[f"{k}_mrr"] == pytest.approx(amount if k == kind else 0, abs=1e-9), k


def test_months_without_mrr_have_no_row_and_everything_reconciles(mv):
    # A paid nothing in July and August; B nothing after July; the last month is December 2025
    assert not ((mv["account_id"] == "A") & mv["month"].isin([D("2025-07-01"), D("2025-08-01")])).any()
    assert mv.loc[mv["account_id"] == "B", "month"].max() == D("2025-07-01")
    assert mv["month"].min() == D("2025-01-01") and mv["month"].max() == D("2025-12-01")
    assert reconcile(mv).empty
    bridge = monthly_summary(mv).set_index("month")
    # the opening of each month is the closing of the month before, in total too
    assert np.allclose(bridge["opening_mrr"].iloc[1:].to_numpy(), bridge["closing_mrr"].iloc[:-1].to_numpy())
    assert bridge.loc[D("2025-07-01"), "completed_mrr"] == 200
    assert bridge.loc[D("2025-12-01"), "closing_mrr"] == pytest.approx(80 + 90 + 20.20)


def test_a_broken_bridge_is_found(mv):
    bad = mv.copy()
    bad.loc[3, "closing_mrr"] += 0.01
    assert len(reconcile(bad)) == 1


def test_grr_and_nrr_on_literal_rows(literal):
    # paying at the start of 2025-03-01: A 100 (the March row is not in force yet), B 200, C 100, D 10.10.
    # At the end of August: A at 0 (churn 100), B completed (leaves the base: no loss, not in the start),
    # C at 90 (contraction 10), D at 30.30 (expansion 20.20).
    r = retention(literal, "2025-03-01", "2025-09-01")
    assert list(r["group_by"].unique()) == ["all", "segment", "csm_owner"]
    a = r[r["group_by"] == "all"].iloc[0]
    assert a["accounts"] == 3 and a["completed_accounts"] == 1
    assert a["start_mrr"] == pytest.approx(210.10)
    assert (a["churn_mrr"], a["contraction_mrr"], a["completed_mrr"]) == (100, 10, 200)
    assert a["expansion_mrr"] == pytest.approx(20.20)
    assert a["grr"] == pytest.approx((210.10 - 110) / 210.10)
    assert a["nrr"] == pytest.approx((210.10 - 110 + 20.20) / 210.10)
    seg = r[r["group_by"] == "segment"].set_index("group")
    assert seg.loc["SMB", "grr"] == 0 and seg.loc["SMB", "completed_mrr"] == 200  # A churned, B completed
    assert seg.loc["Enterprise", "nrr"] == pytest.approx((110.10 - 10 + 20.20) / 110.10)
    # an account counts at most its start MRR as a loss: A went up to 150 and down to 0, loss 100
    assert seg.loc["SMB", "churn_mrr"] == 100


def test_retention_refuses_an_unobserved_end_and_trailing_is_the_last_12_months(literal):
    with pytest.raises(ChurnmlError, match="runs past the data"):
        retention(literal, "2025-06-01", "2026-02-01")
    t = trailing_retention(literal, as_of="2025-12-01", months=9)
    assert (t["start_date"] == D("2025-03-01")).all() and (t["end_date"] == D("2025-12-01")).all()
    with pytest.raises(ChurnmlError, match="use fewer months"):
        trailing_retention(literal, months=13)


def test_movements_up_to_a_month_do_not_change_when_later_history_does(literal):
    """Point in time: the movements of the months before t are read from rows dated before t only."""
    changed = base([*ROWS, ("C", "2025-11-03", 500, None), ("E", "2025-11-20", 40, None)], {**SEGMENTS, "E": "SMB"})
    before = movements(literal, end="2025-11-01")
    after = movements(_Base(changed), end="2025-11-01")
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize(
    ("accounts", "seed", "terms"),
    [(300, 3, "monthly"), (400, 11, "annual"), (250, 5, "multi-year")],
)
def test_generated_bases_reconcile_to_the_cent(accounts, seed, terms):
    tables = generate(GeneratorConfig(accounts=accounts, seed=seed, terms=parse_terms(terms)))
    with Dataset.from_frames(tables) as ds:
        mv = movements(ds)
        assert reconcile(mv).empty
        bridge = monthly_summary(mv)
        cents = {c: np.rint(bridge[c].to_numpy() * 100).astype("int64") for c in bridge.columns if c.endswith("_mrr")}
        assert (cents["opening_mrr"][1:] == cents["closing_mrr"][:-1]).all()
        # in total too: the last closing is what the accounts pay at the end of the last month
        last = mv["month"].max() + pd.offsets.MonthBegin(1)
        subs = tables["subscriptions"]
        in_force = subs[subs["effective_date"] < last].sort_values("effective_date").groupby("account_id").last()
        assert cents["closing_mrr"][-1] == np.rint(in_force["mrr"] * 100).astype("int64").sum()
        assert set(mv["movement"].unique()) >= {"new", "churn", "expansion", "contraction"}
        t = trailing_retention(ds)
        a = t[t["group_by"] == "all"].iloc[0]
        assert 0 < a["grr"] <= 1 and a["nrr"] >= a["grr"]


@pytest.mark.slow
def test_the_demo_base_reconciles_to_the_cent():
    with Dataset.from_frames(generate(GeneratorConfig())) as ds:
        assert reconcile(movements(ds)).empty


def test_churnml_movements_writes_the_bridge_and_the_retention_table(base_dir, tmp_path):
    from churnml.cli import cli

    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["movements", "--data-dir", str(base_dir), "--output-dir", str(out)])
    assert res.exit_code == 0, res.output
    mv = pd.read_parquet(out / "movements.parquet")
    assert reconcile(mv).empty and set(mv["movement"].unique()) >= {"new", "churn", "flat"}
    ret = pd.read_csv(out / "retention.csv")
    a = ret[ret["group_by"] == "all"].iloc[0]
    # the summary line carries the same figures as the table, and says what they mean
    assert f"GRR {a['grr']:.1%}" in res.output and f"NRR {a['nrr']:.1%}" in res.output
    assert "new business excluded" in res.output
    assert not list(out.glob("*.tmp*"))
    assert "--months" in CliRunner().invoke(cli, ["movements", "--help"]).output
