"""The replay's judgement (churnml.modeling.replay): outcomes per window from churn events, figures on the
accounts whose window has passed, and windows not observable yet said so. Inline and golden."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from churnml.modeling.replay import flat_metrics, replay_evaluation, replay_outcomes, replay_text

AS_OF = pd.Timestamp("2026-01-01")
END = pd.Timestamp("2026-06-30")  # 181 days of the future observed


def _frames():
    ids = list("abcdefg")
    # a: churn on day 10; b: stays; c: churn on day 120; d: term completed on day 40; e: no event row
    # (not paying in the full history); f: churn on day 89; g: stays
    events = pd.DataFrame(
        {
            "account_id": list("abcdfg"),
            "cutoff": AS_OF,
            "observed_days": 181,
            "churn_days": [10, np.nan, 120, np.nan, 89, np.nan],
            "completed_days": [np.nan, np.nan, np.nan, 40, np.nan, np.nan],
        }
    ).set_index(["account_id", "cutoff"])
    scores = pd.DataFrame(
        {
            "account_id": ids,
            "p_churnml": [0.9, 0.1, 0.3, 0.5, 0.2, 0.4, 0.05],
            "p_churnml_365d": [0.95, 0.3, 0.6, 0.7, 0.4, 0.6, 0.2],
            "p_risk_probability": [0.6, 0.2, 0.5, 0.4, 0.1, 0.12, 0.2],
            "p_logistic_regression": [0.5, 0.4, 0.3, 0.2, 0.1, 0.6, 0.35],
            "p_health_score": [0.7, 0.2, 0.6, 0.1, 0.3, 0.25, 0.5],
            "risk_tier": ["high", "low", "high", "high", "low", "low", "medium"],
            "arr": [1200.0, 2400, 3600, 600, 100, 4800, 1000],
        }
    )
    window = pd.Series([30.0, 200, 150, 30, 60, 100, 60], index=ids)
    return scores, events, window


def test_outcomes_per_window_never_read_an_unobserved_future_as_stayed():
    scores, events, window = _frames()
    out = replay_outcomes(scores, events, horizon_days=90, data_end=END, risk_window_days=window).set_index(
        "account_id"
    )
    na = pd.NA
    assert out["churned_90d"].tolist() == [True, False, False, na, na, True, False]
    # b's window (200 days) runs past the data; d's term completed after its 30-day window: it stayed
    assert out["churned_in_risk_window"].tolist() == [True, na, True, False, na, True, False]
    # a churn seen is known, a stay over 365 days is not
    assert out["churned_365d"].tolist() == [True, na, True, na, na, True, na]
    assert out["risk_window_days"].tolist() == [30, 200, 150, 30, 60, 100, 60]


def test_evaluation_equals_a_direct_computation_on_the_accounts_whose_window_has_passed():
    scores, events, window = _frames()
    out = replay_outcomes(scores, events, horizon_days=90, data_end=END, risk_window_days=window)
    ev = replay_evaluation(out, 90, as_of=AS_OF, data_end=END)
    assert (ev["accounts"], ev["high_risk"], ev["days_observed"]) == (7, 3, 181)

    w = ev["windows"]["90d"]  # judged on a, b, c, f, g (d completed inside, e unknown)
    assert (w["accounts_known"], w["still_open"], w["unknown_other"]) == (5, 0, 2)
    assert (w["churned"], w["high_risk"], w["churned_in_high"]) == (2, 2, 1)
    assert (w["churned_arr"], w["churned_arr_in_high"]) == (6000.0, 1200.0)
    assert (w["recall_high"], w["arr_caught_high"], w["precision_high"]) == (0.5, 0.2, 0.5)
    y, rows = [1, 0, 0, 1, 0], [0, 1, 2, 5, 6]
    for m in ("churnml", "risk_probability", "logistic_regression", "health_score"):
        p = scores[f"p_{m}"].to_numpy()[rows]
        assert w["models"][m]["roc_auc"] == pytest.approx(roc_auc_score(y, p))
        assert w["models"][m]["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert w["models"]["churnml"]["brier"] == pytest.approx(np.mean((scores["p_churnml"].to_numpy()[rows] - y) ** 2))
    assert w["models"]["risk_probability"]["brier"] is None  # it predicts another window

    r = ev["windows"]["risk"]  # judged on a, c, d, f, g; b's window is open, e is unknown
    assert (r["accounts_known"], r["still_open"], r["unknown_other"], r["churned_so_far_in_open"]) == (5, 1, 1, 0)
    assert (r["churned"], r["churned_in_high"], r["churned_arr"], r["churned_arr_in_high"]) == (3, 2, 9600.0, 4800.0)
    assert r["precision_high"] == pytest.approx(2 / 3) and r["first_open_judged_from"] == "2026-07-20"
    y, rows = [1, 1, 0, 1, 0], [0, 2, 3, 5, 6]
    assert r["models"]["risk_probability"]["roc_auc"] == pytest.approx(
        roc_auc_score(y, scores["p_risk_probability"].to_numpy()[rows])
    )
    assert set(r["models"]) == {"risk_probability", "logistic_regression", "health_score"}


def test_a_window_not_observed_yet_says_so_and_carries_no_figure():
    scores, events, window = _frames()
    out = replay_outcomes(scores, events, horizon_days=90, data_end=END, risk_window_days=window)
    ev = replay_evaluation(out, 90, as_of=AS_OF, data_end=END)
    y = ev["windows"]["365d"]
    assert not y["observable"] and "models" not in y and "churned" not in y
    assert (
        y["not_observable"] == "not observable yet: it can be judged once the data reach 2027-01-01; "
        "they end on 2026-06-30"
    )
    assert (y["accounts_known"], y["still_open"], y["churned_so_far_in_open"]) == (0, 7, 3)
    text = replay_text(ev, AS_OF, "high: 30% or more", 90)
    assert (
        "## Churned within 12 months\n\nNot observable yet: it can be judged once the data reach 2027-01-01" in text
        and "3 of the 7 accounts churned already" in text
    )
    assert "nan" not in text.lower()
    assert "unknown, and left out, for 1 whose window is still open (the first can be judged on 2026-07-20)" in text
    m = flat_metrics(ev)
    assert m["replay_90d_churned"] == 2 and m["replay_risk_churned_in_high"] == 2
    assert not any(k.startswith("replay_365d") for k in m)


def test_with_the_whole_year_observed_every_window_is_judged():
    scores, events, window = _frames()
    events = events.assign(observed_days=400)
    out = replay_outcomes(
        scores, events, horizon_days=90, data_end=AS_OF + pd.Timedelta(days=399), risk_window_days=window
    )
    ev = replay_evaluation(out, 90, as_of=AS_OF, data_end=AS_OF + pd.Timedelta(days=399))
    y = ev["windows"]["365d"]  # d completed inside the year: neither churned nor stayed
    assert y["observable"] and (y["accounts_known"], y["churned"], y["unknown_other"]) == (5, 3, 2)
    assert y["models"]["churnml_365d"]["brier"] is not None


def test_without_a_time_to_churn_model_the_risk_is_judged_as_the_horizons_probability():
    """Every risk window equal to the horizon (the 90-day classifier gives the risk): the risk's calibration is
    judged in the horizon's window, and its own window says it is that one."""
    scores, events, _ = _frames()
    scores = scores.assign(p_risk_probability=scores["p_churnml"])
    window = pd.Series(90.0, index=scores["account_id"].to_numpy())
    out = replay_outcomes(scores, events, horizon_days=90, data_end=END, risk_window_days=window)
    ev = replay_evaluation(out, 90, as_of=AS_OF, data_end=END)
    w = ev["windows"]["90d"]["models"]
    assert w["risk_probability"]["brier"] == pytest.approx(w["churnml"]["brier"])
    r = ev["windows"]["risk"]
    assert not r["observable"] and "the same as the 90-day window" in r["not_observable"]
    assert "The same as the 90-day window" in replay_text(ev, AS_OF, "high: 30% or more", 90)
