"""Golden tests for the usage, effort and support feature families.

Every expected value below was computed by hand from the indicator's documented
formula (``churnml.features.indicators_for``) and the data contract's point-in-time
rules, then written out as a literal (or a literal fraction such as ``18 / 70``).
Nothing is recomputed with pandas.

Unless stated otherwise the cutoff is t = 2024-07-01 (a Monday). Day offsets used
in the comments ("t-30") and weekdays (1970-01-01 was a Thursday):

    t+5 2024-07-06 Sat   t-9  2024-06-22 Sat   t-45  2024-05-17 Fri
    t+2 2024-07-03 Wed   t-10 2024-06-21 Fri   t-60  2024-05-02 Thu
    t+1 2024-07-02 Tue   t-15 2024-06-16 Sun   t-61  2024-05-01 Wed
    t   2024-07-01 Mon   t-20 2024-06-11 Tue   t-85  2024-04-07 Sun
    t-1 2024-06-30 Sun   t-29 2024-06-02 Sun   t-90  2024-04-02 Tue
    t-2 2024-06-29 Sat   t-30 2024-06-01 Sat   t-91  2024-04-01 Mon
    t-3 2024-06-28 Fri   t-31 2024-05-31 Fri   t-95  2024-03-28 Thu
    t-4 2024-06-27 Thu   t-33 2024-05-29 Wed   t-100 2024-03-23 Sat
    t-5 2024-06-26 Wed   t-40 2024-05-22 Wed   t-120 2024-03-03 Sun
    t-7 2024-06-24 Mon                         t-130 2024-02-22 Thu
                                               t-150 2024-02-02 Fri
                                               t-180 2024-01-03 Wed
                                               t-200 2023-12-14 Thu
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from churnml.features import build_features

T = pd.Timestamp("2024-07-01")
NAN = float("nan")
FEATURES = ("feature_a", "feature_b", "feature_c")

USAGE_COLS = [
    "active_users_per_seat_7d",
    "events_per_active_user_7d",
    "active_days_share_7d",
    "active_users_per_seat_30d",
    "events_per_active_user_30d",
    "active_days_share_30d",
    "active_users_per_seat_90d",
    "events_per_active_user_90d",
    "active_days_share_90d",
    "active_users_trend_30d",
    "events_trend_30d",
    "days_since_last_activity",
    "weekday_share_30d",
    "peak_active_users_per_seat_30d",
    "feature_breadth_30d",
    "feature_breadth_90d",
]
EFFORT_COLS = [
    "ces_mean_90d",
    "ces_difficult_share_90d",
    "ces_difficult_share_180d",
    "ces_trend_90d",
    "ces_responses_90d",
    "csat_mean_90d",
    "csat_low_share_90d",
    "csat_responses_90d",
    "nps_mean_180d",
    "nps_detractor_share_180d",
    "nps_responses_180d",
]
SUPPORT_COLS = [
    "tickets_per_seat_30d",
    "tickets_per_seat_90d",
    "tickets_opened_90d",
    "high_urgent_tickets_90d",
    "open_tickets",
    "open_high_urgent_tickets",
    "open_tickets_over_7d",
    "median_hours_to_close_90d",
    "long_tickets_share_90d",
    "median_first_response_minutes_90d",
]


# --------------------------------------------------------------------------- frames


def _dates(values) -> pd.Series:
    """Dates/timestamps as tz-naive datetime64[us] (None -> NaT), like the loader."""
    return pd.Series(pd.to_datetime(pd.Series(list(values), dtype=object)), dtype="datetime64[us]")


def _strs(values) -> pd.Series:
    return pd.Series(list(values), dtype="str")


def make_dataset(accounts, subscriptions, usage=(), tickets=(), surveys=(), *, absent=()) -> SimpleNamespace:
    """A dataset of contract-typed frames from literal rows.

    accounts:      (account_id, signup_date)
    subscriptions: (account_id, effective_date, mrr, seats or None)
    usage:         (account_id, date, active_users, events, feature_a, feature_b, feature_c)
    tickets:       (ticket_id, account_id, opened_at, closed_at or None, priority, first_response_minutes)
    surveys:       (account_id, responded_at, kind, score)
    absent:        names of optional tables passed as None
    """
    acc = pd.DataFrame(
        {
            "account_id": _strs(a[0] for a in accounts),
            "name": _strs(f'Account {a[0]} <&> "quoted"' for a in accounts),
            "segment": _strs("SMB" for _ in accounts),
            "industry": _strs("Software" for _ in accounts),
            "region": _strs("EMEA" for _ in accounts),
            "csm_owner": pd.Series([None] * len(accounts), dtype=object),
            "signup_date": _dates(a[1] for a in accounts),
        }
    )
    subs = pd.DataFrame(
        {
            "account_id": _strs(s[0] for s in subscriptions),
            "effective_date": _dates(s[1] for s in subscriptions),
            "mrr": pd.Series([s[2] for s in subscriptions], dtype="float64"),
            "seats": pd.array([s[3] for s in subscriptions], dtype="Int64"),
            "plan": _strs("Pro" for _ in subscriptions),
            "contract_end": _dates("2026-01-01" for _ in subscriptions),
        }
    )
    use = pd.DataFrame(
        {
            "account_id": _strs(u[0] for u in usage),
            "date": _dates(u[1] for u in usage),
            "active_users": pd.Series([u[2] for u in usage], dtype="int64"),
            "events": pd.Series([u[3] for u in usage], dtype="int64"),
        }
    )
    for i, c in enumerate(FEATURES):
        use[c] = pd.Series([u[4 + i] for u in usage], dtype="float64")
    tk = pd.DataFrame(
        {
            "ticket_id": _strs(k[0] for k in tickets),
            "account_id": _strs(k[1] for k in tickets),
            "opened_at": _dates(k[2] for k in tickets),
            "closed_at": _dates(k[3] for k in tickets),
            "priority": _strs(k[4] for k in tickets),
            "category": _strs("bug" for _ in tickets),
            "first_response_minutes": pd.Series([k[5] for k in tickets], dtype="float64"),
        }
    )
    sv = pd.DataFrame(
        {
            "account_id": _strs(s[0] for s in surveys),
            "responded_at": _dates(s[1] for s in surveys),
            "kind": _strs(s[2] for s in surveys),
            "score": pd.Series([s[3] for s in surveys], dtype="float64"),
            "ticket_id": pd.Series([None] * len(surveys), dtype=object),
        }
    )
    ms = pd.DataFrame(
        {
            "account_id": _strs([]),
            "milestone": _strs([]),
            "due_date": _dates([]),
            "completed_at": _dates([]),
        }
    )
    tables = {"accounts": acc, "subscriptions": subs, "usage": use, "tickets": tk, "surveys": sv, "milestones": ms}
    for name in absent:
        tables[name] = None
    return SimpleNamespace(**tables)


def assert_row(out: pd.DataFrame, account: str, cutoff, expected: dict[str, float]) -> None:
    """Compare one feature row with hand-computed values; NaN means 'missing'."""
    row = out.loc[(account, pd.Timestamp(cutoff))]
    bad = []
    for col, want in expected.items():
        got = float(row[col])
        if math.isnan(want):
            ok = math.isnan(got)
        else:
            ok = not math.isnan(got) and got == pytest.approx(want, rel=1e-9, abs=1e-12)
        if not ok:
            bad.append(f"{col}: expected {want!r}, got {got!r}")
    assert not bad, f"{account} @ {cutoff}:\n  " + "\n  ".join(bad)


# --------------------------------------------------------------------------- usage

# U1 steady, started 2023-01-01, 10 seats. Boundary rows at t-30/t-31, t-60/t-61, t-90/t-91;
#    rows ON t and after t carry huge values and must be ignored.
# U2 young: started t-20 (2024-06-11), 5 seats -> rates divide by min(w, 20) days.
# U3 no usage rows at all, started 2024-01-01 (182 days before t), 8 seats.
# U4 no usage rows, started t-45 (2024-05-17), seats unknown (<NA>).
# U5 one user-day at t-45 then a spike at t-2 (Saturday), 4 seats: trend capped at 10.
# X_churned (MRR 0 from t-10) and X_future (first row ON t) are not in the population.
USAGE_ACCOUNTS = [
    ("U1", "2023-01-01"),
    ("U2", "2024-06-11"),
    ("U3", "2024-01-01"),
    ("U4", "2024-05-17"),
    ("U5", "2023-01-01"),
    ("X_churned", "2023-01-01"),
    ("X_future", "2024-07-01"),
]
USAGE_SUBS = [
    ("U1", "2023-01-01", 1000.0, 10),
    ("U2", "2024-06-11", 200.0, 5),
    ("U3", "2024-01-01", 300.0, 8),
    ("U4", "2024-05-17", 150.0, None),
    ("U5", "2023-01-01", 400.0, 4),
    ("X_churned", "2023-01-01", 100.0, 3),
    ("X_churned", "2024-06-21", 0.0, 0),
    ("X_future", "2024-07-01", 100.0, 3),
]
USAGE_ROWS = [
    # account, date, active_users, events, feature_a, feature_b, feature_c
    ("U1", "2024-07-02", 500, 5000, 9.0, 9.0, 9.0),  # t+1: future, ignored
    ("U1", "2024-07-01", 500, 5000, 9.0, 9.0, 9.0),  # t (Mon): on the cutoff day, ignored
    ("U1", "2024-06-30", 4, 40, 1.0, 0.0, 0.0),  # t-1 Sun
    ("U1", "2024-06-29", 0, 0, 0.0, 0.0, 0.0),  # t-2 Sat, a row without activity
    ("U1", "2024-06-28", 6, 30, 0.0, 2.0, 0.0),  # t-3 Fri
    ("U1", "2024-06-24", 8, 80, 0.0, 0.0, 0.0),  # t-7 Mon (first day of the 7d window)
    ("U1", "2024-06-01", 2, 10, 0.0, 0.0, 0.0),  # t-30 Sat (first day of the 30d window)
    ("U1", "2024-05-31", 10, 100, 0.0, 0.0, 5.0),  # t-31 Fri (previous 30d only)
    ("U1", "2024-05-02", 15, 50, 0.0, 0.0, 0.0),  # t-60 Thu (first day of previous 30d)
    ("U1", "2024-05-01", 100, 1000, 0.0, 0.0, 0.0),  # t-61 Wed (90d window only)
    ("U1", "2024-04-02", 3, 3, 0.0, 0.0, 0.0),  # t-90 Tue (first day of the 90d window)
    ("U1", "2024-04-01", 1000, 1000, 9.0, 9.0, 9.0),  # t-91 Mon: outside every window
    ("U2", "2024-06-11", 5, 20, 1.0, 0.0, 0.0),  # t-20 Tue (first day of the account)
    ("U2", "2024-06-21", 3, 9, 0.0, 0.0, 0.0),  # t-10 Fri
    ("U2", "2024-06-26", 0, 0, 0.0, 0.0, 0.0),  # t-5 Wed, no activity
    ("U5", "2024-05-17", 1, 0, 0.0, 0.0, 0.0),  # t-45 Fri
    ("U5", "2024-06-29", 50, 500, 0.0, 0.0, 0.0),  # t-2 Sat
    ("X_churned", "2024-06-20", 3, 30, 1.0, 1.0, 1.0),
]

USAGE_EXPECTED = {
    # 7d [t-7,t): t-1 (4 users, 40 ev), t-2 (0), t-3 (6, 30), t-7 (8, 80): 18 users, 150 ev, 3 active days
    # 30d adds t-30 (2, 10): 20 users, 160 ev, 4 days; 90d adds t-31, t-60, t-61, t-90:
    # 20+10+15+100+3 = 148 users, 160+100+50+1000+3 = 1313 ev, 8 days. Previous 30d [t-60,t-30):
    # t-31 + t-60 = 25 users, 150 ev. Weekdays in 30d: Fri t-3 (6) + Mon t-7 (8) = 14 of 20.
    "U1": {
        "active_users_per_seat_7d": 18 / 70,
        "events_per_active_user_7d": 150 / 18,
        "active_days_share_7d": 3 / 7,
        "active_users_per_seat_30d": 20 / 300,
        "events_per_active_user_30d": 8.0,
        "active_days_share_30d": 4 / 30,
        "active_users_per_seat_90d": 148 / 900,
        "events_per_active_user_90d": 1313 / 148,
        "active_days_share_90d": 8 / 90,
        "active_users_trend_30d": -0.2,  # 20 / 25 - 1
        "events_trend_30d": 160 / 150 - 1,
        "days_since_last_activity": 1.0,  # last active day t-1
        "weekday_share_30d": 0.7,  # 14 / 20
        "peak_active_users_per_seat_30d": 0.8,  # 8 / 10
        "feature_breadth_30d": 2 / 3,  # a (t-1), b (t-3); c only at t-31
        "feature_breadth_90d": 1.0,
    },
    # 20 days old: days = min(w, 20) -> 7, 20, 20. 7d: only the zero row at t-5.
    # 30d/90d: 8 users, 29 events, 2 active days. Both active days (Tue, Fri) are weekdays.
    "U2": {
        "active_users_per_seat_7d": 0.0,
        "events_per_active_user_7d": NAN,
        "active_days_share_7d": 0.0,
        "active_users_per_seat_30d": 8 / 100,
        "events_per_active_user_30d": 29 / 8,
        "active_days_share_30d": 2 / 20,
        "active_users_per_seat_90d": 8 / 100,
        "events_per_active_user_90d": 29 / 8,
        "active_days_share_90d": 2 / 20,
        "active_users_trend_30d": NAN,
        "events_trend_30d": NAN,  # younger than 60 days
        "days_since_last_activity": 10.0,
        "weekday_share_30d": 1.0,
        "peak_active_users_per_seat_30d": 1.0,  # 5 / 5
        "feature_breadth_30d": 1 / 3,
        "feature_breadth_90d": 1 / 3,
    },
    # Empty window: rates and shares are 0, ratios over activity are missing; 182 days old.
    "U3": {
        "active_users_per_seat_7d": 0.0,
        "events_per_active_user_7d": NAN,
        "active_days_share_7d": 0.0,
        "active_users_per_seat_30d": 0.0,
        "events_per_active_user_30d": NAN,
        "active_days_share_30d": 0.0,
        "active_users_per_seat_90d": 0.0,
        "events_per_active_user_90d": NAN,
        "active_days_share_90d": 0.0,
        "active_users_trend_30d": NAN,
        "events_trend_30d": NAN,
        "days_since_last_activity": 90.0,  # min(90, 182)
        "weekday_share_30d": NAN,
        "peak_active_users_per_seat_30d": NAN,
        "feature_breadth_30d": 0.0,
        "feature_breadth_90d": 0.0,
    },
    # No usage, 45 days old, no seats known: per-seat values missing, days since = min(90, 45).
    "U4": {
        "active_users_per_seat_7d": NAN,
        "events_per_active_user_7d": NAN,
        "active_days_share_7d": 0.0,
        "active_users_per_seat_30d": NAN,
        "events_per_active_user_30d": NAN,
        "active_days_share_30d": 0.0,
        "active_users_per_seat_90d": NAN,
        "events_per_active_user_90d": NAN,
        "active_days_share_90d": 0.0,
        "active_users_trend_30d": NAN,
        "events_trend_30d": NAN,
        "days_since_last_activity": 45.0,
        "weekday_share_30d": NAN,
        "peak_active_users_per_seat_30d": NAN,
        "feature_breadth_30d": 0.0,
        "feature_breadth_90d": 0.0,
    },
    # t-45: 1 user, 0 events; t-2 (Saturday): 50 users, 500 events; 4 seats.
    "U5": {
        "active_users_per_seat_7d": 50 / 28,
        "events_per_active_user_7d": 10.0,
        "active_days_share_7d": 1 / 7,
        "active_users_per_seat_30d": 50 / 120,
        "events_per_active_user_30d": 10.0,
        "active_days_share_30d": 1 / 30,
        "active_users_per_seat_90d": 51 / 360,
        "events_per_active_user_90d": 500 / 51,
        "active_days_share_90d": 2 / 90,
        "active_users_trend_30d": 10.0,  # 50 / 1 - 1 = 49, capped at 10
        "events_trend_30d": NAN,  # no events in [t-60, t-30)
        "days_since_last_activity": 2.0,
        "weekday_share_30d": 0.0,  # all activity on a Saturday
        "peak_active_users_per_seat_30d": 12.5,  # 50 / 4
        "feature_breadth_30d": 0.0,
        "feature_breadth_90d": 0.0,
    },
}


@pytest.fixture(scope="module")
def usage_features() -> pd.DataFrame:
    ds = make_dataset(USAGE_ACCOUNTS, USAGE_SUBS, usage=USAGE_ROWS)
    return build_features(ds, ["2024-07-01"])


def test_usage_population_and_columns(usage_features):
    # only accounts paying on t-1 get a row (X_churned: MRR 0 since t-10; X_future starts on t)
    assert list(usage_features.index) == [(a, T) for a in ("U1", "U2", "U3", "U4", "U5")]
    assert [c for c in usage_features.columns if c in USAGE_COLS] == USAGE_COLS


@pytest.mark.parametrize("account", sorted(USAGE_EXPECTED))
def test_usage_golden(usage_features, account):
    assert_row(usage_features, account, T, USAGE_EXPECTED[account])


def test_usage_rows_on_and_after_cutoff_are_ignored():
    """Appending/rewriting usage dated >= t changes nothing as of t (U1 already has such rows)."""
    base = make_dataset(USAGE_ACCOUNTS, USAGE_SUBS, usage=USAGE_ROWS)
    more = make_dataset(
        USAGE_ACCOUNTS,
        USAGE_SUBS,
        usage=[r for r in USAGE_ROWS if r[1] < "2024-07-01"]
        + [("U3", "2024-07-01", 7, 70, 1.0, 1.0, 1.0), ("U4", "2024-07-05", 7, 70, 1.0, 1.0, 1.0)],
    )
    a = build_features(base, ["2024-07-01"])[USAGE_COLS]
    b = build_features(more, ["2024-07-01"])[USAGE_COLS]
    pd.testing.assert_frame_equal(a, b)


# Z0 has no usage rows; Z1 has only rows with active_users = 0 (t-3 Fri, t-40 Wed).
# The contract says "a missing day means no activity", so both have no activity and
# every usage indicator must be identical. Started 2023-01-01, 4 seats.
ZERO_EXPECTED = {
    "active_users_per_seat_7d": 0.0,
    "events_per_active_user_7d": NAN,
    "active_days_share_7d": 0.0,
    "active_users_per_seat_30d": 0.0,
    "events_per_active_user_30d": NAN,
    "active_days_share_30d": 0.0,
    "active_users_per_seat_90d": 0.0,
    "events_per_active_user_90d": NAN,
    "active_days_share_90d": 0.0,
    "active_users_trend_30d": NAN,
    "events_trend_30d": NAN,
    "days_since_last_activity": 90.0,
    "weekday_share_30d": NAN,
    "peak_active_users_per_seat_30d": NAN,  # "missing: no seats, or no activity in the window"
    "feature_breadth_30d": 0.0,
    "feature_breadth_90d": 0.0,
}


@pytest.fixture(scope="module")
def zero_features() -> pd.DataFrame:
    ds = make_dataset(
        [("Z0", "2023-01-01"), ("Z1", "2023-01-01")],
        [("Z0", "2023-01-01", 100.0, 4), ("Z1", "2023-01-01", 100.0, 4)],
        usage=[("Z1", "2024-06-28", 0, 0, 0.0, 0.0, 0.0), ("Z1", "2024-05-22", 0, 0, 0.0, 0.0, 0.0)],
    )
    return build_features(ds, ["2024-07-01"])


@pytest.mark.parametrize("account", ["Z0", "Z1"])
def test_usage_zero_activity_rows_equal_missing_days(zero_features, account):
    assert_row(zero_features, account, T, ZERO_EXPECTED)


# --------------------------------------------------------------------------- effort

EFFORT_ACCOUNTS = [("E1", "2023-01-01"), ("E2", "2023-01-01"), ("E3", "2023-01-01"), ("E4", "2023-01-01")]
EFFORT_SUBS = [(a, "2023-01-01", 500.0, 10) for a, _ in EFFORT_ACCOUNTS]
SURVEYS = [
    # E1 -- CES: last 90d [t-90, t) = {2, 6, 4}; previous 90d [t-180, t-90) = {1, 3}
    ("E1", "2024-06-30 23:59:00", "CES", 2.0),  # t-1 at 23:59: counts
    ("E1", "2024-07-01 00:00:00", "CES", 7.0),  # t at 00:00: not known yet
    ("E1", "2024-06-21 12:00:00", "CES", 6.0),  # t-10
    ("E1", "2024-04-02 00:00:00", "CES", 4.0),  # t-90 exactly: in the last 90d
    ("E1", "2024-04-01 23:00:00", "CES", 1.0),  # one hour before t-90: previous 90d
    ("E1", "2024-02-02 10:00:00", "CES", 3.0),  # t-150: previous 90d
    ("E1", "2024-01-02 23:59:00", "CES", 1.0),  # one minute before t-180: outside
    # E1 -- CSAT in 90d = {1, 2, 5, 4}
    ("E1", "2024-06-26 08:00:00", "CSAT", 1.0),  # t-5
    ("E1", "2024-06-11 08:00:00", "CSAT", 2.0),  # t-20
    ("E1", "2024-06-01 08:00:00", "CSAT", 5.0),  # t-30
    ("E1", "2024-05-02 08:00:00", "CSAT", 4.0),  # t-60
    ("E1", "2024-03-23 08:00:00", "CSAT", 1.0),  # t-100: outside 90d
    # E1 -- NPS in 180d = {6, 7, 10}
    ("E1", "2024-06-21 09:00:00", "NPS", 6.0),  # t-10: detractor (0..6)
    ("E1", "2024-03-23 09:00:00", "NPS", 7.0),  # t-100: passive
    ("E1", "2024-01-03 00:00:00", "NPS", 10.0),  # t-180 exactly: inside
    ("E1", "2024-01-02 12:00:00", "NPS", 0.0),  # t-181: outside
    ("E1", "2024-07-06 09:00:00", "NPS", 0.0),  # t+5: future
    # E2 has no answers at all.
    # E3 -- nothing in the 90d windows; one CES in the previous 90d only
    ("E3", "2024-07-01 00:00:00", "CES", 1.0),  # t 00:00: not known
    ("E3", "2024-03-03 15:00:00", "CES", 5.0),  # t-120
    ("E3", "2024-04-01 12:00:00", "CSAT", 1.0),  # t-91: outside 90d
    ("E3", "2024-07-06 09:00:00", "NPS", 0.0),  # future
    # E4 -- recent answers only
    ("E4", "2024-06-28 09:30:00", "CES", 3.0),  # t-3: difficult (1..3)
    ("E4", "2024-06-27 16:00:00", "CES", 5.0),  # t-4
    ("E4", "2024-06-30 10:00:00", "CSAT", 3.0),  # t-1: not low (low is 1..2)
    ("E4", "2024-06-29 10:00:00", "NPS", 0.0),  # t-2: detractor
]
EFFORT_EXPECTED = {
    "E1": {
        "ces_mean_90d": 4.0,  # (2 + 6 + 4) / 3
        "ces_difficult_share_90d": 1 / 3,  # {2}
        "ces_difficult_share_180d": 3 / 5,  # {2, 1, 3} of {2, 6, 4, 1, 3}
        "ces_trend_90d": 2.0,  # 4.0 - (1 + 3) / 2
        "ces_responses_90d": 3.0,
        "csat_mean_90d": 3.0,  # 12 / 4
        "csat_low_share_90d": 0.5,  # {1, 2}
        "csat_responses_90d": 4.0,
        "nps_mean_180d": 23 / 3,
        "nps_detractor_share_180d": 1 / 3,  # {6}
        "nps_responses_180d": 3.0,
    },
    "E2": {
        "ces_mean_90d": NAN,
        "ces_difficult_share_90d": NAN,
        "ces_difficult_share_180d": NAN,
        "ces_trend_90d": NAN,
        "ces_responses_90d": 0.0,
        "csat_mean_90d": NAN,
        "csat_low_share_90d": NAN,
        "csat_responses_90d": 0.0,
        "nps_mean_180d": NAN,
        "nps_detractor_share_180d": NAN,
        "nps_responses_180d": 0.0,
    },
    "E3": {
        "ces_mean_90d": NAN,
        "ces_difficult_share_90d": NAN,
        "ces_difficult_share_180d": 0.0,  # 0 of {5}
        "ces_trend_90d": NAN,
        "ces_responses_90d": 0.0,
        "csat_mean_90d": NAN,
        "csat_low_share_90d": NAN,
        "csat_responses_90d": 0.0,
        "nps_mean_180d": NAN,
        "nps_detractor_share_180d": NAN,
        "nps_responses_180d": 0.0,
    },
    "E4": {
        "ces_mean_90d": 4.0,
        "ces_difficult_share_90d": 0.5,
        "ces_difficult_share_180d": 0.5,
        "ces_trend_90d": NAN,  # nothing in [t-180, t-90)
        "ces_responses_90d": 2.0,
        "csat_mean_90d": 3.0,
        "csat_low_share_90d": 0.0,
        "csat_responses_90d": 1.0,
        "nps_mean_180d": 0.0,
        "nps_detractor_share_180d": 1.0,
        "nps_responses_180d": 1.0,
    },
}


@pytest.fixture(scope="module")
def effort_features() -> pd.DataFrame:
    return build_features(make_dataset(EFFORT_ACCOUNTS, EFFORT_SUBS, surveys=SURVEYS), ["2024-07-01"])


def test_effort_columns(effort_features):
    assert [c for c in effort_features.columns if c in EFFORT_COLS] == EFFORT_COLS


@pytest.mark.parametrize("account", sorted(EFFORT_EXPECTED))
def test_effort_golden(effort_features, account):
    assert_row(effort_features, account, T, EFFORT_EXPECTED[account])


# --------------------------------------------------------------------------- support

# Two cutoffs in one call: t = 2024-07-01 and e = 2024-06-01 (= t-30).
E = pd.Timestamp("2024-06-01")
SUPPORT_ACCOUNTS = [("S1", "2023-01-01"), ("S2", "2024-06-16"), ("S3", "2023-01-01"), ("S4", "2023-01-01")]
SUPPORT_SUBS = [
    ("S1", "2023-01-01", 900.0, 10),
    ("S2", "2024-06-16", 90.0, 3),
    ("S3", "2023-01-01", 500.0, 5),
    ("S4", "2023-01-01", 500.0, None),
]
TICKETS = [
    # id, account, opened_at, closed_at, priority, first_response_minutes   (offsets vs t; vs e = t-30)
    ("K1", "S1", "2024-03-28 00:00", "2024-04-07 00:00", "low", 30.0),  # t-95..t-85 (240 h); e-65..e-55
    ("K2", "S1", "2024-06-11 08:00", "2024-06-12 08:00", "normal", 60.0),  # t-20, 24 h
    ("K3", "S1", "2024-06-21 00:00", "2024-06-21 12:00", "high", 120.0),  # t-10, 12 h
    ("K4", "S1", "2024-06-26 00:00", "2024-07-03 00:00", "urgent", NAN),  # t-5, closed t+2: open at t
    ("K5", "S1", "2024-06-22 00:00", "2024-07-01 00:00", "normal", 13000.0),  # t-9, closed ON t 00:00: open;
    #                                                        response at t-9 + 9d 0h40m = t 00:40: not before t
    ("K6", "S1", "2024-05-22 00:00", None, "high", 10.0),  # t-40 (e-10), never closed
    ("K7", "S1", "2024-07-01 00:00", None, "urgent", 1.0),  # opened ON t: unknown at t
    ("K8", "S1", "2024-06-30 23:00", None, "low", 59.0),  # t-1 23:00, response 23:59 < t
    ("K9", "S1", "2023-12-14 00:00", "2024-02-02 00:00", "normal", 20.0),  # t-200..t-150: too old
    ("K10", "S1", "2024-05-29 00:00", "2024-06-02 00:00", "normal", 5.0),  # t-33..t-29 (96 h); e-3..e+1
    ("K13", "S1", "2024-02-22 00:00", None, "urgent", NAN),  # t-130 (e-100), never closed
    ("K20", "S2", "2024-06-21 00:00", None, "high", NAN),  # t-10
    ("K21", "S2", "2024-06-28 00:00", "2024-06-29 00:00", "normal", 15.0),  # t-3, 24 h
    ("K11", "S4", "2024-06-01 00:00", "2024-06-08 00:00", "normal", NAN),  # t-30 (= e), exactly 7 days
    ("K12", "S4", "2024-06-11 00:00", "2024-06-18 00:01", "low", NAN),  # t-20, 7 days + 1 minute
]
SUPPORT_EXPECTED = {
    ("S1", T): {
        "tickets_per_seat_30d": 0.5,  # K2 K3 K4 K5 K8 = 5 / 10 seats * 30 / 30
        "tickets_per_seat_90d": 7 / 30,  # + K6 K10 = 7 / 10 * 30 / 90
        "tickets_opened_90d": 7.0,
        "high_urgent_tickets_90d": 3.0,  # K3 K4 K6
        "open_tickets": 5.0,  # K4 K5 K6 K8 K13
        "open_high_urgent_tickets": 3.0,  # K4 K6 K13
        "open_tickets_over_7d": 3.0,  # K5 (t-9) K6 K13
        "median_hours_to_close_90d": 60.0,  # closed in [t-90,t): K1 240, K2 24, K3 12, K10 96 -> (24+96)/2
        "long_tickets_share_90d": 0.25,  # K1
        "median_first_response_minutes_90d": 59.0,  # K2 60, K3 120, K6 10, K8 59, K10 5 (K5 too late)
    },
    ("S1", E): {
        "tickets_per_seat_30d": 0.2,  # K6 K10 = 2 / 10 * 30 / 30
        "tickets_per_seat_90d": 0.1,  # K1 K6 K10 = 3 / 10 * 30 / 90
        "tickets_opened_90d": 3.0,
        "high_urgent_tickets_90d": 1.0,  # K6
        "open_tickets": 3.0,  # K6 K10 (closes e+1) K13
        "open_high_urgent_tickets": 2.0,  # K6 K13
        "open_tickets_over_7d": 2.0,  # K6 K13 (K10 opened e-3)
        "median_hours_to_close_90d": 240.0,  # K1 only
        "long_tickets_share_90d": 1.0,
        "median_first_response_minutes_90d": 10.0,  # K1 30, K6 10, K10 5
    },
    ("S2", T): {  # 15 days old: days = min(w, 15) = 15
        "tickets_per_seat_30d": 4 / 3,  # 2 / 3 seats * 30 / 15
        "tickets_per_seat_90d": 4 / 3,
        "tickets_opened_90d": 2.0,
        "high_urgent_tickets_90d": 1.0,
        "open_tickets": 1.0,  # K20
        "open_high_urgent_tickets": 1.0,
        "open_tickets_over_7d": 1.0,  # K20 opened t-10
        "median_hours_to_close_90d": 24.0,
        "long_tickets_share_90d": 0.0,
        "median_first_response_minutes_90d": 15.0,
    },
    ("S3", T): {
        "tickets_per_seat_30d": 0.0,
        "tickets_per_seat_90d": 0.0,
        "tickets_opened_90d": 0.0,
        "high_urgent_tickets_90d": 0.0,
        "open_tickets": 0.0,
        "open_high_urgent_tickets": 0.0,
        "open_tickets_over_7d": 0.0,
        "median_hours_to_close_90d": NAN,
        "long_tickets_share_90d": NAN,
        "median_first_response_minutes_90d": NAN,
    },
    ("S3", E): {
        "tickets_per_seat_30d": 0.0,
        "tickets_per_seat_90d": 0.0,
        "tickets_opened_90d": 0.0,
        "high_urgent_tickets_90d": 0.0,
        "open_tickets": 0.0,
        "open_high_urgent_tickets": 0.0,
        "open_tickets_over_7d": 0.0,
        "median_hours_to_close_90d": NAN,
        "long_tickets_share_90d": NAN,
        "median_first_response_minutes_90d": NAN,
    },
    ("S4", T): {  # seats unknown
        "tickets_per_seat_30d": NAN,
        "tickets_per_seat_90d": NAN,
        "tickets_opened_90d": 2.0,
        "high_urgent_tickets_90d": 0.0,
        "open_tickets": 0.0,
        "open_high_urgent_tickets": 0.0,
        "open_tickets_over_7d": 0.0,
        "median_hours_to_close_90d": 168 + 1 / 120,  # (168 + 168 1/60) / 2
        "long_tickets_share_90d": 0.5,  # only K12 took more than 7 days
        "median_first_response_minutes_90d": NAN,
    },
    ("S4", E): {  # K11 opened exactly at e: not before e
        "tickets_per_seat_30d": NAN,
        "tickets_per_seat_90d": NAN,
        "tickets_opened_90d": 0.0,
        "high_urgent_tickets_90d": 0.0,
        "open_tickets": 0.0,
        "open_high_urgent_tickets": 0.0,
        "open_tickets_over_7d": 0.0,
        "median_hours_to_close_90d": NAN,
        "long_tickets_share_90d": NAN,
        "median_first_response_minutes_90d": NAN,
    },
}


@pytest.fixture(scope="module")
def support_features() -> pd.DataFrame:
    ds = make_dataset(SUPPORT_ACCOUNTS, SUPPORT_SUBS, tickets=TICKETS)
    return build_features(ds, ["2024-07-01", "2024-06-01"])


def test_support_population_and_columns(support_features):
    # S2 starts 2024-06-16, after e: it has a row only at t
    assert sorted(support_features.index) == sorted(SUPPORT_EXPECTED)
    assert [c for c in support_features.columns if c in SUPPORT_COLS] == SUPPORT_COLS


@pytest.mark.parametrize("key", sorted(SUPPORT_EXPECTED), ids=lambda k: f"{k[0]}@{k[1]:%Y-%m-%d}")
def test_support_golden(support_features, key):
    assert_row(support_features, key[0], key[1], SUPPORT_EXPECTED[key])


# --------------------------------------------------------------------------- absent tables


@pytest.mark.parametrize(
    ("table", "cols"),
    [
        ("usage", [c for c in USAGE_COLS if not c.startswith("feature_breadth")]),
        ("surveys", EFFORT_COLS),
        ("tickets", SUPPORT_COLS),
    ],
)
def test_absent_table_makes_family_missing(table, cols):
    ds = make_dataset(
        USAGE_ACCOUNTS[:3] + EFFORT_ACCOUNTS[:1] + SUPPORT_ACCOUNTS[:1],
        USAGE_SUBS[:3] + EFFORT_SUBS[:1] + SUPPORT_SUBS[:1],
        usage=USAGE_ROWS,
        tickets=TICKETS,
        surveys=SURVEYS,
        absent=(table,),
    )
    out = build_features(ds, ["2024-07-01", "2024-06-01"])
    assert len(out) == 9  # U1, U3, E1, S1 at both cutoffs; U2 (started 2024-06-11) at t only
    assert set(cols) <= set(out.columns)
    assert out[cols].isna().all().all(), out[cols].loc[:, ~out[cols].isna().all()]
