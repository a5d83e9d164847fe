"""LightGBM parameters: the defaults every churnml booster starts from, and how they are completed."""

from __future__ import annotations

DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    # compact trees: TreeSHAP cost grows with trees x leaves x depth^2, and depth 3 cost no
    # accuracy in the backtest (explanations must stay within ~10x the cost of prediction)
    "num_leaves": 7,
    "max_depth": 3,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "min_data_per_group": 200,  # categorical splits need enough rows per level
    "cat_smooth": 20.0,
}
MAX_ROUNDS = 1000
EARLY_STOPPING = 50


def lgb_params(params: dict | None, seed: int, threads: int = 2) -> dict:
    """Full LightGBM parameters: defaults, then ``params``; deterministic for a seed."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    p.update(
        {
            "seed": seed,
            "num_threads": threads,
            "verbose": -1,
            "deterministic": True,
            "force_row_wise": True,
            "metric": "binary_logloss",
        }
    )
    return p
