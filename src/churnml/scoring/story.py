"""``churnml explain``: one account's story in plain words for a CSM."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnml.errors import ChurnmlError
from churnml.scoring.score import FAMILY_COLUMNS, ScoringResult, load_playbook, score_dataset


def format_story(result: ScoringResult, account_id: str) -> str:
    s = result.scores.set_index("account_id")
    if account_id not in s.index:
        raise ChurnmlError(f"account {account_id!r} is not paying on {result.as_of - pd.Timedelta(days=1):%Y-%m-%d}; "
                           f"only paying accounts are scored")
    r = s.loc[account_id]
    seg_mean = result.scores.groupby("segment")["churn_probability"].mean().get(r["segment"], float("nan"))
    d = result.drivers[result.drivers["account_id"] == account_id]
    lines = [
        f"{r['name']} ({account_id}) | {r['segment'] or 'no segment'} | CSM {r['csm_owner'] or 'unassigned'} | "
        f"as of {result.as_of:%Y-%m-%d} | {result.model_name} v{result.model_version}",
        f"Churn risk {r['churn_probability']:.1%} ({r['risk_tier'].upper()}; segment average {seg_mean:.1%}) | "
        f"ARR {r['arr']:,.0f} | ARR at risk {r['arr_at_risk']:,.0f}"
        + (f" | renewal in {r['days_to_renewal']:.0f} days ({pd.Timestamp(r['renewal_date']):%Y-%m-%d})"
           if pd.notna(r["days_to_renewal"]) else ""),
        f"What changed: {r['what_changed'] or 'first score'}",
        "",
        "Why (probability points):",
    ]
    for row in d[d["target"] == "churn"].sort_values("rank").itertuples():
        lines.append(f"  {row.points * 100:+6.1f} pts  {row.family:<11} {row.text}")
        if row.play:
            lines.append(f"  {'':16}play: {row.play}")
    fams = ", ".join(f"{f} {r[f'churn_points_{f}'] * 100:+.1f}" for f in FAMILY_COLUMNS)
    lines += [f"By family: {fams}", "", f"Expansion: {r['expansion_signal']}"]
    for row in d[(d["target"] == "expansion") & (d["direction"] == "raises")].sort_values("rank").itertuples():
        lines.append(f"  {row.points * 100:+6.1f} pts  {row.family:<11} {row.text}")
    return "\n".join(lines)


def account_story(cfg, account_id: str, *, as_of=None) -> str:
    """Score the base as of ``as_of`` with the registered model and tell one account's story."""
    from churnml.io import load_dataset, read_table_file
    from churnml.modeling import tracking

    ds = load_dataset(cfg.data_dir)
    if account_id not in set(ds.accounts["account_id"]):
        raise ChurnmlError(f"unknown account_id {account_id!r} in {cfg.data_dir}")
    as_of = pd.Timestamp(as_of) if as_of is not None else ds.last_date() + pd.Timedelta(days=1)
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.experiment, cfg.mlflow.artifact_root)
    model, version = tracking.load_churnml_model(cfg.mlflow.model_name, cfg.scoring.model_alias)
    ledger_path = Path(cfg.scoring.ledger_file)
    ledger = read_table_file(ledger_path) if ledger_path.is_file() else None
    result = score_dataset(ds, model, model_name=cfg.mlflow.model_name, model_version=version, as_of=as_of,
                           top=cfg.scoring.top_drivers, playbook=load_playbook(cfg.scoring.playbook_file),
                           ledger=ledger, drift_threshold=cfg.scoring.drift_psi_threshold, expansion_share=1.0)
    return format_story(result, account_id)
