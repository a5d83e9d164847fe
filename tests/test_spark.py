"""The Spark path gives the same features and scores as the local path (Spark local mode)."""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'churnml[spark]'")
pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (17)"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spark():
    from churnml.spark import local_session

    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = local_session("local[2]", partitions=2)
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from churnml.api import load_dataset
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    out = tmp_path_factory.mktemp("spark") / "data"
    write_dataset(generate(GeneratorConfig(accounts=250, seed=2, years=2)), out)
    return out, load_dataset(out)


def test_spark_features_equal_local_features(spark, base):
    from churnml.features import build_features
    from churnml.spark import build_features_spark, features_to_pandas

    path, ds = base
    cuts = ["2025-06-01", "2026-01-01", "2026-06-01"]
    sdf, ctx, _ = build_features_spark(spark, path, cuts, partitions=2)
    remote = features_to_pandas(sdf, ctx)
    local = build_features(ds, cuts)
    assert len(local) > 180
    pd.testing.assert_frame_equal(local, remote, check_exact=False, rtol=1e-9)


@pytest.fixture(scope="module")
def model(base):
    """The final model of the recipe ``churnml train`` runs (:func:`churnml.modeling.recipe.run`, one fold):
    the time-to-churn model on every cutoff as known on the last day, expansion on the newest labels, and
    on its card the healthy levels of the calibration cutoffs' accounts that did not churn."""
    from churnml.modeling import recipe

    _, ds = base
    fitted = recipe.run(
        ds,
        recipe.RecipeSpec(
            seed=1,
            cutoffs="monthly",
            min_events=10,
            folds=recipe.FoldSpec(n_folds=1, test_cutoffs=1, calibration_cutoffs=2),
        ),
    )
    m = fitted.model
    assert "expansion" in m.targets and m.survival is not None and m.card.healthy_levels
    return m


@pytest.mark.parametrize("healthy", ["computed", "stored"])
def test_spark_scores_and_explanations_equal_local(spark, base, model, healthy):
    """Scores (every probability, tier, timing, how to lower it, points per family), reasons and the
    ledger columns of Spark equal local scoring, with healthy levels computed over the whole base
    (not per partition) or kept with the model, and each account's own level 90 days earlier."""
    from churnml.io.artifacts import read_playbook
    from churnml.scoring.reasons import parse_playbook
    from churnml.scoring.score import ScoringSpec, score_dataset
    from churnml.spark import score_spark

    path, ds = base
    m = copy.copy(model)
    if healthy == "computed":
        m.card = dataclasses.replace(m.card, healthy_levels=None)
    book = parse_playbook(read_playbook(ROOT / "configs" / "playbooks.yaml"), "playbooks.yaml")
    spec = ScoringSpec(
        playbook=book,
        tier_thresholds={"high": 0.06, "medium": 0.03},
        top=3,
        expansion_share=0.3,
        play_min_points=0.5,
        lower_moves=2,
    )
    kw = {"model_name": "m", "model_version": "1", "as_of": "2026-06-01"}
    local = score_dataset(ds, m, spec, **kw)
    s_sdf, d_sdf, l_sdf, f_sdf, ctx = score_spark(spark, path, m, spec, partitions=2, **kw)
    remote_s, remote_d = s_sdf.toPandas(), d_sdf.toPandas()
    remote_l = l_sdf.toPandas().set_index("account_id")
    drop = ["scored_at", "run_id"]
    a = _missing_as_none(local.scores.drop(columns=drop).sort_values("account_id").reset_index(drop=True))
    b = _missing_as_none(remote_s.drop(columns=drop).sort_values("account_id").reset_index(drop=True))
    assert list(b.columns) == list(a.columns)
    # the comparison means something: time-to-churn columns, how to lower it, past levels quoted
    assert a["churn_probability_365d"].notna().all() and (a["risk_probability"] != a["churn_probability"]).any()
    assert (a["how_to_lower"] != "").sum() >= 10 and a["timing"].str.len().gt(0).all()
    assert local.drivers["past_value"].notna().sum() >= 10 and (a["churn_points_timing"] != 0).any()
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)
    k = ["account_id", "target", "rank"]
    remote_d = remote_d.sort_values(k).reset_index(drop=True)[local.drivers.columns]
    pd.testing.assert_frame_equal(
        _missing_as_none(local.drivers.sort_values(k).reset_index(drop=True)),
        _missing_as_none(remote_d),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )
    assert local.explained is not None and len(local.explained) == len(a)
    pd.testing.assert_frame_equal(
        _missing_as_none(local.explained.sort_index()),
        _missing_as_none(remote_l.sort_index()[local.explained.columns]),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
        check_index_type=False,
    )
    X = features_to_pandas_at(f_sdf, ctx)
    assert sorted(X.index) == sorted(a["account_id"])


def features_to_pandas_at(sdf, ctx):
    from churnml.spark import features_to_pandas

    X = features_to_pandas(sdf, ctx)
    assert X.index.get_level_values("cutoff").unique().tolist() == [pd.Timestamp("2026-06-01")]
    return X.droplevel("cutoff")


def _missing_as_none(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects with None for missing (Spark hands back str columns with NaN)."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_string_dtype(df[c]) or pd.api.types.is_object_dtype(df[c]):
            df[c] = df[c].astype("object").where(df[c].notna(), None)
    return df
