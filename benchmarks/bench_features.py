"""Benchmark: point-in-time features with DuckDB vs a plain pandas implementation.

Generates a base 5x the demo (25,000 accounts, 3 years), then in separate
subprocesses (so peak memory is clean) measures:

* ``load``    reading the six tables (both engines start from the loaded tables);
* ``duckdb``  churnml's builders: ALL indicators of all five families;
* ``pandas``  a straightforward pandas implementation of FIVE of the same
  indicators (a loop over cutoffs, boolean masks and groupbys).

The pandas values are checked equal to churnml's. Memory is what the computation
adds on top of the loaded tables (the peak-RSS mark is reset after loading). Figures
are ratios against the pandas run made side by side, since absolute times on
shared machines are noisy.
Usage: ``python benchmarks/bench_features.py [--accounts N] [--cutoffs K] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHECKED = ["active_users_per_seat_30d", "active_users_trend_30d", "open_tickets", "ces_difficult_share_90d", "mrr"]


def pandas_features(ds, cutoffs) -> pd.DataFrame:
    """The plain-pandas reference for CHECKED indicators (same definitions)."""
    subs, usage, tickets, surveys = ds.subscriptions, ds.usage, ds.tickets, ds.surveys
    acc_start = ds.accounts.set_index("account_id")["signup_date"]
    first_sub = subs.groupby("account_id")["effective_date"].min()
    start = pd.concat([acc_start, first_sub], axis=1).min(axis=1)
    parts = []
    for t in cutoffs:
        state = subs[subs["effective_date"] < t].groupby("account_id").tail(1).set_index("account_id")
        state = state[state["mrr"] > 0]
        tenure = (t - start.reindex(state.index)).dt.days
        out = pd.DataFrame(index=state.index)
        out["mrr"] = state["mrr"]
        u = usage[(usage["date"] < t) & (usage["date"] >= t - pd.Timedelta(days=60))]
        last30 = u[u["date"] >= t - pd.Timedelta(days=30)].groupby("account_id")["active_users"].sum()
        prev30 = u[u["date"] < t - pd.Timedelta(days=30)].groupby("account_id")["active_users"].sum()
        last30 = last30.reindex(state.index).fillna(0.0)
        prev30 = prev30.reindex(state.index)
        seats = state["seats"].astype("float64")
        out["active_users_per_seat_30d"] = (last30 / np.minimum(30, tenure) / seats).where(seats > 0)
        trend = np.minimum(last30 / prev30 - 1, 10)
        out["active_users_trend_30d"] = trend.where((tenure >= 60) & (prev30 > 0))
        tk = tickets[(tickets["opened_at"] < t) & (tickets["closed_at"].isna() | (tickets["closed_at"] >= t))]
        out["open_tickets"] = tk.groupby("account_id").size().reindex(state.index).fillna(0).astype("float64")
        s = surveys[(surveys["kind"] == "CES") & (surveys["responded_at"] < t)
                    & (surveys["responded_at"] >= t - pd.Timedelta(days=90))]
        g = s.groupby("account_id")["score"]
        out["ces_difficult_share_90d"] = (g.apply(lambda v: (v <= 3).mean())).reindex(state.index)
        out["cutoff"] = t
        parts.append(out.reset_index())
    return pd.concat(parts).set_index(["account_id", "cutoff"]).sort_index()[CHECKED]


def _vm(field: str) -> float:
    """A /proc/self/status memory figure in MB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset the peak-RSS high-water mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _child(mode: str, data_dir: str, n_cut: int, result: str) -> None:
    from churnml.cutoffs import parse_cutoffs
    from churnml.features import build_features
    from churnml.io import load_dataset

    t0 = time.perf_counter()
    ds = load_dataset(data_dir, validate=False)
    cutoffs = parse_cutoffs("monthly", ds)[-n_cut:]
    import gc

    gc.collect()
    rss_loaded = _vm("VmRSS")
    _reset_peak()
    t1 = time.perf_counter()
    X = None
    if mode == "duckdb":
        X = build_features(ds, cutoffs)
    elif mode == "pandas":
        X = pandas_features(ds, cutoffs)
    t2 = time.perf_counter()
    if X is not None:
        X.reset_index().to_parquet(result + ".parquet")
    peak = _vm("VmHWM")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(result).write_text(json.dumps({"load_s": t1 - t0, "compute_s": t2 - t1, "peak_mb": rss,
                                        "compute_extra_mb": max(peak - rss_loaded, 0.0),
                                        "rows": 0 if X is None else len(X), "columns": 0 if X is None else X.shape[1],
                                        "cutoffs": len(cutoffs)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=25_000, help="accounts in the generated base (default 25,000)")
    ap.add_argument("--cutoffs", type=int, default=36, help="monthly cutoffs (default 36)")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/features.json"), help="where to write results")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]), args.child[3])
        return
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "base"
        t0 = time.perf_counter()
        tables = generate(GeneratorConfig(accounts=args.accounts, seed=11))
        write_dataset(tables, data)
        usage_rows = len(tables["usage"])
        print(f"generated {args.accounts:,} accounts, {usage_rows:,} usage rows in {time.perf_counter() - t0:.1f}s")
        del tables
        res = {}
        for mode in ("load", "duckdb", "pandas"):
            out = str(Path(tmp) / mode)
            subprocess.run([sys.executable, __file__, "--child", mode, str(data), str(args.cutoffs), out], check=True)
            res[mode] = json.loads(Path(out).read_text())
            print(f"{mode:7s} compute {res[mode]['compute_s']:6.2f}s  +{res[mode]['compute_extra_mb']:6.0f} MB above "
                  f"the loaded data  (process peak {res[mode]['peak_mb']:5.0f} MB)  "
                  f"({res[mode]['columns']} indicators, {res[mode]['rows']:,} rows)")
        d = pd.read_parquet(str(Path(tmp) / "duckdb") + ".parquet").set_index(["account_id", "cutoff"])[CHECKED]
        p = pd.read_parquet(str(Path(tmp) / "pandas") + ".parquet").set_index(["account_id", "cutoff"])[CHECKED]
        pd.testing.assert_frame_equal(d.sort_index(), p.sort_index(), check_exact=False, rtol=1e-9, check_names=False)
        print(f"checked equal: {', '.join(CHECKED)} on {len(d):,} rows")
    summary = {
        "accounts": args.accounts, "usage_rows": usage_rows, "cutoffs": res["duckdb"]["cutoffs"],
        "duckdb": res["duckdb"], "pandas": res["pandas"], "load": res["load"],
        "time_ratio_pandas_over_duckdb": res["pandas"]["compute_s"] / res["duckdb"]["compute_s"],
        "peak_memory_ratio_pandas_over_duckdb": res["pandas"]["peak_mb"] / res["duckdb"]["peak_mb"],
        "compute_extra_mb": {"duckdb": res["duckdb"]["compute_extra_mb"], "pandas": res["pandas"]["compute_extra_mb"]},
        "duckdb_indicators_per_pandas_indicator": res["duckdb"]["columns"] / len(CHECKED),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"DuckDB computes {res['duckdb']['columns']} indicators {summary['time_ratio_pandas_over_duckdb']:.1f}x "
          f"faster than pandas computes {len(CHECKED)}; process peak pandas/DuckDB = "
          f"{summary['peak_memory_ratio_pandas_over_duckdb']:.2f}x (the loaded tables dominate: "
          f"{res['load']['peak_mb']:.0f} MB); added by the computation: DuckDB {res['duckdb']['compute_extra_mb']:.0f} MB, "
          f"pandas {res['pandas']['compute_extra_mb']:.0f} MB  -> {args.out}")


if __name__ == "__main__":
    main()
