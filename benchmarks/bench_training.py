"""Benchmark: training time and peak memory of the recipe with time to churn against the 90-day
classifier alone (the recipe churnml used before), side by side on the same base.

Each run is its own process (so its peak memory is its own), in turn A B A B ...:

* ``time_to_churn``: what ``churnml train`` fits (:func:`churnml.modeling.recipe.fit`): the
  90-day classifier and the baselines on every fold, the time-to-churn model on every fold,
  the early-warning figures, the final bundle;
* ``classifier``: the 90-day classifier and the baselines on every fold and its final model
  (``run_backtest`` + ``fit_final_model``), as before time to churn.

Both start from the same features and labels (built in each process, included in the time).
Prints medians and the ratio ``time_to_churn / classifier`` pair by pair, and writes JSON.
Usage: ``python benchmarks/bench_training.py [--accounts 3000] [--runs 3] [--folds 4] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(recipe: str, data: Path, folds: int) -> dict:
    """One training in this process; returns its wall seconds and peak resident memory."""
    t0 = time.perf_counter()
    from churnml.api import open_dataset
    from churnml.config import load_config
    from churnml.flows.common import Run
    from churnml.modeling import recipe as R
    from churnml.modeling.backtest import run_backtest

    cfg = load_config(None, **{"data_dir": str(data), "train.folds": folds, "train.use_tuned_params": False})
    spec = Run(cfg, echo=lambda m: None).recipe_spec()
    with open_dataset(data) as ds:
        td = R.prepare(ds, spec)
        subs, last = ds.subscriptions, ds.last_date()
    folds_ = R.plan(td, spec)[0]
    if recipe == "time_to_churn":
        R.fit(td, subs, last, folds_, spec)
    else:
        run_backtest(
            td.D,
            features=td.features,
            categorical=td.categorical,
            folds=folds_,
            label_cols=td.label_cols,
            params={},
            seed=spec.seed,
            calibration=spec.calibration,
            threads=spec.threads,
        )
        R.fit_final_model(td, spec, calibration_cutoffs=len(folds_[0].calibrate))
    return {"seconds": time.perf_counter() - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3, help="runs of each recipe, in turn")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/training.json"))
    ap.add_argument("--child", choices=["time_to_churn", "classifier"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.data, a.folds)))
        return 0
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    data = Path(tempfile.mkdtemp(prefix="bench-training-")) / "data"
    write_dataset(generate(GeneratorConfig(accounts=a.accounts, seed=a.seed)), data)
    res = {"time_to_churn": [], "classifier": []}
    for i in range(a.runs):
        for recipe in ("time_to_churn", "classifier"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", recipe, "--data", str(data), "--folds", str(a.folds)],
                capture_output=True,
                text=True,
                check=True,
            )
            res[recipe].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(
                f"run {i + 1} {recipe}: {res[recipe][-1]['seconds']:.1f}s, peak {res[recipe][-1]['peak_mb']:,.0f} MB",
                flush=True,
            )
    ratio = {k: [x[k] / y[k] for x, y in zip(res["time_to_churn"], res["classifier"])] for k in ("seconds", "peak_mb")}
    summary = {
        "accounts": a.accounts,
        "folds": a.folds,
        "runs": res,
        "median": {r: {k: statistics.median(x[k] for x in v) for k in ("seconds", "peak_mb")} for r, v in res.items()},
        "ratio_median": {k: statistics.median(v) for k, v in ratio.items()},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(a.out)
    m, r = summary["median"], summary["ratio_median"]
    print(
        f"{a.accounts:,} accounts, {a.folds} folds: time to churn {m['time_to_churn']['seconds']:.1f}s / "
        f"{m['time_to_churn']['peak_mb']:,.0f} MB vs classifier alone {m['classifier']['seconds']:.1f}s / "
        f"{m['classifier']['peak_mb']:,.0f} MB: {r['seconds']:.2f}x time, {r['peak_mb']:.2f}x peak memory "
        f"(medians of pair ratios) -> {a.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
