"""What a statistician asks of a churn curve, from scikit-survival: concordance, time-dependent AUC, the
integrated Brier score against Kaplan-Meier, and whether the curve's level matches what happened.

Each (account, cutoff) scored by the time-to-churn backtest is one subject: its time is the days from the
cutoff to its churn (an event) or to the end of what is observed of it (censored: the data's last day, or a
``completed`` end, which is no churn and no "stayed" after it). Churn "within ``d`` days" is churn on a day
``< d`` (:func:`churnml.modeling.events.churned_within`); an event on day ``k`` is placed at ``k + 0.5`` so
that ``T <= d`` (scikit-survival's cases) means the same. The censoring distribution of the inverse
probability weights is the Kaplan-Meier of the same rows (the administrative end of the data and completed
terms, which do not depend on the account's risk).

* **Uno's concordance** (``concordance_index_ipcw``): the share of comparable pairs the curve orders right,
  up to ``tau`` (365 days, or the longest follow-up the rows allow), ranking by the probability of churning
  within ``tau``'s horizon;
* **cumulative/dynamic AUC** at 3, 6 and 12 months (``cumulative_dynamic_auc``): who churns by ``d`` against
  who is still there at ``d``; n/a where the rows' follow-up does not reach ``d``;
* **integrated Brier score** (``integrated_brier_score``) of the curve over its months up to ``tau``, beside
  that of the Kaplan-Meier curve of the same rows (the best curve that ignores the account): the skill
  ``1 - IBS / IBS_KM`` is above 0 when the curve beats it;
* **calibration of the curve**: per horizon, the mean predicted probability of churning within ``d`` days
  against the Kaplan-Meier estimate of it on the same rows (which counts the censored rows honestly).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

SURVIVAL_HORIZONS = (90, 180, 365)  # 3, 6 and 12 months
CURVE_DAYS = (30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 365)  # the curve's months (the IBS grid)
MIN_ROWS = 20


def survival_outcomes(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(event, time) per row of ``events`` (:func:`~churnml.modeling.events.churn_events`): churned, and
    the days to the churn (``+ 0.5``) or to the censoring (the observed days, or a completed end ``+ 0.5``).
    Rows with no observed future get time 0 (callers leave them out)."""
    churn = events["churn_days"].to_numpy(float)
    done = events["completed_days"].to_numpy(float)
    seen = events["observed_days"].to_numpy(float)
    event = ~np.isnan(churn)
    time = np.where(event, churn + 0.5, np.where(~np.isnan(done), np.minimum(done + 0.5, seen), seen))
    return event, np.clip(time, 0.0, None)


def _nan_row(n: int, churns: int) -> dict[str, float]:
    out: dict[str, float] = {"n": float(n), "churns": float(churns), "follow_up_days": np.nan, "tau_days": np.nan}
    for k in ("uno_c", "ibs", "ibs_km", "ibs_skill", "ibs_to_days"):
        out[k] = np.nan
    for d in SURVIVAL_HORIZONS:
        out[f"auc_{d}d"] = out[f"mean_predicted_{d}d"] = out[f"km_observed_{d}d"] = np.nan
    return out


def survival_scores(curves: pd.DataFrame, events: pd.DataFrame, horizons=SURVIVAL_HORIZONS) -> dict[str, float]:
    """The figures of the module docstring for ``curves`` (columns ``churn_<d>d`` over :data:`CURVE_DAYS`,
    indexed like ``events``). A figure the rows cannot give (too short a follow-up, a single class) is NaN."""
    from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score
    from sksurv.nonparametric import kaplan_meier_estimator
    from sksurv.util import Surv

    ev = events.reindex(curves.index)
    known = ev["observed_days"].notna().to_numpy()
    event, time = survival_outcomes(ev[known].astype(float))
    C = curves[known]
    ok = time > 0
    event, time, C = event[ok], time[ok], C[ok]
    out = _nan_row(len(time), int(event.sum()))
    if len(time) < MIN_ROWS or not event.any():
        return out
    y = Surv.from_arrays(event=event, time=time)
    longest = float(time.max())
    out["follow_up_days"] = longest
    # the censoring weights need G(t) > 0: stay below the last observed time (where G may reach 0)
    days = [d for d in CURVE_DAYS if f"churn_{d}d" in C and d < longest and d > time.min()]
    if not days:
        return out
    tau = float(min(365, days[-1]))
    out["tau_days"] = tau
    rank = C[f"churn_{days[-1]}d"].to_numpy(float)
    with contextlib.suppress(ValueError):
        out["uno_c"] = float(concordance_index_ipcw(y, y, rank, tau=tau)[0])
    for d in horizons:
        col = f"churn_{d}d"
        if col not in C:
            continue
        p = C[col].to_numpy(float)
        if d < longest:  # the level and the AUC where the follow-up reaches d (the fold means compare like rows)
            out[f"mean_predicted_{d}d"] = float(p.mean())
            t_km, s_km = kaplan_meier_estimator(event, time)
            out[f"km_observed_{d}d"] = float(1.0 - _step(t_km, s_km, [d])[0])
            try:
                auc, _ = cumulative_dynamic_auc(y, y, p, [float(d)])
                out[f"auc_{d}d"] = float(auc[0])
            except ValueError:
                pass
    if len(days) >= 2:
        grid = np.asarray(days, float)
        S = 1.0 - C[[f"churn_{d}d" for d in days]].to_numpy(float)
        t_km, s_km = kaplan_meier_estimator(event, time)
        S_km = np.tile(_step(t_km, s_km, grid), (len(time), 1))
        try:
            ibs = float(integrated_brier_score(y, y, S, grid))
            ibs_km = float(integrated_brier_score(y, y, S_km, grid))
        except ValueError:
            return out
        out.update(
            {
                "ibs": ibs,
                "ibs_km": ibs_km,
                "ibs_skill": 1.0 - ibs / ibs_km if ibs_km > 0 else np.nan,
                "ibs_to_days": float(grid[-1]),
            }
        )
    return out


def _step(t: np.ndarray, s: np.ndarray, at) -> np.ndarray:
    """A right-continuous step function (Kaplan-Meier ``s`` at times ``t``) read at ``at``."""
    i = np.searchsorted(t, np.asarray(at, float), side="right") - 1
    return np.where(i >= 0, s[np.clip(i, 0, len(s) - 1)], 1.0)


def survival_table(curves: pd.DataFrame, events: pd.DataFrame, fold_of_row: pd.Series) -> pd.DataFrame:
    """:func:`survival_scores` per fold (``fold_of_row``: the fold whose test cutoffs a row belongs to,
    indexed like ``curves``; rows without one are left out), then over all folds pooled; plus the mean
    and standard deviation over the folds of each figure (the spread over time). Column ``fold``: the
    fold's number, ``all folds``, ``fold mean``, ``fold sd``."""
    f = fold_of_row.reindex(curves.index)
    rows = []
    for k in sorted(f.dropna().unique()):
        m = (f == k).to_numpy()
        rows.append({"fold": str(int(k)), **survival_scores(curves[m], events)})
    if not rows:
        return pd.DataFrame()
    per = pd.DataFrame(rows)
    rows.append({"fold": "all folds", **survival_scores(curves[f.notna().to_numpy()], events)})
    num = per.drop(columns="fold")
    if len(per) > 1:
        rows.append({"fold": "fold mean", **num.mean(skipna=True).to_dict()})
        rows.append({"fold": "fold sd", **num.std(ddof=1, skipna=True).to_dict()})
    return pd.DataFrame(rows)
