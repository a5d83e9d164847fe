"""Golden tests, hand-computed: labels (contract definitions), onboarding and commercial indicators."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from churnml.features import build_features
from churnml.labels import make_labels

D = pd.Timestamp
NaN = np.nan


def dataset(accounts, subs, milestones=None, last="2025-12-31"):
    acc = pd.DataFrame(
        [
            {
                "account_id": a,
                "name": a,
                "segment": seg,
                "industry": None,
                "region": None,
                "csm_owner": None,
                "signup_date": D(s),
            }
            for a, s, seg in accounts
        ]
    )
    acc["signup_date"] = acc["signup_date"].astype("datetime64[us]")
    sb = pd.DataFrame(
        [
            {
                "account_id": a,
                "effective_date": D(d),
                "mrr": float(m),
                "seats": seats,
                "plan": plan,
                "contract_end": D(ce) if ce else pd.NaT,
            }
            for a, d, m, seats, plan, ce in subs
        ]
    )
    sb["effective_date"] = sb["effective_date"].astype("datetime64[us]")
    sb["contract_end"] = sb["contract_end"].astype("datetime64[us]")
    sb["seats"] = sb["seats"].astype("Int64")
    ms = None
    if milestones is not None:
        ms = pd.DataFrame(
            [
                {
                    "account_id": a,
                    "milestone": m,
                    "due_date": D(due) if due else pd.NaT,
                    "completed_at": D(c) if c else pd.NaT,
                }
                for a, m, due, c in milestones
            ],
            columns=["account_id", "milestone", "due_date", "completed_at"],
        )
        for c in ("due_date", "completed_at"):
            ms[c] = ms[c].astype("datetime64[us]")
    return SimpleNamespace(
        accounts=acc, subscriptions=sb, usage=None, tickets=None, surveys=None, milestones=ms, last_date=lambda: D(last)
    )


# ------------------------------------------------------------------------------ labels
T = "2025-01-01"  # cutoff; with H = 90 the window is [2025-01-01, 2025-04-01)


def one_account(rows, last="2025-12-31"):
    subs = [("A", "2024-01-01", 100, 5, "Pro", "2025-12-31")] + [("A", d, m, 5, "Pro", None) for d, m in rows]
    return dataset([("A", "2024-01-01", "SMB")], subs, last=last)


@pytest.mark.parametrize(
    "rows, churned, expanded, days",
    [
        ([], False, False, 90),  # nothing happens: censored at H
        ([("2025-01-01", 0)], True, False, 0),  # churn on the cutoff day itself
        ([("2025-03-31", 0)], True, False, 89),  # churn on t+H-1: inside the window
        ([("2025-04-01", 0)], False, False, 90),  # churn on t+H: outside the window
        ([("2024-12-31", 0)], None, None, None),  # churned on t-1: not eligible
        ([("2025-02-01", 110)], False, True, 90),  # exactly +10% counts as expansion
        ([("2025-02-01", 109.99)], False, False, 90),  # +9.99% does not
        ([("2025-02-01", 130), ("2025-03-01", 0)], True, False, 59),  # expansion then churn: churned, not expanded
        ([("2025-02-01", 130), ("2025-03-01", 100)], False, True, 90),  # expanded at some row in the window
        ([("2025-04-01", 200)], False, False, 90),  # expansion after the window
    ],
)
def test_label_edge_cases(rows, churned, expanded, days):
    y = make_labels(one_account(rows), [T]).loc[("A", D(T))]
    if churned is None:
        assert not y["eligible"] and pd.isna(y["churned_90d"]) and pd.isna(y["expanded_90d"])
        return
    assert y["eligible"]
    assert bool(y["churned_90d"]) is churned and bool(y["expanded_90d"]) is expanded
    assert y["days_to_churn"] == days and bool(y["churn_observed"]) is churned
    assert y["mrr_before"] == 100.0 and y["horizon_days"] == 90 and y["uplift"] == pytest.approx(0.10)


def test_labels_need_the_whole_window_observed():
    ds = one_account([], last="2025-03-31")
    assert make_labels(ds, [T]).empty  # t + H = 2025-04-01 is after the last day
    ds = one_account([], last="2025-04-01")
    assert len(make_labels(ds, [T])) == 1  # t + H on the last day: labelled


def test_label_settings_travel_with_the_labels():
    y = make_labels(one_account([("2025-02-10", 0)]), [T], horizon_days=60, uplift=0.2)
    assert {"churned_60d", "expanded_60d"} <= set(y.columns) and "churned_90d" not in y.columns
    assert y.attrs == {"horizon_days": 60, "uplift": 0.2}
    assert y["days_to_churn"].iloc[0] == 40


def test_churned_and_came_back_is_eligible_again_after_return():
    ds = one_account([("2024-06-01", 0), ("2024-09-01", 80)])
    y = make_labels(ds, ["2024-07-01", "2024-10-01"])
    assert not y.loc[("A", D("2024-07-01")), "eligible"]
    back = y.loc[("A", D("2024-10-01"))]
    assert back["eligible"] and back["mrr_before"] == 80.0 and not back["churned_90d"]


def test_a_label_never_uses_data_before_the_cutoff_beyond_the_state_on_t_minus_1():
    rows = [("2024-03-01", 300), ("2024-06-01", 50), ("2024-12-20", 100), ("2025-02-15", 0)]
    base = make_labels(one_account(rows), [T])
    changed = [("2024-03-01", 999), ("2024-06-01", 1), ("2024-12-20", 100), ("2025-02-15", 0)]
    pd.testing.assert_frame_equal(base, make_labels(one_account(changed), [T]))


# ------------------------------------------------------------------------------ onboarding
C = "2024-03-01"  # cutoff for the feature tests


def test_onboarding_golden():
    ds = dataset(
        [("O1", "2024-01-01", "SMB"), ("O2", "2024-01-01", "SMB"), ("O3", "2024-01-01", "SMB")],
        [
            ("O1", "2024-01-01", 100, 5, "Pro", "2025-01-01"),
            ("O2", "2024-01-01", 100, 5, "Pro", "2025-01-01"),
            ("O3", "2024-01-01", 100, 5, "Pro", "2025-01-01"),
        ],
        milestones=[
            ("O1", "kickoff", "2024-01-05", "2024-01-04"),  # on time
            ("O1", "admin_setup", "2024-01-15", "2024-01-20"),  # late but reached
            ("O1", "first_value", "2024-02-01", "2024-02-11"),  # reached: 41 days after start
            ("O1", "integration_live", "2024-02-10", None),  # overdue by 20 days at 2024-03-01
            ("O1", "training_complete", "2024-04-01", None),  # not due yet
            ("O2", "kickoff", "2024-01-05", "2024-03-01"),  # completed ON the cutoff: not reached, overdue 56
            ("O2", "first_value", None, None),  # no due date, not reached
        ],
    )
    X = build_features(ds, [C]).droplevel("cutoff")
    o1, o2, o3 = X.loc["O1"], X.loc["O2"], X.loc["O3"]
    assert o1["milestones_reached"] == 3 and o1["milestones_reached_share"] == pytest.approx(3 / 5)
    assert o1["milestones_overdue"] == 1 and o1["max_days_overdue"] == 20
    assert o1["milestones_on_time_share"] == pytest.approx(1 / 4)  # 4 due before t, only kickoff on time
    assert o1["first_value_reached"] == 1 and o1["days_to_first_value"] == 41
    assert o2["milestones_reached"] == 0 and o2["milestones_overdue"] == 1 and o2["max_days_overdue"] == 56
    assert o2["milestones_on_time_share"] == 0 and o2["first_value_reached"] == 0
    assert np.isnan(o2["days_to_first_value"])
    for f in ("milestones_reached", "milestones_reached_share", "milestones_overdue", "first_value_reached"):
        assert np.isnan(o3[f]), f  # no milestone rows: no onboarding data, not zero
    ds.milestones = None
    X = build_features(ds, [C])
    assert X[["milestones_reached", "first_value_reached", "days_to_first_value"]].isna().all().all()


# ------------------------------------------------------------------------------ commercial
def test_commercial_golden():
    ds = dataset(
        [
            ("M1", "2023-06-01", "Enterprise"),
            ("M2", "2023-01-01", "SMB"),
            ("M3", "2024-02-20", "SMB"),
            ("M4", "2023-01-01", "SMB"),
        ],
        [
            ("M1", "2023-06-01", 1000, 10, "Pro", "2024-06-01"),
            ("M1", "2023-10-01", 1500, 15, "Pro", "2024-06-01"),  # mid-term expansion, same term
            ("M1", "2024-01-15", 1200, 12, "Pro", "2024-06-01"),  # contraction, same term
            ("M1", "2024-03-01", 9999, 99, "Big", "2025-03-01"),  # dated ON the cutoff: not in force yet
            ("M2", "2023-01-01", 100, 4, "Starter", "2023-07-01"),
            ("M2", "2023-05-01", 0, 0, None, None),  # churned ...
            ("M2", "2023-10-01", 200, 8, "Pro", "2024-10-01"),  # ... and came back
            ("M3", "2024-02-20", 50, 2, "Starter", "2024-03-20"),  # 10 days old
            ("M4", "2023-01-01", 100, 4, "Starter", "2024-01-01"),
            ("M4", "2024-01-01", 0, 0, None, None),  # churned before the cutoff: no row
        ],
    )
    X = build_features(ds, [C]).droplevel("cutoff")
    assert set(X.index) == {"M1", "M2", "M3"}
    m1, m2, m3 = X.loc["M1"], X.loc["M2"], X.loc["M3"]
    assert m1["mrr"] == 1200 and m1["seats"] == 12 and m1["mrr_per_seat"] == 100
    assert m1["plan"] == "Pro" and m1["segment"] == "Enterprise"
    # 90 days before: state on 2023-12-01 (day < t-90 = 2023-12-02) is 1500; 180 days: 2023-09-02 -> 1000
    assert m1["mrr_change_90d"] == pytest.approx(1200 / 1500 - 1)
    assert m1["mrr_change_180d"] == pytest.approx(1200 / 1000 - 1)
    assert m1["expansions_365d"] == 1 and m1["contractions_365d"] == 1 and m1["previous_churns"] == 0
    assert m1["days_since_mrr_change"] == 46  # 2024-01-15 -> 2024-03-01
    assert m1["tenure_days"] == 274 and m1["days_to_renewal"] == 92  # 2023-06-01 -> t; t -> 2024-06-01
    assert m1["term_length_days"] == 366  # 2023-06-01 -> 2024-06-01 (leap year)
    assert m2["previous_churns"] == 1 and m2["mrr"] == 200
    assert np.isnan(m2["mrr_change_180d"])  # not paying 180 days before (MRR 0 on 2023-09-02)
    assert m2["term_length_days"] == 366 and m2["days_to_renewal"] == 214
    assert m3["tenure_days"] == 10 and np.isnan(m3["mrr_change_90d"]) and m3["days_to_renewal"] == 19
