"""Time to churn: each paying account's churn probability curve over the coming months.

In a B2B base most churn happens at renewal, so a single 90-day probability mostly
restates the renewal calendar. This module models *when* an account churns: a
discrete-time hazard model gives, per account, the probability of churning within
any number of days (30, 90, 180, 365, ...) and the probability that it does not renew
at its next renewal, however far away that is.

Events, labels and renewal windows are :mod:`churnml.modeling.events`.

The hazard model (:class:`SurvivalModel`)
    The next months are cut into periods (:data:`PERIOD_EDGES`: 30-day months, the
    twelfth of 35 days so that 30, 90, 180 and 365 days are period ends; later years
    repeat the same cut). LightGBM learns the **hazard**: the probability that an
    account still paying at the start of period ``k`` churns in it, from the account's
    features at ``t`` and four *timing* inputs of the period (:data:`TIMING`):
    ``months_ahead`` (``k``), ``renewal_in_days`` (days from the period's start to the
    next renewal, the contract end rolled forward by whole terms),
    ``days_since_renewal`` (days since the previous renewal or term start) and
    ``renewals_passed`` (renewals the account came through since ``t``). Training rows
    are (account, cutoff, period) for every period that is **fully observed** while the
    account is still paying; the event is a churn inside the period. A period that runs
    past the end of the data is left out whole (leaving out only its non-events would
    bias the hazard up), and so is a period in which the term completes. Cutoffs whose
    12-month window is not observed yet still train the first months. Non-event rows
    are subsampled (``negative_rate``, weighted back by its inverse).

    Two boosters share the work (``segments=(3,)``): one learns the first three months
    from those months' rows only, the other scores the later months and learns from
    every month (``last_learns_all``). With a single booster the later months, three
    quarters of the rows, set what the trees learn and the 90-day ranking fell below
    today's 90-day classifier in the backtest (``benchmarks/study_survival.py``).

    The curve is ``P(churn within d) = 1 - S(d)`` with ``S`` compounding the period
    hazards (a partial period at constant hazard), so it is monotone by construction.
    Calibration is on the hazard, never per horizon, which keeps every curve monotone:
    Platt scaling of each booster's log-odds whose slope and intercept may change
    linearly with the month (:func:`_platt_by_month`), then a gamma-frailty correction
    ``S = (1 + theta L) ** (-1 / theta)`` of the cumulative hazard ``L``: accounts that
    came through months of high predicted risk were the sturdier ones, which a product of
    hazards alone overstates. Both are fitted on the later calibration slice.

Fit and calibration slices are split in **calendar time**, like the 90-day recipe's
later slice: with the data known up to ``last_day``, the boosters are grown on the
period rows that end before ``last_day + 1 - calibration_days`` and early-stopped
and calibrated on the period rows that end in the last ``calibration_days``. Those
come from every months-ahead, so the far end of the curve is calibrated on outcomes
as recent as the near end.

Explanations (:meth:`SurvivalModel.explain`) are exact in probability points:
TreeSHAP of each period's log-odds, mapped to that period's ``log(1 - h)`` and summed
over the periods of the window, then rescaled to points of the chosen probability,
so that ``base + sum(points) + sum(timing) = probability``. The synthetic period
inputs (and the window length for next-renewal) come out as separate *timing*
columns; the account's own calendar features stay among the features, for the caller
to group (``pd.concat([e.points, e.timing], axis=1)`` is the points frame
:mod:`churnml.scoring.reasons` takes: it puts the timing columns and the calendar
indicators in its timing component).

Cost: one model pass per period of the window, for prediction and explanation
alike: the 12-month probability scores 12 rows per account (about 3x the time of today's
single 90-day pass), and its explanation is 12 exact TreeSHAP passes over the same rows
plus array arithmetic. With the tabulated TreeSHAP of :mod:`churnml.modeling.treeshap`
(the default) explaining costs 1.6-1.8x predicting; with LightGBM's ``pred_contrib``
about 18x (docs/time_to_churn.md has the figures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression

from churnml.errors import ChurnmlError
from churnml.modeling.encoding import CategoryCodes
from churnml.modeling.events import (
    DEFAULT_GRACE_DAYS,
    MAX_DAYS,
    PERIOD_EDGES,
    period_edges,
    renewal_window,
    risk_window_days,
)
from churnml.modeling.params import EARLY_STOPPING, MAX_ROUNDS, lgb_params
from churnml.modeling.treeshap import TabulatedTreeShap

DEFAULT_DAYS = (30, 90, 180, 365)
TIMING = ("months_ahead", "renewal_in_days", "days_since_renewal", "renewals_passed")
WINDOW = "window"  # the timing column for a window longer or shorter than the reference
CALENDAR_FEATURES = ("days_to_renewal", "term_length_days")  # the calendar features the timing inputs come from


# --- periods --------------------------------------------------------------------------------
def timing_inputs(k, start, days_to_renewal, term_days) -> dict[str, np.ndarray]:
    """The synthetic inputs of period rows: ``months_ahead`` (k), ``renewal_in_days`` (days
    from the period's start to the next renewal on or after it, the contract end rolled
    forward by whole terms) and ``days_since_renewal`` (days from the previous renewal, or
    the term's start, to the period's start). NaN without a contract end; a renewal that
    cannot be rolled (no term length) is NaN once passed."""
    start = np.asarray(start, float)
    d = np.asarray(days_to_renewal, float)
    T = np.asarray(term_days, float)
    ok_T = T > 0
    behind = d < start
    jumps = np.where(behind & ok_T, np.ceil((start - d) / np.where(ok_T, T, 1.0)), 0.0)
    nxt = np.where(behind & ~ok_T, np.nan, d + jumps * np.where(ok_T, T, 0.0))
    # renewals between the cutoff and the period's start that the account (still paying) came through
    first = np.where((d < 0) & ok_T, d + np.ceil(-d / np.where(ok_T, T, 1.0)) * np.where(ok_T, T, 0.0), d)
    passed = np.where(
        first >= start, 0.0, np.where(ok_T, np.floor((start - 1 - first) / np.where(ok_T, T, 1.0)) + 1, 1.0)
    )
    passed = np.where(np.isnan(d) | (first < 0), np.where(np.isnan(d), np.nan, 0.0), passed)
    return {
        "months_ahead": np.asarray(k, float),
        "renewal_in_days": nxt - start,
        "days_since_renewal": np.where(ok_T, start - (nxt - T), np.nan),
        "renewals_passed": passed,
    }


def period_rows(events: pd.DataFrame, edges=PERIOD_EDGES) -> pd.DataFrame:
    """Training rows of the hazard: one per (account, cutoff, period) that is fully observed
    while the account still pays.

    Returns ``row`` (position in ``events``), ``k``, ``start`` and ``end`` (days after the
    cutoff), ``end_date`` (``t + end``: the period counts as observed when this is on or
    before the last day) and ``churn`` (1 when the account churned inside the period).
    A period with a completed end inside it, and every period after an exit, is left out.
    """
    edges = np.asarray(edges, float)
    n, K = len(events), len(edges) - 1
    obs = events["observed_days"].to_numpy(float)
    c = np.nan_to_num(events["churn_days"].to_numpy(float), nan=np.inf)
    e = np.nan_to_num(events["completed_days"].to_numpy(float), nan=np.inf)
    row = np.repeat(np.arange(n), K)
    k = np.tile(np.arange(K), n)
    start, end = edges[k], edges[k + 1]
    keep = (obs[row] > end) & (c[row] >= start) & (e[row] >= end)
    row, k, start, end = row[keep], k[keep], start[keep], end[keep]
    cut = events.index.get_level_values("cutoff").to_numpy("datetime64[D]")[row]
    return pd.DataFrame(
        {
            "row": row,
            "k": k,
            "start": start,
            "end": end,
            "end_date": cut + end.astype("timedelta64[D]"),
            "churn": (c[row] < end).astype(np.int8),
        }
    )


# --- the model ------------------------------------------------------------------------------
@dataclass
class Explanation:
    """Contributions in probability points to one probability of each account.

    ``base + points.sum(axis=1) + timing.sum(axis=1) == probability`` (exactly, up to
    float rounding). ``points`` has one column per model feature, ``timing`` one per
    synthetic period input plus ``window`` (a window longer or shorter than the
    reference one: non-zero for next-renewal probabilities only).
    """

    points: pd.DataFrame
    timing: pd.DataFrame
    base: float
    probability: pd.Series
    which: str

    def total(self) -> pd.Series:
        """``base`` plus every contribution (equals ``probability``)."""
        return self.base + self.points.sum(axis=1) + self.timing.sum(axis=1)


class SurvivalModel:
    """Discrete-time hazard model: churn probability curves and next-renewal probabilities.

    ``__init__`` stores settings only; :meth:`fit` learns. ``params`` override
    :func:`churnml.modeling.model.lgb_params` (compact trees by default).
    ``horizon_days``: the span of periods trained (default 365). ``negative_rate``: the
    share of non-event period rows kept (weighted back by its inverse) to bound cost.
    ``grace_days``: a churn up to this many days after the renewal date still counts as
    not renewing. ``calibration``: ``sigmoid`` (Platt scaling of the hazard's log-odds)
    or ``none``.
    """

    def __init__(
        self,
        params: dict | None = None,
        *,
        horizon_days: int = 365,
        negative_rate: float = 0.3,
        grace_days: int = DEFAULT_GRACE_DAYS,
        calibration: str = "sigmoid",
        segments=(3,),
        last_learns_all: bool = True,
        frailty: bool = True,
        seed: int = 0,
        threads: int = 2,
    ):
        self.params = params
        self.frailty = frailty
        self.segments = segments
        self.last_learns_all = last_learns_all
        self.horizon_days = horizon_days
        self.negative_rate = negative_rate
        self.grace_days = grace_days
        self.calibration = calibration
        self.seed = seed
        self.threads = threads

    # --- training -------------------------------------------------------------------------
    def fit(
        self, X: pd.DataFrame, events: pd.DataFrame, *, categorical=(), calibration_days: int = 91, last_day=None
    ) -> SurvivalModel:
        """Fit on features ``X`` and :func:`churn_events` ``events`` (both indexed by
        (account_id, cutoff); their common rows are used).

        ``last_day``: the last day of the data known to this fit (default: the one the
        events were computed with). Period rows ending in the last ``calibration_days``
        form the calibration slice (early stopping and Platt scaling); earlier ones grow
        the trees. Raises :class:`ChurnmlError` when either slice has no churn.
        """
        if not 0 < self.negative_rate <= 1:
            raise ChurnmlError(f"negative_rate must be in (0, 1], got {self.negative_rate}")
        if self.calibration not in ("sigmoid", "none"):
            raise ChurnmlError(f"calibration must be sigmoid or none, got {self.calibration!r}")
        if not 30 <= self.horizon_days <= MAX_DAYS:
            raise ChurnmlError(f"horizon_days must be in 30..{MAX_DAYS}, got {self.horizon_days}")
        missing = [c for c in CALENDAR_FEATURES if c not in X.columns]
        if missing:
            raise ChurnmlError(
                f"the feature table lacks {missing}: the hazard model needs them (NaN when the data "
                f"has no contract_end)"
            )
        if last_day is None:
            last_day = events.attrs.get("last_day")
            if last_day is None:
                ends = events.index.get_level_values("cutoff") + pd.to_timedelta(events["observed_days"] - 1, unit="D")
                last_day = ends.max()
        last_day = pd.Timestamp(last_day)
        common = X.index.intersection(events.index)
        ev = events.loc[common]
        cut = ev.index.get_level_values("cutoff")
        ev = ev.assign(observed_days=np.minimum(ev["observed_days"].to_numpy(), (last_day - cut).days + 1))
        ev = ev[ev["observed_days"] > 0]
        Xc = X.loc[ev.index]
        edges = period_edges(self.horizon_days)
        rows = period_rows(ev, edges)
        cal_start = np.datetime64(last_day + pd.Timedelta(days=1) - pd.Timedelta(days=calibration_days), "D")
        in_cal = rows["end_date"].to_numpy() > cal_start - np.timedelta64(1, "D")
        fit_rows, cal_rows = rows[~in_cal], rows[in_cal]
        for name, part in (("training", fit_rows), ("calibration", cal_rows)):
            if part.empty or part["churn"].sum() == 0:
                raise ChurnmlError(
                    f"history too short for the time-to-churn model: the {name} slice has "
                    f"{len(part)} account-months and {int(part['churn'].sum()) if len(part) else 0} churns. It needs "
                    f"churns observed both before and within the last {calibration_days} days of the data "
                    f"({last_day:%Y-%m-%d}); use a longer history or a shorter calibration_days"
                )
        self.features_ = list(X.columns)
        self.categorical_ = [c for c in categorical if c in self.features_]
        self.max_period_ = int(fit_rows["k"].max())  # later months-ahead are read as this one
        self.encoder_ = CategoryCodes(tuple(self.categorical_)).fit(Xc.iloc[np.unique(fit_rows["row"])])
        A = self._encoded(Xc)
        rng = np.random.default_rng(self.seed)
        sampled = []
        for part in (fit_rows, cal_rows):
            keep = (part["churn"].to_numpy() == 1) | (rng.random(len(part)) < self.negative_rate)
            sampled.append(part[keep])
        starts, merged = self._segment_starts(fit_rows, cal_rows)
        self.segment_starts_ = starts
        self.boosters_, self.best_iterations_, self.calibrations_ = [], [], []
        for i, lo in enumerate(starts):
            last = i + 1 == len(starts)
            hi = np.inf if last else starts[i + 1]
            lo_rows = 0 if last and self.last_learns_all else lo
            data = []
            for part, first in zip(sampled, (lo_rows, lo)):  # early stopping and calibration: its own months
                part = part[(part["k"] >= first) & (part["k"] < hi)]
                w = np.where(part["churn"].to_numpy() == 1, 1.0, 1.0 / self.negative_rate)
                data.append((self._design(A, Xc, part), part["churn"].to_numpy(int), w))
                k_last = np.minimum(part["k"].to_numpy(), self.max_period_)  # the calibration rows' months
            booster, best, cal = self._grow(*data[0], *data[1], k_cal=k_last)
            self.boosters_.append(booster)
            self.best_iterations_.append(best)
            self.calibrations_.append(cal)
        self.frailty_ = 0.0
        if self.frailty:
            cal_part = sampled[1]
            self.frailty_ = self._fit_frailty(
                A, Xc, cal_part, np.where(cal_part["churn"].to_numpy() == 1, 1.0, 1.0 / self.negative_rate)
            )
        self.settings_ = {
            "last_day": f"{last_day:%Y-%m-%d}",
            "calibration_start": str(cal_start),
            "calibration_days": int(calibration_days),
            "horizon_days": int(self.horizon_days),
            "grace_days": int(self.grace_days),
            "negative_rate": float(self.negative_rate),
            "trained_days": float(edges[self.max_period_ + 1]),
            "segment_starts": list(starts),
            "segments_merged": merged,
            "frailty": float(self.frailty_),
            "fit_rows": len(fit_rows),
            "fit_churns": int(fit_rows["churn"].sum()),
            "calibration_rows": len(cal_rows),
            "calibration_churns": int(cal_rows["churn"].sum()),
        }
        return self

    def get_init(self) -> dict:
        """The constructor's settings."""
        return {
            "params": self.params,
            "horizon_days": self.horizon_days,
            "negative_rate": self.negative_rate,
            "grace_days": self.grace_days,
            "calibration": self.calibration,
            "segments": tuple(self.segments),
            "last_learns_all": self.last_learns_all,
            "frailty": self.frailty,
            "seed": self.seed,
            "threads": self.threads,
        }

    def _fit_frailty(self, A: np.ndarray, X: pd.DataFrame, rows: pd.DataFrame, w: np.ndarray) -> float:
        """The gamma-frailty variance ``theta`` that best predicts the calibration rows.

        The model's hazards compound into a cumulative hazard ``L`` per account; with
        frailty the survival is ``(1 + theta L) ** (-1 / theta)``, so an account that came
        through months of high predicted risk is taken to be less risky than predicted (it
        was one of the sturdier ones). ``theta`` is fitted by weighted likelihood of the
        churns in the calibration slice's period rows given each row's cumulative hazard
        before and after its period; 0 is no correction. It barely moves the first months
        (small ``L``) and tempers 12-month probabilities that compound high hazards.
        """
        if rows.empty or rows["churn"].sum() == 0:
            return 0.0
        uniq, inv = np.unique(rows["row"].to_numpy(), return_inverse=True)
        k = rows["k"].to_numpy()
        K = int(k.max()) + 1
        grid = pd.DataFrame(
            {
                "row": np.repeat(uniq, K),
                "k": np.tile(np.arange(K), len(uniq)),
                "start": np.tile(period_edges(MAX_DAYS)[:K], len(uniq)),
            }
        )
        ls = -np.logaddexp(0.0, self._eta(self._design(A, X, grid), grid["k"].to_numpy())).reshape(len(uniq), K)
        cum = np.concatenate([np.zeros((len(uniq), 1)), -np.cumsum(ls, axis=1)], axis=1)
        lam0, lam1 = cum[inv, k], cum[inv, k + 1]
        y = rows["churn"].to_numpy(float)

        def nll(theta):
            if theta < 1e-9:
                surv = np.exp(lam0 - lam1)
            else:
                surv = np.exp(-(np.log1p(theta * lam1) - np.log1p(theta * lam0)) / theta)
            h = np.clip(1.0 - surv, 1e-12, 1 - 1e-12)
            return -float((w * (y * np.log(h) + (1 - y) * np.log1p(-h))).sum())

        best = minimize_scalar(nll, bounds=(0.0, 20.0), method="bounded", options={"xatol": 1e-3})
        theta = float(best.x)
        return theta if nll(theta) < nll(0.0) else 0.0

    def _probability(self, log_s) -> np.ndarray:
        """Churn probability from the model's log-survival (minus the cumulative hazard),
        with the frailty correction."""
        lam = -np.asarray(log_s, float)
        theta = getattr(self, "frailty_", 0.0)
        if theta < 1e-9:
            return -np.expm1(-lam)
        return -np.expm1(-np.log1p(theta * lam) / theta)

    def _segment_starts(self, fit_rows: pd.DataFrame, cal_rows: pd.DataFrame, min_churns: int = 20):
        """First period of each booster: ``segments`` as asked, less any segment with fewer
        than ``min_churns`` churns in its training or calibration rows (it joins the one before,
        and the merge is noted in ``settings_``)."""
        starts = [0] + sorted({int(k) for k in self.segments if int(k) > 0})
        keep, merged = [0], []
        for i, lo in enumerate(starts[1:], 1):
            hi = starts[i + 1] if i + 1 < len(starts) else np.inf
            n = [int(r.loc[(r["k"] >= lo) & (r["k"] < hi), "churn"].sum()) for r in (fit_rows, cal_rows)]
            if min(n) >= min_churns:
                keep.append(lo)
            else:
                merged.append({"segment_start": lo, "fit_churns": n[0], "calibration_churns": n[1]})
        return keep, merged

    def _grow(self, Mf, yf, wf, Mc, yc, wc, k_cal):
        """One booster on training rows, early-stopped and calibrated on calibration rows
        (Platt scaling whose slope and intercept may change linearly with the month, see
        :func:`_platt_by_month`)."""
        # LightGBM sees internal names by position: a feature may be named anything
        names = [f"x{i}" for i in range(len(self.features_) + len(TIMING))]
        p = lgb_params(self.params, self.seed, self.threads)
        rounds = int(p.pop("n_estimators", MAX_ROUNDS))
        cat_idx = [self.features_.index(c) for c in self.categorical_]
        dtrain = lgb.Dataset(Mf, yf, weight=wf, feature_name=names, categorical_feature=cat_idx, free_raw_data=False)
        dvalid = lgb.Dataset(Mc, yc, weight=wc, reference=dtrain, feature_name=names, categorical_feature=cat_idx)
        booster = lgb.train(
            p,
            dtrain,
            num_boost_round=rounds,
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
        )
        best = int(booster.best_iteration or rounds)
        z = booster.predict(Mc, num_iteration=best, raw_score=True)
        cal = _platt_by_month(z, k_cal, yc, wc) if self.calibration == "sigmoid" else (1.0, 0.0, 0.0, 0.0)
        return booster, best, cal

    # --- design matrices ----------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "boosters_"):
            raise ChurnmlError("the time-to-churn model is not fitted: call fit() or load() first")

    def _encoded(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise ChurnmlError(
                f"feature table lacks {len(missing)} column(s) the model was trained on: "
                f"{missing[:5]}; rebuild features with the same churnml version"
            )
        return self.encoder_.transform(X[self.features_]).to_numpy(float)

    def _design(self, A: np.ndarray, X: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
        """Feature rows of ``A`` (encoded ``X``) for the period rows, with their timing inputs."""
        r = rows["row"].to_numpy()
        k = rows["k"].to_numpy()
        t = timing_inputs(
            np.minimum(k, self.max_period_),
            rows["start"].to_numpy(),
            X["days_to_renewal"].to_numpy(float)[r],
            X["term_length_days"].to_numpy(float)[r],
        )
        return np.column_stack([A[r]] + [t[c] for c in TIMING])

    def _period_grid(self, X: pd.DataFrame, window: np.ndarray):
        """Period rows covering each account's window ``[0, window)`` and each row's weight
        (the share of the period inside the window)."""
        w = np.asarray(window, float)
        ok = ~np.isnan(w)
        if (w[ok] > MAX_DAYS).any():
            raise ChurnmlError(f"a window of {w[ok].max():.0f} days is longer than the {MAX_DAYS} days modelled")
        edges = period_edges(w[ok].max() if ok.any() else 1.0)
        K = len(edges) - 1
        n = len(X)
        row = np.repeat(np.arange(n), K)
        k = np.tile(np.arange(K), n)
        start, end = edges[k], edges[k + 1]
        frac = np.clip((np.where(ok, w, 0.0)[row] - start) / (end - start), 0.0, 1.0)
        keep = frac > 0
        rows = pd.DataFrame({"row": row[keep], "k": k[keep], "start": start[keep]})
        return rows, frac[keep]

    def _segment_of(self, k) -> np.ndarray:
        """Which booster scores period ``k``."""
        return np.searchsorted(np.asarray(self.segment_starts_), np.minimum(k, self.max_period_), side="right") - 1

    def _eta(self, M: np.ndarray, k) -> np.ndarray:
        """Calibrated log-odds of the hazard of design rows ``M`` of periods ``k``."""
        seg = self._segment_of(k)
        out = np.empty(len(M))
        for i, (booster, best) in enumerate(zip(self.boosters_, self.best_iterations_)):
            m = seg == i
            if m.any():
                a, b = self._cal_at(i, np.asarray(k)[m])
                out[m] = a * booster.predict(M[m], num_iteration=best, raw_score=True) + b
        return out

    def _cal_at(self, i: int, k) -> tuple[np.ndarray, np.ndarray]:
        """Slope and intercept of booster ``i``'s calibration at periods ``k``."""
        a, b, c, d = self.calibrations_[i]
        k = np.minimum(np.asarray(k, float), self.max_period_)
        return a + c * k, b + d * k

    def _log_survival(self, X: pd.DataFrame, window) -> np.ndarray:
        A = self._encoded(X)
        rows, frac = self._period_grid(X, window)
        out = np.zeros(len(X))
        if len(rows):
            ls = -np.logaddexp(0.0, self._eta(self._design(A, X, rows), rows["k"].to_numpy()))
            out += np.bincount(rows["row"].to_numpy(), weights=frac * ls, minlength=len(X))
        return np.where(np.isnan(np.asarray(window, float)), np.nan, out)

    # --- prediction --------------------------------------------------------------------------
    def predict_hazards(self, X: pd.DataFrame, periods: int = 12) -> pd.DataFrame:
        """The calibrated hazard of each of the first ``periods`` periods (columns ``0..``)."""
        self._check_fitted()
        edges = period_edges(MAX_DAYS)
        if not 1 <= periods < len(edges):
            raise ChurnmlError(f"periods must be in 1..{len(edges) - 1}")
        rows, _ = self._period_grid(X, np.full(len(X), edges[periods]))
        ls = -np.logaddexp(0.0, self._eta(self._design(self._encoded(X), X, rows), rows["k"].to_numpy()))
        cum = np.concatenate([np.zeros((len(X), 1)), np.cumsum(ls.reshape(len(X), periods), axis=1)], axis=1)
        surv = 1.0 - self._probability(cum)
        h = 1.0 - surv[:, 1:] / surv[:, :-1]
        return pd.DataFrame(h, index=X.index)

    def predict_curve(self, X: pd.DataFrame, days=DEFAULT_DAYS) -> pd.DataFrame:
        """Probability of churning within each of ``days`` after the cutoff (columns
        ``churn_{d}d``), non-decreasing in ``d``. One model pass per period up to
        ``max(days)``. Beyond the months seen in training (``settings_['trained_days']``)
        the months-ahead effect is held at its last trained value."""
        self._check_fitted()
        days = sorted({int(d) for d in np.atleast_1d(days)})
        if not days or days[0] < 1 or days[-1] > MAX_DAYS:
            raise ChurnmlError(f"curve days must be in 1..{MAX_DAYS}, got {days}")
        A = self._encoded(X)
        rows, _ = self._period_grid(X, np.full(len(X), float(days[-1])))
        ls = -np.logaddexp(0.0, self._eta(self._design(A, X, rows), rows["k"].to_numpy()))
        edges = period_edges(days[-1])
        K = len(edges) - 1
        cum = np.zeros((len(X), K + 1))
        grid = np.zeros((len(X), K))
        grid[rows["row"].to_numpy(), rows["k"].to_numpy()] = ls
        cum[:, 1:] = np.cumsum(grid, axis=1)
        out = {}
        for d in days:
            k = min(int(np.searchsorted(edges, d, side="right")) - 1, K - 1)
            frac = (d - edges[k]) / (edges[k + 1] - edges[k])
            out[f"churn_{d}d"] = self._probability(cum[:, k] + frac * grid[:, k])
        return pd.DataFrame(out, index=X.index)

    def next_renewal_window(self, X: pd.DataFrame) -> np.ndarray:
        """Days from the cutoff to the next renewal + grace (NaN without a known renewal, or
        for a renewal more than :data:`MAX_DAYS` away)."""
        return renewal_window(X["days_to_renewal"], X["term_length_days"], self.grace_days)

    def predict_next_renewal(self, X: pd.DataFrame) -> pd.Series:
        """Probability that the account does not renew at its next renewal: it churns
        before the renewal date + ``grace_days`` (see :func:`next_renewal_days` for a
        renewal date already past). NaN where no renewal date is known (or it is more
        than :data:`MAX_DAYS` away). Beyond the months seen in training the months-ahead
        effect is held at its last trained value; the renewal inputs still place the
        renewal in its month."""
        self._check_fitted()
        ls = self._log_survival(X, self.next_renewal_window(X))
        return pd.Series(self._probability(ls), index=X.index, name="churn_next_renewal")

    def median_month(self, X: pd.DataFrame) -> pd.Series:
        """The month (1..12, period :data:`PERIOD_EDGES`) in which the churn probability
        reaches 50%: the median time to churn. NaN when it stays below 50% over the
        modelled ``horizon_days``."""
        self._check_fitted()
        K = len(period_edges(self.horizon_days)) - 1
        h = self.predict_hazards(X, K).to_numpy()
        p = 1.0 - np.cumprod(1.0 - h, axis=1)
        reached = p >= 0.5
        m = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1.0, np.nan)
        return pd.Series(m, index=X.index, name="median_month")

    def risk_window(self, X: pd.DataFrame) -> np.ndarray:
        """The window of the probability a CSM can still act on: to the next renewal (+ grace) where a
        renewal date is known and the term is longer than a month, else the modelled year
        (``horizon_days``): :func:`risk_window_days`."""
        return risk_window_days(X, self.grace_days, self.horizon_days)

    def predict_risk(self, X: pd.DataFrame) -> pd.Series:
        """Probability of churning within :meth:`risk_window`: before the next renewal where it is
        known (terms longer than a month), else within the modelled year."""
        self._check_fitted()
        return pd.Series(
            self._probability(self._log_survival(X, self.risk_window(X))), index=X.index, name="churn_risk"
        )

    # --- explanations --------------------------------------------------------------------------
    def _window_of(self, X: pd.DataFrame, which) -> tuple[np.ndarray, float, str]:
        if isinstance(which, str) and which == "next_renewal":
            return self.next_renewal_window(X), float(self.horizon_days), "next_renewal"
        if isinstance(which, str) and which == "risk":
            return self.risk_window(X), float(self.horizon_days), "churn_risk"
        d = int(str(which).removesuffix("d")) if isinstance(which, str) else int(which)
        if not 1 <= d <= MAX_DAYS:
            raise ChurnmlError(f"explain: which must be 'next_renewal' or a number of days in 1..{MAX_DAYS}")
        return np.full(len(X), float(d)), float(d), f"churn_{d}d"

    def explain(self, X: pd.DataFrame, which="365d", contributions=None) -> Explanation:
        """Per-account contributions, in probability points, to one probability:
        ``which`` is ``"next_renewal"``, ``"risk"`` (:meth:`predict_risk`: next renewal where known,
        else the modelled year) or a window in days (``365``, ``"365d"``).

        Each period's TreeSHAP log-odds contributions ``phi`` are mapped to its
        ``log(1 - h)`` (times ``(log(1-h) - log(1-h0)) / (z - z0)``, ``z0`` the model's
        expected log-odds), summed over the window's periods (a partial period by its
        share), and rescaled so they add up to ``p - base``. ``base`` is the probability
        at the expected hazard over the reference window (the window's days, or
        ``horizon_days`` for next renewal); ``timing`` holds the synthetic period inputs
        and ``window`` (the account's window against the reference). NaN rows where the
        probability is NaN (no renewal known). Cost: one TreeSHAP pass per period.

        ``contributions(booster, rows, num_iteration) -> array`` computes exact TreeSHAP
        values in log-odds (one column per input, the expected value last). The default is
        :class:`~churnml.modeling.treeshap.TabulatedTreeShap` (the same numbers as LightGBM's
        ``pred_contrib`` at about the cost of a prediction; its tables are built once per
        booster and kept with the model); pass :func:`lightgbm_contributions` for LightGBM's own.
        """
        contributions = contributions or self._tabulated_contributions
        self._check_fitted()
        window, ref, name = self._window_of(X, which)
        n, F = len(X), len(self.features_)
        A = self._encoded(X)
        rows, frac = self._period_grid(X, window)
        r, k = rows["row"].to_numpy(), rows["k"].to_numpy()
        seg = self._segment_of(k)
        # log(1 - h) at each booster's expected log-odds (TreeSHAP's base value)
        z0_seg = np.array([self._expected_value(i) for i in range(len(self.boosters_))])

        def base_log_survival(kk):  # log(1 - h) at each period's expected log-odds
            out = np.empty(len(kk))
            sg = self._segment_of(kk)
            for i in range(len(self.boosters_)):
                m = sg == i
                a_, b_ = self._cal_at(i, kk[m])
                out[m] = -np.logaddexp(0.0, a_ * z0_seg[i] + b_)
            return out

        l0 = base_log_survival(k)
        contrib = np.zeros((n, F + len(TIMING)))
        log_s = np.zeros(n)
        if len(rows):
            M = self._design(A, X, rows)
            for i, (booster, best) in enumerate(zip(self.boosters_, self.best_iterations_)):
                m = seg == i
                if not m.any():
                    continue
                phi = contributions(booster, M[m], best)
                a, b = self._cal_at(i, k[m])
                z, z0 = phi.sum(axis=1), phi[:, -1]
                lk = -np.logaddexp(0.0, a * z + b)
                dz = z - z0
                big = np.abs(dz) > 1e-9
                slope = -a / (1.0 + np.exp(-(a * z + b)))  # d log(1-h) / dz, used where z == z0
                ratio = np.where(big, (lk - l0[m]) / np.where(big, dz, 1.0), slope)
                w = ratio * frac[m]
                log_s += np.bincount(r[m], weights=lk * frac[m], minlength=n)
                for j in range(F + len(TIMING)):
                    contrib[:, j] += np.bincount(r[m], weights=phi[:, j] * w, minlength=n)
        ref_rows, ref_frac = self._period_grid(X.iloc[:1], np.array([ref]))
        L_ref = float((ref_frac * base_log_survival(ref_rows["k"].to_numpy())).sum())
        L0 = np.bincount(r, weights=frac * l0, minlength=n) if len(rows) else np.zeros(n)
        win = np.where(window == ref, 0.0, L0 - L_ref)  # exactly 0 for a fixed window
        L = contrib.sum(axis=1) + win  # log S - log S_base (up to rounding)
        base = float(self._probability(L_ref))
        p = self._probability(log_s)
        big = np.abs(L) > 1e-12
        eps = 1e-7  # dp/dL where L == 0 (the account sits at the base)
        slope = (self._probability(log_s + eps) - self._probability(log_s - eps)) / (2 * eps)
        scale = np.where(big, (p - base) / np.where(big, L, 1.0), slope)
        nan = np.isnan(window)
        scale[nan] = np.nan
        p[nan] = np.nan
        pts = contrib * scale[:, None]
        points = pd.DataFrame(pts[:, :F], index=X.index, columns=self.features_)
        timing = pd.DataFrame(pts[:, F:], index=X.index, columns=list(TIMING))
        timing[WINDOW] = win * scale
        return Explanation(points, timing, base, pd.Series(p, index=X.index, name=name), name)

    def _tabulated_contributions(self, booster, M: np.ndarray, num_iteration: int) -> np.ndarray:
        """Exact TreeSHAP by per-tree tables, built on first use for each booster."""
        cache = self.__dict__.setdefault("_treeshap_", {})
        key = (id(booster), int(num_iteration))
        if key not in cache:
            cache[key] = TabulatedTreeShap.from_booster(booster, num_iteration=num_iteration, n_threads=self.threads)
        return cache[key].contributions(M)

    def _expected_value(self, i: int) -> float:
        """Booster ``i``'s expected raw score (TreeSHAP's base value: the same for every row)."""
        zero = np.zeros((1, len(self.features_) + len(TIMING)))
        return float(self.boosters_[i].predict(zero, num_iteration=self.best_iterations_[i], pred_contrib=True)[0, -1])

    # --- persistence ----------------------------------------------------------------------------
    # --- persistence (the I/O layer writes the files: churnml.io.artifacts) ---------------------
    def to_state(self) -> tuple[dict, dict[str, str]]:
        """The model in open formats: a JSON-able dict and one LightGBM text model per booster."""
        self._check_fitted()
        texts = {
            f"hazard_{i}": booster.model_to_string(num_iteration=best)
            for i, (booster, best) in enumerate(zip(self.boosters_, self.best_iterations_))
        }
        meta = {
            "kind": "churnml.survival",
            "version": 1,
            "features": self.features_,
            "categorical": self.categorical_,
            "levels": self.encoder_.levels_,
            "timing": list(TIMING),
            "period_edges": list(PERIOD_EDGES),
            "segment_starts": list(self.segment_starts_),
            "calibrations": [list(c) for c in self.calibrations_],
            "max_period": self.max_period_,
            "best_iterations": list(self.best_iterations_),
            "frailty": self.frailty_,
            "init": {**self.get_init(), "segments": list(self.segments)},
            "settings": self.settings_,
        }
        return json.loads(json.dumps(meta, default=_json_default)), texts

    @classmethod
    def from_state(cls, meta: dict, texts: dict[str, str]) -> SurvivalModel:
        """The model back from :meth:`to_state`."""
        if meta.get("kind") != "churnml.survival" or tuple(meta.get("period_edges", ())) != PERIOD_EDGES:
            raise ChurnmlError("not a time-to-churn model this churnml can read (survival state)")
        init = dict(meta["init"], segments=tuple(meta["init"]["segments"]))
        model = cls(**init)
        model.segment_starts_ = [int(k) for k in meta["segment_starts"]]
        model.boosters_ = [lgb.Booster(model_str=texts[f"hazard_{i}"]) for i in range(len(model.segment_starts_))]
        model.best_iterations_ = [int(b.current_iteration()) for b in model.boosters_]
        model.features_, model.categorical_ = meta["features"], meta["categorical"]
        model.encoder_ = CategoryCodes(tuple(model.categorical_))
        model.encoder_.levels_ = meta["levels"]
        model.calibrations_ = [tuple(c) for c in meta["calibrations"]]
        model.max_period_ = int(meta["max_period"])
        model.frailty_ = float(meta["frailty"])
        model.settings_ = meta["settings"]
        return model


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, pd.Timestamp):
        return o.strftime("%Y-%m-%d")
    raise TypeError(f"not JSON serialisable: {type(o)}")


def lightgbm_contributions(booster, M, num_iteration):
    """LightGBM's own TreeSHAP (``pred_contrib``), for :meth:`SurvivalModel.explain`."""
    return booster.predict(M, num_iteration=num_iteration, pred_contrib=True)


def _platt_by_month(z: np.ndarray, k: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float]:
    """Calibration of a hazard's log-odds ``z`` whose slope and intercept change linearly with
    the period ``k``: ``h = sigmoid((a + c k) z + b + d k)`` (weighted logistic regression on
    ``z, k z, k``). Features lose strength with the months ahead, so far periods usually need a
    flatter slope than near ones. The slope must stay positive over the periods seen (a
    calibration keeps the order of hazards); otherwise plain Platt scaling, else the identity."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0, 0.0, 0.0
    k = np.asarray(k, float)
    if len(np.unique(k)) > 1:
        q = k / 12.0  # in years: a well-conditioned fit
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(np.column_stack([z, q * z, q]), y, sample_weight=w)
        (a, c, d), b = lr.coef_[0].tolist(), float(lr.intercept_[0])
        c, d = c / 12.0, d / 12.0
        if min(a + c * k.min(), a + c * k.max()) > 0:
            return a, b, c, d
    a, b = _platt(z, y, w)
    return a, b, 0.0, 0.0


def _platt(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Platt scaling of log-odds ``z`` (weighted): ``h = sigmoid(a z + b)``; identity when
    the fitted slope is not positive (a calibration must keep the order of hazards)."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    lr = LogisticRegression(C=1e6).fit(z.reshape(-1, 1), y, sample_weight=w)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 0 else (1.0, 0.0)
