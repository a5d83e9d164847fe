"""Reasons: why an account's probability is what it is, in words that agree with the numbers.

Everything here works on what any churnml model gives, per account: the points of each
feature in probability points (``points``: rows = accounts, columns = features, plus any
extra *timing* columns a model adds), the probability ``p`` they explain and the base ``p0``
(``p0 + points.sum(axis=1) == p``), the feature frame ``X`` and the indicator definitions
(:func:`churnml.features.indicators_for`). ``how_to_lower`` also takes ``predict(X) -> p``.
The functions are pure (no files, no config) and work on arrays per indicator, so batch
scoring can explain every account. See docs/reasons.md for the rules in words.

One module per concern; every name below is importable from this package
(``from churnml.scoring import reasons as R; R.select_reasons(...)``):

* :mod:`.components`: **timing is context, not a cause.** Which indicator is what
  (:func:`component_of`, :func:`is_reason`) and the split of the points into families,
  ``timing`` and ``profile`` (:func:`components`).
* :mod:`.timing`: the timing line (:func:`timing_lines`).
* :mod:`.references`: **words that agree with the numbers.** Healthy levels per segment
  (:func:`healthy_levels`, :func:`lower_risk_half`), which side of a reference a value is on
  (:func:`side`, :func:`needed_side`) and the check (:func:`disagrees`, :func:`reason_disagrees`).
* :mod:`.select`: the reasons themselves (:func:`select_reasons`, :func:`reason_texts`).
* :mod:`.plays`: **plays that fit** (:func:`parse_playbook`, :func:`assign_plays`).
* :mod:`.changes`: **what changed** since the last score, attributed to reasons in points
  (:func:`ledger_columns`, :func:`attribute_change`, :func:`what_changed`).
* :mod:`.lower`: **how to lower it** (:func:`how_to_lower`, :func:`lower_summary`).
* :mod:`.metrics`: the figures that say whether the rules hold (:func:`reason_metrics`).
* :mod:`.run`: everything a scoring run needs in one call (:func:`explain_reasons`).
* :mod:`.words`: how values are said (:func:`formatter`, :func:`displayed`, :func:`plain_missing`).
"""

from __future__ import annotations

from churnml.modeling.reference import healthy_levels  # its home: the model card keeps the levels
from churnml.scoring.reasons.changes import (
    CHANGE_COLUMNS,
    LEDGER_REASONS,
    attribute_change,
    ledger_column_names,
    ledger_columns,
    what_changed,
)
from churnml.scoring.reasons.components import (
    CHANGE_UNITS,
    COMPONENTS,
    PROFILE,
    TIMING,
    TIMING_FEATURES,
    account_ids,
    account_segments,
    component_of,
    components,
    indicator_stem,
    is_reason,
)
from churnml.scoring.reasons.lower import LOWER_COLUMNS, how_to_lower, lower_summary
from churnml.scoring.reasons.metrics import reason_metrics
from churnml.scoring.reasons.plays import (
    FLAGS,
    PROBABILITIES,
    Condition,
    Play,
    Playbook,
    assign_plays,
    family_plays,
    parse_playbook,
    play_counts,
)
from churnml.scoring.reasons.references import (
    ALL_SEGMENTS,
    disagrees,
    level_matrix,
    level_rows,
    lower_risk_half,
    needed_side,
    reason_disagrees,
    side,
)
from churnml.scoring.reasons.run import Explained, explain_reasons
from churnml.scoring.reasons.select import REASON_COLUMNS, one_window, reason_texts, select_drivers, select_reasons
from churnml.scoring.reasons.timing import timing_lines
from churnml.scoring.reasons.words import displayed, format_value, format_values, formatter, plain_missing

__all__ = [
    # components
    "TIMING",
    "PROFILE",
    "COMPONENTS",
    "TIMING_FEATURES",
    "CHANGE_UNITS",
    "component_of",
    "is_reason",
    "components",
    "account_ids",
    "account_segments",
    "indicator_stem",
    # timing
    "timing_lines",
    # references
    "ALL_SEGMENTS",
    "healthy_levels",
    "lower_risk_half",
    "level_rows",
    "level_matrix",
    "side",
    "needed_side",
    "disagrees",
    "reason_disagrees",
    # select
    "REASON_COLUMNS",
    "reason_texts",
    "select_drivers",
    "one_window",
    "select_reasons",
    # plays
    "FLAGS",
    "PROBABILITIES",
    "Condition",
    "Play",
    "Playbook",
    "parse_playbook",
    "family_plays",
    "assign_plays",
    "play_counts",
    # changes
    "LEDGER_REASONS",
    "CHANGE_COLUMNS",
    "ledger_column_names",
    "ledger_columns",
    "attribute_change",
    "what_changed",
    # lower
    "LOWER_COLUMNS",
    "how_to_lower",
    "lower_summary",
    # metrics
    "reason_metrics",
    # run
    "Explained",
    "explain_reasons",
    # words
    "formatter",
    "displayed",
    "plain_missing",
    "format_values",
    "format_value",
]
