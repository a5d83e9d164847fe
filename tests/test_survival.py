"""Time to churn: events and censoring (golden), period rows, the hazard model's promises
(monotone curves, exact explanations, save/load), evaluation helpers, and bases of other shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.errors import ChurnmlError
from churnml.modeling.early_warning import early_warning_table, horizon_metrics, lead_time
from churnml.modeling.events import churn_events, churned_within, did_not_renew, next_renewal_days, period_edges
from churnml.modeling.survival import SurvivalModel, period_rows, timing_inputs

D = pd.Timestamp
NaN = np.nan
LAST = D("2025-12-31")
CUTS = [D("2025-01-01"), D("2025-04-01"), D("2025-07-01"), D("2025-10-01"), D("2026-01-01")]


def _subs(rows):
    cols = ["account_id", "effective_date", "mrr", "contract_end", "end_kind"]
    df = pd.DataFrame(rows, columns=cols)
    df["effective_date"] = pd.to_datetime(df["effective_date"])
    df["contract_end"] = pd.to_datetime(df["contract_end"])
    return df


SUBS = _subs(
    [
        # A: renews, never churns
        ("A", "2024-06-01", 100.0, "2025-06-01", None),
        ("A", "2025-06-01", 100.0, "2026-06-01", None),
        # B: churns on 2025-03-31, 89 days after the 2025-01-01 cutoff
        ("B", "2024-01-01", 80.0, "2025-03-31", None),
        ("B", "2025-03-31", 0.0, None, "churned"),
        # C: churns, is won back, churns again
        ("C", "2024-01-01", 60.0, "2025-02-01", None),
        ("C", "2025-02-01", 0.0, None, None),
        ("C", "2025-05-01", 50.0, "2026-05-01", None),
        ("C", "2025-11-15", 0.0, None, ""),
        # D: a fixed term that completes (not churn)
        ("D", "2024-08-01", 70.0, "2025-08-01", None),
        ("D", "2025-08-01", 0.0, None, "completed"),
        # E: completes, comes back, churns: the churn counts only for cutoffs after the return
        ("E", "2024-01-01", 40.0, "2025-02-01", None),
        ("E", "2025-02-01", 0.0, None, "completed"),
        ("E", "2025-03-01", 40.0, "2026-03-01", None),
        ("E", "2025-05-01", 0.0, None, None),
        # F: churns after the last day of the data: unobserved, so it stays unknown
        ("F", "2024-12-01", 90.0, "2025-12-01", None),
        ("F", "2025-12-01", 90.0, "2026-12-01", None),
        ("F", "2026-02-01", 0.0, None, None),
    ]
)


def _ev():
    return churn_events(SUBS, CUTS, LAST)


def _at(ev, account, cutoff):
    return ev.loc[(account, D(cutoff))]


# --- events: golden --------------------------------------------------------------------------
def test_churn_events_golden_rows():
    ev = _ev()
    expected = {  # (account, cutoff): (observed_days, churn_days, completed_days)
        ("A", "2025-01-01"): (365, NaN, NaN),
        ("A", "2025-04-01"): (275, NaN, NaN),
        ("A", "2025-07-01"): (184, NaN, NaN),
        ("A", "2025-10-01"): (92, NaN, NaN),
        ("A", "2026-01-01"): (0, NaN, NaN),
        ("B", "2025-01-01"): (365, 89, NaN),
        ("C", "2025-01-01"): (365, 31, NaN),
        ("C", "2025-07-01"): (184, 137, NaN),
        ("C", "2025-10-01"): (92, 45, NaN),
        ("D", "2025-01-01"): (365, NaN, 212),
        ("D", "2025-04-01"): (275, NaN, 122),
        ("D", "2025-07-01"): (184, NaN, 31),
        ("E", "2025-01-01"): (365, NaN, 31),
        ("E", "2025-04-01"): (275, 30, NaN),
        ("F", "2025-01-01"): (365, NaN, NaN),
        ("F", "2025-04-01"): (275, NaN, NaN),
        ("F", "2025-07-01"): (184, NaN, NaN),
        ("F", "2025-10-01"): (92, NaN, NaN),
        ("F", "2026-01-01"): (0, NaN, NaN),
    }
    got = {(a, f"{t:%Y-%m-%d}"): tuple(r) for (a, t), r in ev.iterrows()}
    assert set(got) == set(expected)  # B after its churn, C while churned, D/E after their ends: not paying on t-1
    for key, want in expected.items():
        np.testing.assert_array_equal(np.array(got[key], float), np.array(want, float), err_msg=str(key))
    assert ev.attrs["last_day"] == LAST


@pytest.mark.parametrize(
    "account, cutoff, days, expected",
    [
        ("B", "2025-01-01", 89, False),  # churn on day t+89 is outside [t, t+89)
        ("B", "2025-01-01", 90, True),  # ... and inside [t, t+90): a churn exactly at the boundary
        ("A", "2025-10-01", 90, False),  # observed: 2025-10-01 + 90 = 2025-12-30 <= last day
        ("A", "2025-10-01", 92, pd.NA),  # t + 92 = 2026-01-01 is after the last day: never "stayed"
        ("A", "2025-10-01", 365, pd.NA),
        ("F", "2025-10-01", 365, pd.NA),  # churns after the data ends: unknown, not "stayed"
        ("C", "2025-01-01", 30, False),
        ("C", "2025-01-01", 32, True),  # first churn only (win-back later)
        ("C", "2025-07-01", 180, True),  # the second churn counts for cutoffs after the win-back
        ("D", "2025-07-01", 30, False),  # completed on day 31: the first 30 days are observed, no churn
        ("D", "2025-07-01", 31, False),
        ("D", "2025-07-01", 90, pd.NA),  # completed inside the window: neither churned nor stayed
        ("E", "2025-01-01", 365, pd.NA),  # completed first: its later churn is not this cutoff's
        ("E", "2025-04-01", 31, True),
    ],
)
def test_churned_within_golden(account, cutoff, days, expected):
    ev = _ev()
    got = churned_within(ev, days).loc[(account, D(cutoff))]
    assert (got is pd.NA) if expected is pd.NA else (got == expected)


def test_unobserved_windows_are_never_labelled_as_staying():
    ev = _ev()
    for days in (30, 90, 180, 365, 400):
        y = churned_within(ev, days)
        stayed = y.fillna(True).eq(False).to_numpy()
        # every "stayed" row has its whole window inside the data
        assert (ev["observed_days"].to_numpy()[stayed] > days).all()
        assert y.loc[("A", D("2026-01-01"))] is not False


def test_churn_events_ignore_rows_after_the_last_day_point_in_time():
    """Rows dated after ``last_day`` are the unobserved future: changing them changes nothing."""
    cut = D("2025-06-30")
    before = churn_events(SUBS, CUTS[:3], cut)
    future = SUBS.copy()
    later = future["effective_date"] > cut
    future.loc[later, "mrr"] = 0.0  # every later row becomes a churn
    future = pd.concat([future, _subs([("A", "2025-07-15", 0.0, None, None)])], ignore_index=True)
    pd.testing.assert_frame_equal(before, churn_events(future, CUTS[:3], cut))
    assert np.isnan(before.loc[("A", D("2025-04-01")), "churn_days"])
    assert before.loc[("A", D("2025-04-01")), "observed_days"] == 91


def test_churn_events_without_end_kind_and_without_rows():
    subs = SUBS.drop(columns=["end_kind"])
    ev = churn_events(subs, CUTS, LAST)
    assert ev.loc[("D", D("2025-07-01")), "churn_days"] == 31  # without end_kind every mrr 0 is churn
    assert ev["completed_days"].isna().all()
    empty = churn_events(SUBS.iloc[:0], CUTS, LAST)
    assert empty.empty and list(empty.columns) == ["observed_days", "churn_days", "completed_days"]
    with pytest.raises(ChurnmlError, match="mrr"):
        churn_events(SUBS.drop(columns=["mrr"]), CUTS, LAST)


# --- period rows: golden ------------------------------------------------------------------------
def test_period_edges_cut_the_year_at_30_90_180_365_and_repeat():
    assert list(period_edges(365)) == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 365]
    assert list(period_edges(90)) == [0, 30, 60, 90]
    assert list(period_edges(400))[-3:] == [365, 395, 425]
    assert period_edges(730)[-1] == 730 and len(period_edges(730)) == 25


def test_period_rows_golden():
    ev = _ev()
    rows = period_rows(ev)
    key = ev.index
    got = {}
    for r in rows.itertuples():
        a, t = key[r.row]
        got.setdefault((a, f"{t:%Y-%m-%d}"), []).append((r.k, r.churn))
    # B churns on day 89: months 1-2 without, month 3 with the churn, nothing after
    assert got[("B", "2025-01-01")] == [(0, 0), (1, 0), (2, 1)]
    # A at 2025-10-01: 92 days observed -> three full months; the fourth runs past the data: left out whole
    assert got[("A", "2025-10-01")] == [(0, 0), (1, 0), (2, 0)]
    # a cutoff whose year is not observed still trains its first months
    assert got[("A", "2025-07-01")] == [(k, 0) for k in range(6)]
    # D completes on day 31: month 1 is at risk and survived; month 2 (with the completion) is left out
    assert got[("D", "2025-07-01")] == [(0, 0)]
    # E completed first: no churn is read for that cutoff
    assert got[("E", "2025-01-01")] == [(0, 0)]
    # F's churn after the data is never seen, and no row runs past the last day
    assert all(c == 0 for _, c in got[("F", "2025-01-01")])
    assert (rows["end_date"] <= np.datetime64(LAST, "D")).all()
    assert ("A", "2026-01-01") not in got


@pytest.mark.parametrize(
    "d, T, expected",
    [
        (100, 365, 100),
        (0, 365, 0),
        (-5, 365, -5),  # within grace: the decision is still pending
        (-20, 365, 345),
        (-20, 30, 10),
        (-400, 365, 330),
        (-20, NaN, NaN),
        (NaN, 365, NaN),
    ],
)
def test_next_renewal_days_golden(d, T, expected):
    got = next_renewal_days(np.array([d]), np.array([T]), grace_days=14)[0]
    assert (np.isnan(got) and np.isnan(expected)) or got == expected


def test_timing_inputs_golden():
    t = timing_inputs(
        np.array([2, 2, 2, 0]),
        np.array([60.0, 60.0, 60.0, 0.0]),
        np.array([100.0, 20.0, NaN, -3.0]),
        np.array([365.0, 30.0, NaN, NaN]),
    )
    np.testing.assert_array_equal(t["months_ahead"], [2, 2, 2, 0])
    np.testing.assert_array_equal(t["renewal_in_days"], [40.0, 20.0, NaN, NaN])
    np.testing.assert_array_equal(t["days_since_renewal"], [325.0, 10.0, NaN, NaN])


def test_did_not_renew_golden():
    ev = _ev()
    X = pd.DataFrame({"days_to_renewal": 0.0, "term_length_days": 365.0}, index=ev.index)
    X.loc[("B", D("2025-01-01")), "days_to_renewal"] = 89.0  # renewal 2025-03-31: churned that day
    X.loc[("A", D("2025-01-01")), "days_to_renewal"] = 151.0  # renewal 2025-06-01: renewed
    X.loc[("F", D("2025-10-01")), "days_to_renewal"] = 61.0  # renewal 2025-12-01 (+14 days) is observed
    X.loc[("A", D("2025-10-01")), "days_to_renewal"] = 85.0  # renewal 2025-12-25 + 14 days runs past the data
    X.loc[("C", D("2025-07-01")), "days_to_renewal"] = NaN  # no contract end known
    y = did_not_renew(ev, X, grace_days=14)
    assert y.loc[("B", D("2025-01-01"))] == True  # noqa: E712
    assert y.loc[("A", D("2025-01-01"))] == False  # noqa: E712
    assert y.loc[("F", D("2025-10-01"))] == False  # noqa: E712
    assert y.loc[("A", D("2025-10-01"))] is pd.NA
    assert y.loc[("C", D("2025-07-01"))] is pd.NA


# --- evaluation helpers ----------------------------------------------------------------------------
def _toy_scores():
    """Three cutoffs, ten accounts; a01 churns 2025-03-20 and is top-ranked from 2025-01-01, a02 churns
    2025-03-25 and is top-ranked at 2025-03-01 only."""
    cuts = [D("2025-01-01"), D("2025-02-01"), D("2025-03-01")]
    accounts = [f"a{i:02d}" for i in range(10)]
    rows = []
    for a in accounts:
        rows.append((a, "2024-01-01", 10.0, "2026-01-01", None))
    rows.append(("a01", "2025-03-20", 0.0, None, None))  # churn
    rows.append(("a02", "2025-03-25", 0.0, None, None))  # churn, flagged only at 2025-03-01
    ev = churn_events(_subs(rows), cuts, D("2025-12-31"))
    p = pd.Series(0.1, index=ev.index)
    p.loc[("a01", slice(None))] = 0.9
    p.loc[("a02", D("2025-03-01"))] = 0.95
    return ev, p


def test_lead_time_golden():
    ev, p = _toy_scores()
    # lookback 78 days: a01 (churn 2025-03-20) is high from 2025-01-01, 78 days before; a02 (churn
    # 2025-03-25) from 2025-03-01, 24 days before
    out = lead_time(p, ev, high_share=0.1, lookback_days=78)
    assert out["churns"] == 2
    assert out["median_lead_days"] == pytest.approx((78 + 24) / 2)
    assert out["share_flagged"] == 1.0 and out["share_flagged_90d_ahead"] == 0.0
    # lookback 60 days: only cutoffs from 2025-01-19 on count, so a01's first high one is 2025-02-01
    assert lead_time(p, ev, lookback_days=60)["median_lead_days"] == pytest.approx((47 + 24) / 2)
    # a fixed threshold only a02 reaches: a01 is never flagged and counts as 0 days of warning
    out = lead_time(p, ev, threshold=0.91, lookback_days=60)
    assert out["median_lead_days"] == pytest.approx(12.0) and out["share_flagged"] == 0.5
    assert out["median_lead_days_flagged"] == 24
    # a churn whose lookback starts before the first scored cutoff is not judged
    assert lead_time(p, ev, lookback_days=79)["churns"] == 1
    assert lead_time(p, ev, lookback_days=365)["churns"] == 0


def test_horizon_metrics_use_only_observed_windows():
    ev, p = _toy_scores()
    curves = pd.DataFrame({"churn_30d": p, "churn_90d": p}, index=p.index)
    tab, rel = horizon_metrics(curves, ev, days=(30, 90))
    assert tab.loc[90, "n"] == 30 and tab.loc[90, "base_rate"] == pytest.approx(6 / 30)  # a01, a02 at every cutoff
    assert tab.loc[30, "base_rate"] == pytest.approx(2 / 30)
    assert rel[90]["n"].sum() == 30
    # a data end that cuts the 90-day window of the last cutoff leaves it out whole (churned or not)
    ev_short = churn_events(
        _subs(
            [(a, "2024-01-01", 10.0, "2026-01-01", None) for a in ["a01", "a02", "a03"]]
            + [("a01", "2025-03-20", 0.0, None, None)]
        ),
        [D("2025-01-01"), D("2025-03-01")],
        D("2025-04-15"),
    )
    c = pd.DataFrame({"churn_90d": 0.5}, index=ev_short.index)
    tab, _ = horizon_metrics(c, ev_short, days=(90,))
    assert tab.loc[90, "n"] == 3  # the 2025-03-01 rows (one churned) are not judged


def test_early_warning_table_picks_renewals_90_to_365_days_away():
    ev, p = _toy_scores()
    X = pd.DataFrame({"days_to_renewal": 200.0}, index=ev.index)
    X.loc[("a03", slice(None)), "days_to_renewal"] = 30.0
    t = early_warning_table({"x": p, "y": -p}, ev, X, label_days=90)
    assert t.loc["x", "n"] == 27 and t.loc["x", "roc_auc"] > t.loc["y", "roc_auc"]
    X.loc[("a04", slice(None)), "days_to_renewal"] = np.nan  # no renewal date: still judged on all accounts
    every = early_warning_table({"x": p, "y": 1 - p}, ev, X, label_days=90, renewal_from=None)
    assert every.loc["x", "n"] == 30 and every.loc["x", "n"] == every.loc["y", "n"]
    np.testing.assert_allclose(every.loc["x", "roc_auc"], 1 - every.loc["y", "roc_auc"])


# --- the model on a small generated base ------------------------------------------------------------


def _prepare(tables):
    from churnml.dataset import Dataset
    from churnml.modeling.training import training_data

    ds = Dataset.from_frames(tables)
    td = training_data(ds, cutoffs="monthly", horizon_days=90, uplift=0.1)
    cuts = td.X.index.get_level_values("cutoff").unique()
    return ds, td, churn_events(ds.subscriptions, cuts, ds.last_date())


@pytest.fixture(scope="module")
def small_base():
    """700 generated accounts over two years: the dataset, its training data and churn events."""
    from churnml.generate import GeneratorConfig, generate

    return _prepare(generate(GeneratorConfig(accounts=700, seed=5, years=2.0)))


@pytest.fixture(scope="module")
def fitted(small_base):
    _ds, td, ev = small_base
    model = SurvivalModel(seed=1).fit(td.X, ev, categorical=td.categorical)
    last_cut = td.X.index.get_level_values("cutoff").max()
    return model, td, ev, td.X[td.X.index.get_level_values("cutoff") == last_cut]


def test_curves_are_monotone_probabilities(fitted):
    model, _, _, X = fitted
    c = model.predict_curve(X, (7, 30, 45, 90, 180, 270, 365, 500))
    v = c.to_numpy()
    assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all()
    assert (np.diff(v, axis=1) >= -1e-12).all()
    h = model.predict_hazards(X, 12)
    np.testing.assert_allclose(1 - np.prod(1 - h.to_numpy(), axis=1), c["churn_365d"], rtol=1e-10)
    np.testing.assert_allclose(1 - np.prod(1 - h.to_numpy()[:, :3], axis=1), c["churn_90d"], rtol=1e-10)


def test_next_renewal_and_median_month(fitted):
    model, _, _, X = fitted
    nr = model.predict_next_renewal(X)
    window = model.next_renewal_window(X)
    c = model.predict_curve(X, (365,))["churn_365d"]
    known = ~np.isnan(window)
    assert known.all()  # every generated account has a contract end
    # a renewal within the year: the next-renewal probability is at most the 12-month one
    inside = window <= 365
    assert (nr[inside] <= c[inside] + 1e-12).all()
    Xn = X.assign(days_to_renewal=np.nan)
    assert model.predict_next_renewal(Xn).isna().all()  # no contract end: NaN, not a guess
    assert np.isfinite(model.predict_curve(Xn)).all().all()  # the curve still exists
    m = model.median_month(X)
    reached = c >= 0.5
    assert m[reached].between(1, 12).all() and m[~reached].isna().all()


@pytest.mark.parametrize("which", [365, "365d", 90, "next_renewal", 500])
def test_explanations_add_up_exactly_to_the_probability(fitted, which):
    model, _, _, X = fitted
    e = model.explain(X, which)
    if which == "next_renewal":
        p = model.predict_next_renewal(X)
    else:
        d = int(str(which).removesuffix("d"))
        p = model.predict_curve(X, (d,))[f"churn_{d}d"]
    np.testing.assert_allclose(e.probability, p, atol=1e-12)
    np.testing.assert_allclose(e.total(), p, atol=1e-10)
    assert list(e.timing.columns) == [
        "months_ahead",
        "renewal_in_days",
        "days_since_renewal",
        "renewals_passed",
        "window",
    ]
    assert list(e.points.columns) == model.features_
    if which != "next_renewal":
        assert (e.timing["window"] == 0).all()
    # the features carry part of the story, not only the calendar
    assert e.points.abs().sum(axis=1).mean() > 0.1 * e.timing.abs().sum(axis=1).mean()


def test_explanations_are_nan_without_a_renewal(fitted):
    model, _, _, X = fitted
    Xn = X.head(5).assign(days_to_renewal=np.nan)
    e = model.explain(Xn, "next_renewal")
    assert e.probability.isna().all() and e.points.isna().all().all()


def test_save_and_load_give_the_same_predictions(fitted, tmp_path):
    model, _, _, X = fitted
    from churnml.io.artifacts import read_model_state, save_model

    folder = save_model(model, tmp_path / "survival")
    assert sorted(p.name for p in folder.iterdir()) == ["hazard_0.lgb.txt", "hazard_1.lgb.txt", "model.json"]
    back = SurvivalModel.from_state(*read_model_state(folder))
    pd.testing.assert_frame_equal(model.predict_curve(X), back.predict_curve(X))
    pd.testing.assert_series_equal(model.predict_next_renewal(X), back.predict_next_renewal(X))
    a, b = model.explain(X, 365), back.explain(X, 365)
    pd.testing.assert_frame_equal(a.points, b.points)
    assert a.base == b.base
    with pytest.raises(ChurnmlError, match="cannot read the model"):
        SurvivalModel.from_state(*read_model_state(tmp_path / "nothing"))
    with pytest.raises(ChurnmlError, match="not a time-to-churn model"):
        SurvivalModel.from_state({"kind": "other"}, {})


def test_scoring_refuses_a_different_feature_set(fitted):
    model, _, _, X = fitted
    with pytest.raises(ChurnmlError, match="lacks"):
        model.predict_curve(X.drop(columns=["mrr"]))
    with pytest.raises(ChurnmlError, match="not fitted"):
        SurvivalModel().predict_curve(X)
    with pytest.raises(ChurnmlError, match="curve days"):
        model.predict_curve(X, (0,))


def test_the_curve_is_calibrated_on_later_cutoffs(small_base):
    """Backtest on the small base: fit with the data cut before a cutoff ``T``, judge the 30- and
    90-day probabilities of ``T`` and the next two cutoffs (ranking, and the mean probability against
    the churn rate: a few dozen churns, so within a factor)."""
    ds, td, ev = small_base
    cuts = td.X.index.get_level_values("cutoff")
    months = sorted(cuts.unique())
    T = months[-7]
    ev_T = churn_events(ds.subscriptions, cuts.unique()[cuts.unique() < T], T - pd.Timedelta(days=1))
    m = SurvivalModel(seed=1).fit(td.X[cuts < T], ev_T, categorical=td.categorical)
    Xt = td.X[cuts.isin(months[-7:-4])]
    curves = m.predict_curve(Xt, (30, 90))
    tab, _ = horizon_metrics(curves, ev, days=(30, 90))
    for d in (30, 90):
        assert tab.loc[d, "roc_auc"] > 0.7
        assert 0.6 < curves[f"churn_{d}d"].mean() / tab.loc[d, "base_rate"] < 1.6


# --- bases of other shapes ----------------------------------------------------------------------------
def _fit_shape(tables, **kw):
    _ds, td, ev = _prepare(tables)
    model = SurvivalModel(seed=1, **kw).fit(td.X, ev, categorical=td.categorical)
    cuts = td.X.index.get_level_values("cutoff")
    return model, td.X[cuts == cuts.max()]


def _check_sensible(model, X):
    c = model.predict_curve(X, (30, 90, 180, 365))
    v = c.to_numpy()
    assert np.isfinite(v).all() and (np.diff(v, axis=1) >= -1e-12).all() and ((v >= 0) & (v <= 1)).all()
    e = model.explain(X, 365)
    np.testing.assert_allclose(e.total(), c["churn_365d"], atol=1e-10)
    return c


def test_events_do_not_need_contract_end():
    pd.testing.assert_frame_equal(churn_events(SUBS.drop(columns=["contract_end"]), CUTS, LAST), _ev())


@pytest.mark.slow
def test_monthly_terms_only():
    from churnml.generate import GeneratorConfig, generate

    model, X = _fit_shape(generate(GeneratorConfig(accounts=500, seed=3, years=1.5, terms="monthly")))
    c = _check_sensible(model, X)
    nr = model.predict_next_renewal(X)
    window = model.next_renewal_window(X)
    assert (window <= 30 + model.grace_days).all()  # a monthly renewal is never more than a term away
    assert (nr <= model.predict_curve(X, (45,))["churn_45d"] + 1e-12).all()
    assert (c["churn_365d"] > c["churn_90d"]).mean() > 0.9  # every month is a renewal: risk keeps adding up


@pytest.mark.slow
def test_multi_year_terms_give_next_renewal_beyond_a_year():
    from churnml.generate import GeneratorConfig, generate

    terms = {"SMB": {365: 1.0}, "Mid-Market": {730: 1.0}, "Enterprise": {1095: 1.0}}
    model, X = _fit_shape(generate(GeneratorConfig(accounts=600, seed=4, years=2.0, terms=terms)))
    c = _check_sensible(model, X)
    window = model.next_renewal_window(X)
    far = window > 365
    assert far.any()  # renewals two and three years away
    nr = model.predict_next_renewal(X)
    assert np.isfinite(nr).all() and (nr[far] >= c["churn_365d"][far] - 1e-12).all()
    e = model.explain(X, "next_renewal")
    np.testing.assert_allclose(e.total(), nr, atol=1e-10)
    assert (e.timing["window"][far] != 0).all()  # the longer window is timing, not a cause


@pytest.mark.slow
def test_a_base_without_contract_end(tmp_path):
    from churnml.api import load_dataset
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset
    from churnml.modeling.training import training_data

    tables = generate(GeneratorConfig(accounts=500, seed=6, years=1.5))
    tables["subscriptions"] = tables["subscriptions"].drop(columns=["contract_end"])
    write_dataset(tables, tmp_path / "base", fmt="parquet")
    ds = load_dataset(tmp_path / "base")
    td = training_data(ds, cutoffs="monthly", horizon_days=90, uplift=0.1)
    assert td.X["days_to_renewal"].isna().all()
    ev = churn_events(ds.subscriptions, td.X.index.get_level_values("cutoff").unique(), ds.last_date())
    model = SurvivalModel(seed=1).fit(td.X, ev, categorical=td.categorical)
    X = td.X[td.X.index.get_level_values("cutoff") == td.X.index.get_level_values("cutoff").max()]
    _check_sensible(model, X)
    assert model.predict_next_renewal(X).isna().all()  # no renewal date: no next-renewal probability
    assert model.median_month(X).notna().sum() + model.median_month(X).isna().sum() == len(X)


def test_a_history_shorter_than_a_year_after_the_first_cutoff():
    from churnml.generate import GeneratorConfig, generate

    model, X = _fit_shape(generate(GeneratorConfig(accounts=600, seed=8, years=1.0)))
    assert model.settings_["trained_days"] < 365  # months never observed in training
    _check_sensible(model, X)  # the curve beyond them holds the last trained month's effect
    assert model.predict_next_renewal(X).notna().all()


def test_a_history_too_short_for_a_calibration_slice_is_a_clear_error():
    from churnml.generate import GeneratorConfig, generate

    _ds, td, ev = _prepare(generate(GeneratorConfig(accounts=150, seed=9, years=0.5)))
    with pytest.raises(ChurnmlError, match="history too short for the time-to-churn model"):
        SurvivalModel(seed=1).fit(td.X, ev, categorical=td.categorical)


def test_a_renewal_beyond_the_modelled_span_is_nan_not_an_error(fitted):
    model, _, _, X = fitted
    Xf = X.head(3).assign(days_to_renewal=[100.0, 4000.0, np.nan], term_length_days=[365.0, 4380.0, np.nan])
    nr = model.predict_next_renewal(Xf)
    assert np.isfinite(nr.iloc[0]) and nr.iloc[1:].isna().all()


def test_fit_as_of_a_day_reads_nothing_after_it(small_base):
    """Point in time: a model fitted as of ``T - 1`` from events of the whole history equals one
    fitted from events computed with the data cut at ``T - 1`` (later churns are never read)."""
    ds, td, ev = small_base
    cuts = td.X.index.get_level_values("cutoff")
    T = sorted(cuts.unique())[-6]
    X_T = td.X[cuts < T]
    cut_ev = churn_events(ds.subscriptions, cuts.unique()[cuts.unique() < T], T - pd.Timedelta(days=1))
    a = SurvivalModel(seed=1).fit(X_T, cut_ev, categorical=td.categorical)
    b = SurvivalModel(seed=1).fit(X_T, ev, categorical=td.categorical, last_day=T - pd.Timedelta(days=1))
    Xt = td.X[cuts == T]
    pd.testing.assert_frame_equal(a.predict_curve(Xt), b.predict_curve(Xt))
    assert a.settings_ == b.settings_


def test_explanations_by_tables_equal_lightgbms_treeshap(fitted):
    """The default (tabulated TreeSHAP, about the cost of a prediction) gives LightGBM's numbers."""
    from churnml.modeling.survival import lightgbm_contributions

    model, _, _, X = fitted
    for which in (365, "next_renewal"):
        a = model.explain(X, which)
        b = model.explain(X, which, contributions=lightgbm_contributions)
        np.testing.assert_allclose(a.points.to_numpy(), b.points.to_numpy(), atol=1e-12)
        np.testing.assert_allclose(a.timing.to_numpy(), b.timing.to_numpy(), atol=1e-12)
        assert a.base == pytest.approx(b.base, abs=1e-14)


def test_explanations_feed_the_reasons_components(fitted):
    """``points`` and ``timing`` side by side are the points frame of ``churnml.scoring.reasons``:
    the synthetic period inputs land in its timing component and the identity holds per component."""
    from churnml.scoring.reasons import TIMING, component_of, components

    model, td, _, X = fitted
    e = model.explain(X, 365)
    defs = {i.name: i for i in td.definitions}
    comp = components(pd.concat([e.points, e.timing], axis=1), defs)
    np.testing.assert_allclose(e.base + comp.sum(axis=1), e.probability, atol=1e-10)
    assert all(component_of(c, defs) == TIMING for c in e.timing.columns)
    assert (comp[TIMING] != 0).any()


def test_risk_window_runs_to_the_renewal_month_end_or_a_year_for_monthly_terms():
    """Annual term: to the end of the month the renewal falls in (at least renewal + grace); monthly term or
    no renewal date: the modelled year; a renewal beyond the modelled span: the year too."""
    from churnml.modeling.events import renewal_window, risk_window_days

    X = pd.DataFrame(
        {"days_to_renewal": [47.0, 85.0, 10.0, NaN, 100.0], "term_length_days": [365.0, 365.0, 30.0, NaN, 91.0]}
    )
    np.testing.assert_allclose(
        renewal_window(X["days_to_renewal"], X["term_length_days"]), [61.0, 99.0, 30.0, NaN, 120.0]
    )  # 47 + 14 < 60 (end of month 2); 85 + 14 > 90
    np.testing.assert_allclose(risk_window_days(X), [61.0, 99.0, 365.0, 365.0, 120.0])


def test_the_risk_label_is_known_only_where_its_whole_window_is_observed():
    """A churn seen inside a window that runs past the data's end is not judged (its stayers are unknown)."""
    from churnml.modeling.events import risk_label

    rows = [
        ("a", "2024-01-01", 10.0, "2025-06-01", None),
        ("a", "2025-06-01", 0.0, None, None),  # churns at renewal
        ("b", "2024-01-01", 10.0, "2025-03-01", None),
        ("b", "2025-03-01", 0.0, None, None),
        ("c", "2024-01-01", 10.0, "2025-03-01", None),
    ]
    cuts = [D("2025-01-01")]
    ev = churn_events(_subs(rows), cuts, D("2025-04-30"))
    X = pd.DataFrame(
        {"days_to_renewal": [151.0, 59.0, 59.0], "term_length_days": [365.0, 365.0, 365.0]}, index=ev.index
    )
    y = risk_label(ev, X)
    # a: window to 2025-07-01 (end of its renewal month) runs past 2025-04-30: unknown though it churned
    # b: churned at its renewal inside an observed window; c: stayed through it
    assert y.isna().tolist() == [True, False, False] and y.iloc[1] and not y.iloc[2]
