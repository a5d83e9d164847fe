"""Scale-out on Spark: the same feature SQL and the same scoring code, distributed.

Install with ``pip install churnml[spark]``. Nothing here duplicates a feature
definition: the family queries of :mod:`churnml.features` run unchanged on Spark
SQL over the same day-number views; scoring runs :func:`churnml.scoring.score.score_frame`
on each partition (``mapInPandas``), with the healthy levels and the expansion cut-off
computed once over the whole base so every partition explains against the same
reference, and each account's features 90 days earlier beside its own row. Each
partition is scored and explained once: scores, reasons and ledger columns leave it
together.

Tables are read by Spark from the data folder (Parquet or CSV, as the contract says;
:mod:`churnml.io.spark_tables`) and repartitioned by ``account_id``, so each account's
history is processed together. Validate a base with ``churnml validate`` (or on a
sample) first: the Spark path assumes a contract-valid input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from churnml.contract import SPECS, TABLES
from churnml.cutoffs import cutoff_days
from churnml.dataset import SPARK, Context, day_views
from churnml.errors import ChurnmlError
from churnml.features._engine import finish_features, run_feature_sql
from churnml.io.spark_tables import read_spark_table
from churnml.modeling.model import ChurnmlModel
from churnml.scoring import reasons as R
from churnml.scoring.score import (
    PAST_DAYS,
    ScoringSpec,
    add_previous,
    base_state,
    score_frame,
    scoring_inputs,
    stored_healthy_levels,
    with_all_indicators,
)


def _spark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ChurnmlError("the Spark engine needs the extra: pip install 'churnml[spark]'") from e
    return SparkSession, F


def local_session(master: str = "local[2]", partitions: int = 8):
    """A local Spark session (tests, a single machine); on a cluster pass your own session."""
    SparkSession, _ = _spark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName("churnml")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


SPARK_TYPES = {
    "string": "STRING",
    "category": "STRING",
    "date": "TIMESTAMP",
    "timestamp": "TIMESTAMP",
    "float": "DOUBLE",
    "int": "DOUBLE",
}


def _attribute_kinds(F, accounts, names) -> tuple[tuple[str, str], ...]:
    """Declared attributes present in accounts: numbers when every present value reads as a number."""
    names = [n for n in names if n in accounts.columns]
    if not names:
        return ()
    row = accounts.agg(
        *[
            F.sum((F.col(n).isNotNull() & F.col(n).cast("double").isNull()).cast("int")).alias(f"b{i}")
            for i, n in enumerate(names)
        ]
    ).collect()[0]
    return tuple((n, "float" if (row[f"b{i}"] or 0) == 0 else "string") for i, n in enumerate(names))


def _typed_sql(name: str, columns, attributes=()) -> str:
    """The typed view ``t_<name>`` over the raw Spark table ``raw_<name>``, in Spark SQL: the contract's
    columns cast to their types (absent optional ones NULL), the ``feature_*`` usage columns and the
    declared attributes beside them."""
    q = SPARK.quote
    cols = []
    for c in SPECS[name].columns:
        typ = SPARK_TYPES[c.kind]
        cols.append(
            f"CAST({q(c.name)} AS {typ}) AS {q(c.name)}" if c.name in columns else f"CAST(NULL AS {typ}) AS {q(c.name)}"
        )
    if SPECS[name].prefix:
        cols += [f"CAST({q(c)} AS DOUBLE) AS {q(c)}" for c in sorted(columns) if c.startswith(SPECS[name].prefix)]
    cols += [f"CAST({q(a)} AS {'DOUBLE' if k == 'float' else 'STRING'}) AS {q(a)}" for a, k in attributes]
    return f"SELECT {', '.join(cols)} FROM raw_{name}"


def spark_day_frames(spark, data_dir: str | Path, partitions: int | None = None, attributes=()):
    """The day-number views of :class:`churnml.dataset.Dataset`, built by Spark from the same SQL
    (:func:`churnml.dataset.day_views` in Spark's dialect) over typed views of the raw tables."""
    _, F = _spark()
    raw = {t: read_spark_table(spark, data_dir, t) for t in TABLES}
    attrs = _attribute_kinds(F, raw["accounts"], attributes)
    present = {t for t, df in raw.items() if df is not None}
    feature_cols: tuple[str, ...] = ()
    if raw["usage"] is not None:
        feature_cols = tuple(sorted(c for c in raw["usage"].columns if c.startswith("feature_")))
    for name in TABLES:
        df = raw[name]
        if df is None:  # an absent optional table: no rows, the contract's columns
            spark.sql(_typed_sql(name, ()).replace(f"FROM raw_{name}", "WHERE FALSE")).createOrReplaceTempView(
                f"t_{name}"
            )
            continue
        df.createOrReplaceTempView(f"raw_{name}")
        spark.sql(_typed_sql(name, set(df.columns), attrs if name == "accounts" else ())).createOrReplaceTempView(
            f"t_{name}"
        )
    views = day_views(SPARK, tuple(a for a, _ in attrs), feature_cols)
    out = {k: spark.sql(sql) for k, sql in views.items() if k in ("accounts", "subs") or k in present}
    if partitions:
        out = {k: df.repartition(partitions, "account_id") for k, df in out.items()}
    return out, raw, Context(feature_columns=feature_cols, present=frozenset(present), attributes=attrs)


class SparkRunner:
    """Runs the feature SQL on Spark SQL over temporary views."""

    def __init__(self, spark, frames: dict, cutoffs: np.ndarray):
        self.spark = spark
        for name, df in frames.items():
            df.createOrReplaceTempView(name)
        spark.createDataFrame(pd.DataFrame({"cutoff": cutoffs.astype("int64")})).createOrReplaceTempView("cutoffs")

    def table(self, name: str, sql: str) -> None:
        self.spark.sql(sql).persist().createOrReplaceTempView(name)

    def fetch(self, sql: str):
        return self.spark.sql(sql)


def build_features_spark(spark, data_dir: str | Path, cutoffs, *, partitions: int | None = None, attributes=()):
    """Features on Spark: returns (Spark DataFrame with day-number cutoffs, context, raw tables)."""
    frames, raw, ctx = spark_day_frames(spark, data_dir, partitions, attributes)
    runner = SparkRunner(spark, frames, cutoff_days(cutoffs))
    return run_feature_sql(runner, ctx), ctx, raw


def features_to_pandas(sdf, ctx: Context) -> pd.DataFrame:
    """Collect a (small) Spark feature table into churnml's pandas form."""
    return finish_features(sdf.toPandas(), ctx)


def score_spark(
    spark,
    data_dir: str | Path,
    model: ChurnmlModel,
    spec: ScoringSpec,
    *,
    as_of,
    model_name: str,
    model_version: str,
    partitions: int | None = None,
    attributes=(),
    allow_missing: bool = False,
):
    """Score and explain every paying account on Spark, with the results of local scoring.

    Returns ``(scores, drivers, ledger, features, context)``: Spark DataFrames and the feature
    context. ``scores`` and ``drivers`` have the columns of local scoring
    (:func:`churnml.scoring.score.score_dataset`; the previous score is left empty, for the
    caller to add from its ledger); ``ledger`` is the reasons' ledger columns per account
    (:attr:`ScoringResult.explained <churnml.scoring.score.ScoringResult>`, with ``account_id``
    as a column); ``features`` is the feature table at ``as_of`` (for drift).

    The same functions as local scoring, in the same order: :func:`~churnml.scoring.score.scoring_inputs`,
    :func:`~churnml.scoring.score.base_state` over the whole base (a first pass over the partitions
    gives it the expansion and risk probabilities and the reason indicators it needs), then
    :func:`~churnml.scoring.score.score_frame` on each partition, once: scores, reasons and ledger
    columns leave it together. Features are computed at ``as_of`` and
    :data:`~churnml.scoring.score.PAST_DAYS` days before, and each account's earlier row travels with
    it, so reasons may quote its own past level.
    """
    _, F = _spark()
    as_of = pd.Timestamp(as_of).normalize()
    past_day = as_of - pd.Timedelta(days=PAST_DAYS)
    now_n, past_n = int(cutoff_days([as_of])[0]), int(cutoff_days([past_day])[0])
    both, ctx, raw = build_features_spark(
        spark, data_dir, [past_day, as_of], partitions=partitions, attributes=attributes
    )
    both = both.persist()  # read by the sample, the first pass, the scoring pass and the caller's features
    gaps, defs = scoring_inputs(model, ctx, allow_missing)
    cols = list(both.columns)
    sdf = both.filter(F.col("cutoff") == F.lit(now_n))
    earlier = both.filter(F.col("cutoff") == F.lit(past_n)).select(
        F.col("account_id"), *[F.col(c).alias(f"_p_{c}") for c in cols if c != "account_id"]
    )
    a = raw["accounts"]
    feats = sdf.join(
        a.select(
            F.col("account_id").cast("string").alias("account_id"),
            F.col("name").cast("string").alias("_name"),
            (F.col("csm_owner") if "csm_owner" in a.columns else F.lit(None)).cast("string").alias("_csm"),
        ),
        "account_id",
        "left",
    ).join(earlier, "account_id", "left")
    if partitions:
        feats = feats.repartition(partitions, "account_id")
    past_cols = [f"_p_{c}" for c in cols if c != "account_id"]

    def frame(pdf: pd.DataFrame):
        """The partition's features at as_of, account attributes and features PAST_DAYS earlier."""
        X = with_all_indicators(finish_features(pdf[cols].copy(), ctx).droplevel("cutoff"), model.features)
        X = X.set_axis(pd.Index(X.index.astype(str), name="account_id"))
        attrs = pd.DataFrame(
            {
                "name": pdf["_name"].to_numpy(),
                "segment": pdf["segment"].to_numpy(),
                "csm_owner": pdf["_csm"].to_numpy(),
            },
            index=pdf["account_id"].astype(str).to_numpy(),
        )
        had = pdf["_p_cutoff"].notna().to_numpy()
        p = pdf.loc[had, past_cols].rename(columns=lambda c: c[3:])
        p.insert(0, "account_id", pdf.loc[had, "account_id"].to_numpy())
        p["cutoff"] = p["cutoff"].astype("int64")
        return X, attrs.reindex(X.index), finish_features(p[cols], ctx).droplevel("cutoff")

    sample = frame(feats.limit(50).toPandas())
    if sample[0].empty:
        raise ChurnmlError(f"no account is paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to score")
    expansion = "expansion" in model.targets
    stored = stored_healthy_levels(model) is not None
    by_capacity = spec.tier_thresholds.get("method") == "capacity"  # the high tier is chosen over the whole base
    reason_cols = [c for c in sample[0].columns if R.is_reason(c, defs)] + (
        ["segment"] if "segment" in sample[0].columns else []
    )

    def first_pass(batches):  # what base_state needs from every account
        for pdf in batches:
            X, attrs, _ = frame(pdf)
            out = {
                "exp": (model.predict_target(X, "expansion") if expansion and len(X) else np.full(len(X), np.nan)),
                "risk": model.predict_risk(X) if (by_capacity or not stored) and len(X) else np.full(len(X), np.nan),
                "id": X.index.to_numpy(dtype=object),
                "arr": 12 * X["mrr"].to_numpy(dtype="float64"),
                "csm": attrs["csm_owner"].astype("object").where(attrs["csm_owner"].notna(), None).to_numpy(),
            }
            for i, c in enumerate([] if stored else reason_cols):
                out[f"r{i}"] = (
                    X[c].astype("object").where(X[c].notna(), None).to_numpy()
                    if c == "segment"
                    else X[c].to_numpy(dtype="float64")
                )
            yield pd.DataFrame(out)

    schema = "exp double, risk double, id string, arr double, csm string" + "".join(
        f", r{i} {'string' if c == 'segment' else 'double'}" for i, c in enumerate([] if stored else reason_cols)
    )
    firsts = feats.mapInPandas(first_pass, schema).toPandas()
    Xh = pd.DataFrame({c: firsts[f"r{i}"].to_numpy() for i, c in enumerate([] if stored else reason_cols)})
    state = base_state(
        model,
        Xh,
        defs,
        spec,
        expansion=firsts["exp"].to_numpy(dtype="float64"),
        risk=firsts["risk"].to_numpy(dtype="float64"),
        books=pd.DataFrame({"account_id": firsts["id"], "arr": firsts["arr"], "csm_owner": firsts["csm"]}),
    )
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    run_id = f"spark-{scored_at:%Y%m%d%H%M%S}"
    kw = {
        "as_of": as_of,
        "model_name": model_name,
        "model_version": str(model_version),
        "run_id": run_id,
        "scored_at": scored_at,
        "gaps": gaps,
    }

    def scored(X, attrs, past):
        s, d, led = score_frame(X, attrs, model, defs, spec, state, past=past, **kw)
        add_previous(s, None, None)
        return {"s": s, "d": d, "l": led.rename_axis("account_id").reset_index()}

    kinds = {k: _kinds(v) for k, v in scored(*sample).items()}
    out_schema = _union_schema(kinds)

    def scored_and_explained(batches):
        for pdf in batches:
            X, attrs, past = frame(pdf)
            if len(X):
                yield _union(scored(X, attrs, past), kinds)

    res = feats.mapInPandas(scored_and_explained, out_schema).persist()
    parts = [
        res.filter(F.col("_kind") == k).select(*[F.col(f"{k}_{i}").alias(c) for i, c in enumerate(kinds[k])])
        for k in ("s", "d", "l")
    ]
    return parts[0], parts[1], parts[2], sdf, ctx


def _kinds(df: pd.DataFrame) -> dict[str, str]:
    """Each column's Spark type name, from its pandas dtype (text for anything not a number, flag or time)."""
    out = {}
    for c in df.columns:
        t = df[c].dtype
        if pd.api.types.is_bool_dtype(t):
            out[c] = "boolean"
        elif pd.api.types.is_integer_dtype(t):
            out[c] = "bigint"
        elif pd.api.types.is_float_dtype(t):
            out[c] = "double"
        elif pd.api.types.is_datetime64_any_dtype(t):
            out[c] = "timestamp"
        else:
            out[c] = "string"
    return out


def _union_schema(kinds: dict[str, dict[str, str]]) -> str:
    """One schema for every kind of row: ``<kind>_<i>`` columns (nullable), then ``_kind``."""
    return ", ".join(
        [f"{k}_{i} {t}" for k, cols in kinds.items() for i, t in enumerate(cols.values())] + ["_kind string"]
    )


def _union(frames: dict[str, pd.DataFrame], kinds: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Rows of every kind in one frame (``_kind`` names it; the other kinds' columns empty), each
    column in the type of :func:`_kinds`."""
    parts = []
    for k, cols in kinds.items():
        df = frames[k]
        part = pd.DataFrame({f"{k}_{i}": _as(df[c], t) for i, (c, t) in enumerate(cols.items())}, index=df.index)
        parts.append(part.reset_index(drop=True).assign(_kind=k))
    out = pd.concat(parts, ignore_index=True)
    for k, cols in kinds.items():
        for i, t in enumerate(cols.values()):
            out[f"{k}_{i}"] = _as(out[f"{k}_{i}"], t)
    out["_kind"] = out["_kind"].astype("object")
    return out


def _as(col: pd.Series, kind: str) -> pd.Series:
    """A column in the pandas form PySpark reads as ``kind`` (missing values as None/NaN/NaT)."""
    if kind == "string":
        obj = col.astype("object")
        return obj.where(col.notna(), None).map(lambda v: v if v is None else str(v))
    if kind == "double":
        return pd.to_numeric(col, errors="coerce").astype("float64")
    if kind == "bigint":
        return pd.to_numeric(col, errors="coerce").astype("Int64")
    if kind == "boolean":
        return col.astype("boolean")
    return pd.to_datetime(col).astype("datetime64[us]")
