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
    from churnml.api import validate_dataset

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


def test_the_demo_base_has_no_hostile_names_and_is_otherwise_the_same_base():
    plain = generate(GeneratorConfig(accounts=400, seed=5, years=1.0))
    hostile = generate(GeneratorConfig(accounts=400, seed=5, years=1.0, hostile_names=True))
    names = plain["accounts"]["name"]
    assert not names.str.contains('[<>"]', regex=True).any()
    assert names.str.contains("&").any() and names.str.contains("'").any()  # ordinary company names keep them
    assert hostile["accounts"]["name"].str.contains("<script>", regex=False).any()
    differ = names != hostile["accounts"]["name"]
    assert 0 < differ.sum() < 0.03 * len(names)  # only the hostile draws differ
    for t in plain:
        cols = [c for c in plain[t].columns if t != "accounts" or c != "name"]
        pd.testing.assert_frame_equal(plain[t][cols], hostile[t][cols])


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


# --- contract terms ------------------------------------------------------------------------
def _tables_hash(tables) -> str:
    import hashlib

    m = hashlib.sha256()
    for name in sorted(tables):
        df = tables[name]
        m.update(f"{name}:{len(df)}:{','.join(map(str, df.columns))}:{','.join(map(str, df.dtypes))}".encode())
        m.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return m.hexdigest()


def test_default_terms_give_the_same_base_as_before_terms_existed():
    """Hash of this base computed before ``GeneratorConfig.terms`` was added: the demo stays the same base
    (the full demo, 5,000 accounts seed 42, was checked the same way: 0a1c9c9a...)."""
    before = "b6f8f331a3eeb551b22d007ca49235b8e0810040853a1fc4fc3d2346c01de567"
    from churnml.generate import DEFAULT_TERMS

    kw = {"accounts": 200, "seed": 11, "years": 1.0, "hostile_names": True}  # the names of that time
    assert _tables_hash(generate(GeneratorConfig(**kw))) == before
    assert _tables_hash(generate(GeneratorConfig(**kw, terms=DEFAULT_TERMS))) == before
    assert _tables_hash(generate(GeneratorConfig(**kw, terms="default"))) == before


def _term_days(subs: pd.DataFrame) -> pd.Series:
    live = subs[subs["mrr"] > 0]
    return (live["contract_end"] - live["effective_date"]).dt.days


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("monthly", {30}),
        ("annual", {365}),
        ("quarterly", {30, 90, 365}),
        ("multi-year", {30, 365, 730, 1095}),
    ],
)
def test_term_presets_give_their_terms(preset, expected):
    t = generate(GeneratorConfig(accounts=400, seed=2, years=1.5, terms=preset))
    days = _term_days(t["subscriptions"])
    first = t["subscriptions"].sort_values("effective_date").groupby("account_id").first()
    signed = set((first["contract_end"] - first["effective_date"]).dt.days.unique())
    assert signed == expected
    # mid-term rows (expansions) keep the term's end: no term is longer than the longest signed
    assert days.max() <= max(expected)


@pytest.mark.parametrize("preset", ["quarterly", "multi-year", "mixed"])
def test_other_terms_keep_churn_plausible_and_at_renewals(preset):
    t = generate(GeneratorConfig(accounts=900, seed=4, terms=preset))
    s = summarize(t)
    assert 0.10 <= s.loc["All", "churn_per_year"] <= 0.35, s
    subs = t["subscriptions"].sort_values(["account_id", "effective_date"])
    prev_end = subs.groupby("account_id")["contract_end"].shift(1)
    at_renewal = (subs["effective_date"] == prev_end)[subs["mrr"].eq(0)].mean()
    assert at_renewal >= 0.75


def test_multi_year_enterprise_churns_less_per_year_than_monthly_smb():
    t = generate(
        GeneratorConfig(
            accounts=1200, seed=8, terms={"SMB": {30: 1.0}, "Mid-Market": {365: 1.0}, "Enterprise": {1095: 1.0}}
        )
    )
    s = summarize(t)
    assert s.loc["Enterprise", "churn_per_year"] < s.loc["SMB", "churn_per_year"]


def test_parse_terms_reads_presets_flat_and_per_segment_mixes():
    from churnml.generate import DEFAULT_TERMS, parse_terms

    assert parse_terms("default") == DEFAULT_TERMS
    flat = parse_terms("30:0.25, 365:0.75")
    assert flat == {
        "SMB": {30: 0.25, 365: 0.75},
        "Mid-Market": {30: 0.25, 365: 0.75},
        "Enterprise": {30: 0.25, 365: 0.75},
    }
    per = parse_terms("SMB=90:1;Enterprise=365:0.5,1095:0.5")
    assert per == {"SMB": {90: 1.0}, "Mid-Market": DEFAULT_TERMS["Mid-Market"], "Enterprise": {365: 0.5, 1095: 0.5}}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("fortnightly", "unknown preset"),
        ("30:0.5,365:0.4", "sum to 1"),
        ("Gold=365:1", "unknown segment"),
        ("30:x", "DAYS:SHARE"),
        ("3:1", "whole number of days"),
    ],
)
def test_bad_term_mixes_are_refused_with_a_message(spec, message):
    from churnml.generate import parse_terms

    with pytest.raises(ValueError, match=message):
        parse_terms(spec)
    if ":" in spec and "=" not in spec and "x" not in spec:
        with pytest.raises(ValueError, match=message):
            generate(GeneratorConfig(accounts=5, seed=1, years=0.5, terms=spec))
