"""Render the CSM pages from the scores, drivers and ledger tables (no I/O besides ``out_dir``).

Templates use jinja2 with autoescaping on: account names, driver texts and plays are
data and always shown as text (a name like ``<script>alert(1)</script>`` stays text).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jinja2
import pandas as pd

FAMILIES = ("usage", "effort", "support", "onboarding", "commercial")
UNASSIGNED = "Unassigned"


def slug(text: str) -> str:
    """A safe, unique file name for any text (ids and names may hold any character)."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-")[:40] or "x"
    return f"{base}-{hashlib.sha1(str(text).encode()).hexdigest()[:6]}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=0: "" if v is None or pd.isna(v) else f"{v * 100:.{d}f}%"
    env.filters["pts"] = lambda v: "" if v is None or pd.isna(v) else f"{v * 100:+.1f} pts"
    env.filters["money"] = lambda v: "" if v is None or pd.isna(v) else f"{v:,.0f}"
    env.filters["days"] = lambda v: "" if v is None or pd.isna(v) else f"{v:.0f}"
    env.filters["date"] = lambda v: "" if v is None or pd.isna(v) else f"{pd.Timestamp(v):%Y-%m-%d}"
    return env


def sparkline(values: list[float], width: int = 240, height: int = 48) -> dict:
    """Points of an SVG polyline for a risk trend (0..max scaled to the box)."""
    if not values:
        return {"points": "", "width": width, "height": height, "dots": []}
    hi = max(max(values), 0.01)
    n = len(values)
    xs = [width / 2] if n == 1 else [4 + i * (width - 8) / (n - 1) for i in range(n)]
    ys = [height - 4 - v / hi * (height - 8) for v in values]
    dots = [{"x": round(x, 1), "y": round(y, 1)} for x, y in zip(xs, ys)]
    return {"points": " ".join(f"{d['x']},{d['y']}" for d in dots), "width": width, "height": height, "dots": dots}


def _rollup(df: pd.DataFrame, key: pd.Series) -> list[dict]:
    g = df.assign(_k=key.to_numpy(), _high=(df["risk_tier"] == "high").to_numpy())
    out = g.groupby("_k", sort=True).agg(accounts=("account_id", "size"), arr=("arr", "sum"),
                                         arr_at_risk=("arr_at_risk", "sum"), high=("_high", "sum"))
    return [{"key": k, **r} for k, r in out.to_dict(orient="index").items()]


def render_pages(scores: pd.DataFrame, drivers: pd.DataFrame, ledger: pd.DataFrame | None, out_dir: Path,
                 *, title: str = "churnml") -> dict:
    """Write ``index.html``, ``csm/<slug>.html`` and ``accounts/<slug>.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "csm").mkdir(parents=True, exist_ok=True)
    (out_dir / "accounts").mkdir(parents=True, exist_ok=True)
    env = _env()
    s = scores.copy()
    s["csm"] = s["csm_owner"].astype("object").where(s["csm_owner"].notna(), UNASSIGNED)
    s["page"] = s["account_id"].map(lambda a: f"{slug(a)}.html")
    s["renewal_month"] = pd.to_datetime(s["renewal_date"]).dt.strftime("%Y-%m").fillna("unknown")
    as_of = pd.Timestamp(s["as_of"].iloc[0]) if len(s) else None
    meta = {"title": title, "as_of": as_of, "model": f"{s['model_name'].iloc[0]} v{s['model_version'].iloc[0]}"
            if len(s) else ""}
    trend = {}
    if ledger is not None and len(ledger):
        lg = ledger.sort_values(["as_of", "scored_at"]).drop_duplicates(["account_id", "as_of"], keep="last")
        trend = {a: g for a, g in lg.groupby("account_id")}
    csms = []
    for csm, g in s.groupby("csm", sort=True):
        page = f"{slug(csm)}.html"
        g = g.sort_values("arr_at_risk", ascending=False)
        (out_dir / "csm" / page).write_text(env.get_template("csm.html").render(
            meta=meta, csm=csm, rows=g.to_dict(orient="records"),
            by_segment=_rollup(g, g["segment"].astype("object").fillna("(none)")),
            by_month=_rollup(g, g["renewal_month"])), encoding="utf-8")
        csms.append({"name": csm, "page": page, "accounts": len(g), "arr": g["arr"].sum(),
                     "arr_at_risk": g["arr_at_risk"].sum(), "high": int((g["risk_tier"] == "high").sum())})
    d_by = {a: g for a, g in drivers.groupby("account_id")} if len(drivers) else {}
    for r in s.to_dict(orient="records"):
        d = d_by.get(r["account_id"], drivers.iloc[:0])
        churn = d[d["target"] == "churn"].sort_values("rank").to_dict(orient="records")
        expand = d[(d["target"] == "expansion") & (d["direction"] == "raises")].sort_values("rank").to_dict(
            orient="records")
        fams = [{"family": f, "points": float(r.get(f"churn_points_{f}", 0.0) or 0.0)} for f in FAMILIES]
        scale = max([abs(f["points"]) for f in fams] + [1e-9])
        for f in fams:
            f["width"] = round(abs(f["points"]) / scale * 100, 1)
        t = trend.get(r["account_id"])
        history = [] if t is None else [{"as_of": a, "p": p, "tier": k} for a, p, k in
                                        zip(t["as_of"], t["churn_probability"], t["risk_tier"])]
        (out_dir / "accounts" / r["page"]).write_text(env.get_template("account.html").render(
            meta=meta, a=r, churn=churn, expand=expand, families=fams, history=history,
            spark=sparkline([h["p"] for h in history]), csm_page=f"{slug(r['csm'])}.html"), encoding="utf-8")
    (out_dir / "index.html").write_text(env.get_template("index.html").render(
        meta=meta, csms=csms, total={"accounts": len(s), "arr": s["arr"].sum(), "arr_at_risk": s["arr_at_risk"].sum(),
                                     "high": int((s["risk_tier"] == "high").sum())}), encoding="utf-8")
    return {"csm_pages": len(csms), "account_pages": len(s), "index": out_dir / "index.html"}


def run_report(cfg, *, out_dir: Path | None = None, scores: Path | None = None) -> dict:
    """Read a scoring run's outputs (the configured ones, or ``scores`` and the drivers beside
    it) and write the pages atomically into ``out_dir`` (default ``scoring.report_dir``)."""
    from churnml.errors import ChurnmlError
    from churnml.io import atomic_dir, read_table_file
    from churnml.scoring.score import output_paths

    paths = output_paths(cfg, scores)
    if not paths["scores"].is_file():
        raise ChurnmlError(f"no scores at {paths['scores']}: run `churnml score` (make score) first")
    table = read_table_file(paths["scores"])
    drivers = read_table_file(paths["drivers"]) if paths["drivers"].is_file() else pd.DataFrame(
        columns=["account_id", "target", "rank", "direction", "family", "feature", "points", "text", "play"])
    ledger = read_table_file(paths["ledger"]) if paths["ledger"].is_file() else None
    target = Path(out_dir) if out_dir else Path(cfg.scoring.report_dir)
    with atomic_dir(target) as tmp:
        info = render_pages(table, drivers, ledger, tmp)
    info["index"] = target / "index.html"
    return info
