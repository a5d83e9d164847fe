"""Risk tiers: the default high tier is what a team can work (capacity per CSM, a share of the base)."""

from __future__ import annotations

import numpy as np
import pytest

from churnml.config import TierSettings
from churnml.errors import ChurnmlError
from churnml.scoring.tiers import high_accounts, tier, tier_texts, tier_thresholds


def _rule(**kw):
    return tier_thresholds(TierSettings(**kw))


def test_capacity_is_the_default_and_its_rule_is_data():
    assert _rule() == {
        "method": "capacity",
        "high": 0.30,
        "medium": 0.15,
        "capacity_per_csm": 25,
        "high_max_share": 0.10,
        "rank_by": "expected_arr_lost",
    }
    texts = tier_texts(_rule(capacity_per_csm=2), "chance of churning before the next renewal")
    assert texts["high"] == (
        "30% or more chance of churning before the next renewal, and among the 2 accounts with the most expected "
        "ARR lost (ARR x risk) in their CSM's book (at most 10% of all accounts): the accounts to work first"
    )
    assert texts["medium"] == "15% or more, not in the high tier" and texts["low"] == "below 15%"


def test_high_is_the_most_arr_lost_per_book_over_the_risk_floor_within_a_share_of_the_base():
    # id, risk, ARR, CSM: expected ARR lost = risk x ARR
    rows = [
        ("a1", 0.90, 1_000, "Ann"),  # 900: Ann's third: over her capacity of 2
        ("a2", 0.40, 10_000, "Ann"),  # 4,000
        ("a3", 0.35, 6_000, "Ann"),  # 2,100
        ("a4", 0.20, 90_000, "Ann"),  # 18,000 but under the 30% floor: medium
        ("b1", 0.50, 2_000, "Bob"),  # 1,000
        ("u1", 0.60, 3_000, None),  # 1,800: the unassigned book
        ("u2", 0.31, 1_000, None),  # 310
        ("u3", 0.10, 5_000, None),  # low
    ] + [(f"z{i}", 0.05, 1_000, "Cy") for i in range(12)]  # 20 accounts: 10% is 2, 30% is 6
    ids, risk, arr, csm = (np.array([r[i] for r in rows], dtype=object) for i in range(4))
    risk, arr = risk.astype(float), arr.astype(float)
    rule = _rule(capacity_per_csm=2, high_max_share=0.3)
    high = high_accounts(ids, risk, arr, csm, rule)
    assert high == {"a2", "a3", "b1", "u1", "u2"}  # a1: Ann's third; a4, u3: under 30%
    got = tier(risk, rule, np.isin(ids, list(high)))[:8]
    assert " ".join(got) == "medium high high medium high high high low"
    # at most 10% of the 20 accounts: the two with the most ARR lost
    assert high_accounts(ids, risk, arr, csm, _rule(capacity_per_csm=2)) == {"a2", "a3"}
    # ranked by the risk (lift over the base rate) instead: Ann's two riskiest
    by_risk = high_accounts(ids, risk, arr, csm, _rule(capacity_per_csm=2, high_max_share=0.3, rank_by="risk"))
    assert by_risk == {"a1", "a2", "b1", "u1", "u2"}
    with pytest.raises(ChurnmlError, match="high_accounts"):
        tier(risk, rule)


def test_levels_and_quantiles_are_unchanged():
    rule = _rule(method="levels")
    assert list(tier(np.array([0.3, 0.29, 0.15, 0.1]), rule)) == ["high", "medium", "medium", "low"]
    assert rule == {"method": "levels", "high": 0.30, "medium": 0.15}
