"""Training data: point-in-time features joined to labels, the cutoffs a history supports, its targets.

``training_data`` builds the features and labels once per command; the backtest
(:mod:`churnml.modeling.backtest`) and the final model (:mod:`churnml.modeling.recipe`)
use the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnml.cutoffs import SHORT_WARMUP_DAYS, SPACINGS, WARMUP_DAYS, parse_cutoffs
from churnml.errors import ChurnmlError
from churnml.features import build_features, indicators_for
from churnml.labels import label_names, make_labels
from churnml.modeling.folds import plan_folds


@dataclass
class TrainingData:
    """Features joined to labels for every eligible, labelled (account, cutoff)."""

    X: pd.DataFrame  # all cutoffs, labelled or not
    D: pd.DataFrame  # features + labels, eligible labelled rows
    features: list[str]
    categorical: list[str]
    label_cols: dict[str, str]
    definitions: list
    horizon_days: int
    uplift: float
    cutoffs: list
    allow_no_gap: bool = True  # may folds drop the fit-to-calibration gap (short histories)
    context: object = None  # the dataset's feature context (tables, usage columns, attributes)


def training_data(
    ds, *, cutoffs, horizon_days: int, uplift: float, progress=None, max_cutoffs: int | None = None
) -> TrainingData:
    """Build features and labels for all cutoffs (a spec string or a list of dates) and join them."""
    cuts = (
        parse_cutoffs(cutoffs, ds, **({"max_cutoffs": max_cutoffs} if max_cutoffs else {}))
        if isinstance(cutoffs, str)
        else list(cutoffs)
    )
    X = build_features(ds, cuts, progress=progress)
    Y = make_labels(ds, cuts, horizon_days=horizon_days, uplift=uplift)
    churn_col, exp_col = label_names(horizon_days)
    D = X.join(Y.loc[Y["eligible"], [churn_col, exp_col]], how="inner")
    if D.empty:
        raise ChurnmlError(f"no labelled rows: the data must extend at least {horizon_days} days past a cutoff")
    defs = indicators_for(ds.context())
    categorical = [i.name for i in defs if i.kind == "categorical"]
    return TrainingData(
        X,
        D,
        list(X.columns),
        categorical,
        {"churn": churn_col, "expansion": exp_col},
        defs,
        horizon_days,
        uplift,
        cuts,
        context=ds.context(),
    )


def supported_targets(
    D: pd.DataFrame, label_cols: dict[str, str], requested: str, min_events: int
) -> tuple[dict[str, str], list[str]]:
    """The targets the labelled history can support, and a line for each one left out.

    Churn is always trained and needs ``min_events`` churns; expansion is trained when the
    history holds ``min_events`` expansions (``requested="auto"``), never (``"churn"``), or
    required (``"both"``)."""
    n = {t: int(D[c].astype(int).sum()) for t, c in label_cols.items()}
    rows = len(D)
    if n["churn"] < min_events:
        what = "no account churned" if n["churn"] == 0 else f"only {n['churn']} churns"
        raise ChurnmlError(
            f"{what} in the labelled history ({rows:,} account-cutoff rows): too few to learn churn "
            f"(train.min_events = {min_events}); it needs more history, more accounts or a longer "
            f"--horizon"
        )
    out, notes = {"churn": label_cols["churn"]}, []
    if requested == "churn":
        notes.append("expansion not trained (targets: churn)")
    elif n["expansion"] >= min_events:
        out["expansion"] = label_cols["expansion"]
    elif requested == "both":
        raise ChurnmlError(
            f"only {n['expansion']} expansions in the labelled history ({rows:,} rows): too few to "
            f"learn expansion (train.min_events = {min_events}); use --targets auto or churn"
        )
    else:
        notes.append(
            f"expansion not trained: only {n['expansion']} expansions in the labelled history "
            f"(needs {min_events}); scores leave expansion empty"
        )
    return out, notes


def choose_cutoffs(
    ds, spec: str, *, horizon_days: int, fold_settings: dict, max_cutoffs: int
) -> tuple[list[pd.Timestamp], list[str], bool]:
    """The training cutoffs for a spec; ``auto`` takes monthly cutoffs, or the closest spacing
    (semi-monthly, weekly) whose labelled cutoffs give at least one backtest fold with the usual
    gaps; only when none does, the closest with the calibration slice right after the fit cutoffs.

    Returns the cutoffs, lines to print and whether folds may drop the fit-to-calibration gap
    (pass it to :func:`~churnml.modeling.folds.plan_folds`); raises with the history a backtest
    needs when even weekly cutoffs give no fold.
    """
    last = ds.last_date()
    h = pd.Timedelta(days=horizon_days)
    if spec != "auto":
        return parse_cutoffs(spec, ds, max_cutoffs=max_cutoffs), [], True
    for warmup in (WARMUP_DAYS, SHORT_WARMUP_DAYS):
        for no_gap in (False, True):
            for spacing in SPACINGS:
                cuts = parse_cutoffs(spacing, ds, max_cutoffs=max_cutoffs, warmup_days=warmup)
                labelled = [t for t in cuts if t + h <= last]
                try:
                    plan_folds(labelled, horizon_days=horizon_days, allow_no_gap=no_gap, **fold_settings)
                except ChurnmlError:
                    continue
                notes = (
                    []
                    if spacing == "monthly" and warmup == WARMUP_DAYS
                    else [
                        f"history is short ({ds.first_subscription_date():%Y-%m-%d}..{last:%Y-%m-%d}): using {spacing} "
                        f"cutoffs ({len(cuts)}, {len(labelled)} with an observed {horizon_days}-day window)"
                        + (
                            ""
                            if warmup == WARMUP_DAYS
                            else f", the first {warmup} days after the data start (not {WARMUP_DAYS}): "
                            "indicators over longer "
                            f"windows then use the days each account existed"
                        )
                    ]
                )
                return cuts, notes, no_gap
    first = ds.first_subscription_date()
    need = SHORT_WARMUP_DAYS + 14 + 2 * horizon_days
    shorter = max(7, (int((last - first).days) - SHORT_WARMUP_DAYS - 14) // 2)
    raise ChurnmlError(
        f"history too short for a backtest: the data cover {(last - first).days + 1} days ({first:%Y-%m-%d}.."
        f"{last:%Y-%m-%d}); with a {horizon_days}-day horizon churnml needs at least about {need} days (a "
        f"{SHORT_WARMUP_DAYS}-day warm-up, three weekly fit cutoffs, then {horizon_days} days to the test cutoff and "
        f"{horizon_days} days of its outcome). Use more history, or a horizon of at most {shorter} days (--horizon)."
    )


def cutoff_dates(rows: pd.DataFrame) -> list[str]:
    return [f"{t:%Y-%m-%d}" for t in sorted(rows.index.get_level_values("cutoff").unique())]


def span(rows: pd.DataFrame) -> str:
    d = cutoff_dates(rows)
    return f"{d[0]}..{d[-1]} ({len(d)})"


def as_model_input(X: pd.DataFrame, categorical) -> pd.DataFrame:
    """The pyfunc's input: categoricals as plain strings (None when missing)."""
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype("object").where(X[c].notna(), None)
    return X


def merge_params(tuned: dict | None, overrides: dict | None) -> tuple[dict, str]:
    """LightGBM parameters: tuned ones (when given), then config overrides; and where they came from."""
    params, source = dict(tuned or {}), "tuned" if tuned else "defaults"
    if overrides:
        params.update(overrides)
        source += " + config overrides"
    return params, source
