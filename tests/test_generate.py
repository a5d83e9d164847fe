"""The synthetic base: deterministic, contract-valid, and with plausible dynamics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.generate import GeneratorConfig, generate, summarize


def test_same_seed_same_base_and_other_seed_differs():
    a = generate(GeneratorConfig(accounts=150, seed=3, years=1))
    b = generate(GeneratorConfig(accounts=150, seed=3, years=1))
    c = generate(GeneratorConfig(accounts=150, seed=4, years=1))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["usage"].equals(c["usage"])


def test_generated_base_passes_validation(base_dir):
    from churnml.dataset import validate_dataset

    report = validate_dataset(base_dir)
    assert report.ok, report.format()
    assert set(report.tables) == {"accounts", "subscriptions", "usage", "tickets", "surveys", "milestones"}


def test_all_six_tables_cover_about_three_years(base_tables):
    usage = base_tables["usage"]
    span = (usage["date"].max() - usage["date"].min()).days
    assert 3 * 365 - 60 <= span <= 3 * 365
    assert len(base_tables["accounts"]) == 2000
    for name, df in base_tables.items():
        assert len(df) > 0, name


def test_churn_per_year_is_plausible_and_differs_by_segment(base_tables):
    s = summarize(base_tables)
    assert 0.15 <= s.loc["All", "churn_per_year"] <= 0.30
    assert s.loc["SMB", "churn_per_year"] > s.loc["Enterprise", "churn_per_year"]
    for seg in ("SMB", "Mid-Market", "Enterprise"):
        assert 0.04 <= s.loc[seg, "churn_per_year"] <= 0.45, seg
        assert 0.05 <= s.loc[seg, "expansions_per_year"] <= 0.5, seg


def test_churn_concentrates_at_renewals_with_monthly_and_annual_terms(base_tables):
    subs = base_tables["subscriptions"].sort_values(["account_id", "effective_date"])
    prev_end = subs.groupby("account_id")["contract_end"].shift(1)
    churn = subs["mrr"].eq(0)
    at_renewal = (subs["effective_date"] == prev_end)[churn].mean()
    assert at_renewal >= 0.8
    term_days = (subs["contract_end"] - subs["effective_date"]).dt.days
    assert term_days.between(28, 31).any() and term_days.between(360, 370).any()


def test_segments_differ_in_size_and_price(base_tables):
    first = base_tables["subscriptions"].groupby("account_id").first()
    seg = base_tables["accounts"].set_index("account_id")["segment"]
    med = first.join(seg).groupby("segment")[["seats", "mrr"]].median()
    assert med.loc["SMB", "seats"] < med.loc["Mid-Market", "seats"] < med.loc["Enterprise", "seats"]
    assert med.loc["SMB", "mrr"] < med.loc["Mid-Market", "mrr"] < med.loc["Enterprise", "mrr"]


def test_some_names_carry_html_characters(base_tables):
    names = base_tables["accounts"]["name"]
    assert names.str.contains("<").any() and names.str.contains("&").any() and names.str.contains('"').any()


def test_weekends_are_saturday_and_sunday(base_tables):
    usage = base_tables["usage"]
    per_day = usage.groupby(pd.to_datetime(usage["date"]).dt.day_of_week)["active_users"].mean()
    weekend, weekdays = per_day.loc[[5, 6]], per_day.loc[[0, 1, 2, 3, 4]]
    assert weekend.max() < 0.6 * weekdays.min()


def test_usage_falls_before_churn(base_tables):
    """Active users in the 30 days before a churn are well below the 30 days 4 months earlier."""
    subs, usage = base_tables["subscriptions"], base_tables["usage"]
    churns = subs[subs["mrr"].eq(0)][["account_id", "effective_date"]]
    u = usage.merge(churns, on="account_id")
    days_before = (u["effective_date"] - u["date"]).dt.days
    late = u[days_before.between(1, 30)].groupby("account_id")["active_users"].sum()
    early = u[days_before.between(121, 150)].groupby("account_id")["active_users"].sum()
    both = pd.concat([late, early], axis=1, keys=["late", "early"]).fillna(0)
    both = both[both["early"] > 0]
    assert (both["late"] / both["early"]).median() < 0.6


def test_nps_is_weaker_than_ces_as_a_churn_signal(base_tables):
    """Low effort scores relate to churn more strongly than low NPS (rank correlation of means)."""
    subs, surveys = base_tables["subscriptions"], base_tables["surveys"]
    churned = subs.groupby("account_id")["mrr"].min().eq(0)
    s = surveys.assign(churned=surveys["account_id"].map(churned).fillna(False).astype(float))
    mean_score = s.groupby(["kind", "account_id"]).agg(x=("score", "mean"), y=("churned", "first"))
    r = {k: -mean_score.loc[k, "x"].corr(mean_score.loc[k, "y"], method="spearman") for k in ("CES", "NPS")}
    assert r["CES"] > 0.1
    assert r["CES"] > r["NPS"]


@pytest.mark.parametrize("bad", [{"accounts": 0}, {"years": 0.1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        generate(GeneratorConfig(**bad))


def test_onboarding_without_first_value_churns_more(base_tables):
    ms = base_tables["milestones"]
    fv = ms[ms["milestone"] == "first_value"].set_index("account_id")["completed_at"].notna()
    churned = base_tables["subscriptions"].groupby("account_id")["mrr"].min().eq(0)
    rate = churned.reindex(fv.index).groupby(fv).mean()
    assert rate[False] > rate[True] + 0.05
    assert np.isfinite(rate).all()
