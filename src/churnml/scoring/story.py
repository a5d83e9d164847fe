"""``churnml explain``: one account's story in plain words for a CSM."""

from __future__ import annotations

import re

import pandas as pd

from churnml.errors import ChurnmlError
from churnml.scoring.score import FAMILY_COLUMNS, ScoringResult


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (escape sequences among them) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def format_story(result: ScoringResult, account_id: str) -> str:
    s = result.scores.set_index("account_id")
    if account_id not in s.index:
        raise ChurnmlError(f"account {account_id!r} is not paying on {result.as_of - pd.Timedelta(days=1):%Y-%m-%d}; "
                           f"only paying accounts are scored")
    r = s.loc[account_id]
    seg_mean = result.scores.groupby("segment")["churn_probability"].mean().get(r["segment"], float("nan"))
    d = result.drivers[result.drivers["account_id"] == account_id]
    lines = [
        f"{r['name']} ({account_id}) | {r['segment'] or 'no segment'} | CSM {r['csm_owner'] or 'unassigned'} | "
        f"as of {result.as_of:%Y-%m-%d} | {result.model_name} v{result.model_version}",
        f"Churn risk {r['churn_probability']:.1%} ({r['risk_tier'].upper()}; segment average {seg_mean:.1%}) | "
        f"ARR {r['arr']:,.0f} | ARR at risk {r['arr_at_risk']:,.0f}"
        + (f" | renewal in {r['days_to_renewal']:.0f} days ({pd.Timestamp(r['renewal_date']):%Y-%m-%d})"
           if pd.notna(r["days_to_renewal"]) else ""),
        f"What changed: {r['what_changed'] or 'first score'}",
        "",
        "Why (probability points):",
    ]
    for row in d[d["target"] == "churn"].sort_values("rank").itertuples():
        lines.append(f"  {row.points * 100:+6.1f} pts  {row.family:<11} {row.text}")
        if row.play:
            lines.append(f"  {'':16}play: {row.play}")
    fams = ", ".join(f"{f} {r[f'churn_points_{f}'] * 100:+.1f}" for f in FAMILY_COLUMNS)
    lines += [f"By family: {fams}", "", f"Expansion: {r['expansion_signal']}"]
    for row in d[(d["target"] == "expansion") & (d["direction"] == "raises")].sort_values("rank").itertuples():
        lines.append(f"  {row.points * 100:+6.1f} pts  {row.family:<11} {row.text}")
    return "\n".join(printable(x) for x in lines)
