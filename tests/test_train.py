"""End-to-end training: backtest, MLflow logging, registry aliases and the promotion gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.flows.common import Run
from churnml.flows.train import run_training as _run_training
from trained import project_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_base(trained_base):
    """The base of the session's trained project (tests/trained.py: 1,200 accounts, 2.5 years)."""
    return trained_base


def _cfg(base, root, **over):
    return project_config(base, root, **over)


def run_training(cfg, echo=None):
    return _run_training(Run(cfg, echo=echo or (lambda m: None)))


@pytest.fixture(scope="module")
def first_run(trained_project):
    """The session's one training into a fresh store (tests/trained.py): its config and result."""
    return trained_project


def test_first_model_becomes_champion_and_report_is_written(first_run):
    _, r = first_run
    assert r.promoted and r.version == "1" and "no champion" in r.reason
    files = {p.name for p in r.output_dir.iterdir()}
    for f in (
        "report.html",
        "report.json",
        "run.json",
        "backtest_metrics.csv",
        "calibration_churn.png",
        "lift_churn.png",
        "shap_summary_churn.png",
        "features.csv",
        "reliability_churn.csv",
        "segment_metrics_churn.csv",
        "config.json",
        "time_to_churn_horizons.csv",
        "early_warning.csv",
        "within_year.csv",
        "lead_time.csv",
        "fold_models",
        "holdout_model",
    ):
        assert f in files, f
    h = r.holdout["churn"]
    assert set(h) >= {"lightgbm", "logistic_regression", "health_score", "lightgbm_uncalibrated"}
    assert 0 < h["lightgbm"]["pr_auc"] <= 1 and 0 < h["lightgbm"]["brier"] < 0.25


def test_the_report_agrees_with_run_json_and_the_registry(first_run):
    """What the training report states (version, promotion, calibration, figures) is what run.json,
    the MLflow run and the registry say."""
    import json

    import mlflow

    from churnml import tracking

    cfg, r = first_run
    rep = json.loads((r.output_dir / "report.json").read_text())
    run = json.loads((r.output_dir / "run.json").read_text())
    assert rep["version"] == run["version"] == r.version and rep["run_id"] == run["run_id"] == r.run_id
    assert rep["promote"] == run["promoted"] and rep["reason"] == run["reason"]
    assert (r.output_dir / "promotion.txt").read_text().strip() == run["reason"]
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    client = mlflow.MlflowClient()
    mv = client.get_model_version(cfg.mlflow.model_name, r.version)
    assert mv.run_id == r.run_id and mv.tags["promotion_reason"] == run["reason"]
    assert (tracking.alias_version(cfg.mlflow.model_name, "champion") == r.version) == run["promoted"]
    params = client.get_run(r.run_id).data.params
    for t, c in rep["calibration"].items():
        if t in ("expansion",):
            assert params[f"calibration_chosen_{t}"] == c["final_model"]
    metrics = client.get_run(r.run_id).data.metrics
    hold = {(m["target"], m["model"]): m for m in rep["holdout"]}
    assert abs(hold[("churn", "time_to_churn")]["pr_auc"] - float(mv.tags["holdout/churn_pr_auc"])) < 1e-3
    assert abs(hold[("churn", "time_to_churn")]["pr_auc"] - metrics["holdout/churn_pr_auc"]) < 1e-5  # 5 digits
    flat = json.loads(mlflow.artifacts.load_text(f"runs:/{r.run_id}/metrics.json"))
    for h in rep["time_to_churn"]:
        if h["pr_auc"] is not None:
            assert abs(h["pr_auc"] - flat[f"backtest_time_to_churn_{int(h['days'])}d_pr_auc"]) < 1e-4
    page = (r.output_dir / "report.html").read_text()
    assert f"version {r.version}" in page and ("Promoted to champion" in page) == run["promoted"]
    import re

    assert not re.search(r"\bnan\b", page.split("<body", 1)[1], re.IGNORECASE)  # no NaN said to a reader


def test_the_run_is_in_the_configured_experiment_with_artifacts_under_artifact_root(first_run):
    import mlflow

    from churnml import tracking

    cfg, r = first_run
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    run = mlflow.MlflowClient().get_run(r.run_id)
    assert run.info.experiment_id == mlflow.get_experiment_by_name(cfg.mlflow.experiment).experiment_id
    # recorded relative to the store's folder, found under the configured artifact root
    assert run.info.artifact_uri.startswith(f"{tracking.STORE_SCHEME}:artifacts/")
    local = tracking.store_artifact_path(run.info.artifact_uri)
    assert local.is_dir() and local.is_relative_to(Path(cfg.mlflow.artifact_root).resolve())
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(r.run_id)}
    assert {"report.html", "config.json", "holdout_model", "fold_models", "calibration_churn.png"} <= names
    assert run.data.tags.get("mlflow.note.content")  # a description
    exp = mlflow.get_experiment_by_name(cfg.mlflow.experiment)
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"  # the classic runs view
    assert run.info.end_time - run.info.start_time > 1000  # the run spans the training (ms)
    assert [d.dataset.digest for d in run.inputs.dataset_inputs]  # the training data as an input dataset


def test_mlflow_shows_a_few_headline_figures_per_fold_child_runs_and_the_rest_as_tables(first_run):
    import json

    import mlflow

    from churnml import tracking

    cfg, r = first_run
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    client = mlflow.MlflowClient()
    rep = json.loads((r.output_dir / "report.json").read_text())
    metrics = client.get_run(r.run_id).data.metrics
    assert set(metrics) == set(rep["headline"]) and 8 <= len(metrics) <= 30
    assert all(
        "/" in k and k.split("/")[0] in {"holdout", "backtest", "time_to_churn", "lead_time", "survival", "decision"}
        for k in metrics
    )
    for k, v in rep["headline"].items():
        assert metrics[k] == pytest.approx(v, abs=1e-9)
    children = client.search_runs(
        [client.get_run(r.run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{r.run_id}'"
    )
    assert sorted(c.data.tags["fold"] for c in children) == [str(f["fold"]) for f in rep["folds"]]
    for c in children:
        fm = rep["fold_metrics"][c.data.tags["fold"]]
        assert c.data.metrics == pytest.approx(fm) and "backtest/churn_pr_auc" in fm
        assert set(fm) <= set(metrics)  # a child shows its fold under the columns of the parent
        fold = rep["folds"][int(c.data.tags["fold"])]
        assert c.info.status == "FINISHED" and c.data.params["test_cutoffs"] == fold["test"]
    fold_csv = pd.read_csv(r.output_dir / "fold_metrics_churn.csv")
    f0 = fold_csv[(fold_csv["fold"] == 0) & (fold_csv["model"] == "time_to_churn")]["pr_auc"].item()
    assert rep["fold_metrics"]["0"]["backtest/churn_pr_auc"] == pytest.approx(f0, abs=1e-5)
    tables = {a.path for a in client.list_artifacts(r.run_id, "tables")}
    assert {"tables/backtest_metrics.json", "tables/fold_metrics_churn.json", "tables/lead_time.json"} <= tables
    flat = json.loads(mlflow.artifacts.load_text(f"runs:/{r.run_id}/metrics.json"))
    assert len(flat) > 60 and "holdout_churn_lightgbm_pr_auc" in flat  # every figure is kept, as JSON


def test_the_page_report_json_the_registry_and_the_mlflow_run_agree_on_every_headline_figure(first_run):
    """One number, one name: each headline figure is the same in report.json, on the page, in the MLflow run's
    metrics and in the registered version's tags; the page's sentences and decision rows quote report.json."""
    import json

    import mlflow

    from churnml import tracking

    cfg, r = first_run
    rep = json.loads((r.output_dir / "report.json").read_text())
    page = (r.output_dir / "report.html").read_text()
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    client = mlflow.MlflowClient()
    metrics = client.get_run(r.run_id).data.metrics
    tags = client.get_model_version(cfg.mlflow.model_name, r.version).tags
    head = rep["headline"]
    for family in ("holdout/", "backtest/", "survival/", "decision/", "lead_time/"):
        assert any(k.startswith(family) for k in head), family
    for k, v in head.items():
        assert metrics[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k
        assert tags[k] == f"{v:.4f}", k
        assert f'<tr><td>{k}</td><td class="n">{v:.4f}</td></tr>' in page, k
    # the survival figures of the page's pooled row and sentence
    pooled = next(v for v in rep["survival"] if v["fold"] == "all folds")
    assert pooled["uno_c"] == pytest.approx(head["survival/uno_c"], abs=1e-5)
    assert f"All folds pooled: Uno's C {head['survival/uno_c']:.3f}" in page
    # the headline comparison: same target, same rows, with its interval
    c = next(c for c in rep["comparisons"] if c["versus"] == "lightgbm")
    assert c["pr_auc_difference"] == pytest.approx(head["holdout/churn_pr_auc_gain_vs_90d_classifier"], abs=1e-5)
    assert c["pr_auc"] == pytest.approx(head["holdout/churn_pr_auc"], abs=1e-5)
    lo, hi = c["pr_auc_difference_low"], c["pr_auc_difference_high"]
    assert f"{c['pr_auc_difference']:+.3f} [{lo:.3f}, {hi:.3f}]" in page
    # the tier cut-offs as decisions
    high = next(d for d in rep["decisions"] if d["cut_off"] == "high")
    assert high["precision"] == pytest.approx(head["decision/high_tier_precision"], abs=1e-5)
    assert f"{high['precision'] * 100:.1f}% &plusmn; {high['precision_fold_sd'] * 100:.1f}%" in page
    assert rep["lead_time"]["high_tier_share"] == pytest.approx(high["alert_share"], abs=1e-5)  # equal volume
    equal = [n for n in rep["lead_time"] if "the high tier's volume" in n]
    assert len(equal) == 1 and rep["lead_time"][equal[0]]["alert_share"] == pytest.approx(high["alert_share"], abs=0.01)
    # per-segment results on the page
    assert 'id="segments-table"' in page and all(f"<td>{g['segment']}</td>" in page for g in rep["segments"])


def test_the_report_is_one_self_contained_page(first_run):
    _, r = first_run
    page = (r.output_dir / "report.html").read_text()
    assert 'loading="lazy"' not in page and '<img src="data:image/png;base64,' in page
    import re

    assert not re.search(r'<img src="(?!data:)', page)  # no image fetched from a relative path


def test_a_moved_store_still_opens_its_runs_report_and_models(first_run, tmp_path):
    """The store and its artifacts moved together (a copied outputs/): the runs, the report and the registered
    model open from the new place; nothing is read from the old one."""
    import shutil

    import mlflow

    from churnml import tracking

    cfg, r = first_run
    old = Path(cfg.mlflow.tracking_uri[len("sqlite:///") :]).parent
    new = tmp_path / "moved"
    new.mkdir()
    shutil.copy(old / "mlflow.db", new / "mlflow.db")
    shutil.copytree(old / "artifacts", new / "artifacts")
    hidden = old.with_name(old.name + "-hidden")
    old.rename(hidden)
    try:
        tracking.configure(f"sqlite:///{new / 'mlflow.db'}", cfg.mlflow.experiment)
        page = mlflow.artifacts.load_text(f"runs:/{r.run_id}/report.html")
        assert f"version {r.version}" in page
        folder, version = tracking.registered_model_dir(cfg.mlflow.model_name, "champion")
        assert version == r.version and folder.is_relative_to(new)
    finally:
        hidden.rename(old)


def test_model_loads_from_the_registry_alias_and_predicts_probabilities(first_run, small_base):
    import mlflow

    from churnml import tracking
    from churnml.api import load_dataset
    from churnml.modeling.training import as_model_input, training_data

    cfg, r = first_run
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{cfg.mlflow.model_name}@champion")
    td = training_data(load_dataset(small_base), cutoffs="monthly", horizon_days=90, uplift=0.1)
    X = td.X.iloc[:300]
    out = pyfunc.predict(as_model_input(X, td.categorical))
    assert list(out.columns) == [
        "churn_probability",
        "churn_probability_30d",
        "churn_probability_180d",
        "churn_probability_365d",
        "churn_probability_next_renewal",
        "median_months_to_churn",
        "risk_probability",
        "expansion_probability",
    ]
    p = out.drop(columns="median_months_to_churn").to_numpy()
    assert np.nanmin(p) >= 0 and np.nanmax(p) <= 1 and out["churn_probability"].nunique() > 10
    native, version = Run(cfg).registered_model("champion")
    assert version == r.version
    np.testing.assert_allclose(out.to_numpy(), native.predict_proba(X).to_numpy())
    # one path: what the served model gives is what promotion judges and scoring shows
    np.testing.assert_allclose(out["churn_probability"], native.predict_churn(X))
    np.testing.assert_allclose(out["risk_probability"], native.predict_risk(X))


def test_registered_model_is_refit_on_the_newest_labels_and_the_gate_judges_holdout_models(first_run, small_base):
    from churnml import tracking
    from churnml.api import load_dataset
    from churnml.modeling.metrics import binary_metrics
    from churnml.modeling.training import training_data

    cfg, r = first_run
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    run = Run(cfg)
    final, _ = run.registered_model("champion")
    held = run.holdout_model("champion")
    fold0, gap = r.folds[0], pd.Timedelta(days=90)
    # the final model calibrates on the newest labelled cutoffs and fits on all whose window closes before them
    assert list(final.card.calibration_cutoffs) == [f"{t:%Y-%m-%d}" for t in fold0.test]
    last_fit = pd.Timestamp(final.card.fit_cutoffs[-1])
    assert last_fit + gap <= fold0.test[0] < last_fit + gap + pd.Timedelta(days=31)
    assert last_fit > fold0.fit[-1]
    # the holdout model never saw the holdout cutoffs, and reproduces the holdout metrics the gate compares
    assert held.card.fit_cutoffs[-1] == f"{fold0.fit[-1]:%Y-%m-%d}"
    assert held.card.first_test_cutoff == f"{fold0.test[0]:%Y-%m-%d}"
    td = training_data(load_dataset(small_base), cutoffs="monthly", horizon_days=90, uplift=0.1)
    hold = td.D[td.D.index.get_level_values("cutoff").isin(list(fold0.test))]
    m = binary_metrics(
        hold[td.label_cols["churn"]].astype(int), held.predict_churn(hold), 12.0 * hold["mrr"].to_numpy(float)
    )
    assert m["pr_auc"] == pytest.approx(r.holdout["churn"]["time_to_churn"]["pr_auc"], rel=1e-9)
    assert not np.allclose(final.predict_churn(hold), held.predict_churn(hold))


def test_same_seed_gives_the_same_metrics(first_run, small_base, tmp_path):
    _, r1 = first_run
    r2 = run_training(_cfg(small_base, tmp_path), echo=lambda m: None)
    pd.testing.assert_frame_equal(r1.backtest, r2.backtest)
    assert r1.holdout["churn"]["lightgbm"] == r2.holdout["churn"]["lightgbm"]


def test_gate_keeps_the_champion_when_a_worse_model_is_trained(first_run, small_base):
    from churnml import tracking

    cfg, r1 = first_run
    worse = _cfg(
        small_base,
        cfg.output_dir.parent,
        **{"train.params": {"num_leaves": 2, "max_depth": 1, "learning_rate": 0.01, "n_estimators": 3}},
    )
    r2 = run_training(worse, echo=lambda m: None)
    assert not r2.promoted and "kept the champion" in r2.reason
    assert r2.holdout["churn"]["lightgbm"]["pr_auc"] < r1.holdout["churn"]["lightgbm"]["pr_auc"]
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    assert tracking.alias_version(cfg.mlflow.model_name, "champion") == r1.version
    assert tracking.alias_version(cfg.mlflow.model_name, "challenger") == r2.version
    assert (r2.output_dir / "promotion.txt").read_text().startswith("kept the champion")


def test_lightgbm_beats_the_baselines_in_the_backtest(first_run):
    _, r = first_run
    m = r.backtest.loc["churn"]
    assert m.loc["lightgbm", "pr_auc"] > m.loc["logistic_regression", "pr_auc"] > m.loc["health_score", "pr_auc"]
    assert m.loc["lightgbm", "top_decile_lift"] > m.loc["health_score", "top_decile_lift"]


def test_tune_saves_best_params_that_train_then_uses(small_base, tmp_path):
    import json

    from churnml.flows.tune import run_tuning
    from churnml.modeling.training import merge_params

    cfg = _cfg(
        small_base,
        tmp_path,
        **{"train.folds": 3, "tune.trials": 3, "train.tuned_params_file": str(tmp_path / "best.json")},
    )
    rec = run_tuning(Run(cfg, echo=lambda m: None))
    saved = json.loads((tmp_path / "best.json").read_text())
    assert saved["trials"] == 3 and saved["folds"] == [1, 2]  # the holdout fold 0 is never tuned on
    assert saved["mean_pr_auc"] >= saved["default_mean_pr_auc"]  # trial 0 is the defaults
    assert rec["mean_pr_auc"] == saved["mean_pr_auc"]
    params, source = merge_params(Run(cfg).tuned_params(), cfg.train.params)
    assert source.startswith("tuned") and params == saved["params"]


def test_a_history_the_hazard_model_cannot_learn_falls_back_to_the_90_day_classifier(small_base, tmp_path, monkeypatch):
    """When time to churn cannot be fitted (e.g. no churn observed in the newest months), train says so in
    one line and the 90-day classifier gives the risk and its tiers; scoring still works."""
    import churnml.modeling.recipe as flow
    from churnml.errors import ChurnmlError
    from churnml.flows.score import run_scoring

    def refuse(*a, **k):
        raise ChurnmlError("history too short for the time-to-churn model: the training slice has 0 churns")

    monkeypatch.setattr(flow, "run_survival_backtest", refuse)
    cfg = _cfg(small_base, tmp_path, **{"mlflow.model_name": "fallback_test"})
    said = []
    r = run_training(cfg, echo=said.append)
    assert any(m.startswith("time to churn skipped: history too short") for m in said)
    assert "lightgbm" in r.holdout["churn"] and "time_to_churn" not in r.holdout["churn"]
    assert "no time-to-churn model" in r.summary
    run = Run(cfg)
    run.tracking()
    model, _ = run.registered_model("champion")
    assert model.survival is None and "churn" in model.targets
    result, _ = run_scoring(Run(cfg, echo=lambda m: None))
    s = result.scores
    np.testing.assert_allclose(s["risk_probability"], s["churn_probability"])
    assert s["churn_probability_365d"].isna().all() and (s["risk_basis"] == "horizon").all()
    assert (s["risk_window_days"] == 90).all()


def test_a_30_day_model_serves_scores_and_is_promoted_on_30_day_figures(first_run, small_base):
    """`--horizon 30`: the card says 30 days; the served pyfunc, the promotion gate and the scores all give
    the 30-day point of the curve as churn_probability (one predict_proba path); a champion answering 90 days
    cannot be compared with it, and the gate says so instead of judging it on 90-day figures."""
    import mlflow

    from churnml.api import load_dataset
    from churnml.flows.score import run_scoring
    from churnml.modeling.promotion import holdout_metrics
    from churnml.modeling.training import as_model_input, training_data

    cfg90, _ = first_run
    cfg = cfg90.model_copy(update={"labels": cfg90.labels.model_copy(update={"horizon_days": 30})})
    r = run_training(cfg)
    assert r.promoted and "cannot be compared" in r.reason and "90 days" in r.reason
    run = Run(cfg)
    run.tracking()
    model, version = run.registered_model("champion")
    assert model.card.horizon_days == 30 and version == r.version
    td = training_data(load_dataset(small_base), cutoffs="monthly", horizon_days=30, uplift=0.1)
    X = td.X.iloc[:200]
    served = mlflow.pyfunc.load_model(f"models:/{cfg.mlflow.model_name}@champion").predict(
        as_model_input(X, td.categorical)
    )
    thirty = model.survival.predict_curve(X, (30, 90))
    np.testing.assert_allclose(served["churn_probability"], thirty["churn_30d"], rtol=1e-9)
    np.testing.assert_allclose(served["churn_probability_90d"], thirty["churn_90d"], rtol=1e-9)
    assert "churn_probability_30d" not in served
    # the gate judges the holdout model on 30-day labels with its 30-day probability: the logged holdout figure
    held = run.holdout_model("champion")
    hold = td.D[td.D.index.get_level_values("cutoff").isin(list(r.folds[0].test))]
    m = holdout_metrics(held, hold, td.label_cols["churn"])
    assert m["pr_auc"] == pytest.approx(r.holdout["churn"]["time_to_churn"]["pr_auc"], rel=1e-9)
    assert holdout_metrics(held, hold, "churned_90d").get("not_comparable")
    result, _ = run_scoring(Run(cfg, echo=lambda m: None))
    s = result.scores.set_index("account_id")
    Xs = result.scores  # the scores' own churn_probability is the same 30-day point
    assert "churn_probability_90d" in Xs and "churn_probability_30d" not in Xs
    assert (s["churn_probability"] <= s["churn_probability_90d"] + 1e-12).all()
