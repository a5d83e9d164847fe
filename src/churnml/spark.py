"""Scale-out on Spark: the same feature SQL and the same scoring code, distributed.

Install with ``pip install churnml[spark]``. Nothing here duplicates a feature
definition: the family queries of :mod:`churnml.features` run unchanged on Spark
SQL over the same day-number views; scoring runs :func:`churnml.scoring.score.score_frame`
on each partition (``mapInPandas``), with the segment medians and cut-offs computed
once over the whole base so every partition explains against the same peers.

Tables are read by Spark from the data folder (Parquet or CSV, as the contract says)
and repartitioned by ``account_id``, so each account's history is processed
together. Validate a base with ``churnml validate`` (or on a sample) first: the
Spark path assumes a contract-valid input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from churnml.contract import SPECS, TABLES
from churnml.errors import ChurnmlError
from churnml.features._engine import FAMILY_MODULES, cutoff_days, feature_sql, finish_features, indicators_for
from churnml.features._frames import Context
from churnml.features.population import POPULATION_SQL


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


def read_table(spark, data_dir: str | Path, table: str):
    """One contract table as a Spark DataFrame (None when an optional table is absent)."""
    d = Path(data_dir)
    pq, csv = d / f"{table}.parquet", d / f"{table}.csv"
    if pq.is_file():
        return spark.read.parquet(str(pq))
    if csv.is_file():
        return spark.read.option("header", True).option("encoding", "UTF-8").csv(str(csv))
    if SPECS[table].required:
        raise ChurnmlError(f"{table}: required table missing in {d}")
    return None


def _days(F, col, whole: bool):  # noqa: N803
    """Day numbers of a date/timestamp/ISO-text column: whole (floor) or fractional."""
    ts = F.col(col).cast("timestamp")
    micros = F.unix_micros(ts)
    frac = micros / F.lit(86_400_000_000.0)
    return F.floor(frac).cast("long") if whole else frac


def spark_day_frames(spark, data_dir: str | Path, partitions: int | None = None):
    """The day-number views of :func:`churnml.features._frames.to_day_frames`, built by Spark."""
    _, F = _spark()
    raw = {t: read_table(spark, data_dir, t) for t in TABLES}
    s = lambda c, df: F.col(c).cast("string") if c in df.columns else F.lit(None).cast("string")  # noqa: E731
    out, present = {}, {"accounts", "subscriptions"}
    a = raw["accounts"]
    out["accounts"] = a.select(F.col("account_id").cast("string").alias("account_id"),
                               _days(F, "signup_date", True).alias("signup"),
                               s("segment", a).alias("segment"), s("industry", a).alias("industry"),
                               s("region", a).alias("region"))
    b = raw["subscriptions"]
    out["subs"] = b.select(F.col("account_id").cast("string").alias("account_id"), _days(F, "effective_date", True).alias("day"),
                           F.col("mrr").cast("double").alias("mrr"),
                           (F.col("seats") if "seats" in b.columns else F.lit(None)).cast("double").alias("seats"),
                           s("plan", b).alias("plan"),
                           (_days(F, "contract_end", True) if "contract_end" in b.columns
                            else F.lit(None).cast("long")).alias("contract_end"))
    feature_cols: tuple[str, ...] = ()
    u = raw["usage"]
    if u is not None:
        present.add("usage")
        feature_cols = tuple(sorted(c for c in u.columns if c.startswith("feature_")))
        out["usage"] = u.select(F.col("account_id").cast("string").alias("account_id"), _days(F, "date", True).alias("day"),
                                F.col("active_users").cast("double").alias("active_users"),
                                F.col("events").cast("double").alias("events"),
                                *[F.col(c).cast("double").alias(c) for c in feature_cols])
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
    return out, raw, Context(feature_columns=feature_cols, present=frozenset(present))


class SparkRunner:
    """Runs the feature SQL on Spark SQL over temporary views."""

    def __init__(self, spark, frames: dict, cutoffs: np.ndarray):
        self.spark = spark
        for name, df in frames.items():
            df.createOrReplaceTempView(name)
        spark.createDataFrame(pd.DataFrame({"cutoff": cutoffs.astype("int64")})).createOrReplaceTempView("cutoffs")

    def table(self, name: str, sql: str) -> None:
        self.spark.sql(sql).persist().createOrReplaceTempView(name)

    def view(self, name: str, sql: str) -> None:
        self.spark.sql(sql).createOrReplaceTempView(name)

    def fetch(self, sql: str):
        return self.spark.sql(sql)


def build_features_spark(spark, data_dir: str | Path, cutoffs, *, partitions: int | None = None):
    """Features on Spark: returns (Spark DataFrame with day-number cutoffs, context, raw tables)."""
    frames, raw, ctx = spark_day_frames(spark, data_dir, partitions)
    runner = SparkRunner(spark, frames, cutoff_days(cutoffs))
    runner.table("pop", POPULATION_SQL)
    for module in FAMILY_MODULES:
        runner.view(f"f_{module.FAMILY}", module.sql(ctx))
    return runner.fetch(feature_sql(ctx)), ctx, raw


def features_to_pandas(sdf, ctx: Context) -> pd.DataFrame:
    """Collect a (small) Spark feature table into churnml's pandas form."""
    return finish_features(sdf.toPandas(), ctx)


def score_spark(spark, data_dir: str | Path, model, *, as_of, model_name: str, model_version: str, playbook: dict,
                top: int = 3, expansion_share: float = 0.3, partitions: int | None = None):
    """Score and explain every paying account on Spark; returns (scores, drivers) Spark DataFrames.

    The columns are those of local scoring. Global quantities (segment medians,
    the expansion cut-off, the scoring time) are computed once and broadcast; each
    partition then runs the same :func:`score_frame` as local scoring.
    """
    from churnml.scoring.explain import expansion_cutoff
    from churnml.scoring.score import _previous, score_frame

    _, F = _spark()
    as_of = pd.Timestamp(as_of).normalize()
    sdf, ctx, raw = build_features_spark(spark, data_dir, [as_of], partitions=partitions)
    defs = {i.name: i for i in indicators_for(ctx)}
    numeric = [n for n, i in defs.items() if i.kind != "categorical"]
    seg = F.coalesce(F.col("segment"), F.lit("(none)")).alias("_seg")
    med = sdf.groupBy(seg).agg(*[F.percentile(F.col(c), 0.5).alias(c) for c in numeric]).toPandas()
    medians = med.set_index("_seg").astype("float64")
    medians.index.name = None
    feats = sdf.join(raw["accounts"].select(F.col("account_id").cast("string").alias("account_id"),
                                            F.col("name").cast("string").alias("_name"),
                                            F.col("csm_owner").cast("string").alias("_csm")
                                            if "csm_owner" in raw["accounts"].columns
                                            else F.lit(None).cast("string").alias("_csm")),
                     "account_id", "left")
    if partitions:
        feats = feats.repartition(partitions, "account_id")
    cols = [c for c in sdf.columns]

    def frame(pdf: pd.DataFrame):
        X = finish_features(pdf[cols].copy(), ctx).droplevel("cutoff")
        attrs = pd.DataFrame({"name": pdf["_name"].to_numpy(), "segment": pdf["segment"].to_numpy(),
                              "csm_owner": pdf["_csm"].to_numpy()}, index=pdf["account_id"].astype(str).to_numpy())
        return X, attrs.reindex(X.index)

    def probabilities(batches):
        for pdf in batches:
            X, _ = frame(pdf)
            p = model.predict_proba(X)
            yield pd.DataFrame({"churn": p["churn_probability"].to_numpy(), "exp": p["expansion_probability"].to_numpy()})

    probs = feats.mapInPandas(probabilities, "churn double, exp double").toPandas()
    exp_cut = expansion_cutoff(probs["exp"].to_numpy(), expansion_share)
    tiers = model.settings.get("risk_tiers") or {"high": float(np.quantile(probs["churn"], 0.9)),
                                                 "medium": float(np.quantile(probs["churn"], 0.7))}
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    run_id = f"spark-{scored_at:%Y%m%d%H%M%S}"
    kw = dict(as_of=as_of, model_name=model_name, model_version=str(model_version), top=top, run_id=run_id,
              scored_at=scored_at, medians=medians, expansion_threshold=exp_cut, tier_thresholds=tiers)

    def scored(batches):
        for pdf in batches:
            X, attrs = frame(pdf)
            if len(X):
                s, _ = score_frame(X, attrs, model, defs, playbook, **kw)
                _previous(s, None)
                yield _arrow_safe(s)

    def explained(batches):
        for pdf in batches:
            X, attrs = frame(pdf)
            if len(X):
                _, d = score_frame(X, attrs, model, defs, playbook, **kw)
                yield _plain(d)

    schema_s, schema_d = _schemas(spark, frame, feats, model, defs, playbook, kw)
    return feats.mapInPandas(scored, schema_s), feats.mapInPandas(explained, schema_d)


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


def _schemas(spark, frame, feats, model, defs, playbook, kw):
    """Spark schemas of the score and driver frames, from one small local sample."""
    from churnml.scoring.score import _previous, score_frame

    sample = feats.limit(50).toPandas()
    X, attrs = frame(sample)
    s, d = score_frame(X, attrs, model, defs, playbook, **kw)
    _previous(s, None)
    s = _arrow_safe(s)
    return spark.createDataFrame(s).schema, spark.createDataFrame(_plain(d)).schema
