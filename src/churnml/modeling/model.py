"""The churnml model: LightGBM for churn and expansion, calibrated, with its encoder.

One :class:`ChurnmlModel` holds, per target, a LightGBM booster and a calibrator,
plus the categorical codes and the feature list it was trained on. Scoring refuses
a feature table that lacks a trained column. It is kept in open formats
(LightGBM text models and JSON, see :meth:`ChurnmlModel.to_state`), so it can be read
without pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError
from churnml.modeling.calibration import Calibrator, select_calibrator
from churnml.modeling.encoding import CategoryCodes

DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    # compact trees: TreeSHAP cost grows with trees x leaves x depth^2, and depth 3 cost no
    # accuracy in the backtest (explanations must stay within ~10x the cost of prediction)
    "num_leaves": 7,
    "max_depth": 3,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "min_data_per_group": 200,  # categorical splits need enough rows per level
    "cat_smooth": 20.0,
}
CHURN_DAYS = 90  # churn_probability: the 90-day point of the curve (the contract's default horizon)
CURVE_DAYS = (30, 90, 180, 365)
MAX_ROUNDS = 1000
EARLY_STOPPING = 50


def lgb_params(params: dict | None, seed: int, threads: int = 2) -> dict:
    """Full LightGBM parameters: defaults, then ``params``; deterministic for a seed."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    p.update({"seed": seed, "num_threads": threads, "verbose": -1, "deterministic": True,
              "force_row_wise": True, "metric": "binary_logloss"})
    return p


@dataclass
class TargetModel:
    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int
    _explainer: object = field(default=None, repr=False, compare=False)

    def explainer(self):
        """Exact TreeSHAP tabulated per tree (:mod:`churnml.modeling.treeshap`), built on first use."""
        if self._explainer is None:
            from churnml.modeling.treeshap import TabulatedTreeShap

            self._explainer = TabulatedTreeShap.from_booster(self.booster, num_iteration=self.best_iteration)
        return self._explainer


@dataclass
class ChurnmlModel:
    """Calibrated LightGBM models for churn and expansion over one feature set."""

    features: list[str]
    categorical: list[str]
    encoder: CategoryCodes
    targets: dict[str, TargetModel] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    survival: object = None  # the time-to-churn model (churnml.modeling.survival.SurvivalModel), when trained

    # --- training -------------------------------------------------------------------
    @classmethod
    def fit(cls, X_fit, y_fit: dict, X_cal, y_cal: dict, *, categorical, params=None, seed=0,
            calibration="auto", threads=2, settings=None) -> "ChurnmlModel":
        """Fit one booster per target on ``X_fit``; early-stop and calibrate on the later ``X_cal``.

        ``X_cal`` must be indexed by (account_id, cutoff) when ``calibration="auto"``: the
        method is chosen by leave-one-cutoff-out Brier inside that slice.
        """
        features = list(X_fit.columns)
        enc = CategoryCodes(tuple(categorical)).fit(X_fit)
        A, B = enc.transform(X_fit), enc.transform(X_cal)
        model = cls(features, list(categorical), enc, settings=dict(settings or {}))
        for target, y in y_fit.items():
            groups = X_cal.index.get_level_values("cutoff") if calibration == "auto" else None
            model.targets[target] = fit_target(A, np.asarray(y, int), B, np.asarray(y_cal[target], int),
                                               categorical=categorical, params=params, seed=seed,
                                               calibration=calibration, threads=threads, groups=groups)
        return model

    # --- scoring --------------------------------------------------------------------
    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """Check the feature set and encode categoricals (scoring refuses a mismatch)."""
        missing = [c for c in self.features if c not in X.columns]
        if missing:
            raise ChurnmlError(f"feature table lacks {len(missing)} column(s) the model was trained on: "
                               f"{missing[:5]}; rebuild features with the same churnml version")
        X = X[self.features]
        return X if _is_encoded(X, self.categorical) else self.encoder.transform(X)

    def predict_raw(self, X: pd.DataFrame, target: str) -> np.ndarray:
        m = self.targets[target]
        return m.booster.predict(self.prepare(X), num_iteration=m.best_iteration)

    def predict_target(self, X: pd.DataFrame, target: str) -> np.ndarray:
        """A target's calibrated probability; ``churn`` comes from the time-to-churn model's 90-day
        point of the curve when the bundle has one and no churn classifier."""
        if target == "churn" and target not in self.targets and self.survival is not None:
            return self.survival.predict_curve(self._decoded(X), (CHURN_DAYS,))[f"churn_{CHURN_DAYS}d"].to_numpy()
        return self.targets[target].calibrator.transform(self.predict_raw(X, target))

    def _decoded(self, X: pd.DataFrame) -> pd.DataFrame:
        if not _is_encoded(X[self.features], self.categorical):
            return X
        raise ChurnmlError("the time-to-churn model needs the feature table as built, not encoded")

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """Calibrated probabilities: ``churn_probability`` (90 days), with a time-to-churn model also
        ``churn_probability_30d`` / ``_180d`` / ``_365d``, ``churn_probability_next_renewal`` and
        ``risk_probability`` (the one that sets the tier: :mod:`churnml.scoring.risk`), and
        ``expansion_probability`` when expansion is modelled."""
        out = {}
        if self.survival is not None:
            curve = self.survival.predict_curve(X, CURVE_DAYS)
            out["churn_probability"] = curve[f"churn_{CHURN_DAYS}d"].to_numpy()
            for d in CURVE_DAYS:
                if d != CHURN_DAYS:
                    out[f"churn_probability_{d}d"] = curve[f"churn_{d}d"].to_numpy()
            out["churn_probability_next_renewal"] = self.survival.predict_next_renewal(X).to_numpy()
            out["risk_probability"] = self.survival.predict_risk(X).to_numpy()
        Xp = self.prepare(X)
        for t, m in self.targets.items():
            if t == "churn" and self.survival is not None:
                continue
            raw = m.booster.predict(Xp, num_iteration=m.best_iteration)
            out[f"{t}_probability"] = m.calibrator.transform(raw)
        return pd.DataFrame(out, index=X.index)

    # --- persistence (the I/O layer writes and reads the files: churnml.io.artifacts) ----------
    def to_state(self) -> tuple[dict, dict[str, str]]:
        """The model as open formats: a JSON-able dict and one LightGBM text model per target."""
        meta = {"features": self.features, "categorical": self.categorical,
                "levels": self.encoder.levels_, "settings": self.settings, "targets": {}}
        texts = {}
        for t, m in self.targets.items():
            texts[t] = m.booster.model_to_string(num_iteration=m.best_iteration)
            meta["targets"][t] = {"best_iteration": m.best_iteration, "calibration": _calibrator_state(m.calibrator)}
        if self.survival is not None:
            s_meta, s_texts = self.survival.to_state()
            meta["survival"] = s_meta
            texts.update({f"survival.{k}": v for k, v in s_texts.items()})
        return json.loads(json.dumps(meta, default=_json_default)), texts

    @classmethod
    def from_state(cls, meta: dict, texts: dict[str, str]) -> "ChurnmlModel":
        enc = CategoryCodes(tuple(meta["categorical"]))
        enc.levels_ = meta["levels"]
        model = cls(meta["features"], meta["categorical"], enc, settings=meta["settings"])
        for t, tm in meta["targets"].items():
            booster = lgb.Booster(model_str=texts[t])
            model.targets[t] = TargetModel(booster, _calibrator_from(tm["calibration"]), booster.current_iteration())
        if meta.get("survival"):
            from churnml.modeling.survival import SurvivalModel

            model.survival = SurvivalModel.from_state(meta["survival"], {k.removeprefix("survival."): v for k, v in
                                                                        texts.items() if k.startswith("survival.")})
        return model


def fit_target(A, y, B, y_b, *, categorical, params, seed, calibration, threads, groups=None) -> TargetModel:
    """One booster, early-stopped on the later slice ``B``, then calibrated on it.

    ``calibration``: ``auto`` (choose by leave-one-cutoff-out Brier over ``groups``),
    ``sigmoid``, ``isotonic`` or ``none``.
    """
    p = lgb_params(params, seed, threads)
    rounds = int(p.pop("n_estimators", MAX_ROUNDS))
    dtrain = lgb.Dataset(A, y, categorical_feature=list(categorical), free_raw_data=False)
    dvalid = lgb.Dataset(B, y_b, reference=dtrain, categorical_feature=list(categorical))
    booster = lgb.train(p, dtrain, num_boost_round=rounds, valid_sets=[dvalid],
                        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)])
    best = booster.best_iteration or rounds
    raw = booster.predict(B, num_iteration=best)
    if len(np.unique(y_b)) < 2:
        cal = Calibrator("none").fit(raw, y_b)
    elif calibration == "auto":
        cal, _ = select_calibrator(raw, y_b, groups)
    else:
        cal = Calibrator(calibration).fit(raw, y_b)
    return TargetModel(booster, cal, best)


def _is_encoded(X, categorical) -> bool:
    return all(pd.api.types.is_float_dtype(X[c]) for c in categorical)


def _calibrator_state(c: Calibrator) -> dict:
    state = {"method": c.method}
    if c.method == "sigmoid":
        state.update(coef=c.coef_, intercept=c.intercept_)
    elif c.method == "isotonic":
        state.update(x=c.iso_.X_thresholds_.tolist(), y=c.iso_.y_thresholds_.tolist())
    return state


def _calibrator_from(state: dict) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    c = Calibrator(state["method"])
    if c.method == "sigmoid":
        c.coef_, c.intercept_ = state["coef"], state["intercept"]
    elif c.method == "isotonic":
        c.iso_ = IsotonicRegression(out_of_bounds="clip").fit(state["x"], state["y"])
    c.fitted_ = True
    return c


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (pd.Timestamp,)):
        return o.strftime("%Y-%m-%d")
    raise TypeError(f"not JSON serialisable: {type(o)}")
