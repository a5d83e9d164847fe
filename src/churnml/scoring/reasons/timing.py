"""The timing line: when risk falls due, in words ("renews in 53 days, on 2026-12-24; annual term;
customer for 2 years 3 months; last MRR change 11 months ago").

Timing is context, not a cause (:mod:`.components`): the calendar indicators are said here,
never as a reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.modeling.events import SHORT_TERM_DAYS


def _term_words(days: float) -> str:
    if days < 20:
        return f"{days:.0f}-day term"
    m = round(days / 30.44)
    return {1: "monthly term", 3: "quarterly term", 12: "annual term"}.get(
        m, f"{m // 12}-year term" if m % 12 == 0 else f"{m}-month term"
    )


def _age_words(days: float) -> str:
    if days < 60:
        return f"{days:.0f} day{'' if round(days) == 1 else 's'}"
    months = int(days // 30.44)
    if months < 24:
        return f"{months} months"
    years, rest = divmod(months, 12)
    return f"{years} years" + (f" {rest} months" if rest else "")


def timing_lines(X: pd.DataFrame, as_of) -> list[str]:
    """The timing context of each account in words, from its calendar indicators.

    e.g. "renews in 53 days, on 2026-12-24; annual term; customer for 2 years 3 months; last
    MRR change 11 months ago". A renewal date that has passed says so ("renewal date
    2026-10-20 passed 12 days ago; no new contract end on record"); an unknown one too. A term of
    at most a month and a half rolls over by itself: "monthly term: renews every month", without a date
    (never a passed one), as the pages and the risk's basis treat it.
    """
    as_of = pd.Timestamp(as_of).normalize()
    n = len(X)
    col = lambda c: X[c].to_numpy(dtype="float64") if c in X else np.full(n, np.nan)  # noqa: E731
    renew, term, age, since = (
        col("days_to_renewal"),
        col("term_length_days"),
        col("tenure_days"),
        col("days_since_mrr_change"),
    )
    out = []
    for d, t, a, s in zip(renew.tolist(), term.tolist(), age.tolist(), since.tolist()):
        rolling = d == d and t == t and 0 < t <= SHORT_TERM_DAYS  # renews by itself every term: no date to prepare
        if rolling:
            parts = [f"{_term_words(t)}: renews every {'month' if _term_words(t) == 'monthly term' else 'term'}"]
        elif d != d:
            parts = ["no renewal date on record"]
        else:
            date = f"{as_of + pd.Timedelta(days=d):%Y-%m-%d}"
            if d > 0:
                parts = [f"renews in {d:.0f} day{'s' if d != 1 else ''}, on {date}"]
            elif d == 0:
                parts = [f"renews today ({date})"]
            else:
                parts = [
                    f"renewal date {date} passed {-d:.0f} day{'s' if d != -1 else ''} ago; "
                    "no new contract end on record"
                ]
        if t == t and t > 0 and not rolling:
            parts.append(_term_words(t))
        if a == a:
            parts.append(f"customer for {_age_words(a)}")
        if s == s:
            parts.append(f"last MRR change {_age_words(s)} ago")
        out.append("; ".join(parts))
    return out
