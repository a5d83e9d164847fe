"""Render the CSM pages from the scores, drivers, ledger and drift tables, as ``{relative path: text}`` (no files).

Pages: ``index.html`` (every book of business, the drift warning), ``csm/<slug>.html`` (one
CSM's book: who to call this week, then every account with filters, search, sorting and
paging), ``accounts/<slug>.html`` (one account's brief: risk, renewal, what changed, how to
lower it, why, the risk trend), and the shared ``static/pages.css`` and ``static/book.js``.

The headline number everywhere is the **risk**: ``risk_probability`` (the chance of churning
before the next renewal, or within 12 months where no renewal date is known; see
:meth:`churnml.modeling.model.ChurnmlModel.predict_risk`), said with its basis in words
(:mod:`churnml.pages.words`, from the scores' ``risk_basis``, ``risk_window_days`` and
``risk_renewal_date``). It sets the tier, the reasons and
"how to lower it" explain it, and the trend plots it. Scores without that column (older runs)
use ``churn_probability`` instead, said as the chance of churning within the horizon. The
churn curve (30, 90, 180 days, 12 months) is shown beside it as secondary figures.

Templates use jinja2 with autoescaping on: account names, driver texts and plays are data
and always shown as text (a name like ``<script>alert(1)</script>`` stays text). A book's
rows travel to its page as JSON inside ``<script type="application/json">``, with ``<``,
``>`` and ``&`` written as ``\\u003c``-style escapes, so no value can close the element; the
script builds the table with ``textContent``, never HTML from data.

Figures are formatted in the configured locale and currency (Babel, see :mod:`.fmt`).
One clock: every day count on the pages runs from the scores' as-of date, as in the scores'
``timing`` and ``what_changed`` texts, the CSV and ``churnml explain``; every page says that
date. The day the pages are made (``now``) only decides whether the data are old: data older
than ``stale_after_days`` put a notice on every page, with how many renewal dates have come
since the as-of date.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from churnml.features import FAMILIES
from churnml.pages.fmt import Formats
from churnml.pages.settings import TIERS, PageSettings
from churnml.pages.words import basis_phrase, risk_words, short_basis, window_months, window_words

UNASSIGNED = "Unassigned"
TIER_RANK = {"high": 3, "medium": 2, "low": 1}
FAMILY_WORDS = {
    "usage": "product usage",
    "effort": "customer effort (surveys)",
    "support": "support tickets",
    "onboarding": "onboarding",
    "commercial": "contract and billing",
    "timing": "time to renewal",
    "profile": "who the account is (size, plan, seats)",
}
CONTEXT_FAMILIES = ("timing", "profile")  # shown when scored; never a reason to act on
DAYS_PER_MONTH = 365.25 / 12
STATIC = ("static/pages.css", "static/book.js")
OPTIONAL = (
    "churn_probability_next_renewal",
    "churn_probability_30d",
    "churn_probability_180d",
    "churn_probability_365d",
    "median_months_to_churn",
    "risk_probability",
    "risk_basis",
    "risk_window_days",
    "risk_renewal_date",
    "timing",
    "how_to_lower",
    "what_changed",
    "expansion_signal",
    "expansion_probability",
    "churn_points_base",
    "risk_probability_change",
    "churn_probability_change",
)
CURVE = (
    ("churn_probability_30d", "30 days"),
    ("churn_probability", None),
    ("churn_probability_180d", "180 days"),
    ("churn_probability_365d", "12 months"),
)  # None: the labels' horizon in days
MONTHLY_KEY = "monthly (rolling)"  # the renewal-month roll-up's row of the monthly terms
ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def slug(text: str) -> str:
    """A safe, unique file name for any text (ids and names may hold any character)."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-")[:40] or "x"
    return f"{base}-{hashlib.sha1(str(text).encode()).hexdigest()[:6]}"


def _missing(v) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _num(v, digits: int = 6):
    """A JSON-safe number (None for missing)."""
    return None if _missing(v) else round(float(v), digits)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _text(v) -> str:
    return "" if _missing(v) else str(v)


NEGATIVE_ZERO = re.compile(r"(?<![\w.])[-\u2212](0(?:\.0+)?)(?![\d.])")


def unsigned_zero(text: str) -> str:
    """A text from the scores with its negative zeros said without a sign ("risk -0.0 pts" -> "risk 0.0 pts";
    "-0.05" and "-10" stay)."""
    return NEGATIVE_ZERO.sub(r"\1", text)


def _env(fmt: Formats) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("churnml.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = fmt.pct
    env.filters["pts"] = fmt.pts
    env.filters["money"] = fmt.money
    env.filters["count"] = fmt.count
    env.filters["number"] = fmt.number
    env.filters["date"] = fmt.date
    env.filters["in_days"] = fmt.in_days
    return env


def script_json(value) -> str:
    """``value`` as JSON that is safe inside a ``<script type="application/json">`` element:
    ``<``, ``>``, ``&`` and the two JavaScript line separators are written as ``\\uXXXX``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def sparkline(values: list[float], width: int = 480, height: int = 120, *, backfill: list[bool] | None = None) -> dict:
    """An SVG risk trend on one fixed 0-100% scale (every account on the same scale: 2% sits near
    the floor, 90% near the top). Returns the polyline's points, the dots (hollow for backfilled
    scores), the gridlines at 0%, 50% and 100%, and the box."""
    left, right, top, bottom = 36, 8, 8, 8
    h = height - top - bottom
    grid = [{"y": round(top + h * (1 - g), 1), "label": f"{g:.0%}"} for g in (1.0, 0.5, 0.0)]
    box = {"width": width, "height": height, "left": left, "right": width - right, "grid": grid}
    if not values:
        return {**box, "points": "", "dots": []}
    n = len(values)
    span = width - left - right
    xs = [left + span / 2] if n == 1 else [left + i * span / (n - 1) for i in range(n)]
    ys = [top + h * (1 - min(max(float(v), 0.0), 1.0)) for v in values]
    flags = backfill or [False] * n
    dots = [{"x": round(x, 1), "y": round(y, 1), "hollow": bool(b)} for x, y, b in zip(xs, ys, flags)]
    return {**box, "points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots}


# --- the tables, prepared once ---------------------------------------------------------------------------
def _prepare(scores: pd.DataFrame, drivers: pd.DataFrame, settings: PageSettings) -> pd.DataFrame:
    s = scores.copy().reset_index(drop=True)
    s["account_id"] = s["account_id"].astype(str)
    s["csm"] = s["csm_owner"].astype("object").where(s["csm_owner"].notna(), UNASSIGNED).astype(str)
    s["page"] = s["account_id"].map(lambda a: f"{slug(a)}.html")
    s["name"] = s["name"].astype("object").where(s["name"].notna(), s["account_id"]).astype(str)
    s["segment"] = s["segment"].astype("object").where(s["segment"].notna(), None) if "segment" in s else None
    renewal = pd.to_datetime(s["renewal_date"]) if "renewal_date" in s else pd.Series(pd.NaT, index=s.index)
    if "days_to_renewal" in s:
        from_as_of = pd.to_datetime(s["as_of"]) + pd.to_timedelta(s["days_to_renewal"].astype(float), unit="D")
        renewal = renewal.where(renewal.notna(), from_as_of)
    s["renewal_date"] = renewal.dt.normalize()
    as_of = pd.to_datetime(s["as_of"]).dt.normalize()
    s["renewal_in"] = (s["renewal_date"] - as_of).dt.days.astype(float)  # days from the as-of date; NaN unknown
    s["renewal_month"] = s["renewal_date"].dt.strftime("%Y-%m").fillna("unknown")
    has_risk = "risk_probability" in s
    s["risk"] = (s["risk_probability"] if has_risk else s["churn_probability"]).astype(float)
    if not has_risk or "risk_basis" not in s:  # a horizon's probability (scores of a classifier alone)
        s["risk_basis"] = "horizon"
        s["risk_window_days"] = float(settings.horizon_days)
    s["risk_basis"] = s["risk_basis"].astype("object").where(s["risk_basis"].notna(), "").astype(str)
    s["risk_window_days"] = s["risk_window_days"].astype(float)
    s["risk_renewal_date"] = (
        pd.to_datetime(s["risk_renewal_date"]) if "risk_renewal_date" in s else pd.Series(pd.NaT, index=s.index)
    )
    # a monthly term renews every month by itself: its risk runs over its own window (12 months), its stake is
    # ARR x risk, and a passed renewal date on record is not worth a check
    monthly = s["risk_basis"] == "monthly_term"
    s["monthly"] = monthly  # rolling: no renewal date to prepare for, never a passed one
    s["renewal_passed"] = (s["renewal_in"] < 0) & ~monthly
    s["renewal_month"] = s["renewal_month"].where(~monthly, MONTHLY_KEY)
    change = "risk_probability_change" if has_risk else "churn_probability_change"
    s["risk_change"] = s[change].astype(float) if change in s else np.nan
    # the one ARR at risk: the scores' column (ARR x the risk, over the risk's window), else computed alike
    s["at_stake"] = s["arr_at_risk"].astype(float) if "arr_at_risk" in s else s["arr"].astype(float) * s["risk"]
    s["stake_basis"] = s["risk_basis"]
    # top reason and play: the scores' columns, else the strongest risk-raising churn driver
    top = drivers[(drivers["target"] == "churn") & (drivers["direction"] == "raises")] if len(drivers) else drivers
    top = top.sort_values("rank").drop_duplicates("account_id").set_index("account_id") if len(top) else None
    for col, src in (("top_driver", "text"), ("top_play", "play")):
        have = s[col].astype("object") if col in s else pd.Series(None, index=s.index, dtype="object")
        if top is not None:
            have = have.where(have.notna() & (have.astype(str) != ""), top[src].reindex(s["account_id"]).to_numpy())
        s[col] = have.where(have.notna(), "").astype(str).map(unsigned_zero)
    if "expansion_signal" in s:
        s["expansion_signal"] = s["expansion_signal"].map(lambda v: None if _missing(v) else unsigned_zero(str(v)))
    window = s["risk_window_days"].map(window_months)
    months = (s["renewal_in"].clip(lower=0) / DAYS_PER_MONTH).where(~monthly).fillna(window)
    s["call_months"] = months.clip(lower=1.0)
    s["call_priority"] = s["at_stake"].fillna(0) / s["call_months"]
    return s


def call_list(book: pd.DataFrame, size: int) -> pd.DataFrame:
    """The accounts to call this week, best first, from a book prepared by :func:`_prepare`.

    Priority = what is at stake (``arr_at_risk``: ARR times the risk, over the risk's window)
    divided by the months left before renewal, counted from the as-of date and at least one: a
    renewal within a month, or already passed, counts in full; an unknown renewal counts as the
    risk's window away (12 months for "within 12 months", else the horizon). Ties go to the sooner
    renewal, then the name. Accounts with nothing at risk are left out."""
    b = book[book["at_stake"].fillna(0) > 0]
    b = b.assign(_soon=b["renewal_in"].fillna(np.inf))
    b = b.sort_values(["call_priority", "_soon", "name"], ascending=[False, True, True], kind="stable")
    return b.head(size).drop(columns="_soon")


def _trend(ledger: pd.DataFrame | None, s: pd.DataFrame, has_risk: bool) -> dict[str, list[dict]]:
    """Each account's risk by as-of date, oldest first, one per date: the pages' own scores for their
    date, and the ledger's earlier ones (a live score wins over a backfilled one for the same date,
    then the latest scored). With ``has_risk`` (the pages show ``risk_probability``), a ledger row
    without it (older ledgers) shows its ``churn_probability``, flagged ``fallback``; without, every
    row shows ``churn_probability``."""
    cur = s[["account_id", "as_of", "risk", "risk_tier"]].assign(
        backfill=False, _order=np.inf, fallback=False, model=""
    )
    parts = [cur]
    if ledger is not None and len(ledger):
        lg = ledger[ledger["account_id"].astype(str).isin(set(s["account_id"]))]
        lg = lg.assign(
            account_id=lg["account_id"].astype(str),
            backfill=lg["backfill"].eq(True) if "backfill" in lg else False,
            _order=pd.to_datetime(lg["scored_at"]).astype("int64").astype(float) if "scored_at" in lg else 0.0,
        )
        as_of = pd.to_datetime(s["as_of"]).max()
        lg = lg[pd.to_datetime(lg["as_of"]) < as_of]  # the pages' own scores stand for their date
        risk = (
            lg["risk_probability"].astype(float)
            if has_risk and "risk_probability" in lg
            else pd.Series(np.nan, index=lg.index)
        )
        lg = lg.assign(
            risk=risk.where(risk.notna(), lg["churn_probability"].astype(float)),
            fallback=risk.isna() & has_risk,
            model=lg["model_version"].astype(str) if "model_version" in lg else "",
        )
        parts.append(lg[["account_id", "as_of", "risk", "risk_tier", "backfill", "_order", "fallback", "model"]])
    t = pd.concat(parts, ignore_index=True)
    t["as_of"] = pd.to_datetime(t["as_of"])
    t["_live"] = ~t["backfill"].astype(bool)
    t = t.sort_values(["account_id", "as_of", "_live", "_order"]).drop_duplicates(["account_id", "as_of"], keep="last")
    out: dict[str, list[dict]] = defaultdict(list)
    for a, d, p, k, b, f, m in zip(
        t["account_id"], t["as_of"], t["risk"], t["risk_tier"], t["backfill"], t["fallback"], t["model"]
    ):
        out[a].append({"as_of": d, "p": p, "tier": k, "backfill": bool(b), "fallback": bool(f), "model": str(m)})
    return out


def _drivers_by_account(drivers: pd.DataFrame) -> dict[str, list[dict]]:
    """Driver rows per account: churn before expansion, risk-raising before lowering, by rank."""
    out: dict[str, list[dict]] = defaultdict(list)
    if not len(drivers):
        return out
    d = drivers.assign(account_id=drivers["account_id"].astype(str)).sort_values(
        ["account_id", "target", "direction", "rank"], ascending=[True, True, False, True], kind="stable"
    )
    for rec in d.to_dict(orient="records"):
        rec["text"], rec["play"] = unsigned_zero(_text(rec["text"])), unsigned_zero(_text(rec["play"]))
        out[rec["account_id"]].append(rec)
    return out


def _rollup(df: pd.DataFrame, key: pd.Series) -> list[dict]:
    g = df.assign(_k=key.to_numpy(), _high=(df["risk_tier"] == "high").to_numpy())
    out = g.groupby("_k", sort=True).agg(
        accounts=("account_id", "size"), arr=("arr", "sum"), at_stake=("at_stake", "sum"), high=("_high", "sum")
    )
    return [{"key": k, **r} for k, r in out.to_dict(orient="index").items()]


def _drift_rows(drift: pd.DataFrame | None, settings: PageSettings) -> list[dict]:
    if drift is None or not len(drift) or "drifted" not in drift:
        return []
    d = drift[drift["drifted"].eq(True)].sort_values("psi", ascending=False)
    rows = []
    for r in d.to_dict(orient="records"):
        f = str(r["feature"])
        label = settings.indicator_labels.get(f) or _text(r.get("label")) or f.replace("_", " ")
        rows.append({"feature": f, "label": label, "psi": float(r["psi"])})
    return rows


# --- page content ------------------------------------------------------------------------------------------
class _Words:
    """Per-account phrases shared by the book's JSON, its first page and the call list."""

    def __init__(self, fmt: Formats, settings: PageSettings, has_curve: bool):
        """``has_curve``: the scores have a risk besides the horizon's probability, which the book then
        shows as a second figure."""
        self.fmt, self.settings, self.has_curve = fmt, settings, has_curve

    def renewal(self, r: dict) -> dict:
        f = self.fmt
        if r.get("monthly"):
            return {"date": "monthly term", "note": "renews every month", "passed": False}
        if _missing(r["renewal_date"]):
            return {"date": "unknown", "note": "", "passed": False}
        passed = bool(r["renewal_passed"])
        note = f.in_days(r["renewal_in"])
        return {"date": f.date(r["renewal_date"]), "note": note, "passed": passed}

    def timing(self, r: dict) -> str:
        """The renewal in one line: the scores' ``timing`` when given (its day counts run from the as-of
        date, as the page's), else built from the renewal date and the as-of date."""
        w = self.renewal(r)
        if w["passed"]:
            return f"renewal date {w['date']} passed {self.fmt.in_days(r['renewal_in'])}: check whether it renewed"
        if r.get("monthly") and not self.given_timing(r).startswith("monthly term"):
            return "monthly term: renews every month"
        text = self.given_timing(r)
        if text:
            return text
        if w["date"] == "unknown":
            return "renewal date unknown"
        if not _missing(r["renewal_in"]) and r["renewal_in"] < 0:  # a monthly term past its date on record
            return f"monthly term: renews every month (last date on record {w['date']})"
        return f"renews {w['note']}, on {w['date']}"

    def given_timing(self, r: dict) -> str:
        """The scores' own timing line (day counts from the as-of date)."""
        return unsigned_zero(_text(r.get("timing")))

    def basis(self, r: dict) -> str:
        """The account's risk basis in words, its dates in the page's locale ("before the renewal on
        Dec 14, 2026")."""
        return basis_phrase(
            r.get("risk_basis"), r.get("risk_window_days"), r.get("risk_renewal_date"), date=self.fmt.date
        )

    def lower_moves(self, r: dict) -> list[str]:
        """ "How to lower it" as its moves (the scores join them with "; "), each a sentence without its stop."""
        return [
            _sentence(m.strip().rstrip("."))
            for m in unsigned_zero(_text(r.get("how_to_lower"))).split("; ")
            if m.strip()
        ]

    def changed(self, r: dict) -> str:
        """What changed since the previous score, "" for a first score."""
        w = unsigned_zero(_text(r.get("what_changed")))
        return "" if w in ("", "first score") else w

    def changed_briefly(self, r: dict) -> str:
        """What changed, without its causes, for the call list: "risk +54 pts since 2026-10-01 (12% -> 66%);
        tier low -> high" (the account page gives the causes)."""
        w = self.changed(r)
        head, sep, causes = w.partition(": ")
        if not sep or " since " not in head:
            return w
        tier_moved = re.search(r"; (tier \S+ -> \S+)$", causes)
        return head + (f"; {tier_moved.group(1)}" if tier_moved else "")

    def why_listed(self, r: dict, place: int, of: int) -> str:
        """Why an account is on the call list, from the numbers that put it there: "#2 of 40 in this book:
        $12,400 at risk over 2.3 months left = $5,391 a month; high tier"."""
        f = self.fmt
        months = float(r["call_months"])
        if r["risk_basis"] == "monthly_term":
            over = f"over its {window_months(r['risk_window_days']):.0f}-month risk (monthly term)"
        elif _missing(r["renewal_in"]):
            over = f"over {months:.0f} months (no renewal date)"
        elif months <= 1.0:
            over = "in full (renewal within a month)" if r["renewal_in"] >= 0 else "in full (renewal date passed)"
        else:
            over = f"over {f.number(months, 1)} months left"
        return (
            f"#{place} of {of} in this book: {f.money(r['at_stake'])} at risk {over} = "
            f"{f.money(r['call_priority'])} a month; {r['risk_tier']} tier"
        )

    def curve(self, r: dict) -> list[dict]:
        """The churn curve as secondary figures: 30, 90, 180 days and 12 months where scored."""
        out = []
        for col, label in CURVE:
            v = r.get(col)
            if v is not None and not _missing(v):  # (None is missing too: said for the type checker)
                out.append({"label": label or f"{self.settings.horizon_days} days", "p": float(v)})
        return out if len(out) > 1 or self.has_curve else []

    def book_row(self, r: dict) -> dict:
        f = self.fmt
        w = self.renewal(r)
        ch = r.get("risk_change")
        row = {
            "i": r["account_id"],
            "n": r["name"],
            "d": _text(r.get("name_id")),
            "u": f"../accounts/{r['page']}",
            "s": _text(r.get("segment")),
            "t": _text(r["risk_tier"]),
            "tr": TIER_RANK.get(r["risk_tier"], 0),
            "p": _num(r["risk"]),
            "pt": f.pct(r["risk"], 1),
            "pb": short_basis(r["risk_basis"], r["risk_window_days"]),
            "c": _num(ch),
            "ct": f.pts(ch) if not _missing(ch) else "",
            "a": _num(r["arr"], 2),
            "at": f.money(r["arr"]),
            "k": _num(r["at_stake"], 2),
            "kt": f.money(r["at_stake"]),
            "r": None if r.get("monthly") else _num(r["renewal_in"], 0),
            "m": bool(r.get("monthly")),
            "rt": w["date"],
            "rn": w["note"],
            "x": w["passed"],
            "w": r["top_driver"],
        }
        if self.has_curve:
            q = r.get("churn_probability")
            row["q"], row["qt"] = _num(q), f.pct(q, 1)
        return row


def _header(s: pd.DataFrame, settings: PageSettings, now: pd.Timestamp) -> dict:
    as_of = pd.Timestamp(s["as_of"].max()).normalize() if len(s) else None
    data_end = None if as_of is None else as_of - pd.Timedelta(days=1)
    meta = {
        "title": settings.title,
        "as_of": as_of,
        "data_end": data_end,
        "now": now,
        "model": "",
        "stale": None,
        "horizon": settings.horizon_days,
        "risk": (
            risk_words(zip(s["risk_basis"], s["risk_window_days"]))
            if len(s)
            else f"chance of churning within {settings.horizon_days} days"
        ),
        "tiers": [{"tier": t, "text": settings.tiers[t]} for t in TIERS if t in settings.tiers],
    }
    if len(s) and "model_name" in s and "model_version" in s:
        models = s[["model_name", "model_version"]].astype(str).drop_duplicates()
        meta["model"] = ", ".join(f"{a} v{b}" for a, b in models.itertuples(index=False))
    if as_of is not None:
        age = int((now - meta["data_end"]).days)  # days from the last day of data to the page's day
        if age > settings.stale_after_days:
            # renewal dates that came between the as-of date and the page's day (monthly terms renew by themselves)
            since = s["renewal_in"].between(0, int((now - as_of).days) - 1) & (s["risk_basis"] != "monthly_term")
            meta["stale"] = {"age": age, "passed": int(since.sum())}
    return meta


def render_pages(
    scores: pd.DataFrame,
    drivers: pd.DataFrame,
    ledger: pd.DataFrame | None,
    *,
    drift: pd.DataFrame | None = None,
    plays: pd.DataFrame | None = None,
    settings: PageSettings | None = None,
    now=None,
) -> dict[str, str]:
    """``index.html``, ``csm/<slug>.html``, ``accounts/<slug>.html`` and ``static/*`` as ``{relative path: text}``.

    ``scores`` holds one row per account (docs/scores.md). With ``risk_probability`` (and its
    ``risk_basis``) that is the headline risk, its change ``risk_probability_change``; without it,
    ``churn_probability`` and ``churn_probability_change``. The optional columns
    ``churn_probability_30d``, ``_180d``, ``_365d`` (the curve), ``median_months_to_churn``,
    ``arr_at_risk`` (what is at stake; else ARR times the risk), ``timing`` (context),
    ``churn_points_<family>`` with ``_timing``, ``_profile`` and ``_base``, ``how_to_lower`` and
    ``what_changed`` are shown when present. ``drivers`` is the long
    drivers table, ``ledger`` every earlier score (its ``backfill`` column, when present, marks
    scores made later on past data), ``drift`` the PSI table (feature, psi, drifted; an optional
    ``label`` column names each feature in plain words), ``plays`` how often each play is proposed
    (:func:`churnml.scoring.reasons.play_counts`, the run's ``plays.csv``; shown on the index).
    ``settings``: see :class:`PageSettings` (its defaults when None). ``now`` is the day the pages are
    made (default today): staleness runs from it; every day count runs from the scores' as-of date.
    """
    settings = PageSettings() if settings is None else settings
    now = pd.Timestamp.today().normalize() if now is None else pd.Timestamp(now).normalize()
    fmt = Formats(settings.currency, settings.locale)
    env = _env(fmt)
    s = _prepare(scores, drivers, settings)
    meta = _header(s, settings, now)
    words = _Words(fmt, settings, "risk_probability" in s)
    pages: dict[str, str] = {
        p: resources.files("churnml.pages").joinpath(p).read_text(encoding="utf-8") for p in STATIC
    }
    # what "ARR at risk" is: ARR times the risk, over each account's risk window
    when = risk_words(zip(s["stake_basis"], s["risk_window_days"])).removeprefix("chance of churning") if len(s) else ""
    stake = {"label": "ARR at risk", "when": re.sub(r"\s*\(.*\)$", "", when).strip(), "full": when.strip()}

    csms = []
    for csm, g in s.groupby("csm", sort=True):
        page = f"{slug(csm)}.html"
        g = g.sort_values(["at_stake", "name"], ascending=[False, True], kind="stable")
        # a name two accounts of this book share is shown with each one's id, wherever it appears on the page
        g = g.assign(name_id=g["account_id"].where(g["name"].duplicated(keep=False), ""))
        recs = g.to_dict(orient="records")
        rows = [words.book_row(r) for r in recs]
        listed = call_list(g, settings.call_list_size).to_dict(orient="records")
        ranked = int((g["at_stake"].fillna(0) > 0).sum())
        calls = [
            {
                **r,
                "why_listed": words.why_listed(r, k, ranked),
                "when": words.timing(r),
                "changed": words.changed_briefly(r),
                "basis": short_basis(r["risk_basis"], r["risk_window_days"]),
                "lower": words.lower_moves(r)[:1] if r["risk_tier"] in ("high", "medium") else [],
                "more_lower": len(words.lower_moves(r)) > 1,
            }
            for k, r in enumerate(listed, start=1)
        ]
        segments = sorted({r["s"] for r in rows if r["s"]})
        no_renewal = sorted(
            {window_words(w) for w in g.loc[g["renewal_in"].isna() & ~g["monthly"], "risk_window_days"]}
        )
        monthly_window = sorted({window_words(w) for w in g.loc[g["monthly"], "risk_window_days"]})
        totals = {
            "accounts": len(g),
            "arr": g["arr"].sum(),
            "at_stake": g["at_stake"].sum(),
            "high": int((g["risk_tier"] == "high").sum()),
            "renewing": int((g["renewal_in"].between(0, settings.horizon_days) & ~g["monthly"]).sum()),
            "monthly": int(g["monthly"].sum()),
            "passed": int(g["renewal_passed"].sum()),
        }
        pages[f"csm/{page}"] = env.get_template("csm.html").render(
            meta=meta,
            root="../",
            csm=csm,
            totals=totals,
            calls=calls,
            rows=rows[: settings.page_size],
            data=script_json(rows),
            segments=segments,
            page_size=settings.page_size,
            locale=settings.locale.replace("_", "-"),
            has_curve=words.has_curve,
            stake=stake,
            no_renewal=" or ".join(no_renewal),
            monthly_window=" or ".join(monthly_window),
            monthly_key=MONTHLY_KEY,
            by_segment=_rollup(g, g["segment"].astype("object").fillna("(none)")),
            by_month=_rollup(g, g["renewal_month"]),
            this_month=f"{meta['as_of'] or now:%Y-%m}",
        )
        csms.append({"name": csm, "page": page, **totals})

    trend = _trend(ledger, s, "risk_probability" in s)
    d_by = _drivers_by_account(drivers)
    fams = list(FAMILIES) + [f for f in CONTEXT_FAMILIES if f"churn_points_{f}" in s]
    for r in s.to_dict(orient="records"):
        r = {**dict.fromkeys(OPTIONAL), **{k: (None if _missing(v) else v) for k, v in r.items()}}
        d = d_by.get(r["account_id"], [])
        churn = [x for x in d if x["target"] == "churn"]
        expand = [x for x in d if x["target"] == "expansion" and x["direction"] == "raises"]
        families: list[dict[str, Any]] = [
            {
                "family": f,
                "words": FAMILY_WORDS.get(f, f),
                "points": float(r.get(f"churn_points_{f}") or 0.0),
                "context": f in CONTEXT_FAMILIES,
            }
            for f in fams
        ]
        base = r.get("churn_points_base")
        sums = base is not None and abs(base + sum(f["points"] for f in families) - r["risk"]) < 0.0005
        scale = max([abs(f["points"]) for f in families] + [1e-9])
        for f in families:
            f["width"] = round(abs(f["points"]) / scale * 100, 1)
        history = trend.get(r["account_id"], [])
        pages[f"accounts/{r['page']}"] = env.get_template("account.html").render(
            meta=meta,
            root="../",
            a=r,
            churn=churn,
            expand=expand,
            families=families,
            history=list(reversed(history)),
            earlier=len(history) > 1,
            spark=sparkline([h["p"] for h in history], backfill=[h["backfill"] for h in history]),
            renewal=words.renewal(r),
            when=_sentence(words.timing(r)),
            say_when=(
                bool(words.given_timing(r)) or words.renewal(r)["passed"] or r["median_months_to_churn"] is not None
            ),
            stake=stake,
            basis=words.basis(r),
            curve=words.curve(r),
            lower=words.lower_moves(r),
            changed=words.changed(r),
            fallback=any(h["fallback"] for h in history),
            base=base if sums else None,
            stake_when=risk_words([(r["stake_basis"], r["risk_window_days"])])
            .removeprefix("chance of churning ")
            .split(" (")[0],
            family_words=FAMILY_WORDS,
            csm_page=f"{slug(r['csm'])}.html",
        )

    total = {
        "accounts": len(s),
        "arr": s["arr"].sum(),
        "at_stake": s["at_stake"].sum(),
        "high": int((s["risk_tier"] == "high").sum()),
        "renewing": int((s["renewal_in"].between(0, settings.horizon_days) & ~s["monthly"]).sum()),
        "monthly": int(s["monthly"].sum()),
        "passed": int(s["renewal_passed"].sum()),
    }
    play_rows = [] if plays is None or not len(plays) else plays[plays["target"] == "churn"].to_dict(orient="records")
    pages["index.html"] = env.get_template("index.html").render(
        meta=meta, root="", csms=csms, total=total, drift=_drift_rows(drift, settings), stake=stake, plays=play_rows
    )
    return pages
