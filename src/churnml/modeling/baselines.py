"""Baselines reported beside LightGBM in every backtest.

* :class:`HealthScoreBaseline`: a hand-weighted customer health score of the kind CS
  platforms ship: each component is turned into a 0..100 percentile (fitted on
  training rows, higher = healthier), missing components count as neutral (50),
  and the weighted sum is the score. A one-variable logistic map turns the score
  into a churn probability so Brier and log-loss can be compared too.
* :func:`logistic_baseline`: a regularised logistic regression on all indicators
  (median-imputed with missing flags, standardised; categoricals one-hot).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

# component -> (weight, +1 if higher means healthier else -1): the usual shape of a CS health score
DEFAULT_HEALTH_WEIGHTS = {
    "active_users_per_seat_30d": (0.30, +1),
    "active_users_trend_30d": (0.10, +1),
    "nps_mean_180d": (0.20, +1),
    "ces_mean_90d": (0.10, +1),
    "tickets_per_seat_90d": (0.10, -1),
    "open_high_urgent_tickets": (0.05, -1),
    "milestones_reached_share": (0.15, +1),
}


class HealthScoreBaseline(ClassifierMixin, BaseEstimator):
    """Weighted percentile health score (0..100); churn probability from a logistic map."""

    def __init__(self, weights=None):
        self.weights = weights

    def _weights(self, columns):
        w = self.weights or DEFAULT_HEALTH_WEIGHTS
        return {c: v for c, v in w.items() if c in columns}

    def fit(self, X: pd.DataFrame, y):
        self.components_ = self._weights(X.columns)
        if not self.components_:
            raise ValueError("none of the health-score components is in the feature table")
        self.reference_ = {c: np.sort(X[c].dropna().to_numpy(float)) for c in self.components_}
        s = self.score(X)
        self.map_ = LogisticRegression().fit(s.reshape(-1, 1), np.asarray(y, int))
        self.classes_ = self.map_.classes_
        return self

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Health 0..100 (higher = healthier)."""
        total = np.zeros(len(X))
        wsum = 0.0
        for c, (w, sign) in self.components_.items():
            ref = self.reference_[c]
            v = X[c].to_numpy(float)
            pct = np.full(len(X), 50.0)
            ok = ~np.isnan(v)
            if len(ref):
                pct[ok] = 100.0 * np.searchsorted(ref, v[ok], side="right") / len(ref)
            total += w * (pct if sign > 0 else 100.0 - pct)
            wsum += w
        return total / wsum

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "map_")
        return self.map_.predict_proba(self.score(X).reshape(-1, 1))

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def logistic_baseline(numeric, categorical, seed: int = 0):
    """Regularised logistic regression on every indicator."""
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
                ),
                list(numeric),
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"), OneHotEncoder(handle_unknown="ignore")
                ),
                list(categorical),
            ),
        ]
    )
    return make_pipeline(pre, LogisticRegression(C=0.1, max_iter=3000, random_state=seed))


def as_object_categories(X: pd.DataFrame, categorical) -> pd.DataFrame:
    """Categoricals as plain object strings (scikit-learn's imputers dislike pandas' NA)."""
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype("object").where(X[c].notna(), None)
    return X
