"""CSM pages: only a CSM's own accounts, names shown as text, and a real browser rendering."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from churnml.io.artifacts import write_pages
from churnml.pages.render import render_pages, slug

EVIL = "<script>alert(1)</script> Ltd"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _scores():
    rows = [
        ("A1", EVIL, "SMB", "Ann Lee", 0.41, "high", 1200.0, 30.0),
        ("A2", "Smith & Sons", "Enterprise", "Ann Lee", 0.05, "low", 90000.0, 200.0),
        ("A3", 'The "Best" Co', "Mid-Market", "Bob Stone", 0.22, "medium", 30000.0, 10.0),
        ("A4", "Orbit Labs", "SMB", "Cy Park", 0.61, "high", 2400.0, np.nan),
        ("A5", "Nobody's Account", "SMB", None, 0.10, "low", 600.0, 100.0),
    ]
    s = pd.DataFrame(rows, columns=["account_id", "name", "segment", "csm_owner", "churn_probability", "risk_tier",
                                    "mrr", "days_to_renewal"])
    s["as_of"] = pd.Timestamp("2026-11-01")
    s["expansion_probability"] = [0.01, 0.3, 0.05, 0.0, 0.2]
    s["arr"] = 12 * s["mrr"]
    s["arr_at_risk"] = s["arr"] * s["churn_probability"]
    s["renewal_date"] = s["as_of"] + pd.to_timedelta(s["days_to_renewal"], unit="D")
    s["model_name"], s["model_version"] = "churnml", "3"
    s["previous_churn_probability"] = [0.2, np.nan, 0.25, 0.5, 0.1]
    s["churn_probability_change"] = s["churn_probability"] - s["previous_churn_probability"]
    s["what_changed"] = ["churn risk 20% -> 41% since 2026-10-01; tier medium -> high", "first score", "", "", ""]
    s["top_driver"] = ["Active users per seat (30 days): 0.05; segment median 0.30", "", "", "", ""]
    s["expansion_signal"] = ["1% chance to expand"] * 5
    for f in ("usage", "effort", "support", "onboarding", "commercial"):
        s[f"churn_points_{f}"] = [0.2, -0.01, 0.03, 0.1, 0.0]
    return s


def _drivers():
    return pd.DataFrame([
        ("A1", "churn", 1, "raises", "usage", "active_users_per_seat_30d", 0.2,
         "Active users per seat (30 days): 0.05; segment median 0.30", "Adoption workshop: book it"),
        ("A1", "churn", 2, "lowers", "commercial", "tenure_days", -0.01, "Account age: 900 days", ""),
        ("A2", "expansion", 1, "raises", "usage", "peak_active_users_per_seat_30d", 0.1, "Seats in use: 0.98",
         "Expansion conversation: propose seats"),
    ], columns=["account_id", "target", "rank", "direction", "family", "feature", "points", "text", "play"])


def _ledger():
    return pd.DataFrame({"run_id": ["r1", "r2"], "scored_at": pd.to_datetime(["2026-10-01", "2026-11-01"]),
                         "as_of": pd.to_datetime(["2026-10-01", "2026-11-01"]), "account_id": ["A1", "A1"],
                         "model_name": "churnml", "model_version": "3", "churn_probability": [0.2, 0.41],
                         "expansion_probability": [0.01, 0.01], "risk_tier": ["medium", "high"],
                         "arr_at_risk": [2880.0, 5904.0]})


@pytest.fixture()
def pages(tmp_path):
    pages = render_pages(_scores(), _drivers(), _ledger())
    write_pages(pages, tmp_path / "report")
    return tmp_path / "report", pages


def test_each_csm_page_holds_only_that_csms_accounts(pages):
    out, written = pages
    assert sorted(k.split("/")[0] for k in written) == ["accounts"] * 5 + ["csm"] * 4 + ["index.html"]
    owners = {"Ann Lee": {"A1", "A2"}, "Bob Stone": {"A3"}, "Cy Park": {"A4"}, "Unassigned": {"A5"}}
    for csm, mine in owners.items():
        html = (out / "csm" / f"{slug(csm)}.html").read_text()
        linked = set(re.findall(r'href="\.\./accounts/(A\d)-', html))
        assert linked == mine, csm
    index = (out / "index.html").read_text()
    assert all(f"csm/{slug(c)}.html" in index for c in owners)


def test_names_are_escaped_text_never_markup(pages):
    out, _ = pages
    brief = (out / "accounts" / f"{slug('A1')}.html").read_text()
    book = (out / "csm" / f"{slug('Ann Lee')}.html").read_text()
    for html in (brief, book):
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Ltd" in html
        assert "<script>alert(1)" not in html
    assert "Smith &amp; Sons" in book
    assert "+20.0 pts" in brief and "Adoption workshop" in brief and "since 2026-10-01" in brief
    assert "<polyline" in brief  # risk trend from the ledger


def _chromium(args, tmp_path):
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_pages_in_headless_chromium(pages, tmp_path):
    import matplotlib.image as mpimg

    out, _ = pages
    brief = out / "accounts" / f"{slug('A1')}.html"
    book = out / "csm" / f"{slug('Ann Lee')}.html"
    for page, png in ((brief, tmp_path / "brief.png"), (book, tmp_path / "book.png")):
        _chromium([f"--screenshot={png}", page.as_uri()], tmp_path)
        assert png.is_file() and png.stat().st_size > 10_000
        img = mpimg.imread(png)
        assert img.std() > 0.05  # a rendered page, not a blank one
    dom = _chromium(["--dump-dom", brief.as_uri()], tmp_path).stdout
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; Ltd: account brief</title>" in dom  # text, intact
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Ltd</h1>" in dom
    assert "<script>alert(1)</script>" not in dom  # no script element was created from the name
    sorted_dom = _chromium(["--dump-dom", book.as_uri() + "#sort=churn"], tmp_path).stdout
    assert 'data-sorted-by="churn desc"' in sorted_dom
    first, second = re.findall(r'href="\.\./accounts/(A\d)-', sorted_dom)[:2]
    assert (first, second) == ("A1", "A2")  # 41% before 5%
    plain = _chromium(["--dump-dom", book.as_uri() + "#sort=account"], tmp_path).stdout
    assert re.findall(r'href="\.\./accounts/(A\d)-', plain)[:2] == ["A2", "A1"]  # "Smith" before "<script>" desc
