"""Revenue movements per account and calendar month, and trailing GRR/NRR, as contract v1.2 defines them.

For each account and calendar month ``m`` the **opening** MRR is the MRR in force at the start of the
month's first day (the latest subscriptions row dated before it, the point-in-time reading of "as of the
first day") and the **closing** MRR is the MRR in force at the end of its last day. The opening of a month
is therefore the closing of the month before, and a change dated on the 1st counts in the month it starts.
The month's one movement is read from opening and closing (a churn and a win-back inside one month net out):

* ``new``: opening 0, closing > 0, and the account never paid before the month;
* ``reactivation``: opening 0, closing > 0, and it paid at some point before the month;
* ``expansion`` / ``contraction``: paying at both ends, MRR up / down;
* ``churn``: paying at the opening, 0 at the closing, and the row in force is not ``completed``;
* ``completed``: the same, but the row in force says ``end_kind = completed`` (a term that ran its
  course: no loss).

Amounts are positive magnitudes in money per month, computed in whole cents so that for every account
and month, and so in any total, ``opening + new + expansion + reactivation - contraction - churn -
completed = closing`` holds exactly.

**GRR/NRR over a period** ``[start, end)`` for the accounts paying at its start (contract v1.2): per
account, its start MRR against its MRR at the period's end; an account whose MRR is 0 at the end churned
(or completed), one paying less contracted, one paying more expanded, so an account counts at most its start
MRR as a loss. ``GRR = (start - churn - contraction) / start``, ``NRR = (start - churn - contraction +
expansion) / start``. New accounts and reactivations are not part of either. A ``completed`` end is no
loss: an account whose fixed term ran its course by the period's end leaves the base (it is in neither the
start nor a movement, so it neither lowers nor flatters either rate) and is reported beside, as
``completed_mrr``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from churnml.dataset import as_dataset
from churnml.errors import ChurnmlError

KINDS = ("new", "expansion", "contraction", "churn", "completed", "reactivation")
# the sign with which each movement enters opening -> closing
SIGN = {"new": 1, "expansion": 1, "reactivation": 1, "contraction": -1, "churn": -1, "completed": -1}

DEFINITIONS = {
    "start_mrr": "MRR of the accounts paying at the period's start (the base; new business is not in it, nor "
    "accounts whose fixed term completed by the end)",
    "churn_mrr": "start MRR of the accounts at 0 at the period's end (not a completed term)",
    "contraction_mrr": "MRR lost by accounts still paying at the end, paying less than at the start",
    "expansion_mrr": "MRR gained by accounts paying more at the end than at the start",
    "completed_mrr": "start MRR of the accounts whose fixed term ended as planned (no loss: out of both rates)",
    "grr": "gross revenue retention = (start - churn - contraction) / start",
    "nrr": "net revenue retention = (start - churn - contraction + expansion) / start",
}


@contextmanager
def _opened(base) -> Iterator:
    """``base`` as a Dataset (a dict of frames or a table holder is opened here, and closed after)."""
    ds, own = as_dataset(base)
    try:
        yield ds
    finally:
        if own:
            ds.close()


def _subscriptions(base) -> pd.DataFrame:
    """account_id, effective_date, cents, completed: the subscriptions change log, sorted."""
    s = base.frame("subscriptions")
    if s is None or s.empty:
        raise ChurnmlError("table subscriptions: no rows; revenue movements need the MRR change log")
    out = pd.DataFrame(
        {
            "account_id": s["account_id"].astype(str).to_numpy(),
            "effective_date": pd.to_datetime(s["effective_date"]).dt.normalize().to_numpy(),
            "cents": np.rint(s["mrr"].to_numpy(dtype="float64") * 100).astype("int64"),
        }
    )
    kind = s["end_kind"] if "end_kind" in s else pd.Series(None, index=s.index, dtype="object")
    out["completed"] = (kind.fillna("").astype(str).str.strip().str.lower() == "completed").to_numpy()
    return out.sort_values(["effective_date", "account_id"], kind="stable").reset_index(drop=True)


def _state_at(subs: pd.DataFrame, days: Sequence[pd.Timestamp]) -> pd.DataFrame:
    """For every account and every day ``d`` of ``days``: the row in force at the *start* of ``d``
    (the latest with ``effective_date < d``): columns account_id, day, cents, completed, known."""
    accounts = pd.Index(subs["account_id"].unique(), name="account_id")
    grid = pd.MultiIndex.from_product([accounts, pd.DatetimeIndex(days)], names=["account_id", "day"]).to_frame(
        index=False
    )
    # merge_asof finds the latest row with effective_date <= key: key = d - 1 day gives "< d"
    grid["key"] = grid["day"] - pd.Timedelta(days=1)
    grid = grid.sort_values("key", kind="stable")
    got = pd.merge_asof(
        grid,
        subs.rename(columns={"effective_date": "key"}),
        on="key",
        by="account_id",
        direction="backward",
    )
    got["known"] = got["cents"].notna()
    got["cents"] = got["cents"].fillna(0).astype("int64")
    got["completed"] = got["completed"].fillna(False).astype(bool)
    return got.drop(columns="key").sort_values(["account_id", "day"], kind="stable").reset_index(drop=True)


def month_range(base, start=None, end=None) -> pd.DatetimeIndex:
    """First days of the calendar months whose last day is in the data: from the month of the first
    subscriptions row (or ``start``) to the last month that ends on or before the data's last day (or the
    month before ``end``)."""
    with _opened(base) as ds:
        return _month_range(ds, start, end)


def _month_range(ds, start=None, end=None) -> pd.DatetimeIndex:
    first = pd.Timestamp(start) if start is not None else ds.first_subscription_date()
    last_day = ds.last_date()
    last_full = (last_day + pd.Timedelta(days=1)).to_period("M").start_time - pd.offsets.MonthBegin(1)
    stop = pd.Timestamp(end).to_period("M").start_time - pd.offsets.MonthBegin(1) if end is not None else last_full
    stop = min(stop, last_full)
    months = pd.date_range(first.to_period("M").start_time, stop, freq="MS")
    return months


def movements(base, start=None, end=None) -> pd.DataFrame:
    """One row per account and calendar month in which it paid at the opening or the closing: ``month``
    (the first day), ``opening_mrr``, the six movements (positive amounts), ``closing_mrr`` and ``movement``
    (the kind, or ``flat``). Months as :func:`month_range` gives them. See the module docstring."""
    with _opened(base) as ds:
        return _movements(ds, start, end)


def _movements(ds, start=None, end=None) -> pd.DataFrame:
    months = month_range(ds, start, end)
    if len(months) == 0:
        raise ChurnmlError(
            "revenue movements: the data holds no complete calendar month "
            f"(subscriptions from {ds.first_subscription_date():%Y-%m-%d}, data until {ds.last_date():%Y-%m-%d})"
        )
    subs = _subscriptions(ds)
    bounds = months.append(pd.DatetimeIndex([months[-1] + pd.offsets.MonthBegin(1)]))
    st = _state_at(subs, bounds)
    n_b = len(bounds)
    cents = st["cents"].to_numpy().reshape(-1, n_b)
    completed = st["completed"].to_numpy().reshape(-1, n_b)
    accounts = st["account_id"].to_numpy().reshape(-1, n_b)[:, 0]
    first_paid = subs[subs["cents"] > 0].groupby("account_id")["effective_date"].min()
    first_paid = first_paid.reindex(accounts).to_numpy(dtype="datetime64[ns]")

    o, c = cents[:, :-1], cents[:, 1:]
    end_completed = completed[:, 1:]
    month_start = months.to_numpy(dtype="datetime64[ns]")[None, :]
    paid_before = first_paid[:, None] < month_start  # NaT compares False: never paid
    both = (o > 0) & (c > 0)
    amounts = {
        "new": np.where((o == 0) & (c > 0) & ~paid_before, c, 0),
        "reactivation": np.where((o == 0) & (c > 0) & paid_before, c, 0),
        "expansion": np.where(both & (c > o), c - o, 0),
        "contraction": np.where(both & (c < o), o - c, 0),
        "churn": np.where((o > 0) & (c == 0) & ~end_completed, o, 0),
        "completed": np.where((o > 0) & (c == 0) & end_completed, o, 0),
    }
    keep = (o > 0) | (c > 0)
    rows, cols = np.nonzero(keep)
    out = pd.DataFrame(
        {
            "account_id": accounts[rows],
            "month": months[cols],
            "opening_cents": o[rows, cols],
            **{f"{k}_cents": amounts[k][rows, cols] for k in KINDS},
            "closing_cents": c[rows, cols],
        }
    )
    kind = np.full(len(out), "flat", dtype=object)
    for k in KINDS:
        kind[out[f"{k}_cents"].to_numpy() > 0] = k
    out["movement"] = pd.Categorical(kind, categories=("flat", *KINDS))
    for col in ["opening", *KINDS, "closing"]:
        out[f"{col}_mrr"] = out.pop(f"{col}_cents") / 100.0
    cols_order = ["account_id", "month", "opening_mrr", *[f"{k}_mrr" for k in KINDS], "closing_mrr", "movement"]
    return out[cols_order].sort_values(["month", "account_id"], kind="stable").reset_index(drop=True)


def reconcile(mv: pd.DataFrame) -> pd.DataFrame:
    """Accounts-months where opening + movements != closing, to the cent (empty when all reconcile)."""
    cents = {c: np.rint(mv[c].to_numpy() * 100).astype("int64") for c in mv.columns if c.endswith("_mrr")}
    total = cents["opening_mrr"] + sum(SIGN[k] * cents[f"{k}_mrr"] for k in KINDS)
    return mv[total != cents["closing_mrr"]]


def monthly_summary(mv: pd.DataFrame) -> pd.DataFrame:
    """The base's totals per month: opening, each movement, closing (the MRR bridge)."""
    cols = ["opening_mrr", *[f"{k}_mrr" for k in KINDS], "closing_mrr"]
    return mv.groupby("month", observed=True)[cols].sum().round(2).reset_index()


def _groups(ds, attributes: Sequence[str]) -> list[tuple[str, pd.Series]]:
    acc = ds.frame("accounts")
    ids = acc["account_id"].astype(str)
    out = [("all", pd.Series("all", index=ids.to_numpy()))]
    for col in ("segment", "csm_owner", *attributes):
        if col in acc.columns and col not in {g for g, _ in out}:
            out.append((col, pd.Series(acc[col].astype("string").fillna("(none)").to_numpy(), index=ids.to_numpy())))
    return out


def retention(base, start, end, attributes: Sequence[str] = ()) -> pd.DataFrame:
    """GRR and NRR over ``[start, end)`` per group: ``group_by`` in ``all``, ``segment``, ``csm_owner`` and
    each declared attribute; columns ``group_by``, ``group``, ``start_date``, ``end_date``, ``accounts``,
    ``start_mrr``, ``churn_mrr``, ``contraction_mrr``, ``expansion_mrr``, ``completed_mrr``, ``grr``,
    ``nrr`` (:data:`DEFINITIONS`). ``end`` must be on or before the day after the data's last day."""
    with _opened(base) as ds:
        return _retention(ds, start, end, attributes)


def _retention(ds, start, end, attributes: Sequence[str] = ()) -> pd.DataFrame:
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end <= start:
        raise ChurnmlError(f"retention: the period must end after it starts ({start:%Y-%m-%d} .. {end:%Y-%m-%d})")
    limit = ds.last_date() + pd.Timedelta(days=1)
    if end > limit:
        raise ChurnmlError(
            f"retention: the period {start:%Y-%m-%d} .. {end:%Y-%m-%d} runs past the data "
            f"(last day {ds.last_date():%Y-%m-%d}); an unobserved end would be read as 'stayed'"
        )
    st = _state_at(_subscriptions(ds), [start, end])
    s0 = st[st["day"] == start].set_index("account_id")
    s1 = st[st["day"] == end].set_index("account_id").reindex(s0.index)
    a, b = s0["cents"].to_numpy(), s1["cents"].to_numpy()
    done = s1["completed"].to_numpy()
    paying = a > 0
    per = pd.DataFrame(
        {
            "start": np.where(paying, a, 0),
            "churn": np.where(paying & (b == 0) & ~done, a, 0),
            "completed": np.where(paying & (b == 0) & done, a, 0),
            "contraction": np.where(paying & (b > 0) & (b < a), a - b, 0),
            "expansion": np.where(paying & (b > a), b - a, 0),
            "paying": paying.astype("int64"),
        },
        index=s0.index,
    )
    per = per[per["paying"] > 0]
    per.loc[per["completed"] > 0, ["start", "paying"]] = 0  # a completed term leaves the base
    rows = []
    for by, labels in _groups(ds, attributes):
        g = per.join(labels.rename("group"), how="left")
        g["group"] = g["group"].fillna("(none)")
        for name, part in g.groupby("group", sort=True):
            tot = part[["start", "churn", "completed", "contraction", "expansion", "paying"]].sum()
            s = tot["start"]
            rows.append(
                {
                    "group_by": by,
                    "group": str(name),
                    "start_date": start,
                    "end_date": end,
                    "accounts": int(tot["paying"]),
                    "completed_accounts": int((part["completed"] > 0).sum()),
                    "start_mrr": s / 100.0,
                    "churn_mrr": tot["churn"] / 100.0,
                    "contraction_mrr": tot["contraction"] / 100.0,
                    "expansion_mrr": tot["expansion"] / 100.0,
                    "completed_mrr": tot["completed"] / 100.0,
                    "grr": (s - tot["churn"] - tot["contraction"]) / s if s else np.nan,
                    "nrr": (s - tot["churn"] - tot["contraction"] + tot["expansion"]) / s if s else np.nan,
                }
            )
    return pd.DataFrame(rows)


def trailing_retention(base, as_of=None, months: int = 12, attributes: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`retention` over the ``months`` calendar months before ``as_of`` (default: the day after the
    data's last day), the trailing GRR/NRR a subscription business reports."""
    with _opened(base) as ds:
        return _trailing_retention(ds, as_of, months, attributes)


def _trailing_retention(ds, as_of=None, months: int = 12, attributes: Sequence[str] = ()) -> pd.DataFrame:
    end = pd.Timestamp(as_of).normalize() if as_of is not None else ds.last_date() + pd.Timedelta(days=1)
    start = end - pd.DateOffset(months=months)
    if start < ds.first_subscription_date():
        raise ChurnmlError(
            f"retention: trailing {months} months before {end:%Y-%m-%d} start {start:%Y-%m-%d}, before the "
            f"first subscriptions row ({ds.first_subscription_date():%Y-%m-%d}); use fewer months"
        )
    return retention(ds, start, end, attributes)
