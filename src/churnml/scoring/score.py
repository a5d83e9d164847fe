"""Batch scoring of every account paying at the as-of date, with explanations (no files).

The result (documented in docs/scores.md): a scores table with one row per account, a
drivers table (the reasons, long format), a drift table, and the ledger rows that give
each account its risk trend and "what changed". The risk tier, the reasons (timing kept
apart as context), the plays and "how to lower it" all speak of the risk probability
(:meth:`churnml.modeling.model.ChurnmlModel.predict_risk`); the reasons engine is
:mod:`churnml.scoring.reasons`. The scoring flow (:mod:`churnml.flows.score`) writes the files.

Both engines score with the same functions: :func:`scoring_inputs` (what the model needs
from the base, and the indicators' definitions), :func:`base_state` (the quantities computed
once over the whole base: the expansion cut-off and the healthy levels), then
:func:`score_frame` on the accounts (all of them locally; one partition at a time on Spark,
:mod:`churnml.spark`), then :func:`add_previous` from the ledger.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnml.dataset import Context
from churnml.errors import ChurnmlError
from churnml.features import Indicator, build_features, indicators_for
from churnml.modeling.drift import PSI_THRESHOLD, drift_table
from churnml.modeling.model import ChurnmlModel, ModelInputs
from churnml.modeling.reference import healthy_levels_frame
from churnml.scoring import reasons as R
from churnml.scoring.explain import expansion_cutoff
from churnml.scoring.tiers import high_accounts, tier

LEDGER_COLUMNS = [
    "run_id",
    "scored_at",
    "as_of",
    "account_id",
    "model_name",
    "model_version",
    "churn_probability",
    "risk_probability",
    "expansion_probability",
    "risk_tier",
    "arr_at_risk",
    "top_driver_feature",
    "top_driver_family",
    "backfill",
]
FAMILY_COLUMNS = list(R.COMPONENTS)  # churn_points_<c>: usage ... commercial, timing, profile
PAST_DAYS = 90  # the account's own earlier level that reasons may quote ("three months ago")


@dataclass(frozen=True)
class ScoringSpec:
    """How a scoring run scores and explains, built once by the flow from the config's ``scoring``
    section and the model (its tiers' cut-offs): the parsed playbook, the tier cut-offs
    (:func:`churnml.scoring.tiers.tier_thresholds`), the reasons shown per account (``top``), the share
    of accounts most likely to expand that get expansion reasons, the drift threshold (PSI), the points
    a reason needs for a play, and the moves of "how to lower it"."""

    playbook: R.Playbook
    tier_thresholds: dict
    top: int = 3
    expansion_share: float = 0.3
    drift_threshold: float = PSI_THRESHOLD
    play_min_points: float = 1.0
    lower_moves: int = 2


@dataclass(frozen=True)
class BaseState:
    """What is computed once over the whole scored base and given to every part of it: the expansion
    probability above which accounts get expansion reasons, the healthy levels reasons quote, and (tiers
    by capacity) the accounts of the high tier."""

    expansion_threshold: float | None
    healthy: pd.DataFrame
    high_ids: frozenset[str] | None = None  # the capacity tiers' high tier, chosen over the whole base


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
    explained: pd.DataFrame | None = None  # per account: the reasons' ledger columns (for the next what_changed)

    def summary(self, paths: dict) -> str:
        s = self.scores
        high = (s["risk_tier"] == "high").sum()
        drifted = self.drift.loc[self.drift["drifted"], "feature"].tolist()
        return (
            f"scored {len(s):,} accounts as of {self.as_of:%Y-%m-%d} with {self.model_name} v{self.model_version}: "
            f"{high:,} high risk, mean risk {s['risk_probability'].mean():.1%}, ARR at risk "
            f"{s['arr_at_risk'].sum():,.0f} of {s['arr'].sum():,.0f}; mean churn within the horizon "
            f"{s['churn_probability'].mean():.1%}; "
            + (
                f"expansion {s['expansion_probability'].mean():.1%}; "
                if s["expansion_probability"].notna().any()
                else "expansion not modelled; "
            )
            + f"drift: {len(drifted)} feature(s){' (' + ', '.join(drifted[:5]) + ')' if drifted else ''}; "
            f"{self.seconds:.1f}s -> {paths['scores']}"
        )


# --- what the model needs from a base ---------------------------------------------------------------
def input_gaps(inputs: ModelInputs | None, ctx: Context) -> list[str]:
    """What a model needs that a base lacks (tables, usage columns, account attributes), in words."""
    if inputs is None:
        return []
    gaps = [f"the {t} table" for t in inputs.tables if t not in ctx.present]
    cols = [c for c in inputs.feature_columns if c not in ctx.feature_columns]
    if cols and "usage" in ctx.present:
        gaps.append(f"usage column(s) {', '.join(cols)}")
    attrs = [a for a, _ in inputs.attributes if a not in {n for n, _ in ctx.attributes}]
    if attrs:
        gaps.append(f"account attribute(s) {', '.join(attrs)}")
    return gaps


def model_context(model: ChurnmlModel, ctx: Context) -> Context:
    """The feature context the model was trained with (its indicators' definitions), else the base's."""
    inputs = model.card.inputs
    if inputs is None:
        return ctx
    return Context(
        feature_columns=tuple(inputs.feature_columns),
        present=frozenset(inputs.tables),
        attributes=tuple(inputs.attributes),
    )


def scoring_inputs(model: ChurnmlModel, ctx: Context, allow_missing: bool) -> tuple[list[str], dict[str, Indicator]]:
    """The gaps between what the model was trained with and the base (refused unless ``allow_missing``;
    then every score carries them in ``inputs_missing``), and the model's indicator definitions."""
    gaps = input_gaps(model.card.inputs, ctx)
    if gaps and not allow_missing:
        raise ChurnmlError(
            f"the model was trained with {'; '.join(gaps)}, which this base lacks: its scores "
            f"would not mean what they say. Provide the same tables and columns, train a model on "
            f"this base, or score anyway with --allow-missing (every score is then flagged)"
        )
    return gaps, {i.name: i for i in indicators_for(model_context(model, ctx))}


def with_all_indicators(X: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """``X`` with any indicator the model knows but the base cannot compute added as missing."""
    missing = [f for f in features if f not in X.columns]
    return X.assign(**dict.fromkeys(missing, np.nan)) if missing else X


# --- the quantities computed once over the base -------------------------------------------------------
def stored_healthy_levels(model: ChurnmlModel) -> pd.DataFrame | None:
    """The healthy levels kept with the model (accounts of its newest labelled cutoffs that did not churn)."""
    return healthy_levels_frame(model.card.healthy_levels)


def base_state(
    model: ChurnmlModel,
    X: pd.DataFrame,
    defs: dict[str, Indicator],
    spec: ScoringSpec,
    *,
    expansion: np.ndarray | None = None,
    risk: np.ndarray | None = None,
    books: pd.DataFrame | None = None,
) -> BaseState:
    """The expansion cut-off (top ``expansion_share`` of ``X`` by expansion probability) and the healthy
    levels (those kept with the model, else the lower-risk half of ``X`` by the risk probability), over
    the whole base ``X``. The Spark engine passes the probabilities it computed in its first pass
    (``expansion``, ``risk``) and only the reason columns of ``X``. ``books`` (``account_id``, ``arr``,
    ``csm_owner``, in the order of ``X``) is what the capacity tiers rank; without it they are read from
    ``X`` (its index and ``mrr``) with no CSM."""
    threshold = None
    if "expansion" in model.targets:
        p = expansion if expansion is not None else (model.predict_target(X, "expansion") if len(X) else np.array([]))
        threshold = expansion_cutoff(np.asarray(p, float), spec.expansion_share)
    healthy = stored_healthy_levels(model)
    if healthy is None:
        risk = model.predict_risk(X) if risk is None else risk
        healthy = R.healthy_levels(X, R.lower_risk_half(risk, X), defs)
    high = None
    if spec.tier_thresholds.get("method") == "capacity":
        risk = (model.predict_risk(X) if len(X) else np.array([])) if risk is None or np.isnan(risk).all() else risk
        if books is None:
            books = pd.DataFrame({"account_id": X.index.astype(str), "arr": 12 * X["mrr"].to_numpy(float)})
        owner = books["csm_owner"] if "csm_owner" in books else pd.Series(None, index=books.index, dtype="object")
        high = high_accounts(books["account_id"], risk, books["arr"], owner.to_numpy(), spec.tier_thresholds)
    return BaseState(threshold, healthy, high)


# --- scoring -------------------------------------------------------------------------------------------
def risk_frame(model: ChurnmlModel, X: pd.DataFrame, as_of) -> pd.DataFrame:
    """Every probability of the scores table (:meth:`ChurnmlModel.predict_proba`) and the risk's basis as
    data: ``risk_basis``, ``risk_window_days`` and ``risk_renewal_date`` (the renewal the risk runs to)."""
    out = model.predict_proba(X)
    basis = model.risk_basis(X)
    days = basis["renewal_in_days"].to_numpy(float)
    renewal = pd.Timestamp(as_of).normalize() + pd.to_timedelta(np.where(np.isnan(days), np.nan, days), unit="D")
    renewal = pd.Series(renewal, index=X.index).where(basis["risk_basis"].to_numpy() == "renewal")
    exp = out.pop("expansion_probability")
    out["risk_basis"] = basis["risk_basis"].to_numpy()
    out["risk_window_days"] = basis["risk_window_days"].to_numpy(float)
    out["risk_renewal_date"] = renewal.astype("datetime64[us]").to_numpy()
    out["expansion_probability"] = exp.to_numpy()
    return out


def score_dataset(
    ds,
    model: ChurnmlModel,
    spec: ScoringSpec,
    *,
    model_name: str,
    model_version: str,
    as_of,
    ledger: pd.DataFrame | None = None,
    X: pd.DataFrame | None = None,
    run_id: str | None = None,
    allow_missing: bool = False,
    backfill: bool = False,
) -> ScoringResult:
    """Score, explain and compare with the previous score, without touching files.

    A base lacking a table or column the model was trained with is refused unless
    ``allow_missing``; then every score carries the gaps in ``inputs_missing``. The reasons
    may quote each account's own level :data:`PAST_DAYS` days earlier (built here)."""
    t0 = time.perf_counter()
    as_of = pd.Timestamp(as_of).normalize()
    gaps, defs = scoring_inputs(model, ds.context(), allow_missing)
    past_day = as_of - pd.Timedelta(days=PAST_DAYS)
    both: pd.DataFrame | None = None  # both days' features, when built here
    if X is None:
        both = build_features(ds, [past_day, as_of])
        X = both[both.index.get_level_values("cutoff") == as_of]
    if X.empty:
        raise ChurnmlError(f"no account is paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to score")
    past = None if both is None else both[both.index.get_level_values("cutoff") == past_day].droplevel("cutoff")
    X = X.droplevel("cutoff") if isinstance(X.index, pd.MultiIndex) else X
    X = with_all_indicators(X, model.features)
    X = X.set_axis(pd.Index(X.index.astype(str), name="account_id"))
    attrs = ds.accounts.set_index("account_id")[["name", "segment", "csm_owner"]]
    attrs = attrs.set_axis(attrs.index.astype(str))
    books = pd.DataFrame(
        {
            "account_id": X.index.to_numpy(dtype=object),
            "arr": 12 * X["mrr"].to_numpy(float),
            "csm_owner": attrs["csm_owner"].reindex(X.index).to_numpy(),
        }
    )
    scores, drivers, current = score_frame(
        X,
        attrs,
        model,
        defs,
        spec,
        base_state(model, X, defs, spec, books=books),
        as_of=as_of,
        model_name=model_name,
        model_version=model_version,
        run_id=run_id or uuid.uuid4().hex[:12],
        past=past,
        gaps=gaps,
        backfill=backfill,
    )
    add_previous(scores, current, ledger, defs)
    drift = drift_table(X, model.card.reference, spec.drift_threshold)
    return ScoringResult(
        scores,
        drivers,
        drift,
        scores["run_id"].iloc[0],
        model_name,
        str(model_version),
        as_of,
        time.perf_counter() - t0,
        current,
    )


def score_frame(
    X: pd.DataFrame,
    attrs: pd.DataFrame,
    model: ChurnmlModel,
    defs: dict[str, Indicator],
    spec: ScoringSpec,
    state: BaseState,
    *,
    as_of,
    model_name: str,
    model_version: str,
    run_id: str = "",
    scored_at=None,
    past: pd.DataFrame | None = None,
    gaps=(),
    backfill: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Scores, reasons and the reasons' ledger columns for the accounts of ``X`` (indexed by
    account_id); pure, no I/O. ``state`` holds what is computed once over the whole base
    (:func:`base_state`), so scoring the base at once or in parts gives the same rows.

    Local scoring calls it once for the whole base; the Spark engine calls it per partition.
    """
    as_of = pd.Timestamp(as_of)
    ids = pd.Index(X.index.astype(str), name="account_id")
    X = X.set_axis(ids)
    if past is not None:
        past = past.set_axis(pd.Index(past.index.astype(str), name="account_id"))
    healthy = state.healthy
    probs = risk_frame(model, X, as_of)
    points, p0, p_risk, explains = model.explain_risk(X)
    chosen = None if state.high_ids is None else np.isin(ids.to_numpy(dtype=object), list(state.high_ids))
    tiers = tier(p_risk, spec.tier_thresholds, chosen)
    at_risk = pd.Series(tiers != "low", index=ids)
    p_exp = probs["expansion_probability"].to_numpy(dtype="float64")
    exp_points = None
    candidate = pd.Series(False, index=ids)
    if "expansion" in model.targets and len(X):
        cut = state.expansion_threshold if state.expansion_threshold is not None else np.inf
        rows = np.flatnonzero(p_exp >= cut)
        candidate = pd.Series(p_exp >= cut, index=ids)
        if len(rows):
            exp_points, _, _ = model.explain_target(X.iloc[rows], "expansion")
    explained = R.explain_reasons(
        points,
        p0,
        X,
        defs,
        healthy=healthy,
        playbook=spec.playbook,
        as_of=as_of,
        past=past,
        expansion_points=exp_points,
        at_risk=at_risk,
        expansion_candidate=candidate,
        probabilities=pd.DataFrame({"churn_probability": p_risk, "expansion_probability": p_exp}, index=ids),
        top=spec.top,
        play_min_points=spec.play_min_points,
        explains=explains,
    )
    reasons = explained.reasons
    lower = (
        R.how_to_lower(
            X,
            reasons,
            healthy,
            model.predict_risk,
            p_risk,
            defs=defs,
            at_risk=at_risk.to_numpy(),
            past=past,
            moves=spec.lower_moves,
        )
        if at_risk.any()
        else None
    )
    mrr = X["mrr"].to_numpy(float)
    days = X["days_to_renewal"].to_numpy(float) if "days_to_renewal" in X else np.full(len(X), np.nan)
    scored_at = scored_at if scored_at is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    scores = pd.DataFrame(
        {
            "account_id": ids.to_numpy(dtype=object),
            "name": attrs["name"].reindex(ids).to_numpy(),
            "segment": attrs["segment"].reindex(ids).to_numpy(),
            "csm_owner": attrs["csm_owner"].reindex(ids).to_numpy(),
            "as_of": as_of,
            **{c: probs[c].to_numpy() for c in probs.columns if c != "expansion_probability"},
            "risk_tier": tiers,
            "expansion_probability": p_exp,
            "mrr": mrr,
            "arr": 12 * mrr,
            # the one ARR at risk (docs/scores.md): expected ARR lost to churn within the risk's window
            "arr_at_risk": 12 * mrr * probs["risk_probability"].to_numpy(),
            "days_to_renewal": days,
            "renewal_date": as_of + pd.to_timedelta(np.where(np.isnan(days), np.nan, days), unit="D"),
            "timing": explained.timing.reindex(ids).to_numpy(),
            "model_name": model_name,
            "model_version": str(model_version),
            "scored_at": scored_at,
            "run_id": run_id,
        }
    )
    churn_up = reasons[(reasons["target"] == "churn") & (reasons["direction"] == "raises")]
    top1 = churn_up[churn_up["rank"] == churn_up.groupby("account_id")["rank"].transform("min")]
    top1 = top1.drop_duplicates("account_id").set_index("account_id")
    plays = reasons[(reasons["target"] == "churn") & reasons["play"].astype(str).str.len().gt(0)]
    first_play = plays.sort_values(["account_id", "rank"]).drop_duplicates("account_id").set_index("account_id")
    scores["top_driver"] = top1["text"].reindex(ids).fillna("").to_numpy()
    scores["top_driver_family"] = top1["family"].reindex(ids).to_numpy()
    scores["top_driver_feature"] = top1["feature"].reindex(ids).to_numpy()
    scores["top_play"] = first_play["play"].reindex(ids).fillna("").to_numpy()
    scores["how_to_lower"] = (
        R.lower_summary(lower).reindex(ids).fillna("").to_numpy()
        if lower is not None
        else np.full(len(ids), "", dtype=object)
    )
    exp1 = reasons[(reasons["target"] == "expansion") & (reasons["direction"] == "raises") & (reasons["rank"] == 1)]
    exp1 = exp1.drop_duplicates("account_id").set_index("account_id")["text"]
    scores["expansion_signal"] = [
        ("expansion not modelled (too few expansions in the history)" if p != p else f"{_share(p)} chance to expand")
        + (f"; {exp1.get(a)}" if a in exp1.index else "")
        for a, p in zip(ids, p_exp)
    ]
    comp = explained.components.reindex(ids)
    scores["explains"] = explains
    scores["churn_points_base"] = float(p0)
    for c in FAMILY_COLUMNS:
        scores[f"churn_points_{c}"] = comp[c].to_numpy() if c in comp else 0.0
    scores["inputs_missing"] = "; ".join(gaps)
    scores["backfill"] = bool(backfill)
    return scores, reasons, explained.ledger


def _share(p: float) -> str:
    return "under 1%" if p < 0.005 else f"{p:.0%}"


def add_previous(
    scores: pd.DataFrame, current: pd.DataFrame | None, ledger: pd.DataFrame | None, defs: dict | None = None
) -> None:
    """Add the previous score (the latest ledger row with an earlier as-of date) and what changed since,
    with its causes in points when the ledger kept the previous score's reasons."""
    scores["previous_churn_probability"] = np.nan
    scores["previous_risk_probability"] = np.nan
    scores["previous_risk_tier"] = None
    scores["previous_scored_at"] = pd.Series(pd.NaT, index=scores.index, dtype="datetime64[us]")
    scores["churn_probability_change"] = np.nan
    scores["risk_probability_change"] = np.nan
    scores["what_changed"] = "first score"
    if ledger is None or ledger.empty:
        return
    as_of = scores["as_of"].iloc[0]
    prev = ledger[pd.to_datetime(ledger["as_of"]) < as_of]
    if prev.empty:
        return
    prev = prev.sort_values(["as_of", "scored_at"]).groupby("account_id").tail(1).set_index("account_id")
    prev.index = prev.index.astype(str)
    ids = pd.Index(scores["account_id"].astype(str))
    p = prev.reindex(ids)
    scores["previous_churn_probability"] = p["churn_probability"].to_numpy(float)
    if "risk_probability" in p:
        scores["previous_risk_probability"] = p["risk_probability"].to_numpy(float)
    scores["previous_risk_tier"] = p["risk_tier"].to_numpy()
    scores["previous_scored_at"] = pd.to_datetime(p["as_of"]).to_numpy()
    scores["churn_probability_change"] = scores["churn_probability"] - scores["previous_churn_probability"]
    scores["risk_probability_change"] = scores["risk_probability"] - scores["previous_risk_probability"]
    kept = [c for c in R.ledger_column_names(0) if c in prev.columns]
    if current is not None and defs is not None and kept == R.ledger_column_names(0):
        words = R.what_changed(prev, current.reindex(ids), defs, previous_date=pd.to_datetime(p["as_of"]))
        scores["what_changed"] = words.to_numpy()
        tier_moved = p["risk_tier"].notna().to_numpy() & (p["risk_tier"].to_numpy() != scores["risk_tier"].to_numpy())
        scores.loc[tier_moved, "what_changed"] = [
            f"{w}; tier {a} -> {b}"
            for w, a, b in zip(
                scores.loc[tier_moved, "what_changed"],
                p["risk_tier"].to_numpy()[tier_moved],
                scores["risk_tier"].to_numpy()[tier_moved],
            )
        ]
        return
    texts = []
    for r in scores.itertuples():
        if pd.isna(r.previous_churn_probability):
            texts.append("first score")
            continue
        t = (
            f"churn risk {r.previous_churn_probability:.0%} -> {r.churn_probability:.0%} since "
            f"{pd.Timestamp(r.previous_scored_at):%Y-%m-%d}"
        )
        if r.previous_risk_tier != r.risk_tier:
            t += f"; tier {r.previous_risk_tier} -> {r.risk_tier}"
        texts.append(t)
    scores["what_changed"] = texts


def ledger_rows(result: ScoringResult) -> pd.DataFrame:
    """The ledger rows of a run: the score, and the reasons' columns that explain the next change."""
    s = result.scores
    rows = s[[c for c in LEDGER_COLUMNS if c in s.columns]].reset_index(drop=True)
    if result.explained is not None:
        extra = result.explained.reindex(s["account_id"].astype(str)).reset_index(drop=True)
        rows = pd.concat([rows, extra], axis=1)
    return rows
