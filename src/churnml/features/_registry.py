"""Indicator definitions: every feature column has a name, a family and a definition.

A definition says what the indicator measures (formula), over which window, in which
unit, what a missing value means, and which direction means risk. ``churnml
features --list`` prints them; the model report logs them; explanations use the
short ``label`` to speak to a CSM.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    sql: str | None = None  # the column's name in the SQL when it differs from ``name`` (declared attributes)

    @property
    def sql_name(self) -> str:
        return self.sql or self.name

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("sql")
        return d


def ind(name, family, label, formula, unit, missing, risk, kind="numeric", sql=None) -> Indicator:
    """Shorthand constructor used by the family modules."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    if risk not in ("low", "high", "context"):
        raise ValueError(f"risk must be low/high/context, got {risk!r}")
    return Indicator(name, family, label, formula, unit, missing, risk, kind, sql)


def per_account_query(join: str, aggs: list[str], cols: list[str], sides: Sequence[tuple[str, str]] = ()) -> str:
    """The shape of a family query: aggregate one table's rows joined to the population
    per (account, cutoff), then left-join onto the population so every account gets a row.

    ``join`` is the table and its condition (``"usage u ON u.account_id = p.account_id AND ..."``);
    ``aggs`` are the aggregates (available as ``a.<name>``), ``cols`` the indicator expressions.
    ``sides`` are further ``(alias, cte)`` per (account, cutoff) results left-joined the same way,
    e.g. medians from :func:`median_query`, available as ``<alias>.<column>``.
    """
    ctes = [
        f"""a AS (
    SELECT p.account_id, p.cutoff, {", ".join(aggs)}
    FROM pop p JOIN {join}
    GROUP BY p.account_id, p.cutoff
)"""
    ]
    joins = ["LEFT JOIN a ON a.account_id = p.account_id AND a.cutoff = p.cutoff"]
    for alias, cte in sides:
        ctes.append(cte)
        joins.append(f"LEFT JOIN {alias} ON {alias}.account_id = p.account_id AND {alias}.cutoff = p.cutoff")
    return f"""
WITH {", ".join(ctes)}
SELECT p.account_id, p.cutoff, {", ".join(cols)}
FROM pop p {" ".join(joins)}
"""


def median_query(alias: str, join: str, value: str) -> str:
    """A CTE with the exact median of ``value`` per (account, cutoff) over ``join``, as ``<alias>.med``.

    Order statistics with window functions (sort-based, so the engine can spill to disk)
    instead of a holistic MEDIAN aggregate that holds every value in memory: the mean of
    the middle one or two values, as MEDIAN defines it.
    """
    return f"""{alias} AS (
    SELECT account_id, cutoff, AVG(x) AS med FROM (
        SELECT p.account_id, p.cutoff, {value} AS x,
               ROW_NUMBER() OVER (PARTITION BY p.account_id, p.cutoff ORDER BY {value}) AS rn,
               COUNT(*) OVER (PARTITION BY p.account_id, p.cutoff) AS n
        FROM pop p JOIN {join} AND {value} IS NOT NULL
    ) v
    WHERE rn = FLOOR((n + 1) / 2) OR rn = FLOOR((n + 2) / 2)
    GROUP BY account_id, cutoff
)"""
