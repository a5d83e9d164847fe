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


def score_spark(spark, data_dir: str | Path, model, *, as_of, model_name: str, model_version: str, playbook,
                top: int, expansion_share: float, tier_thresholds: dict, partitions: int | None = None,
                attributes=(), allow_missing: bool = False, play_min_points: float = 1.0, lower_moves: int = 2):
    """Score and explain every paying account on Spark, with the results of local scoring.

    Returns ``(scores, drivers, ledger, features, context)``: Spark DataFrames and the feature
    context. ``scores`` and ``drivers`` have the columns of local scoring
    (:func:`churnml.scoring.score.score_dataset`; the previous score is left empty, for the
    caller to add from its ledger); ``ledger`` is the reasons' ledger columns per account
    (:attr:`ScoringResult.explained <churnml.scoring.score.ScoringResult>`, with ``account_id``
    as a column); ``features`` is the feature table at ``as_of`` (for drift).

    Features are computed at ``as_of`` and :data:`~churnml.scoring.score.PAST_DAYS` days before,
    and each account's earlier row travels with it, so reasons may quote its own past level.
    Global quantities are computed once over the whole base and given to every partition: the
    expansion cut-off, the scoring time and the healthy levels (those kept with the model, else
    the lower-risk half of all scored accounts by the risk probability, as local scoring does).
    Each partition then runs the same :func:`~churnml.scoring.score.score_frame` as local
    scoring, once: scores, reasons and ledger columns leave it together.
    """
    from churnml.scoring import reasons as R
    from churnml.scoring.explain import expansion_cutoff
    from churnml.scoring.risk import predict_risk
    from churnml.scoring.score import (PAST_DAYS, add_previous, check_inputs, model_context, score_frame,
                                       with_all_indicators)

    _, F = _spark()
    as_of = pd.Timestamp(as_of).normalize()
    past_day = as_of - pd.Timedelta(days=PAST_DAYS)
    now_n, past_n = int(cutoff_days([as_of])[0]), int(cutoff_days([past_day])[0])
    both, ctx, raw = build_features_spark(spark, data_dir, [past_day, as_of], partitions=partitions,
                                          attributes=attributes)
    gaps = check_inputs(model, ctx, allow_missing)
    defs = {i.name: i for i in indicators_for(model_context(model, ctx))}
    cols = list(both.columns)
    sdf = both.filter(F.col("cutoff") == F.lit(now_n))
    earlier = both.filter(F.col("cutoff") == F.lit(past_n)).select(
        F.col("account_id"), *[F.col(c).alias(f"_p_{c}") for c in cols if c != "account_id"])
    a = raw["accounts"]
    feats = (sdf.join(a.select(F.col("account_id").cast("string").alias("account_id"),
                               F.col("name").cast("string").alias("_name"),
                               (F.col("csm_owner") if "csm_owner" in a.columns else F.lit(None))
                               .cast("string").alias("_csm")), "account_id", "left")
             .join(earlier, "account_id", "left"))
    if partitions:
        feats = feats.repartition(partitions, "account_id")
    past_cols = [f"_p_{c}" for c in cols if c != "account_id"]

    def frame(pdf: pd.DataFrame):
        """The partition's features at as_of, account attributes and features PAST_DAYS earlier."""
        X = with_all_indicators(finish_features(pdf[cols].copy(), ctx).droplevel("cutoff"), model.features)
        attrs = pd.DataFrame({"name": pdf["_name"].to_numpy(), "segment": pdf["segment"].to_numpy(),
                              "csm_owner": pdf["_csm"].to_numpy()}, index=pdf["account_id"].astype(str).to_numpy())
        had = pdf["_p_cutoff"].notna().to_numpy()
        p = pdf.loc[had, past_cols].rename(columns=lambda c: c[3:])
        p.insert(0, "account_id", pdf.loc[had, "account_id"].to_numpy())
        p["cutoff"] = p["cutoff"].astype("int64")
        return X, attrs.reindex(X.index), finish_features(p[cols], ctx).droplevel("cutoff")

    sample = frame(feats.limit(50).toPandas())
    if sample[0].empty:
        raise ChurnmlError(f"no account is paying on {as_of - pd.Timedelta(days=1):%Y-%m-%d}: nothing to score")
    expansion = "expansion" in model.targets
    stored = bool(model.settings.get("healthy_levels"))
    reason_cols = [c for c in sample[0].columns if R.is_reason(c, defs)]
    with_segment = "segment" in sample[0].columns

    def first_pass(batches):
        for pdf in batches:
            X, _, _ = frame(pdf)
            out = {"exp": (model.predict_target(X, "expansion") if expansion and len(X)
                           else np.full(len(X), np.nan)),
                   "risk": predict_risk(model, X) if not stored and len(X) else np.full(len(X), np.nan),
                   "seg": (R.account_segments(X, "segment") if with_segment else np.full(len(X), None, dtype=object))}
            for i, c in enumerate([] if stored else reason_cols):
                out[f"r{i}"] = X[c].to_numpy(dtype="float64")
            yield pd.DataFrame(out)

    schema = "exp double, risk double, seg string" + "".join(
        f", r{i} double" for i in range(0 if stored else len(reason_cols)))
    firsts = feats.mapInPandas(first_pass, schema).toPandas()
    exp_cut = expansion_cutoff(firsts["exp"].to_numpy(dtype="float64"), expansion_share) if expansion else None
    healthy = None
    if not stored:  # as local scoring on the whole base: the lower-risk half of all accounts
        Xh = pd.DataFrame({c: firsts[f"r{i}"].to_numpy(dtype="float64") for i, c in enumerate(reason_cols)})
        if with_segment:
            Xh["segment"] = firsts["seg"].astype("object").where(firsts["seg"].notna(), None).to_numpy()
        healthy = R.healthy_levels(Xh, R.lower_risk_half(firsts["risk"].to_numpy(dtype="float64"), Xh), defs)
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    run_id = f"spark-{scored_at:%Y%m%d%H%M%S}"
    kw = dict(as_of=as_of, model_name=model_name, model_version=str(model_version), top=top, run_id=run_id,
              expansion_share=expansion_share, scored_at=scored_at, expansion_threshold=exp_cut,
              tier_thresholds=tier_thresholds, healthy=healthy, play_min_points=play_min_points,
              lower_moves=lower_moves)

    def scored(X, attrs, past):
        s, d, led = score_frame(X, attrs, model, defs, playbook, past=past, **kw)
        s["inputs_missing"] = "; ".join(gaps)
        s["backfill"] = False
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
    parts = [res.filter(F.col("_kind") == k).select(*[F.col(f"{k}_{i}").alias(c) for i, c in enumerate(kinds[k])])
             for k in ("s", "d", "l")]
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
    return ", ".join([f"{k}_{i} {t}" for k, cols in kinds.items() for i, t in enumerate(cols.values())]
                     + ["_kind string"])


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
