"""Revenue: the MRR bridge per account and month (movements) and GRR/NRR, as contract v1.2 defines them."""

from churnml.revenue.movements import (
    DEFINITIONS,
    KINDS,
    month_range,
    monthly_summary,
    movements,
    reconcile,
    retention,
    trailing_retention,
)

__all__ = [
    "DEFINITIONS",
    "KINDS",
    "month_range",
    "monthly_summary",
    "movements",
    "reconcile",
    "retention",
    "trailing_retention",
]
