"""Batch scoring: probabilities, additive explanations, drift, ledger, atomic outputs, the story."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from churnml.flows.common import Run
from trained import project_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _cfg(base, root, **over):
    return project_config(base, root, **over)


def run_scoring(cfg, **kw):
    from churnml.flows.score import run_scoring as flow

    return flow(Run(cfg, echo=lambda m: None), **kw)


@pytest.fixture(scope="module")
def trained(trained_project, trained_base):
    """The session's trained project (tests/trained.py): its config, data, champion and version."""
    from churnml.api import load_dataset

    cfg, _ = trained_project
    run = Run(cfg)
    run.tracking()
    model, version = run.registered_model("champion")
    return cfg, load_dataset(trained_base), model, version


@pytest.fixture(scope="module")
def scored(trained):
    cfg, ds, model, _version = trained
    result, paths = run_scoring(cfg, as_of="2026-08-01")
    return cfg, ds, model, result, paths


def test_scores_table_probabilities_equal_the_models(scored):
    from churnml.features import build_features

    cfg, ds, model, result, paths = scored
    s = pd.read_parquet(paths["scores"]).set_index("account_id")
    X = build_features(ds, ["2026-08-01"]).droplevel("cutoff")
    p = model.predict_proba(X)
    np.testing.assert_allclose(s.loc[X.index, "churn_probability"], p["churn_probability"], rtol=1e-9)
    np.testing.assert_allclose(s.loc[X.index, "expansion_probability"], p["expansion_probability"], rtol=1e-9)
    sv = model.survival
    np.testing.assert_allclose(s.loc[X.index, "risk_probability"], sv.predict_risk(X), rtol=1e-9)
    nr = sv.predict_next_renewal(X)
    np.testing.assert_allclose(s.loc[X.index, "churn_probability_next_renewal"], nr, rtol=1e-9)
    curve = s.loc[
        X.index, ["churn_probability_30d", "churn_probability", "churn_probability_180d", "churn_probability_365d"]
    ].to_numpy()
    assert (np.diff(curve, axis=1) >= -1e-12).all() and ((curve >= 0) & (curve <= 1)).all()  # a monotone curve
    known = s["days_to_renewal"].notna()
    monthly = X["term_length_days"].reindex(s.index) <= 45
    renews = known & ~monthly
    assert (s.loc[renews, "risk_basis"] == "renewal").all() and s.loc[renews, "risk_renewal_date"].notna().all()
    assert (s.loc[monthly, "risk_basis"] == "monthly_term").all() and monthly.any()
    assert (s.loc[monthly, "risk_window_days"] == 365).all() and s.loc[monthly, "risk_renewal_date"].isna().all()
    # the risk runs to the renewal it names: the renewal date is within its window
    ahead = (s.loc[renews, "risk_renewal_date"] - s.loc[renews, "as_of"]).dt.days
    assert (ahead < s.loc[renews, "risk_window_days"]).all()
    # the risk probability sets the tier, with the model's thresholds
    from churnml.flows.common import Run

    th = Run(cfg).tiers(model)
    assert th["method"] == "capacity"  # the default: the high tier is what a team can work
    high = s["risk_tier"] == "high"
    assert (s.loc[high, "risk_probability"] >= th["high"]).all() and high.mean() <= th["high_max_share"]
    books = s["csm_owner"].astype("object").fillna("(unassigned)")
    assert books[high].value_counts().max() <= th["capacity_per_csm"]
    lost = s["arr"] * s["risk_probability"]
    for _, g in s.assign(_lost=lost, _book=books).groupby("_book"):  # a book's high accounts lose the most ARR
        over = g[g["risk_probability"] >= th["high"]]
        chosen = over["risk_tier"] == "high"
        if chosen.any() and (~chosen).any():
            assert over.loc[chosen, "_lost"].min() >= over.loc[~chosen, "_lost"].max()
    want = np.where(high, "high", np.where(s["risk_probability"] >= th["medium"], "medium", "low"))
    assert (s["risk_tier"].to_numpy() == want).all()
    csv = pd.read_csv(paths["scores_csv"])
    assert len(csv) == len(s) and set(csv.columns) == set(s.reset_index().columns)
    assert (s["arr_at_risk"] - 12 * s["mrr"] * s["risk_probability"]).abs().max() < 1e-6
    assert set(s["risk_tier"]) <= {"high", "medium", "low"} and (s["model_version"] == result.model_version).all()
    assert s.loc[s["risk_tier"] == "high", "top_driver"].str.len().gt(0).mean() > 0.9


def test_points_of_every_component_add_up_to_the_risk_probability(scored):
    from churnml.features import build_features

    _, ds, model, result, _ = scored
    X = build_features(ds, ["2026-08-01"]).droplevel("cutoff")
    tm = model.targets["expansion"]
    Xp = model.prepare(X)
    phi = tm.booster.predict(Xp, pred_contrib=True, num_iteration=tm.best_iteration)
    raw = tm.booster.predict(Xp, raw_score=True, num_iteration=tm.best_iteration)
    np.testing.assert_allclose(phi.sum(axis=1), raw, atol=1e-9)  # log-odds: base + contributions
    pts, p, p0 = model.explain_target(X, "expansion")
    np.testing.assert_allclose(p0 + pts.sum(axis=1).to_numpy(), p, atol=1e-9)  # probability points
    s = result.scores.set_index("account_id")
    assert (s["explains"] == "churn_risk").all()
    comp = s[[c for c in s.columns if c.startswith("churn_points_")]]
    assert {"churn_points_timing", "churn_points_profile", "churn_points_base"} <= set(comp.columns)
    np.testing.assert_allclose(comp.sum(axis=1), s["risk_probability"], atol=1e-9)


def test_reasons_are_behaviour_with_plays_that_fit(scored):
    _, _, _, result, paths = scored
    d = pd.read_parquet(paths["drivers"])
    churn = d[d["target"] == "churn"]
    up = churn[churn["direction"] == "raises"]
    assert up["points"].gt(0).all()
    assert set(d["family"]) <= {"usage", "effort", "support", "onboarding", "commercial"}  # never timing
    plays = d[d["play"].astype(str).str.len() > 0]
    assert plays["points"].abs().ge(0.01).all()  # a play only for a reason worth >= 1 point
    assert not plays.duplicated(["account_id", "play"]).any()  # each play at most once per account
    s = result.scores
    high = s[s["risk_tier"] == "high"]
    assert high["timing"].str.len().gt(0).all() and high["how_to_lower"].str.contains("would fall from").mean() > 0.8


def test_drift_is_flagged_when_a_feature_is_shifted_on_purpose(trained):
    from churnml.features import build_features
    from churnml.modeling.drift import drift_table

    _, ds, model, _ = trained
    X = build_features(ds, ["2025-12-01"]).droplevel("cutoff")
    ref = model.card.reference
    calm = drift_table(X, ref)
    assert not calm.set_index("feature").loc["active_users_per_seat_30d", "drifted"]
    shifted = X.assign(active_users_per_seat_30d=X["active_users_per_seat_30d"] * 3 + 0.5, segment="Enterprise")
    d = drift_table(shifted, ref).set_index("feature")
    assert d.loc["active_users_per_seat_30d", "drifted"] and d.loc["segment", "drifted"]
    assert d.loc["active_users_per_seat_30d", "psi"] > 1.0


def test_ledger_appends_and_what_changed_compares_with_the_previous_score(scored):
    cfg, _, _, first, paths = scored
    second, _ = run_scoring(cfg, as_of="2026-09-01")
    ledger = pd.read_parquet(paths["ledger"])
    assert len(ledger) >= len(first.scores) + len(second.scores)
    assert ledger["run_id"].nunique() >= 2
    both = second.scores[second.scores["previous_churn_probability"].notna()]
    assert len(both) > 0 and both["what_changed"].str.contains("since 2026-08-01").all()
    np.testing.assert_allclose(
        both["churn_probability_change"], both["churn_probability"] - both["previous_churn_probability"]
    )
    np.testing.assert_allclose(
        both["risk_probability_change"], both["risk_probability"] - both["previous_risk_probability"]
    )
    assert both["what_changed"].str.contains(r"\(\d+%% -> \d+%%\)".replace("%%", "%")).mean() > 0.9


def test_a_data_folder_moved_between_two_score_runs_keeps_its_history(trained, tmp_path):
    """Score a base, move its folder (another mount, as cron or a container sees it), score again: one ledger,
    and "what changed" compares with the score made before the move. Another base under the same folder name
    is refused with a clear line and leaves the ledger as it was; with its own base_name it gets its own."""
    import shutil

    from churnml.errors import ChurnmlError
    from churnml.generate import GeneratorConfig, generate
    from churnml.io import write_dataset

    cfg, _, _, _ = trained
    here = tmp_path / "a" / "data"
    shutil.copytree(cfg.data_dir, here)
    out = tmp_path / "out"
    first, p1 = run_scoring(cfg.model_copy(update={"data_dir": here, "output_dir": out}), as_of="2026-07-01")
    there = tmp_path / "mnt" / "volume" / "data"
    there.parent.mkdir(parents=True)
    shutil.move(here, there)
    said: list[str] = []
    from churnml.flows.score import run_scoring as flow

    moved = cfg.model_copy(update={"data_dir": there, "output_dir": out})
    second, p2 = flow(Run(moved, echo=said.append), as_of="2026-08-01")
    assert p1["ledger"] == p2["ledger"] == out / "ledger" / "data"
    assert any("is now read from" in m and "its history continues" in m for m in said)
    ledger = pd.read_parquet(p2["ledger"])
    assert set(ledger["run_id"]) == {first.run_id, second.run_id}
    both = second.scores[second.scores["previous_churn_probability"].notna()]
    assert len(both) > 0.9 * len(second.scores) and both["what_changed"].str.contains("since 2026-07-01").all()
    other = tmp_path / "b" / "data"
    write_dataset(generate(GeneratorConfig(accounts=300, seed=99, years=2.5)), other)
    with pytest.raises(ChurnmlError, match="two different bases share the name 'data'"):
        run_scoring(cfg.model_copy(update={"data_dir": other, "output_dir": out}), as_of="2026-08-01")
    assert len(pd.read_parquet(p2["ledger"])) == len(ledger)
    own, p3 = run_scoring(
        cfg.model_copy(update={"data_dir": other, "output_dir": out, "base_name": "other"}), as_of="2026-08-01"
    )
    assert p3["ledger"] == out / "ledger" / "other" and len(pd.read_parquet(p3["ledger"])) == len(own.scores)


def test_backfill_scores_past_months_with_folds_that_had_not_seen_them(trained, tmp_path):
    """`score --backfill 3`: three monthly as-of dates before the as-of date, each scored by a backtest
    fold model whose first test cutoff is on or before it, marked backfill in the ledger; rerun: none again."""
    from churnml.flows.score import fold_for

    cfg, _, _, _ = trained
    cfg = cfg.model_copy(update={"output_dir": tmp_path / "out"})
    result, paths = run_scoring(cfg, as_of="2026-09-01", backfill=3)
    ledger = pd.read_parquet(paths["ledger"])
    past = ledger[ledger["backfill"]]
    assert sorted(pd.to_datetime(past["as_of"]).dt.strftime("%Y-%m-%d").unique()) == [
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
    ]
    folds = Run(cfg).fold_models("champion")
    for day, g in past.groupby("as_of"):
        k = int(g["model_version"].iloc[0].rsplit("fold", 1)[1])
        assert pd.Timestamp(folds[k].card.first_test_cutoff) <= pd.Timestamp(day)
        assert fold_for(folds, pd.Timestamp(day)) is folds[k]
    assert not ledger.loc[~ledger["backfill"], "model_version"].str.contains("fold").any()
    s = result.scores
    assert s["what_changed"].str.contains("since 2026-08-01").mean() > 0.9  # history from the first run
    again, paths = run_scoring(cfg, as_of="2026-09-01", backfill=3)
    assert len(pd.read_parquet(paths["ledger"])) == len(ledger) + len(again.scores)
    # `make demo` scores with six months of backfill, so its ledger holds seven as-of dates from the first run
    make = (ROOT / "Makefile").read_text()
    assert "score --data-dir $(DATA_DIR) --backfill 6" in make and "demo: data validate train score report" in make


def test_a_killed_scoring_run_leaves_no_output_file(trained, tmp_path):
    cfg, _, _, _ = trained
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import sys, time
        import pandas as pd
        from churnml.config import load_config
        from churnml.flows.common import Run
        from churnml.flows.score import run_scoring
        real = pd.DataFrame.to_parquet
        def slow(self, path, *a, **k):
            real(self, path, *a, **k)
            print("WRITING", flush=True)
            time.sleep(120)
        pd.DataFrame.to_parquet = slow
        cfg = load_config(None, **{{
            "data_dir": {str(cfg.data_dir)!r}, "mlflow.tracking_uri": {cfg.mlflow.tracking_uri!r},
            "mlflow.model_name": {cfg.mlflow.model_name!r}, "output_dir": {str(out)!r}}})
        run_scoring(Run(cfg), as_of="2026-08-01")
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "WRITING"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    names = [p.name for p in out.iterdir() if p.name != "ledger"] if out.exists() else []
    assert "scores" not in names and not list(out.glob("ledger/**/part-*"))  # nothing published, no ledger rows
    assert all(n.startswith(".") and n.endswith(".tmp") for n in names)  # only the hidden folder being built


def test_explain_tells_one_accounts_story(scored):
    from churnml.cli import cli

    cfg, _, _, result, _ = scored
    acc = result.scores.sort_values("arr_at_risk").iloc[-1]
    args = [
        "--data-dir",
        str(cfg.data_dir),
        "--tracking-uri",
        cfg.mlflow.tracking_uri,
        "--as-of",
        "2026-08-01",
        "--model-name",
        cfg.mlflow.model_name,
    ]
    r = CliRunner().invoke(cli, ["explain", "--account", acc["account_id"], *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert acc["name"] in r.output and "pts" in r.output and "By family" in r.output and "Timing:" in r.output
    assert "-0.0" not in r.output
    # explain scores as the run did: an account with right-sizing on its page has it in explain too
    d = result.drivers
    sized = list(d.loc[d["play_id"] == "seat_right_sizing", "account_id"].unique()[:2])
    some = sized + list(d.loc[d["play"].astype(str) != "", "account_id"].unique()[:1])
    assert some
    for a in some:
        r = CliRunner().invoke(cli, ["explain", "--account", a, *args], catch_exceptions=False)
        plays = d.loc[(d["account_id"] == a) & (d["play"].astype(str) != ""), "play"]
        assert len(plays) and all(f"play: {p}" in r.output for p in plays), a
    r = CliRunner().invoke(cli, ["explain", "--account", "NO-SUCH", *args])
    assert r.exit_code == 2 and "unknown account_id" in r.output


def test_every_play_on_an_account_page_is_in_explain_on_the_same_reason(scored):
    """One mapping of plays to reasons: for every account of the run, the (reason, play) pairs of its page are
    those of `explain`, and plays.csv counts the drivers' plays."""
    from churnml.pages.render import render_pages, slug
    from churnml.pages.story import format_story
    from churnml.scoring.reasons import play_counts

    cfg, _, _, result, _ = scored
    pages = render_pages(result.scores, result.drivers, None, now=result.as_of)
    plays = play_counts(result.drivers, result.scores, Run(cfg).playbook())  # what the run wrote to plays.csv
    given = result.drivers[result.drivers["play_id"].astype(str) != ""]
    assert plays.set_index("play_id")["accounts"].sum() == given.groupby("play_id")["account_id"].nunique().sum()
    checked = 0
    for a in result.scores["account_id"]:
        page = html.unescape(pages[f"accounts/{slug(a)}.html"])
        on_page = re.findall(r'<span class="lbl">Play:</span> ([^<]+)</div>', page)
        story = format_story(result, a)
        in_story = re.findall(r"^ {18}play: (.+)$", story, flags=re.M)
        assert sorted(p.strip() for p in on_page) == sorted(in_story), a
        for row in given[given["account_id"] == a].itertuples():  # each play sits under its own reason
            assert f"{row.text}\n{'':18}play: {row.play}" in story, a
        checked += bool(in_story)
        r = result.scores.set_index("account_id").loc[a]
        if r["risk_basis"] == "monthly_term":  # the stake the page shows, not the next monthly renewal's
            assert f"ARR at risk within 12 months {r['arr'] * r['risk_probability']:,.0f}" in story, a
            assert "at the renewal" not in story, a
    assert checked > 50 and (result.scores["risk_basis"] == "monthly_term").any()


def test_score_to_a_chosen_file_then_report_from_it(trained, tmp_path):
    """`score --out DIR` writes the run's files into DIR; `report --scores DIR` builds pages from them."""
    from churnml.cli import cli
    from churnml.pages.render import slug

    cfg, _, _, _ = trained
    conf = tmp_path / "churnml.yaml"
    conf.write_text(
        yaml.safe_dump(
            {"output_dir": str(tmp_path / "never"), "scoring": {"playbook_file": str(cfg.scoring.playbook_file)}}
        )
    )
    out = tmp_path / "run"
    r = CliRunner().invoke(
        cli,
        [
            "score",
            "--data-dir",
            str(cfg.data_dir),
            "--as-of",
            "2026-08-01",
            "--out",
            str(out),
            "--tracking-uri",
            cfg.mlflow.tracking_uri,
            "--model-name",
            cfg.mlflow.model_name,
            "--config",
            str(conf),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
        "scores.parquet",
        "scores.csv",
        "drivers.parquet",
        "drift.csv",
        "plays.csv",
        "ledger_part.parquet",
        "manifest.json",
    }
    assert {p.name for p in (tmp_path / "never").iterdir()} == {"ledger"}  # only the ledger: the history across runs
    pages = tmp_path / "pages"
    r = CliRunner().invoke(
        cli, ["report", "--scores", str(out), "--out", str(pages), "--config", str(conf)], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(list((pages / "accounts").glob("*.html"))) == len(scores)
    drivers = pd.read_parquet(out / "drivers.parquet")
    top = drivers[(drivers["target"] == "churn") & (drivers["rank"] == 1)].iloc[0]
    brief = (pages / "accounts" / f"{slug(top['account_id'])}.html").read_text()
    assert html.escape(top["text"]) in brief


def test_the_notebook_runs_on_a_finished_run(scored, monkeypatch):
    """Every code cell of notebooks/explore_a_run.ipynb runs against a run's outputs."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, _, _, _, paths = scored
    monkeypatch.setenv("CHURNML_OUTPUTS", str(paths["folder"].parent))
    monkeypatch.setattr(plt, "show", lambda: plt.close("all"))
    nb = json.loads((ROOT / "notebooks" / "explore_a_run.ipynb").read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "explore_a_run.ipynb", "exec"), scope)
    assert len(scope["scores"]) == len(pd.read_parquet(paths["scores"]))
    assert set(scope["by_segment"].index) == set(scope["scores"]["segment"])
    assert scope["metrics"].loc[("churn", "lightgbm"), "pr_auc"] > 0


def test_scoring_runs_go_to_their_own_experiment(scored):
    import mlflow

    from churnml import tracking

    cfg, *_ = scored
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    scoring = mlflow.search_runs(experiment_names=[f"{cfg.mlflow.experiment}-scoring"], output_format="list")
    training = mlflow.search_runs(experiment_names=[cfg.mlflow.experiment], output_format="list")
    assert scoring and all(r.data.tags["kind"] == "scoring" for r in scoring)
    assert training and not any(r.data.tags.get("kind") == "scoring" for r in training)


def test_arr_at_risk_is_one_number_on_every_surface(scored):
    """One ARR at risk (docs/scores.md): the scores' column is ARR x the risk; the summary line, the index
    headline and each CSM's row are its sums, every account page and `explain` show the account's value, and the
    scoring run in MLflow logs the same sum."""
    import mlflow

    from churnml import tracking
    from churnml.pages.fmt import Formats
    from churnml.pages.render import render_pages, slug
    from churnml.pages.story import format_story

    cfg, _, _, result, paths = scored
    s = result.scores
    np.testing.assert_allclose(s["arr_at_risk"], s["arr"] * s["risk_probability"])
    assert "arr_at_risk_next_renewal" not in s
    total = float(s["arr_at_risk"].sum())
    assert f"ARR at risk {total:,.0f} of" in result.summary(paths)
    money = Formats().money
    pages = render_pages(s, result.drivers, None, now=result.as_of)
    index = html.unescape(pages["index.html"])
    assert re.search(rf'<div class="v">{re.escape(money(total))}</div><div class="k">ARR at risk', index), money(total)
    for csm, g in s.fillna({"csm_owner": "Unassigned"}).groupby("csm_owner"):
        assert f'data-label="ARR at risk">{money(g["arr_at_risk"].sum())}</td>' in index.replace("\u00a0", " "), csm
    picked = s.sort_values("arr_at_risk").iloc[[0, len(s) // 2, -1]]
    for _, r in picked.iterrows():
        page = html.unescape(pages[f"accounts/{slug(r['account_id'])}.html"])
        assert re.search(
            rf'<div class="v nowrap">{re.escape(money(r["arr_at_risk"]))}</div><div class="k">ARR at risk', page
        )
        assert f" {r['arr_at_risk']:,.0f}" in format_story(result, r["account_id"]).split("\n")[1]
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    runs = mlflow.search_runs(
        experiment_names=[f"{cfg.mlflow.experiment}-scoring"],
        filter_string=f"tags.scoring_run_id = '{result.run_id}'",
        output_format="list",
    )
    assert len(runs) == 1 and runs[0].data.metrics["arr_at_risk"] == pytest.approx(total)
