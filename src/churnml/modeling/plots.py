"""Plots for the training report: calibration, lift, feature importance, SHAP drivers.

Each function returns a matplotlib :class:`~matplotlib.figure.Figure` (no pyplot, no global
backend state); the I/O layer saves it (``churnml.io.artifacts.write_files``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (the report embeds them; the I/O layer writes them as they are)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    return buf.getvalue()


def _done(fig: Figure) -> Figure:
    fig.tight_layout()
    return fig


def _wrap(text: str, width_inches: float, fontsize: float = 11.0) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize`` (a title never runs off the figure)."""
    import textwrap

    per_line = max(20, int(width_inches * 72 / (fontsize * 0.55)))
    return "\n".join(textwrap.wrap(text, per_line))


def calibration_plot(tables: dict[str, pd.DataFrame], title: str) -> Figure:
    """Reliability diagram: mean predicted vs observed rate per bin with the bin's number of rows beside
    each point. Up to two tables (calibrated and not) share one panel; more (the horizons of a curve) get
    one panel each, each on its own scale."""
    names = [n for n, t in tables.items() if len(t)]
    groups = [names] if len(names) <= 2 else [[n] for n in names]
    cols = min(len(groups), 3)
    rows = -(-len(groups) // cols)
    width = 4.8 * cols + (0.8 if cols == 1 else 0)
    fig = Figure(figsize=(width, 4.3 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, group in zip(axes, groups):
        hi = max(max(tables[n]["mean_predicted"].max(), tables[n]["observed_rate"].max()) for n in group)
        hi = float(min(1.0, hi * 1.15 + 0.01))
        ax.plot([0, hi], [0, hi], ls="--", c="grey", lw=1, label="perfect")
        for name in group:
            t = tables[name]
            (line,) = ax.plot(t["mean_predicted"], t["observed_rate"], marker="o", label=name)
            for x, y, n in zip(t["mean_predicted"], t["observed_rate"], t["n"]):
                ax.annotate(
                    f"{int(n):,}",
                    (x, y),
                    xytext=(4, -10),
                    textcoords="offset points",
                    fontsize=7,
                    color=line.get_color(),
                )
        ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="mean predicted probability", ylabel="observed rate")
        if len(groups) > 1:
            ax.set_title(_wrap(group[0], 4.6, 10), fontsize=10)
        else:
            ax.legend(fontsize=8, loc="upper left")
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(_wrap(title + " (numbers: rows in the bin)", width, 11), fontsize=11)
    return _done(fig)


def lift_plot(tables: dict[str, pd.DataFrame], title: str) -> Figure:
    """Cumulative capture of events by risk decile, one line per model."""
    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for name, t in tables.items():
        axes[0].plot(t["decile"], t["lift"], marker="o", label=name)
        axes[1].plot(np.r_[0, t["decile"] * 10], np.r_[0, t["cum_event_capture"] * 100], marker="o", label=name)
    axes[0].axhline(1, ls="--", c="grey", lw=1)
    axes[0].set(xlabel="risk decile (1 = highest risk)", ylabel="lift")
    axes[0].set_title(_wrap(f"{title}: lift by decile", 5.2), fontsize=11)
    axes[1].plot([0, 100], [0, 100], ls="--", c="grey", lw=1, label="random")
    axes[1].set(
        xlabel="% of accounts contacted (highest risk first)",
        ylabel="% of events captured",
    )
    axes[1].set_title(_wrap(f"{title}: cumulative gains", 5.2), fontsize=11)
    for ax in axes:
        ax.legend()
    return _done(fig)


def bar_plot(values: pd.Series, title: str, xlabel: str, top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` largest values (importance, mean |SHAP|)."""
    v = values.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7, 0.3 * len(v) + 1.2))
    ax = fig.subplots()
    ax.barh(v.index, v.to_numpy())
    ax.set(xlabel=xlabel)
    ax.set_title(_wrap(title, 6.0), fontsize=11)
    return _done(fig)


def lead_time_plot(lead: dict[str, dict]) -> Figure:
    """For each tier rule: the share of churners flagged high risk at all and 90+ days ahead, and the
    median lead of those flagged (days before the churn they first entered the high tier)."""
    names = list(lead)
    fig = Figure(figsize=(10, 0.6 * len(names) + 1.8))
    axes = fig.subplots(1, 2)
    y = np.arange(len(names))
    flagged = [lead[n]["share_flagged"] * 100 for n in names]
    early = [lead[n]["share_flagged_90d_ahead"] * 100 for n in names]
    axes[0].barh(y + 0.2, flagged, height=0.4, label="flagged at some point")
    axes[0].barh(y - 0.2, early, height=0.4, label="flagged 90+ days ahead")
    axes[0].set(yticks=y, yticklabels=names, xlabel="% of churners", title="churners flagged high risk")
    axes[0].legend(loc="lower right")
    axes[1].barh(y, [lead[n]["median_lead_days_flagged"] for n in names])
    axes[1].set(
        yticks=y, yticklabels=[""] * len(names), xlabel="days before the churn", title="median lead of those flagged"
    )
    return _done(fig)


def family_bars(points: pd.Series, title: str) -> Figure:
    """Horizontal bars of points per component (signed)."""
    v = points.sort_values()
    fig = Figure(figsize=(7, 0.35 * len(v) + 1.2))
    ax = fig.subplots()
    ax.barh(v.index, v.to_numpy(), color=["#1e8449" if x < 0 else "#c0392b" for x in v.to_numpy()])
    ax.axvline(0, c="grey", lw=1)
    ax.set(xlabel="probability points")
    ax.set_title(_wrap(title, 6.0), fontsize=11)
    return _done(fig)


def beeswarm(points: pd.DataFrame, values: pd.DataFrame, labels: list[str], title: str, top: int = 15):
    """SHAP's beeswarm of per-account points (coloured by each indicator's value): the summary data
    scientists know. Uses the ``shap`` package's plot, drawn off screen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import warnings

    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # shap's colour maps use a matplotlib call due for deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap

    data = values.apply(lambda c: pd.to_numeric(c, errors="coerce")).to_numpy(dtype="float64")
    ex = shap.Explanation(values=points.to_numpy(dtype="float64") * 100, data=data, feature_names=labels)
    fig = plt.figure(figsize=(10, 0.4 * min(top, len(labels)) + 2))
    shap.plots.beeswarm(ex, show=False, max_display=top, plot_size=None)
    fig = plt.gcf()
    fig.axes[0].set_xlabel("points of the risk probability (percentage points)")
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
