"""Decision-level figures: precision, recall, alert volume and ARR at a tier cut-off; paired comparisons on
the same target with a bootstrap interval and the fold spread."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnml.modeling.early_warning import tier_decisions
from churnml.modeling.report import decision_headline, paired_comparisons


def _idx(accounts, cutoffs):
    return pd.MultiIndex.from_arrays([accounts, pd.to_datetime(cutoffs)], names=["account_id", "cutoff"])


def test_tier_decisions_golden():
    # two cutoffs, four accounts each; label unknown (<NA>) for one row: it counts for the alerts, not for precision
    idx = _idx(list("ABCDABCD"), ["2025-01-01"] * 4 + ["2025-02-01"] * 4)
    risk = pd.Series([0.5, 0.35, 0.2, 0.1, 0.6, 0.1, 0.25, 0.05], index=idx)
    label = pd.Series([1, 0, 1, 0, 1, pd.NA, 0, 0], index=idx, dtype="boolean")
    arr = pd.Series([100.0, 200, 300, 400, 100, 200, 300, 400], index=idx)
    fold = pd.Series([0.0] * 4 + [1.0] * 4, index=idx)
    cuts = {"high": (0.30, 0.1), "medium or high": (0.15, 0.3)}
    t = tier_decisions(risk, label, arr, fold, cuts).set_index("cut_off")
    high = t.loc["high"]
    # alerted: A, B on the first cutoff; A on the second -> 1.5 per cutoff, 3 of 8 rows
    assert high["alerts_per_cutoff"] == 1.5 and high["alert_share"] == 3 / 8
    assert high["arr_alerted_per_cutoff"] == (300 + 100) / 2
    assert high["labelled_rows"] == 7
    assert high["precision"] == pytest.approx(2 / 3)  # A, B, A: two churned
    assert high["recall"] == pytest.approx(2 / 3)  # churners A, C, A: C missed
    assert high["lift"] == pytest.approx((2 / 3) / (3 / 7))
    assert high["churned_arr_covered"] == pytest.approx(200 / 500)  # A 100 + A 100 of A, C, A = 500
    # fold 0: precision 1/2, fold 1: 1/1 -> sd of (0.5, 1.0)
    assert high["precision_fold_sd"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    med = t.loc["medium or high"]
    assert med["alerts_per_cutoff"] == 2.5 and med["recall"] == 1.0


def test_top_share_cut_off_when_tiers_are_by_quantiles():
    idx = _idx(list("ABCDEFGHIJ"), ["2025-01-01"] * 10)
    risk = pd.Series(np.linspace(0.9, 0.0, 10), index=idx)
    label = pd.Series([1, 1] + [0] * 8, index=idx, dtype="boolean")
    t = tier_decisions(risk, label, pd.Series(1.0, index=idx), pd.Series(0.0, index=idx), {"high": (None, 0.2)})
    assert t.loc[0, "alerts_per_cutoff"] == 2 and t.loc[0, "precision"] == 1.0 and t.loc[0, "recall"] == 1.0


def _preds(n_acc=300, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for fold in (0, 1, 2):
        for a in range(n_acc):
            for c in ("2025-01-01", "2025-02-01"):
                y = rng.random() < 0.2
                good = 0.6 * y + 0.4 * rng.random()
                noise = rng.random()
                for model, p in (("time_to_churn", good), ("lightgbm", noise)):
                    rows.append(
                        {
                            "target": "churn",
                            "fold": fold,
                            "account_id": f"a{a}",
                            "cutoff": c,
                            "model": model,
                            "y": int(y),
                            "p": p,
                        }
                    )
    return pd.DataFrame(rows)


def test_paired_comparison_interval_covers_the_difference_and_excludes_zero_when_clear():
    c = paired_comparisons(_preds(), "churn", "time_to_churn", n_boot=100).iloc[0]
    assert c["versus"] == "lightgbm" and c["rows"] == 600 and c["folds"] == 3 and c["folds_main_ahead"] == 3
    assert c["pr_auc_difference_low"] < c["pr_auc_difference"] < c["pr_auc_difference_high"]
    assert c["pr_auc_difference_low"] > 0  # a clearly better score
    h = decision_headline(pd.DataFrame([c]), [], 90)
    assert h["holdout/churn_pr_auc_gain_vs_90d_classifier"] == pytest.approx(c["pr_auc_difference"])


def test_paired_comparison_of_a_model_with_itself_straddles_zero():
    p = _preds()
    p.loc[p["model"] == "lightgbm", "p"] = p.loc[p["model"] == "time_to_churn", "p"].to_numpy() + 1e-9
    c = paired_comparisons(p, "churn", "time_to_churn", n_boot=50).iloc[0]
    assert c["pr_auc_difference"] == pytest.approx(0, abs=1e-6)
    assert c["pr_auc_difference_low"] <= 1e-6 and c["pr_auc_difference_high"] >= -1e-6
