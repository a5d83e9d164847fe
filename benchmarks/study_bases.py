"""Study: the whole pipeline (train -> score) on generated bases of other seeds, sizes and terms.

For each base: generate it, run ``churnml train`` and ``churnml score`` (flows, in a
temporary project: its own MLflow store and outputs), then read the figures the issues'
"done means" ask for from the training report and the scores:

* 90-day accuracy: holdout and backtest PR-AUC of the time-to-churn model's 90-day point
  beside the plain 90-day classifier (the model churnml used before), same folds;
* early warning: who churns within a year, ranked by the 12-month probability vs the 90-day
  one (all accounts, and those renewing 3-12 months after the cutoff); lead time;
* reasons (on the scoring run): high-risk accounts whose top reason is timing, risk-raising
  reasons quoting a value on the healthy side of their comparison, plays under the
  threshold, plays twice on one account (:func:`churnml.scoring.reasons.reason_metrics`).

Usage: ``python benchmarks/study_bases.py [--bases 7:2500:default 11:2000:mixed ...] [--out FILE]``
(``SEED:ACCOUNTS:TERMS[:YEARS]``). Prints one line per base and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

DEFAULT_BASES = [
    "7:2500:default:3.5",
    "11:2000:mixed:3.5",
    "23:2000:annual:3.5",
    "5:1500:multi-year:3.5",
    "13:1500:monthly:3.5",
    "42:5000:default:3",
]


def study(spec: str, folds: int) -> dict:
    from churnml.config import load_config
    from churnml.features import Context, indicators_for
    from churnml.flows.common import Run
    from churnml.flows.score import run_scoring
    from churnml.flows.train import run_training
    from churnml.generate import GeneratorConfig, generate, parse_terms
    from churnml.io import write_dataset
    from churnml.scoring.reasons import reason_metrics

    seed, accounts, terms, *rest = spec.split(":")
    years = float(rest[0]) if rest else 3.0
    root = Path(tempfile.mkdtemp(prefix=f"study-{seed}-"))
    t0 = time.perf_counter()
    write_dataset(
        generate(GeneratorConfig(accounts=int(accounts), seed=int(seed), years=years, terms=parse_terms(terms))),
        root / "data",
    )
    cfg = load_config(
        None,
        **{
            "data_dir": str(root / "data"),
            "output_dir": str(root / "outputs"),
            "mlflow.model_name": "study",
            "train.folds": folds,
            "train.use_tuned_params": False,
        },
    )
    quiet = Run(cfg, echo=lambda m: None)
    tr = run_training(quiet)
    res, paths = run_scoring(Run(cfg, echo=lambda m: None))
    rep = json.loads((paths["folder"].parent / "train" / "report.json").read_text())
    hold = {m["model"]: m for m in rep["holdout"] if m["target"] == "churn"}
    back = {m["model"]: m for m in rep["backtest"] if m["target"] == "churn"}
    wy = {r["score"]: r for r in rep.get("within_year", [])}
    ew = {r["score"]: r for r in rep.get("early_warning", [])}
    key90 = next((k for k in wy if k.startswith("90-day")), None)
    key90e = next((k for k in ew if k.startswith("90-day")), None)
    every = Context(feature_columns=("feature_*",), present=frozenset({"usage", "tickets", "surveys", "milestones"}))
    defs = {i.name: i for i in indicators_for(every)}
    s = res.scores
    m = reason_metrics(
        res.drivers,
        defs,
        high_risk=s.loc[s["risk_tier"] == "high", "account_id"],
        min_points=cfg.scoring.play_min_points,
    )
    lead = rep.get("lead_time", {})
    return {
        "base": spec,
        "accounts": int(accounts),
        "seconds": round(time.perf_counter() - t0, 1),
        "holdout_pr_auc_90d": {
            "time_to_churn": hold.get("time_to_churn", {}).get("pr_auc"),
            "classifier_90d": hold.get("lightgbm", {}).get("pr_auc"),
            "logistic": hold.get("logistic_regression", {}).get("pr_auc"),
            "health_score": hold.get("health_score", {}).get("pr_auc"),
        },
        "backtest_pr_auc_90d": {
            "time_to_churn": back.get("time_to_churn", {}).get("pr_auc"),
            "classifier_90d": back.get("lightgbm", {}).get("pr_auc"),
        },
        "within_year": {
            "rows": (wy.get("12 months") or {}).get("n"),
            "pr_auc_12m": (wy.get("12 months") or {}).get("pr_auc"),
            "pr_auc_90d": (wy.get(key90) or {}).get("pr_auc"),
            "roc_auc_12m": (wy.get("12 months") or {}).get("roc_auc"),
            "roc_auc_90d": (wy.get(key90) or {}).get("roc_auc"),
        },
        "renewing_in_3_12_months": {
            "rows": (ew.get("12 months") or {}).get("n"),
            "roc_auc_risk": (ew.get("risk (tier)") or {}).get("roc_auc"),
            "roc_auc_12m": (ew.get("12 months") or {}).get("roc_auc"),
            "roc_auc_90d": (ew.get(key90e) or {}).get("roc_auc"),
        },
        "lead_time": {
            k: {
                "median_lead_days_flagged": v.get("median_lead_days_flagged"),
                "share_flagged_90d_ahead": v.get("share_flagged_90d_ahead"),
            }
            for k, v in lead.items()
            if isinstance(v, dict)
        },
        "scored": len(s),
        "high_risk": int((s["risk_tier"] == "high").sum()),
        "reasons": {
            k: m[k]
            for k in (
                "high_risk_top_reason_timing",
                "high_risk_without_reason",
                "risk_raising_reasons",
                "risk_raising_reasons_disagreeing",
                "risk_raising_reasons_disagreeing_share",
                "plays",
                "plays_under_threshold",
                "plays_repeated_on_an_account",
            )
        },
        "promoted": tr.promoted,
        "lower_share_of_at_risk": float(s.loc[s["risk_tier"] != "low", "how_to_lower"].str.len().gt(0).mean())
        if (s["risk_tier"] != "low").any()
        else None,
        "timing_share_of_high_risk_points": float((s.loc[s["risk_tier"] == "high", "churn_points_timing"]).mean())
        if (s["risk_tier"] == "high").any()
        else None,
    }


def _f(v, d=3) -> str:
    return "n/a" if v is None or v != v else f"{v:.{d}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bases", nargs="+", default=DEFAULT_BASES, help="SEED:ACCOUNTS:TERMS[:YEARS] ...")
    ap.add_argument(
        "--folds",
        type=int,
        default=5,
        help="backtest folds (the oldest must be a year before the data end for 12-month figures)",
    )
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/study_bases.json"))
    a = ap.parse_args(argv)
    rows = []
    for spec in a.bases:
        r = study(spec, a.folds)
        rows.append(r)
        h, w, e, rs = r["holdout_pr_auc_90d"], r["within_year"], r["renewing_in_3_12_months"], r["reasons"]
        print(
            f"{spec}: 90-day holdout PR-AUC time-to-churn {_f(h['time_to_churn'])} vs classifier "
            f"{_f(h['classifier_90d'])} (logistic {_f(h['logistic'])}, health {_f(h['health_score'])}); within a "
            f"year PR-AUC 12-month {_f(w['pr_auc_12m'])} vs 90-day {_f(w['pr_auc_90d'])} (ROC {_f(w['roc_auc_12m'])}"
            f" vs {_f(w['roc_auc_90d'])}, {w['rows']} rows); renewing in 3-12 months ROC risk "
            f"{_f(e['roc_auc_risk'])}, 12-month {_f(e['roc_auc_12m'])} vs 90-day {_f(e['roc_auc_90d'])}; "
            f"high risk {r['high_risk']}/{r['scored']}, top reason timing {rs['high_risk_top_reason_timing']}, "
            f"disagreeing {rs['risk_raising_reasons_disagreeing']}/{rs['risk_raising_reasons']} "
            f"({_f(100 * rs['risk_raising_reasons_disagreeing_share'], 2)}%), plays under threshold "
            f"{rs['plays_under_threshold']}, repeated {rs['plays_repeated_on_an_account']}; {r['seconds']}s",
            flush=True,
        )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1, default=float))
    tmp.replace(a.out)
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
