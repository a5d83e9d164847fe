"""Render the CSM pages from the scores, drivers and ledger tables.

Two layers, kept apart:

* ``iter_pages`` is pure: it validates the tables and yields ``(relative path, HTML)``
  pairs, one page at a time (a large base never sits in memory as HTML).
* ``render_report`` is the only function here that writes files.

Every value from the data reaches the HTML through jinja2 with autoescaping on and is
never marked safe, so an account called ``<script>alert(1)</script> Ltd`` shows as text.
Page file names are ``slugify(id)``: a readable ASCII part plus a short hash of the exact
id, so any id (slashes, dots, quotes, non-Latin letters) gives a safe, unique file name.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pandas as pd

from churnml.errors import ChurnmlError

SCORES_COLUMNS = ("account_id", "name", "segment", "csm_owner", "as_of", "churn_probability",
                  "expansion_probability", "risk_tier", "arr", "arr_at_risk", "days_to_renewal", "renewal_date",
                  "model_name", "model_version", "previous_churn_probability", "top_driver", "expansion_signal")
DRIVERS_COLUMNS = ("account_id", "target", "rank", "family", "feature", "points", "text", "play")
LEDGER_COLUMNS = ("account_id", "as_of", "churn_probability")  # scored_at, risk_tier, model_version: optional
TIERS = ("high", "medium", "low")
TARGETS = ("churn", "expansion")
FAMILIES = ("usage", "effort", "support", "onboarding", "commercial")
UNASSIGNED = "Unassigned"
UNASSIGNED_SLUG = "unassigned"  # never produced by slugify (which always ends in -<hex>)
TREND_POINTS = 24  # most recent scores drawn in an account's risk trend
DASH = "\u2014"


# --- names and numbers ---------------------------------------------------------------------
def slugify(text: str, *, hash_len: int = 8, max_len: int = 40) -> str:
    """A safe file-name stem for any string: lowercase ASCII words joined by ``-``, then a short hash.

    The hash is taken from the exact text, so ids that differ only in case or punctuation
    ("ACME/1" and "acme-1") still get different stems.

    >>> slugify("ACME Corp/EU")
    'acme-corp-eu-ca851b26'
    >>> slugify("../../etc/passwd")
    'etc-passwd-936d7c04'
    """
    text = str(text)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_len].strip("-") or "x"
    return f"{stem}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:hash_len]}"


def _slugs(values) -> dict[str, str]:
    """Slug per distinct value; falls back to the full hash if two short slugs ever collide."""
    out = {v: slugify(v) for v in values}
    if len(set(out.values())) < len(out):
        out = {v: slugify(v, hash_len=40) for v in values}
    return out


def _missing(v) -> bool:
    if v is None or v is pd.NaT:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _text(v) -> str:
    return "" if _missing(v) else str(v).strip()


def _num(v) -> float:
    """A float, NaN when missing or not a number."""
    if _missing(v):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _pct(p: float, digits: int = 1) -> str:
    return DASH if math.isnan(p) else f"{p * 100:.{digits}f}%"


def _pts(x: float) -> str:
    """Probability points in words: 0.061 -> '+6.1 pts'."""
    return DASH if math.isnan(x) else f"{x * 100:+.1f} pts"


def _money(x: float) -> str:
    return DASH if math.isnan(x) else f"{x:,.0f}"


def _days(x: float) -> str:
    return DASH if math.isnan(x) else f"{x:,.0f}"


def _date(v) -> str:
    return DASH if _missing(v) else f"{pd.Timestamp(v):%Y-%m-%d}"


def _sort(x: float) -> str:
    """The data-sort value of a numeric cell: empty when missing (the table sorts blanks last)."""
    return "" if math.isnan(x) else repr(round(float(x), 6))


# --- validation ----------------------------------------------------------------------------
def _require(df, what: str, columns, *, optional: bool = False) -> None:
    if df is None and optional:
        return
    if not isinstance(df, pd.DataFrame):
        raise ChurnmlError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChurnmlError(f"{what} lacks column(s) {', '.join(missing)}; see docs/scores.md for the format")


def _few(values, n: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def _validate(scores: pd.DataFrame, drivers: pd.DataFrame, ledger: pd.DataFrame | None) -> None:
    _require(scores, "scores", SCORES_COLUMNS)
    _require(drivers, "drivers", DRIVERS_COLUMNS)
    if ledger is not None and not (isinstance(ledger, pd.DataFrame) and ledger.empty):
        _require(ledger, "ledger", LEDGER_COLUMNS)
    if scores.empty:
        raise ChurnmlError("scores has no rows: there is no account to report on")
    ids = scores["account_id"]
    if ids.isna().any():
        raise ChurnmlError(f"scores has {int(ids.isna().sum())} row(s) without an account_id")
    ids = ids.astype(str)
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise ChurnmlError(f"scores must have one row per account; repeated account_id: {_few(dup)}")
    bad_tier = sorted(set(scores["risk_tier"].map(_text)) - set(TIERS))
    if bad_tier:
        raise ChurnmlError(f"scores.risk_tier must be one of {', '.join(TIERS)}; found {_few(bad_tier)}")
    p = pd.to_numeric(scores["churn_probability"], errors="coerce")
    bad_p = ids[p.isna().to_numpy() | (p < 0).to_numpy() | (p > 1).to_numpy()]
    if len(bad_p):
        raise ChurnmlError(f"scores.churn_probability must be a number in 0..1; not so for account(s) {_few(bad_p)}")
    bad_target = sorted(set(drivers["target"].map(_text)) - set(TARGETS))
    if bad_target:
        raise ChurnmlError(f"drivers.target must be churn or expansion; found {_few(bad_target)}")
    unknown = sorted(set(drivers["account_id"].astype(str)) - set(ids))
    if unknown:
        raise ChurnmlError(f"drivers name account(s) that are not in scores (stale drivers file?): {_few(unknown)}")
    pts = pd.to_numeric(drivers["points"], errors="coerce")
    if pts.isna().any():
        raise ChurnmlError(f"drivers.points must be numbers; {int(pts.isna().sum())} row(s) are missing or not numeric")


# --- page data -----------------------------------------------------------------------------
def _csm_key(v) -> str | None:
    t = _text(v)
    return t or None


def _trend(ledger: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Per account: one row per as-of date (the latest scoring of that date), oldest first."""
    if ledger is None or ledger.empty:
        return {}
    keep = [c for c in ("account_id", "as_of", "scored_at", "churn_probability", "risk_tier", "model_version")
            if c in ledger.columns]
    lg = ledger[keep].copy()
    lg["account_id"] = lg["account_id"].astype(str)
    lg["as_of"] = pd.to_datetime(lg["as_of"]).dt.normalize()
    lg["churn_probability"] = pd.to_numeric(lg["churn_probability"], errors="coerce")
    lg = lg.dropna(subset=["as_of", "churn_probability"])
    order = ["account_id", "as_of"] + (["scored_at"] if "scored_at" in lg.columns else [])
    lg = lg.sort_values(order, kind="stable").drop_duplicates(["account_id", "as_of"], keep="last")
    return {a: g for a, g in lg.groupby("account_id", sort=False)}


def _sparkline(points: list[tuple[str, float]], width: int = 360, height: int = 96) -> dict:
    """Coordinates for an inline SVG line of churn probability over as-of dates (y from 0)."""
    pad_l, pad_r, pad_t, pad_b = 8, 8, 10, 10
    top = min(1.0, max(0.1, max(p for _, p in points) * 1.15))
    n = len(points)
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i: int, p: float) -> tuple[float, float]:
        x = pad_l + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)
        return round(x, 1), round(pad_t + inner_h * (1 - p / top), 1)

    dots = [{"x": x, "y": y, "label": f"{d}: {_pct(p)}"} for i, (d, p) in enumerate(points) for x, y in [xy(i, p)]]
    return {"width": width, "height": height, "dots": dots,
            "polyline": " ".join(f"{d['x']},{d['y']}" for d in dots),
            "baseline": round(pad_t + inner_h, 1), "top_label": _pct(top, 0),
            "first": points[0][0], "last": points[-1][0]}


def _family_bars(points: dict[str, float]) -> list[dict]:
    """Diverging bars: width in % of half the track, scaled to the largest family."""
    scale = max([abs(v) for v in points.values()] + [0.01])
    return [{"family": f, "points": v, "text": _pts(v), "width": round(50 * abs(v) / scale, 1),
             "side": "up" if v > 0 else "down" if v < 0 else "zero"} for f, v in points.items()]


def _driver_items(rows: pd.DataFrame | None, target: str) -> list[dict]:
    if rows is None:
        return []
    d = rows[rows["target"].map(_text) == target].sort_values("rank", kind="stable")
    return [{"points": float(r.points), "text_points": _pts(float(r.points)), "family": _text(r.family),
             "feature": _text(r.feature), "text": _text(r.text) or _text(r.feature), "play": _text(r.play)}
            for r in d.itertuples(index=False)]


def _rollup(rows: list[dict], key: str) -> list[dict]:
    groups: dict = {}
    for r in rows:
        g = groups.setdefault(r[key], {"label": r[key + "_label"], "order": r[key], "accounts": 0, "arr": 0.0,
                                       "arr_at_risk": 0.0, "high": 0})
        g["accounts"] += 1
        g["arr"] += 0.0 if math.isnan(r["arr"]) else r["arr"]
        g["arr_at_risk"] += 0.0 if math.isnan(r["arr_at_risk"]) else r["arr_at_risk"]
        g["high"] += r["tier"] == "high"
    return [dict(g, arr_text=_money(g["arr"]), arr_at_risk_text=_money(g["arr_at_risk"])) for g in groups.values()]


def _totals(rows: list[dict]) -> dict:
    arr = sum(r["arr"] for r in rows if not math.isnan(r["arr"]))
    risk = sum(r["arr_at_risk"] for r in rows if not math.isnan(r["arr_at_risk"]))
    return {"accounts": len(rows), "arr": arr, "arr_text": _money(arr), "arr_at_risk": risk,
            "arr_at_risk_text": _money(risk), "high": sum(r["tier"] == "high" for r in rows),
            "medium": sum(r["tier"] == "medium" for r in rows), "low": sum(r["tier"] == "low" for r in rows),
            "risk_share": _pct(risk / arr if arr > 0 else math.nan, 0)}


def _one_or_range(values) -> str:
    vals = sorted({v for v in values if v != DASH})
    if not vals:
        return DASH
    return vals[0] if len(vals) == 1 else f"{vals[0]} to {vals[-1]}"


def _account_rows(scores: pd.DataFrame) -> list[dict]:
    """One dict per account with display texts and numeric sort values, sorted by ARR at risk (desc)."""
    slugs = _slugs(scores["account_id"].astype(str))
    csm_names = [k for k in {_csm_key(v) for v in scores["csm_owner"]} if k is not None]
    csm_slugs = _slugs(csm_names)
    rows = []
    for r in scores.to_dict(orient="records"):
        aid = str(r["account_id"])
        csm = _csm_key(r["csm_owner"])
        p, prev = _num(r["churn_probability"]), _num(r["previous_churn_probability"])
        change = p - prev
        as_of = pd.Timestamp(r["as_of"]) if not _missing(r["as_of"]) else None
        renewal = r["renewal_date"]
        days = _num(r["days_to_renewal"])
        if _missing(renewal) and as_of is not None and not math.isnan(days):
            renewal = as_of + pd.Timedelta(days=days)
        renewal = None if _missing(renewal) else pd.Timestamp(renewal)
        segment = _text(r["segment"])
        rows.append({
            "account_id": aid, "slug": slugs[aid], "name": _text(r["name"]) or aid,
            "segment": segment, "segment_label": segment or "No segment",
            "csm": csm, "csm_label": csm or UNASSIGNED, "csm_slug": csm_slugs[csm] if csm else UNASSIGNED_SLUG,
            "tier": _text(r["risk_tier"]), "tier_rank": 3 - TIERS.index(_text(r["risk_tier"])),
            "churn": p, "churn_text": _pct(p),
            "change": change, "change_text": "first score" if math.isnan(prev) else _pts(change),
            "change_dir": "" if math.isnan(change) else "up" if change > 0.0005 else "down" if change < -0.0005 else "",
            "previous_text": _pct(prev),
            "arr": _num(r["arr"]), "arr_text": _money(_num(r["arr"])),
            "arr_at_risk": _num(r["arr_at_risk"]), "arr_at_risk_text": _money(_num(r["arr_at_risk"])),
            "days": days, "days_text": _days(days),
            "renewal": f"{renewal:%Y-%m}" if renewal is not None else "9999-99",
            "renewal_label": f"{renewal:%b %Y}" if renewal is not None else "No renewal date",
            "renewal_text": _date(renewal),
            "expansion": _num(r["expansion_probability"]), "expansion_text": _pct(_num(r["expansion_probability"]), 0),
            "expansion_signal": _text(r["expansion_signal"]),
            "top_driver": _text(r["top_driver"]), "what_changed": _text(r.get("what_changed")),
            "as_of": as_of, "as_of_text": _date(as_of),
            "model_name": _text(r["model_name"]), "model_version": _text(r["model_version"]),
            "scored_at_text": "" if _missing(r.get("scored_at")) else f"{pd.Timestamp(r['scored_at']):%Y-%m-%d %H:%M}",
            "family_points": {f: _num(r.get(f"churn_points_{f}")) for f in FAMILIES},
        })
    rows.sort(key=lambda x: (-(0.0 if math.isnan(x["arr_at_risk"]) else x["arr_at_risk"]), x["name"].lower()))
    for r in rows:
        r["sort"] = {k: _sort(r[k]) for k in ("churn", "change", "arr", "arr_at_risk", "days", "expansion")}
    return rows


def _family_points(row: dict, churn_drivers: list[dict]) -> tuple[dict[str, float], str]:
    """Points per family: the scores' churn_points_<family> (all indicators) when given, else the drivers' sum."""
    given = row["family_points"]
    if all(not math.isnan(v) for v in given.values()):
        return dict(given), "all indicators"
    pts = dict.fromkeys(FAMILIES, 0.0)
    for d in churn_drivers:
        fam = d["family"] or "other"
        pts[fam] = pts.get(fam, 0.0) + d["points"]
    return pts, "the drivers listed above"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("churnml.report", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def iter_pages(scores: pd.DataFrame, drivers: pd.DataFrame, ledger: pd.DataFrame | None = None, *,
               title: str = "churnml") -> Iterator[tuple[str, str]]:
    """Yield ``(relative path, HTML)`` for the index, every CSM page and every account brief.

    Pure: reads the three tables, writes nothing. Raises ``ChurnmlError`` on malformed input
    (missing columns, repeated account ids, unknown risk tiers, probabilities outside 0..1,
    drivers of accounts that are not scored).
    """
    _validate(scores, drivers, ledger)
    title = _text(title) or "churnml"
    env = _environment()
    rows = _account_rows(scores)
    by_account = {a: g for a, g in drivers.assign(account_id=drivers["account_id"].astype(str))
                  .groupby("account_id", sort=False)}
    trends = _trend(ledger)
    common = {"title": title, "as_of": _one_or_range(r["as_of_text"] for r in rows),
              "models": _one_or_range(f"{r['model_name']} v{r['model_version']}" for r in rows)}

    csms: dict[str, list[dict]] = {}
    for r in rows:
        csms.setdefault(r["csm_slug"], []).append(r)
    order = sorted(csms, key=lambda s: (s == UNASSIGNED_SLUG, csms[s][0]["csm_label"].lower()))
    csm_summary = [dict(_totals(csms[s]), name=csms[s][0]["csm_label"], slug=s,
                        unassigned=s == UNASSIGNED_SLUG) for s in order]
    for c in csm_summary:
        c["sort"] = {k: _sort(c[k]) for k in ("accounts", "arr", "arr_at_risk", "high")}
    yield "index.html", env.get_template("index.html").render(
        common, root="", csms=csm_summary, totals=_totals(rows), top=rows[:10])

    for s in order:
        book = csms[s]
        segments = sorted(_rollup(book, "segment"), key=lambda g: (g["order"] == "", -g["arr_at_risk"]))
        months = sorted(_rollup(book, "renewal"), key=lambda g: g["order"])
        yield f"csm/{s}.html", env.get_template("csm.html").render(
            common, root="../", csm=book[0]["csm_label"], rows=book, totals=_totals(book),
            segments=segments, months=months)

    for r in rows:
        d = by_account.get(r["account_id"])
        churn = _driver_items(d, "churn")
        fam, fam_source = _family_points(r, churn)
        trend = trends.get(r["account_id"])
        history = [] if trend is None else [
            {"as_of": _date(t.as_of), "p": float(t.churn_probability), "tier": _text(getattr(t, "risk_tier", "")),
             "model_version": _text(getattr(t, "model_version", ""))}
            for t in trend.itertuples(index=False) if r["as_of"] is None or t.as_of != r["as_of"]]
        history.append({"as_of": r["as_of_text"], "p": r["churn"], "tier": r["tier"],
                        "model_version": r["model_version"]})
        history = sorted(history, key=lambda h: h["as_of"])[-TREND_POINTS:]
        for h in history:
            h["p_text"] = _pct(h["p"])
        yield f"accounts/{r['slug']}.html", env.get_template("account.html").render(
            common, root="../", a=r,
            raises=[x for x in churn if x["points"] > 0], lowers=[x for x in churn if x["points"] <= 0],
            families=_family_bars(fam), family_source=fam_source,
            expansion=[x for x in _driver_items(d, "expansion") if x["points"] > 0],
            history=history, spark=_sparkline([(h["as_of"], h["p"]) for h in history]))


def render_report(scores: pd.DataFrame, drivers: pd.DataFrame, ledger: pd.DataFrame | None, out_dir: Path, *,
                  title: str = "churnml") -> dict:
    """Write the CSM pages into ``out_dir`` (created if missing) and say what was written.

    ``out_dir/index.html``: every CSM (accounts without a csm_owner under "Unassigned") with
    accounts, ARR, ARR at risk and high-risk count. ``out_dir/csm/<slug>.html``: one CSM's book
    of business, sortable by any column (default: ARR at risk, descending), with roll-ups by
    segment and renewal month. ``out_dir/accounts/<slug>.html``: one brief per account (risk,
    trend from ``ledger``, drivers in probability points with the play for their family, points
    per family, expansion signal, model and as-of date).

    Returns ``{"csm_pages": int, "account_pages": int, "index": Path}``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ChurnmlError(f"report folder {out_dir} exists and is not a folder")
    pages = iter_pages(scores, drivers, ledger, title=title)
    first = next(pages)  # validates the input before anything is created
    counts = {"csm": 0, "accounts": 0}
    for rel, html in itertools.chain([first], pages):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        top = rel.split("/", 1)[0]
        if top in counts:
            counts[top] += 1
    return {"csm_pages": counts["csm"], "account_pages": counts["accounts"], "index": out_dir / "index.html"}

