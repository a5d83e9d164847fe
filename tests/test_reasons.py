"""The reasons engine on small literal cases: timing apart, words that agree with the points, plays
that fit, what changed with its causes, and how to lower it by re-prediction."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml

from churnml.errors import ChurnmlError
from churnml.features import Context, indicators_for
from churnml.features._registry import Indicator
from churnml.scoring.reasons import (
    ALL_SEGMENTS,
    COMPONENTS,
    REASON_COLUMNS,
    assign_plays,
    attribute_change,
    component_of,
    components,
    disagrees,
    displayed,
    explain_reasons,
    family_plays,
    format_value,
    formatter,
    healthy_levels,
    how_to_lower,
    is_reason,
    ledger_column_names,
    ledger_columns,
    lower_risk_half,
    lower_summary,
    parse_playbook,
    plain_missing,
    reason_disagrees,
    reason_metrics,
    reason_texts,
    select_drivers,
    select_reasons,
    timing_lines,
    what_changed,
)
from churnml.scoring.reasons.changes import _pts

CTX = Context(
    feature_columns=("feature_x",),
    present=frozenset({"usage", "tickets", "surveys", "milestones"}),
    attributes=(("plan_family", "string"), ("employees", "float")),
)
DEFS = {i.name: i for i in indicators_for(CTX)}
AU7, AU30 = "active_users_per_seat_7d", "active_users_per_seat_30d"
HUT, FRT = "high_urgent_tickets_90d", "median_first_response_minutes_90d"


# --- the timing split --------------------------------------------------------------------------------
def test_only_behavioural_and_commercial_state_indicators_with_a_direction_are_reasons():
    assert {n for n in DEFS if not is_reason(n, DEFS)} == {
        "weekday_share_30d",
        "ces_responses_90d",
        "csat_responses_90d",
        "nps_responses_180d",  # no direction
        "days_to_renewal",
        "term_length_days",
        "tenure_days",
        "days_since_mrr_change",  # timing
        "mrr",
        "seats",
        "mrr_per_seat",
        "segment",
        "plan",
        "industry",
        "region",
        "plan_family",
        "employees",
    }  # profile
    assert {
        n: component_of(n, DEFS)
        for n in (
            "days_to_renewal",
            "tenure_days",
            "months_ahead",
            "renewal_month",
            "segment",
            "employees",
            "mrr",
            "weekday_share_30d",
            "previous_churns",
        )
    } == {
        "days_to_renewal": "timing",
        "tenure_days": "timing",
        "months_ahead": "timing",
        "renewal_month": "timing",
        "segment": "profile",
        "employees": "profile",
        "mrr": "profile",
        "weekday_share_30d": "usage",
        "previous_churns": "commercial",
    }


def test_timing_and_profile_are_components_apart_and_points_still_add_up():
    points = pd.DataFrame(
        {
            AU7: [0.10, -0.02],
            "days_to_renewal": [0.30, 0.05],
            "tenure_days": [0.01, 0.0],
            "segment": [0.02, -0.01],
            "mrr": [0.005, 0.0],
            "employees": [0.001, 0.0],
            "months_ahead": [0.04, 0.0],
            "weekday_share_30d": [0.003, 0.0],
            HUT: [0.06, 0.01],
            "mrr_change_90d": [-0.01, 0.0],
        },
        index=["A1", "A2"],
    )
    comp = components(points, DEFS)
    assert (
        list(comp.columns)
        == list(COMPONENTS)
        == ["usage", "effort", "support", "onboarding", "commercial", "timing", "profile"]
    )
    assert comp.loc["A1"].round(6).tolist() == [0.103, 0.0, 0.06, 0.0, -0.01, 0.35, 0.026]
    assert comp.loc["A2"].round(6).tolist() == [-0.02, 0.0, 0.01, 0.0, 0.0, 0.05, -0.01]
    p0 = 0.05
    np.testing.assert_allclose(p0 + comp.sum(axis=1), p0 + points.sum(axis=1), atol=1e-12)


def test_timing_lines():
    X = pd.DataFrame(
        {
            "days_to_renewal": [53, -12, np.nan, 0, 1, -3],
            "term_length_days": [365, 30, np.nan, 91, 730, 120],
            "tenure_days": [800, 45, 400, 1, 3000, 200],
            "days_since_mrr_change": [300, 1, np.nan, 1, 59, np.nan],
        }
    )
    assert timing_lines(X, "2026-11-01") == [
        "renews in 53 days, on 2026-12-24; annual term; customer for 2 years 2 months; last MRR change 9 months ago",
        "monthly term: renews every month; customer for 45 days; last MRR change 1 day ago",  # rolling: no date
        "no renewal date on record; customer for 13 months",
        "renews today (2026-11-01); quarterly term; customer for 1 day; last MRR change 1 day ago",
        "renews in 1 day, on 2026-11-02; 2-year term; customer for 8 years 2 months; last MRR change 59 days ago",
        "renewal date 2026-10-29 passed 3 days ago; no new contract end on record; 4-month term; customer for 6 months",
    ]


# --- words ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, value, healthy, past, peer, text",
    [
        (
            AU7,
            0.1,
            0.4,
            0.6,
            "SMB",
            "Active users per seat (7 days): 0.10, down from 0.60 three months ago; healthy SMB accounts: 0.40",
        ),
        (AU7, 0.1, 0.4, np.nan, None, "Active users per seat (7 days): 0.10; healthy accounts: 0.40"),
        (AU7, 0.1, np.nan, 0.6, "SMB", "Active users per seat (7 days): 0.10, down from 0.60 three months ago"),
        (AU7, 0.1, np.nan, np.nan, "SMB", "Active users per seat (7 days): 0.10"),
        (AU7, np.nan, 0.4, np.nan, "SMB", "Active users per seat (7 days): no data (no licensed seats on record)"),
        (
            "active_users_trend_30d",
            -0.42,
            0.02,
            np.nan,
            "SMB",
            "Change in active users (last 30 vs previous 30 days): -42%; healthy SMB accounts: +2%",
        ),
        (
            HUT,
            3.0,
            0.0,
            0.0,
            "Mid-Market",
            "High or urgent tickets opened (90 days): 3, up from 0 three months ago; healthy Mid-Market accounts: 0",
        ),
        (
            FRT,
            50.0,
            30.0,
            np.nan,
            "SMB",
            "Median minutes to first response (90 days): 50 min; healthy SMB accounts: 30 min",
        ),
        (
            "mrr_change_90d",
            np.nan,
            0.0,
            np.nan,
            "SMB",
            "MRR change over 90 days: no data (no MRR 90 days ago: the account is newer, or was not paying then)",
        ),
        ("first_value_reached", 0.0, 1.0, np.nan, "SMB", "First value reached: no; healthy SMB accounts: yes"),
        (
            "ces_trend_90d",
            -0.75,
            0.1,
            np.nan,
            "SMB",
            "Change in average effort score (last 90 vs previous 90 days): "
            "-0.8 points; healthy SMB accounts: +0.1 points",
        ),
        (
            "days_since_last_activity",
            1.0,
            np.nan,
            12.0,
            None,
            "Days since last product activity: 1 day, down from 12 days three months ago",
        ),
    ],
)
def test_reason_words_for_each_reference(name, value, healthy, past, peer, text):
    assert reason_texts(DEFS[name], [value], [healthy], [past], peers=[peer]) == [text]


def test_disagrees_compares_values_as_the_words_show_them():
    au7 = DEFS[AU7]  # risk "low": a risk-raising value must be below its reference
    assert disagrees(
        au7,
        [0.404, 0.39, 0.45, 0.41, np.nan, 0.30],
        [0.40, 0.40, 0.40, 0.40, 0.40, np.nan],
        [0.02, 0.02, 0.02, -0.02, 0.02, 0.02],
    ).tolist() == [True, False, True, False, False, False]
    frt = DEFS[FRT]  # risk "high": a first response faster than healthy accounts cannot raise the risk in words
    assert disagrees(frt, [12.0, 50.0], [30.0, 30.0], [0.03, 0.03]).tolist() == [True, False]
    # expansion: a reason raising the chance to expand must be on the healthy side
    assert disagrees(au7, [0.6, 0.1], [0.4, 0.4], [0.05, 0.05], target="expansion").tolist() == [False, True]


# --- select_reasons ------------------------------------------------------------------------------------
@pytest.fixture()
def case():
    X = pd.DataFrame(
        {
            AU7: [0.10, 0.45, 0.30],
            FRT: [12.0, 50.0, 40.0],
            HUT: [3.0, 0.0, 1.0],
            "mrr_change_90d": [np.nan, 0.0, 0.1],
            "days_to_renewal": [53.0, 200.0, 30.0],
            "segment": ["SMB", "SMB", "Enterprise"],
        },
        index=pd.Index(["A1", "A2", "A3"], name="account_id"),
    )
    points = pd.DataFrame(
        {
            AU7: [0.15, 0.02, 0.04],
            FRT: [0.03, 0.01, 0.02],
            HUT: [0.06, -0.02, -0.0005],
            "mrr_change_90d": [0.005, 0.0, 0.0],
            "days_to_renewal": [0.30, 0.0, 0.2],
            "segment": [0.02, 0.0, 0.0],
        },
        index=X.index,
    )
    healthy = pd.DataFrame(
        {AU7: [0.40, 0.35], FRT: [30.0, 40.0], HUT: [0.0, 1.0], "mrr_change_90d": [0.0, 0.02]},
        index=["SMB", ALL_SEGMENTS],
    )
    past = pd.DataFrame({AU7: [0.60, 0.30], FRT: [30.0, 50.0], HUT: [0.0, 2.0]}, index=["A1", "A2"])
    return X, points, healthy, past


def test_reasons_rank_behaviour_only_and_quote_only_references_that_agree(case):
    X, points, healthy, past = case
    r = select_reasons(points, X, DEFS, healthy, past=past, top=3)
    assert list(r.columns) == REASON_COLUMNS
    got = r[["account_id", "rank", "direction", "feature", "points", "text"]].values.tolist()
    assert got == [
        [
            "A1",
            1,
            "raises",
            AU7,
            0.15,
            "Active users per seat (7 days): 0.10, down from 0.60 three months ago; healthy SMB accounts: 0.40",
        ],
        [
            "A1",
            2,
            "raises",
            HUT,
            0.06,
            "High or urgent tickets opened (90 days): 3, up from 0 three months ago; healthy SMB accounts: 0",
        ],
        [
            "A1",
            3,
            "raises",
            "mrr_change_90d",
            0.005,
            "MRR change over 90 days: no data (no MRR 90 days ago: the account is newer, or was not paying then)",
        ],
        [
            "A2",
            1,
            "raises",
            FRT,
            0.01,
            "Median minutes to first response (90 days): 50 min; healthy SMB accounts: 30 min",
        ],
        ["A2", 2, "lowers", HUT, -0.02, "High or urgent tickets opened (90 days): 0, down from 2 three months ago"],
        ["A3", 1, "raises", AU7, 0.04, "Active users per seat (7 days): 0.30; healthy accounts: 0.35"],
    ]
    # left out: timing (A1 +30 pts), profile, A1's first response faster than healthy and than before (+3 pts),
    # A2's usage above healthy and above its past, A3's first response level with healthy accounts, A3's 0.05 pt
    np.testing.assert_array_equal(r["healthy_level"].to_numpy(), [0.40, 0.0, np.nan, 30.0, np.nan, 0.35])
    np.testing.assert_array_equal(r["past_value"].to_numpy(), [0.60, 0.0, np.nan, np.nan, 2.0, np.nan])
    assert not reason_disagrees(r, DEFS).any()
    assert r["family"].tolist() == ["usage", "support", "commercial", "support", "support", "usage"]


def test_expansion_reasons_quote_the_healthy_side(case):
    X, points, healthy, past = case
    r = select_reasons(points, X, DEFS, healthy, past=past, target="expansion", top=2)
    assert r[["account_id", "rank", "direction", "feature"]].values.tolist() == [
        ["A1", 1, "raises", FRT],  # 12 min, faster than healthy 30 min: a reason to expand, not to churn
        ["A1", 2, "raises", "mrr_change_90d"],  # missing: said plainly
        ["A2", 1, "raises", AU7],  # 0.45, above healthy 0.40 and up from 0.30
    ]  # A2's fewer urgent tickets than before lower expansion: no words explain that; A3: nothing said
    assert r["text"].tolist()[0::2] == [
        "Median minutes to first response (90 days): 12 min, down from 30 min three months ago; "
        "healthy SMB accounts: 30 min",
        "Active users per seat (7 days): 0.45, up from 0.30 three months ago; healthy SMB accounts: 0.40",
    ]


@pytest.mark.parametrize("name", sorted(DEFS))
def test_words_agree_with_points_for_every_indicator(name):
    """For each indicator: risk-raising reasons quote values on the risk side of what they quote,
    risk-lowering ones on the healthy side; a value on the wrong side of every reference is no reason;
    timing, profile and indicators without a direction are never reasons."""
    ind = DEFS[name]
    flag = ind.unit.startswith("flag")  # yes/no: nothing is said healthier than "yes", riskier than "no"
    h, step = (0.5, 0.3) if flag else (50.0, 30.0)  # values said apart in every unit
    up = 1.0 if ind.risk == "high" else -1.0
    risky, healthy_v = h + step * up, h - step * up
    ids = pd.Index(["risk_up", "healthy_up", "healthy_down", "risk_down", "missing_up"], name="account_id")
    kind_cat = ind.kind == "categorical"
    values = ["x"] * 5 if kind_cat else [risky, healthy_v, healthy_v, risky, np.nan]
    X = pd.DataFrame({name: values, "segment": "SMB"}, index=ids)
    points = pd.DataFrame({name: [0.05, 0.05, -0.05, -0.05, 0.05]}, index=ids)
    levels = pd.DataFrame({name: [h]}, index=["SMB"]) if is_reason(name, DEFS) else pd.DataFrame(index=["SMB"])
    r = select_reasons(points, X, DEFS, levels, top=3)
    if not is_reason(name, DEFS):
        assert r.empty
        return
    assert not reason_disagrees(r, DEFS).any()
    chosen = set(r["account_id"])
    assert chosen == (
        {"risk_up", "missing_up"} | (set() if flag and ind.risk == "low" else {"healthy_down"})
        if flag
        else {"risk_up", "healthy_down", "missing_up"}
    )
    said = formatter(ind)(h)
    for row in r.itertuples():
        if row.account_id == "missing_up":
            assert "no data (" in row.text and "healthy" not in row.text
        else:
            assert row.text.endswith(f"; healthy SMB accounts: {said}") and row.healthy_level == h
            s = np.sign(displayed(ind, [row.value])[0] - displayed(ind, [h])[0]) * up
            assert s == (1 if row.points > 0 else -1)


# --- plays ---------------------------------------------------------------------------------------------
BOOK = {
    "conditions": {"seats_underused": "peak_active_users_per_seat_30d < 0.5"},
    "churn": {
        "adoption": {"title": "Adoption workshop", "text": "a", "for": ["usage"]},
        "right_size": {
            "title": "Right-size seats",
            "text": "r",
            "for": [AU7, "peak_active_users_per_seat_30d"],
            "when": ["seats_underused", "not expansion_candidate"],
            "excludes": ["more_seats"],
        },
        "escalation": {"title": "Support escalation", "text": "e", "for": [HUT, "open_tickets"], "min_points": 5},
        "support": {"title": "Support review", "text": "s", "for": "support"},
    },
    "expansion": {
        "more_seats": {
            "title": "Propose more seats",
            "text": "m",
            "for": ["peak_active_users_per_seat_30d"],
            "when": ["not at_risk"],
        },
        "conversation": {"title": "Expansion conversation", "text": "c", "for": ["usage"], "when": "not at_risk"},
    },
}
PEAK = "peak_active_users_per_seat_30d"


def test_plays_threshold_once_per_account_conditions_and_exclusions():
    rows = [  # account, target, rank, direction, family, feature, points
        ("A1", "churn", 1, "raises", "usage", AU7, 0.15),
        ("A1", "churn", 2, "raises", "support", "tickets_per_seat_30d", 0.0099),  # under 1 point
        ("A1", "churn", 3, "raises", "usage", "active_days_share_30d", 0.02),  # adoption already given
        ("A1", "churn", 4, "lowers", "usage", "events_trend_30d", -0.05),  # lowering: no play
        ("A2", "churn", 1, "raises", "support", HUT, 0.03),  # escalation needs 5 points: support review
        ("A2", "churn", 2, "raises", "support", "open_tickets", 0.06),
        ("A3", "churn", 1, "raises", "usage", AU7, 0.05),
        ("A3", "churn", 2, "raises", "usage", PEAK, 0.04),  # seats under-used, not an expansion candidate
        ("A3", "expansion", 1, "raises", "usage", PEAK, 0.03),  # more seats excluded by right-size
        ("A4", "churn", 1, "raises", "usage", PEAK, 0.02),
        ("A4", "expansion", 1, "raises", "usage", PEAK, 0.05),  # at risk: no expansion play
        ("A5", "churn", 1, "raises", "usage", AU7, 0.05),
        ("A5", "churn", 2, "raises", "usage", PEAK, 0.03),  # an expansion candidate: no right-sizing
        ("A5", "expansion", 1, "raises", "usage", PEAK, 0.04),
        ("A6", "churn", 1, "raises", "usage", PEAK, 0.05),
        ("A6", "churn", 2, "raises", "usage", AU7, 0.05),  # peak missing: seats_underused does not hold
    ]
    reasons = pd.DataFrame(rows, columns=["account_id", "target", "rank", "direction", "family", "feature", "points"])
    X = pd.DataFrame({PEAK: [0.9, 0.9, 0.3, 0.95, 0.3, np.nan]}, index=["A1", "A2", "A3", "A4", "A5", "A6"])
    flags = {"at_risk": pd.Series({"A4": True}), "expansion_candidate": pd.Series({"A5": True, "A3": False})}
    out = assign_plays(reasons, X, BOOK, min_points=1.0, flags=flags)
    assert out["play_id"].tolist() == [
        "adoption",
        "",
        "",
        "",
        "support",
        "escalation",
        "right_size",  # A3: right-size names AU7 first: it goes to that reason, not to the family's workshop
        "adoption",
        "conversation",
        "adoption",
        "",
        "adoption",
        "",
        "more_seats",
        "adoption",
        "",
    ]
    assert out["play"].iloc[0] == "Adoption workshop: a"
    m = reason_metrics(
        out.assign(text="", value=np.nan, healthy_level=np.nan, past_value=np.nan),
        DEFS,
        high_risk=["A4"],
        min_points=1.0,
    )
    assert (m["plays_under_threshold"], m["plays_repeated_on_an_account"], m["plays"]) == (0, 0, 10)


def test_the_built_in_playbook_parses_and_answers_every_family():
    from churnml.io.artifacts import builtin_text

    book = yaml.safe_load(builtin_text("playbooks.yaml"))
    pb = parse_playbook(book, "playbooks.yaml")
    assert {p.id for p in pb.plays} >= {"seat_right_sizing", "seat_expansion", "adoption_workshop"}
    for target in ("churn", "expansion"):
        assert set(family_plays(book, target)) == {"usage", "effort", "support", "onboarding", "commercial"}
    # the older format (target -> family -> title, text) still reads
    old = {"churn": {"usage": {"title": "Adoption workshop", "text": "book it"}}}
    assert family_plays(old, "churn") == {"usage": "Adoption workshop: book it"}


def test_the_built_in_plays_go_to_the_reason_they_address():
    """The issue's account: seats under-used on the busiest day, few active users, narrow use. Right-size hangs
    on the peak-seats reason (what its text says), re-activation on the active-users one, the workshop on the
    narrow use; another usage reason gets no second play (one play once per account)."""
    from churnml.io.artifacts import builtin_text

    pb = parse_playbook(yaml.safe_load(builtin_text("playbooks.yaml")), "playbooks.yaml")
    rows = [
        ("A1", "churn", 1, "raises", "usage", AU7, 0.07),
        ("A1", "churn", 2, "raises", "usage", PEAK, 0.05),
        ("A1", "churn", 3, "raises", "usage", "feature_breadth_30d", 0.03),
        ("A1", "churn", 4, "raises", "usage", "active_users_per_seat_30d", 0.02),
        ("A2", "churn", 1, "raises", "usage", AU7, 0.07),  # seats well used on the busiest day: no right-sizing
        ("A2", "churn", 2, "raises", "usage", "active_users_per_seat_30d", 0.05),
    ]
    reasons = pd.DataFrame(rows, columns=["account_id", "target", "rank", "direction", "family", "feature", "points"])
    X = pd.DataFrame({PEAK: [0.3, 0.8]}, index=["A1", "A2"])
    out = assign_plays(reasons, X, pb, min_points=1.0, flags={"expansion_candidate": pd.Series({"A1": False})})
    assert out["play_id"].tolist() == [
        "user_reactivation",
        "seat_right_sizing",
        "adoption_workshop",
        "",
        "user_reactivation",
        "adoption_workshop",  # the usage family's play, for the reason nothing closer answers
    ]


def test_play_counts_in_the_playbooks_order_with_the_plays_never_proposed():
    from churnml.scoring.reasons import play_counts

    drivers = pd.DataFrame(
        [
            ("A1", "churn", 1, "adoption"),
            ("A1", "churn", 2, "support"),
            ("A2", "churn", 1, ""),
            ("A2", "churn", 2, "adoption"),
            ("A3", "churn", 1, "support"),
            ("A3", "expansion", 1, "conversation"),
        ],
        columns=["account_id", "target", "rank", "play_id"],
    )
    scores = pd.DataFrame({"account_id": ["A1", "A2", "A3"], "risk_tier": ["high", "high", "low"]})
    c = play_counts(drivers, scores, BOOK).set_index("play_id")
    assert c.index.tolist() == ["adoption", "right_size", "escalation", "support", "more_seats", "conversation"]
    assert c["accounts"].tolist() == [2, 0, 0, 2, 0, 1]
    assert c["high_risk_accounts"].tolist() == [2, 0, 0, 1, 0, 0]
    assert c["first_play_accounts"].tolist() == [2, 0, 0, 1, 0, 0]  # A2's first play is on its second reason
    assert c.loc["adoption", "first_play_share_of_high"] == 1.0 and c.loc["support", "title"] == "Support review"


@pytest.mark.parametrize(
    "book, message",
    [
        ([], "a playbook is a mapping"),
        ({"churn": {}, "risk": {}}, "unknown top-level key(s) ['risk']"),
        ({"churn": {"x": {"title": "T", "for": ["usage"]}}}, "churn.x needs a text"),
        ({"churn": {"x": {"title": "T", "text": "t"}}}, "churn.x needs 'for'"),
        (
            {"churn": {"x": {"title": "T", "text": "t", "for": ["usag"]}}},
            "unknown family or indicator 'usag' (did you mean usage",
        ),
        (
            {"churn": {"x": {"title": "T", "text": "t", "for": ["days_to_renewal"]}}},
            "days_to_renewal is never a reason",
        ),
        (
            {"churn": {"x": {"title": "T", "text": "t", "for": ["usage"], "when": ["seats_full"]}}},
            "churn.x.when: unknown condition 'seats_full'",
        ),
        ({"conditions": {"c": "peak_seats < 0.5"}}, "conditions.c: unknown indicator 'peak_seats'"),
        (
            {"conditions": {"c": "peak_active_users_per_seat_30d is low"}},
            "conditions.c: 'peak_active_users_per_seat_30d is low' is not",
        ),
        ({"conditions": {"at_risk": "mrr > 0"}}, "conditions.at_risk: at_risk is built in"),
        (
            {"churn": {"x": {"title": "T", "text": "t", "for": ["usage"], "excludes": ["y"]}}},
            "churn.x.excludes: unknown play 'y'",
        ),
        (
            {
                "churn": {"x": {"title": "T", "text": "t", "for": ["usage"]}},
                "expansion": {"x": {"title": "T", "text": "t", "for": ["usage"]}},
            },
            "expansion.x: play id 'x' is used twice",
        ),
        (
            {"churn": {"x": {"title": "T", "text": "t", "for": ["usage"], "min_points": -1}}},
            "churn.x.min_points must be a number of points >= 0",
        ),
        (
            {"churn": {"x": {"title": "T", "text": "t", "for": ["usage"], "then": 1}}},
            "churn.x: unknown key(s) ['then']",
        ),
    ],
)
def test_playbook_errors_name_the_file_the_key_and_the_problem(book, message):
    with pytest.raises(ChurnmlError) as e:
        parse_playbook(book, "acme/playbooks.yaml")
    assert str(e.value).startswith("acme/playbooks.yaml: ") and message in str(e.value)


# --- what changed ----------------------------------------------------------------------------------
def test_an_indicator_over_several_windows_gives_one_reason_per_direction():
    AU90 = "active_users_per_seat_90d"
    ids = pd.Index(["A1", "A2"], name="account_id")
    X = pd.DataFrame(
        {AU7: [0.0, 0.5], AU30: [0.0, 0.1], AU90: [0.1, 0.6], HUT: [2.0, 0.0], "segment": "SMB"}, index=ids
    )
    points = pd.DataFrame({AU7: [0.12, 0.03], AU30: [0.05, 0.04], AU90: [0.02, -0.02], HUT: [0.03, -0.01]}, index=ids)
    healthy = pd.DataFrame({AU7: [0.4], AU30: [0.4], AU90: [0.4], HUT: [0.0]}, index=["SMB"])
    r = select_reasons(points, X, DEFS, healthy, top=3)
    # A1: the 7-day window speaks for the 30- and 90-day ones; A2: its 7-day usage is above healthy (no
    # words for it), so the 30-day window raises and the 90-day one lowers
    assert r[["account_id", "rank", "feature"]].values.tolist() == [
        ["A1", 1, AU7],
        ["A1", 2, HUT],
        ["A2", 1, AU30],
        ["A2", 2, AU90],
    ]


def _ledger(points: dict, values: dict, p0: float, explains: str = "churn_90d", k: int = 15) -> pd.DataFrame:
    ids = pd.Index(list(next(iter(points.values())).keys()), name="account_id")
    P = pd.DataFrame(points, index=ids).fillna(0.0)
    X = pd.DataFrame(values, index=ids)
    return ledger_columns(P, X, p0, DEFS, explains=explains, k=k)


PREV = {
    "points": {
        AU7: {"A1": 0.02, "A3": 0.0},
        HUT: {"A1": 0.0, "A3": 0.0},
        "days_to_renewal": {"A1": 0.05, "A3": 0.05},
        "segment": {"A1": 0.0, "A3": 0.0},
    },
    "values": {AU7: {"A1": 0.6, "A3": 0.3}, HUT: {"A1": 0.0, "A3": 0.0}, "days_to_renewal": {"A1": 53.0, "A3": 200.0}},
}
CUR = {
    "points": {
        AU7: {"A1": 0.17, "A2": 0.01, "A3": 0.1},
        HUT: {"A1": 0.06, "A2": 0.0, "A3": 0.0},
        "days_to_renewal": {"A1": 0.07, "A2": 0.0, "A3": 0.05},
        "segment": {"A1": 0.0, "A2": 0.0, "A3": 0.0},
    },
    "values": {
        AU7: {"A1": 0.1, "A2": 0.3, "A3": 0.3},
        HUT: {"A1": 3.0, "A2": 0.0, "A3": 0.0},
        "days_to_renewal": {"A1": 23.0, "A2": 90.0, "A3": 170.0},
    },
}


def test_what_changed_names_its_causes_in_points():
    prev, cur = _ledger(p0=0.05, **PREV), _ledger(p0=0.05, **CUR)
    assert list(cur.columns) == ledger_column_names(15)
    text = what_changed(prev, cur, DEFS, previous_date="2026-10-01")
    assert text.to_dict() == {
        "A1": "risk +23 pts since 2026-10-01 (12% -> 35%): active users per seat (7 days) fell 0.60 -> 0.10 (+15), "
        "high or urgent tickets opened (90 days) rose 0 -> 3 (+6), timing: renewal 53 -> 23 days away (+2)",
        "A2": "first score",
        "A3": "risk +10 pts since 2026-10-01 (10% -> 20%): active users per seat (7 days) still 0.30 (+10)",
    }
    parts = attribute_change(prev, cur, DEFS)
    total = parts.groupby("account_id")["points"].sum()
    np.testing.assert_allclose(total.loc[["A1", "A3"]].to_numpy(), [0.23, 0.10], atol=1e-12)


def test_what_changed_with_few_kept_reasons_a_new_model_or_another_probability():
    prev, cur = _ledger(p0=0.05, k=1, **PREV), _ledger(p0=0.05, k=1, **CUR)
    text = what_changed(prev, cur, DEFS, previous_date="2026-10-01", top=3)
    # only one reason kept per row: the tickets' points are not known on either side, so they are "other"
    assert text["A1"] == (
        "risk +23 pts since 2026-10-01 (12% -> 35%): active users per seat (7 days) fell 0.60 -> "
        "0.10 (+15), other small changes (+6), timing: renewal 53 -> 23 days away (+2)"
    )
    refit = _ledger(p0=0.08, **CUR)
    assert (
        what_changed(_ledger(p0=0.05, **CUR), refit, DEFS, previous_date="2026-10-01")["A2"]
        == "risk +3 pts since 2026-10-01 (6% -> 9%): model updated (+3)"
    )
    other = _ledger(p0=0.05, explains="churn_12m", **CUR)
    dates = pd.Series(pd.to_datetime(["2026-09-01", "2026-10-01"]), index=["A1", "A3"])
    assert (
        what_changed(prev, other, DEFS, previous_date=dates)["A3"]
        == "risk 10% -> 20% since 2026-10-01, now measured as churn_12m (was churn_90d): no breakdown"
    )


# --- how to lower it -----------------------------------------------------------------------------
def test_how_to_lower_re_predicts_with_each_reason_at_a_healthy_level():
    X = pd.DataFrame(
        {AU7: [0.10, 0.50, 0.10], AU30: [0.30, 0.50, 0.30], HUT: [2.0, 1.0, 2.0], "segment": ["SMB", "SMB", "SMB"]},
        index=pd.Index(["B1", "B2", "B3"], name="account_id"),
    )
    calls = []

    def predict(Xm):  # a linear model, computed by hand below
        calls.append(list(Xm.index))
        z = 0.6 - 0.5 * Xm[AU7] - 0.5 * Xm[AU30] + 0.05 * Xm[HUT]
        return np.clip(z.to_numpy(), 0, 1)

    p = predict(X)
    np.testing.assert_allclose(p, [0.50, 0.15, 0.50])
    reasons = pd.DataFrame(
        [  # account, rank, feature, value
            ("B1", 1, AU7, 0.10),
            ("B1", 2, HUT, 2.0),
            ("B1", 3, AU30, 0.30),
            ("B2", 1, HUT, 1.0),
            ("B2", 2, AU7, 0.50),
            ("B3", 1, AU7, 0.10),
        ],
        columns=["account_id", "rank", "feature", "value"],
    ).assign(target="churn", direction="raises", points=0.05)
    healthy = pd.DataFrame({AU7: [0.40], AU30: [0.40], HUT: [0.0]}, index=["SMB"])
    past = pd.DataFrame({AU7: [0.80]}, index=["B2"])
    calls.clear()
    out = how_to_lower(X, reasons, healthy, predict, p, defs=DEFS, at_risk=[True, True, False], past=past)
    assert out[["account_id", "rank", "feature", "level", "source"]].values.tolist() == [
        ["B1", 1, AU7, 0.40, "healthy"],
        ["B1", 2, HUT, 0.0, "healthy"],
        ["B2", 1, AU7, 0.80, "past"],
        ["B2", 2, HUT, 0.0, "healthy"],
    ]
    np.testing.assert_allclose(out["p_to"], [0.30, 0.40, 0.0, 0.10], atol=1e-12)
    np.testing.assert_allclose(out["p_together"], [0.20, 0.20, 0.0, 0.0], atol=1e-12)
    assert out["text"].tolist() == [
        "if active users per seat (7 days) returned to 0.40 (and its other windows to healthy levels), "
        "risk would fall from 50% to 30%",
        "if high or urgent tickets opened (90 days) returned to 0, risk would fall from 50% to 40%",
        "if active users per seat (7 days) returned to 0.80 (its level three months ago), risk would fall from 15% "
        "to 0%",
        "if high or urgent tickets opened (90 days) returned to 0, risk would fall from 15% to 10%",
    ]
    # one call per candidate rank over all accounts, one for the pairs; B1's 30-day usage is not a
    # second candidate (it moves with the 7-day one), B3 is not at risk
    assert calls == [["B1", "B2"], ["B1", "B2"], ["B1", "B2"]]
    assert lower_summary(out)["B1"].endswith("; both together: risk 50% -> 20%")
    strict = how_to_lower(
        X, reasons, healthy, predict, p, defs=DEFS, at_risk=[True, True, False], past=past, min_cut=12.0, moves=1
    )
    assert strict[["account_id", "feature"]].values.tolist() == [["B1", AU7], ["B2", AU7]]


# --- healthy levels and metrics -------------------------------------------------------------------
def test_healthy_levels_per_segment_fall_back_to_all_segments():
    X = pd.DataFrame(
        {
            AU7: [0.1, 0.3, 0.5, 0.7, 0.2],
            "segment": ["SMB", "SMB", "SMB", "Enterprise", "SMB"],
            "mrr": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    p = np.array([0.9, 0.2, 0.1, 0.3, 0.8])
    mask = lower_risk_half(p, X)
    assert mask.tolist() == [False, True, True, True, False]  # SMB median 0.5 (0.9, 0.2, 0.1, 0.8); Enterprise alone
    lv = healthy_levels(X, mask, DEFS, min_accounts=2)
    assert list(lv.columns) == [AU7] and lv.index.tolist() == ["SMB", ALL_SEGMENTS]
    assert lv[AU7].tolist() == [0.4, 0.5]


def test_reason_metrics_count_what_breaks_the_rules():
    reasons = pd.DataFrame(
        [  # a timing top reason, a disagreeing one, a play twice, a play under 1 point
            ("H1", "churn", 1, "raises", "commercial", "days_to_renewal", 53.0, 26.0, np.nan, 0.30, "p1"),
            ("H2", "churn", 1, "raises", "support", FRT, 12.0, 30.0, np.nan, 0.03, "p2"),
            ("H2", "churn", 2, "raises", "support", HUT, 3.0, 0.0, np.nan, 0.02, "p2"),
            ("L1", "churn", 1, "raises", "usage", AU7, 0.1, 0.4, 0.6, 0.005, "p3"),
        ],
        columns=[
            "account_id",
            "target",
            "rank",
            "direction",
            "family",
            "feature",
            "value",
            "healthy_level",
            "past_value",
            "points",
            "play_id",
        ],
    )
    points = pd.DataFrame(
        {"days_to_renewal": [0.30, 0.0, 0.0], FRT: [0.0, 0.03, 0.0], HUT: [0.0, 0.02, 0.0], AU7: [0.01, 0.0, 0.005]},
        index=["H1", "H2", "L1"],
    )
    m = reason_metrics(reasons, DEFS, high_risk=["H1", "H2", "H3"], min_points=1.0, points=points)
    assert m["risk_raising_reasons_by_reference"] == {"healthy": 3, "healthy and past": 1}
    assert m["high_risk_raw_top_driver_timing_share"] == 0.5  # H1's strongest driver is timing, H2's is not
    assert m["risk_raising_candidate_points_left_out_share"] == pytest.approx(1 - 0.055 / 0.065)  # H1's usage
    assert {
        k: m[k]
        for k in (
            "high_risk_accounts",
            "high_risk_without_reason",
            "high_risk_top_reason_timing",
            "risk_raising_reasons",
            "risk_raising_reasons_disagreeing",
            "plays",
            "plays_under_threshold",
            "plays_repeated_on_an_account",
        )
    } == {
        "high_risk_accounts": 3,
        "high_risk_without_reason": 1,
        "high_risk_top_reason_timing": 1,
        "risk_raising_reasons": 4,
        "risk_raising_reasons_disagreeing": 2,
        "plays": 4,
        "plays_under_threshold": 1,
        "plays_repeated_on_an_account": 1,
    }


def test_explain_reasons_gives_a_scoring_run_everything_at_once(case):
    X, points, healthy, past = case
    e = explain_reasons(
        points,
        0.05,
        X,
        DEFS,
        healthy=healthy,
        playbook=BOOK,
        as_of="2026-11-01",
        past=past,
        expansion_points=points.loc[["A2"]],
        at_risk=pd.Series({"A1": True, "A2": False}),
    )
    np.testing.assert_allclose(0.05 + e.components.sum(axis=1), 0.05 + points.sum(axis=1), atol=1e-12)
    assert e.reasons[["account_id", "target", "rank", "play_id"]].values.tolist() == [
        ["A1", "churn", 1, "adoption"],
        ["A1", "churn", 2, "escalation"],
        ["A1", "churn", 3, ""],  # 0.5 pt
        ["A2", "churn", 1, "support"],
        ["A2", "churn", 2, ""],  # lowers the risk
        ["A3", "churn", 1, "adoption"],
        ["A2", "expansion", 1, "conversation"],
    ]
    assert e.timing["A1"] == "renews in 53 days, on 2026-12-24"
    assert e.ledger.loc["A1", "reason_1_feature"] == AU7 and e.ledger.loc["A1", "points_timing"] == 0.30


def test_no_negative_zero_in_words():
    """A value or a change that rounds to zero is said without a sign ("0.0 points", never "-0.0")."""
    said = {name: format_value(ind, -0.0004) for name, ind in DEFS.items() if ind.kind != "categorical"}
    assert not [s for s in said.values() if s.startswith(("-0", "−0"))], said
    assert _pts(-0.0004) == "0.0" and _pts(-0.004) == "-0.4" and _pts(0.2) == "+20"


def test_select_drivers_takes_strongest_raisers_then_strongest_lowerer():
    P = np.array(
        [
            [0.01, -0.03, 0.05, 0.00, -0.01],  # two raisers (cols 2, 0), lowerer col 1
            [-0.01, -0.02, -0.03, -0.04, -0.05],  # no raisers, lowerer col 4 at rank 1
            [0.02, 0.03, 0.04, 0.05, 0.01],  # three strongest raisers, no lowerer
            [0.0, 0.0, 0.0, 0.0, 0.0],  # nothing moves: no drivers
        ]
    )
    rows, cols, ranks = select_drivers(P, top=3)
    assert rows.tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert cols.tolist() == [2, 0, 1, 4, 3, 2, 1]
    assert ranks.tolist() == [1, 2, 3, 1, 1, 2, 3]


# --- words for numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ind", list(DEFS.values()), ids=lambda i: i.name)
def test_missing_values_are_said_in_plain_words(ind):
    text = plain_missing(ind)
    assert text and not re.search(r"\bt-\d|\[t|\bt\)|\bbefore t\b|\bt\b|window|cutoff", text), text


def test_plain_missing_words_for_a_few_indicators_and_a_later_one():
    assert plain_missing(DEFS["mrr_change_90d"]) == "no MRR 90 days ago: the account is newer, or was not paying then"
    assert plain_missing(DEFS["csat_low_share_90d"]) == "no satisfaction survey answered in the last 90 days"
    assert plain_missing(DEFS["plan_family"]) == "not given"
    later = Indicator(
        "logins_share_14d",
        "usage",
        "share of logins (14 days)",
        "f",
        "share 0..1",
        "no login in [t-14, t) or account not paying 14 days before t",
        "low",
    )
    assert plain_missing(later) == "no login in the last 14 days or account not paying 14 days ago"


def test_displayed_rounds_as_the_words_show():
    share = Indicator("s", "effort", "s", "f", "share 0..1", "m", "high")
    flag = Indicator("f", "onboarding", "f", "f", "flag 0/1", "m", "low")
    ratio = Indicator("r", "usage", "r", "f", "users per seat per day", "m", "low")
    np.testing.assert_array_equal(displayed(share, [0.126, np.nan]), [0.13, np.nan])
    np.testing.assert_array_equal(displayed(flag, [0.4, 0.6]), [0.0, 1.0])
    np.testing.assert_array_equal(displayed(ratio, [0.404, 123.4]), [0.40, 123.0])
    days = DEFS["days_to_renewal"]
    assert format_value(days, 1.0) == "1 day" and format_value(days, -1.0) == "-1 day"
    assert format_value(days, None) == "no data"
