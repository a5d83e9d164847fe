"""The done-means figures: whether reasons and plays keep their rules, read off a scoring run's output."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.features._registry import Indicator
from churnml.scoring.reasons.components import TIMING, account_ids, component_of, is_reason
from churnml.scoring.reasons.references import reason_disagrees
from churnml.scoring.reasons.select import one_window


def reason_metrics(
    reasons: pd.DataFrame,
    defs: dict[str, Indicator],
    *,
    high_risk,
    min_points: float = 1.0,
    points: pd.DataFrame | None = None,
    top: int = 3,
) -> dict:
    """Figures that say whether reasons and plays keep their rules, on a scoring run's output.

    ``reasons``: churn (and expansion) reasons with plays (:func:`assign_plays`); ``high_risk``:
    the high-risk account ids. With ``points`` (churn points of the same accounts): the share of
    high-risk accounts whose strongest raw driver is timing (what explanations without the
    timing split showed), and the share of points of each account's ``top`` strongest
    risk-raising reason candidates (one window per indicator) that the reasons leave out because
    their words could not explain them.
    """
    high = pd.Index(pd.unique(np.asarray(high_risk, dtype=object)))
    churn = reasons[reasons["target"] == "churn"]
    up = churn[churn["direction"] == "raises"]
    top1 = up[up["rank"] == 1].set_index("account_id").reindex(high)
    timing_top = top1["feature"].dropna().map(lambda f: component_of(f, defs) == TIMING)
    dis = reason_disagrees(up, defs) if len(up) else np.zeros(0, dtype=bool)
    has_play = reasons["play_id"].astype(str).str.len() > 0 if "play_id" in reasons else pd.Series(False, reasons.index)
    plays = reasons[has_play]
    out: dict[str, float | dict[str, int]] = {
        "accounts": int(reasons["account_id"].nunique()),
        "high_risk_accounts": len(high),
        "high_risk_without_reason": int(top1["feature"].isna().sum()),
        "high_risk_top_reason_timing": int(timing_top.sum()),
        "high_risk_top_reason_timing_share": float(timing_top.sum() / max(len(high), 1)),
        "risk_raising_reasons": len(up),
        "risk_raising_reasons_disagreeing": int(dis.sum()),
        "risk_raising_reasons_disagreeing_share": float(dis.mean()) if len(up) else 0.0,
        "plays": len(plays),
        "plays_under_threshold": int((plays["points"] < min_points / 100 - 1e-12).sum()),
        "plays_repeated_on_an_account": int(plays.duplicated(["account_id", "play_id"]).sum()),
    }
    quoted = np.select(
        [up["value"].isna(), up["healthy_level"].notna() & up["past_value"].notna(), up["healthy_level"].notna()],
        ["missing value", "healthy and past", "healthy"],
        "past",
    )
    out["risk_raising_reasons_by_reference"] = {k: int(v) for k, v in pd.Series(quoted).value_counts().items()}
    if points is not None and len(high):
        ids = account_ids(points.index)
        P = points.to_numpy(dtype="float64")
        strongest = np.array(points.columns, dtype=object)[P.argmax(axis=1)]
        raw = pd.Series(strongest, index=ids).reindex(high).dropna()
        out["high_risk_raw_top_driver_timing_share"] = float(raw.map(lambda f: component_of(f, defs) == TIMING).mean())
    if points is not None:
        cand = [c for c in points.columns if is_reason(c, defs)]
        P = points[cand].to_numpy(dtype="float64", copy=True)
        one_window(P, cand)
        best = np.clip(-np.sort(-P, axis=1)[:, :top], 0, None).sum()
        kept = up.loc[(up["rank"] <= top) & up["feature"].map(lambda f: is_reason(f, defs)), "points"].sum()
        out["risk_raising_candidate_points_left_out_share"] = float(1 - kept / best) if best > 0 else 0.0
    return out
