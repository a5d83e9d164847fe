"""Risk tiers: which accounts are high, medium and low, and the tiers in words.

Tiers are cut on the risk probability (:meth:`churnml.modeling.model.ChurnmlModel.predict_risk`).
Three methods (``scoring.tiers.method`` of the config; any object with the fields of
:class:`churnml.config.TierSettings`):

* ``capacity`` (the default): the high tier is what a team can work. An account is high when its
  risk is at least ``high_level`` **and** it is among the ``capacity_per_csm`` accounts of its
  CSM's book (unassigned accounts form one book) with the most expected ARR lost (ARR times the
  risk; ``rank_by: risk`` ranks by the risk itself, i.e. by lift over the base rate), and the high
  tier never holds more than ``high_max_share`` of the paying accounts (the most expected ARR
  lost first). Medium: every other account with at least ``medium_level`` of risk; low: the rest.
  The choice needs the whole base, so it is made once (:func:`high_accounts`) and handed to every
  part of it.
* ``levels``: fixed probability levels (high from ``high_level``, medium from ``medium_level``).
* ``quantiles``: shares of a recent population (the model card's ``risk_quantiles``).
"""

from __future__ import annotations

import numpy as np

from churnml.errors import ChurnmlError


def tier_thresholds(tiers, quantiles=None) -> dict:
    """The tiers' rule as data from the tier settings: the probability cut-offs (``high``, ``medium``) and,
    for ``capacity``, the capacity per book, the largest share of the base and what ranks the accounts."""
    if tiers.method == "capacity":
        return {
            "method": "capacity",
            "high": float(tiers.high_level),
            "medium": float(tiers.medium_level),
            "capacity_per_csm": int(tiers.capacity_per_csm),
            "high_max_share": float(tiers.high_max_share),
            "rank_by": str(tiers.rank_by),
        }
    if tiers.method == "levels":
        return {"method": "levels", "high": float(tiers.high_level), "medium": float(tiers.medium_level)}
    if not quantiles:
        raise ChurnmlError(
            "risk tiers by quantiles need the model's probability quantiles: retrain the model "
            "(churnml train), or set scoring.tiers.method: levels"
        )
    grid = np.linspace(0, 1, len(quantiles))

    def q(share: float) -> float:
        return float(np.interp(1 - share, grid, list(quantiles)))

    return {
        "method": "quantiles",
        "high": q(tiers.high_share),
        "medium": q(tiers.high_share + tiers.medium_share),
        "high_share": float(tiers.high_share),
        "medium_share": float(tiers.medium_share),
    }


def tier_texts(thresholds: dict, what: str = "chance of churning within 90 days") -> dict[str, str]:
    """Each tier in words, for every page and report (e.g. high: "30% or more chance of ...")."""
    h, m = thresholds["high"], thresholds["medium"]
    if thresholds.get("method") == "capacity":
        by_arr = thresholds["rank_by"] == "expected_arr_lost"
        ranked = "most expected ARR lost (ARR x risk)" if by_arr else "highest risk"
        return {
            "high": f"{h:.0%} or more {what}, and among the {thresholds['capacity_per_csm']} accounts with the "
            f"{ranked} in their CSM's book (at most {thresholds['high_max_share']:.0%} of all accounts): "
            f"the accounts to work first",
            "medium": f"{m:.0%} or more, not in the high tier",
            "low": f"below {m:.0%}",
        }
    if thresholds.get("method") == "quantiles":
        return {
            "high": f"the {thresholds['high_share']:.0%} of accounts most at risk in recent history ({h:.0%} "
            f"or more {what})",
            "medium": f"the next {thresholds['medium_share']:.0%} ({m:.0%} to {h:.0%})",
            "low": f"below {m:.0%}",
        }
    return {"high": f"{h:.0%} or more {what}", "medium": f"{m:.0%} to {h:.0%}", "low": f"below {m:.0%}"}


def tier_rule(thresholds: dict, what: str = "chance of churning within 90 days") -> str:
    """The tiers in one line: "high: 30% or more chance of ...; medium: 15% to 30%; low: below 15%"."""
    return "; ".join(f"{k}: {v}" for k, v in tier_texts(thresholds, what).items())


def tier(p: np.ndarray, thresholds: dict, high: np.ndarray | None = None) -> np.ndarray:
    """Each probability's tier: ``high``, ``medium`` or ``low``. With the ``capacity`` method, ``high`` flags
    the accounts of the high tier (:func:`high_accounts`); the others with ``medium`` or more are medium."""
    p = np.asarray(p, dtype=float)
    if thresholds.get("method") == "capacity":
        if high is None:
            raise ChurnmlError("capacity tiers need the accounts chosen over the whole base (high_accounts)")
        return np.where(high, "high", np.where(p >= thresholds["medium"], "medium", "low"))
    return np.where(p >= thresholds["high"], "high", np.where(p >= thresholds["medium"], "medium", "low"))


UNASSIGNED_BOOK = "(unassigned)"


def high_accounts(ids, risk, arr, books, thresholds: dict) -> frozenset[str]:
    """The high tier of the ``capacity`` method over the whole base: accounts with at least the ``high``
    risk, the ``capacity_per_csm`` first of each book (``books``: the CSM, None for unassigned) by the
    ranking measure (expected ARR lost = ``arr`` x ``risk``, or the risk), and at most ``high_max_share``
    of all accounts (the first by the same measure). Ties go to the smaller account id."""
    import pandas as pd

    risk = np.asarray(risk, dtype=float)
    arr = np.nan_to_num(np.asarray(arr, dtype=float))
    measure = risk * arr if thresholds["rank_by"] == "expected_arr_lost" else risk
    d = pd.DataFrame(
        {
            "id": np.asarray(ids).astype(str),
            "m": measure,
            "book": pd.Series(books, dtype="object").where(pd.notna(pd.Series(books, dtype="object")), UNASSIGNED_BOOK),
        }
    )
    d = d[risk >= thresholds["high"]].sort_values(["m", "id"], ascending=[False, True], kind="stable")
    d = d[d.groupby("book").cumcount() < thresholds["capacity_per_csm"]]
    d = d.head(int(np.floor(thresholds["high_max_share"] * len(risk))))
    return frozenset(d["id"])
