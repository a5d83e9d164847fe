"""Map the UCI Online Retail invoice lines to churnml's data contract (v1.1, valid under v1).

The source is not a subscription business: a UK wholesaler's customers place orders
when they want. This script writes the choices a team bringing such data would make
(the README beside it explains each one):

* **account** = ``CustomerID``; lines without one cannot be attributed and are dropped.
* **signup_date** = the day of the customer's first purchase in the data.
* **segment** = size band of the customer's *first order* (known on the signup day,
  so it is a static attribute without leakage); **region** = the country of that order.
* **MRR** = average monthly spend over the trailing ``N`` days (``N`` = 90 by default:
  gross value of purchase lines x 30 / N), recomputed on the first of every month the
  customer is active and on every day a customer (re)starts buying.
* **churn** = ``N`` days without a purchase, dated on the last purchase day + ``N``:
  the day it becomes known (at the end of that day), never back-dated to the last
  purchase. A later purchase starts a new paying period (a reactivation).
* **usage** = one row per customer and purchase day: ``active_users`` = distinct
  orders (invoices), ``events`` = order lines.
* **tickets** = one per cancellation/return invoice (``C...``), the nearest thing to
  support load the source holds.
* no surveys, no milestones (the source has none).

Every row dated ``d`` is computed from invoice lines dated on or before ``d`` only, so
cutting the output at a date gives the same tables as mapping the lines before that
date (:func:`cut_tables`; the slow test checks it on the whole file).

Usage::

    python examples/online_retail/map_to_contract.py \
        --src /work/shared/data/online_retail/online_retail_invoice_lines.parquet --out data/online_retail
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
INACTIVE_DAYS = 90
# Size bands of the first order, in GBP (round figures; 42% / 52% / 6% of the 4,338 customers).
FIRST_ORDER_BANDS = ((250.0, "small first order"), (1000.0, "medium first order"), (float("inf"), "large first order"))
# Stock codes that are not goods: service lines and accounting entries (used to name ticket categories).
SERVICE_CODES = {
    "POST": "postage",
    "DOT": "postage",
    "C2": "postage",
    "D": "discount",
    "M": "manual",
    "BANK CHARGES": "fees",
    "AMAZONFEE": "fees",
    "CRUK": "fees",
    "PADS": "manual",
    "S": "manual",
    "B": "manual",
}
CONTRACT_VERSIONS = ("v1", "v1.1")
_DAY = pd.Timedelta(days=1)


@dataclass
class MappingReport:
    """What the mapping kept and dropped, in lines and customers."""

    lines_in: int = 0
    duplicate_lines: int = 0
    lines_without_customer: int = 0
    purchase_lines: int = 0
    return_lines: int = 0
    other_lines_dropped: int = 0
    customers_without_purchase: int = 0
    tickets_of_customers_without_purchase: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        t = ", ".join(f"{k} {v:,}" for k, v in self.counts.items())
        return (
            f"{self.lines_in:,} invoice lines: {self.duplicate_lines:,} exact duplicates dropped, "
            f"{self.lines_without_customer:,} without CustomerID dropped, "
            f"{self.purchase_lines:,} purchase lines, {self.return_lines:,} cancellation/return lines, "
            f"{self.other_lines_dropped:,} other lines dropped (zero or negative price or quantity outside a "
            f"C invoice); {self.customers_without_purchase:,} customers with returns but no purchase dropped "
            f"(with {self.tickets_of_customers_without_purchase:,} tickets)\ntables: {t}"
        )


def read_lines(src: str | Path) -> pd.DataFrame:
    """Read the invoice lines (Parquet or CSV) with the published column names."""
    from churnml.errors import ChurnmlError

    src = Path(src)
    if not src.is_file():
        raise ChurnmlError(f"source file not found: {src}")
    df = (
        pd.read_parquet(src)
        if src.suffix == ".parquet"
        else pd.read_csv(src, dtype={"InvoiceNo": str, "StockCode": str})
    )
    missing = [c for c in SOURCE_COLUMNS if c not in df.columns]
    if missing:
        raise ChurnmlError(f"{src} lacks the columns {missing} (expected the UCI Online Retail layout)")
    return df


def clean_lines(lines: pd.DataFrame) -> tuple[pd.DataFrame, MappingReport]:
    """Typed, de-duplicated lines of identified customers, each classified as purchase or return.

    Adds ``account_id`` (CustomerID as text, ``17850.0`` -> ``"17850"``), ``ts``
    (InvoiceDate), ``day`` (its date), ``value`` (Quantity x UnitPrice, GBP) and
    ``kind``: ``purchase`` (an invoice not starting with ``C``, Quantity > 0 and
    UnitPrice > 0) or ``return`` (an invoice starting with ``C``). Other lines (zero
    prices, stock adjustments) and lines without CustomerID are dropped and counted.
    """
    rep = MappingReport(lines_in=len(lines))
    df = lines[list(SOURCE_COLUMNS)].copy()
    dup = df.duplicated(keep="first")
    rep.duplicate_lines = int(dup.sum())
    df = df[~dup]
    no_cust = df["CustomerID"].isna() | df["CustomerID"].astype("string").str.strip().eq("").fillna(False)
    rep.lines_without_customer = int(no_cust.sum())
    df = df[~no_cust].copy()
    cid = pd.to_numeric(df["CustomerID"], errors="coerce")
    if cid.isna().any():
        from churnml.errors import ChurnmlError

        raise ChurnmlError(f"{int(cid.isna().sum())} CustomerID values are not numbers; fix or blank them")
    df["account_id"] = cid.astype("int64").astype(str)
    df["InvoiceNo"] = df["InvoiceNo"].astype(str).str.strip()
    df["StockCode"] = df["StockCode"].astype(str).str.strip()
    df["ts"] = pd.to_datetime(df["InvoiceDate"]).astype("datetime64[us]")
    df["day"] = df["ts"].dt.normalize()
    df["Quantity"] = pd.to_numeric(df["Quantity"]).astype("float64")
    df["UnitPrice"] = pd.to_numeric(df["UnitPrice"]).astype("float64")
    df["value"] = df["Quantity"] * df["UnitPrice"]
    is_c = df["InvoiceNo"].str.upper().str.startswith("C")
    purchase = ~is_c & (df["Quantity"] > 0) & (df["UnitPrice"] > 0)
    df["kind"] = np.where(purchase, "purchase", np.where(is_c, "return", "other"))
    rep.purchase_lines = int(purchase.sum())
    rep.return_lines = int(is_c.sum())
    rep.other_lines_dropped = int((df["kind"] == "other").sum())
    df = df[df["kind"] != "other"]
    df = df.sort_values(["account_id", "ts", "InvoiceNo", "StockCode", "Quantity", "UnitPrice"], kind="stable")
    return df.reset_index(drop=True), rep


def _first_orders(purchases: pd.DataFrame) -> pd.DataFrame:
    """Per account: signup day, the first invoice's value and country."""
    inv = (
        purchases.groupby(["account_id", "InvoiceNo"], sort=False)
        .agg(ts=("ts", "min"), value=("value", "sum"), country=("Country", "first"))
        .reset_index()
        .sort_values(["account_id", "ts", "InvoiceNo"], kind="stable")
    )
    first = inv.groupby("account_id", sort=True).first()
    return pd.DataFrame(
        {
            "signup_date": first["ts"].dt.normalize(),
            "first_order_gbp": first["value"].round(2),
            "country": first["country"].astype(str),
        }
    )


def size_band(first_order_gbp: pd.Series) -> pd.Series:
    """The segment: the band of FIRST_ORDER_BANDS the first order's value falls in."""
    edges = [b for b, _ in FIRST_ORDER_BANDS]
    idx = np.searchsorted(np.asarray(edges[:-1]), first_order_gbp.to_numpy(dtype="float64"), side="right")
    return pd.Series(np.asarray([n for _, n in FIRST_ORDER_BANDS], dtype=object)[idx], index=first_order_gbp.index)


def subscriptions_from_purchases(
    daily_spend: pd.DataFrame, end: pd.Timestamp, inactive_days: int = INACTIVE_DAYS
) -> pd.DataFrame:
    """The MRR change log from each account's daily purchase value.

    ``daily_spend``: columns ``account_id``, ``day``, ``value`` (gross purchase value
    that day, > 0). A paying period starts on a purchase day that follows more than
    ``inactive_days`` days without a purchase (or on the first purchase). It ends with
    a churn row (``mrr`` 0) on last purchase day + ``inactive_days``, when no purchase
    came on the days after the last one up to and including that day, and only if that
    day is on or before ``end`` (the last observed day): an unobserved future is not churn.
    While paying, a row on the period's first day and on the first of every month
    carries ``mrr`` = value of purchases in ``[d - inactive_days + 1, d]`` x 30 /
    ``inactive_days``. That window always holds a purchase, so ``mrr`` > 0.

    Returns ``account_id``, ``effective_date``, ``mrr``, ``end_kind`` (``churned`` on
    churn rows, empty otherwise), sorted.
    """
    n = int(inactive_days)
    if n < 1:
        raise ValueError(f"inactive_days must be >= 1, got {inactive_days}")
    d = daily_spend.sort_values(["account_id", "day"], kind="stable").reset_index(drop=True)
    end = pd.Timestamp(end).normalize()
    d = d[d["day"] <= end]
    gap = d.groupby("account_id")["day"].diff()
    d = d.assign(period=(gap.isna() | (gap > n * _DAY)).groupby(d["account_id"]).cumsum())
    periods = d.groupby(["account_id", "period"]).agg(start=("day", "min"), last=("day", "max")).reset_index()
    periods["churn"] = periods["last"] + n * _DAY
    periods["churned"] = periods["churn"] <= end
    # Paying until the day before churn, or through `end` when churn is not (yet) observed.
    stop = periods["churn"].where(periods["churned"], end + _DAY)
    month_starts = [
        pd.date_range(s + pd.offsets.MonthBegin(1), e - _DAY, freq="MS") if e - _DAY > s else pd.DatetimeIndex([])
        for s, e in zip(periods["start"], stop)
    ]
    evals = (
        pd.concat(
            [
                periods[["account_id", "start"]].rename(columns={"start": "effective_date"}),
                pd.DataFrame(
                    {
                        "account_id": np.repeat(periods["account_id"].to_numpy(), [len(m) for m in month_starts]),
                        "effective_date": (
                            np.concatenate([m.to_numpy() for m in month_starts])
                            if month_starts
                            else np.array([], "datetime64[us]")
                        ),
                    }
                ),
            ],
            ignore_index=True,
        )
        .astype({"effective_date": "datetime64[us]"})
        .drop_duplicates()
        .reset_index(drop=True)
    )
    mrr = _trailing_value(evals, d, n) * 30.0 / n
    paying = evals.assign(mrr=mrr, end_kind=None)
    churn = periods.loc[periods["churned"], ["account_id", "churn"]].rename(columns={"churn": "effective_date"})
    churn = churn.assign(mrr=0.0, end_kind="churned")
    out = pd.concat([paying, churn], ignore_index=True).sort_values(["account_id", "effective_date"], kind="stable")
    return out.reset_index(drop=True)


def _trailing_value(evals: pd.DataFrame, daily: pd.DataFrame, n: int) -> np.ndarray:
    """Sum of ``daily.value`` per evaluation row over the days ``[d - n + 1, d]``."""
    m = evals.assign(row=np.arange(len(evals))).merge(daily[["account_id", "day", "value"]], on="account_id")
    m = m[(m["day"] <= m["effective_date"]) & (m["day"] > m["effective_date"] - n * _DAY)]
    s = m.groupby("row")["value"].sum()
    return s.reindex(np.arange(len(evals)), fill_value=0.0).to_numpy()


def _ticket_category(codes: pd.Series) -> str:
    """``product return`` when any line is goods, else the service kind of the lines."""
    kinds = {SERVICE_CODES.get(c, "goods") for c in codes}
    if "goods" in kinds:
        return "product return"
    return "credit: " + "+".join(sorted(kinds))


def map_lines(
    lines: pd.DataFrame, *, inactive_days: int = INACTIVE_DAYS, end=None, contract: str = "v1.1"
) -> tuple[dict[str, pd.DataFrame], MappingReport]:
    """The contract tables for the invoice lines; ``end`` (default: the last invoice day) is the last observed day.

    ``contract="v1"`` writes only v1 columns; ``"v1.1"`` adds ``subscriptions.end_kind``
    and the account attributes ``country`` and ``first_order_gbp`` (static: known on
    the signup day), which a v1 reader ignores.
    """
    if contract not in CONTRACT_VERSIONS:
        raise ValueError(f"contract must be one of {CONTRACT_VERSIONS}, got {contract!r}")
    if end is None:
        end = pd.to_datetime(lines["InvoiceDate"]).max()
    end = pd.Timestamp(end).normalize()
    df, rep = clean_lines(lines[pd.to_datetime(lines["InvoiceDate"]).dt.normalize() <= end])
    rep.lines_in = len(lines)
    buy = df[df["kind"] == "purchase"]
    ret = df[df["kind"] == "return"]
    first = _first_orders(buy)

    accounts = pd.DataFrame(
        {
            "account_id": first.index.astype(str),
            "name": "Customer " + first.index.astype(str),
            "segment": size_band(first["first_order_gbp"]).to_numpy(),
            "region": first["country"].to_numpy(),
            "signup_date": first["signup_date"].dt.strftime("%Y-%m-%d").to_numpy(),
        }
    )
    if contract == "v1.1":
        accounts["country"] = first["country"].to_numpy()
        accounts["first_order_gbp"] = first["first_order_gbp"].to_numpy()

    daily = (
        buy.groupby(["account_id", "day"], sort=True)
        .agg(value=("value", "sum"), orders=("InvoiceNo", "nunique"), lines=("InvoiceNo", "size"))
        .reset_index()
    )
    subs = subscriptions_from_purchases(daily[["account_id", "day", "value"]], end, inactive_days)
    subs["effective_date"] = subs["effective_date"].dt.strftime("%Y-%m-%d")
    if contract == "v1":
        subs = subs.drop(columns=["end_kind"])

    usage = pd.DataFrame(
        {
            "account_id": daily["account_id"],
            "date": daily["day"].dt.strftime("%Y-%m-%d"),
            "active_users": daily["orders"].astype("int64"),
            "events": daily["lines"].astype("int64"),
        }
    )

    known = set(accounts["account_id"])
    tk = (
        ret.groupby(["account_id", "InvoiceNo"], sort=False)
        .agg(opened=("ts", "min"), codes=("StockCode", _ticket_category), value=("value", "sum"))
        .reset_index()
    )
    orphan = ~tk["account_id"].isin(known)
    rep.customers_without_purchase = int(tk.loc[orphan, "account_id"].nunique())
    rep.tickets_of_customers_without_purchase = int(orphan.sum())
    tk = tk[~orphan].sort_values(["account_id", "opened", "InvoiceNo"], kind="stable")
    opened = tk["opened"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    tickets = pd.DataFrame(
        {
            "ticket_id": tk["InvoiceNo"].to_numpy(),
            "account_id": tk["account_id"].to_numpy(),
            "opened_at": opened.to_numpy(),
            "closed_at": opened.to_numpy(),  # a credit note is issued when the case is settled
            "priority": "normal",
            "category": tk["codes"].to_numpy(),
        }
    )
    dup_ticket = tickets["ticket_id"].duplicated(keep=False)
    if dup_ticket.any():
        from churnml.errors import ChurnmlError

        raise ChurnmlError(
            f"{int(dup_ticket.sum())} cancellation invoices name more than one customer, e.g. "
            f"{tickets.loc[dup_ticket, 'ticket_id'].head(3).tolist()}"
        )
    tables = {"accounts": accounts, "subscriptions": subs, "usage": usage, "tickets": tickets}
    tables = {k: v.reset_index(drop=True) for k, v in tables.items()}
    rep.counts = {k: len(v) for k, v in tables.items()}
    return tables, rep


def cut_tables(tables: dict[str, pd.DataFrame], as_of) -> dict[str, pd.DataFrame]:
    """The tables as known at the start of day ``as_of`` (the contract's point-in-time rules).

    Drops rows dated on or after ``as_of`` (subscriptions ``effective_date``, usage
    ``date``, tickets ``opened_at``, surveys ``responded_at``) and accounts that signed up
    on or after it; a ticket closed on or after ``as_of`` becomes open, a milestone
    completed on or after it becomes not reached.
    """
    t = pd.Timestamp(as_of).normalize()
    out = {}

    def before(s: pd.Series) -> pd.Series:
        return pd.to_datetime(s, format="ISO8601") < t

    for name, df in tables.items():
        if df is None:
            continue
        df = df.copy()
        if name == "accounts":
            df = df[before(df["signup_date"])]
        elif name == "subscriptions":
            df = df[before(df["effective_date"])]
        elif name == "usage":
            df = df[before(df["date"])]
        elif name == "tickets":
            df = df[before(df["opened_at"])]
            df.loc[df["closed_at"].notna() & ~before(df["closed_at"]), "closed_at"] = None
        elif name == "surveys":
            df = df[before(df["responded_at"])]
        elif name == "milestones":
            df.loc[df["completed_at"].notna() & ~before(df["completed_at"]), "completed_at"] = None
        out[name] = df.reset_index(drop=True)
    if "accounts" in out:
        known = set(out["accounts"]["account_id"])
        for name in out:
            if name != "accounts":
                out[name] = out[name][out[name]["account_id"].isin(known)].reset_index(drop=True)
    return out


def write_tables(tables: dict[str, pd.DataFrame], out: str | Path, fmt: str = "parquet") -> None:
    """Write the tables atomically into ``out``, validated before they replace it.

    Raises :class:`churnml.errors.ContractError` (and writes nothing) when the tables
    break the contract.
    """
    from churnml.dataset import Dataset
    from churnml.io import write_dataset

    with Dataset.from_frames(tables) as ds:
        ds.require_valid(where="the mapped tables")
    write_dataset(tables, out, fmt=fmt)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--src", required=True, type=Path, help="invoice lines (Parquet or CSV, UCI Online Retail columns)")
    p.add_argument("--out", required=True, type=Path, help="folder for the contract tables (replaced atomically)")
    p.add_argument("--format", dest="fmt", choices=("parquet", "csv"), default="parquet")
    p.add_argument(
        "--inactive-days",
        type=int,
        default=INACTIVE_DAYS,
        help="days without a purchase after which a customer counts as churned; also the MRR window "
        f"[default: {INACTIVE_DAYS}]",
    )
    p.add_argument(
        "--contract",
        choices=CONTRACT_VERSIONS,
        default="v1.1",
        help="v1 writes only v1 columns; v1.1 adds subscriptions.end_kind and account attributes "
        "(country, first_order_gbp) [default: v1.1]",
    )
    p.add_argument(
        "--as-of",
        default=None,
        metavar="YYYY-MM-DD",
        help="write the tables as known at the start of this day (rows dated on or after it dropped)",
    )
    a = p.parse_args(argv)
    if a.inactive_days < 1:
        p.error("--inactive-days must be >= 1")
    from churnml.errors import ChurnmlError

    try:
        lines = read_lines(a.src)
        tables, rep = map_lines(lines, inactive_days=a.inactive_days, contract=a.contract)
        if a.as_of:
            tables = cut_tables(tables, a.as_of)
            rep.counts = {k: len(v) for k, v in tables.items()}
        write_tables(tables, a.out, a.fmt)
    except ChurnmlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(rep.format())
    print(f"wrote {', '.join(tables)} ({a.fmt}, contract {a.contract}) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
