"""Churn events and the labels they give: when an account exits after a cutoff, and its renewals.

Events (:func:`churn_events`)
    For cutoff ``t`` and an account paying on day ``t-1``: how many days of the future
    are observed, and the offset from ``t`` to its first *exit* on or after ``t`` (a
    subscriptions row with ``mrr == 0``). The exit is a **churn** unless the row's
    ``end_kind`` is ``completed`` (a planned end that is no loss). From its first exit
    on the account leaves the population: a later win-back, churn or completed end
    does not count for cutoff ``t``. A **completed** end is never churn and never
    "stayed": the account is censored there.

Labels (:func:`churned_within`)
    Churned within ``H`` days: the first exit is a churn dated in ``[t, t+H)``. Did not
    churn: the window is observed (``t + H`` on or before the last day of the data, the
    contract's rule) and the account did not exit in it. Anything else is unknown
    (``<NA>``): an unobserved future is never read as "stayed", and an account whose
    term completed inside the window is neither.

Renewals and windows (:func:`next_renewal_days`, :func:`renewal_window`, :func:`risk_window_days`)
    The next renewal an account faces (the contract end in force, rolled forward by whole
    terms once passed), the window of the next-renewal probability, and the window of the
    risk probability a CSM can act on (to the next renewal, or the modelled year for
    monthly terms and accounts without a renewal date).

Periods (:data:`PERIOD_EDGES`, :func:`period_edges`)
    The months the hazard model (:mod:`churnml.modeling.survival`) cuts the future into.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError

# period ends (days after the cutoff) of the first year; later years repeat them (+365)
PERIOD_EDGES = (0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 365)
MAX_DAYS = 5 * 365 + 90  # longest window a curve or next renewal is computed over
DEFAULT_GRACE_DAYS = 14
_EVENT_COLS = ("observed_days", "churn_days", "completed_days")


# --- events and labels -----------------------------------------------------------------------
def churn_events(subscriptions: pd.DataFrame, cutoffs, last_day) -> pd.DataFrame:
    """Churn and completed-end timing for every account paying (MRR > 0) on day ``t-1``.

    Only subscriptions rows dated on or before ``last_day`` are read (later rows are the
    unobserved future). Returns a frame indexed by (account_id, cutoff) with

    * ``observed_days``: days of the future observed, ``last_day - t + 1`` (0 or less
      for a cutoff after the data);
    * ``churn_days``: days from ``t`` to the first exit on or after ``t`` (first row
      with ``mrr == 0``) when that exit is a churn (``end_kind`` empty, absent or
      ``churned``); NaN when the account has not churned in the data;
    * ``completed_days``: the same when the first exit is a ``completed`` end; NaN
      otherwise.

    At most one of the two offsets is set: the first exit ends the account's history for
    that cutoff (a win-back or a later end does not count).
    """
    need = [c for c in ("account_id", "effective_date", "mrr") if c not in subscriptions.columns]
    if need:
        raise ChurnmlError(f"subscriptions lacks column(s) {need}: see the data contract")
    last_day = pd.Timestamp(last_day).normalize()
    cuts = pd.DatetimeIndex(sorted({pd.Timestamp(t).normalize() for t in cutoffs})).astype("datetime64[us]")
    subs = subscriptions.loc[pd.to_datetime(subscriptions["effective_date"]) <= last_day]
    cols = ["account_id", "effective_date", "mrr"] + (["end_kind"] if "end_kind" in subs.columns else [])
    subs = subs[cols].copy()
    subs["account_id"] = subs["account_id"].astype(str)
    subs["effective_date"] = pd.to_datetime(subs["effective_date"]).astype("datetime64[us]")
    subs["mrr"] = pd.to_numeric(subs["mrr"]).astype(float)
    empty = pd.DataFrame(
        {c: pd.Series(dtype=float) for c in _EVENT_COLS},
        index=pd.MultiIndex.from_arrays(
            [pd.Index([], dtype=object), pd.DatetimeIndex([], dtype="datetime64[us]")], names=["account_id", "cutoff"]
        ),
    )
    empty["observed_days"] = empty["observed_days"].astype("int64")
    if subs.empty or len(cuts) == 0:
        return empty
    subs = subs.sort_values(["effective_date", "account_id"], kind="stable")
    grid = pd.MultiIndex.from_product([subs["account_id"].unique(), cuts], names=["account_id", "cutoff"])
    left = grid.to_frame(index=False).sort_values(["cutoff", "account_id"], kind="stable")
    # state on t-1: the latest row dated before t
    state = pd.merge_asof(
        left,
        subs[["account_id", "effective_date", "mrr"]],
        left_on="cutoff",
        right_on="effective_date",
        by="account_id",
        direction="backward",
        allow_exact_matches=False,
    )
    state = state[state["mrr"] > 0][["account_id", "cutoff"]]
    if state.empty:
        return empty
    exits = subs[subs["mrr"] == 0].copy()
    completed = (
        (exits["end_kind"].astype("string").str.strip().str.lower() == "completed").fillna(False)
        if "end_kind" in exits.columns
        else pd.Series(False, index=exits.index)
    )
    exits["completed"] = completed.to_numpy(bool)
    exits = exits.rename(columns={"effective_date": "exit_date"})[["account_id", "exit_date", "completed"]]
    # first exit on or after t
    out = pd.merge_asof(
        state.sort_values(["cutoff", "account_id"], kind="stable"),
        exits,
        left_on="cutoff",
        right_on="exit_date",
        by="account_id",
        direction="forward",
        allow_exact_matches=True,
    )
    offset = (out["exit_date"] - out["cutoff"]).dt.days.astype(float)
    is_done = out["completed"].astype("boolean").fillna(False).to_numpy(bool)
    res = pd.DataFrame(
        {
            "account_id": out["account_id"].astype(str).to_numpy(),
            "cutoff": out["cutoff"].to_numpy(),
            "observed_days": (last_day - out["cutoff"]).dt.days.to_numpy("int64") + 1,
            "churn_days": np.where(is_done, np.nan, offset),
            "completed_days": np.where(is_done, offset, np.nan),
        }
    )
    res = res.set_index(["account_id", "cutoff"]).sort_index()
    res.attrs["last_day"] = last_day
    return res


def window_observed(events: pd.DataFrame, days) -> np.ndarray:
    """Is ``[t, t+days)`` observed? The contract's rule: ``t + days`` on or before the last day."""
    return events["observed_days"].to_numpy(float) > np.asarray(days, float)


def churned_within(events: pd.DataFrame, days) -> pd.Series:
    """Churned within ``days`` of the cutoff (``days`` a number or one per row).

    True: the first exit is a churn dated in ``[t, t+days)``. False: the window is
    observed and the account did not exit in it. ``<NA>``: unknown (the window runs past
    the end of the data, or the term completed inside it).
    """
    d = np.broadcast_to(np.asarray(days, float), (len(events),))
    c = events["churn_days"].to_numpy(float)
    e = events["completed_days"].to_numpy(float)
    churned = c < d  # NaN compares False
    stayed = ~churned & window_observed(events, d) & ~(e < d) & ~np.isnan(d)
    out = pd.array(np.where(churned, True, False), dtype="boolean")
    out[~churned & ~stayed] = pd.NA
    return pd.Series(out, index=events.index, name=f"churned_{int(days)}d" if np.ndim(days) == 0 else "churned")


# --- renewals -------------------------------------------------------------------------------
def next_renewal_days(days_to_renewal, term_days, grace_days: int = DEFAULT_GRACE_DAYS) -> np.ndarray:
    """Days from the cutoff to the next renewal an account still faces.

    The renewal is the ``contract_end`` in force at ``t``. When it is more than
    ``grace_days`` in the past (the account still pays, so the renewal happened without
    a new row: an auto-renewal), it is rolled forward by whole terms until renewal +
    grace is after ``t``. NaN without a contract end, or when a past renewal cannot be
    rolled (no term length). A result in ``(-grace, 0)`` is a renewal whose decision is
    still pending.
    """
    d = np.asarray(days_to_renewal, float)
    T = np.asarray(term_days, float)
    behind = d + grace_days <= 0
    can_roll = behind & (T > 0)
    jumps = np.where(can_roll, np.floor((-d - grace_days) / np.where(T > 0, T, 1.0)) + 1, 0)
    r = d + jumps * np.where(T > 0, T, 0.0)
    return np.where(behind & ~can_roll, np.nan, r)


def did_not_renew(events: pd.DataFrame, X: pd.DataFrame, grace_days: int = DEFAULT_GRACE_DAYS) -> pd.Series:
    """Label for the next-renewal probability: churned before the next renewal + grace.

    Uses ``days_to_renewal`` and ``term_length_days`` of ``X`` (aligned on ``events``'s
    index) and :func:`next_renewal_days`. ``<NA>`` without a known renewal or when the
    window is not observed (see :func:`churned_within`).
    """
    X = X.reindex(events.index)
    window = next_renewal_days(X["days_to_renewal"], X["term_length_days"], grace_days) + grace_days
    out = churned_within(events, window)
    out[np.isnan(window)] = pd.NA
    return out.rename("did_not_renew")


def renewal_window(days_to_renewal, term_days, grace_days: int = DEFAULT_GRACE_DAYS) -> np.ndarray:
    """Days from the cutoff over which the next-renewal probability runs: to the renewal + grace,
    and at least to the end of the period (month) the renewal falls in. A renewal's churn is dated
    anywhere in its month (a cancellation takes effect at the end of a billing period, or is
    recorded late), and the hazard model learns each month's churn as a whole, so the renewal's
    month counts in full (a share of it would cut the renewal's risk by that share). NaN without
    a known renewal or beyond :data:`MAX_DAYS`."""
    d = next_renewal_days(days_to_renewal, term_days, grace_days)
    w = d + grace_days
    ahead = d >= 0  # NaN: False
    edges = period_edges(MAX_DAYS)
    k = np.searchsorted(edges, np.where(ahead, d, 0.0), side="right") - 1
    end = edges[np.minimum(k + 1, len(edges) - 1)]
    w = np.where(ahead, np.maximum(w, end), w)
    return np.where(w > MAX_DAYS, np.nan, w)


SHORT_TERM_DAYS = 45
"""Terms up to this long (monthly billing) renew every month: no renewal is a decision point a CSM
can prepare for, so their risk runs over the modelled year instead of to the next renewal."""


def risk_window_days(X: pd.DataFrame, grace_days: int = DEFAULT_GRACE_DAYS, horizon_days: int = 365) -> np.ndarray:
    """The window of the risk probability (:meth:`SurvivalModel.risk_window`) from features: the
    :func:`renewal_window` where the renewal is known and the term is longer than
    :data:`SHORT_TERM_DAYS`, else ``horizon_days`` (no renewal date on record, or monthly terms)."""
    w = renewal_window(X["days_to_renewal"], X["term_length_days"], grace_days)
    short = np.asarray(X["term_length_days"], float) <= SHORT_TERM_DAYS  # NaN: False
    return np.where(np.isnan(w) | short, float(horizon_days), w)


def risk_label(
    events: pd.DataFrame, X: pd.DataFrame, grace_days: int = DEFAULT_GRACE_DAYS, horizon_days: int = 365
) -> pd.Series:
    """Label for the risk probability, for judging it: churned within :func:`risk_window_days`, known only
    where that whole window is observed (``<NA>`` otherwise, churned or not: keeping the churns seen in a
    window still open while its stayers are unknown would choose rows by their outcome), or the term
    completed inside it."""
    X = X.reindex(events.index)
    w = risk_window_days(X, grace_days, horizon_days)
    y = churned_within(events, w)
    y[~window_observed(events, w)] = pd.NA
    return y.rename("churned_in_risk_window")


# --- periods --------------------------------------------------------------------------------
def period_edges(max_day: float) -> np.ndarray:
    """Period edges (days after the cutoff) from 0 up to the first edge >= ``max_day``."""
    years = int(np.ceil(max(float(max_day), 1.0) / 365))
    edges = np.concatenate([[0]] + [np.asarray(PERIOD_EDGES[1:]) + 365 * y for y in range(years)])
    return edges[: int(np.searchsorted(edges, max_day, side="left")) + 1].astype(float)
