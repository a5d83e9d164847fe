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
                f"mean churn {s['churn_probability'].mean():.1%}, "
                + (f"expansion {s['expansion_probability'].mean():.1%}; " if s["expansion_probability"].notna().any()
                   else "expansion not modelled; ") +
                f"drift: {len(drifted)} feature(s){' (' + ', '.join(drifted[:5]) + ')' if drifted else ''}; "
                f"{self.seconds:.1f}s -> {paths['scores']}")


def check_playbook(book: dict, where: str) -> dict:
    """A parsed playbook, checked (:func:`churnml.scoring.reasons.parse_playbook`: every play has a
    title, a text and the families or indicators it answers; conditions, ``when``, ``excludes`` and
    ``min_points`` are well formed; an error names the file, the key and what is wrong).
    Returns the playbook as given."""
    from churnml.scoring.reasons import parse_playbook

    parse_playbook(book, where)
    return book


def probability_quantiles(p: np.ndarray) -> list[float]:
    """The 0th..100th percentiles of churn probabilities on a recent population (the final model's
    calibration slice), kept with the model so tiers by quantiles can be cut at any share."""
    return np.quantile(np.asarray(p, float), np.linspace(0, 1, 101)).tolist()


def tier_thresholds(tiers, quantiles: list[float] | None = None) -> dict:
    """The probability cut-offs of the tiers from the tier settings (``method``, levels, shares)."""
    if tiers.method == "levels":
        return {"method": "levels", "high": float(tiers.high_level), "medium": float(tiers.medium_level)}
    if not quantiles:
        raise ChurnmlError("risk tiers by quantiles need the model's probability quantiles: retrain the model "
                           "(churnml train), or set scoring.tiers.method: levels")
    grid = np.linspace(0, 1, len(quantiles))
    q = lambda share: float(np.interp(1 - share, grid, quantiles))  # noqa: E731
    return {"method": "quantiles", "high": q(tiers.high_share), "medium": q(tiers.high_share + tiers.medium_share),
            "high_share": float(tiers.high_share), "medium_share": float(tiers.medium_share)}


def tier_texts(thresholds: dict, what: str = "chance of churning within 90 days") -> dict[str, str]:
    """Each tier in words, for every page and report (e.g. high: "30% or more chance of ...")."""
    h, m = thresholds["high"], thresholds["medium"]
    if thresholds.get("method") == "quantiles":
        return {"high": f"the {thresholds['high_share']:.0%} of accounts most at risk in recent history ({h:.0%} "
                        f"or more {what})",
                "medium": f"the next {thresholds['medium_share']:.0%} ({m:.0%} to {h:.0%})", "low": f"below {m:.0%}"}
    return {"high": f"{h:.0%} or more {what}", "medium": f"{m:.0%} to {h:.0%}", "low": f"below {m:.0%}"}


def tier_rule(thresholds: dict, what: str = "chance of churning within 90 days") -> str:
    """The tiers in one line: "high: 30% or more chance of ...; medium: 15% to 30%; low: below 15%"."""
    return "; ".join(f"{k}: {v}" for k, v in tier_texts(thresholds, what).items())


def model_inputs(ctx, X: pd.DataFrame, features: list[str], categorical: list[str]) -> dict:
    """What a model was trained with, kept in its settings: the tables, the ``feature_*`` usage columns,
    the declared attributes, the indicators and each numeric indicator's training range."""
    num = [f for f in features if f not in categorical]
    lo, hi = X[num].min(), X[num].max()
    return {"tables": sorted(ctx.present), "feature_columns": list(ctx.feature_columns),
            "attributes": [[a, k] for a, k in ctx.attributes], "indicators": list(features),
            "ranges": {f: [None if pd.isna(lo[f]) else float(lo[f]), None if pd.isna(hi[f]) else float(hi[f])]
                       for f in num}}


def input_gaps(inputs: dict | None, ctx) -> list[str]:
    """What a model needs that a base lacks (tables, usage columns, account attributes), in words."""
    if not inputs:
        return []
    gaps = [f"the {t} table" for t in inputs["tables"] if t not in ctx.present]
    cols = [c for c in inputs["feature_columns"] if c not in ctx.feature_columns]
    if cols and "usage" in ctx.present:
        gaps.append(f"usage column(s) {', '.join(cols)}")
    attrs = [a for a, _ in inputs["attributes"] if a not in {n for n, _ in ctx.attributes}]
    if attrs:
        gaps.append(f"account attribute(s) {', '.join(attrs)}")
    return gaps


def check_inputs(model, ctx, allow_missing: bool) -> list[str]:
    """Refuse to score a base that lacks what the model was trained with, unless ``allow_missing``
    (then the gaps are returned, and every score is flagged with them)."""
    gaps = input_gaps(model.settings.get("inputs"), ctx)
    if gaps and not allow_missing:
        raise ChurnmlError(f"the model was trained with {'; '.join(gaps)}, which this base lacks: its scores "
                           f"would not mean what they say. Provide the same tables and columns, train a model on "
                           f"this base, or score anyway with --allow-missing (every score is then flagged)")
    return gaps


def with_all_indicators(X: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """``X`` with any indicator the model knows but the base cannot compute added as missing."""
    missing = [f for f in features if f not in X.columns]
    return X.assign(**{f: np.nan for f in missing}) if missing else X


def tier(p: np.ndarray, thresholds: dict) -> np.ndarray:
    return np.where(p >= thresholds["high"], "high", np.where(p >= thresholds["medium"], "medium", "low"))


def score_dataset(ds, model, *, model_name: str, model_version: str, as_of, top: int, playbook: dict,
                  expansion_share: float, tier_thresholds: dict, ledger: pd.DataFrame | None = None,
                  drift_threshold: float = PSI_THRESHOLD, X: pd.DataFrame | None = None, run_id: str | None = None,
                  allow_missing: bool = False) -> ScoringResult:
    """Score, explain and compare with the previous score, without touching files.

    A base lacking a table or column the model was trained with is refused unless
    ``allow_missing``; then every score carries the gaps in ``inputs_missing``."""
    t0 = time.perf_counter()
    as_of = pd.Timestamp(as_of).normalize()
    ctx = ds.context()
    gaps = check_inputs(model, ctx, allow_missing)
    if X is None:
        X = build_features(ds, [as_of])
    if X.empty:
        raise ChurnmlError(f"no account is paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to score")
    defs = {i.name: i for i in indicators_for(model_context(model, ctx))}
    X = X.droplevel("cutoff") if isinstance(X.index, pd.MultiIndex) else X
    X = with_all_indicators(X, model.features)
    attrs = ds.accounts.set_index("account_id")[["name", "segment", "csm_owner"]]
    scores, drivers = score_frame(X, attrs, model, defs, playbook, as_of=as_of, model_name=model_name,
                                  model_version=model_version, top=top, expansion_share=expansion_share,
                                  tier_thresholds=tier_thresholds, run_id=run_id or uuid.uuid4().hex[:12])
    scores["inputs_missing"] = "; ".join(gaps)
    add_previous(scores, ledger)
    drift = drift_table(X, model.settings.get("reference", {}), drift_threshold)
    return ScoringResult(scores, drivers, drift, scores["run_id"].iloc[0], model_name, str(model_version), as_of,
                         time.perf_counter() - t0)


def model_context(model, ctx):
    """The feature context the model was trained with (its indicators' definitions), else the base's."""
    inputs = model.settings.get("inputs")
    if not inputs:
        return ctx
    from churnml.dataset import Context

    return Context(feature_columns=tuple(inputs["feature_columns"]), present=frozenset(inputs["tables"]),
                   attributes=tuple((a, k) for a, k in inputs["attributes"]))


def score_frame(X: pd.DataFrame, attrs: pd.DataFrame, model, defs: dict, playbook: dict, *, as_of,
                model_name: str, model_version: str, top: int, expansion_share: float,
                run_id: str = "", scored_at=None, medians: pd.DataFrame | None = None,
                tier_thresholds: dict, expansion_threshold: float | None = None):
    """Scores and drivers for the accounts of ``X`` (indexed by account_id); pure, no I/O.

    Local scoring calls it once for the whole base; the Spark path calls it per
    partition with the global segment medians and cut-offs, so the results are equal.
    """
    probs, drivers, fam_pts = explain_accounts(model, X, defs, playbook, top=top, expansion_share=expansion_share,
                                               medians=medians, expansion_threshold=expansion_threshold)
    fam_pts = fam_pts.reindex(columns=FAMILY_COLUMNS, fill_value=0.0)
    ids = X.index
    mrr = X["mrr"].to_numpy(float)
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
        "risk_tier": tier(probs["churn"], tier_thresholds),
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
        ("expansion not modelled (too few expansions in the history)" if p != p else f"{p:.0%} chance to expand")
        + (f"; {exp1.get(a)}" if a in exp1.index else "")
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
