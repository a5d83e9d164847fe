"""Survival metrics of the churn curve (scikit-survival): outcomes from churn events, Uno's C, the
time-dependent AUC, the integrated Brier score against Kaplan-Meier and the curve's level, per fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.modeling.survival_metrics import CURVE_DAYS, survival_outcomes, survival_scores, survival_table


def test_outcomes_golden():
    ev = pd.DataFrame(
        {
            "observed_days": [400, 400, 120, 50],
            "churn_days": [10.0, np.nan, np.nan, np.nan],
            "completed_days": [np.nan, 200.0, np.nan, np.nan],
        }
    )
    event, time = survival_outcomes(ev)
    assert event.tolist() == [True, False, False, False]
    # a churn on day 10 counts as "within 11 days", not within 10 (churned_within's [t, t+d))
    assert time.tolist() == [10.5, 200.5, 120.0, 50.0]


def _base(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.normal(0, 1, n)) / 600
    T = rng.exponential(1 / rate)
    obs = rng.choice([200, 300, 400], n)
    idx = pd.MultiIndex.from_arrays(
        [[f"a{i}" for i in range(n)], pd.to_datetime(["2024-01-01"] * n)], names=["account_id", "cutoff"]
    )
    ev = pd.DataFrame(
        {"observed_days": obs, "churn_days": np.where(obs > T, np.floor(T), np.nan), "completed_days": np.nan},
        index=idx,
    )
    true = pd.DataFrame({f"churn_{d}d": 1 - np.exp(-rate * d) for d in CURVE_DAYS}, index=idx)
    return ev, true


def test_the_true_curve_beats_kaplan_meier_and_a_constant_curve_does_not():
    ev, true = _base()
    good = survival_scores(true, ev)
    const = survival_scores(pd.DataFrame({c: np.full(len(true), true[c].mean()) for c in true}, index=true.index), ev)
    assert good["tau_days"] == 365 and good["follow_up_days"] == 400
    assert 0.7 < good["uno_c"] < 0.8 and const["uno_c"] == pytest.approx(0.5)
    for d in (90, 180, 365):
        assert good[f"auc_{d}d"] > 0.75 and const[f"auc_{d}d"] == pytest.approx(0.5)
        # the true curve is calibrated: its mean matches the Kaplan-Meier estimate of the same rows
        assert good[f"mean_predicted_{d}d"] == pytest.approx(good[f"km_observed_{d}d"], abs=0.02)
    assert good["ibs"] < good["ibs_km"] and good["ibs_skill"] > 0.15
    assert const["ibs_skill"] == pytest.approx(0.0, abs=0.01)
    reversed_ = survival_scores(1 - true, ev)  # ranks the wrong way round
    assert reversed_["uno_c"] < 0.3 and reversed_["ibs_skill"] < 0


def test_a_follow_up_shorter_than_a_horizon_leaves_it_na():
    ev, true = _base()
    ev["observed_days"] = 150
    ev.loc[ev["churn_days"] >= 150, "churn_days"] = np.nan
    s = survival_scores(true, ev)
    assert s["tau_days"] == 120 and s["auc_90d"] > 0.7
    assert np.isnan(s["auc_180d"]) and np.isnan(s["auc_365d"]) and np.isnan(s["km_observed_365d"])
    assert np.isnan(s["mean_predicted_365d"]) and s["mean_predicted_90d"] > 0
    assert s["ibs_to_days"] == 120


def test_per_fold_then_pooled_then_the_spread():
    ev, true = _base()
    fold = pd.Series(np.arange(len(true)) % 2, index=true.index)
    t = survival_table(true, ev, fold)
    assert t["fold"].tolist() == ["0", "1", "all folds", "fold mean", "fold sd"]
    assert t.loc[t["fold"] == "all folds", "n"].item() == len(true)
    sd = t.loc[t["fold"] == "fold sd", "uno_c"].item()
    assert sd == pytest.approx(np.std(t.loc[t["fold"].isin(["0", "1"]), "uno_c"], ddof=1))


def test_too_few_rows_or_no_churn_give_nan_not_an_error():
    ev, true = _base(n=10)
    assert np.isnan(survival_scores(true, ev)["uno_c"])
    ev, true = _base()
    ev["churn_days"] = np.nan
    assert np.isnan(survival_scores(true, ev)["ibs"])
