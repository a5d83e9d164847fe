"""Which accounts get expansion reasons.

The points themselves are the model's (:meth:`churnml.modeling.model.ChurnmlModel.explain_target`
for a classifier, :meth:`~churnml.modeling.model.ChurnmlModel.explain_risk` for the risk: exact
TreeSHAP rescaled to probability points, ``base + sum(points) = p``); the reasons engine
(:mod:`churnml.scoring.reasons`) turns them into words.
"""

from __future__ import annotations

import numpy as np


def expansion_cutoff(p: np.ndarray, share: float) -> float:
    """The expansion probability above which accounts get expansion reasons (the top ``share``)."""
    if len(p) == 0:
        return np.inf
    k = int(np.ceil(share * len(p)))
    return float(np.sort(p)[::-1][k - 1])
