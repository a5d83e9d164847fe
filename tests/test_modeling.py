"""Modelling pieces: time folds with gaps, calibration choice, metrics, promotion rule, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.errors import ChurnmlError
from churnml.modeling.baselines import HealthScoreBaseline
from churnml.modeling.calibration import select_calibrator
from churnml.modeling.folds import make_folds, plan_folds
from churnml.modeling.metrics import binary_metrics, lift_table, reliability_table
from churnml.modeling.model import ChurnmlModel
from churnml.modeling.promotion import promotion_decision

MONTHS = list(pd.date_range("2023-01-01", "2025-12-01", freq="MS"))


@pytest.mark.parametrize(
    "horizon, n_folds, test_n, cal_n", [(90, 4, 3, 3), (30, 6, 1, 2), (180, 2, 2, 3), (60, 3, 3, 2)]
)
def test_no_training_or_calibration_label_overlaps_the_test_cutoffs(horizon, n_folds, test_n, cal_n):
    folds = make_folds(MONTHS, horizon_days=horizon, n_folds=n_folds, test_cutoffs=test_n, calibration_cutoffs=cal_n)
    h = pd.Timedelta(days=horizon)
    assert folds and folds[0].test[-1] == MONTHS[-1]
    for f in folds:
        assert len(f.test) == test_n and len(f.calibrate) == cal_n
        assert all(t + h <= f.test[0] for t in f.fit + f.calibrate)  # labels observed before the test starts
        assert all(t + h <= f.calibrate[0] for t in f.fit)  # early stopping/calibration later than training
        assert max(f.fit) < min(f.calibrate) < min(f.test)
    tests = [t for f in folds for t in f.test]
    assert len(tests) == len(set(tests))  # test blocks do not overlap


def test_short_history_is_a_clear_error():
    with pytest.raises(ChurnmlError, match="history too short"):
        make_folds(MONTHS[:6], horizon_days=90)
    with pytest.raises(ChurnmlError, match="history too short"):
        plan_folds(MONTHS[:6], horizon_days=90, n_folds=4, test_cutoffs=3, calibration_cutoffs=3)


def test_a_short_history_gets_smaller_folds_with_a_warning():
    folds, note = plan_folds(MONTHS, horizon_days=90, n_folds=4, test_cutoffs=3, calibration_cutoffs=3)
    assert note is None and len(folds[0].test) == 3
    folds, note = plan_folds(MONTHS[:10], horizon_days=90, n_folds=4, test_cutoffs=3, calibration_cutoffs=3)
    assert note.startswith("warning: history is short (10 labelled cutoffs)")
    assert len(folds[0].test) == len(folds[0].calibrate) == 1 and len(folds[0].fit) >= 3
    h = pd.Timedelta(days=90)
    for f in folds:
        assert all(t + h <= f.calibrate[0] for t in f.fit) and all(t + h <= f.test[0] for t in f.calibrate)


def test_calibration_is_chosen_only_when_it_clearly_helps():
    rng = np.random.default_rng(0)
    n = 9000
    true_p = rng.beta(1, 12, n)
    y = (rng.random(n) < true_p).astype(int)
    groups = np.repeat([1, 2, 3], n // 3)
    cal, scores = select_calibrator(true_p, y, groups)
    assert cal.method == "none"  # already calibrated: leave it alone
    squashed = np.sqrt(true_p)  # badly over-confident scores
    cal, scores = select_calibrator(squashed, y, groups)
    assert cal.method == "sigmoid"
    assert np.mean((cal.transform(squashed) - y) ** 2) < np.mean((squashed - y) ** 2) * 0.9
    assert scores["sigmoid"] < scores["none"]


def test_metrics_on_a_literal_example():
    y = np.array([1] + [0] * 18 + [1])  # churners: the top-scored row and the lowest-scored row
    p = np.array([0.9, 0.8] + [0.1] * 17 + [0.05])
    arr = np.array([1000.0] + [1.0] * 18 + [3000.0])
    m = binary_metrics(y, p, arr)
    # top decile = 2 rows (0.9: churned, 0.8: not): rate 0.5 vs base 0.1 -> lift 5
    assert m["top_decile_lift"] == pytest.approx(5.0)
    assert m["arr_capture_top_decile"] == pytest.approx(1000 / 4000)
    assert m["n"] == 20 and m["base_rate"] == pytest.approx(0.1)
    lt = lift_table(y, p, arr)
    assert lt["cum_event_capture"].iloc[-1] == pytest.approx(1.0)
    rt = reliability_table(y, p, bins=4)
    assert rt["n"].sum() == 20


@pytest.mark.parametrize(
    "chall, champ, promote, word",
    [
        ({"pr_auc": 0.5, "brier": 0.04}, None, True, "no champion"),
        ({"pr_auc": 0.5, "brier": 0.04}, {"pr_auc": 0.4, "brier": 0.05}, True, "beats"),
        ({"pr_auc": 0.5, "brier": 0.06}, {"pr_auc": 0.4, "brier": 0.05}, False, "worse Brier"),
        ({"pr_auc": 0.4, "brier": 0.04}, {"pr_auc": 0.4, "brier": 0.05}, False, "PR-AUC"),
        ({"pr_auc": 0.3, "brier": 0.07}, {"pr_auc": 0.4, "brier": 0.05}, False, "PR-AUC"),
    ],
)
def test_promotion_rule(chall, champ, promote, word):
    ok, reason = promotion_decision(chall, champ)
    assert ok is promote and word in reason


def test_health_score_is_higher_for_healthier_accounts():
    X = pd.DataFrame({"active_users_per_seat_30d": [0.1, 0.5, 0.9, 0.3], "nps_mean_180d": [3, 7, 9, np.nan]})
    hs = HealthScoreBaseline().fit(X, [1, 0, 0, 1])
    s = hs.score(X)
    assert s[2] > s[1] > s[0]
    assert hs.predict_proba(X)[2, 1] < hs.predict_proba(X)[0, 1]


def _toy(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "segment": pd.array(rng.choice(["SMB", "Enterprise", None], n), dtype="string"),
        }
    )
    logit = -2 + 1.5 * X["a"] - (X["segment"] == "Enterprise").fillna(False).to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    idx = pd.MultiIndex.from_arrays(
        [[f"A{i}" for i in range(n)], np.repeat(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]), n // 3)],
        names=["account_id", "cutoff"],
    )
    return X.set_index(idx), y


def test_model_saves_and_loads_in_open_formats_with_identical_predictions(tmp_path):
    X, y = _toy()
    ys = {"churn": y, "expansion": 1 - y}
    m = ChurnmlModel.fit(
        X.iloc[:2000],
        {k: v[:2000] for k, v in ys.items()},
        X.iloc[2000:],
        {k: v[2000:] for k, v in ys.items()},
        categorical=["segment"],
        seed=1,
    )
    from churnml.io.artifacts import save_model
    from churnml.serving import load_model

    folder = save_model(m, tmp_path / "m")
    assert {p.name for p in folder.iterdir()} == {"model.json", "churn.lgb.txt", "expansion.lgb.txt"}
    back = load_model(folder)
    pd.testing.assert_frame_equal(m.predict_proba(X), back.predict_proba(X))
    p = back.predict_proba(X)
    assert p["churn_probability"].between(0, 1).all()
    with pytest.raises(ChurnmlError, match="lacks 1 column"):
        back.predict_proba(X.drop(columns="b"))
