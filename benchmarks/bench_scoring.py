"""Benchmark: the cost of scoring + explaining against plain prediction on the same rows.

Fits the final-model recipe on a generated base (time to churn + expansion, no MLflow),
then on every account paying the day after the data end times, each best of
``--repeat`` runs:

* ``predict``    every probability of the scores table: the churn curve (30, 90, 180,
  365 days), next renewal, the risk and expansion (the baseline);
* ``shap``       the same plus the exact points of the risk (TreeSHAP through the hazard
  model's months) for every account and of expansion for the 30% likeliest to expand;
* ``explain``    what ``churnml score`` does: the above, plus reasons in words, plays,
  timing lines and "how to lower it" (re-predicted) for the at-risk accounts.

Reports ratios to ``predict`` (aim: explanations <= 10x prediction) and accounts per second.
Usage: ``python benchmarks/bench_scoring.py [--accounts N] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=5000, help="accounts in the generated base (default 5,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts (default 3)")
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/scoring.json"), help="where to write results")
    args = ap.parse_args()

    import pandas as pd

    from churnml.config import default
    from churnml.dataset import Dataset
    from churnml.features import build_features, indicators_for
    from churnml.generate import GeneratorConfig, generate
    from churnml.io.artifacts import read_playbook
    from churnml.modeling.events import churn_events
    from churnml.modeling.model import ModelCard
    from churnml.modeling.recipe import RecipeSpec, fit_final_model
    from churnml.modeling.survival import SurvivalModel
    from churnml.modeling.training import training_data
    from churnml.scoring.explain import expansion_cutoff
    from churnml.scoring.reasons import parse_playbook
    from churnml.scoring.score import ScoringSpec, base_state, risk_frame, score_frame

    ds = Dataset.from_frames(generate(GeneratorConfig(accounts=args.accounts, seed=21)))
    td = training_data(
        ds, cutoffs="monthly", horizon_days=default("labels.horizon_days"), uplift=default("labels.uplift")
    )
    last = ds.last_date()
    events = churn_events(ds.subscriptions, td.X.index.get_level_values("cutoff").unique(), last)
    survival = SurvivalModel(seed=1).fit(td.X, events, categorical=td.categorical, last_day=last)
    model, _, _ = fit_final_model(
        td, RecipeSpec(seed=1), calibration_cutoffs=3, targets=[t for t in td.label_cols if t != "churn"]
    )
    model.survival = survival
    model.card = ModelCard(horizon_days=default("labels.horizon_days"))
    as_of = last + pd.Timedelta(days=1)
    both = build_features(ds, [as_of - pd.Timedelta(days=90), as_of])
    X = both[both.index.get_level_values("cutoff") == as_of].droplevel("cutoff")
    past = both[both.index.get_level_values("cutoff") < as_of].droplevel("cutoff")
    n = len(X)
    defs = {i.name: i for i in indicators_for(ds.context())}
    book = parse_playbook(read_playbook(None), "the built-in playbooks")
    attrs = ds.accounts.set_index("account_id")[["name", "segment", "csm_owner"]]
    share = default("scoring.expansion_explain_share")
    tiers = {
        "method": "levels",
        "high": default("scoring.tiers.high_level"),
        "medium": default("scoring.tiers.medium_level"),
    }

    def predict():  # every probability of the scores table
        risk_frame(model, X, as_of)

    def shap():  # the same, plus the exact points of the risk and of the likeliest expansions
        p = risk_frame(model, X, as_of)
        model.explain_risk(X)
        e = p["expansion_probability"].to_numpy()
        model.explain_target(X[e >= expansion_cutoff(e, share)], "expansion")

    def explain():  # what churnml score does: + reasons, plays, timing, how to lower it (re-predicted)
        spec = ScoringSpec(
            playbook=book, tier_thresholds=tiers, top=default("scoring.top_drivers"), expansion_share=share
        )
        score_frame(
            X,
            attrs,
            model,
            defs,
            spec,
            base_state(model, X, defs, spec),
            as_of=as_of,
            model_name="bench",
            model_version="1",
            past=past,
        )

    res = {k: _best(f, args.repeat) for k, f in (("predict", predict), ("shap", shap), ("explain", explain))}
    summary = {
        "rows": n,
        "survival_boosters": len(survival.boosters_),
        "trees": {"expansion": model.targets["expansion"].best_iteration} if "expansion" in model.targets else {},
        "seconds": res,
        "ratio_to_predict": {k: v / res["predict"] for k, v in res.items()},
        "accounts_per_second": {k: n / v for k, v in res.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(args.out)
    for k, v in res.items():
        print(f"{k:8s} {v:6.3f}s  {summary['ratio_to_predict'][k]:5.1f}x predict  {n / v:10,.0f} accounts/s")
    print(
        f"{n:,} accounts: exact points of the risk cost {summary['ratio_to_predict']['shap']:.1f}x prediction, "
        f"{summary['ratio_to_predict']['explain']:.1f}x with reasons, plays and how to lower it -> {args.out}"
    )


if __name__ == "__main__":
    main()
