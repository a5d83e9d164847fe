"""What the pages need that is not in the tables; the config's ``report`` section fills it
(its defaults are these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from churnml.errors import ChurnmlError
from churnml.pages.fmt import Formats

TIERS = ("high", "medium", "low")
DEFAULT_TIER_TEXT = {
    "high": "30% or more chance of churning",
    "medium": "15% to 30%",
    "low": "below 15%",
}


@dataclass(frozen=True)
class PageSettings:
    """What the pages need that is not in the tables (the lead fills it from the config).

    - ``title``: the name in every page's header.
    - ``currency``, ``locale``: ISO 4217 code and locale name (``"EUR"``, ``"de_DE"``) for money,
      counts, percentages and dates.
    - ``tiers``: the definition of each risk tier in plain words, for the legend
      (``{"high": "30% or more chance of churning before the next renewal", ...}``).
    - ``stale_after_days``: data older than this (days from the scores' as-of date to the day the
      pages are made) put a staleness notice on every page.
    - ``horizon_days``: the horizon of ``churn_probability`` (the labels' horizon).
    - ``call_list_size``: how many accounts "call this week" lists per CSM.
    - ``page_size``: rows per page of a book's table.
    - ``indicator_labels``: indicator name -> plain words (``{"first_response_minutes": "time to first
      reply on tickets"}``), used for the drift warning; a ``label`` column of the drift table
      or the name with spaces is used otherwise.
    """

    title: str = "churnml"
    currency: str = "USD"
    locale: str = "en_US"
    tiers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_TIER_TEXT)))
    stale_after_days: int = 31
    horizon_days: int = 90
    call_list_size: int = 10
    page_size: int = 50
    indicator_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        for name in ("stale_after_days", "horizon_days", "call_list_size", "page_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ChurnmlError(f"page setting {name} must be a whole number of at least 1, got {v!r}")
        unknown = set(self.tiers) - set(TIERS)
        if unknown:
            raise ChurnmlError(f"page setting tiers: unknown tier(s) {sorted(unknown)}; the tiers are {list(TIERS)}")
        Formats(self.currency, self.locale)  # raises on an unknown currency or locale
