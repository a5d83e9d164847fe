"""Words for numbers: how an indicator's value is said, rounded and, when missing, explained.

Formatting works on arrays (one indicator, many accounts): batch scoring writes words for
every account, and per-value pandas calls would cost more than TreeSHAP itself.

* :func:`formatter`: ``float -> str`` in the indicator's unit ("-42%", "12 days", "0.40").
* :func:`displayed`: values rounded as their words show them, so that a comparison made in
  words can be checked on numbers.
* :func:`plain_missing`: what a missing value means, in words a CSM uses.
* :func:`format_values` / :func:`format_value`: any value (missing and categorical ones too).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator


def _style(ind: Indicator) -> tuple:
    """How a known (non-missing) value of a numeric indicator is said: ``(float -> str, decimals)``,
    where ``decimals`` is the rounding the words show (``None``: 2 decimals below 100, whole above;
    ``"flag"``: yes/no)."""
    unit = ind.unit
    if unit.startswith("relative change"):
        return (lambda v: f"{v * 100:+.0f}%"), 2
    if unit.startswith("share"):
        return (lambda v: f"{v * 100:.0f}%"), 2
    if unit.startswith("days"):
        return (lambda v: f"{v:.0f} day{'' if abs(round(v)) == 1 else 's'}"), 0
    if unit.startswith("flag"):
        return (lambda v: "yes" if v >= 0.5 else "no"), "flag"
    if unit in ("tickets", "milestones", "answers", "count", "seats"):
        return (lambda v: f"{v:.0f}"), 0
    if unit.startswith("currency"):
        return (lambda v: f"{v:,.0f}"), 0
    if unit.startswith("hours"):
        return (lambda v: f"{v:.0f} h"), 0
    if unit.startswith("minutes"):
        return (lambda v: f"{v:.0f} min"), 0
    if unit.startswith("score points"):  # a change in mean survey score
        return (lambda v: f"{v:+.1f} points"), 1
    if unit.startswith("score"):  # survey answers: CES 1..7, CSAT 1..5, NPS 0..10
        return (lambda v: f"{v:.1f}"), 1
    return (lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"), None


_NEGATIVE_ZERO = re.compile(r"^[-\u2212](0(?:\.0+)?)(?![\d.])")


def formatter(ind: Indicator):
    """How a known (non-missing) value of a numeric indicator is said, as ``float -> str`` (a value that
    rounds to zero is said without a sign: never "-0.0 points")."""
    say = _style(ind)[0]
    return lambda v: _NEGATIVE_ZERO.sub(r"\1", say(v))


def displayed(ind: Indicator, values) -> np.ndarray:
    """Numeric values rounded the way their words show them (0.404 as "0.40" -> 0.40; a share 0.126
    as "13%" -> 0.13; a flag as 0/1), so that comparisons made in words can be checked on numbers:
    two values said alike compare equal. Missing values stay NaN."""
    v = np.asarray(values, dtype="float64")
    dec = _style(ind)[1]
    if dec == "flag":
        return np.where(np.isnan(v), np.nan, (v >= 0.5).astype("float64"))
    if dec is None:
        return np.where(np.abs(v) >= 100, np.round(v), np.round(v, 2))
    return np.round(v, dec)


# What a missing value means, in words a CSM uses (the definitions' ``missing`` texts are written for
# analysts: "account not paying 90 days before t"). Keys are indicator names; ``{w}`` is the window.
_MISSING_WORDS = [
    (r"active_users_per_seat_(\d+)d", "no licensed seats on record"),
    (r"events_per_active_user_(\d+)d", "no active users in the last {w} days"),
    (r"active_users_trend_30d", "no activity 31 to 60 days ago, or the account is younger than 60 days"),
    (r"events_trend_30d", "no product actions 31 to 60 days ago, or the account is younger than 60 days"),
    (r"weekday_share_30d", "no activity in the last 30 days"),
    (r"peak_active_users_per_seat_30d", "no activity in the last 30 days, or no licensed seats on record"),
    (r"feature_breadth_(\d+)d", "no feature usage columns for this customer base"),
    (r"ces_trend_90d", "no effort survey answered in the last 90 days, or none in the 90 days before"),
    (r"(ces|csat|nps)_responses_(\d+)d", "no survey data for this customer base"),
    (r"ces_\w+_(\d+)d", "no effort survey answered in the last {w} days"),
    (r"csat_\w+_(\d+)d", "no satisfaction survey answered in the last {w} days"),
    (r"nps_\w+_(\d+)d", "no NPS answer in the last {w} days"),
    (r"tickets_per_seat_(\d+)d", "no licensed seats on record, or no ticket data for this customer base"),
    (
        r"(tickets_opened_90d|high_urgent_tickets_90d|open_tickets|open_high_urgent_tickets|open_tickets_over_7d)",
        "no ticket data for this customer base",
    ),
    (r"(median_hours_to_close|long_tickets_share)_(\d+)d", "no ticket closed in the last {w} days"),
    (r"median_first_response_minutes_(\d+)d", "no ticket of the last {w} days has a recorded first response"),
    (r"milestones_on_time_share", "no onboarding milestone due yet"),
    (
        r"(milestones_reached|milestones_reached_share|milestones_overdue|max_days_overdue)",
        "no onboarding plan on record",
    ),
    (r"first_value_reached", "no first-value milestone in the onboarding plan"),
    (r"days_to_first_value", "first value not reached yet"),
    (r"mrr_change_(\d+)d", "no MRR {w} days ago: the account is newer, or was not paying then"),
    (r"(seats|mrr_per_seat)", "no seat count on record"),
    (r"(days_to_renewal|term_length_days)", "no contract end date on record"),
]


def plain_missing(ind: Indicator) -> str:
    """What a missing value of ``ind`` means, in plain words ("no MRR 90 days ago: the account is newer,
    or was not paying then"); "no data" for an indicator that is never missing."""
    if ind.kind == "categorical" or ind.sql is not None:
        return "not given"
    for pattern, words in _MISSING_WORDS:
        m = re.fullmatch(pattern, ind.name)
        if m:
            w = next((g for g in m.groups() if g and g.isdigit()), "")
            return words.format(w=w)
    text = ind.missing
    if text.startswith("never missing"):
        return "no data"
    text = re.sub(r"\[t-(\d+), t\)", r"the last \1 days", text)  # analyst notation, for indicators added later
    text = re.sub(r"(\d+) days before t\b", r"\1 days ago", text)
    text = re.sub(r"\bbefore t\b", "before the score date", text)
    return text.replace("in the window", "in the period")


def format_values(ind: Indicator, values) -> list[str]:
    """Values in the indicator's unit, the way a CSM would say them ("-42%", "12 days", "no data")."""
    values = np.asarray(values, dtype=object)
    missing = pd.isna(values).tolist()
    if ind.kind == "categorical":
        return ["not given" if m else str(v) for v, m in zip(values.tolist(), missing)]
    fmt = formatter(ind)
    return ["no data" if m else fmt(float(v)) for v, m in zip(values.tolist(), missing)]


def format_value(ind: Indicator, v) -> str:
    """One value in the indicator's unit."""
    return format_values(ind, [v])[0]
