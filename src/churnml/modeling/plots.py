"""Plots for the training report: calibration, lift, feature importance, SHAP drivers.

Each function returns a matplotlib :class:`~matplotlib.figure.Figure` (no pyplot, no global
backend state); the I/O layer saves it (``churnml.io.artifacts.write_files``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _done(fig: Figure) -> Figure:
    fig.tight_layout()
    return fig


def calibration_plot(tables: dict[str, pd.DataFrame], title: str) -> Figure:
    """Reliability diagram: mean predicted vs observed rate per bin, one line per table."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    hi = 0.0
    for name, t in tables.items():
        ax.plot(t["mean_predicted"], t["observed_rate"], marker="o", label=name)
        hi = max(hi, t["mean_predicted"].max(), t["observed_rate"].max())
    hi = min(1.0, hi * 1.1 + 0.01)
    ax.plot([0, hi], [0, hi], ls="--", c="grey", lw=1, label="perfect")
    ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.legend()
    return _done(fig)


def lift_plot(tables: dict[str, pd.DataFrame], title: str) -> Figure:
    """Cumulative capture of events by risk decile, one line per model."""
    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for name, t in tables.items():
        axes[0].plot(t["decile"], t["lift"], marker="o", label=name)
        axes[1].plot(np.r_[0, t["decile"] * 10], np.r_[0, t["cum_event_capture"] * 100], marker="o", label=name)
    axes[0].axhline(1, ls="--", c="grey", lw=1)
    axes[0].set(xlabel="risk decile (1 = highest risk)", ylabel="lift", title=f"{title}: lift by decile")
    axes[1].plot([0, 100], [0, 100], ls="--", c="grey", lw=1, label="random")
    axes[1].set(xlabel="% of accounts contacted (highest risk first)", ylabel="% of events captured",
                title=f"{title}: cumulative gains")
    for ax in axes:
        ax.legend()
    return _done(fig)


def bar_plot(values: pd.Series, title: str, xlabel: str, top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` largest values (importance, mean |SHAP|)."""
    v = values.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7, 0.3 * len(v) + 1.2))
    ax = fig.subplots()
    ax.barh(v.index, v.to_numpy())
    ax.set(xlabel=xlabel, title=title)
    return _done(fig)
