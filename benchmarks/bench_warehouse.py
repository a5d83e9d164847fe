"""Benchmark: a base read from PostgreSQL against the same base from Parquet files, and publishing scores.

Starts a throwaway PostgreSQL server (Debian's binaries, as the tests do: tests/pgserver.py).

1. **Reading.** Generates a base 5x the demo (25,000 accounts, 3 years, ~7.7M usage rows), writes it
   as Parquet and into a schema of typed tables, then runs, each in its own subprocess (so peak memory
   is clean) and alternating:

   * ``files``     ``churnml.api.open_dataset`` on the folder: DuckDB validates the Parquet files in place;
   * ``postgres``  the same through ``--source``: the contract's columns streamed by ADBC as Arrow
     batches into DuckDB's on-disk workspace, then the same validation;

   each followed by every indicator for every monthly cutoff; the feature tables are checked equal.
   Reports wall time (open + validate, features, total) and process peak memory (VmHWM), and the
   ratios postgres/files. The server's own memory is not counted (another process).

2. **Publishing.** A real score run (a small base trained and scored here, or ``--scores DIR``) is
   tiled to ``--publish-accounts`` accounts (default 200,000: scores, drivers, ledger rows) and
   published with ``churnml publish``'s flow into an empty schema, then again (nothing changes), then
   the same run a month later (new rows into the existing tables: a monthly publish), and churnml_scores
   is read back whole (``SELECT *`` as Arrow). The round trip: the first publish and the read back.

Usage: ``python benchmarks/bench_warehouse.py [--accounts N] [--publish-accounts N] [--out FILE]``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway server and the table loader the tests use


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_read(mode: str, where: str, result: str) -> None:
    from churnml.config import load_config
    from churnml.cutoffs import parse_cutoffs
    from churnml.features import build_features
    from churnml.flows.common import Run

    t0 = time.perf_counter()
    over = {"data_dir": where} if mode == "files" else {"source": where, "source_schema": "bench"}
    ds = Run(load_config(None, **over), echo=lambda m: None).open_dataset()
    t1 = time.perf_counter()
    cutoffs = parse_cutoffs("monthly", ds)
    X = build_features(ds, cutoffs)
    t2 = time.perf_counter()
    ds.close()
    X.reset_index().to_parquet(result + ".parquet")
    Path(result).write_text(
        json.dumps(
            {
                "open_validate_s": t1 - t0,
                "features_s": t2 - t1,
                "total_s": t2 - t0,
                "peak_mb": _peak_mb(),
                "rows": len(X),
                "cutoffs": len(cutoffs),
            }
        )
    )


def _child_publish(uri: str, schema: str, folder: str, out_dir: str, result: str) -> None:
    from churnml.config import load_config
    from churnml.flows.common import Run
    from churnml.flows.publish import run_publish

    t0 = time.perf_counter()
    res = run_publish(
        Run(load_config(None, output_dir=out_dir), echo=lambda m: None), to=uri, schema=schema, scores=Path(folder)
    )
    Path(result).write_text(
        json.dumps(
            {
                "seconds": time.perf_counter() - t0,
                "peak_mb": _peak_mb(),
                "tables": {w.name: [w.rows, w.inserted, w.updated] for w in res.written},
            }
        )
    )


def _read_back(uri: str, schema: str) -> dict:
    import adbc_driver_postgresql.dbapi as pg

    from churnml.contract import quote_ident

    t0 = time.perf_counter()
    with pg.connect(uri) as con, con.cursor() as cur:
        cur.execute(f"SELECT * FROM {quote_ident(schema)}.churnml_scores")
        t = cur.fetch_arrow_table()
    return {"seconds": time.perf_counter() - t0, "rows": t.num_rows, "columns": t.num_columns}


def _score_run(tmp: Path) -> Path:
    """A real score run of a small generated base (train with 2 folds, then score), as `churnml score` writes it."""
    from churnml.config import load_config
    from churnml.flows.common import Run
    from churnml.flows.score import run_scoring
    from churnml.flows.train import run_training
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    write_dataset(generate(GeneratorConfig(accounts=1000, seed=5, years=2.5)), tmp / "small")
    cfg = load_config(
        None,
        data_dir=str(tmp / "small"),
        output_dir=str(tmp / "small_out"),
        **{
            "mlflow.tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
            "mlflow.artifact_root": str(tmp / "artifacts"),
            "train.folds": 2,
            "train.tuned_params_file": str(tmp / "none.json"),
        },
    )
    run_training(Run(cfg, echo=lambda m: None))
    _, paths = run_scoring(Run(cfg, echo=lambda m: None))
    return paths["folder"]


def _tiled(src: Path, n: int, out: Path) -> Path:
    """The run in ``src`` repeated to ``n`` accounts (account ids suffixed), with its ledger rows, under ``out``."""
    from churnml.io.outputs import read_json

    manifest = read_json(src / "manifest.json")
    frames = {f: pd.read_parquet(src / f) for f in ("scores.parquet", "drivers.parquet", "ledger_part.parquet")}
    ids = frames["scores.parquet"]["account_id"].unique()
    k = -(-n // len(ids))
    folder = out / "scores"
    folder.mkdir(parents=True)
    for f, df in frames.items():
        parts = [df.assign(account_id=df["account_id"] + f"-{i}") for i in range(k)]
        big = pd.concat(parts, ignore_index=True)
        keep = set(pd.Series([f"{a}-{i}" for i in range(k) for a in ids][:n]))
        big[big["account_id"].isin(keep)].to_parquet(folder / f)
    (folder / "manifest.json").write_text(json.dumps({**manifest, "accounts": n, "base": "bench-tiled"}))
    ledger = out / "ledger" / "bench-tiled"
    ledger.mkdir(parents=True)
    (folder / "ledger_part.parquet").rename(ledger / f"part-00000000T000000-{manifest['run_id']}.parquet")
    return folder


def _next_run(folder: Path, out: Path) -> Path:
    """The run of ``folder`` one month later (a new as-of date and run id): what a monthly publish sends."""
    from churnml.io.outputs import read_json

    manifest = read_json(folder / "manifest.json")
    as_of = pd.Timestamp(manifest["as_of"]) + pd.DateOffset(months=1)
    run_id = "next" + manifest["run_id"]
    nxt = out / "scores-next"
    nxt.mkdir(parents=True)
    for f in ("scores.parquet", "drivers.parquet"):
        df = pd.read_parquet(folder / f)
        if "as_of" in df.columns:
            df = df.assign(as_of=as_of, run_id=run_id)
        df.to_parquet(nxt / f)
    ledger = out / "ledger" / manifest["base"]
    part = next(ledger.glob("part-*.parquet"))
    pd.read_parquet(part).assign(as_of=as_of, run_id=run_id).to_parquet(
        ledger / f"part-00000001T000000-{run_id}.parquet"
    )
    (nxt / "manifest.json").write_text(json.dumps({**manifest, "as_of": f"{as_of:%Y-%m-%d}", "run_id": run_id}))
    return nxt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=25_000, help="accounts of the base read (default 25,000)")
    ap.add_argument("--repeat", type=int, default=2, help="reads of each mode, alternating; medians count (default 2)")
    ap.add_argument("--publish-accounts", type=int, default=200_000, help="accounts published (default 200,000)")
    ap.add_argument("--scores", type=Path, default=None, help="a score run to tile [default: train and score one]")
    ap.add_argument("--part", choices=["all", "read", "publish"], default="all", help="what to measure (default all)")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/warehouse.json"), help="where to write results")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        {"read": _child_read, "publish": _child_publish}[args.child[0]](*args.child[1:])
        return
    from pgserver import MISSING, PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        sys.exit(MISSING)
    server = PostgresServer(bindir).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            summary = {}
            if args.part in ("all", "read"):
                summary["read"] = _bench_read(server, tmp, args)
            if args.part in ("all", "publish"):
                summary["publish"] = _bench_publish(server, tmp, args)
    finally:
        server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    if "read" in summary:
        s = summary["read"]
        for m, r in s["median"].items():
            print(
                f"{m:9s} open+validate {r['open_validate_s']:6.1f}s  features {r['features_s']:6.1f}s  "
                f"total {r['total_s']:6.1f}s  peak {r['peak_mb']:6.0f} MB"
            )
        print(
            f"reading from PostgreSQL: {s['time_ratio_postgres_over_files']:.2f}x the time "
            f"({s['open_validate_time_ratio_postgres_over_files']:.2f}x for open + validate) and "
            f"{s['peak_memory_ratio_postgres_over_files']:.2f}x the peak memory of the Parquet files "
            f"(medians of {args.repeat}; feature tables equal)"
        )
    if "publish" in summary:
        s = summary["publish"]
        for p in s["runs"]:
            rows = ", ".join(f"{k} {v[0]:,} rows ({v[1]:,} new, {v[2]:,} updated)" for k, v in p["tables"].items())
            print(f"publish ({p['run']}): {p['seconds']:.1f}s, peak {p['peak_mb']:.0f} MB: {rows}")
        back = s["read_back"]
        print(
            f"read back churnml_scores ({back['rows']:,} rows x {back['columns']} columns) in "
            f"{back['seconds']:.1f}s; round trip (first publish + read back) {s['round_trip_s']:.1f}s"
        )
    print(f"-> {args.out}")


def _bench_read(server, tmp: Path, args) -> dict:
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset
    from pgserver import load_base

    t0 = time.perf_counter()
    tables = generate(GeneratorConfig(accounts=args.accounts, seed=11))
    write_dataset(tables, tmp / "base")
    print(
        f"generated {args.accounts:,} accounts, {len(tables['usage']):,} usage rows in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    t0 = time.perf_counter()
    load_base(server.uri, "bench", tables)
    load_s = time.perf_counter() - t0
    print(f"loaded into PostgreSQL in {load_s:.1f}s", flush=True)
    del tables
    runs: dict[str, list[dict]] = {"files": [], "postgres": []}
    for _ in range(args.repeat):
        for mode, where in (("files", str(tmp / "base")), ("postgres", server.uri)):
            res = str(tmp / mode)
            subprocess.run([sys.executable, __file__, "--child", "read", mode, where, res], check=True)
            runs[mode].append(json.loads(Path(res).read_text()))
    pd.testing.assert_frame_equal(
        pd.read_parquet(str(tmp / "files") + ".parquet"), pd.read_parquet(str(tmp / "postgres") + ".parquet")
    )
    med = {m: pd.DataFrame(r).median(numeric_only=True).to_dict() for m, r in runs.items()}
    return {
        "accounts": args.accounts,
        "load_into_postgres_s": load_s,
        "runs": runs,
        "median": med,
        "time_ratio_postgres_over_files": med["postgres"]["total_s"] / med["files"]["total_s"],
        "open_validate_time_ratio_postgres_over_files": med["postgres"]["open_validate_s"]
        / med["files"]["open_validate_s"],
        "peak_memory_ratio_postgres_over_files": med["postgres"]["peak_mb"] / med["files"]["peak_mb"],
    }


def _bench_publish(server, tmp: Path, args) -> dict:
    src = args.scores or _score_run(tmp)
    folder = _tiled(Path(src), args.publish_accounts, tmp / "tiled")
    pub = []
    for label in ("first", "again", "next month"):
        run = folder if label != "next month" else _next_run(folder, tmp / "tiled")
        res = str(tmp / f"publish-{label}")
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "publish",
                server.uri,
                "scores_out",
                str(run),
                str(tmp / "tiled"),
                res,
            ],
            check=True,
        )
        pub.append({"run": label, **json.loads(Path(res).read_text())})
    back = _read_back(server.uri, "scores_out")
    return {
        "accounts": args.publish_accounts,
        "runs": pub,
        "read_back": back,
        "round_trip_s": pub[0]["seconds"] + back["seconds"],
    }


if __name__ == "__main__":
    main()
