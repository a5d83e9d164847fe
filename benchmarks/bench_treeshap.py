"""Benchmark: tabulated TreeSHAP (``TabulatedTreeShap``) against LightGBM's prediction and TreeSHAP.

For each tree size (``--leaves``, e.g. 7 15 31) it trains a churnml-like binary model
(churnml's default LightGBM parameters with that many leaves; 60 features: 56 numeric of
which 12 NaN-heavy and 8 zero-heavy counts, 4 categoricals coded as floats with missing
codes; ``--trees`` rounds, no early stopping) on ``--rows`` rows and times on another
``--rows`` rows, each best of ``--repeat`` runs:

* ``lgb_predict``   ``booster.predict(X)`` -- plain prediction, the baseline of every ratio;
* ``lgb_contrib``   ``booster.predict(X, pred_contrib=True)`` -- LightGBM's TreeSHAP;
* ``tab_raw``       ``TabulatedTreeShap.predict_raw(X)``;
* ``tab_contrib``   ``TabulatedTreeShap.contributions(X)`` (raw score comes with it);
* ``tab_build``     ``TabulatedTreeShap.from_booster(booster)`` (once per loaded model).

It checks that the tabulated numbers equal LightGBM's (max absolute difference, log-odds)
and prints the ratios to ``lgb_predict``. Trees with more than ``--max-nodes`` internal nodes
are cut into groups of leaves (several tables per tree); trees deeper than that fall back to
LightGBM's TreeSHAP. ``--threads`` applies to LightGBM and to the tables alike (default: all
cores for both); on a shared machine ``--threads 1`` gives steadier ratios.

Usage: ``python benchmarks/bench_treeshap.py [--rows 20000] [--trees 300] [--leaves 7 15 31]
[--max-nodes 8] [--repeat 5] [--threads N] [--out outputs/bench/treeshap.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DEPTH = {3: 2, 7: 3, 11: 4, 15: 4, 31: 6, 63: 6}


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def churnml_like(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features (rows, 60) and a churn-like label: NaN-heavy ratios, zero-heavy counts, 4 categoricals."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 60))
    for j in range(12):
        X[rng.random(rows) < rng.uniform(0.3, 0.9), j] = np.nan
    for j in range(12, 20):
        X[:, j] = rng.poisson(0.7, rows)
    cats = [56, 57, 58, 59]
    for j, levels in zip(cats, (3, 5, 8, 12)):
        X[:, j] = rng.integers(0, levels, rows)
    X[rng.random(rows) < 0.1, 59] = np.nan
    w = rng.normal(size=56) * (rng.random(56) < 0.4)
    z = (
        np.nan_to_num(X[:, :56], nan=-1.0) @ w * 0.3
        + 0.8 * np.isnan(X[:, 3])
        - 0.5 * X[:, 12]
        + 0.4 * np.sin(X[:, 25] * X[:, 26])
        + (X[:, 57] == 2)
        - 0.4 * (X[:, 58] > 4)
        + rng.normal(size=rows)
    )
    return X, (z > np.quantile(z, 0.8)).astype(int), cats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20000, help="rows to explain (and to train on; default 20,000)")
    ap.add_argument("--trees", type=int, default=300, help="boosting rounds (default 300)")
    ap.add_argument("--leaves", type=int, nargs="+", default=[7, 15, 31], help="tree sizes (default 7 15 31)")
    ap.add_argument("--max-nodes", type=int, default=8, help="most pattern bits per table (default 8)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best counts (default 5)")
    ap.add_argument("--threads", type=int, default=None, help="threads for LightGBM and the tables (default all)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/treeshap.json"), help="where to write results")
    args = ap.parse_args()

    import lightgbm as lgb

    from churnml.modeling.params import DEFAULT_PARAMS
    from churnml.modeling.treeshap import TabulatedTreeShap

    threads = args.threads or os.cpu_count() or 1
    X_fit, y_fit, cats = churnml_like(args.rows, args.seed)
    X, _, _ = churnml_like(args.rows, args.seed + 1)
    results = []
    for leaves in args.leaves:
        params = {
            **DEFAULT_PARAMS,
            "num_leaves": leaves,
            "max_depth": DEPTH.get(leaves, -1),
            "seed": args.seed,
            "num_threads": threads,
            "verbose": -1,
            "deterministic": True,
            "force_row_wise": True,
        }
        booster = lgb.train(params, lgb.Dataset(X_fit, y_fit, categorical_feature=cats), num_boost_round=args.trees)
        ts = TabulatedTreeShap.from_booster(booster, max_nodes=args.max_nodes, n_threads=threads)
        raw, phi = ts.raw_and_contributions(X)
        err_raw = float(np.abs(raw - booster.predict(X, raw_score=True, num_threads=threads)).max())
        err_phi = float(np.abs(phi - booster.predict(X, pred_contrib=True, num_threads=threads)).max())
        sec = {
            "lgb_predict": _best(lambda: booster.predict(X, num_threads=threads), args.repeat),
            "lgb_contrib": _best(lambda: booster.predict(X, pred_contrib=True, num_threads=threads), args.repeat),
            "tab_raw": _best(lambda: ts.predict_raw(X), args.repeat),
            "tab_contrib": _best(lambda: ts.contributions(X), args.repeat),
            "tab_build": _best(lambda: TabulatedTreeShap.from_booster(booster, max_nodes=args.max_nodes), 3),
        }
        leaves_per_tree = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
        res = {
            "leaves": leaves,
            "max_depth": params["max_depth"],
            "trees": booster.num_trees(),
            "mean_leaves": float(np.mean(leaves_per_tree)),
            "tabulated_trees": ts.n_tabulated_trees,
            "tables": ts.n_tables,
            "fallback_trees": ts.n_fallback_trees,
            "table_mb": ts.table_bytes / 2**20,
            "seconds": sec,
            "ratio_to_lgb_predict": {k: v / sec["lgb_predict"] for k, v in sec.items() if k != "tab_build"},
            "max_abs_diff": {"raw": err_raw, "contrib": err_phi},
        }
        results.append(res)
        r = res["ratio_to_lgb_predict"]
        print(
            f"{leaves:3d} leaves (depth {params['max_depth']}), {res['trees']} trees "
            f"({ts.n_tables} tables, {ts.n_fallback_trees} by LightGBM), {args.rows:,} rows: "
            f"predict {sec['lgb_predict'] * 1e3:.0f} ms | LightGBM TreeSHAP {r['lgb_contrib']:.1f}x | "
            f"tables: raw {r['tab_raw']:.2f}x, contributions {r['tab_contrib']:.2f}x | "
            f"build {sec['tab_build'] * 1e3:.0f} ms, {res['table_mb']:.1f} MB | max diff {max(err_raw, err_phi):.1e}"
        )
    summary = {
        "rows": args.rows,
        "rounds": args.trees,
        "threads": threads,
        "max_nodes": args.max_nodes,
        "repeat": args.repeat,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
