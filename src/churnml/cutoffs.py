"""Cutoff dates (when features are measured and labels start) and day numbers.

A cutoff spec on the command line is one of:

* ``monthly`` (default): the first day of every month after a 90-day warm-up from
  the first subscription row, up to the day after the data ends (the last one is
  for scoring: its label window is not observed yet);
* ``semimonthly`` (the 1st and the 16th) and ``weekly`` (Mondays): the same span, closer
  cutoffs, for short histories;
* ``auto`` (training): monthly, or the closest spacing that a short history needs (chosen by
  :func:`churnml.modeling.training.choose_cutoffs`; elsewhere it means monthly);
* ``START:END``: the first day of every month from START to END inclusive;
* a comma-separated list of dates ``2025-01-01,2025-02-01``.

Dates become whole day numbers (days since 1970-01-01) in the SQL, so every window is
integer arithmetic (``day >= cutoff - 30``) on DuckDB and Spark alike. A cutoff ``t`` is
the day number of the start of day ``t``: a timestamp is before ``t`` exactly when its
(fractional) day number is ``< t``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError

WARMUP_DAYS = 90
SHORT_WARMUP_DAYS = 30  # for histories too short otherwise: 90-day indicators use the days an account existed
MAX_CUTOFFS = 400  # a history of decades with monthly cutoffs, or a mistyped date: stop and say so
EPOCH = pd.Timestamp("1970-01-01")
_DAY = pd.Timedelta(days=1)


def day_number(values) -> pd.Series:
    """Whole day numbers of dates/timestamps (nullable Int64; NaT -> <NA>)."""
    s = pd.Series(pd.to_datetime(values))
    return np.floor((s - EPOCH) / _DAY).astype("Int64")


def from_day_number(days) -> pd.Series:
    """Day numbers back to midnight timestamps (datetime64[us])."""
    return (EPOCH + pd.to_timedelta(pd.Series(days, dtype="int64"), unit="D")).astype("datetime64[us]")


def cutoff_days(cutoffs: Iterable) -> np.ndarray:
    """Cutoff dates (anything ``pd.to_datetime`` takes) as sorted unique day numbers."""
    ts = pd.to_datetime(pd.Series(list(cutoffs)))
    if ts.isna().any():
        raise ChurnmlError("cutoffs must be dates (YYYY-MM-DD)")
    if (ts != ts.dt.normalize()).any():
        raise ChurnmlError("cutoffs are dates: the start of a day, without a time")
    return np.unique(day_number(ts).to_numpy(dtype="int64"))


def monthly_cutoffs(start, end) -> list[pd.Timestamp]:
    """First days of the months in [start, end]."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    first = start if start.day == 1 else (start + pd.offsets.MonthBegin(1))
    return list(pd.date_range(first.normalize(), end, freq="MS"))


SPACINGS = ("monthly", "semimonthly", "weekly")


def spaced_cutoffs(spacing: str, start, end) -> list[pd.Timestamp]:
    """Cutoffs in [start, end] with a spacing: month starts, the 1st and 16th, or Mondays."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end)
    if spacing == "monthly":
        return monthly_cutoffs(start, end)
    if spacing == "semimonthly":
        days = pd.date_range(start, end, freq="D")
        return list(days[(days.day == 1) | (days.day == 16)])
    if spacing == "weekly":
        return list(pd.date_range(start, end, freq="W-MON"))
    raise ChurnmlError(f"unknown cutoff spacing {spacing!r}: use one of {', '.join(SPACINGS)}")


def _first_date(dataset) -> pd.Timestamp:
    if hasattr(dataset, "first_subscription_date"):
        return dataset.first_subscription_date()
    return pd.Timestamp(dataset.subscriptions["effective_date"].min())


def parse_cutoffs(
    spec: str | None, dataset, *, max_cutoffs: int = MAX_CUTOFFS, warmup_days: int = WARMUP_DAYS
) -> list[pd.Timestamp]:
    """Turn a cutoff spec into sorted unique dates (see module docstring)."""
    spec = (spec or "monthly").strip()
    try:
        if spec in (*SPACINGS, "auto"):
            first = _first_date(dataset)
            out = spaced_cutoffs(
                "monthly" if spec == "auto" else spec,
                first + pd.Timedelta(days=warmup_days),
                dataset.last_date() + pd.Timedelta(days=1),
            )
        elif ":" in spec:
            a, b = spec.split(":", 1)
            out = monthly_cutoffs(pd.Timestamp(a), pd.Timestamp(b))
        else:
            out = [pd.Timestamp(x.strip()) for x in spec.split(",") if x.strip()]
    except ValueError as e:
        raise ChurnmlError(
            f"cannot read cutoffs {spec!r}: {e}. "
            "Use 'monthly', 'semimonthly', 'weekly', START:END or a comma list of YYYY-MM-DD"
        ) from None
    if not out:
        raise ChurnmlError(f"cutoffs {spec!r} give no date")
    bad = [str(t) for t in out if t != t.normalize()]
    if bad:
        raise ChurnmlError(f"cutoffs are dates without a time, got {bad[:3]}")
    out = sorted(set(out))
    if len(out) > max_cutoffs:
        raise ChurnmlError(
            f"cutoffs {spec!r} give {len(out):,} dates ({out[0]:%Y-%m-%d}..{out[-1]:%Y-%m-%d}), "
            f"more than the limit of {max_cutoffs}: check the dates in the data (validate), or "
            f"give a shorter START:END range"
        )
    return out
