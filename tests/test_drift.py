"""Drift at scoring (PSI against the newest training rows): what counts as a shift."""

import numpy as np
import pandas as pd

from churnml.modeling.drift import drift_table, reference_profile


def _days(rng, n, weekend_shift: int = 0):
    """Days since last activity: most accounts active yesterday (1), some a few days ago, a tail of weeks;
    ``weekend_shift`` adds days to the active ones, as an as-of date after a weekend does."""
    v = rng.choice([1, 1, 1, 1, 1, 2, 3, 5, 14, 40], size=n).astype(float)
    return np.where(v <= 3, v + weekend_shift, v)


def test_a_weekday_shift_of_a_day_count_is_not_drift_but_weeks_of_silence_are():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"days_since_last_activity": _days(rng, 5000), "ratio": rng.random(5000)})
    fine = reference_profile(ref, list(ref.columns), [])
    weekly = reference_profile(ref, list(ref.columns), [], resolution={"days_since_last_activity": 7.0})
    sunday = pd.DataFrame({"days_since_last_activity": _days(rng, 3000, weekend_shift=1), "ratio": rng.random(3000)})
    # one more day for the accounts active last week: drift by the raw quantile bins, not by week-wide bins
    assert drift_table(sunday, fine).set_index("feature").loc["days_since_last_activity", "drifted"]
    assert not drift_table(sunday, weekly).set_index("feature").loc["days_since_last_activity", "drifted"]
    silent = sunday.assign(
        days_since_last_activity=np.where(rng.random(3000) < 0.4, 30.0, sunday["days_since_last_activity"])
    )
    assert drift_table(silent, weekly).set_index("feature").loc["days_since_last_activity", "drifted"]
    assert weekly["ratio"] == fine["ratio"]  # other features keep their bins
