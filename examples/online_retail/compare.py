"""The reference question of the Online Retail data README, reproduced, and churnml's scores judged on it.

Question (from /work/shared/data/online_retail/README.md): as of a cutoff ``t``
(2011-09-01), among customers with a purchase in the 365 days before ``t``, which
will make **no purchase in the 90 days from t on**? Features use only lines dated
before ``t``. A *purchase* is an invoice line of an identified customer on an
invoice not starting with ``C``.

* :func:`reference_baselines` computes the README's three baselines: recency alone,
  a logistic regression and LightGBM on hand-made RFM-style features
  (:func:`rfm_frame`), both trained on earlier monthly cutoffs whose 90-day label
  window closed before ``t`` (time-based split).
* :func:`evaluate_scores` takes a churnml scores table as of ``t`` (``account_id``
  and a risk column, ``churn_probability`` by default) and reports ROC-AUC and PR-AUC
  on the same population and label: on the accounts churnml scored, beside the
  baselines on exactly those accounts, and how many of the population it scored.

Usage::

    python examples/online_retail/compare.py --src PARQUET [--scores scores.parquet] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CUTOFF = "2011-09-01"
LOOKBACK_DAYS = 365
HORIZON_DAYS = 90
# Training cutoffs of the baselines: month starts from 90 days after the data begins
# (three months of history to describe a customer) whose label window closes by the cutoff.
WARMUP_DAYS = 90
RFM_FEATURES = (
    "recency_days",
    "tenure_days",
    "invoices_365d",
    "spend_365d",
    "lines_365d",
    "products_365d",
    "avg_invoice_value",
    "invoices_30d",
    "invoices_90d",
    "spend_30d",
    "spend_90d",
    "returns_365d",
    "returned_value_365d",
)
# LightGBM on ~10,000 training rows: small trees, slow learning, large leaves.
LGBM_PARAMS = {"n_estimators": 300, "learning_rate": 0.02, "num_leaves": 7, "min_child_samples": 100}
_DAY = pd.Timedelta(days=1)


def identified_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Lines with a CustomerID, exact duplicates dropped, with ``account_id``, ``value`` and ``is_return``."""
    df = lines.drop_duplicates()
    df = df[df["CustomerID"].notna()].copy()
    df["account_id"] = pd.to_numeric(df["CustomerID"]).astype("int64").astype(str)
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df["value"] = df["Quantity"] * df["UnitPrice"]
    df["is_return"] = df["InvoiceNo"].astype(str).str.upper().str.startswith("C")
    return df


def rfm_frame(
    lines: pd.DataFrame, cutoff, *, lookback_days: int = LOOKBACK_DAYS, horizon_days: int = HORIZON_DAYS
) -> pd.DataFrame:
    """Population, RFM-style features and label as of ``cutoff`` (``lines`` from :func:`identified_lines`).

    Population: accounts with a purchase in ``[t - lookback, t)``. Features, all from
    lines in that window: ``recency_days`` (t - last purchase, fractional days),
    ``tenure_days`` (t - first purchase), invoices, spend, lines and distinct products
    over 365 days, average invoice value, invoices and spend over 30 and 90 days,
    returns (``C`` invoices) and returned value over 365 days. Label ``churned``: no
    purchase in ``[t, t + horizon)``; missing (NaN) when the window runs past the data.
    """
    t = pd.Timestamp(cutoff)
    hist = lines[(lines["InvoiceDate"] < t) & (lines["InvoiceDate"] >= t - lookback_days * _DAY)]
    buy = hist[~hist["is_return"]]
    g = buy.groupby("account_id")
    f = pd.DataFrame(
        {
            "recency_days": (t - g["InvoiceDate"].max()) / _DAY,
            "tenure_days": (t - g["InvoiceDate"].min()) / _DAY,
            "invoices_365d": g["InvoiceNo"].nunique().astype(float),
            "spend_365d": g["value"].sum(),
            "lines_365d": g.size().astype(float),
            "products_365d": g["StockCode"].nunique().astype(float),
        }
    )
    f["avg_invoice_value"] = f["spend_365d"] / f["invoices_365d"]
    for w in (30, 90):
        b = buy[buy["InvoiceDate"] >= t - w * _DAY].groupby("account_id")
        f[f"invoices_{w}d"] = b["InvoiceNo"].nunique().reindex(f.index).fillna(0).astype(float)
        f[f"spend_{w}d"] = b["value"].sum().reindex(f.index).fillna(0)
    r = hist[hist["is_return"]].groupby("account_id")
    f["returns_365d"] = r["InvoiceNo"].nunique().reindex(f.index).fillna(0).astype(float)
    f["returned_value_365d"] = (-r["value"].sum()).reindex(f.index).fillna(0)
    end = lines["InvoiceDate"].max().normalize() + _DAY  # the data covers days before this
    if t + horizon_days * _DAY > end:
        f["churned"] = np.nan
    else:
        in_window = (lines["InvoiceDate"] >= t) & (lines["InvoiceDate"] < t + horizon_days * _DAY)
        after = lines[~lines["is_return"] & in_window]
        f["churned"] = (~f.index.isin(set(after["account_id"]))).astype(float)
    f.index.name = "account_id"
    f.insert(0, "cutoff", t)
    return f.sort_index()


def training_cutoffs(lines: pd.DataFrame, cutoff, *, horizon_days: int = HORIZON_DAYS) -> list[pd.Timestamp]:
    """Month starts from WARMUP_DAYS after the first line to the last whose label window ends by ``cutoff``."""
    t = pd.Timestamp(cutoff)
    first = lines["InvoiceDate"].min().normalize() + WARMUP_DAYS * _DAY
    return [c for c in pd.date_range(first + pd.offsets.MonthBegin(0), t, freq="MS") if c + horizon_days * _DAY <= t]


def _log_features(X: pd.DataFrame) -> np.ndarray:
    return np.log1p(X[list(RFM_FEATURES)].clip(lower=0).to_numpy(dtype="float64"))


def metrics(y, score) -> dict:
    """ROC-AUC, PR-AUC (average precision), count and churn rate."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype="float64")
    return {
        "n": len(y),
        "churn_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
    }


@dataclass
class Reference:
    """The test frame (population, features, label) with each baseline's risk score."""

    test: pd.DataFrame  # index account_id; RFM_FEATURES, churned, and one column per baseline
    baselines: tuple[str, ...]
    train_cutoffs: list[pd.Timestamp]
    n_train_rows: int

    def table(self, accounts=None) -> dict[str, dict]:
        """Metrics of every baseline, on ``accounts`` (default: the whole population)."""
        d = self.test if accounts is None else self.test.loc[self.test.index.intersection(accounts)]
        return {b: metrics(d["churned"], d[b]) for b in self.baselines}


def reference_baselines(lines: pd.DataFrame, cutoff=CUTOFF, *, seed: int = 0) -> Reference:
    """The README's baselines, trained on earlier cutoffs and scored as of ``cutoff``.

    ``recency``: days since the last purchase (higher = riskier). ``logistic``: logistic
    regression on log1p of RFM_FEATURES, standardised. ``lightgbm``: LGBM_PARAMS on
    RFM_FEATURES; ``lightgbm_defaults``: the library's default parameters (a
    sensitivity check). All are trained on every cutoff of :func:`training_cutoffs`.
    """
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = identified_lines(lines)
    cuts = training_cutoffs(df, cutoff)
    if not cuts:
        from churnml.errors import ChurnmlError

        raise ChurnmlError(
            f"no training cutoff: the data must start at least {WARMUP_DAYS + HORIZON_DAYS} days "
            f"before {pd.Timestamp(cutoff):%Y-%m-%d}"
        )
    train = pd.concat([rfm_frame(df, c) for c in cuts])
    test = rfm_frame(df, cutoff)
    if test["churned"].isna().any():
        from churnml.errors import ChurnmlError

        raise ChurnmlError(f"the data ends before the {HORIZON_DAYS}-day label window of {cutoff} closes")
    y = train["churned"].astype(int).to_numpy()
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(_log_features(train), y)
    test["recency"] = test["recency_days"]
    test["logistic"] = lr.predict_proba(_log_features(test))[:, 1]
    X, Xt = train[list(RFM_FEATURES)], test[list(RFM_FEATURES)]
    for name, params in (("lightgbm", LGBM_PARAMS), ("lightgbm_defaults", {})):
        m = lgb.LGBMClassifier(verbose=-1, random_state=seed, n_jobs=2, **params).fit(X, y)
        test[name] = m.predict_proba(Xt)[:, 1]
    return Reference(test, ("recency", "logistic", "lightgbm", "lightgbm_defaults"), cuts, len(train))


def read_scores(path: str | Path, risk_column: str = "churn_probability") -> pd.Series:
    """A scores file (Parquet or CSV) as a Series of risk indexed by account_id (text)."""
    from churnml.errors import ChurnmlError

    path = Path(path)
    if not path.is_file():
        raise ChurnmlError(f"scores file not found: {path}")
    s = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"account_id": str})
    for c in ("account_id", risk_column):
        if c not in s.columns:
            raise ChurnmlError(f"{path} has no column {c!r} (columns: {', '.join(map(str, s.columns))})")
    if s["account_id"].duplicated().any():
        raise ChurnmlError(f"{path}: account_id is not unique")
    return pd.Series(s[risk_column].astype("float64").to_numpy(), index=s["account_id"].astype(str), name=risk_column)


def evaluate_scores(ref: Reference, risk: pd.Series) -> dict:
    """churnml's risk judged on the reference question.

    Returns counts (population, scored, scored in the population, scored outside it,
    not scored), the metrics of ``risk`` on the scored part of the population, the
    baselines on exactly those accounts, and the churn rate of the population churnml
    did not score.
    """
    pop = ref.test
    scored = risk.index.intersection(pop.index)
    missing = risk.loc[scored].isna()
    if missing.any():
        from churnml.errors import ChurnmlError

        raise ChurnmlError(f"{int(missing.sum())} scored accounts have no {risk.name}")
    unscored = pop.index.difference(scored)
    on = pop.loc[scored]
    # Already lapsed by the mapping's rule (no MRR): ranked above every scored account.
    full = pd.concat([risk.loc[scored].rank(pct=True), pd.Series(2.0, index=unscored)]).loc[pop.index]
    out = {
        "population": len(pop),
        "scored_in_population": len(scored),
        "scored_outside_population": len(risk.index.difference(pop.index)),
        "not_scored": len(unscored),
        "not_scored_churn_rate": float(pop.loc[unscored, "churned"].mean()) if len(unscored) else None,
        "churnml": metrics(on["churned"], risk.loc[scored]),
        "baselines_on_scored": ref.table(scored),
        "churnml_lapsed_first": metrics(pop["churned"], full),
    }
    return out


def indicator_diagnostic(
    ref: Reference, lines: pd.DataFrame, features: pd.DataFrame, labels: pd.DataFrame | None = None, *, seed: int = 0
) -> dict[str, dict]:
    """Why churnml scores differ: churnml's indicators in a plain LightGBM (LGBM_PARAMS), outside churnml's pipeline.

    ``features``: a ``churnml features`` table (``account_id``, ``cutoff``, indicators)
    holding the reference cutoff and the baselines' training cutoffs. Trained on the
    training cutoffs (:func:`training_cutoffs`) with (a) the reference label and,
    when ``labels`` (a ``churnml labels`` table) is given, (b) churnml's own churn label
    (``churned_{H}d``, eligible rows, cutoffs whose window closes by the reference
    cutoff); both scored on the reference cutoff's rows and judged on the reference label.
    """
    import lightgbm as lgb

    from churnml.errors import ChurnmlError

    t = ref.test["cutoff"].iloc[0]
    X = features.copy()
    X["account_id"] = X["account_id"].astype(str)
    X["cutoff"] = pd.to_datetime(X["cutoff"])
    names = [c for c in X.columns if c not in ("account_id", "cutoff")]
    for c in names:
        if not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype("category")  # one set of levels for training and test rows
    cuts = [c for c in ref.train_cutoffs if c in set(X["cutoff"])]
    if not cuts or t not in set(X["cutoff"]):
        raise ChurnmlError(
            f"the features table needs the cutoffs {t:%Y-%m-%d} and "
            f"{', '.join(f'{c:%Y-%m-%d}' for c in ref.train_cutoffs)}"
        )
    test = X[X["cutoff"] == t].merge(ref.test[["churned"]].reset_index(), on="account_id")
    df = identified_lines(lines)
    ref_labels = pd.concat([rfm_frame(df, c)[["cutoff", "churned"]] for c in cuts]).reset_index()
    trains = {"churnml indicators, reference label": X.merge(ref_labels, on=["account_id", "cutoff"])}
    if labels is not None:
        col = next((c for c in labels.columns if c.startswith("churned_") and c.endswith("d")), None)
        if col is None:
            raise ChurnmlError("the labels table has no churned_<H>d column")
        h = int(col[len("churned_") : -1])
        y = labels[labels["eligible"].astype(bool)].copy()
        y["account_id"] = y["account_id"].astype(str)
        y["cutoff"] = pd.to_datetime(y["cutoff"])
        y = y[y["cutoff"] + h * _DAY <= t]
        y = y.assign(churned=y[col].astype(int))[["account_id", "cutoff", "churned"]]
        trains[f"churnml indicators, churnml label ({h} days)"] = X.merge(y, on=["account_id", "cutoff"])
    out = {}
    for name, tr in trains.items():
        m = lgb.LGBMClassifier(verbose=-1, random_state=seed, n_jobs=2, **LGBM_PARAMS)
        m.fit(tr[names], tr["churned"].astype(int))
        out[name] = metrics(test["churned"], m.predict_proba(test[names])[:, 1])
        out[name]["train_rows"] = len(tr)
    return out


def _fmt_table(rows: dict[str, dict]) -> str:
    lines = ["| model | accounts | churn rate | ROC-AUC | PR-AUC |", "|---|---:|---:|---:|---:|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['n']:,} | {m['churn_rate']:.1%} | {m['roc_auc']:.3f} | {m['pr_auc']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", required=True, type=Path, help="the invoice lines (Parquet)")
    p.add_argument("--cutoff", default=CUTOFF, help=f"the as-of date of the question [default: {CUTOFF}]")
    p.add_argument("--scores", type=Path, default=None, help="a churnml scores table as of the cutoff (Parquet/CSV)")
    p.add_argument("--risk-column", default="churn_probability", help="risk column of --scores")
    p.add_argument(
        "--features",
        type=Path,
        default=None,
        help="a `churnml features` table with the cutoff and the baselines' training cutoffs: adds the "
        "indicator diagnostic",
    )
    p.add_argument("--labels", type=Path, default=None, help="with --features: a `churnml labels` table")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    a = p.parse_args(argv)
    from churnml.errors import ChurnmlError

    try:
        lines = pd.read_parquet(a.src) if a.src.suffix == ".parquet" else pd.read_csv(a.src)
        ref = reference_baselines(lines, a.cutoff)
        result = {
            "cutoff": a.cutoff,
            "train_cutoffs": [f"{c:%Y-%m-%d}" for c in ref.train_cutoffs],
            "train_rows": ref.n_train_rows,
            "reference": ref.table(),
        }
        print(
            f"reference question as of {a.cutoff}: baselines trained on {ref.n_train_rows:,} rows of cutoffs "
            f"{', '.join(result['train_cutoffs'])}"
        )
        print(_fmt_table(result["reference"]))
        if a.scores is not None:
            ev = evaluate_scores(ref, read_scores(a.scores, a.risk_column))
            result["churnml"] = ev
            rate = ev["not_scored_churn_rate"]
            print(
                f"\nchurnml scored {ev['scored_in_population']:,} of the {ev['population']:,} accounts of the "
                f"population ({ev['scored_in_population'] / ev['population']:.0%}); {ev['not_scored']:,} not scored"
                + (f" (their churn rate {rate:.1%})" if rate is not None else "")
                + f"; {ev['scored_outside_population']:,} scored accounts are outside the population"
            )
            print(
                _fmt_table(
                    {
                        "churnml": ev["churnml"],
                        **{f"{k} (same accounts)": v for k, v in ev["baselines_on_scored"].items()},
                    }
                )
            )
            print("\nwhole population, accounts churnml did not score (already lapsed) ranked first:")
            print(_fmt_table({"churnml, lapsed first": ev["churnml_lapsed_first"]}))
        if a.features is not None:
            diag = indicator_diagnostic(
                ref, lines, pd.read_parquet(a.features), pd.read_parquet(a.labels) if a.labels else None
            )
            result["diagnostic"] = diag
            print("\ndiagnostic (outside churnml's pipeline): plain LightGBM on churnml's indicators")
            print(_fmt_table(diag))
    except ChurnmlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
