"""``churnml explain --account ID``: one account's story, scored now with the registered model."""

from __future__ import annotations

import pandas as pd

from churnml.errors import ChurnmlError
from churnml.flows.common import Run, check_as_of, data_source, ledger_folder, read_ledger
from churnml.pages.story import format_story
from churnml.scoring.score import score_dataset


def account_story(run: Run, account_id: str, *, as_of=None) -> str:
    """Score the base as of ``as_of`` with the registered model and tell one account's story: scored exactly
    as ``churnml score`` scores it (same spec: the expansion candidates, the tiers, the plays), so the story
    says what the account's page says."""
    cfg = run.cfg
    run.check_settings()
    with run.open_dataset() as ds:
        known = ds.con.sql(
            "SELECT count(*) FROM t_accounts WHERE account_id = $id", params={"id": account_id}
        ).fetchall()[0][0]
        if not known:
            raise ChurnmlError(f"unknown account_id {account_id!r} in {data_source(cfg)}")
        as_of = pd.Timestamp(as_of) if as_of is not None else ds.last_date() + pd.Timedelta(days=1)
        check_as_of(as_of, ds.last_date(), cfg.labels.horizon_days)
        run.tracking()
        model, version = run.registered_model()
        result = score_dataset(
            ds,
            model,
            run.scoring_spec(model),  # the scoring run's own spec: the same reasons, plays and tiers as the pages
            model_name=cfg.mlflow.model_name,
            model_version=version,
            as_of=as_of,
            ledger=read_ledger(ledger_folder(cfg)),
        )
    return format_story(result, account_id)
