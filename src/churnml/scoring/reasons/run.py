"""Everything a scoring run needs, in one call: :func:`explain_reasons` gives the components, the
churn and expansion reasons with their plays, the timing lines and the ledger columns
(:class:`Explained`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnml.features._registry import Indicator
from churnml.scoring.reasons.changes import LEDGER_REASONS, ledger_columns
from churnml.scoring.reasons.components import account_ids, components
from churnml.scoring.reasons.plays import assign_plays
from churnml.scoring.reasons.select import select_reasons
from churnml.scoring.reasons.timing import timing_lines


@dataclass
class Explained:
    """The reasons of a scoring run's accounts (see :func:`explain_reasons`)."""

    components: pd.DataFrame  # per account: base + components = probability
    reasons: pd.DataFrame  # churn and expansion reasons with their plays (REASON_COLUMNS + play_id, play)
    timing: pd.Series  # per account: the timing line
    ledger: pd.DataFrame  # per account: ledger_columns, for the next score's what_changed


def explain_reasons(
    points: pd.DataFrame,
    p0: float,
    X: pd.DataFrame,
    defs: dict[str, Indicator],
    *,
    healthy: pd.DataFrame,
    playbook,
    as_of,
    past: pd.DataFrame | None = None,
    expansion_points: pd.DataFrame | None = None,
    at_risk: pd.Series | None = None,
    expansion_candidate: pd.Series | None = None,
    probabilities: pd.DataFrame | None = None,
    top: int = 3,
    play_min_points: float = 1.0,
    explains: str = "churn_90d",
    ledger_k: int = LEDGER_REASONS,
) -> Explained:
    """Components, reasons (churn for every account of ``points``; expansion for the accounts of
    ``expansion_points``), plays, timing lines and ledger columns, from a model's points.

    ``points`` (indexed by account_id, aligned with ``X``) explain the probability that sets the
    risk tier (``explains`` names it); ``healthy`` are :func:`healthy_levels`; ``past`` the
    indicators three months earlier; ``at_risk`` / ``expansion_candidate`` boolean Series by
    account_id for the playbook's built-in conditions.
    """
    churn = select_reasons(points, X, defs, healthy, past=past, top=top)
    parts = [churn]
    if expansion_points is not None and len(expansion_points):
        Xe = X.loc[expansion_points.index]
        parts.append(select_reasons(expansion_points, Xe, defs, healthy, past=past, target="expansion", top=top))
    flags = {k: v for k, v in (("at_risk", at_risk), ("expansion_candidate", expansion_candidate)) if v is not None}
    reasons = assign_plays(
        pd.concat(parts, ignore_index=True),
        X,
        playbook,
        min_points=play_min_points,
        flags=flags,
        probabilities=probabilities,
    )
    return Explained(
        components(points, defs),
        reasons,
        pd.Series(timing_lines(X, as_of), index=account_ids(X.index), name="timing"),
        ledger_columns(points, X, p0, defs, explains=explains, k=ledger_k),
    )
