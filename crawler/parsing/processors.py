"""Small named normalisers used by the item loaders.

Each function takes one raw value (text from HTML or a value from the page's
JSON) and returns a clean, typed value, or ``None`` when the input carries no
usable data. They never invent data: an unparsable value becomes ``None``.
"""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal
from typing import Any

from price_parser import Price

_WS = re.compile(r"\s+")
_ID = re.compile(r"\b(tt|nm|co)(\d{7,10})\b")

SCALE = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}

# Currency symbols used on IMDb pages, mapped to ISO 4217 codes.
CURRENCY_SYMBOLS = {
    "$": "USD",
    "US$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "CA$": "CAD",
    "A$": "AUD",
    "R$": "BRL",
    "DEM": "DEM",
}

MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan", "enero", "január"),
            ("february", "feb", "febrero", "február"),
            ("march", "mar", "marzo", "március"),
            ("april", "apr", "abril", "április"),
            ("may", "mayo", "május"),
            ("june", "jun", "junio", "június"),
            ("july", "jul", "julio", "július"),
            ("august", "aug", "agosto", "augusztus"),
            ("september", "sep", "sept", "septiembre", "szeptember"),
            ("october", "oct", "octubre", "október"),
            ("november", "nov", "noviembre", "november"),
            ("december", "dec", "diciembre", "december"),
        ],
        start=1,
    )
    for name in names
}


# Legacy pages abbreviate some countries; the current site spells them out.
COUNTRY_NAMES = {
    "USA": "United States",
    "US": "United States",
    "UK": "United Kingdom",
    "GB": "United Kingdom",
    "JP": "Japan",
    "IN": "India",
    "AU": "Australia",
}


def country_name(value: Any) -> str | None:
    """One spelling per country (``USA`` and ``United States`` are the same country)."""
    text = clean_text(value)
    return COUNTRY_NAMES.get(text, text) if text else None


# Filmography headings that changed wording over the years, by their id.
CREDIT_CATEGORY_ALIASES = {"miscellaneous_crew": "miscellaneous"}


def credit_category(value: Any) -> str | None:
    """One id per credit category, whatever the layout: ``Archive Footage``,
    ``archive footage`` and ``archive_footage`` are all ``archive_footage``
    (the spelling of IMDb's own datasets)."""
    text = clean_text(value)
    if not text:
        return None
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return CREDIT_CATEGORY_ALIASES.get(key, key) or None


def clean_text(value: Any) -> str | None:
    """Unescape HTML entities, fold whitespace, drop empty strings."""
    if value is None:
        return None
    text = html.unescape(str(value)).replace("\xa0", " ")
    text = _WS.sub(" ", text).strip()
    return text or None


def imdb_id(value: Any) -> str | None:
    """The canonical ``tt…``/``nm…``/``co…`` id in a URL or text, else None."""
    if value is None:
        return None
    match = _ID.search(str(value))
    return match.group(0) if match else None


def to_minutes(value: Any) -> int | None:
    """Runtime in minutes from ``"1h 44min"``, ``"104 min"``, ``PT104M``, seconds dicts."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        seconds = value.get("seconds")
        return round(seconds / 60) if isinstance(seconds, (int, float)) else None
    text = str(value).strip()
    iso = re.fullmatch(r"P?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", text, re.I)
    if iso and any(iso.groups()):
        hours, minutes, seconds = (int(g or 0) for g in iso.groups())
        return hours * 60 + minutes + round(seconds / 60)
    hours_text = re.search(r"(\d+)\s*h", text, re.I)
    minutes_text = re.search(r"(\d+)\s*m", text, re.I)
    if hours_text or minutes_text:
        total_hours = int(hours_text.group(1)) if hours_text else 0
        return total_hours * 60 + (int(minutes_text.group(1)) if minutes_text else 0)
    bare = re.fullmatch(r"(\d+)", text)
    return int(bare.group(1)) if bare else None


def to_rating(value: Any) -> float | None:
    """A 0–10 rating from ``7.2``, ``"7,2"``, ``"7.2/10"``; None when absent or out of range."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.search(r"\d+(?:[.,]\d+)?", str(value))
        if not match:
            return None
        number = float(match.group(0).replace(",", "."))
    return round(number, 1) if 0 < number <= 10 else None


def to_int(value: Any) -> int | None:
    """An exact integer from ``"144,553"``, ``"1.234.567"``, ``"1 956 171"``; or scaled ``"1.9M"``.

    Scaled counts (``1.9M``) are approximations: callers should prefer an exact
    count when the page has one and use this only as a fallback.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = clean_text(value)
    if not text:
        return None
    scaled = re.search(r"(\d+(?:[.,]\d+)?)\s*([KMB])\b", text, re.I)
    if scaled:
        number = Decimal(scaled.group(1).replace(",", "."))
        return int(number * SCALE[scaled.group(2).lower()])
    match = re.search(r"\d[\d,.\s\u202f]*", text)
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group(0))
    return int(digits) if digits else None


def parse_date(value: Any) -> dict[str, Any] | None:
    """``{"date": ISO (partial allowed), "country": str|None}`` from many date shapes.

    Accepts ``{"year", "month", "day"}`` dicts, ``"1956-3-7"``, ``"25 August 1995 (USA)"``,
    ``"November 11, 1974"``, ``"1999"``; falls back to dateparser for the rest.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        parts = value.get("dateComponents") or value
        return _iso(parts.get("year"), parts.get("month"), parts.get("day"), value.get("country"))
    text = clean_text(value)
    if not text:
        return None
    country = None
    paren = re.search(r"\(([^)]*)\)\s*$", text)
    if paren:
        country = clean_text(paren.group(1))
        text = text[: paren.start()].strip()
    numeric = re.fullmatch(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", text)
    if numeric:
        year_s, month_s, day_s = numeric.groups()
        return _iso(int(year_s), month_s and int(month_s), day_s and int(day_s), country)
    words = re.findall(r"\d+|[^\W\d_]+", text.lower())
    year = next((int(w) for w in words if w.isdigit() and len(w) == 4), None)
    month = next((MONTHS[w] for w in words if w in MONTHS), None)
    day = next((int(w) for w in words if w.isdigit() and len(w) <= 2), None)
    if year and (month or not day):
        return _iso(year, month, day if month else None, country)
    import dateparser  # slow to import; only for shapes the fast path does not know

    parsed = dateparser.parse(text, settings={"PREFER_DAY_OF_MONTH": "first"})
    return _iso(parsed.year, parsed.month, parsed.day, country) if parsed else None


def _iso(year: Any, month: Any, day: Any, country: Any = None) -> dict[str, Any] | None:
    if not year:
        return None
    try:
        if month and day:
            text = date(int(year), int(month), int(day)).isoformat()
        elif month:
            text = f"{int(year):04d}-{int(month):02d}"
        else:
            text = f"{int(year):04d}"
    except ValueError:
        return None
    return {"date": text, "country": clean_text(country) if isinstance(country, str) else None}


def parse_money(value: Any) -> dict[str, Any] | None:
    """``{"amount": int, "currency": ISO, "estimated": bool}`` from text or ``{amount, currency}``.

    ``"$7,000,000 (estimated)"`` → USD 7000000 estimated; ``"JPY 2,400,000,000"`` → JPY.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        amount = value.get("amount")
        if amount is None:
            return None
        return {
            "amount": int(amount),
            "currency": value.get("currency") or None,
            "estimated": bool(value.get("estimated", False)),
        }
    text = clean_text(value)
    if not text:
        return None
    estimated = "estimated" in text.lower()
    text = re.sub(r"\(.*?\)", " ", text).strip()
    code = re.match(r"([A-Z]{3})\s*(?=\d)", text)
    price = Price.fromstring(text, decimal_separator=".")
    if price.amount is None:
        return None
    if code:
        currency = code.group(1)
    else:
        symbol = (price.currency or "").strip()
        currency = CURRENCY_SYMBOLS.get(symbol, symbol if re.fullmatch(r"[A-Z]{3}", symbol) else None)
    return {"amount": int(price.amount), "currency": currency, "estimated": estimated}


def parse_year_range(value: Any) -> tuple[int | None, int | None]:
    """``(year, end_year)`` from ``"2011– "``, ``"(1999–2013)"``, ``"2004"``."""
    text = clean_text(value) or ""
    years = re.findall(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", text)
    if not years:
        return None, None
    return int(years[0]), int(years[1]) if len(years) > 1 else None
