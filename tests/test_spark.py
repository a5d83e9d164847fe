"""The Spark path gives the same features and scores as the local path (Spark local mode)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'churnml[spark]'")
pytestmark = [pytest.mark.spark, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (17)"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spark():
    from churnml.spark import local_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = local_session("local[2]", partitions=4)
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from churnml.generate import GeneratorConfig, generate
    from churnml.dataset import load_dataset
    from churnml.io import write_dataset

    out = tmp_path_factory.mktemp("spark") / "data"
    write_dataset(generate(GeneratorConfig(accounts=400, seed=2, years=2)), out)
    return out, load_dataset(out)


def test_spark_features_equal_local_features(spark, base):
    from churnml.features import build_features
    from churnml.spark import build_features_spark, features_to_pandas

    path, ds = base
    cuts = ["2025-06-01", "2026-01-01", "2026-06-01"]
    sdf, ctx, _ = build_features_spark(spark, path, cuts, partitions=4)
    remote = features_to_pandas(sdf, ctx)
    local = build_features(ds, cuts)
    assert len(local) > 300
    pd.testing.assert_frame_equal(local, remote, check_exact=False, rtol=1e-9)


def test_spark_scores_and_explanations_equal_local(spark, base):
    from churnml.modeling.backtest import fit_recipe
    from churnml.io.artifacts import read_playbook
    from churnml.modeling.training import training_data
    from churnml.scoring.score import score_dataset
    from churnml.spark import score_spark

    path, ds = base
    td = training_data(ds, cutoffs="monthly", horizon_days=90, uplift=0.1)
    cut = td.D.index.get_level_values("cutoff").unique()
    model, _, _ = fit_recipe(td.D, cut[cut < "2025-10-01"], cut[(cut >= "2025-11-01") & (cut <= "2026-01-01")],
                             features=td.features, categorical=td.categorical, label_cols=td.label_cols, seed=1)
    book = read_playbook(ROOT / "configs" / "playbooks.yaml")
    local = score_dataset(ds, model, model_name="m", model_version="1", as_of="2026-06-01", top=3, playbook=book,
                          expansion_share=0.3, tier_thresholds={"high": 0.3, "medium": 0.15})
    s_sdf, d_sdf, _, _ = score_spark(spark, path, model, as_of="2026-06-01", model_name="m", model_version="1",
                                     playbook=book, top=3, expansion_share=0.3,
                                     tier_thresholds={"high": 0.3, "medium": 0.15}, partitions=4)
    remote_s, remote_d = s_sdf.toPandas(), d_sdf.toPandas()
    drop = ["scored_at", "run_id"]
    a = local.scores.drop(columns=drop).sort_values("account_id").reset_index(drop=True)
    b = remote_s.drop(columns=drop).sort_values("account_id").reset_index(drop=True)[a.columns]
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)
    k = ["account_id", "target", "rank"]
    pd.testing.assert_frame_equal(local.drivers.sort_values(k).reset_index(drop=True),
                                  remote_d.sort_values(k).reset_index(drop=True)[local.drivers.columns],
                                  check_dtype=False, check_exact=False, rtol=1e-9)
