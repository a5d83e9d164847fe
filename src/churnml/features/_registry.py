"""Indicator definitions: every feature column has a name, a family and a definition.

A definition says what the indicator measures (formula), over which window, in which
unit, what a missing value means, and which direction means risk. ``churnml
features --list`` prints them; the model report logs them; explanations use the
short ``label`` to speak to a CSM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

WINDOWS = (7, 30, 90)
"""The standard measurement windows in days. Names end in ``_{w}d``."""

FAMILIES = ("usage", "effort", "support", "onboarding", "commercial")


@dataclass(frozen=True)
class Indicator:
    """The documented definition of one feature column."""

    name: str
    family: str
    label: str  # short plain-words name for a CSM ("active users per seat (30 days)")
    formula: str
    unit: str
    missing: str  # what a missing value means
    risk: str  # "low" / "high" (which values mean churn risk), or "context"
    kind: str = "numeric"  # or "categorical"

    def as_dict(self) -> dict:
        return asdict(self)


def ind(name, family, label, formula, unit, missing, risk, kind="numeric") -> Indicator:
    """Shorthand constructor used by the family modules."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    if risk not in ("low", "high", "context"):
        raise ValueError(f"risk must be low/high/context, got {risk!r}")
    return Indicator(name, family, label, formula, unit, missing, risk, kind)


def per_account_query(join: str, aggs: list[str], cols: list[str]) -> str:
    """The shape of a family query: aggregate one table's rows joined to the population
    per (account, cutoff), then left-join onto the population so every account gets a row.

    ``join`` is the table and its condition (``"usage u ON u.account_id = p.account_id AND ..."``);
    ``aggs`` are the aggregates (available as ``a.<name>``), ``cols`` the indicator expressions.
    """
    return f"""
WITH a AS (
    SELECT p.account_id, p.cutoff, {", ".join(aggs)}
    FROM pop p JOIN {join}
    GROUP BY p.account_id, p.cutoff
)
SELECT p.account_id, p.cutoff, {", ".join(cols)}
FROM pop p LEFT JOIN a ON a.account_id = p.account_id AND a.cutoff = p.cutoff
"""
