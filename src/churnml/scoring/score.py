"""Batch scoring of every account paying at the as-of date, with explanations (no files).

The result (documented in docs/scores.md): a scores table with one row per account, a
drivers table (long format), a drift table, and the ledger rows that give each account
its risk trend. The scoring flow (:mod:`churnml.flows.score`) writes them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError
from churnml.features import FAMILIES, build_features, indicators_for
from churnml.scoring.drift import PSI_THRESHOLD, drift_table
from churnml.scoring.explain import explain_accounts

LEDGER_COLUMNS = ["run_id", "scored_at", "as_of", "account_id", "model_name", "model_version", "churn_probability",
                  "expansion_probability", "risk_tier", "arr_at_risk", "top_driver_feature", "top_driver_family"]
FAMILY_COLUMNS = list(FAMILIES)


@dataclass
class ScoringResult:
    scores: pd.DataFrame
    drivers: pd.DataFrame
    drift: pd.DataFrame
    run_id: str
    model_name: str
    model_version: str
    as_of: pd.Timestamp
    seconds: float

    def summary(self, paths: dict) -> str:
        s = self.scores
        high = (s["risk_tier"] == "high").sum()
        drifted = self.drift.loc[self.drift["drifted"], "feature"].tolist()
        return (f"scored {len(s):,} accounts as of {self.as_of:%Y-%m-%d} with {self.model_name} v{self.model_version}: "
                f"{high:,} high risk, ARR at risk {s['arr_at_risk'].sum():,.0f} of {s['arr'].sum():,.0f}, "
                f"mean churn {s['churn_probability'].mean():.1%}, expansion {s['expansion_probability'].mean():.1%}; "
                f"drift: {len(drifted)} feature(s){' (' + ', '.join(drifted[:5]) + ')' if drifted else ''}; "
                f"{self.seconds:.1f}s -> {paths['scores']}")


def check_playbook(book: dict, where: str) -> dict:
    """A parsed playbook, checked: every play has a title and a text."""
    if not isinstance(book, dict):
        raise ChurnmlError(f"{where}: a playbook is a mapping of target -> family -> play")
    for target in ("churn", "expansion"):
        for fam, play in (book.get(target) or {}).items():
            if not isinstance(play, dict) or not {"title", "text"} <= set(play):
                raise ChurnmlError(f"{where}: {target}.{fam} needs a title and a text")
    return book


def risk_tier_thresholds(p: np.ndarray, high_share: float = 0.10, medium_share: float = 0.30) -> dict:
    """Churn probability cut-offs for the tiers from predictions on a recent population
    (the final model's calibration slice): its top 10% is high risk, the next 20% medium."""
    p = np.asarray(p, float)
    return {"high": float(np.quantile(p, 1 - high_share)), "medium": float(np.quantile(p, 1 - medium_share)),
            "high_share": high_share, "medium_share": medium_share}


def tier(p: np.ndarray, thresholds: dict) -> np.ndarray:
    return np.where(p >= thresholds["high"], "high", np.where(p >= thresholds["medium"], "medium", "low"))


def score_dataset(ds, model, *, model_name: str, model_version: str, as_of, top: int, playbook: dict,
                  expansion_share: float, ledger: pd.DataFrame | None = None, drift_threshold: float = PSI_THRESHOLD,
                  X: pd.DataFrame | None = None, run_id: str | None = None) -> ScoringResult:
    """Score, explain and compare with the previous score, without touching files."""
    t0 = time.perf_counter()
    as_of = pd.Timestamp(as_of).normalize()
    if X is None:
        X = build_features(ds, [as_of])
    if X.empty:
        raise ChurnmlError(f"no account is paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to score")
    defs = {i.name: i for i in indicators_for(ds.context())}
    X = X.droplevel("cutoff") if isinstance(X.index, pd.MultiIndex) else X
    attrs = ds.accounts.set_index("account_id")[["name", "segment", "csm_owner"]]
    scores, drivers = score_frame(X, attrs, model, defs, playbook, as_of=as_of, model_name=model_name,
                                  model_version=model_version, top=top, expansion_share=expansion_share,
                                  run_id=run_id or uuid.uuid4().hex[:12])
    add_previous(scores, ledger)
    drift = drift_table(X, model.settings.get("reference", {}), drift_threshold)
    return ScoringResult(scores, drivers, drift, scores["run_id"].iloc[0], model_name, str(model_version), as_of,
                         time.perf_counter() - t0)


def score_frame(X: pd.DataFrame, attrs: pd.DataFrame, model, defs: dict, playbook: dict, *, as_of,
                model_name: str, model_version: str, top: int, expansion_share: float,
                run_id: str = "", scored_at=None, medians: pd.DataFrame | None = None,
                expansion_threshold: float | None = None, tier_thresholds: dict | None = None):
    """Scores and drivers for the accounts of ``X`` (indexed by account_id); pure, no I/O.

    Local scoring calls it once for the whole base; the Spark path calls it per
    partition with the global segment medians and cut-offs, so the results are equal.
    """
    probs, drivers, fam_pts = explain_accounts(model, X, defs, playbook, top=top, expansion_share=expansion_share,
                                               medians=medians, expansion_threshold=expansion_threshold)
    fam_pts = fam_pts.reindex(columns=FAMILY_COLUMNS, fill_value=0.0)
    ids = X.index
    mrr = X["mrr"].to_numpy(float)
    thresholds = tier_thresholds or model.settings.get("risk_tiers") or {
        "high": float(np.quantile(probs["churn"], 0.9)), "medium": float(np.quantile(probs["churn"], 0.7))}
    days = X["days_to_renewal"].to_numpy(float) if "days_to_renewal" in X else np.full(len(X), np.nan)
    as_of = pd.Timestamp(as_of)
    scored_at = scored_at if scored_at is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    scores = pd.DataFrame({
        "account_id": ids.astype(str),
        "name": attrs["name"].reindex(ids).to_numpy(),
        "segment": attrs["segment"].reindex(ids).to_numpy(),
        "csm_owner": attrs["csm_owner"].reindex(ids).to_numpy(),
        "as_of": as_of,
        "churn_probability": probs["churn"],
        "expansion_probability": probs.get("expansion", np.full(len(X), np.nan)),
        "risk_tier": tier(probs["churn"], thresholds),
        "mrr": mrr, "arr": 12 * mrr, "arr_at_risk": 12 * mrr * probs["churn"],
        "days_to_renewal": days,
        "renewal_date": as_of + pd.to_timedelta(np.where(np.isnan(days), np.nan, days), unit="D"),
        "model_name": model_name, "model_version": str(model_version),
        "scored_at": scored_at, "run_id": run_id,
    })
    top1 = drivers[(drivers["target"] == "churn") & (drivers["rank"] == 1) & (drivers["direction"] == "raises")]
    top1 = top1.set_index("account_id")
    scores["top_driver"] = top1["text"].reindex(scores["account_id"]).fillna("").to_numpy()
    scores["top_driver_family"] = top1["family"].reindex(scores["account_id"]).to_numpy()
    scores["top_driver_feature"] = top1["feature"].reindex(scores["account_id"]).to_numpy()
    scores["top_play"] = top1["play"].reindex(scores["account_id"]).fillna("").to_numpy()
    exp1 = drivers[(drivers["target"] == "expansion") & (drivers["rank"] == 1) & (drivers["direction"] == "raises")]
    exp1 = exp1.set_index("account_id")["text"]
    scores["expansion_signal"] = [
        f"{p:.0%} chance to expand" + (f"; {exp1.get(a)}" if a in exp1.index else "")
        for a, p in zip(scores["account_id"], scores["expansion_probability"])]
    for fam in FAMILY_COLUMNS:
        scores[f"churn_points_{fam}"] = fam_pts[fam].to_numpy()
    return scores, drivers


def add_previous(scores: pd.DataFrame, ledger: pd.DataFrame | None) -> None:
    """Add the previous score (latest earlier ledger entry) and what changed since."""
    scores["previous_churn_probability"] = np.nan
    scores["previous_risk_tier"] = None
    scores["previous_scored_at"] = pd.Series(pd.NaT, index=scores.index, dtype="datetime64[us]")
    scores["previous_top_driver_family"] = None
    scores["churn_probability_change"] = np.nan
    scores["what_changed"] = ""
    if ledger is None or ledger.empty:
        return
    as_of = scores["as_of"].iloc[0]
    prev = ledger[pd.to_datetime(ledger["as_of"]) < as_of]
    if prev.empty:
        return
    prev = prev.sort_values(["as_of", "scored_at"]).groupby("account_id").tail(1).set_index("account_id")
    prev = prev.reindex(scores["account_id"])
    scores["previous_churn_probability"] = prev["churn_probability"].to_numpy(float)
    scores["previous_risk_tier"] = prev["risk_tier"].to_numpy()
    scores["previous_scored_at"] = prev["as_of"].to_numpy()
    scores["previous_top_driver_family"] = prev["top_driver_family"].to_numpy()
    scores["churn_probability_change"] = scores["churn_probability"] - scores["previous_churn_probability"]
    texts = []
    for r in scores.itertuples():
        if pd.isna(r.previous_churn_probability):
            texts.append("first score")
            continue
        t = f"churn risk {r.previous_churn_probability:.0%} -> {r.churn_probability:.0%} since {pd.Timestamp(r.previous_scored_at):%Y-%m-%d}"
        if r.previous_risk_tier != r.risk_tier:
            t += f"; tier {r.previous_risk_tier} -> {r.risk_tier}"
        if isinstance(r.top_driver_family, str) and r.top_driver_family != r.previous_top_driver_family:
            t += f"; main driver now {r.top_driver_family}"
        texts.append(t)
    scores["what_changed"] = texts


def ledger_rows(result: ScoringResult) -> pd.DataFrame:
    s = result.scores
    return s.assign(top_driver_feature=s["top_driver_feature"], top_driver_family=s["top_driver_family"])[LEDGER_COLUMNS]
