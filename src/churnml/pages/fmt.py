"""How the pages say numbers, money, dates and day counts, in the configured locale and currency.

Formatting uses Babel (CLDR data): ``Formats("EUR", "de_DE").money(1234567.4)`` is
``"1.234.567 €"``, ``Formats("USD", "en_US").money(1234567.4)`` is ``"$1,234,567"``.
Every figure is rounded first and a rounded zero is said without a sign, so a page never
shows "-0.0 pts" or "-$0". A missing value is said as ``""`` (the template decides what to
show instead). Spaces inside a figure are non-breaking: a figure never wraps.
"""

from __future__ import annotations

import math
import re

import pandas as pd
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import UnknownCurrencyError, format_currency, format_decimal, format_percent, validate_currency

from churnml.errors import ChurnmlError

NBSP = "\u00a0"
MINUS = "\u2212"  # the typographic minus sign


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or bool(pd.isna(v))


def _with_decimals(pattern: str, digits: int) -> str:
    """A CLDR number pattern with its fraction part replaced by ``digits`` zeros
    (``"#,##0.00 ¤"`` -> ``"#,##0 ¤"``)."""
    return re.sub(
        r"[#0,]+(?:\.[0#]+)?", lambda m: m.group(0).split(".")[0] + ("." + "0" * digits if digits else ""), pattern
    )


class Formats:
    """Number, money and date formatting for one locale and currency (see the module docstring)."""

    def __init__(self, currency: str = "USD", locale: str = "en_US"):
        try:
            self.locale = Locale.parse(locale)
        except (UnknownLocaleError, ValueError, TypeError) as e:
            raise ChurnmlError(f"unknown locale {locale!r} for the pages: use a name like en_US, de_DE or fr_FR") from e
        try:
            validate_currency(currency)
        except UnknownCurrencyError as e:
            raise ChurnmlError(
                f"unknown currency code {currency!r} for the pages: use an ISO 4217 code like USD, EUR or GBP"
            ) from e
        self.currency = currency
        self._money = _with_decimals(self.locale.currency_formats["standard"].pattern, 0)
        self._pct = {d: _with_decimals(self.locale.percent_formats[None].pattern, d) for d in (0, 1)}

    @staticmethod
    def _nb(text: str) -> str:
        return text.replace(" ", NBSP).replace("\u202f", NBSP)

    @staticmethod
    def _signed(text: str) -> str:
        return text.replace("-", MINUS)

    def money(self, v) -> str:
        """Whole currency units with the currency sign and thousands separators ("$12,340")."""
        if _missing(v):
            return ""
        v = round(float(v)) or 0  # or 0: no negative zero
        return self._signed(
            self._nb(format_currency(v, self.currency, format=self._money, locale=self.locale, currency_digits=False))
        )

    def count(self, v) -> str:
        """A whole number with thousands separators ("3,000")."""
        if _missing(v):
            return ""
        return self._signed(self._nb(format_decimal(round(float(v)) or 0, format="#,##0", locale=self.locale)))

    def number(self, v, digits: int = 2) -> str:
        """A plain number with ``digits`` decimals ("0.53", "0,53")."""
        if _missing(v):
            return ""
        r = round(float(v), digits) or 0.0
        return self._signed(
            self._nb(format_decimal(r, format="#,##0." + "0" * digits if digits else "#,##0", locale=self.locale))
        )

    def pct(self, v, digits: int = 0) -> str:
        """A probability (0..1) as a percentage ("41%", "0.4%"); a positive value that rounds to zero
        is said as "<0.1%" (or "<1%"): a small risk is not no risk."""
        if _missing(v):
            return ""
        v = float(v)
        r = round(v * 100, digits) or 0.0
        if r == 0 and v > 0:
            return "<" + self._nb(format_percent(10**-digits / 100, format=self._pct[digits], locale=self.locale))
        return self._nb(format_percent(r / 100, format=self._pct[digits], locale=self.locale))

    def pts(self, v) -> str:
        """Probability points with a sign ("+20.0 pts", "−3.1 pts"); a change that rounds to zero is "0.0 pts"."""
        if _missing(v):
            return ""
        r = round(float(v) * 100, 1)
        sign = "+" if r > 0 else MINUS if r < 0 else ""
        return sign + format_decimal(abs(r), format="#,##0.0", locale=self.locale) + NBSP + "pts"

    def date(self, v) -> str:
        """A date in the locale's medium form ("Nov 1, 2026", "01.11.2026")."""
        if _missing(v):
            return ""
        return self._nb(format_date(pd.Timestamp(v).date(), format="medium", locale=self.locale))

    def in_days(self, days) -> str:
        """A day count from today in words: "today", "tomorrow", "in 23 days", "yesterday", "12 days ago"."""
        if _missing(days):
            return ""
        d = int(days)
        if d == 0:
            return "today"
        if d == 1:
            return "tomorrow"
        if d == -1:
            return "yesterday"
        return f"in {self.count(d)}{NBSP}days" if d > 0 else f"{self.count(-d)}{NBSP}days ago"
