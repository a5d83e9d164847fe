"""Scale-out on Spark: the same feature SQL and the same scoring code, distributed.

Install with ``pip install churnml[spark]``. Nothing here duplicates a feature
definition: the family queries of :mod:`churnml.features` run unchanged on Spark
SQL over the same day-number views; scoring runs :func:`churnml.scoring.score.score_frame`
on each partition (``mapInPandas``), with the segment medians and cut-offs computed
once over the whole base so every partition explains against the same peers. Each
partition is scored and explained once: scores and drivers leave it together.

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

from churnml.contract import TABLES
from churnml.cutoffs import cutoff_days
from churnml.dataset import Context
from churnml.errors import ChurnmlError
from churnml.features._engine import finish_features, indicators_for, run_feature_sql
from churnml.io.spark_tables import read_spark_table


def _spark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession, functions as F  # noqa: N812
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ChurnmlError("the Spark engine needs the extra: pip install 'churnml[spark]'") from e
    return SparkSession, F


def local_session(master: str = "local[2]", partitions: int = 8):
    """A local Spark session (tests, a single machine); on a cluster pass your own session."""
    SparkSession, _ = _spark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (SparkSession.builder.master(master).appName("churnml")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(partitions))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .getOrCreate())


def _days(F, col, whole: bool):  # noqa: N803
    """Day numbers of a date/timestamp/ISO-text column: whole (floor) or fractional."""
    ts = F.col(col).cast("timestamp")
    micros = F.unix_micros(ts)
    frac = micros / F.lit(86_400_000_000.0)
    return F.floor(frac).cast("long") if whole else frac


def _attribute_kinds(F, accounts, names) -> tuple[tuple[str, str], ...]:  # noqa: N803
    """Declared attributes present in accounts: numbers when every present value reads as a number."""
    names = [n for n in names if n in accounts.columns]
    if not names:
        return ()
    row = accounts.agg(*[F.sum((F.col(n).isNotNull() & F.col(n).cast("double").isNull()).cast("int")).alias(f"b{i}")
                         for i, n in enumerate(names)]).collect()[0]
    return tuple((n, "float" if (row[f"b{i}"] or 0) == 0 else "string") for i, n in enumerate(names))


def spark_day_frames(spark, data_dir: str | Path, partitions: int | None = None, attributes=()):
    """The day-number views of :class:`churnml.dataset.Dataset`, built by Spark."""
    _, F = _spark()
    raw = {t: read_spark_table(spark, data_dir, t) for t in TABLES}
    s = lambda c, df: F.col(c).cast("string") if c in df.columns else F.lit(None).cast("string")  # noqa: E731
    out, present = {}, {"accounts", "subscriptions"}
    a = raw["accounts"]
    attrs = _attribute_kinds(F, a, attributes)
    out["accounts"] = a.select(F.col("account_id").cast("string").alias("account_id"),
                               _days(F, "signup_date", True).alias("signup"),
                               s("segment", a).alias("segment"), s("industry", a).alias("industry"),
                               s("region", a).alias("region"),
                               *[F.col(n).cast("double" if k == "float" else "string").alias(f"a{i}")
                                 for i, (n, k) in enumerate(attrs)])
    b = raw["subscriptions"]
    mrr = F.col("mrr").cast("double")
    end_kind = F.col("end_kind").cast("string") if "end_kind" in b.columns else F.lit(None).cast("string")
    out["subs"] = b.select(F.col("account_id").cast("string").alias("account_id"),
                           _days(F, "effective_date", True).alias("day"), mrr.alias("mrr"),
                           (F.col("seats") if "seats" in b.columns else F.lit(None)).cast("double").alias("seats"),
                           s("plan", b).alias("plan"),
                           (_days(F, "contract_end", True) if "contract_end" in b.columns
                            else F.lit(None).cast("long")).alias("contract_end"),
                           ((mrr == 0) & (F.coalesce(end_kind, F.lit("churned")) != "completed")).alias("churned"),
                           ((mrr == 0) & (F.coalesce(end_kind, F.lit("")) == "completed")).alias("completed"))
    feature_cols: tuple[str, ...] = ()
    u = raw["usage"]
    if u is not None:
        present.add("usage")
        feature_cols = tuple(sorted(c for c in u.columns if c.startswith("feature_")))
        out["usage"] = u.select(F.col("account_id").cast("string").alias("account_id"), _days(F, "date", True).alias("day"),
                                F.col("active_users").cast("double").alias("active_users"),
                                F.col("events").cast("double").alias("events"),
                                *[F.col(f"`{c}`").cast("double").alias(f"f{i}") for i, c in enumerate(feature_cols)])
    t = raw["tickets"]
    if t is not None:
        present.add("tickets")
        out["tickets"] = t.select(F.col("account_id").cast("string").alias("account_id"), _days(F, "opened_at", False).alias("opened"),
                                  _days(F, "closed_at", False).alias("closed"), s("priority", t).alias("priority"),
                                  (F.col("first_response_minutes") if "first_response_minutes" in t.columns
                                   else F.lit(None)).cast("double").alias("first_response_minutes"))
    v = raw["surveys"]
    if v is not None:
        present.add("surveys")
        out["surveys"] = v.select(F.col("account_id").cast("string").alias("account_id"), _days(F, "responded_at", False).alias("answered"),
                                  s("kind", v).alias("kind"), F.col("score").cast("double").alias("score"))
    m = raw["milestones"]
    if m is not None:
        present.add("milestones")
        out["milestones"] = m.select(F.col("account_id").cast("string").alias("account_id"), s("milestone", m).alias("milestone"),
                                     (_days(F, "due_date", True) if "due_date" in m.columns
                                      else F.lit(None).cast("long")).alias("due"),
                                     _days(F, "completed_at", True).alias("completed"))
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


def score_spark(spark, data_dir: str | Path, model, *, as_of, model_name: str, model_version: str, playbook: dict,
                top: int, expansion_share: float, tier_thresholds: dict, partitions: int | None = None,
                attributes=(), allow_missing: bool = False):
    """Score and explain every paying account on Spark.

    Returns ``(scores, drivers, features, context)``: Spark DataFrames (``features`` is the
    feature table, for drift) and the feature context. Scores and drivers have the columns of local scoring. Global quantities
    (segment medians, the expansion cut-off, the scoring time) are computed once and
    broadcast; each partition then runs the same :func:`score_frame` as local scoring, once.
    """
    from churnml.scoring.explain import expansion_cutoff
    from churnml.scoring.score import add_previous, check_inputs, model_context, score_frame, with_all_indicators

    _, F = _spark()
    as_of = pd.Timestamp(as_of).normalize()
    sdf, ctx, raw = build_features_spark(spark, data_dir, [as_of], partitions=partitions, attributes=attributes)
    gaps = check_inputs(model, ctx, allow_missing)
    base_defs = {i.name: i for i in indicators_for(ctx)}
    defs = {i.name: i for i in indicators_for(model_context(model, ctx))}
    numeric = [i.sql_name for i in base_defs.values() if i.kind != "categorical"]
    seg = F.coalesce(F.col("segment"), F.lit("(none)")).alias("_seg")
    med = sdf.groupBy(seg).agg(*[F.percentile(F.col(c), 0.5).alias(c) for c in numeric]).toPandas()
    medians = med.set_index("_seg").astype("float64").rename(columns={i.sql_name: i.name for i in base_defs.values()})
    medians.index.name = None
    feats = sdf.join(raw["accounts"].select(F.col("account_id").cast("string").alias("account_id"),
                                            F.col("name").cast("string").alias("_name"),
                                            F.col("csm_owner").cast("string").alias("_csm")
                                            if "csm_owner" in raw["accounts"].columns
                                            else F.lit(None).cast("string").alias("_csm")),
                     "account_id", "left")
    if partitions:
        feats = feats.repartition(partitions, "account_id")
    cols = list(sdf.columns)

    def frame(pdf: pd.DataFrame):
        X = with_all_indicators(finish_features(pdf[cols].copy(), ctx).droplevel("cutoff"), model.features)
        attrs = pd.DataFrame({"name": pdf["_name"].to_numpy(), "segment": pdf["segment"].to_numpy(),
                              "csm_owner": pdf["_csm"].to_numpy()}, index=pdf["account_id"].astype(str).to_numpy())
        return X, attrs.reindex(X.index)

    def probabilities(batches):
        for pdf in batches:
            X, _ = frame(pdf)
            p = model.predict_proba(X)
            exp = p["expansion_probability"] if "expansion_probability" in p else pd.Series(np.nan, index=p.index)
            yield pd.DataFrame({"churn": p["churn_probability"].to_numpy(), "exp": exp.to_numpy()})

    probs = feats.mapInPandas(probabilities, "churn double, exp double").toPandas()
    exp_cut = expansion_cutoff(probs["exp"].to_numpy(), expansion_share)
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    run_id = f"spark-{scored_at:%Y%m%d%H%M%S}"
    kw = dict(as_of=as_of, model_name=model_name, model_version=str(model_version), top=top, run_id=run_id,
              expansion_share=expansion_share,
              scored_at=scored_at, medians=medians, expansion_threshold=exp_cut, tier_thresholds=tier_thresholds)

    def both(X, attrs):
        s, d = score_frame(X, attrs, model, defs, playbook, **kw)
        s["inputs_missing"] = "; ".join(gaps)
        add_previous(s, None)
        return _arrow_safe(s), _plain(d)

    sample_s, sample_d = both(*frame(feats.limit(50).toPandas()))
    s_cols, d_cols = list(sample_s.columns), list(sample_d.columns)
    schema = _union_schema(spark, sample_s, sample_d)

    def scored_and_explained(batches):
        for pdf in batches:
            X, attrs = frame(pdf)
            if len(X):
                s, d = both(X, attrs)
                yield _union(s, d, s_cols, d_cols)

    res = feats.mapInPandas(scored_and_explained, schema).persist()
    scores = res.filter(F.col("_kind") == "s").select(*[F.col(f"s_{c}").alias(c) for c in s_cols])
    drivers = res.filter(F.col("_kind") == "d").select(*[F.col(f"d_{c}").alias(c) for c in d_cols])
    return scores, drivers, sdf, ctx


def _union(s: pd.DataFrame, d: pd.DataFrame, s_cols, d_cols) -> pd.DataFrame:
    """Score rows and driver rows in one frame (``_kind`` s or d; the other side's columns empty)."""
    a = _nullable(s[s_cols]).add_prefix("s_").assign(_kind="s")
    b = _nullable(d[d_cols]).add_prefix("d_").assign(_kind="d")
    out = pd.concat([a, b], ignore_index=True)
    return _plain(out)


def _nullable(df: pd.DataFrame) -> pd.DataFrame:
    """Integer and boolean columns as nullable types, so the other side's empty rows keep their type."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_bool_dtype(df[c]):
            df[c] = df[c].astype("boolean")
        elif pd.api.types.is_integer_dtype(df[c]):
            df[c] = df[c].astype("Int64")
    return df


def _union_schema(spark, s: pd.DataFrame, d: pd.DataFrame):
    from pyspark.sql.types import StringType, StructField, StructType

    ss = spark.createDataFrame(s).schema
    ds = spark.createDataFrame(d).schema
    fields = [StructField(f"s_{f.name}", f.dataType, True) for f in ss.fields]
    fields += [StructField(f"d_{f.name}", f.dataType, True) for f in ds.fields]
    return StructType(fields + [StructField("_kind", StringType(), False)])


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python objects (PySpark does not yet read pandas 3's Arrow strings)."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_string_dtype(df[c]) and not pd.api.types.is_object_dtype(df[c]):
            df[c] = df[c].astype("object").where(df[c].notna(), None)
    return df


def _arrow_safe(s: pd.DataFrame) -> pd.DataFrame:
    s = _plain(s)
    for c in ("previous_churn_probability", "churn_probability_change"):
        s[c] = pd.to_numeric(s[c], errors="coerce").astype("float64")
    for c in ("previous_risk_tier", "previous_top_driver_family", "what_changed", "top_driver_family",
              "top_driver_feature"):
        s[c] = s[c].astype("object").where(s[c].notna(), None)
    s["previous_scored_at"] = pd.to_datetime(s["previous_scored_at"]).astype("datetime64[us]")
    return s
