"""``churnml report``: the CSM pages from a scoring run's outputs, published in one step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnml.errors import ChurnmlError
from churnml.features import Context, indicators_for
from churnml.flows.common import Run, manifest_ledger, read_ledger
from churnml.flows.score import output_paths
from churnml.io import artifacts
from churnml.io.outputs import check_target, publish_dir, read_json, read_table_file
from churnml.pages.render import PageSettings, render_pages

DRIVER_COLUMNS = ["account_id", "target", "rank", "direction", "family", "feature", "points", "text", "play"]


def page_settings(cfg, manifest: dict) -> PageSettings:
    """What the pages need from the config and the scoring run (currency, locale, the tier rule)."""
    r = cfg.report
    kw = {
        "title": r.title,
        "currency": r.currency,
        "locale": r.locale,
        "stale_after_days": r.stale_after_days,
        "call_list_size": r.call_list_size,
        "page_size": r.page_size,
        "horizon_days": cfg.labels.horizon_days,
    }
    if manifest.get("tier_texts"):
        kw["tiers"] = manifest["tier_texts"]
    every = Context(feature_columns=("feature_*",), present=frozenset({"usage", "tickets", "surveys", "milestones"}))
    kw["indicator_labels"] = {i.name: i.label for i in indicators_for(every)}
    return PageSettings(**kw)


def run_report(run: Run, *, out_dir: Path | None = None, scores: Path | None = None) -> dict:
    """Read a scoring run's folder (``scores``, default ``<output_dir>/scores``) and its base's ledger,
    and publish the pages into ``out_dir`` (default ``<output_dir>/report``)."""
    folder = Path(scores) if scores else run.paths.scores_dir
    target = Path(out_dir) if out_dir else run.paths.report_dir
    check_target(target, "report")
    p = output_paths(folder)
    if not p["scores"].is_file():
        raise ChurnmlError(f"no scores in {folder}: run `churnml score` (make score) first")
    table = read_table_file(p["scores"])
    drivers = read_table_file(p["drivers"]) if p["drivers"].is_file() else pd.DataFrame(columns=DRIVER_COLUMNS)
    ledger, manifest = None, {}
    if p["manifest"].is_file():
        manifest = read_json(p["manifest"])
        where = manifest_ledger(run.cfg, manifest)
        ledger = read_ledger(where) if where is not None else None
    drift = read_table_file(p["drift"]) if p["drift"].is_file() else None
    plays = read_table_file(p["plays"]) if p["plays"].is_file() else None
    pages = render_pages(table, drivers, ledger, drift=drift, plays=plays, settings=page_settings(run.cfg, manifest))
    with publish_dir(target, kind="report") as tmp:
        artifacts.write_pages(pages, tmp)
    return {
        "csm_pages": sum(k.startswith("csm/") for k in pages),
        "account_pages": sum(k.startswith("accounts/") for k in pages),
        "index": target / "index.html",
    }
