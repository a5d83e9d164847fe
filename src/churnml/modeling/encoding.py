"""Integer codes for categorical columns, fitted on training rows and saved with the model.

LightGBM reads categoricals natively from integer codes; pandas ``category`` dtypes
break MLflow pyfunc scoring, so codes are plain floats (missing or unseen -> NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


class CategoryCodes(TransformerMixin, BaseEstimator):
    """Map each categorical column's levels (seen in ``fit``) to 0..k-1."""

    def __init__(self, columns=()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"categorical columns not in the data: {missing}")
        self.levels_ = {c: sorted(X[c].dropna().astype(str).unique().tolist()) for c in self.columns}
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "levels_")
        X = X.copy()
        for c, levels in self.levels_.items():
            col = X[c]
            codes = pd.Index(levels, dtype=object).get_indexer(col.astype(str).astype(object)).astype("float64")
            codes[(codes < 0) | col.isna().to_numpy()] = np.nan
            X[c] = codes
        return X
