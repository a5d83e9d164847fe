"""``churnml explain``: one account's story in plain words for a CSM (text, for a terminal).

Its words come from the same functions as the pages' (:mod:`churnml.pages.words`)."""

from __future__ import annotations

import re

import pandas as pd

from churnml.errors import ChurnmlError
from churnml.pages.words import basis_phrase
from churnml.scoring.score import FAMILY_COLUMNS, ScoringResult

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (escape sequences among them) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def _pts(x: float) -> str:
    """Points with a sign, one decimal, never "-0.0"."""
    r = round(float(x) * 100, 1)
    return f"{r:+.1f}" if r else "0.0"


def _pct(p) -> str:
    return "" if p is None or p != p else ("under 0.1%" if 0 < p < 0.0005 else f"{p:.1%}")


def format_story(result: ScoringResult, account_id: str) -> str:
    """One account in words: the risk that sets its tier (and what it is), the curve, the timing
    line, the reasons in points of that risk with their plays, how to lower it, what changed."""
    s = result.scores.set_index("account_id")
    if account_id not in s.index:
        raise ChurnmlError(
            f"account {account_id!r} is not paying on {result.as_of - pd.Timedelta(days=1):%Y-%m-%d}; "
            f"only paying accounts are scored"
        )
    r = s.loc[account_id]
    risk = r.get("risk_probability", r["churn_probability"])
    seg_mean = result.scores.groupby("segment")["risk_probability"].mean().get(r["segment"], float("nan"))
    d = result.drivers[result.drivers["account_id"] == account_id]
    curve = [
        f"{h} {_pct(r[c])}"
        for h, c in (
            ("30 days", "churn_probability_30d"),
            ("90 days", "churn_probability"),
            ("180 days", "churn_probability_180d"),
            ("12 months", "churn_probability_365d"),
        )
        if c in r and r[c] == r[c]
    ]
    median = r.get("median_months_to_churn")
    renewal = r.get("risk_renewal_date")
    basis = basis_phrase(
        r.get("risk_basis"),
        r.get("risk_window_days"),
        None if renewal is None or pd.isna(renewal) else f"{pd.Timestamp(renewal):%Y-%m-%d}",
    )
    lines = [
        f"{r['name']} ({account_id}) | {r['segment'] or 'no segment'} | CSM {r['csm_owner'] or 'unassigned'} | "
        f"as of {result.as_of:%Y-%m-%d} | {result.model_name} v{result.model_version}",
        f"Churn risk {_pct(risk)} {basis} ({r['risk_tier'].upper()}; segment average "
        f"{_pct(seg_mean)}) | ARR {r['arr']:,.0f}" + f" | ARR at risk {basis.split(' (')[0]} {r['arr_at_risk']:,.0f}",
        # the one ARR at risk, the scores' column, over the same window as the risk (as on its page)
        (
            "Chance of churning within "
            + ", ".join(curve)
            + (f"; half-way to churn in about {median:.0f} months" if median == median and median is not None else "")
        )
        if curve
        else "",
        f"Timing: {r['timing']}" if r.get("timing") else "",
        f"What changed: {r['what_changed'] or 'first score'}",
        "",
        f"Why (points of the {_pct(risk)} risk, from a base of {_pct(r['churn_points_base'])}):",
    ]
    for row in d[d["target"] == "churn"].sort_values("rank").itertuples():
        lines.append(f"  {_pts(row.points):>6} pts  {row.family:<11} {row.text}")
        if row.play:
            lines.append(f"  {'':16}play: {row.play}")
    fams = ", ".join(f"{f} {_pts(r[f'churn_points_{f}'])}" for f in FAMILY_COLUMNS)
    lines.append(f"By family: {fams}")
    if r.get("how_to_lower"):
        lines.append(f"How to lower it: {r['how_to_lower']}")
    lines += ["", f"Expansion: {r['expansion_signal']}"]
    for row in d[(d["target"] == "expansion") & (d["direction"] == "raises")].sort_values("rank").itertuples():
        lines.append(f"  {_pts(row.points):>6} pts  {row.family:<11} {row.text}")
        if row.play:  # the same play, on the same reason, as the account page shows
            lines.append(f"  {'':16}play: {row.play}")
    return "\n".join(printable(x) for x in lines if x is not None)
