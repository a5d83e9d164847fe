"""Point in time is sacred: rewriting or appending history dated on/after a cutoff
changes no feature as of that cutoff (metamorphic test on a generated base)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnml.features import build_features
from churnml.labels import make_labels

CUTOFFS = ["2024-06-01", "2025-03-01", "2026-01-15"]


def _dataset(tables):
    return SimpleNamespace(
        **{k: v.copy() for k, v in tables.items()}, last_date=lambda: tables["subscriptions"]["effective_date"].max()
    )


def _rewrite_future(tables: dict[str, pd.DataFrame], t: pd.Timestamp, seed: int) -> dict[str, pd.DataFrame]:
    """Every row dated on/after ``t`` rewritten, plus new rows after ``t``; the past untouched."""
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in tables.items()}
    day = pd.Timedelta(days=1)

    u = out["usage"]
    fut = u["date"] >= t
    u.loc[fut, "active_users"] = rng.integers(0, 500, fut.sum())
    u.loc[fut, "events"] = rng.integers(0, 9000, fut.sum())
    for c in [c for c in u.columns if c.startswith("feature_")]:
        u.loc[fut, c] = rng.integers(0, 50, fut.sum())
    u = u[~(fut & (rng.random(len(u)) < 0.3))]  # drop some future days
    ids = out["accounts"]["account_id"].sample(300, random_state=seed).to_numpy()
    extra = pd.DataFrame(
        {
            "account_id": ids,
            "date": (t + day * rng.integers(0, 60, ids.size)).astype("datetime64[us]"),
            "active_users": 999,
            "events": 99999,
        }
    )
    for c in [c for c in u.columns if c.startswith("feature_")]:
        extra[c] = 77
    extra = extra.drop_duplicates(["account_id", "date"])
    u = pd.concat([u, extra]).drop_duplicates(["account_id", "date"], keep="first")
    out["usage"] = u.sort_values(["account_id", "date"]).reset_index(drop=True)

    tk = out["tickets"]
    open_at_t = (tk["opened_at"] < t) & (tk["closed_at"].isna() | (tk["closed_at"] >= t))
    tk.loc[open_at_t, "closed_at"] = (t + pd.to_timedelta(rng.uniform(0, 30, open_at_t.sum()), unit="D")).astype(
        "datetime64[us]"
    )
    resp_after = (tk["opened_at"] + pd.to_timedelta(tk["first_response_minutes"], unit="min")) >= t
    tk.loc[resp_after & open_at_t, "first_response_minutes"] += 5000.0
    fut = tk["opened_at"] >= t
    tk.loc[fut, "priority"] = "urgent"
    tk.loc[fut, "closed_at"] = pd.NaT
    new_tk = pd.DataFrame(
        {
            "ticket_id": [f"NEW{i}" for i in range(200)],
            "account_id": rng.choice(ids, 200),
            "opened_at": (t + pd.to_timedelta(rng.uniform(0, 50, 200), unit="D")).astype("datetime64[us]"),
            "closed_at": pd.NaT,
            "priority": "urgent",
            "category": "bug",
            "first_response_minutes": 1.0,
        }
    )
    out["tickets"] = pd.concat([tk, new_tk], ignore_index=True)

    sv = out["surveys"]
    fut = sv["responded_at"] >= t
    sv.loc[fut & (sv["kind"] == "CES"), "score"] = 1.0
    sv.loc[fut & (sv["kind"] == "NPS"), "score"] = 0.0
    new_sv = pd.DataFrame(
        {"account_id": ids, "responded_at": (t + pd.Timedelta(hours=1)), "kind": "CES", "score": 1.0, "ticket_id": None}
    )
    new_sv["responded_at"] = new_sv["responded_at"].astype("datetime64[us]")
    out["surveys"] = pd.concat([sv, new_sv], ignore_index=True)

    ms = out["milestones"]
    not_reached = ms["completed_at"].isna() | (ms["completed_at"] >= t)
    ms.loc[not_reached, "completed_at"] = t  # completed on the cutoff day itself: still not reached at t
    out["milestones"] = ms

    sb = out["subscriptions"]
    fut = sb["effective_date"] >= t
    sb.loc[fut, "mrr"] = sb.loc[fut, "mrr"] * 3 + 1
    sb.loc[fut, "seats"] = sb.loc[fut, "seats"] + 100
    sb.loc[fut, "contract_end"] = sb.loc[fut, "contract_end"] + pd.Timedelta(days=500)
    new_sb = pd.DataFrame(
        {
            "account_id": ids,
            "effective_date": (t + pd.Timedelta(days=3)),
            "mrr": 0.0,
            "seats": 0,
            "plan": "Starter",
            "contract_end": pd.NaT,
        }
    )
    new_sb["effective_date"] = new_sb["effective_date"].astype("datetime64[us]")
    sb = pd.concat([sb, new_sb], ignore_index=True).drop_duplicates(["account_id", "effective_date"], keep="first")
    out["subscriptions"] = sb.sort_values(["account_id", "effective_date"]).reset_index(drop=True)
    return out


@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_rewriting_the_future_changes_no_feature(base_tables, cutoff):
    t = pd.Timestamp(cutoff)
    before = build_features(_dataset(base_tables), [t])
    after = build_features(_dataset(_rewrite_future(base_tables, t, seed=len(cutoff))), [t])
    assert len(before) > 100
    pd.testing.assert_frame_equal(before, after)


def test_the_rewrite_does_change_features_of_later_cutoffs(base_tables):
    """Guard against a test that cannot fail: the same rewrite moves features after t."""
    t = pd.Timestamp(CUTOFFS[1])
    later = t + pd.Timedelta(days=45)
    before = build_features(_dataset(base_tables), [later])
    after = build_features(_dataset(_rewrite_future(base_tables, t, seed=1)), [later])
    common = before.index.intersection(after.index)
    changed = (before.loc[common].fillna(-1) != after.loc[common].fillna(-1)).any()
    for col in ["active_users_per_seat_30d", "open_tickets", "ces_mean_90d", "milestones_reached", "mrr"]:
        assert changed[col], col


@pytest.fixture(scope="module")
def labelled(base_tables):
    ds = _dataset(base_tables)
    cutoffs = pd.date_range("2024-03-01", "2026-07-01", freq="MS")
    X = build_features(ds, cutoffs)
    y = make_labels(ds, cutoffs)
    return X.join(y[y["eligible"]], how="inner")


@pytest.mark.parametrize(
    "indicator, risk_sign, min_auc",
    [
        ("active_users_per_seat_30d", -1, 0.60),
        ("active_users_trend_30d", -1, 0.55),
        ("ces_difficult_share_90d", +1, 0.54),
        ("days_to_renewal", -1, 0.60),
    ],
)
def test_key_indicators_separate_churners(labelled, indicator, risk_sign, min_auc):
    """Univariate AUC of a few leading indicators on the demo-like base."""
    d = labelled[labelled[indicator].notna()]
    auc = roc_auc_score(d["churned_90d"].astype(int), risk_sign * d[indicator])
    assert auc >= min_auc, f"{indicator}: AUC {auc:.3f}"


def test_nps_is_a_weaker_signal_than_ces(labelled):
    d = labelled

    def auc(col, sign):
        m = d[col].notna()
        return roc_auc_score(d.loc[m, "churned_90d"].astype(int), sign * d.loc[m, col])

    assert auc("ces_difficult_share_90d", 1) > auc("nps_mean_180d", -1)
