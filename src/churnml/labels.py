"""Labels as the data contract defines them, for many cutoffs at once.

For cutoff ``t`` and horizon ``H`` days an account is *eligible* when its MRR on day
``t-1`` is > 0. Over the window ``[t, t+H)``:

* ``churned_{H}d``: some subscriptions row in the window has ``mrr == 0`` and is not a
  ``completed`` end (contract v1.1: a fixed term that ran its course is not churn);
* ``expanded_{H}d``: not churned, and some row in the window has
  ``mrr >= (1 + uplift) * MRR(t-1)``;
* ``days_to_churn``: days from ``t`` to the first ``mrr == 0`` row, censored at ``H``
  (``churn_observed`` says whether it was observed).

A cutoff gets labels only once ``t + H`` is on or before the last day of the data;
later cutoffs are for scoring only. The labels carry the settings that made them
(columns ``horizon_days`` and ``uplift``, and ``DataFrame.attrs``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from churnml.contract import DEFAULT_HORIZON_DAYS, DEFAULT_UPLIFT
from churnml.cutoffs import cutoff_days, day_number, from_day_number
from churnml.dataset import as_dataset
from churnml.errors import ChurnmlError

# relative tolerance on the uplift test, so that exactly +10% counts despite float rounding
_UPLIFT_TOL = 1e-9


def label_names(horizon_days: int = DEFAULT_HORIZON_DAYS) -> tuple[str, str]:
    """Names of the churn and expansion label columns for a horizon."""
    return f"churned_{horizon_days}d", f"expanded_{horizon_days}d"


def labels_sql(horizon: int, uplift: float) -> str:
    """The label query over the day-number frames ``subs`` and ``cutoffs``."""
    return f"""
WITH state AS (
    SELECT c.cutoff, s.account_id, s.mrr,
           ROW_NUMBER() OVER (PARTITION BY s.account_id, c.cutoff ORDER BY s.day DESC) AS rn
    FROM _label_cutoffs c JOIN subs s ON s.day < c.cutoff
), base AS (
    SELECT account_id, cutoff, mrr AS mrr_before FROM state WHERE rn = 1
), win AS (
    SELECT b.account_id, b.cutoff,
           MIN(CASE WHEN s.churned THEN s.day END) AS churn_day,
           MAX(CASE WHEN s.mrr >= {1.0 + uplift!r} * b.mrr_before * (1 - {_UPLIFT_TOL}) THEN 1 ELSE 0 END) AS up
    FROM base b JOIN subs s ON s.account_id = b.account_id AND s.day >= b.cutoff AND s.day < b.cutoff + {horizon}
    WHERE b.mrr_before > 0
    GROUP BY b.account_id, b.cutoff
)
SELECT b.account_id, b.cutoff, b.mrr_before,
       b.mrr_before > 0 AS eligible,
       w.churn_day - b.cutoff AS churn_offset,
       COALESCE(w.up, 0) AS up
FROM base b LEFT JOIN win w ON w.account_id = b.account_id AND w.cutoff = b.cutoff
"""


def make_labels(
    dataset, cutoffs: Sequence, *, horizon_days: int = DEFAULT_HORIZON_DAYS, uplift: float = DEFAULT_UPLIFT
) -> pd.DataFrame:
    """Labels for every account existing on day ``t-1``, for each fully observed cutoff.

    Returns a DataFrame indexed by (account_id, cutoff) with ``eligible``,
    ``churned_{H}d``, ``expanded_{H}d`` (nullable booleans, missing when not eligible),
    ``days_to_churn``, ``churn_observed``, ``mrr_before``, ``horizon_days``, ``uplift``.
    """
    if horizon_days < 1:
        raise ChurnmlError(f"horizon must be at least 1 day, got {horizon_days}")
    if uplift <= 0:
        raise ChurnmlError(f"uplift must be > 0, got {uplift}")
    ds, owned = as_dataset(dataset)
    try:
        last = int(day_number([ds.last_date()]).iloc[0])
        days = cutoff_days(cutoffs)
        days = days[days + horizon_days <= last]
        churn_col, exp_col = label_names(horizon_days)
        con = ds.con
        con.register("_label_cutoffs", pd.DataFrame({"cutoff": days.astype("int64")}))
        try:
            raw = con.sql(labels_sql(horizon_days, uplift)).df()
        finally:
            con.unregister("_label_cutoffs")
    finally:
        if owned:
            ds.close()
    return _assemble(raw, horizon_days, uplift, churn_col, exp_col)


def _assemble(raw: pd.DataFrame, horizon: int, uplift: float, churn_col: str, exp_col: str) -> pd.DataFrame:
    eligible = raw["eligible"].astype(bool).to_numpy()
    offset = pd.to_numeric(raw["churn_offset"]).to_numpy(dtype="float64", na_value=np.nan)
    churned = ~np.isnan(offset)
    expanded = ~churned & (pd.to_numeric(raw["up"]).to_numpy() > 0)
    out = pd.DataFrame(
        {
            "account_id": raw["account_id"].astype(str),
            "cutoff": from_day_number(raw["cutoff"]).to_numpy(),
            "eligible": eligible,
            churn_col: pd.array(np.where(eligible, churned, False), dtype="boolean"),
            exp_col: pd.array(np.where(eligible, expanded, False), dtype="boolean"),
            "days_to_churn": pd.array(np.where(churned, offset, horizon), dtype="Int64"),
            "churn_observed": pd.array(churned, dtype="boolean"),
            "mrr_before": raw["mrr_before"].astype("float64"),
            "horizon_days": horizon,
            "uplift": float(uplift),
        }
    )
    for c in (churn_col, exp_col, "days_to_churn", "churn_observed"):
        out.loc[~eligible, c] = pd.NA
    out = out.sort_values(["account_id", "cutoff"], kind="stable").set_index(["account_id", "cutoff"])
    out.attrs.update({"horizon_days": horizon, "uplift": float(uplift)})
    return out
