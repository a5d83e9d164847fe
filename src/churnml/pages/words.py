"""What the risk probability runs to, in words: made here from the scores' structured columns.

Scoring records the risk's basis as data (``risk_basis``: one of ``renewal``,
``monthly_term``, ``no_renewal_date``, ``horizon``; ``risk_window_days``; and
``risk_renewal_date`` for a renewal basis: see docs/scores.md). The pages and the story
of one account (:mod:`churnml.pages.story`) say it with these functions, so every
surface says the same thing:

>>> basis_phrase("renewal", 48.0, "2026-12-18")
'before the renewal on 2026-12-18'
>>> basis_phrase("monthly_term", 365.0)
'within 12 months (monthly term)'
>>> short_basis("no_renewal_date", 365.0)
'within 12 months'
>>> risk_words([("renewal", 40.0), ("no_renewal_date", 365.0)])
'chance of churning before the next renewal (within 12 months where no renewal date is known)'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

DAYS_PER_MONTH = 365.25 / 12
WHY = {"monthly_term": "monthly term", "no_renewal_date": "no renewal date known"}
WHERE = {"monthly_term": "for monthly terms", "no_renewal_date": "where no renewal date is known"}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def window_words(days) -> str:
    """A window in words: "12 months" for 365 days, "6 months" for 180, else "90 days"."""
    if _missing(days):
        return ""
    d = float(days)
    if d >= 360 and abs(d / 365 - round(d / 365)) < 0.01:
        return f"{round(12 * d / 365)} months"
    if d >= 150 and d % 30 == 0:
        return f"{int(d // 30)} months"
    return f"{d:.0f} day{'s' if round(d) != 1 else ''}"


def window_months(days) -> float:
    """A window in months (365 days -> 12, 90 days -> 2.96)."""
    return float(days) / DAYS_PER_MONTH if not _missing(days) else float("nan")


def basis_phrase(kind, window_days, renewal_date=None, date: Callable[[object], str] = str) -> str:
    """One account's risk basis: "before the renewal on <date>", "within 12 months (monthly term)",
    "within 12 months (no renewal date known)", "within 90 days". ``date`` formats the renewal date
    (the page's locale)."""
    if kind == "renewal":
        return f"before the renewal on {date(renewal_date)}" if not _missing(renewal_date) else "before the renewal"
    if _missing(kind) or kind == "":
        return ""
    w = window_words(window_days)
    return f"within {w} ({WHY[kind]})" if kind in WHY else f"within {w}"


def short_basis(kind, window_days) -> str:
    """A risk basis in two or three words for a table cell: "before renewal", "within 12 months"."""
    if kind == "renewal":
        return "before renewal"
    return f"within {window_words(window_days)}" if not _missing(window_days) else ""


def risk_words(bases: Iterable[tuple[object, float]]) -> str:
    """What the risk is, in words, for a set of (``risk_basis``, ``risk_window_days``) pairs: "chance of
    churning before the next renewal", "... (within 12 months where no renewal date is known)" when some
    accounts have none, "chance of churning within 90 days" for a horizon's probability."""
    pairs = {(str(k), float(w)) for k, w in bases if not _missing(k) and str(k)}
    renewal = any(k == "renewal" for k, _ in pairs)
    rest = sorted((k, w) for k, w in pairs if k != "renewal")
    windows = sorted({f"within {window_words(w)}" for _, w in rest})
    where = " or ".join(sorted({WHERE[k] for k, _ in rest if k in WHERE})) or "otherwise"
    if renewal and windows:
        return f"chance of churning before the next renewal ({' or '.join(windows)} {where})"
    if renewal:
        return "chance of churning before the next renewal"
    if windows:
        return "chance of churning " + " or ".join(windows)
    return "chance of churning"
