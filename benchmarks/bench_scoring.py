"""Benchmark: the cost of scoring + explaining against plain prediction on the same rows.

Trains a compact model on a generated base (no MLflow), then on the same feature
rows (all accounts at several cutoffs) times, each best of ``--repeat`` runs:

* ``predict``    calibrated probabilities for churn and expansion (the baseline);
* ``shap``       the same plus TreeSHAP contributions (``pred_contrib``) for both targets;
* ``explain``    what ``churnml score`` does: probabilities, churn explanations for every
  account (probability points, family roll-up, top drivers in words with segment
  comparisons and plays) and expansion explanations for the 30% most likely to expand.

Reports ratios to ``predict`` (aim: explanations <= 10x prediction) and accounts per second.
Usage: ``python benchmarks/bench_scoring.py [--accounts N] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=5000, help="accounts in the generated base (default 5,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts (default 3)")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/scoring.json"), help="where to write results")
    args = ap.parse_args()

    from churnml.config import default
    from churnml.cutoffs import parse_cutoffs
    from churnml.dataset import Dataset
    from churnml.features import build_features, indicators_for
    from churnml.generate import GeneratorConfig, generate
    from churnml.io.artifacts import read_playbook
    from churnml.modeling.backtest import fit_recipe
    from churnml.modeling.folds import make_folds
    from churnml.modeling.training import training_data
    from churnml.scoring.explain import explain_accounts

    ds = Dataset.from_frames(generate(GeneratorConfig(accounts=args.accounts, seed=21)))
    td = training_data(ds, cutoffs="monthly", horizon_days=default("labels.horizon_days"),
                       uplift=default("labels.uplift"))
    fold = make_folds(td.D.index.get_level_values("cutoff").unique(), horizon_days=90, n_folds=1)[0]
    model, _, _ = fit_recipe(td.D, fold.fit, fold.calibrate, features=td.features, categorical=td.categorical,
                             label_cols=td.label_cols, seed=1)
    cutoffs = parse_cutoffs("monthly", ds)[-6:]
    X = build_features(ds, cutoffs)
    n = len(X)
    defs = {i.name: i for i in indicators_for(ds.context())}
    book = read_playbook(None)

    def predict():
        model.predict_proba(X)

    def shap():
        model.predict_proba(X)
        for t, tm in model.targets.items():
            tm.booster.predict(model.prepare(X), pred_contrib=True, num_iteration=tm.best_iteration)

    def explain():
        explain_accounts(model, X, defs, book, top=default("scoring.top_drivers"),
                         expansion_share=default("scoring.expansion_explain_share"))

    res = {k: _best(f, args.repeat) for k, f in (("predict", predict), ("shap", shap), ("explain", explain))}
    trees = {t: m.best_iteration for t, m in model.targets.items()}
    summary = {"rows": n, "accounts_per_cutoff": n // len(cutoffs), "trees": trees, "seconds": res,
               "ratio_to_predict": {k: v / res["predict"] for k, v in res.items()},
               "accounts_per_second": {k: n / v for k, v in res.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    for k, v in res.items():
        print(f"{k:8s} {v:6.3f}s  {summary['ratio_to_predict'][k]:5.1f}x predict  {n / v:10,.0f} accounts/s")
    print(f"{n:,} rows, trees per target {trees}; explanations cost {summary['ratio_to_predict']['shap']:.1f}x "
          f"prediction (TreeSHAP) and {summary['ratio_to_predict']['explain']:.1f}x with words -> {args.out}")


if __name__ == "__main__":
    main()
