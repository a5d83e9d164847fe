"""Probability calibration fitted on a later time slice than the training data.

``sigmoid`` (Platt scaling on the log-odds, two parameters) is the default: stable
on the few hundred events of a calibration slice. ``isotonic`` is available for
large bases.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

_EPS = 1e-6


def _logit(p):
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class Calibrator(BaseEstimator):
    """Maps raw model probabilities to calibrated ones."""

    def __init__(self, method: str = "sigmoid"):
        self.method = method

    def fit(self, p_raw, y):
        if self.method not in ("sigmoid", "isotonic", "none"):
            raise ValueError(f"calibration method must be sigmoid, isotonic or none, got {self.method!r}")
        y = np.asarray(y, float)
        if self.method == "sigmoid":
            lr = LogisticRegression(C=1e6)
            lr.fit(_logit(p_raw).reshape(-1, 1), y)
            self.coef_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        elif self.method == "isotonic":
            self.iso_ = IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip").fit(p_raw, y)
        self.fitted_ = True
        return self

    def transform(self, p_raw):
        check_is_fitted(self, "fitted_")
        if self.method == "sigmoid":
            return 1 / (1 + np.exp(-(self.coef_ * _logit(p_raw) + self.intercept_)))
        if self.method == "isotonic":
            return self.iso_.predict(np.asarray(p_raw, float))
        return np.asarray(p_raw, float)


def select_calibrator(p_raw, y, groups, candidates=("none", "sigmoid"), min_events_isotonic=300, z=2.0):
    """Choose the calibration by leave-one-cutoff-out Brier inside the calibration slice.

    ``groups`` holds each row's cutoff. Each method is fitted on all cutoffs but one
    and scored on the one left out. A method replaces the identity (``none``) only
    when it lowers the squared error clearly: the mean paired per-row difference
    must be below ``-z`` standard errors (a slice of a few hundred events is noisy,
    and a calibration that chases noise makes probabilities worse). Among clear
    winners the lowest Brier wins. The winner is refitted on the whole slice.
    Returns ``(calibrator, {method: out-of-sample brier})``.
    """
    p_raw, y, groups = np.asarray(p_raw, float), np.asarray(y, float), np.asarray(groups)
    methods = [m for m in candidates if m != "isotonic" or y.sum() >= min_events_isotonic]
    uniq = np.unique(groups)
    if len(uniq) < 2 or len(np.unique(y)) < 2:
        return Calibrator("none").fit(p_raw, y), {}
    base_err = (np.clip(p_raw, 0, 1) - y) ** 2
    scores, best, best_score = {"none": float(base_err.mean())}, "none", float(base_err.mean())
    for m in methods:
        if m == "none":
            continue
        pred = np.empty_like(p_raw)
        for g in uniq:
            tr, te = groups != g, groups == g
            if len(np.unique(y[tr])) < 2:
                break
            pred[te] = Calibrator(m).fit(p_raw[tr], y[tr]).transform(p_raw[te])
        else:
            err = (pred - y) ** 2
            scores[m] = float(err.mean())
            d = err - base_err
            clear = d.mean() < -z * d.std(ddof=1) / np.sqrt(len(d))
            if clear and scores[m] < best_score:
                best, best_score = m, scores[m]
    return Calibrator(best).fit(p_raw, y), scores
