"""Render the CSM pages from the scores, drivers and ledger tables, as ``{relative path: html}`` (no files).

Templates use jinja2 with autoescaping on: account names, driver texts and plays are
data and always shown as text (a name like ``<script>alert(1)</script>`` stays text).
"""

from __future__ import annotations

import hashlib
import re

import jinja2
import pandas as pd

from churnml.features import FAMILIES

UNASSIGNED = "Unassigned"


def slug(text: str) -> str:
    """A safe, unique file name for any text (ids and names may hold any character)."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-")[:40] or "x"
    return f"{base}-{hashlib.sha1(str(text).encode()).hexdigest()[:6]}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("churnml.pages", "templates"),
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


def render_pages(scores: pd.DataFrame, drivers: pd.DataFrame, ledger: pd.DataFrame | None,
                 *, title: str = "churnml") -> dict[str, str]:
    """``index.html``, ``csm/<slug>.html`` and ``accounts/<slug>.html`` as ``{relative path: html}``."""
    pages: dict[str, str] = {}
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
        pages[f"csm/{page}"] = env.get_template("csm.html").render(
            meta=meta, csm=csm, rows=g.to_dict(orient="records"),
            by_segment=_rollup(g, g["segment"].astype("object").fillna("(none)")),
            by_month=_rollup(g, g["renewal_month"]))
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
        pages[f"accounts/{r['page']}"] = env.get_template("account.html").render(
            meta=meta, a=r, churn=churn, expand=expand, families=fams, history=history,
            spark=sparkline([h["p"] for h in history]), csm_page=f"{slug(r['csm'])}.html")
    pages["index.html"] = env.get_template("index.html").render(
        meta=meta, csms=csms, total={"accounts": len(s), "arr": s["arr"].sum(), "arr_at_risk": s["arr_at_risk"].sum(),
                                     "high": int((s["risk_tier"] == "high").sum())})
    return pages
