"""The training report's content: tables, figures and a summary, as objects (no files).

Evaluation (reliability, lift, metrics) is of the backtest and its holdout model;
importance and SHAP summaries are of the final model, the one that scores. The flow
hands the result to the I/O layer, which writes ``<name>.csv`` / ``.png`` / ``.json`` /
``.md`` files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnml.modeling import plots
from churnml.modeling.backtest import LIGHTGBM, BacktestResult, fold_table
from churnml.modeling.metrics import lift_table, reliability_table


def report_files(bt: BacktestResult, td, model, holdout_model, folds, hold: pd.DataFrame, params: dict,
                 params_source: str, metrics: dict) -> dict[str, object]:
    """``{file name: DataFrame | Figure | dict | str}`` of the training report."""
    files: dict[str, object] = {
        "backtest_metrics.csv": bt.metrics().round(5).reset_index(),
        "features.csv": pd.DataFrame([i.as_dict() for i in td.definitions]),
        "folds.json": [{"fold": f.index, "fit": [str(t.date()) for t in f.fit],
                        "calibrate": [str(t.date()) for t in f.calibrate], "test": [str(t.date()) for t in f.test]}
                       for f in folds],
        "params.json": {"source": params_source, "params": params},
    }
    preds = bt.predictions
    lines = ["# churnml training report", ""]
    for target in td.label_cols:
        files[f"fold_metrics_{target}.csv"] = fold_table(bt, target).round({m: 5 for m in ("pr_auc", "roc_auc", "brier", "top_decile_lift")})
        files[f"segment_metrics_{target}.csv"] = bt.by_segment(target).round(5)
        g = preds[(preds["target"] == target) & (preds["fold"] == 0)]
        lgbm = g[g["model"] == LIGHTGBM]
        rel = {"uncalibrated": reliability_table(lgbm["y"], lgbm["p_raw"]),
               "calibrated": reliability_table(lgbm["y"], lgbm["p"])}
        files[f"reliability_{target}.csv"] = _long(rel, "version", "bin")
        files[f"calibration_{target}.png"] = plots.calibration_plot(rel, f"{target}: holdout reliability")
        lifts = {m: lift_table(h["y"], h["p"], h["arr"]) for m, h in g.groupby("model")}
        files[f"lift_{target}.csv"] = _long(lifts, "model", None)
        files[f"lift_{target}.png"] = plots.lift_plot(lifts, target)
        booster = model.targets[target].booster
        gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
        files[f"importance_{target}.png"] = plots.bar_plot(gain, f"{target}: feature importance (gain), final model",
                                                           "total gain")
        Xh = model.prepare(hold[td.features].head(5000))
        contrib = booster.predict(Xh, pred_contrib=True, num_iteration=model.targets[target].best_iteration)
        mean_abs = pd.Series(np.abs(contrib[:, :-1]).mean(axis=0), index=td.features)
        files[f"shap_summary_{target}.png"] = plots.bar_plot(
            mean_abs, f"{target}: mean |SHAP| on the holdout rows, final model", "mean |contribution| (log-odds)")
        lines += [f"## {target}", "", "holdout (fold 0) and backtest (all folds pooled):", ""]
        for scope in ("holdout", "backtest"):
            for m in sorted({k.split("_", 2)[2].rsplit("_", 2)[0] for k in metrics
                             if k.startswith(f"{scope}_{target}_")}):
                pr = metrics.get(f"{scope}_{target}_{m}_pr_auc")
                if pr is None:
                    continue
                lines.append(f"- {scope} {m}: PR-AUC {pr:.3f}, ROC-AUC {metrics[f'{scope}_{target}_{m}_roc_auc']:.3f}, "
                             f"lift {metrics[f'{scope}_{target}_{m}_top_decile_lift']:.2f}, "
                             f"Brier {metrics[f'{scope}_{target}_{m}_brier']:.5f}")
        lines += [f"- holdout lightgbm Brier before calibration: "
                  f"{metrics[f'holdout_{target}_lightgbm_brier_uncalibrated']:.5f} "
                  f"(calibration chosen: {holdout_model.targets[target].calibrator.method}; final model: "
                  f"{model.targets[target].calibrator.method})", ""]
    files["report.md"] = "\n".join(lines) + "\n"
    return files


def _long(tables: dict[str, pd.DataFrame], key: str, index_name: str | None) -> pd.DataFrame:
    """Stack ``{name: table}`` into one table with a ``key`` column (and the row index as a column)."""
    parts = []
    for name, t in tables.items():
        t = t.round(5).reset_index(drop=index_name is None)
        if index_name is not None:
            t = t.rename(columns={"index": index_name})
        parts.append(t.assign(**{key: name})[[key, *t.columns]])
    return pd.concat(parts, ignore_index=True)
