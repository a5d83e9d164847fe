"""CSM pages: only a CSM's own accounts, names shown as text, figures in the configured locale,
honest about old data and past renewals, and usable in a real browser at phone and desktop width."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnml.errors import ChurnmlError
from churnml.io.artifacts import write_pages
from churnml.pages.fmt import Formats
from churnml.pages.render import PageSettings, call_list, render_pages, script_json, slug, sparkline, unsigned_zero
from churnml.pages.words import basis_phrase, risk_words, short_basis

EVIL = "<script>alert(1)</script> Ltd"
EVIL2 = "</script><script>alert(2)</script> GmbH"
NBSP = "\u00a0"
AS_OF = pd.Timestamp("2026-11-01")
FRESH = pd.Timestamp("2026-11-03")  # pages made two days after the scores


def _scores():
    rows = [
        ("A1", EVIL, "SMB", "Ann Lee", 0.41, "high", 1200.0, 30.0),
        ("A2", "Smith & Sons", "Enterprise", "Ann Lee", 0.05, "low", 90000.0, 200.0),
        ("A3", 'The "Best" Co', "Mid-Market", "Bob Stone", 0.22, "medium", 30000.0, 10.0),
        ("A4", "Orbit Labs", "SMB", "Cy Park", 0.61, "high", 2400.0, np.nan),
        ("A5", "Nobody's Account", "SMB", None, 0.10, "low", 600.0, 100.0),
        ("A6", EVIL2, "SMB", "Ann Lee", 0.30, "medium", 500.0, 60.0),
    ]
    s = pd.DataFrame(
        rows,
        columns=[
            "account_id",
            "name",
            "segment",
            "csm_owner",
            "churn_probability",
            "risk_tier",
            "mrr",
            "days_to_renewal",
        ],
    )
    s["as_of"] = AS_OF
    s["expansion_probability"] = [0.01, 0.3, 0.05, 0.0, 0.2, 0.02]
    s["arr"] = 12 * s["mrr"]
    s["arr_at_risk"] = s["arr"] * s["churn_probability"]
    s["renewal_date"] = s["as_of"] + pd.to_timedelta(s["days_to_renewal"], unit="D")
    s["model_name"], s["model_version"] = "churnml", "3"
    s["previous_churn_probability"] = [0.2, 0.0504, 0.25, 0.5, 0.1, np.nan]
    s["churn_probability_change"] = s["churn_probability"] - s["previous_churn_probability"]  # A2: -0.0004
    s["what_changed"] = [
        "churn risk 20% -> 41% since 2026-10-01; tier medium -> high",
        "churn risk 5% -> 5%",
        "",
        "",
        "",
        "first score",
    ]
    s["top_driver"] = ["Active users per seat (30 days): 0.05; segment median 0.30", "", "", "", "", ""]
    s["top_play"] = ["Adoption workshop: book it", "", "", "", "", ""]
    s["expansion_signal"] = ["1% chance to expand"] * 6
    for f in ("usage", "effort", "support", "onboarding", "commercial"):
        s[f"churn_points_{f}"] = [0.2, -0.01, 0.03, 0.1, 0.0, 0.01]
    return s


def _drivers():
    return pd.DataFrame(
        [
            (
                "A1",
                "churn",
                1,
                "raises",
                "usage",
                "active_users_per_seat_30d",
                0.2,
                "Active users per seat (30 days): 0.05; segment median 0.30",
                "Adoption workshop: book it",
            ),
            ("A1", "churn", 2, "lowers", "commercial", "tenure_days", -0.01, "Account age: 900 days", ""),
            (
                "A6",
                "churn",
                1,
                "raises",
                "support",
                "tickets_open_30d",
                0.1,
                "Open tickets: 4; segment median 1",
                "Support review: walk through the open tickets",
            ),
            (
                "A2",
                "expansion",
                1,
                "raises",
                "usage",
                "peak_active_users_per_seat_30d",
                0.1,
                "Seats in use: 0.98",
                "Expansion conversation: propose seats",
            ),
        ],
        columns=["account_id", "target", "rank", "direction", "family", "feature", "points", "text", "play"],
    )


def _ledger():
    return pd.DataFrame(
        {
            "run_id": ["r1", "r2"],
            "scored_at": pd.to_datetime(["2026-10-01", "2026-11-01"]),
            "as_of": pd.to_datetime(["2026-10-01", "2026-11-01"]),
            "account_id": ["A1", "A1"],
            "model_name": "churnml",
            "model_version": "3",
            "churn_probability": [0.2, 0.41],
            "expansion_probability": [0.01, 0.01],
            "risk_tier": ["medium", "high"],
            "arr_at_risk": [2880.0, 5904.0],
        }
    )


def _plain(html: str) -> str:
    """The page's text with every run of spaces (non-breaking ones too) as one space, to compare sentences."""
    return " ".join(html.replace(NBSP, " ").split())


def _book_rows(html: str) -> list[dict]:
    """The rows a book page carries as JSON."""
    m = re.search(r'<script type="application/json" id="book-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no embedded rows"
    return json.loads(m.group(1))


@pytest.fixture()
def pages(tmp_path):
    pages = render_pages(_scores(), _drivers(), _ledger(), now=FRESH)
    write_pages(pages, tmp_path / "report")
    return tmp_path / "report", pages


# --- who sees what, and names as text --------------------------------------------------------------------
def test_each_csm_page_holds_only_that_csms_accounts(pages):
    out, written = pages
    assert sorted(k.split("/")[0] for k in written) == ["accounts"] * 6 + ["csm"] * 4 + ["index.html"] + ["static"] * 2
    owners = {"Ann Lee": {"A1", "A2", "A6"}, "Bob Stone": {"A3"}, "Cy Park": {"A4"}, "Unassigned": {"A5"}}
    for csm, mine in owners.items():
        html = (out / "csm" / f"{slug(csm)}.html").read_text()
        linked = set(re.findall(r'href="\.\./accounts/(A\d)-', html))
        assert linked == mine, csm
        assert {r["i"] for r in _book_rows(html)} == mine, csm
    index = (out / "index.html").read_text()
    assert all(f"csm/{slug(c)}.html" in index for c in owners)


def test_names_are_escaped_text_never_markup(pages):
    out, _ = pages
    brief = (out / "accounts" / f"{slug('A1')}.html").read_text()
    book = (out / "csm" / f"{slug('Ann Lee')}.html").read_text()
    for html in (brief, book):
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Ltd" in html
        assert "<script>alert(" not in html
    assert "Smith &amp; Sons" in book
    # the embedded JSON cannot close its element: every "<" of the data is \u003c
    assert book.count("</script>") == 2  # the data element and the external script's element
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(2)" in book
    assert {r["n"] for r in _book_rows(book)} == {EVIL, "Smith & Sons", EVIL2}
    assert script_json({"n": "a</script>&\u2028"}) == '{"n":"a\\u003c/script\\u003e\\u0026\\u2028"}'
    assert f"+20.0{NBSP}pts" in brief and "Adoption workshop" in brief and "since 2026-10-01" in brief
    assert "<polyline" in brief  # risk trend from the ledger


def test_a_name_two_accounts_of_a_book_share_is_shown_with_each_ones_id():
    s = _scores()
    s.loc[s["account_id"] == "A6", "name"] = "Smith & Sons"  # A2 and A6: same name, same book (Ann Lee)
    s.loc[s["account_id"] == "A4", "name"] = EVIL  # A1's name, but in another book: no id needed there
    pages = render_pages(s, _drivers(), _ledger(), now=FRESH)
    book = pages[f"csm/{slug('Ann Lee')}.html"]
    rows = {r["i"]: r for r in _book_rows(book)}
    assert (rows["A2"]["d"], rows["A6"]["d"], rows["A1"]["d"]) == ("A2", "A6", "")
    text = _plain(book)
    assert "Smith &amp; Sons</a> A2" in text.replace('<span class="small nowrap acct-id">', "").replace("</span>", "")
    assert text.count('acct-id">A6<') == 2  # the call list and the first page of the table
    assert 'acct-id">A1<' not in text and 'acct-id">A4<' not in _plain(pages[f"csm/{slug('Cy Park')}.html"])


# --- formatting ------------------------------------------------------------------------------------------
def test_formats_in_locale_and_currency():
    us, de = Formats("USD", "en_US"), Formats("EUR", "de_DE")
    assert [us.money(v) for v in (1234567.4, -0.3, 999.5, None)] == ["$1,234,567", "$0", "$1,000", ""]
    assert de.money(1234567.4) == f"1.234.567{NBSP}€"
    assert us.money(-2500) == "\u2212$2,500"
    assert (us.count(3000), de.count(3000), us.count(np.nan)) == ("3,000", "3.000", "")
    assert [us.pct(v, 1) for v in (0.41, 0.0004, 0.0, 1.0)] == ["41.0%", "<0.1%", "0.0%", "100.0%"]
    assert de.pct(0.41, 1) == f"41,0{NBSP}%"
    assert [us.pts(v) for v in (0.2, -0.031, -0.0004, 0.0004, 0.0)] == [
        f"+20.0{NBSP}pts",
        f"\u22123.1{NBSP}pts",
        f"0.0{NBSP}pts",
        f"0.0{NBSP}pts",
        f"0.0{NBSP}pts",
    ]
    assert de.pts(0.839) == f"+83,9{NBSP}pts"
    assert (us.date("2026-11-01"), de.date("2026-11-01")) == (f"Nov{NBSP}1,{NBSP}2026", "01.11.2026")
    assert [us.in_days(d) for d in (0, 1, -1, 23, -12, 1234)] == [
        "today",
        "tomorrow",
        "yesterday",
        f"in 23{NBSP}days",
        f"12{NBSP}days ago",
        f"in 1,234{NBSP}days",
    ]
    assert us.number(0.534) == "0.53" and de.number(0.534) == "0,53"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"currency": "XXQ"}, "unknown currency"),
        ({"locale": "zz_ZZ"}, "unknown locale"),
        ({"page_size": 0}, "page_size"),
        ({"tiers": {"critical": "x"}}, "unknown tier"),
    ],
)
def test_page_settings_are_checked(kwargs, message):
    with pytest.raises(ChurnmlError, match=message):
        PageSettings(**kwargs)


def test_pages_say_figures_in_the_configured_currency_and_never_negative_zero():
    s = _scores()
    s.loc[s["account_id"] == "A2", "mrr"] = 102_880.0  # ARR 1,234,560
    s["arr"] = 12 * s["mrr"]
    s["arr_at_risk"] = s["arr"] * s["churn_probability"]
    pages = render_pages(s, _drivers(), _ledger(), now=FRESH, settings=PageSettings(currency="EUR", locale="de_DE"))
    book = pages[f"csm/{slug('Ann Lee')}.html"]
    a2 = pages[f"accounts/{slug('A2')}.html"]
    assert f"1.234.560{NBSP}€" in book and f"1.234.560{NBSP}€" in a2  # ARR with thousands separators
    assert [r["ct"] for r in _book_rows(book) if r["i"] == "A2"] == [f"0,0{NBSP}pts"]  # -0.0004 rounds to 0
    for html in (v for k, v in pages.items() if k.endswith(".html")):
        assert not re.search(r"[-\u2212]0[.,]0\b", html)
        assert "$" not in re.sub(r"<script.*?</script>", "", html, flags=re.DOTALL)


def test_texts_from_the_scores_never_show_a_negative_zero():
    assert unsigned_zero(
        "risk -0.0 pts since 2026-10-01 (1% -> 1%): timing (-1), usage \u22120% (-0), x -0.05, -10 days, a-0"
    ) == ("risk 0.0 pts since 2026-10-01 (1% -> 1%): timing (-1), usage 0% (0), x -0.05, -10 days, a-0")
    s = _risk_scores()
    s.loc[s["account_id"] == "A3", "what_changed"] = "risk -0.0 pts since 2026-10-01 (25% -> 25%): open tickets (-0)"
    s.loc[s["account_id"] == "A3", "top_driver"] = "Effort score: 4.1; healthy accounts: -0.0 points"
    d = pd.concat(
        [
            _drivers(),
            pd.DataFrame(
                [
                    (
                        "A3",
                        "churn",
                        1,
                        "raises",
                        "effort",
                        "effort_score_90d",
                        0.02,
                        "Effort score: 4.1; healthy accounts: -0.0 points",
                        "",
                    )
                ],
                columns=_drivers().columns,
            ),
        ],
        ignore_index=True,
    )
    pages = render_pages(s, d, None, now=FRESH)
    for path in (f"accounts/{slug('A3')}.html", f"csm/{slug('Bob Stone')}.html"):
        assert "healthy accounts: 0.0 points" in pages[path], path
        assert "risk 0.0 pts since 2026-10-01" in pages[path] and not re.search(r"[ (]-0\b", pages[path]), path


def test_sparkline_uses_one_scale_for_every_account():
    low, high = sparkline([0.016]), sparkline([0.89])
    assert (low["dots"][0]["y"], high["dots"][0]["y"]) == (110.3, 19.4)  # 8 + 104 * (1 - p)
    two = sparkline([0.016, 0.89, 1.3], backfill=[True, False, False])
    assert [d["y"] for d in two["dots"]] == [110.3, 19.4, 8.0]  # above 100% is drawn at the top
    assert [d["hollow"] for d in two["dots"]] == [True, False, False]
    assert [g["label"] for g in two["grid"]] == ["100%", "50%", "0%"]


# --- what a CSM should act on ----------------------------------------------------------------------------
def _call_book():
    """Six accounts: (id, ARR at risk, days to renewal from the as-of date, as every day count is)."""
    rows = [
        ("B1", 10_000.0, 300.0),
        ("B2", 3_000.0, 20.0),
        ("B3", 3_000.0, 10.0),
        ("B4", 500.0, -5.0),
        ("B5", 0.0, 5.0),
        ("B6", 2_000.0, np.nan),
    ]
    s = pd.DataFrame(rows, columns=["account_id", "arr_at_risk", "days"])
    s["name"] = "Acme " + s["account_id"]
    s["segment"], s["csm_owner"], s["as_of"] = "SMB", "Dee", AS_OF
    s["churn_probability"], s["risk_tier"], s["expansion_probability"] = 0.2, "medium", 0.1
    s["arr"] = s["arr_at_risk"] / 0.2
    s["mrr"] = s["arr"] / 12
    s["days_to_renewal"] = s["days"]
    s["renewal_date"] = AS_OF + pd.to_timedelta(s["days_to_renewal"], unit="D")
    s["top_driver"] = "Open tickets: 4; segment median 1"
    s["top_play"] = "Support review: walk through the open tickets"
    s["model_name"], s["model_version"] = "churnml", "3"
    return s.drop(columns="days")


def test_call_list_ranks_by_stake_per_month_left_then_sooner_renewal():
    s = _call_book()
    pages = render_pages(s, _drivers().iloc[:0], None, now=FRESH, settings=PageSettings(call_list_size=10))
    book = pages[f"csm/{slug('Dee')}.html"]
    calls = re.findall(r'<li class="call[^"]*" data-account="(B\d)"', book)
    # B3, B2: 3,000 within a month (tie: sooner first); B1: 10,000 / 9.86 months; B6: unknown renewal
    # counts as the 90-day horizon, 2,000 / 2.96; B4: renewal passed, 500 in full; B5: nothing at stake
    assert calls == ["B3", "B2", "B1", "B6", "B4"]
    assert "without a renewal date counts as 90 days away" in _plain(book)
    assert "renewal date Oct 27, 2026 passed 5 days ago: check whether it renewed" in _plain(book)
    # each card says why it is on the list, from the numbers that ranked it (B1: 10,000 over 300 days = 9.9 months)
    why = re.findall(r'<div class="listed"><span class="lbl">On the list:</span> (.*?)</div>', book.replace(NBSP, " "))
    assert why == [
        "#1 of 5 in this book: $3,000 at risk in full (renewal within a month) = $3,000 a month; medium tier",
        "#2 of 5 in this book: $3,000 at risk in full (renewal within a month) = $3,000 a month; medium tier",
        "#3 of 5 in this book: $10,000 at risk over 9.9 months left = $1,015 a month; medium tier",
        "#4 of 5 in this book: $2,000 at risk over 3 months (no renewal date) = $676 a month; medium tier",
        "#5 of 5 in this book: $500 at risk in full (renewal date passed) = $500 a month; medium tier",
    ]
    assert "Open tickets: 4; segment median 1" in book and "Support review" in book
    # the stake is the scores' own arr_at_risk, wherever it comes from
    s["arr_at_risk"] = [10_000.0, 3_000.0, 3_000.0, 500.0, 0.0, 50_000.0]
    s["timing"] = "renews soon"
    pages = render_pages(s, _drivers().iloc[:0], None, now=FRESH, settings=PageSettings(call_list_size=3))
    book = pages[f"csm/{slug('Dee')}.html"]
    assert re.findall(r'<li class="call[^"]*" data-account="(B\d)"', book) == ["B6", "B3", "B2"]
    assert "ARR at risk within 90 days" in _plain(book)  # the risk of these scores: the horizon's


def test_call_list_function_leaves_out_nothing_at_stake():
    b = pd.DataFrame(
        {
            "at_stake": [0.0, 5.0, np.nan],
            "renewal_in": [1.0, 400.0, 3.0],
            "call_priority": [0.0, 0.4, 0.0],
            "name": ["a", "b", "c"],
        }
    )
    assert call_list(b, 10)["name"].tolist() == ["b"]


def test_staleness_from_the_pages_day_and_every_day_count_from_the_as_of_date():
    fresh = render_pages(_scores(), _drivers(), _ledger(), now=FRESH)
    assert not any('id="stale"' in html for html in fresh.values())
    late = pd.Timestamp("2027-01-05")  # 66 days after the data end (Oct 31, 2026)
    stale = render_pages(_scores(), _drivers(), _ledger(), now=late, settings=PageSettings(stale_after_days=45))
    notice = (
        "These scores use data up to Oct 31, 2026, 66 days before this page was made. Risks, renewals and ARR "
        "may have changed since, and 3 renewal dates have come since the as-of date: score again with fresh "
        "data before acting on them. Day counts on these pages run from the as-of date, Nov 1, 2026."
    )
    for path in ("index.html", f"csm/{slug('Ann Lee')}.html", f"accounts/{slug('A1')}.html"):
        assert 'id="stale"' in stale[path] and notice in _plain(stale[path]), path
        assert "scores as of Nov 1, 2026 (day counts from that date)" in _plain(re.sub("<[^>]+>", "", stale[path]))
    book = stale[f"csm/{slug('Ann Lee')}.html"]
    counts = {r["i"]: (r["x"], r["rn"]) for r in _book_rows(book)}
    # A1 renews Dec 1, A6 Dec 31, A2 May 20, 2027: 30, 60 and 200 days after the as-of date, whenever the page is made
    assert counts == {
        "A1": (False, f"in 30{NBSP}days"),
        "A6": (False, f"in 60{NBSP}days"),
        "A2": (False, f"in 200{NBSP}days"),
    }
    assert counts == {r["i"]: (r["x"], r["rn"]) for r in _book_rows(fresh[f"csm/{slug('Ann Lee')}.html"])}
    assert '<span class="flag">passed</span>' not in book and "renewal dates passed" not in _plain(book)


def test_drift_warning_on_the_index_in_plain_words():
    drift = pd.DataFrame(
        {
            "feature": ["first_response_minutes", "days_since_last_activity", "tenure_days"],
            "psi": [0.41, 0.3, 0.05],
            "drifted": [True, True, False],
        }
    )
    labels = {"first_response_minutes": "time to first reply on tickets"}
    index = render_pages(
        _scores(), _drivers(), None, drift=drift, now=FRESH, settings=PageSettings(indicator_labels=labels)
    )["index.html"]
    assert 'id="drift"' in index and "2 indicators now look different" in index
    assert re.findall(r"<li>(.*?) <span", index) == ["time to first reply on tickets", "days since last activity"]
    assert "tenure" not in index and "first_response_minutes" not in index
    quiet = render_pages(_scores(), _drivers(), None, drift=drift.assign(drifted=False), now=FRESH)["index.html"]
    assert 'id="drift"' not in quiet


def test_tier_legend_from_settings_on_every_page(pages):
    tiers = {
        "high": "30% or more chance of churning before the next renewal",
        "medium": "10% to 30%",
        "low": "under 10%",
    }
    out = render_pages(_scores(), _drivers(), None, now=FRESH, settings=PageSettings(tiers=tiers))
    for path in ("index.html", f"csm/{slug('Ann Lee')}.html", f"accounts/{slug('A1')}.html"):
        assert all(text in out[path] for text in tiers.values()), path


def test_optional_columns_are_shown_when_present_and_absent_otherwise(pages):
    """Scores of a 90-day classifier (no risk_probability): the 90-day chance is the risk."""
    _, plain = pages
    brief = plain[f"accounts/{slug('A1')}.html"]
    assert "before the next renewal" not in brief and "How to lower" not in brief and "time to renewal" not in brief
    assert "risk: chance of churning within 90 days" in brief and 'id="curve"' not in brief
    assert "churn risk 20% -&gt; 41% since 2026-10-01" in brief
    assert "First score for this account" in plain[f"accounts/{slug('A6')}.html"]
    s = _scores()
    s["churn_probability_next_renewal"] = [0.55, 0.1, 0.3, 0.7, 0.2, 0.4]
    s["churn_probability_180d"] = 0.5
    s["churn_probability_365d"] = [0.8, np.nan, 0.5, 0.9, 0.3, 0.6]
    s["median_months_to_churn"] = [7.0, np.nan, 20.0, 4.0, np.nan, 9.0]
    s["risk_basis"] = "renewal"  # no risk_probability: the pages show the horizon's probability
    s["timing"] = "renews in 30 days, on 2026-12-01; annual term"
    s["churn_points_timing"] = 0.05
    s["how_to_lower"] = "Book the adoption workshop: about -8 points"
    brief = render_pages(s, _drivers(), _ledger(), now=FRESH)[f"accounts/{slug('A1')}.html"]
    for text in (
        "55.0%</strong> before the next renewal",
        "90 days <strong>41%</strong>",
        "180 days <strong>50%</strong>",
        "12 months <strong>80%</strong>",
        "risk: chance of churning within 90 days",
        "Renews in 30 days, on 2026-12-01; annual term; even odds of churning within 7 months.",
        "How to lower it",
        "<li>Book the adoption workshop: about -8 points.</li>",
        "time to renewal",
        "+5.0 pts",
        "ARR at risk within 90 days",  # the risk of these scores (no risk_probability): the horizon's
    ):
        assert text in _plain(brief), text
    a2 = render_pages(s, _drivers(), _ledger(), now=FRESH)[f"accounts/{slug('A2')}.html"]
    assert "12 months" not in a2 and "even odds" not in a2 and "180 days <strong>50%" in _plain(a2)


def _risk_scores():
    """The small fixture scored by a time-to-churn model: the risk differs from the 90-day chance, A4 has no
    renewal date (its risk is within 12 months), and base plus family points add up to each risk."""
    s = _scores()
    s["risk_probability"] = [0.82, 0.04, 0.25, 0.70, 0.12, 0.33]
    s["churn_probability_30d"] = [0.10, 0.01, 0.05, 0.20, 0.02, 0.05]
    s["churn_probability_180d"] = [0.85, 0.08, 0.30, 0.66, 0.15, 0.35]
    s["churn_probability_365d"] = [0.90, 0.10, 0.40, 0.70, 0.20, 0.45]
    renews = s["renewal_date"].notna()
    s["churn_probability_next_renewal"] = s["risk_probability"].where(renews)
    _set_basis(s, np.where(renews, "renewal", "no_renewal_date"))
    s["arr_at_risk"] = s["arr"] * s["risk_probability"]
    s["median_months_to_churn"] = [1.0, np.nan, np.nan, 6.0, np.nan, np.nan]
    s["previous_risk_probability"] = [0.20, 0.04, 0.30, np.nan, 0.10, np.nan]
    s["risk_probability_change"] = s["risk_probability"] - s["previous_risk_probability"]
    s["timing"] = ["renews in 30 days, on 2026-12-01; annual term; customer for 9 months", "", "", "", "", ""]
    s["what_changed"] = [
        "risk +62 pts since 2026-10-01 (20% -> 82%): active users per seat (7 days) fell 0.30 -> "
        "0.05 (+40), timing: renewal 61 -> 30 days away (+12); tier medium -> high",
        "",
        "risk -5 pts since 2026-10-01 (30% -> 25%): open tickets 4 -> 1 (-5)",
        "",
        "",
        "",
    ]
    s["how_to_lower"] = [
        "if active users per seat (7 days) returned to 0.30, risk would fall from 82% to 40%; "
        "if <i>seats</i> were used, risk would fall from 82% to 70%; both together: risk 82% -> 31%",
        "",
        "if open tickets returned to 1, risk would fall from 25% to 20%",
        "",
        "",
        "",
    ]
    s["churn_points_base"] = 0.10
    for f in ("effort", "support", "onboarding", "commercial"):
        s[f"churn_points_{f}"] = 0.0
    s["churn_points_timing"] = [0.12, 0.0, 0.0, 0.0, 0.0, 0.0]
    s["churn_points_profile"] = [0.03, 0.0, 0.0, 0.0, 0.0, 0.0]
    s["churn_points_support"] = [0.05, 0.0, 0.0, 0.0, 0.0, 0.0]
    s["churn_points_usage"] = (
        s["risk_probability"] - 0.10 - s["churn_points_timing"] - s["churn_points_profile"] - s["churn_points_support"]
    )
    s["risk_tier"] = np.where(
        s["risk_probability"] >= 0.3, "high", np.where(s["risk_probability"] >= 0.15, "medium", "low")
    )
    return s


def _set_basis(s: pd.DataFrame, kinds, renewal_dates=None) -> None:
    """The scores' structured risk basis: the kind per account, its window (12 months, or to the renewal)
    and the renewal date it runs to (``renewal_dates``, else the scores' ``renewal_date``)."""
    kinds = np.asarray(kinds, dtype=object)
    dates = pd.to_datetime(pd.Series(renewal_dates if renewal_dates is not None else s["renewal_date"], index=s.index))
    s["risk_basis"] = kinds
    s["risk_renewal_date"] = dates.where(kinds == "renewal")
    days = (s["risk_renewal_date"] - pd.to_datetime(s["as_of"])).dt.days.astype(float) + 14
    s["risk_window_days"] = np.where(kinds == "renewal", days, 365.0)


def test_risk_words_and_short_basis():
    assert risk_words([("renewal", 40.0), ("renewal", 70.0)]) == ("chance of churning before the next renewal")
    assert risk_words([("renewal", 40.0), ("no_renewal_date", 365.0), (None, np.nan)]) == (
        "chance of churning before the next renewal (within 12 months where no renewal date is known)"
    )
    assert risk_words([("horizon", 90.0)]) == "chance of churning within 90 days"
    assert [short_basis(*b) for b in (("renewal", 40.0), ("no_renewal_date", 365.0), ("horizon", 90.0))] == [
        "before renewal",
        "within 12 months",
        "within 90 days",
    ]
    assert basis_phrase("renewal", 40.0, "2026-12-01") == "before the renewal on 2026-12-01"
    assert basis_phrase("no_renewal_date", 365.0) == "within 12 months (no renewal date known)"
    assert basis_phrase("monthly_term", 365.0) == "within 12 months (monthly term)"
    assert basis_phrase("horizon", 30.0) == "within 30 days"


def test_the_risk_is_the_headline_with_its_basis_and_the_curve_beside_it():
    pages = render_pages(_risk_scores(), _drivers(), _ledger(), now=FRESH)
    legend = (
        "Tiers are cut on the risk: the chance of churning before the next renewal (within 12 months where "
        "no renewal date is known)."
    )
    for path in ("index.html", f"csm/{slug('Ann Lee')}.html", f"accounts/{slug('A1')}.html"):
        assert legend in _plain(pages[path]), path
    index = _plain(pages["index.html"])
    assert (
        "The risk of an account is the chance of churning before the next renewal (within 12 months where no "
        "renewal date is known); it sets the tier."
    ) in index
    # the book: the risk with its basis, its change, the 90-day chance as a second figure
    book = pages[f"csm/{slug('Ann Lee')}.html"]
    rows = {r["i"]: r for r in _book_rows(book)}
    assert {i: (r["pt"], r["pb"], r["ct"], r["qt"]) for i, r in rows.items()} == {
        "A1": ("82.0%", "before renewal", f"+62.0{NBSP}pts", "41.0%"),
        "A2": ("4.0%", "before renewal", f"0.0{NBSP}pts", "5.0%"),
        "A6": ("33.0%", "before renewal", "", "30.0%"),
    }
    assert 'data-sort="p">risk</button>' in book and 'data-sort="q">churn in 90 days</button>' in book
    cy = _book_rows(pages[f"csm/{slug('Cy Park')}.html"])
    assert [(r["pb"], r["k"]) for r in cy] == [("within 12 months", 28800 * 0.7)]  # no renewal: ARR x risk
    # the account: risk, basis in words (its date in the locale), curve, timing as context
    a1 = _plain(pages[f"accounts/{slug('A1')}.html"])
    for text in (
        '<span class="nowrap">82.0%</span></div> <div class="k basis">risk: chance of churning before the '
        "renewal on Dec 1, 2026</div>",
        'Chance of churning within:</span> <span class="nowrap">30 days <strong>10%</strong></span> &middot; '
        '<span class="nowrap">90 days <strong>41%</strong></span> &middot; <span class="nowrap">180 days '
        '<strong>85%</strong></span> &middot; <span class="nowrap">12 months <strong>90%</strong></span>',
        "Renews in 30 days, on 2026-12-01; annual term; customer for 9 months; even odds of churning within 1 month.",
        '$11,808</div><div class="k">ARR at risk before the next renewal, of',
        "The average account starts at 10.0%; these points take this account to its 82.0%.",
        'time to renewal <span class="small">(context)</span>',
        'who the account is (size, plan, seats) <span class="small">(context)</span>',
        "In probability points of the risk: +5.0 pts means this raises the chance of churning before the "
        "renewal on Dec 1, 2026 by 5 percentage points.",
    ):
        assert text in a1, text
    assert "before the next renewal</div>" not in a1  # the next renewal's chance is the risk: said once
    a4 = _plain(pages[f"accounts/{slug('A4')}.html"])
    assert "risk: chance of churning within 12 months (no renewal date known)" in a4
    assert "ARR at risk within 12 months, of" in a4


def test_how_to_lower_and_what_changed_on_the_account_and_briefly_on_the_call_list():
    pages = render_pages(_risk_scores(), _drivers(), _ledger(), now=FRESH)
    a1 = _plain(pages[f"accounts/{slug('A1')}.html"])
    assert (
        '<h2 id="lower">How to lower it</h2> <ul class="lower"><li>If active users per seat (7 days) returned '
        "to 0.30, risk would fall from 82% to 40%.</li><li>If &lt;i&gt;seats&lt;/i&gt; were used, risk would "
        "fall from 82% to 70%.</li><li>Both together: risk 82% -&gt; 31%.</li></ul>"
    ) in a1
    assert (
        "risk +62 pts since 2026-10-01 (20% -&gt; 82%): active users per seat (7 days) fell 0.30 -&gt; 0.05 "
        "(+40), timing: renewal 61 -&gt; 30 days away (+12); tier medium -&gt; high"
    ) in a1
    assert "How to lower it" not in pages[f"accounts/{slug('A2')}.html"]
    calls = {
        m.group(1): _plain(m.group(2))
        for m in re.finditer(
            r'<li class="call[^"]*" data-account="(A\d)">(.*?)</li>\n', pages[f"csm/{slug('Ann Lee')}.html"], re.DOTALL
        )
    }
    # A1: 82% of 14,400 within a month; A2: 4% of 1,080,000 over 6.5 months (6,646 a month) beats A6: 33% of
    # 6,000 over 1.9 months
    assert list(calls) == ["A1", "A2", "A6"]
    assert "<strong>82%</strong> risk</span> before renewal" in calls["A1"]
    assert "renews in 30 days, on 2026-12-01; annual term; customer for 9 months" in calls["A1"]
    assert (
        '<span class="lbl">Changed:</span> risk +62 pts since 2026-10-01 (20% -&gt; 82%); tier medium -&gt; high</div>'
    ) in calls["A1"]  # briefly: the causes are on the account page
    assert (
        '<span class="lbl">Lower it:</span> If active users per seat (7 days) returned to 0.30, risk would fall '
        f'from 82% to 40% <a class="small nowrap" href="../accounts/{slug("A1")}.html#lower">more ways</a>'
    ) in calls["A1"]
    assert "Lower it" not in calls["A2"] and "Changed" not in calls["A2"]  # low risk; first score
    bob = _plain(pages[f"csm/{slug('Bob Stone')}.html"])
    assert "Changed:</span> risk -5 pts since 2026-10-01 (30% -&gt; 25%)</div>" in bob and "more ways" not in bob


def test_call_list_counts_an_unknown_renewal_as_the_risks_twelve_months():
    s = _call_book()
    s["risk_probability"] = 0.5
    known = s["renewal_date"].notna()
    _set_basis(s, np.where(known, "renewal", "no_renewal_date"), np.where(known, "2027-01-01", None))
    s["arr_at_risk"] = s["arr"] * 0.5
    book = render_pages(s, _drivers().iloc[:0], None, now=FRESH, settings=PageSettings(call_list_size=10))[
        f"csm/{slug('Dee')}.html"
    ]
    # stakes 25,000 (B1, 9.86 months), 7,500 (B2, B3 within a month), 1,250 (B4 passed), 5,000 (B6: 12 months)
    assert re.findall(r'<li class="call[^"]*" data-account="(B\d)"', book) == ["B3", "B2", "B1", "B4", "B6"]
    assert (
        "ARR at risk before the next renewal (within 12 months where no renewal date is known), divided by the "
        "months left before renewal (a renewal within a month, or already passed, counts in full; an account "
        "without a renewal date counts as 12 months away)."
    ) in _plain(book)
    assert "counts in full)." in _plain(
        render_pages(s[s["renewal_date"].notna()], _drivers().iloc[:0], None, now=FRESH)[f"csm/{slug('Dee')}.html"]
    )


def test_trend_plots_the_risk_and_says_the_truth_about_backfill():
    ledger = pd.DataFrame(
        {
            "account_id": ["A1"] * 3,
            "risk_tier": ["low", "medium", "medium"],
            "as_of": pd.to_datetime(["2026-08-01", "2026-09-01", "2026-10-01"]),
            "scored_at": pd.to_datetime(["2026-11-02", "2026-11-02", "2026-10-01"]),
            "churn_probability": [0.05, 0.15, 0.20],
            "risk_probability": [0.08, 0.22, np.nan],
            "model_version": ["3-fold0", "3-fold1", "2"],
            "backfill": [True, True, False],
        }
    )
    brief = render_pages(_risk_scores(), _drivers(), ledger, now=FRESH)[f"accounts/{slug('A1')}.html"]
    rows = re.findall(
        r'<tr><td class="nowrap">(.*?)</td><td class="num">(.*?)</td>.*?<td class="small">(.*?)</td>',
        brief.replace(NBSP, " "),
        re.DOTALL,
    )
    assert rows == [
        ("Nov 1, 2026", "82.0%", ""),
        ("Oct 1, 2026", "20.0%*", ""),
        ("Sep 1, 2026", "22.0%", "backfilled (model v3-fold1)"),
        ("Aug 1, 2026", "8.0%", "backfilled (model v3-fold0)"),
    ]
    assert (
        "Hollow dots: backfilled: scored afterwards with a model of the backtest that was trained only on data "
        "before that date."
    ) in brief
    assert "* the chance of churning within 90 days: the scores of that date did not keep the risk." in brief
    # the dots sit at the risk (8 + 104 * (1 - p)), two hollow
    assert re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)" r="3" class="(\w+)"/>', brief) == [
        ("103.7", "hollow"),
        ("89.1", "hollow"),
        ("91.2", "dot"),
        ("26.7", "dot"),
    ]
    assert 'aria-label="risk over time' in brief


def test_trend_reads_the_ledger_live_over_backfill_and_nothing_after_the_scores():
    ledger = pd.DataFrame(
        {
            "account_id": ["A1"] * 5,
            "risk_tier": ["low", "medium", "low", "high", "high"],
            "as_of": pd.to_datetime(["2026-08-01", "2026-09-01", "2026-09-01", "2026-10-01", "2026-12-01"]),
            "scored_at": pd.to_datetime(["2026-11-02", "2026-11-02", "2026-09-01", "2026-10-01", "2026-12-01"]),
            "churn_probability": [0.05, 0.15, 0.10, 0.30, 0.90],
            "backfill": [True, True, False, False, False],
        }
    )
    brief = render_pages(_scores(), _drivers(), ledger, now=FRESH)[f"accounts/{slug('A1')}.html"]
    rows = re.findall(
        r'<tr><td class="nowrap">(.*?)</td><td class="num">(.*?)</td>.*?<td class="small">(.*?)</td>',
        brief.replace(NBSP, " "),
        re.DOTALL,
    )
    assert rows == [
        ("Nov 1, 2026", "41.0%", ""),
        ("Oct 1, 2026", "30.0%", ""),
        ("Sep 1, 2026", "10.0%", ""),
        ("Aug 1, 2026", "5.0%", "backfilled"),
    ]
    assert brief.count('class="hollow"') == 1 and brief.count('class="dot"') == 3


def test_empty_scores_give_an_index_only():
    pages = render_pages(_scores().iloc[:0], _drivers().iloc[:0], None, now=FRESH)
    assert sorted(pages) == ["index.html", "static/book.js", "static/pages.css"]


# --- in a real browser -----------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (390, 1280)
BIG_CSM = "Ann Lee"


def _big_scores(n: int = 130) -> pd.DataFrame:
    """A book of ``n`` accounts for one CSM plus the small fixture: enough rows for three pages of 50."""
    rng = np.random.default_rng(5)
    words = ["Orbit", "Delta", "Harbor", "Lumen", "Cedar", "Prism", "Atlas", "Summit"]
    kinds = ["Labs", "Foods", "Systems", "Works"]
    s = pd.DataFrame(
        {
            "account_id": [f"C{i:03d}" for i in range(n)],
            "name": [f"{words[i % 8]} {kinds[i // 8 % 4]} {i}" for i in range(n)],
            "segment": rng.choice(["SMB", "Mid-Market", "Enterprise"], n),
            "csm_owner": BIG_CSM,
            "churn_probability": rng.uniform(0.01, 0.9, n).round(3),
            "mrr": rng.choice([100.0, 900.0, 4_000.0, 25_000.0], n),
            "days_to_renewal": rng.choice([np.nan, 5.0, 20.0, 45.0, 100.0, 200.0, 400.0], n),
        }
    )
    s["risk_probability"] = (s["churn_probability"] * rng.uniform(0.5, 1.5, n)).clip(0.005, 0.99).round(3)
    s["risk_tier"] = np.where(
        s["risk_probability"] >= 0.5, "high", np.where(s["risk_probability"] >= 0.2, "medium", "low")
    )
    s["as_of"], s["expansion_probability"] = AS_OF, 0.05
    s["arr"] = 12 * s["mrr"]
    s["arr_at_risk"] = s["arr"] * s["risk_probability"]
    s["renewal_date"] = AS_OF + pd.to_timedelta(s["days_to_renewal"], unit="D")
    known = s["renewal_date"].notna()
    _set_basis(s, np.where(known, "renewal", "no_renewal_date"))
    s["churn_probability_30d"] = (s["churn_probability"] / 3).round(3)
    s["churn_probability_180d"] = s["churn_probability"].clip(upper=0.95)
    s["churn_probability_365d"] = s["churn_probability"].clip(upper=0.97)
    s["model_name"], s["model_version"] = "churnml", "3"
    s["risk_probability_change"] = rng.uniform(-0.1, 0.1, n)
    s["what_changed"] = [
        f"risk {c * 100:+.0f} pts since 2026-10-01 (30% -> 40%): open tickets 1 -> 4 (+5)"
        for c in s["risk_probability_change"]
    ]
    s["expansion_signal"] = "5% chance to expand"
    s["how_to_lower"] = np.where(
        s["risk_tier"] != "low",
        "if open tickets returned to 1, risk would fall from 40% "
        "to 30%; if first replies came within a day, risk would fall from 40% to 35%",
        "",
    )
    s["timing"] = "renews soon; annual term; customer for 2 years"
    s["top_driver"], s["top_play"] = "Open tickets: 4; segment median 1", "Support review: walk through the tickets"
    return pd.concat([_risk_scores(), s], ignore_index=True)


BROWSER_NOW = AS_OF + pd.Timedelta(days=60)  # stale (over 31 days) and some renewals passed


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    drift = pd.DataFrame({"feature": ["days_since_last_activity"], "psi": [0.53], "drifted": [True]})
    scores = _big_scores()
    ledger = _ledger().assign(risk_probability=[0.2, 0.41], backfill=[True, False], model_version=["3-fold0", "3"])
    pages = render_pages(scores, _drivers(), ledger, drift=drift, now=BROWSER_NOW)
    out = tmp_path_factory.mktemp("site")
    write_pages(pages, out)
    return out, scores


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("CHURNML_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("page-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\npage screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (make test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture()
def page(chromium):
    """A fresh tab that records script errors and dialogs (an executed name would open one)."""
    tab = chromium.new_page()
    tab.errors, tab.dialogs = [], []
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    yield tab
    assert tab.errors == [] and tab.dialogs == []
    tab.close()


def _fits(tab) -> None:
    width, inner = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page scrolls sideways: {width} px in a {inner} px window"


def _book_ids(tab) -> list[str]:
    return tab.eval_on_selector_all("#book tbody tr[data-account]", "rs => rs.map(r => r.dataset.account)")


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_index_in_chromium(site, shots, page, width):
    out, _ = site
    page.set_viewport_size({"width": width, "height": 900})
    page.goto((out / "index.html").as_uri())
    assert page.is_visible("#stale") and page.is_visible("#drift")
    assert "days since last activity" in page.inner_text("#drift")
    assert page.locator("#books tbody tr").count() == 4
    _fits(page)
    page.screenshot(path=str(shots / f"index-{width}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_book_in_chromium_call_list_filters_search_sort_and_pages(site, shots, page, width):
    out, scores = site
    mine = scores[scores["csm_owner"] == BIG_CSM]
    page.set_viewport_size({"width": width, "height": 900})
    page.goto((out / "csm" / f"{slug(BIG_CSM)}.html").as_uri())
    assert page.is_visible("#stale") and page.is_visible("#calls")
    page.screenshot(path=str(shots / f"book-{width}.png"))
    # the call list: ten accounts, ordered by stake (ARR x risk) per month left, an unknown renewal 12 months away
    # (computed here independently)
    days = (pd.to_datetime(mine["renewal_date"]) - pd.to_datetime(mine["as_of"])).dt.days  # from the as-of date
    months = (days.clip(lower=0) / (365.25 / 12)).fillna(12.0).clip(lower=1)
    stake = mine["arr"] * mine["risk_probability"]
    expect = mine.assign(_k=stake / months, _d=days.fillna(np.inf))
    expect = expect[stake > 0].sort_values(["_k", "_d", "name"], ascending=[False, True, True])
    calls = page.eval_on_selector_all("ol.calls li", "ls => ls.map(l => l.dataset.account)")
    assert calls == expect["account_id"].head(10).tolist()
    # each call: the risk with its basis; how to lower it for the accounts at risk
    lines = page.eval_on_selector_all("ol.calls li .risk-line", "ls => ls.map(l => l.textContent)")
    assert len(lines) == 10 and all(re.fullmatch(r"\d+% risk (before renewal|within 12 months)", x) for x in lines)
    lower = page.eval_on_selector_all("ol.calls li", "ls => ls.map(l => !!l.querySelector('.lower'))")
    want_lower = expect.head(10)
    assert lower == ((want_lower["risk_tier"] != "low") & want_lower["how_to_lower"].astype(bool)).tolist()
    assert page.is_visible("ol.calls li .changed")
    # the first page: 50 rows, most ARR at risk first; every row is one of mine
    assert page.get_attribute("#book", "data-matches") == str(len(mine))
    assert (
        _book_ids(page)
        == mine.assign(_k=stake).sort_values(["_k", "name"], ascending=[False, True])["account_id"].head(50).tolist()
    )
    # the names that look like markup are text
    page.fill("#book-controls input[name=q]", "alert(")
    assert sorted(page.eval_on_selector_all("#book tbody tr a", "as => as.map(a => a.textContent)")) == sorted(
        [EVIL, EVIL2]
    )
    # search narrows the rows
    page.fill("#book-controls input[name=q]", "orbit")
    want = mine[mine["name"].str.lower().str.contains("orbit")]
    assert sorted(_book_ids(page)) == sorted(want["account_id"]) and 0 < len(want) < 50
    assert page.inner_text("#book-count") == f"{len(want)} of {len(mine)} accounts."
    page.fill("#book-controls input[name=q]", "")
    # filters: tier, then segment and renewal window together
    page.select_option("#book-controls select[name=tier]", "high")
    assert page.get_attribute("#book", "data-matches") == str((mine["risk_tier"] == "high").sum())
    assert set(page.eval_on_selector_all("#book tbody .tier", "ts => ts.map(t => t.textContent)")) == {"high"}
    page.select_option("#book-controls select[name=seg]", "Enterprise")
    page.select_option("#book-controls select[name=win]", "90")
    want = mine[(mine["risk_tier"] == "high") & (mine["segment"] == "Enterprise") & days.between(0, 90)]
    assert sorted(_book_ids(page)) == sorted(want["account_id"])
    page.select_option("#book-controls select[name=win]", "past")
    want = mine[(mine["risk_tier"] == "high") & (mine["segment"] == "Enterprise") & (days < 0)]
    assert sorted(_book_ids(page)) == sorted(want["account_id"])
    assert page.locator("#book tbody .flag").count() == len(want)
    assert "tier=high" in page.evaluate("location.hash")  # a link carries the view
    page.click("#book-controls button[type=reset]")
    page.wait_for_function(f"document.getElementById('book').dataset.matches === '{len(mine)}'")
    # sorting: renewal soonest first (unknown renewals last), then pages
    page.select_option("#book-controls select[name=sort]", "r:1")
    by_renewal = mine.assign(_d=days).sort_values(["_d", "name"], na_position="last")["account_id"].tolist()
    assert _book_ids(page) == by_renewal[:50]
    page.click("#next")
    assert _book_ids(page) == by_renewal[50:100]
    assert page.inner_text("#page-info") == "page 2 of 3"
    page.click("#next")
    assert _book_ids(page) == by_renewal[100:]
    if width > 760:  # the column headers sort too (on a phone the table is cards and the select sorts)
        page.click("#book th[data-col=p] button")
        top = mine.sort_values(["risk_probability", "name"], ascending=[False, True])["account_id"].head(50).tolist()
        assert _book_ids(page) == top and page.get_attribute("#book", "data-sorted-by") == "p:-1"
        cells = page.eval_on_selector_all("#book tbody td.c-p", "ts => ts.slice(0, 2).map(t => t.innerText)")
        assert [c.split("\n")[0] for c in cells] == [
            f"{p * 100:.1f}%" for p in mine["risk_probability"].sort_values(ascending=False).head(2)
        ]
    _fits(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / f"book-{width}-full.png"), full_page=True)


@pytest.mark.browser
def test_book_view_from_a_link(site, page):
    out, scores = site
    mine = scores[scores["csm_owner"] == BIG_CSM]
    page.goto((out / "csm" / f"{slug(BIG_CSM)}.html").as_uri() + "#tier=low&sort=n:1")
    want = mine[mine["risk_tier"] == "low"].sort_values("name")["account_id"].head(50).tolist()
    assert _book_ids(page) == want
    assert page.input_value("#book-controls select[name=tier]") == "low"


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_account_brief_in_chromium(site, shots, page, width):
    out, _ = site
    page.set_viewport_size({"width": width, "height": 900})
    page.goto((out / "accounts" / f"{slug('A1')}.html").as_uri())
    assert page.title() == f"{EVIL}: account brief"  # the name, intact, as text
    assert page.inner_text("h1") == EVIL
    assert page.is_visible("#stale") and page.is_visible("svg.spark")
    assert "in 30\u00a0days" in page.text_content(".card.renewal")  # from the as-of date, though the page is late
    assert page.inner_text("#risk .v").split() == ["high", "82.0%"]
    assert "risk: chance of churning before the renewal on" in page.inner_text("#risk")
    for element in ("#curve", "#lower", "#changed", "#backfill-note", "#base"):
        assert page.is_visible(element), element
    assert page.locator("ul.lower li").count() == 3
    assert page.locator("svg.spark circle.hollow").count() == 1
    cols = page.eval_on_selector_all(".two > div", "ds => ds.map(d => Math.round(d.getBoundingClientRect().left))")
    assert (len(set(cols)) == 1) == (width < 760)  # two columns collapse to one on a phone
    _fits(page)
    page.screenshot(path=str(shots / f"account-{width}.png"), full_page=True)


def test_risk_words_name_monthly_terms_and_unknown_renewals():
    assert risk_words([("renewal", 40.0), ("monthly_term", 365.0)]) == (
        "chance of churning before the next renewal (within 12 months for monthly terms)"
    )
    assert risk_words([("renewal", 40.0), ("monthly_term", 365.0), ("no_renewal_date", 365.0)]) == (
        "chance of churning before the next renewal (within 12 months for monthly terms or where no renewal "
        "date is known)"
    )
    assert risk_words([("horizon", 90.0)]) == "chance of churning within 90 days"


def test_a_monthly_term_past_its_date_is_not_flagged_as_a_passed_renewal():
    """Monthly terms renew every month by themselves: a date on record before the as-of date is
    context, not "check whether it renewed"; an annual one is flagged."""
    s = _call_book()
    s["risk_probability"] = 0.3
    _set_basis(
        s,
        ["renewal", "monthly_term", "monthly_term", "monthly_term", "renewal", "no_renewal_date"],
        ["2027-08-28", None, None, None, "2026-11-01", None],
    )
    b5 = s["account_id"] == "B5"
    s.loc[b5, "days_to_renewal"], s.loc[b5, "renewal_date"] = -3.0, AS_OF - pd.Timedelta(days=3)  # annual, passed
    late = FRESH + pd.Timedelta(days=40)
    pages = render_pages(s, _drivers().iloc[:0], None, now=late, settings=PageSettings(call_list_size=10))
    b4 = _plain(pages[f"accounts/{slug('B4')}.html"])  # monthly, its date passed
    b5 = _plain(pages[f"accounts/{slug('B5')}.html"])
    assert "check whether it renewed" not in b4 and '<span class="flag">passed</span>' not in b4
    assert "check whether it renewed" in b5 and '<span class="flag">passed</span>' in b5
    book = _plain(pages[f"csm/{slug('Dee')}.html"])
    assert "monthly term: renews every month" in book  # the call list's timing line for B2, B3 or B4


# --- accessibility (WCAG 2.2 AA) -------------------------------------------------------------------------
def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    ch = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in ch]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two colours (#rgb or #rrggbb)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_ratio_is_wcags():
    assert contrast("#fff", "#000") == pytest.approx(21.0)
    assert contrast("#ffffff", "#b9770e") == pytest.approx(3.68, abs=0.01)  # the old medium badge: fails AA


def test_every_badge_and_coloured_text_has_aa_contrast_in_the_stylesheet():
    """Computed from the colours in pages.css: each badge's text colour on its background, and the coloured
    texts (muted, past, up, down, links) on the page's white and on the cards' grey, at least 4.5:1."""
    from importlib import resources

    css = resources.files("churnml.pages").joinpath("static/pages.css").read_text()
    var = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))

    def colour(value: str) -> str:
        m = re.fullmatch(r"var\(--([\w-]+)\)", value.strip())
        return var[m.group(1)] if m else value.strip()

    def rule(selector: str, prop: str) -> str:
        m = re.search(r"(?m)(?:^|\}\s*)" + re.escape(selector) + r"\s*\{[^}]*?(?<![\w-])" + prop + r":\s*([^;}]+)", css)
        assert m, (selector, prop)
        return colour(m.group(1))

    badges = {
        f".tier-{t}": (rule(".tier", "color"), rule(f".tier-{t}", "background")) for t in ("high", "medium", "low")
    }
    badges[".tier-unknown"] = (rule(".tier", "color"), rule(".tier-unknown", "background"))
    badges[".flag"] = (rule(".flag", "color"), rule(".flag", "background"))
    for name, (fg, bg) in badges.items():
        assert contrast(fg, bg) >= 4.5, (name, fg, bg, round(contrast(fg, bg), 2))
    texts = {".small": rule(".small", "color"), ".past": rule(".past", "color"), ".up": rule(".up", "color")}
    texts |= {".down": rule(".down", "color"), "a": rule("a", "color"), "body": rule("body", "color")}
    for name, fg in texts.items():
        for bg in ("#ffffff", var["bg"]):
            assert contrast(fg, bg) >= 4.5, (name, fg, bg, round(contrast(fg, bg), 2))
    assert contrast(rule("body", "color"), var["warn-bg"]) >= 4.5  # the notices


TARGETS = """() => Array.from(document.querySelectorAll('a[href], button, input, select, summary, [tabindex="0"]'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; })
  .map(e => { const r = e.getBoundingClientRect();
    return {what: e.tagName + ' ' + (e.textContent || e.name || '').trim().slice(0, 30), w: r.width, h: r.height}; })"""


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_tap_targets_are_at_least_24_px_and_a_skip_link_leads_to_the_content(site, page, width):
    out, _ = site
    page.set_viewport_size({"width": width, "height": 900})
    for path in ("index.html", f"csm/{slug(BIG_CSM)}.html", f"accounts/{slug('A1')}.html"):
        page.goto((out / path).as_uri())
        targets = page.evaluate(TARGETS)
        assert len(targets) >= 3, path
        small = [t for t in targets if t["w"] < 24 or t["h"] < 24]
        assert small == [], (path, width, small[:5])
        # the first Tab shows the skip link; following it puts the focus on the page's content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip", path
        box = page.locator("a.skip").bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0 and box["height"] >= 24 and page.is_visible("a.skip")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main", path


def test_monthly_terms_are_rolling_on_every_page():
    """Monthly terms renew every month by themselves: no renewal date (so never a passed one), not counted as
    renewing in the next 90 days, their own count in the headers, filter and roll-up, and their own line in
    the call list's rule."""
    s = _call_book()
    s["risk_probability"] = 0.3
    # B2, B3, B4 on monthly terms (B4's date on record is before the as-of date)
    _set_basis(s, ["renewal", "monthly_term", "monthly_term", "monthly_term", "renewal", "no_renewal_date"])
    s["timing"] = ["renews in 300 days", "monthly term: renews every month", "", "", "renews in 5 days", ""]
    pages = render_pages(s, _drivers().iloc[:0], None, now=FRESH, settings=PageSettings(call_list_size=10))
    book = pages[f"csm/{slug('Dee')}.html"]
    text = _plain(book)
    assert "renewing in the next 90 days · 3 on monthly terms (renew every month)" in text.replace("&middot;", "·")
    assert "1 renewing in the next 90 days" in text  # B5 only (B2, B3 renew within 20 days, monthly)
    assert (
        "An account on a monthly term renews every month by itself: its ARR at risk within 12 months counts "
        "over 12 months." in text
    )
    rows = {r["i"]: r for r in _book_rows(book)}
    for a in ("B2", "B3", "B4"):
        assert (rows[a]["m"], rows[a]["r"], rows[a]["x"], rows[a]["rt"], rows[a]["rn"]) == (
            True,
            None,
            False,
            "monthly term",
            "renews every month",
        ), a
    assert not rows["B1"]["m"] and rows["B1"]["r"] == 300
    assert '<option value="monthly">monthly terms (rolling)</option>' in book
    assert '<td class="nowrap">monthly (rolling)</td><td class="num">3</td>' in book
    assert '<span class="flag">passed</span>' not in book and "(passed)" not in book and "passed 5" not in text
    assert "over its 12-month risk (monthly term)" in text
    for a in ("B2", "B3", "B4"):
        brief = _plain(pages[f"accounts/{slug(a)}.html"])
        card = re.sub("<[^>]+>", " ", brief.split('class="card renewal"')[1].split("</div></div>")[0])
        assert " ".join(card.split()) == "> monthly term renews every month", (a, card)
        assert "Oct 2" not in brief, a
    index = _plain(pages["index.html"])
    assert "on monthly terms (renew every month)" in index and '<th class="num">monthly terms</th>' in index
