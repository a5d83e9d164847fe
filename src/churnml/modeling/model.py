"""The churnml model: LightGBM for churn and expansion, calibrated, with its encoder and its card.

One :class:`ChurnmlModel` holds, per target, a LightGBM booster and a calibrator,
the time-to-churn model (:mod:`churnml.modeling.survival`) when there is one, the
categorical codes and the feature list it was trained on, and a :class:`ModelCard`
(what it answers, on what it was trained). :meth:`ChurnmlModel.predict_proba` is the
one path to its probabilities, for serving, promotion and scoring alike. Scoring refuses
a feature table that lacks a trained column. It is kept in open formats
(LightGBM text models and JSON, see :meth:`ChurnmlModel.to_state`), so it can be read
without pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from churnml.errors import ChurnmlError
from churnml.modeling.calibration import Calibrator, select_calibrator
from churnml.modeling.encoding import CategoryCodes
from churnml.modeling.events import next_renewal_days
from churnml.modeling.params import EARLY_STOPPING, MAX_ROUNDS, lgb_params
from churnml.modeling.survival import SurvivalModel
from churnml.modeling.treeshap import TabulatedTreeShap

CURVE_DAYS = (30, 90, 180, 365)
"""The points of the churn curve a model with time to churn gives every account (besides its horizon)."""

RISK_BASES = ("renewal", "monthly_term", "no_renewal_date", "horizon")
"""What the risk probability runs to (:meth:`ChurnmlModel.risk_basis`): ``renewal``: before the next
renewal (its date is known and the term is longer than a month); ``monthly_term``: within the modelled
year, a monthly term renewing every month; ``no_renewal_date``: within the modelled year, no renewal date
on record; ``horizon``: within the labels' horizon (a model without time to churn)."""


@dataclass(frozen=True)
class ModelInputs:
    """What a model was trained with: the tables, the ``feature_*`` usage columns, the declared account
    attributes (name, kind), the indicators and each numeric indicator's training range."""

    tables: tuple[str, ...] = ()
    feature_columns: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    indicators: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "tables": list(self.tables),
            "feature_columns": list(self.feature_columns),
            "attributes": [list(a) for a in self.attributes],
            "indicators": list(self.indicators),
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def of(cls, ctx, X: pd.DataFrame, features: list[str], categorical: list[str]) -> ModelInputs:
        """What a model trained on features ``X`` of a base with feature context ``ctx``
        (:class:`churnml.dataset.Context`) needs from a base it scores."""
        num = [f for f in features if f not in categorical]
        lo, hi = X[num].min(), X[num].max()
        return cls(
            tables=tuple(sorted(ctx.present)),
            feature_columns=tuple(ctx.feature_columns),
            attributes=tuple((a, k) for a, k in ctx.attributes),
            indicators=tuple(features),
            ranges={
                f: (None if pd.isna(lo[f]) else float(lo[f]), None if pd.isna(hi[f]) else float(hi[f])) for f in num
            },
        )

    @classmethod
    def from_dict(cls, d: dict | None) -> ModelInputs | None:
        if not d:
            return None
        return cls(
            tuple(d.get("tables", ())),
            tuple(d.get("feature_columns", ())),
            tuple((a, k) for a, k in d.get("attributes", ())),
            tuple(d.get("indicators", ())),
            {k: (v[0], v[1]) for k, v in d.get("ranges", {}).items()},
        )


@dataclass(frozen=True)
class ModelCard:
    """What a fitted model is, kept with it (``model.json``) and written once, when the recipe
    finishes (:mod:`churnml.modeling.recipe`).

    ``horizon_days`` and ``uplift``: the labels it answers (its ``churn_probability`` is the chance of
    churning within ``horizon_days``); ``label_columns``: their names; ``fit_cutoffs`` and
    ``calibration_cutoffs``: where its classifiers were grown and calibrated; ``holdout_cutoffs``: the
    recipe's held-out cutoffs (fold 0's test); ``first_test_cutoff``: for a backtest fold's model, the
    first cutoff it had not seen; ``data_end``: the last day of the data it knew; ``inputs``: what it
    needs from a base; ``reference``: the drift reference profile; ``risk_quantiles``: percentiles of
    its risk probability on a recent population (tiers by quantiles); ``healthy_levels``: the levels of
    healthy accounts its reasons quote."""

    horizon_days: int = 90
    uplift: float = 0.1
    label_columns: dict[str, str] = field(default_factory=dict)
    fit_cutoffs: tuple[str, ...] = ()
    calibration_cutoffs: tuple[str, ...] = ()
    holdout_cutoffs: tuple[str, ...] = ()
    first_test_cutoff: str | None = None
    data_end: str | None = None
    inputs: ModelInputs | None = None
    reference: dict = field(default_factory=dict)
    risk_quantiles: tuple[float, ...] | None = None
    healthy_levels: dict | None = None

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d.update(
            fit_cutoffs=list(self.fit_cutoffs),
            calibration_cutoffs=list(self.calibration_cutoffs),
            holdout_cutoffs=list(self.holdout_cutoffs),
            risk_quantiles=None if self.risk_quantiles is None else list(self.risk_quantiles),
            inputs=None if self.inputs is None else self.inputs.to_dict(),
        )
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelCard:
        known = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        if "train_cutoffs" in d and "fit_cutoffs" not in d:  # churnml 0.1 models kept loose settings
            known["fit_cutoffs"] = d["train_cutoffs"]
        for f in ("fit_cutoffs", "calibration_cutoffs", "holdout_cutoffs"):
            known[f] = tuple(known.get(f) or ())
        if known.get("risk_quantiles") is not None:
            known["risk_quantiles"] = tuple(known["risk_quantiles"])
        known["inputs"] = ModelInputs.from_dict(d.get("inputs"))
        known["reference"] = dict(d.get("reference") or {})
        return cls(**known)


@dataclass
class TargetModel:
    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int
    _explainer: object = field(default=None, repr=False, compare=False)

    def explainer(self) -> TabulatedTreeShap:
        """Exact TreeSHAP tabulated per tree (:mod:`churnml.modeling.treeshap`), built on first use."""
        if self._explainer is None:
            self._explainer = TabulatedTreeShap.from_booster(self.booster, num_iteration=self.best_iteration)
        return self._explainer  # type: ignore[return-value]


@dataclass
class ChurnmlModel:
    """Calibrated LightGBM models for churn and expansion over one feature set, with the time-to-churn
    model when there is one, and the card that says what they are."""

    features: list[str]
    categorical: list[str]
    encoder: CategoryCodes
    targets: dict[str, TargetModel] = field(default_factory=dict)
    card: ModelCard = field(default_factory=ModelCard)
    survival: SurvivalModel | None = None  # the time-to-churn model, when trained

    # --- training -------------------------------------------------------------------
    @classmethod
    def fit(
        cls, X_fit, y_fit: dict, X_cal, y_cal: dict, *, categorical, params=None, seed=0, calibration="auto", threads=2
    ) -> ChurnmlModel:
        """Fit one booster per target on ``X_fit``; early-stop and calibrate on the later ``X_cal``.

        ``X_cal`` must be indexed by (account_id, cutoff) when ``calibration="auto"``: the
        method is chosen by leave-one-cutoff-out Brier inside that slice.
        """
        features = list(X_fit.columns)
        enc = CategoryCodes(tuple(categorical)).fit(X_fit)
        A, B = enc.transform(X_fit), enc.transform(X_cal)
        model = cls(features, list(categorical), enc)
        for target, y in y_fit.items():
            groups = X_cal.index.get_level_values("cutoff") if calibration == "auto" else None
            model.targets[target] = fit_target(
                A,
                np.asarray(y, int),
                B,
                np.asarray(y_cal[target], int),
                categorical=categorical,
                params=params,
                seed=seed,
                calibration=calibration,
                threads=threads,
                groups=groups,
            )
        return model

    @property
    def horizon_days(self) -> int:
        return int(self.card.horizon_days)

    @property
    def calibration(self) -> dict[str, str]:
        """The calibration chosen per target (``sigmoid``, ``isotonic``, ``none``), and the time-to-churn
        model's (Platt by month on the hazard, with frailty)."""
        out = {t: m.calibrator.method for t, m in self.targets.items()}
        if self.survival is not None:
            out["time_to_churn"] = "platt by month + frailty" if self.survival.frailty else "platt by month"
        return out

    # --- scoring --------------------------------------------------------------------
    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """Check the feature set and encode categoricals (scoring refuses a mismatch)."""
        missing = [c for c in self.features if c not in X.columns]
        if missing:
            raise ChurnmlError(
                f"feature table lacks {len(missing)} column(s) the model was trained on: "
                f"{missing[:5]}; rebuild features with the same churnml version"
            )
        X = X[self.features]
        return X if _is_encoded(X, self.categorical) else self.encoder.transform(X)

    def predict_raw(self, X: pd.DataFrame, target: str) -> np.ndarray:
        m = self.targets[target]
        # lightgbm types predict for all its modes (sparse contributions are lists of matrices); values are an array
        return cast(np.ndarray, m.booster.predict(self.prepare(X), num_iteration=m.best_iteration))

    def predict_target(self, X: pd.DataFrame, target: str) -> np.ndarray:
        """A classifier target's calibrated probability (``churn`` within the horizon, ``expansion``)."""
        if target not in self.targets:
            raise ChurnmlError(f"this model has no {target} classifier (targets: {', '.join(self.targets) or 'none'})")
        return self.targets[target].calibrator.transform(self.predict_raw(X, target))

    def predict_churn(self, X: pd.DataFrame) -> np.ndarray:
        """``churn_probability``: the chance of churning within the model's horizon (the card's
        ``horizon_days``), from the time-to-churn curve when the bundle has no churn classifier."""
        h = self.horizon_days
        if "churn" not in self.targets and self.survival is not None:
            return self.survival.predict_curve(X, (h,))[f"churn_{h}d"].to_numpy()
        return self.predict_target(X, "churn")

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """``risk_probability``: the chance a CSM can still act on (see :meth:`risk_basis`); the
        horizon's probability for a model without time to churn."""
        if self.survival is not None:
            return self.survival.predict_risk(X).to_numpy()
        return self.predict_churn(X)

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """Every probability of an account, the one path serving, promotion and scoring use:
        ``churn_probability`` (within the card's horizon), ``risk_probability`` (sets the tier), with a
        time-to-churn model also ``churn_probability_<d>d`` for the other :data:`CURVE_DAYS`,
        ``churn_probability_next_renewal`` and ``median_months_to_churn`` (NaN without one), and
        ``expansion_probability`` (NaN when expansion is not modelled)."""
        n, h = len(X), self.horizon_days
        nan = np.full(n, np.nan)
        out: dict[str, np.ndarray] = {}
        others = [d for d in CURVE_DAYS if d != h]
        if self.survival is not None:
            curve = self.survival.predict_curve(X, sorted({h, *CURVE_DAYS}))
            out["churn_probability"] = (
                curve[f"churn_{h}d"].to_numpy() if "churn" not in self.targets else self.predict_target(X, "churn")
            )
            for d in others:
                out[f"churn_probability_{d}d"] = curve[f"churn_{d}d"].to_numpy()
            out["churn_probability_next_renewal"] = self.survival.predict_next_renewal(X).to_numpy()
            out["median_months_to_churn"] = self.survival.median_month(X).to_numpy()
            out["risk_probability"] = self.survival.predict_risk(X).to_numpy()
        else:
            p = self.predict_target(X, "churn")
            out["churn_probability"] = p
            for d in others:
                out[f"churn_probability_{d}d"] = nan
            out["churn_probability_next_renewal"] = nan
            out["median_months_to_churn"] = nan
            out["risk_probability"] = p
        out["expansion_probability"] = self.predict_target(X, "expansion") if "expansion" in self.targets else nan
        return pd.DataFrame(out, index=X.index)

    # --- explanations -----------------------------------------------------------------
    def explain_target(self, X: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, float]:
        """A classifier target's points per feature (rows of ``X``), in probability points, with the
        calibrated probabilities and the base probability: ``p0 + points.sum(axis=1) == p``.

        Exact TreeSHAP (LightGBM's ``pred_contrib`` values, tabulated per tree by
        :mod:`churnml.modeling.treeshap`) gives log-odds contributions ``phi``; each account's are
        rescaled to probability points, ``points_i = phi_i * (p - p0) / (z - z0)``, where ``p`` is its
        calibrated probability and ``p0`` the calibrated probability of the base value."""
        tm = self.targets[target]
        Xp, ex = self.prepare(X), tm.explainer()
        # boosters see internal names (x0, ...); models trained before that, the features' own
        phi = ex.contributions(Xp if ex.feature_names == [str(c) for c in Xp.columns] else internal_names(Xp))
        z = phi.sum(axis=1)
        z0 = float(phi[0, -1]) if len(phi) else 0.0
        cal = tm.calibrator.transform
        p = cal(1 / (1 + np.exp(-z)))
        p0 = float(cal(np.array([1 / (1 + np.exp(-z0))]))[0])
        dz = z - z0
        eps = 1e-4  # where z == z0 the ratio is the local slope of p(z)
        slope = (cal(1 / (1 + np.exp(-(z + eps)))) - cal(1 / (1 + np.exp(-(z - eps))))) / (2 * eps)
        scale = np.where(np.abs(dz) > 1e-9, (p - p0) / np.where(np.abs(dz) > 1e-9, dz, 1.0), slope)
        return pd.DataFrame(phi[:, :-1] * scale[:, None], index=X.index, columns=self.features), p, p0

    def explain_risk(self, X: pd.DataFrame) -> tuple[pd.DataFrame, float, np.ndarray, str]:
        """Points of the risk probability per account (the features and, with time to churn, its timing
        inputs), its base, the probability and what it is (``explains``: ``churn_risk``, or
        ``churn_<h>d`` for a model without time to churn): ``base + points.sum(axis=1) == probability``."""
        if self.survival is not None:
            e = self.survival.explain(X, "risk")
            return pd.concat([e.points, e.timing], axis=1), float(e.base), e.probability.to_numpy(), "churn_risk"
        pts, p, p0 = self.explain_target(X, "churn")
        return pts, float(p0), np.asarray(p), f"churn_{self.horizon_days}d"

    def risk_basis(self, X: pd.DataFrame) -> pd.DataFrame:
        """What each account's risk probability runs to, as data (words are made in ``pages``):
        ``risk_basis`` (one of :data:`RISK_BASES`), ``risk_window_days`` (days from the as-of date the
        window covers) and ``renewal_in_days`` (days to the next renewal the account still faces, NaN
        without one; negative while a renewal decision is pending)."""
        n = len(X)
        if self.survival is None:
            return pd.DataFrame(
                {
                    "risk_basis": np.full(n, "horizon", dtype=object),
                    "risk_window_days": np.full(n, float(self.horizon_days)),
                    "renewal_in_days": np.full(n, np.nan),
                },
                index=X.index,
            )
        sv = self.survival
        to_renewal = sv.next_renewal_window(X)
        window = sv.risk_window(X)
        day = next_renewal_days(X["days_to_renewal"], X["term_length_days"], sv.grace_days)
        kind = np.where(
            np.isnan(to_renewal), "no_renewal_date", np.where(window != to_renewal, "monthly_term", "renewal")
        )
        return pd.DataFrame(
            {
                "risk_basis": kind.astype(object),
                "risk_window_days": window,
                "renewal_in_days": np.where(np.isnan(to_renewal), np.nan, day),
            },
            index=X.index,
        )

    def risk_words(self) -> str:
        """How the risk probability is said in one line (tier rules, reports)."""
        if self.survival is not None:
            return "chance of churning before the next renewal (or within 12 months)"
        return f"chance of churning within {self.horizon_days} days"

    # --- persistence (the I/O layer writes and reads the files: churnml.io.artifacts) ----------
    def to_state(self) -> tuple[dict, dict[str, str]]:
        """The model as open formats: a JSON-able dict and one LightGBM text model per target."""
        meta: dict = {
            "features": self.features,
            "categorical": self.categorical,
            "levels": self.encoder.levels_,
            "card": self.card.to_dict(),
            "targets": {},
        }
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
    def from_state(cls, meta: dict, texts: dict[str, str]) -> ChurnmlModel:
        try:
            enc = CategoryCodes(tuple(meta["categorical"]))
            enc.levels_ = meta["levels"]
            card = ModelCard.from_dict(meta.get("card") or meta.get("settings") or {})
            model = cls(meta["features"], meta["categorical"], enc, card=card)
            for t, tm in meta["targets"].items():
                booster = lgb.Booster(model_str=texts[t])
                model.targets[t] = TargetModel(
                    booster, _calibrator_from(tm["calibration"]), booster.current_iteration()
                )
            if meta.get("survival"):
                model.survival = SurvivalModel.from_state(
                    meta["survival"],
                    {k.removeprefix("survival."): v for k, v in texts.items() if k.startswith("survival.")},
                )
        except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as e:
            raise ChurnmlError(
                f"the model files are damaged or not a churnml model ({type(e).__name__}: {e})"
            ) from None
        return model


def internal_names(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with its columns named ``x0``, ``x1``, ... by position: what LightGBM is given (it refuses names
    holding JSON characters) and predicts on by position."""
    return X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1)


def fit_target(A, y, B, y_b, *, categorical, params, seed, calibration, threads, groups=None) -> TargetModel:
    """One booster, early-stopped on the later slice ``B``, then calibrated on it.

    ``calibration``: ``auto`` (choose by leave-one-cutoff-out Brier over ``groups``),
    ``sigmoid``, ``isotonic`` or ``none``.
    """
    p = lgb_params(params, seed, threads)
    rounds = int(p.pop("n_estimators", MAX_ROUNDS))
    # LightGBM sees internal names (x0, x1, ...): a column may be named anything (quotes, commas, colons)
    cols = list(A.columns)
    A, B = internal_names(A), internal_names(B)
    cats = [f"x{cols.index(c)}" for c in categorical]
    dtrain = lgb.Dataset(A, y, categorical_feature=cats, free_raw_data=False)
    dvalid = lgb.Dataset(B, y_b, reference=dtrain, categorical_feature=cats)
    booster = lgb.train(
        p,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
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
