"""Contract v1.2: a base with the optional `activities` table works unchanged (accepted, validated
as before, and the same indicators and labels as without it; churnml does not read it yet)."""

from __future__ import annotations

import pandas as pd

from churnml.api import open_dataset
from churnml.features import build_features
from churnml.io import write_dataset
from churnml.labels import make_labels

CUTS = ["2025-09-01", "2026-03-01"]


def test_a_base_with_an_activities_table_validates_and_gives_the_same_features_and_labels(base_tables, tmp_path):
    keep = set(base_tables["accounts"]["account_id"].iloc[:150])
    small = {n: t[t["account_id"].isin(keep)] if "account_id" in t else t for n, t in base_tables.items()}
    plain, with_activities = tmp_path / "plain", tmp_path / "v12"
    write_dataset(small, plain)
    write_dataset(small, with_activities)
    ids = sorted(keep)[:4]
    pd.DataFrame(
        {
            "activity_id": [f"act-{i}" for i in range(4)],
            "account_id": ids,
            "occurred_at": pd.to_datetime(["2025-08-01", "2025-08-15", "2026-01-10", "2026-02-20"]),
            "kind": ["call", "meeting", "business_review", "play"],
            "play_id": [None, None, None, "adoption_workshop"],
            "csm": ["Ann", "Ann", "Bo", None],
            "outcome": [None, "renewal discussed", None, None],
        }
    ).to_parquet(with_activities / "activities.parquet")
    with open_dataset(plain) as a, open_dataset(with_activities) as b:
        assert b.check().errors == [] and len(b.check().errors) == len(a.check().errors)
        pd.testing.assert_frame_equal(build_features(a, CUTS), build_features(b, CUTS))
        pd.testing.assert_frame_equal(make_labels(a, CUTS, horizon_days=90), make_labels(b, CUTS, horizon_days=90))
