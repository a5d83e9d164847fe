"""Driver selection and the words of a driver, on literal values."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churnml.features._registry import Indicator
from churnml.scoring.explain import describe, describe_values, driver_rows, format_value, select_drivers

TREND = Indicator("au_trend_30d", "usage", "active users (last 30 vs previous 30 days)", "f", "relative change",
                  "no usage in the previous 30 days", "low")
SHARE = Indicator("ces_difficult_share_90d", "effort", "share of 'difficult' CES answers (90 days)", "f",
                  "share of answers", "no CES answers", "high")
DAYS = Indicator("days_to_renewal", "commercial", "days to renewal", "f", "days", "no contract end", "context")
NPS = Indicator("nps_mean_180d", "effort", "average NPS answer (180 days)", "f", "score 0..10 (10 = promoter)",
                "no NPS answer", "low")
SEG = Indicator("segment", "commercial", "segment", "f", "level", "not given", "context", kind="categorical")
DEFS = {i.name: i for i in (TREND, SHARE, DAYS, SEG)}


@pytest.mark.parametrize("ind, value, median, text", [
    (TREND, -0.42, 0.01, "Active users (last 30 vs previous 30 days) fell 42%; segment median +1%"),
    (TREND, 0.25, None, "Active users (last 30 vs previous 30 days) rose 25%"),
    (TREND, 0.0, -0.03, "Active users (last 30 vs previous 30 days) did not change; segment median -3%"),
    (TREND, np.nan, 0.01, "Active users (last 30 vs previous 30 days): no data (no usage in the previous 30 days)"),
    (SHARE, 0.5, 0.1, "Share of 'difficult' CES answers (90 days): 50%; segment median 10%"),
    (DAYS, 12.0, 163.0, "Days to renewal: 12 days; segment median 163 days"),
    (NPS, 10.0, 7.0, "Average NPS answer (180 days): 10.0; segment median 7.0"),
    (Indicator("ces_trend_90d", "effort", "change in CES (last 90 vs previous 90 days)", "f", "score points",
               "no CES answers", "low"), -0.75, 0.0, "Change in CES (last 90 vs previous 90 days): -0.8 points; "
                                                      "segment median +0.0 points"),
    (SEG, "Enterprise", None, "Segment: Enterprise"),
    (SEG, None, None, "Segment: not given"),
])
def test_driver_words(ind, value, median, text):
    assert describe(ind, value, median) == text


def test_words_for_many_values_equal_one_at_a_time():
    values = np.array([-0.42, np.nan, 0.0, 1.5, -0.004])
    medians = np.array([0.01, 0.01, np.nan, -0.2, 0.0])
    assert describe_values(TREND, values, medians) == [describe(TREND, v, m) for v, m in zip(values, medians)]
    assert format_value(DAYS, None) == "no data"


def test_select_drivers_takes_strongest_raisers_then_strongest_lowerer():
    P = np.array([
        [0.01, -0.03, 0.05, 0.00, -0.01],   # two raisers (cols 2, 0), lowerer col 1
        [-0.01, -0.02, -0.03, -0.04, -0.05],  # no raisers, lowerer col 4 at rank 1
        [0.02, 0.03, 0.04, 0.05, 0.01],   # three strongest raisers, no lowerer
        [0.0, 0.0, 0.0, 0.0, 0.0],        # nothing moves: no drivers
    ])
    rows, cols, ranks = select_drivers(P, top=3)
    assert rows.tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert cols.tolist() == [2, 0, 1, 4, 3, 2, 1]
    assert ranks.tolist() == [1, 2, 3, 1, 1, 2, 3]


def test_driver_rows_carry_values_segment_medians_and_plays_for_raisers_only():
    idx = pd.MultiIndex.from_tuples([("A1", pd.Timestamp("2026-01-01")), ("A2", pd.Timestamp("2026-01-01"))],
                                    names=["account_id", "cutoff"])
    X = pd.DataFrame({"au_trend_30d": [-0.42, 0.3], "ces_difficult_share_90d": [0.5, 0.0],
                      "days_to_renewal": [12.0, 300.0], "segment": ["SMB", "Unknown"]}, index=idx)
    points = pd.DataFrame({"au_trend_30d": [0.04, -0.01], "ces_difficult_share_90d": [0.02, -0.03],
                           "days_to_renewal": [-0.05, 0.0], "segment": [0.0, 0.01]}, index=idx)
    medians = pd.DataFrame({"au_trend_30d": [0.01], "ces_difficult_share_90d": [0.1], "days_to_renewal": [163.0]},
                           index=["SMB"])
    book = {"usage": "Adoption workshop: book it", "commercial": "Renewal planning: plan it"}
    d = driver_rows(points, X, medians, X["segment"], DEFS, "churn", 2, book)
    assert d[["account_id", "rank", "direction", "feature"]].values.tolist() == [
        ["A1", 1, "raises", "au_trend_30d"], ["A1", 2, "raises", "ces_difficult_share_90d"],
        ["A1", 3, "lowers", "days_to_renewal"],
        ["A2", 1, "raises", "segment"], ["A2", 2, "lowers", "ces_difficult_share_90d"]]
    assert d["text"].tolist()[:3] == [
        "Active users (last 30 vs previous 30 days) fell 42%; segment median +1%",
        "Share of 'difficult' CES answers (90 days): 50%; segment median 10%",
        "Days to renewal: 12 days; segment median 163 days"]
    assert d["text"].iloc[4] == "Share of 'difficult' CES answers (90 days): 0%"  # segment without peers
    assert d["play"].tolist() == ["Adoption workshop: book it", "", "", "Renewal planning: plan it", ""]
    assert np.isnan(d["value"].iloc[3]) and d["value"].iloc[0] == -0.42
    assert d["points"].tolist() == [0.04, 0.02, -0.05, 0.01, -0.03]


def _all_indicators():
    from churnml.features import Context, indicators_for

    ctx = Context(feature_columns=("feature_x",), present=frozenset({"usage", "tickets", "surveys", "milestones"}),
                  attributes=(("plan_family", "string"), ("employees", "float")))
    return indicators_for(ctx)


@pytest.mark.parametrize("ind", _all_indicators(), ids=lambda i: i.name)
def test_missing_values_are_said_in_plain_words(ind):
    from churnml.scoring.explain import plain_missing

    text = plain_missing(ind)
    assert text and not re.search(r"\bt-\d|\[t|\bt\)|\bbefore t\b|\bt\b|window|cutoff", text), text


def test_plain_missing_words_for_a_few_indicators_and_a_later_one():
    from churnml.scoring.explain import plain_missing

    by = {i.name: i for i in _all_indicators()}
    assert plain_missing(by["mrr_change_90d"]) == "no MRR 90 days ago: the account is newer, or was not paying then"
    assert plain_missing(by["csat_low_share_90d"]) == "no satisfaction survey answered in the last 90 days"
    assert plain_missing(by["plan_family"]) == "not given"
    later = Indicator("logins_share_14d", "usage", "share of logins (14 days)", "f", "share 0..1",
                      "no login in [t-14, t) or account not paying 14 days before t", "low")
    assert plain_missing(later) == "no login in the last 14 days or account not paying 14 days ago"


def test_displayed_rounds_as_the_words_show():
    from churnml.scoring.explain import displayed

    share = Indicator("s", "effort", "s", "f", "share 0..1", "m", "high")
    flag = Indicator("f", "onboarding", "f", "f", "flag 0/1", "m", "low")
    ratio = Indicator("r", "usage", "r", "f", "users per seat per day", "m", "low")
    np.testing.assert_array_equal(displayed(share, [0.126, np.nan]), [0.13, np.nan])
    np.testing.assert_array_equal(displayed(flag, [0.4, 0.6]), [0.0, 1.0])
    np.testing.assert_array_equal(displayed(ratio, [0.404, 123.4]), [0.40, 123.0])
    assert format_value(DAYS, 1.0) == "1 day" and format_value(DAYS, -1.0) == "-1 day"
