"""Benchmark: the reasons engine on real model output, and the figures of issue 11's "done means".

For each seed: generate a base, build training data, fit the final-model recipe (no MLflow),
score every paying account as of the day after the data ends, then run
:mod:`churnml.scoring.reasons` on the churn points (TreeSHAP in probability points):

* timing split: share of high-risk accounts whose strongest raw driver is timing (what
  explanations showed before the split) and whose top reason is (the engine: must be 0);
* words: share of risk-raising reasons quoting a value on the healthy side of their
  comparison, for the engine and, as the "before" yardstick, for the segment-median drivers
  explanations showed before the engine (issue 11; no longer in churnml, rebuilt here by
  :func:`segment_median_drivers`);
* plays: plays under the threshold, plays twice on one account, contradicting pairs;
* what changed: the score a month earlier with the same model, attributed from the ledger
  columns (top ``--ledger-k`` reasons) against the exact attribution from all points;
* how to lower it: accounts at high risk with a move, predict calls, seconds;
* seconds per step and a few accounts' explanations in full.

Usage: ``python benchmarks/bench_reasons.py [--seeds 7 11] [--accounts 3000] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def segment_median_drivers(points: pd.DataFrame, X: pd.DataFrame, defs: dict, top: int = 3) -> pd.DataFrame:
    """The drivers explanations gave before the reasons engine: per account, the ``top`` indicators
    with the largest raw points raising the probability (any indicator, timing included), each
    compared with the median of the account's segment. Only the risk-raising numeric ones are
    returned (account_id, feature, value, segment_median, points): what the "before" figure
    checks with :func:`churnml.scoring.reasons.disagrees`."""
    from churnml.scoring.reasons import select_drivers

    num = [c for c in X.columns if c in defs and defs[c].kind != "categorical"]
    seg = X["segment"].astype("object").fillna("(none)") if "segment" in X else pd.Series("(none)", X.index)
    medians = X[num].groupby(seg.to_numpy()).median()
    cols = list(points.columns)
    P = points.to_numpy()
    I, J, _ = select_drivers(P, top)
    M = np.vstack([medians.reindex(columns=cols).to_numpy(dtype="float64"), np.full((1, len(cols)), np.nan)])
    seg_row = pd.Index(medians.index).get_indexer(pd.Index(X["segment"].to_numpy()))  # a missing segment: no median
    seg_row = np.where(seg_row < 0, len(M) - 1, seg_row)
    feature = np.array(cols, dtype=object)[J]
    keep = (P[I, J] > 0) & np.array([defs[f].kind == "numeric" for f in feature], dtype=bool)
    I, J, feature = I[keep], J[keep], feature[keep]
    value = np.full(len(I), np.nan)
    for c in pd.unique(feature):
        sel = feature == c
        value[sel] = X[c].to_numpy(dtype="float64")[I[sel]]
    return pd.DataFrame(
        {
            "account_id": X.index.to_numpy(dtype=object)[I],
            "feature": feature,
            "value": value,
            "segment_median": M[seg_row[I], J],
            "points": P[I, J],
        }
    )


def run_seed(seed: int, accounts: int, ledger_k: int, healthy_from: str, show: int) -> dict:
    from churnml.dataset import Dataset
    from churnml.features import build_features, indicators_for
    from churnml.generate import GeneratorConfig, generate
    from churnml.io.artifacts import read_playbook
    from churnml.modeling.recipe import RecipeSpec, fit_final_model
    from churnml.modeling.training import training_data
    from churnml.scoring import reasons as R

    t = {}
    t0 = time.perf_counter()
    ds = Dataset.from_frames(generate(GeneratorConfig(accounts=accounts, seed=seed)))
    td = training_data(ds, cutoffs="monthly", horizon_days=90, uplift=0.1)
    model, _, cal = fit_final_model(td, RecipeSpec(seed=1), calibration_cutoffs=3)
    t["train"] = time.perf_counter() - t0
    as_of = ds.last_date() + pd.Timedelta(days=1)
    prev_as_of, past_as_of = as_of - pd.Timedelta(days=30), as_of - pd.Timedelta(days=90)
    F = build_features(ds, [as_of, prev_as_of, past_as_of])
    at = lambda d: F.xs(d, level="cutoff")  # noqa: E731
    X, Xprev, Xpast = at(as_of), at(prev_as_of), at(past_as_of)
    defs = {i.name: i for i in indicators_for(ds.context())}
    book = read_playbook(None)
    predict = lambda Xm: model.predict_target(Xm, "churn")  # noqa: E731

    t0 = time.perf_counter()
    points, p, p0 = model.explain_target(X[model.features], "churn")
    t["treeshap_churn"] = time.perf_counter() - t0
    high = p >= 0.3
    ids = X.index.to_numpy(dtype=object)

    t0 = time.perf_counter()
    comp = R.components(points, defs)
    if healthy_from == "labels":  # accounts of the final model's calibration cutoffs that did not churn
        healthy = R.healthy_levels(cal, cal[td.label_cols["churn"]].astype(int).to_numpy() == 0, defs)
    else:  # the lower half of each segment by risk apart from timing
        healthy = R.healthy_levels(X, R.lower_risk_half(p - comp["timing"].to_numpy(), X), defs)
    churn = R.select_reasons(points, X, defs, healthy, past=Xpast, top=3)
    t["reasons_churn"] = time.perf_counter() - t0
    assert np.allclose(p0 + comp.sum(axis=1).to_numpy(), p, atol=1e-9), "components must add up to p"

    p_exp = model.predict_target(X, "expansion")
    cut = np.sort(p_exp)[::-1][int(np.ceil(0.3 * len(p_exp))) - 1]
    exp_rows = np.flatnonzero(p_exp >= cut)
    epoints, _, _ = model.explain_target(X.iloc[exp_rows][model.features], "expansion")
    expansion = R.select_reasons(epoints, X.iloc[exp_rows], defs, healthy, past=Xpast, target="expansion", top=3)
    t0 = time.perf_counter()
    flags = {"at_risk": pd.Series(high, index=ids), "expansion_candidate": pd.Series(p_exp >= cut, index=ids)}
    probs = pd.DataFrame({"churn_probability": p, "expansion_probability": p_exp}, index=ids)
    played = R.assign_plays(
        pd.concat([churn, expansion], ignore_index=True), X, book, min_points=1.0, flags=flags, probabilities=probs
    )
    t["plays"] = time.perf_counter() - t0
    metrics = R.reason_metrics(played, defs, high_risk=ids[high], min_points=1.0, points=points)
    pairs = played[played["play_id"] != ""].groupby("account_id")["play_id"].agg(set)
    metrics["accounts_with_right_size_and_more_seats"] = int(
        pairs.map(lambda s: {"seat_right_sizing", "seat_expansion"} <= s).sum()
    )

    # the drivers shown before the engine, for the before-figure
    up = segment_median_drivers(points, X, defs)
    dis_old = np.zeros(len(up), dtype=bool)
    for f in up["feature"].unique():
        sel = (up["feature"] == f).to_numpy()
        dis_old[sel] = R.disagrees(defs[f], up.loc[sel, "value"], up.loc[sel, "segment_median"], up.loc[sel, "points"])
    metrics["before_segment_median_drivers_disagreeing_share"] = float(dis_old.mean())
    cand = [c for c in points.columns if R.is_reason(c, defs)]

    # what changed: a score a month earlier, same model
    t0 = time.perf_counter()
    prev_points, _, prev_p0 = model.explain_target(Xprev[model.features], "churn")
    prev_rows = R.ledger_columns(prev_points, Xprev, prev_p0, defs, k=ledger_k)
    cur_rows = R.ledger_columns(points, X, p0, defs, k=ledger_k)
    texts = R.what_changed(prev_rows, cur_rows, defs, previous_date=prev_as_of)
    t["what_changed"] = time.perf_counter() - t0
    exact_prev = R.ledger_columns(prev_points, Xprev, prev_p0, defs, k=len(cand))
    exact_cur = R.ledger_columns(points, X, p0, defs, k=len(cand))
    a = R.attribute_change(prev_rows, cur_rows, defs)
    b = R.attribute_change(exact_prev, exact_cur, defs)
    a, b = a[a["item"] == "reason"], b[b["item"] == "reason"]
    m = a.merge(b, on=["account_id", "feature"], suffixes=("_k", "_exact"))
    err = (m["points_k"] - m["points_exact"]).abs()
    metrics["what_changed_accounts"] = int((texts != "first score").sum())
    metrics["what_changed_attribution_error_max_points"] = float(err.max() * 100)
    metrics["what_changed_attribution_error_p99_points"] = float(err.quantile(0.99) * 100)

    # how to lower it
    calls = []
    counted = lambda Xm: (calls.append(len(Xm)), predict(Xm))[1]  # noqa: E731
    t0 = time.perf_counter()
    lower = R.how_to_lower(X, churn, healthy, counted, p, defs=defs, at_risk=high, past=Xpast)
    t["how_to_lower"] = time.perf_counter() - t0
    metrics["high_risk_with_a_move"] = int(lower["account_id"].nunique())
    metrics["how_to_lower_predict_calls"] = len(calls)
    metrics["how_to_lower_median_cut_points"] = (
        float(lower.loc[lower["rank"] == 1, "cut"].median() * 100) if len(lower) else float("nan")
    )
    top_feature = churn[(churn["rank"] == 1) & (churn["direction"] == "raises")].set_index("account_id")["feature"]
    metrics["high_risk_top_reason_features"] = top_feature.reindex(ids[high]).value_counts().head(6).to_dict()
    metrics["high_risk_top_play"] = (
        played[(played["rank"] == 1) & (played["target"] == "churn")]
        .set_index("account_id")["play_id"]
        .reindex(ids[high])
        .value_counts()
        .head(6)
        .to_dict()
    )

    # a few stories
    lines = R.timing_lines(X, as_of)
    summary = R.lower_summary(lower)
    stories = []
    order = np.argsort(-p)
    for i in list(order[:show]) + list(order[len(order) // 3 : len(order) // 3 + 1]):
        a_id = ids[i]
        rs = played[(played["account_id"] == a_id)].sort_values(["target", "rank"])
        stories.append(
            "\n".join(
                [
                    f"{a_id} ({X['segment'].iloc[i]}): churn {p[i]:.0%}; points by component: "
                    + ", ".join(f"{c} {comp[c].iloc[i] * 100:+.1f}" for c in R.COMPONENTS),
                    f"  timing: {lines[i]}",
                    *(
                        f"  {r.target:9} {r.points * 100:+5.1f} {r.text}"
                        + (f"\n{'':18}play: {r.play}" if r.play else "")
                        for r in rs.itertuples()
                    ),
                    f"  what changed: {texts.loc[a_id]}",
                    f"  how to lower it: {summary.get(a_id, '-')}",
                ]
            )
        )
    return {
        "seed": seed,
        "accounts_scored": len(X),
        "as_of": f"{as_of:%Y-%m-%d}",
        "healthy_from": healthy_from,
        "metrics": metrics,
        "seconds": {k: round(v, 2) for k, v in t.items()},
        "stories": stories,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11], help="generator seeds (default 7 11)")
    ap.add_argument("--accounts", type=int, default=3000, help="accounts per generated base (default 3,000)")
    ap.add_argument("--ledger-k", type=int, default=15, help="reason indicators kept per ledger row (default 15)")
    ap.add_argument(
        "--healthy",
        choices=["lower_half", "labels"],
        default="lower_half",
        help="healthy reference: the lower-risk half of each segment, or training non-churners",
    )
    ap.add_argument("--show", type=int, default=2, help="stories printed per seed (the riskiest accounts)")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/reasons.json"), help="where to write results")
    args = ap.parse_args()
    results = []
    for seed in args.seeds:
        r = run_seed(seed, args.accounts, args.ledger_k, args.healthy, args.show)
        results.append(r)
        print(f"--- seed {seed}: {r['accounts_scored']:,} accounts as of {r['as_of']}, healthy from {args.healthy}")
        for k, v in r["metrics"].items():
            print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
        print("  seconds:", r["seconds"])
        print("\n".join(r["stories"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
