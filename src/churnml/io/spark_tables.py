"""Reading the contract tables with Spark (the Spark engine's only file access)."""

from __future__ import annotations

from pathlib import Path

from churnml.contract import SPECS
from churnml.errors import ChurnmlError


def read_spark_table(spark, data_dir: str | Path, table: str):
    """One contract table as a Spark DataFrame (None when an optional table is absent).

    Paths may be local or any URI Spark reads (HDFS, S3); a local folder is checked for
    the ``<table>.parquet`` / ``<table>.csv`` files, other URIs are tried in that order.
    """
    d = str(data_dir).rstrip("/")
    local = "://" not in d
    for suffix, reader in (
        (".parquet", lambda p: spark.read.parquet(p)),
        (".csv", lambda p: spark.read.option("header", True).option("encoding", "UTF-8").option("escape", '"').csv(p)),
    ):
        path = f"{d}/{table}{suffix}"
        if local:
            if Path(path).is_file():
                return reader(path)
            continue
        try:
            return reader(path)
        except Exception:
            continue
    if SPECS[table].required:
        raise ChurnmlError(f"{table}: required table missing in {data_dir}")
    return None
