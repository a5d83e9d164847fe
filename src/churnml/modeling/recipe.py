"""The churnml recipe, in one place: what ``train``, ``replay``, ``tune``, the backtest's fold models
and the Spark test all call.

>>> spec = RecipeSpec(horizon_days=90)                          # doctest: +SKIP
>>> td, notes = prepare(dataset, spec)                            # cutoffs, features, labels, targets
>>> folds, note = plan(td, spec)                                  # time-ordered backtest folds
>>> fitted = fit(td, dataset.subscriptions, dataset.last_date(), folds, spec)

The settings are frozen specs (:class:`RecipeSpec`, :class:`FoldSpec`) that a flow builds
once from the config (:meth:`churnml.flows.common.Run.recipe_spec`); nothing here reads a
config, a file or MLflow. :func:`fit` runs, on prepared training data:

1. the backtest: the 90-day (horizon) classifier and its baselines on every fold
   (:func:`churnml.modeling.backtest.run_backtest`), and the time-to-churn model on every
   fold (:func:`~churnml.modeling.backtest.run_survival_backtest`), judged together
   (:func:`churnml.modeling.early_warning.evaluate`);
2. the **final model**: the time-to-churn model on every cutoff as known on the data's last
   day, and the classifiers on the newest labels (:func:`fit_final_model`), with its
   :class:`~churnml.modeling.model.ModelCard` written once: what it answers, where it was
   fitted and calibrated, what it needs from a base, its drift reference, the quantiles of
   its risk and the healthy levels its reasons quote;
3. the **holdout model** (fold 0's, which never saw the holdout cutoffs; the promotion gate
   compares it) and each fold's model with its ``first_test_cutoff`` (backfilled history
   is scored with the fold that had not seen the date).

A history the hazard model cannot learn from falls back to the horizon's classifier, with a
note saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from churnml.errors import ChurnmlError
from churnml.features.roles import TIMING, component_of
from churnml.modeling.backtest import BacktestResult, SurvivalBacktest, fit_recipe, run_backtest, run_survival_backtest
from churnml.modeling.drift import reference_profile
from churnml.modeling.early_warning import add_time_to_churn, evaluate
from churnml.modeling.events import churn_events
from churnml.modeling.folds import Fold, plan_folds, split_past
from churnml.modeling.model import ChurnmlModel, ModelCard, ModelInputs
from churnml.modeling.reference import healthy_levels, healthy_levels_state
from churnml.modeling.survival import SurvivalModel
from churnml.modeling.training import TrainingData, choose_cutoffs, cutoff_dates, span, supported_targets, training_data

Notes = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class FoldSpec:
    """How the history is cut into backtest folds (:func:`churnml.modeling.folds.plan_folds`)."""

    n_folds: int = 4
    test_cutoffs: int = 3
    calibration_cutoffs: int = 3


@dataclass(frozen=True)
class RecipeSpec:
    """Everything the recipe needs to know, frozen: the labels (``horizon_days``, ``uplift``), the
    cutoffs (``cutoffs``: ``auto``, a spacing or dates; at most ``max_cutoffs``), the targets and the
    events each needs, the folds, the LightGBM parameters (``params``, with ``params_source`` saying
    where they came from: defaults, tuned, config overrides), the calibration of the classifiers, the
    seed and threads, and the tiers the early-warning figures judge (``tier_high``, ``tier_medium``: a
    probability level, or None for the top ``high_share`` / the next ``medium_share`` of each cutoff)."""

    horizon_days: int = 90
    uplift: float = 0.1
    cutoffs: str = "auto"
    max_cutoffs: int = 400
    targets: str = "auto"
    min_events: int = 30
    folds: FoldSpec = field(default_factory=FoldSpec)
    params: Mapping[str, object] = field(default_factory=dict)
    params_source: str = "defaults"
    calibration: str = "auto"
    seed: int = 42
    threads: int = 2
    tier_high: float | None = 0.30
    high_share: float = 0.10
    tier_medium: float | None = 0.15
    medium_share: float = 0.20

    def lgb(self) -> dict:
        return dict(self.params)


@dataclass
class Fitted:
    """What the recipe fits: the backtests, the early-warning figures, the final, holdout and fold models."""

    td: TrainingData
    folds: list[Fold]
    backtest: BacktestResult
    survival_backtest: SurvivalBacktest | None
    warning: dict | None
    model: ChurnmlModel
    holdout_model: ChurnmlModel
    fold_models: dict[int, ChurnmlModel]
    fit_rows: pd.DataFrame
    cal_rows: pd.DataFrame
    spec: RecipeSpec = field(default_factory=RecipeSpec)

    @property
    def label_cols(self) -> dict[str, str]:
        return self.td.label_cols

    def holdout_rows(self) -> pd.DataFrame:
        """The labelled rows of the holdout cutoffs (fold 0's test)."""
        D = self.td.D
        return D[D.index.get_level_values("cutoff").isin(list(self.folds[0].test))]


def prepare(ds, spec: RecipeSpec, *, progress=None, notes: Notes = _quiet) -> TrainingData:
    """Cutoffs (spaced for the history), point-in-time features and labels, and the targets the history
    supports; every choice made for a short history is said through ``notes``."""
    fold_settings = {
        "n_folds": spec.folds.n_folds,
        "test_cutoffs": spec.folds.test_cutoffs,
        "calibration_cutoffs": spec.folds.calibration_cutoffs,
    }
    cuts, said, no_gap = choose_cutoffs(
        ds, spec.cutoffs, horizon_days=spec.horizon_days, fold_settings=fold_settings, max_cutoffs=spec.max_cutoffs
    )
    for n in said:
        notes(n)
    notes(f"features and labels for {len(cuts)} cutoffs ({cuts[0]:%Y-%m-%d}..{cuts[-1]:%Y-%m-%d})")
    td = training_data(ds, cutoffs=cuts, horizon_days=spec.horizon_days, uplift=spec.uplift, progress=progress)
    td.label_cols, said = supported_targets(td.D, td.label_cols, spec.targets, spec.min_events)
    for n in said:
        notes(n)
    td.allow_no_gap = no_gap
    return td


def plan(td: TrainingData, spec: RecipeSpec) -> tuple[list[Fold], str | None]:
    """The backtest folds for prepared training data, and a warning when they had to shrink."""
    return plan_folds(
        td.D.index.get_level_values("cutoff").unique(),
        horizon_days=td.horizon_days,
        n_folds=spec.folds.n_folds,
        test_cutoffs=spec.folds.test_cutoffs,
        calibration_cutoffs=spec.folds.calibration_cutoffs,
        allow_no_gap=td.allow_no_gap,
    )


def fit_final_model(
    td: TrainingData, spec: RecipeSpec, *, calibration_cutoffs: int, targets=None
) -> tuple[ChurnmlModel, pd.DataFrame, pd.DataFrame]:
    """The classifiers refit on the newest labels: calibrated on the newest ``calibration_cutoffs``
    labelled cutoffs (as many as the backtest folds use), fitted on every labelled cutoff whose window
    closes before them (on a short history: every labelled cutoff before them). It stands to today as
    each backtest model stood to its test cutoffs, so the backtest estimates how it will do."""
    labelled = sorted(td.D.index.get_level_values("cutoff").unique())
    start = labelled[-1] + pd.Timedelta(days=td.horizon_days)
    fit_cuts, cal_cuts = split_past(labelled, start, td.horizon_days, calibration_cutoffs)
    if not fit_cuts:
        fit_cuts, cal_cuts = split_past(labelled, start, td.horizon_days, calibration_cutoffs, fit_gap=False)
    if not fit_cuts:
        raise ChurnmlError(f"history too short for the final model: {len(labelled)} labelled cutoffs")
    label_cols = td.label_cols if targets is None else {t: td.label_cols[t] for t in targets}
    return fit_recipe(
        td.D,
        fit_cuts,
        cal_cuts,
        features=td.features,
        categorical=td.categorical,
        label_cols=label_cols,
        params=spec.lgb(),
        seed=spec.seed,
        calibration=spec.calibration,
        threads=spec.threads,
    )


def fit(
    td: TrainingData,
    subscriptions: pd.DataFrame,
    last_day,
    folds: list[Fold],
    spec: RecipeSpec,
    *,
    progress=None,
    notes: Notes = _quiet,
) -> Fitted:
    """The recipe on prepared training data (see the module docstring)."""
    last_day = pd.Timestamp(last_day)
    params = spec.lgb()
    label_cols = dict(td.label_cols)
    bt = run_backtest(
        td.D,
        features=td.features,
        categorical=td.categorical,
        folds=folds,
        label_cols=label_cols,
        params=params,
        seed=spec.seed,
        calibration=spec.calibration,
        threads=spec.threads,
        progress=progress,
    )
    events = churn_events(subscriptions, td.X.index.get_level_values("cutoff").unique(), last_day)
    sv: SurvivalBacktest | None
    survival: SurvivalModel | None
    try:
        sv = run_survival_backtest(
            td.X,
            subscriptions,
            folds,
            categorical=td.categorical,
            params=params,
            seed=spec.seed,
            threads=spec.threads,
            progress=progress,
        )
        survival = SurvivalModel(params, seed=spec.seed, threads=spec.threads).fit(
            td.X, events, categorical=td.categorical, last_day=last_day
        )
    except ChurnmlError as e:  # a history the hazard model cannot learn from: the horizon's classifier tiers
        notes(
            f"time to churn skipped: {e}. The {td.horizon_days}-day classifier gives the risk and its tiers "
            f"instead (no 12-month or next-renewal probability)"
        )
        sv = survival = None
    warning = None
    if sv is not None:
        bt = add_time_to_churn(bt, sv, td.horizon_days)
        warning = evaluate(
            bt,
            sv,
            events,
            td.X,
            horizon_days=td.horizon_days,
            tier_high=spec.tier_high,
            high_share=spec.high_share,
            tier_medium=spec.tier_medium,
            medium_share=spec.medium_share,
        )
    model, fit_rows, cal_rows = fit_final_model(
        td,
        spec,
        calibration_cutoffs=len(folds[0].calibrate),
        targets=[t for t in label_cols if t != "churn" or survival is None],
    )
    model.survival = survival
    notes(
        "final models: "
        + (
            f"time to churn on {td.X.index.get_level_values('cutoff').nunique()} cutoffs as "
            f"known on {last_day:%Y-%m-%d}; "
            if survival is not None
            else ""
        )
        + f"{'/'.join(model.targets)} fit {span(fit_rows)}, calibrate {span(cal_rows)}"
    )
    base_card = ModelCard(
        horizon_days=int(td.horizon_days),
        uplift=float(td.uplift),
        label_columns=label_cols,
        holdout_cutoffs=tuple(cutoff_dates_of(folds[0].test)),
        data_end=f"{last_day:%Y-%m-%d}",
    )
    model.card = final_card(model, td, fit_rows, cal_rows, base_card)
    fold_models: dict[int, ChurnmlModel] = {}
    for k, fm in bt.models.items():  # each fold's bundle: the classifiers, with its time-to-churn model
        if sv is not None:
            fm.targets.pop("churn", None)
            fm.survival = sv.models[k]
        f = folds[k]
        fm.card = replace(
            base_card,
            fit_cutoffs=tuple(cutoff_dates_of(f.fit)),
            calibration_cutoffs=tuple(cutoff_dates_of(f.calibrate)),
            first_test_cutoff=f"{f.test[0]:%Y-%m-%d}",
            data_end=f"{f.test[0] - pd.Timedelta(days=1):%Y-%m-%d}",
            inputs=model.card.inputs,
        )
        fold_models[k] = fm
    return Fitted(td, folds, bt, sv, warning, model, fold_models[0], fold_models, fit_rows, cal_rows, spec)


def final_card(
    model: ChurnmlModel, td: TrainingData, fit_rows: pd.DataFrame, cal_rows: pd.DataFrame, base: ModelCard
) -> ModelCard:
    """The final model's card: where it was fitted and calibrated, what it needs from a base, the drift
    reference of its newest training rows (behavioural day counts in whole weeks: the weekday of an as-of
    date is no drift), the quantiles of its risk on them and the levels of their accounts that did not churn
    (the healthy levels reasons quote)."""
    defs = {i.name: i for i in td.definitions}
    week = {n: 7.0 for n, i in defs.items() if i.unit.startswith("days") and component_of(n, defs) != TIMING}
    healthy = ~cal_rows[td.label_cols["churn"]].astype(bool).to_numpy()
    return replace(
        base,
        fit_cutoffs=tuple(cutoff_dates(fit_rows)),
        calibration_cutoffs=tuple(cutoff_dates(cal_rows)),
        inputs=ModelInputs.of(td.context, td.D, td.features, td.categorical),
        reference=reference_profile(cal_rows, td.features, td.categorical, resolution=week),
        risk_quantiles=tuple(probability_quantiles(model.predict_risk(cal_rows[td.features]))),
        healthy_levels=healthy_levels_state(healthy_levels(cal_rows[td.features], healthy, defs)),
    )


def probability_quantiles(p) -> list[float]:
    """The 0th..100th percentiles of risk probabilities on a recent population (the final model's
    calibration slice), kept on its card so tiers by quantiles can be cut at any share."""
    return np.quantile(np.asarray(p, float), np.linspace(0, 1, 101)).tolist()


def cutoff_dates_of(cutoffs) -> list[str]:
    return [f"{pd.Timestamp(t):%Y-%m-%d}" for t in cutoffs]


def run(ds, spec: RecipeSpec, *, progress=None, notes: Notes = _quiet) -> Fitted:
    """:func:`prepare`, :func:`plan` and :func:`fit` on one base, as ``churnml train`` runs them."""
    td = prepare(ds, spec, progress=progress, notes=notes)
    folds, shrunk = plan(td, spec)
    if shrunk:
        notes(shrunk)
    for f in folds:
        notes(f.describe())
    return fit(td, ds.subscriptions, ds.last_date(), folds, spec, progress=progress, notes=notes)


def risk_sample(fitted: Fitted, n: int = 3000) -> pd.DataFrame:
    """Up to ``n`` holdout rows' features (what the training report explains the final model on)."""
    return fitted.holdout_rows()[fitted.td.features].head(n)


__all__ = [
    "Fitted",
    "FoldSpec",
    "RecipeSpec",
    "final_card",
    "fit",
    "fit_final_model",
    "plan",
    "prepare",
    "risk_sample",
    "run",
]
