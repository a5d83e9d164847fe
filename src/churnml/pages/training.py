"""The training report as one HTML page, rendered from ``report.json`` (no files here)."""

from __future__ import annotations

import jinja2

from churnml.pages.render import slug  # noqa: F401 - one loader for every page of the package

WORDS = {
    "time_to_churn": "time to churn (churnml)",
    "lightgbm": "90-day classifier (churnml before)",
    "logistic_regression": "logistic regression",
    "health_score": "hand-weighted health score",
}


def _num(v, d: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    if isinstance(v, (int,)) or (isinstance(v, float) and float(v).is_integer() and (abs(v) >= 10 or v == 0)):
        return f"{v:,.0f}"
    return f"{v:.{d}f}"


def render_training_report(
    report: dict, figures: dict[str, str], tables: list[str], images: dict[str, bytes] | None = None
) -> str:
    """The page; ``images`` (PNG bytes by figure name) are embedded as data URIs, so the page is one
    self-contained file (MLflow's artifact viewer shows it with its figures); a figure without bytes is
    linked by its file name."""
    import base64

    src = {f: "data:image/png;base64," + base64.b64encode(b).decode("ascii") for f, b in (images or {}).items()}
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("churnml.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda v, d=1: "n/a" if v is None or v != v else f"{v * 100:.{d}f}%"
    env.filters["model"] = lambda m: WORDS.get(m, str(m).replace("_", " "))
    return env.get_template("training_report.html").render(r=report, figures=figures, tables=tables, src=src)
