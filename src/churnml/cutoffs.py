"""Cutoff dates: when features are measured and labels start.

A cutoff spec on the command line is one of:

* ``monthly`` (default): the first day of every month after a 90-day warm-up from
  the first subscription row, up to the day after the data ends (the last one is
  for scoring: its label window is not observed yet);
* ``START:END``: the first day of every month from START to END inclusive;
* a comma-separated list of dates ``2025-01-01,2025-02-01``.
"""

from __future__ import annotations

import pandas as pd

from churnml.errors import ChurnmlError

WARMUP_DAYS = 90


def monthly_cutoffs(start, end) -> list[pd.Timestamp]:
    """First days of the months in [start, end]."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    first = start if start.day == 1 else (start + pd.offsets.MonthBegin(1))
    return list(pd.date_range(first.normalize(), end, freq="MS"))


def parse_cutoffs(spec: str | None, dataset) -> list[pd.Timestamp]:
    """Turn a cutoff spec into sorted unique dates (see module docstring)."""
    spec = (spec or "monthly").strip()
    try:
        if spec == "monthly":
            first = dataset.subscriptions["effective_date"].min()
            out = monthly_cutoffs(first + pd.Timedelta(days=WARMUP_DAYS), dataset.last_date() + pd.Timedelta(days=1))
        elif ":" in spec:
            a, b = spec.split(":", 1)
            out = monthly_cutoffs(pd.Timestamp(a), pd.Timestamp(b))
        else:
            out = [pd.Timestamp(x.strip()) for x in spec.split(",") if x.strip()]
    except ValueError as e:
        raise ChurnmlError(f"cannot read cutoffs {spec!r}: {e}. Use 'monthly', START:END or a comma list of YYYY-MM-DD") from None
    if not out:
        raise ChurnmlError(f"cutoffs {spec!r} give no date")
    bad = [str(t) for t in out if t != t.normalize()]
    if bad:
        raise ChurnmlError(f"cutoffs are dates without a time, got {bad[:3]}")
    return sorted(set(out))
