"""Benchmark: validate + features straight from the files (DuckDB) against loading the tables into pandas first.

Generates a base 5x the demo (25,000 accounts, 3 years, ~7.7M usage rows), then runs,
each in its own subprocess (so peak memory is clean) and side by side:

* ``files``   churnml's data path: DuckDB reads and validates the Parquet files in place,
  and the feature SQL runs on those relations (only the feature frame reaches pandas);
* ``pandas``  the same checks and the same SQL, but with every table loaded into pandas
  first (how churnml worked before v0.2: the yardstick).

Both build every indicator for every monthly cutoff; their feature tables are checked
equal. Reports each run's wall time and process peak memory (VmHWM), and the ratios
files/pandas. Usage: ``python benchmarks/bench_features.py [--accounts N] [--data DIR] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(mode: str, data_dir: str, result: str) -> None:
    from churnml.api import open_dataset
    from churnml.contract import TABLES
    from churnml.cutoffs import parse_cutoffs
    from churnml.dataset import Dataset
    from churnml.features import build_features

    t0 = time.perf_counter()
    if mode == "files":
        ds = open_dataset(data_dir, validate=True)
    else:
        tables = {
            t: pd.read_parquet(Path(data_dir) / f"{t}.parquet")
            for t in TABLES
            if (Path(data_dir) / f"{t}.parquet").is_file()
        }
        ds = Dataset.from_frames(tables, validate=True)
    t1 = time.perf_counter()
    cutoffs = parse_cutoffs("monthly", ds)
    X = build_features(ds, cutoffs)
    t2 = time.perf_counter()
    ds.close()
    X.reset_index().to_parquet(result + ".parquet")
    Path(result).write_text(
        json.dumps(
            {
                "validate_s": t1 - t0,
                "features_s": t2 - t1,
                "total_s": t2 - t0,
                "peak_mb": _peak_mb(),
                "rows": len(X),
                "columns": X.shape[1],
                "cutoffs": len(cutoffs),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=25_000, help="accounts in the generated base (default 25,000)")
    ap.add_argument("--data", type=Path, default=None, help="use this data folder (Parquet) instead of generating one")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each mode, alternating; medians count (default 2)")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/features.json"), help="where to write results")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from churnml.generate import GeneratorConfig, generate
            from churnml.io import write_dataset

            data = Path(tmp) / "base"
            t0 = time.perf_counter()
            tables = generate(GeneratorConfig(accounts=args.accounts, seed=11))
            write_dataset(tables, data)
            print(
                f"generated {args.accounts:,} accounts, {len(tables['usage']):,} usage rows in "
                f"{time.perf_counter() - t0:.1f}s"
            )
            del tables
        runs: dict[str, list[dict]] = {"files": [], "pandas": []}
        for _ in range(args.repeat):
            for mode in runs:
                out = str(Path(tmp) / mode)
                subprocess.run([sys.executable, __file__, "--child", mode, str(data), out], check=True)
                runs[mode].append(json.loads(Path(out).read_text()))
        a = pd.read_parquet(str(Path(tmp) / "files") + ".parquet")
        b = pd.read_parquet(str(Path(tmp) / "pandas") + ".parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    med = {m: pd.DataFrame(r).median(numeric_only=True).to_dict() for m, r in runs.items()}
    summary = {
        "data": str(args.data or f"generated, {args.accounts} accounts"),
        "runs": runs,
        "median": med,
        "peak_memory_ratio_files_over_pandas": med["files"]["peak_mb"] / med["pandas"]["peak_mb"],
        "time_ratio_files_over_pandas": med["files"]["total_s"] / med["pandas"]["total_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    for m, r in med.items():
        print(
            f"{m:7s} validate {r['validate_s']:6.1f}s  features {r['features_s']:6.1f}s  peak {r['peak_mb']:6.0f} MB  "
            f"({int(r['columns'])} indicators, {int(r['rows']):,} rows, {int(r['cutoffs'])} cutoffs)"
        )
    print(
        f"validate + features from the files: {summary['peak_memory_ratio_files_over_pandas']:.2f}x the peak memory "
        f"and {summary['time_ratio_files_over_pandas']:.2f}x the time of loading into pandas first "
        f"(medians of {args.repeat}; feature tables equal) -> {args.out}"
    )


if __name__ == "__main__":
    main()
