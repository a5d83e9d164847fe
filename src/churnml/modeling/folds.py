"""Time-ordered backtest folds over cutoffs, with a gap of at least the horizon.

Labels for cutoff ``t`` look at ``[t, t+H)``. A model tested on cutoffs starting at
``T`` may only learn from labels already observed at ``T``: ``t + H <= T``. Each fold
splits the past into

* ``fit``: cutoffs with ``t + H <= min(calibrate)``, to grow the trees;
* ``calibrate``: the ``calibration_cutoffs`` latest cutoffs with ``t + H <= T``,
  used for early stopping and probability calibration (a later time slice than
  ``fit``, so an account's later rows never tune the model on its earlier ones);
* ``test``: ``test_cutoffs`` consecutive cutoffs from ``T`` on.

Folds walk backwards from the newest labelled cutoffs; fold 0 is the newest and is
the holdout for the promotion gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnml.errors import ChurnmlError

MIN_FIT_CUTOFFS = 3


@dataclass(frozen=True)
class Fold:
    index: int
    fit: tuple[pd.Timestamp, ...]
    calibrate: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]

    def describe(self) -> str:
        d = lambda x: f"{x:%Y-%m-%d}"  # noqa: E731
        return (
            f"fold {self.index}: fit {d(self.fit[0])}..{d(self.fit[-1])} ({len(self.fit)}), "
            f"calibrate {d(self.calibrate[0])}..{d(self.calibrate[-1])}, test {d(self.test[0])}..{d(self.test[-1])}"
        )


def split_past(cutoffs, start: pd.Timestamp, horizon_days: int, calibration_cutoffs: int, fit_gap: bool = True):
    """Fit and calibration cutoffs usable for a model first applied at ``start``.

    With ``fit_gap`` (the rule), fit labels end before the calibration slice starts; without it
    (short histories only) the fit cutoffs simply precede the calibration ones.
    """
    h = pd.Timedelta(days=horizon_days)
    past = sorted(t for t in cutoffs if t + h <= start)
    if len(past) <= calibration_cutoffs:
        return (), tuple(past)
    cal = tuple(past[-calibration_cutoffs:])
    fit = tuple(t for t in past if (t + h <= cal[0] if fit_gap else t < cal[0]))
    return fit, cal


def make_folds(
    labelled_cutoffs,
    *,
    horizon_days: int,
    n_folds: int = 4,
    test_cutoffs: int = 3,
    calibration_cutoffs: int = 3,
    min_fit_cutoffs: int = MIN_FIT_CUTOFFS,
    fit_gap: bool = True,
) -> list[Fold]:
    """Backtest folds, newest first. Raises when the history is too short for one fold."""
    cuts = sorted(pd.Timestamp(t) for t in set(labelled_cutoffs))
    folds = []
    end = len(cuts)
    for k in range(n_folds):
        test = tuple(cuts[max(0, end - test_cutoffs) : end])
        if len(test) < test_cutoffs:
            break
        fit, cal = split_past(cuts, test[0], horizon_days, calibration_cutoffs, fit_gap)
        if len(fit) < min_fit_cutoffs or len(cal) < calibration_cutoffs:
            break
        folds.append(Fold(k, fit, cal, test))
        end -= test_cutoffs
    if not folds:
        raise ChurnmlError(
            f"history too short for a backtest: {len(cuts)} labelled cutoffs; one fold needs "
            f"{min_fit_cutoffs} fit + {calibration_cutoffs} calibration + {test_cutoffs} test cutoffs "
            f"with {horizon_days}-day gaps{'' if fit_gap else ' (calibration to test)'}. Use more history, a shorter "
            f"--horizon, or closer cutoffs (train.cutoffs: weekly)."
        )
    return folds


def plan_folds(
    labelled_cutoffs,
    *,
    horizon_days: int,
    n_folds: int,
    test_cutoffs: int,
    calibration_cutoffs: int,
    allow_no_gap: bool = True,
) -> tuple[list[Fold], str | None]:
    """Folds as configured; on a history too short for them, the largest equal number of test
    and calibration cutoffs per fold (down to 1) that still gives a fold; and as a last resort
    for a short history, 1 + 1 with the calibration slice right after the fit cutoffs (no gap
    between fit and calibration labels; the gap before the test, which keeps the backtest
    honest, always stays).

    Returns the folds and, when they were shrunk, a warning to print that states the folds used.
    """
    n = len(set(labelled_cutoffs))
    try:
        return make_folds(
            labelled_cutoffs,
            horizon_days=horizon_days,
            n_folds=n_folds,
            test_cutoffs=test_cutoffs,
            calibration_cutoffs=calibration_cutoffs,
        ), None
    except ChurnmlError as too_short:
        error = too_short
    attempts = [(k, True) for k in range(min(test_cutoffs, calibration_cutoffs) - 1, 0, -1)]
    attempts += [(1, False)] if allow_no_gap else []
    for k, gap in attempts:
        try:
            folds = make_folds(
                labelled_cutoffs,
                horizon_days=horizon_days,
                n_folds=n_folds,
                test_cutoffs=k,
                calibration_cutoffs=k,
                fit_gap=gap,
            )
        except ChurnmlError as e:
            error = e
            continue
        how = (
            ""
            if gap
            else (
                f"; the calibration slice follows the fit cutoffs without a {horizon_days}-day gap "
                f"(early stopping and calibration share label windows with training)"
            )
        )
        return folds, (
            f"warning: history is short ({n} labelled cutoffs): using {len(folds)} fold(s) of {k} test "
            f"and {k} calibration cutoff(s) instead of {test_cutoffs} and {calibration_cutoffs}{how}; "
            f"holdout figures rest on fewer accounts"
        )
    raise error
