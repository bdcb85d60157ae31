"""Small named normalisers used by the item loaders.

Each function takes one raw value (text from HTML or a value from the page's
JSON) and returns a clean, typed value, or ``None`` when the input carries no
usable data. They never invent data: an unparsable value becomes ``None``.
"""

from __future__ import annotations

import html
import math
import re
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from price_parser import Price

from crawler.parsing.limits import MAX_DATE_CHARS, MAX_NUMBER_CHARS, check_text

# Control characters other than whitespace (NUL…): never part of a title or a name.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID = re.compile(r"\b(tt|nm|co)(\d{7,10})\b")
_ID_PREFIXES = ("tt", "nm", "co")

SCALE = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
MAX_INT64 = 2**63 - 1  # MongoDB's largest integer: a larger "count" is not a count

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
    return _category(value) if isinstance(value, str) else _category(clean_text(value))


@lru_cache(maxsize=256)  # a page has a few categories and hundreds of credits
def _category(value: str | None) -> str | None:
    text = clean_text(value)
    if not text:
        return None
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return CREDIT_CATEGORY_ALIASES.get(key, key) or None


def clean_text(value: Any) -> str | None:
    """Unescape HTML entities, drop control characters, fold whitespace; None for empty text or non-text.

    Numbers become their text (a title can be ``1917``); objects, lists and
    booleans where text is expected are page data of the wrong shape: None.
    """
    if type(value) is str:
        text = html.unescape(value) if "&" in value else value
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    else:
        text = html.unescape(str(value))
    if "\xa0" in text:
        text = text.replace("\xa0", " ")
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text or None  # already clean, as most page text is: no control character, no other space
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    text = " ".join(text.split())  # str.split's whitespace is the regular expressions' \s: runs folded, ends cut
    return text or None


def imdb_id(value: Any) -> str | None:
    """The canonical ``tt…``/``nm…``/``co…`` id in a URL or text, else None."""
    if value is None:
        return None
    if type(value) is str:  # the usual shapes first: what the search below would find, found faster
        if value.startswith(("/title/tt", "/name/nm")):  # a page's link: /title/tt0133093/?ref_=…
            start = 7 if value[1] == "t" else 6
            end = value.find("/", start)
            candidate = value[start:end] if end > 0 else value[start:]
            if 9 <= len(candidate) <= 12 and candidate[2:].isdecimal():
                return candidate
        elif 9 <= len(value) <= 12 and value[:2] in _ID_PREFIXES and value[2:].isdecimal():
            return value  # already an id
    match = _ID.search(str(value))
    return match.group(0) if match else None


def to_minutes(value: Any) -> int | None:
    """Runtime in minutes from ``"1h 44min"``, ``"104 min"``, ``PT104M``, seconds dicts."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return to_count(value)
    if isinstance(value, dict):
        seconds = to_count(value.get("seconds"))
        return round(seconds / 60) if seconds is not None else None
    if not isinstance(value, str):
        return None
    text = check_text(value, MAX_NUMBER_CHARS, "runtime").strip()
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
    elif isinstance(value, str):
        match = re.search(r"\d+(?:[.,]\d+)?", check_text(value, MAX_NUMBER_CHARS, "rating"))
        if not match:
            return None
        number = float(match.group(0).replace(",", "."))
    else:
        return None
    return round(number, 1) if math.isfinite(number) and 0 < number <= 10 else None


def to_int(value: Any) -> int | None:
    """An exact integer from ``"144,553"``, ``"1.234.567"``, ``"1 956 171"``; or scaled ``"1.9M"``.

    Scaled counts (``1.9M``) are approximations: callers should prefer an exact
    count when the page has one and use this only as a fallback.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -MAX_INT64 <= value <= MAX_INT64 else None
    if isinstance(value, float):
        return to_int(int(value)) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = clean_text(check_text(value, MAX_NUMBER_CHARS, "number"))
    if not text:
        return None
    scaled = re.search(r"(\d+(?:[.,]\d+)?)\s*([KMB])\b", text, re.I)
    if scaled:
        number = Decimal(scaled.group(1).replace(",", "."))
        return to_int(int(number * SCALE[scaled.group(2).lower()]))
    match = re.search(r"\d[\d,.\s\u202f]*", text)
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group(0))
    return to_int(int(digits)) if digits else None


def parse_date(value: Any) -> dict[str, Any] | None:
    """``{"date": ISO (partial allowed), "country": str|None}`` from many date shapes.

    Accepts ``{"year", "month", "day"}`` dicts, ``"1956-3-7"``, ``"25 August 1995 (USA)"``,
    ``"November 11, 1974"``, ``"1999"``; falls back to dateparser for the rest.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        parts = value.get("dateComponents")
        parts = parts if isinstance(parts, dict) else value
        return _iso(parts.get("year"), parts.get("month"), parts.get("day"), value.get("country"))
    if not isinstance(value, str):
        return None
    text = clean_text(check_text(value, MAX_DATE_CHARS, "date"))
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
    year, month, day = (_part(v) for v in (year, month, day))
    if not year or not 1 <= year <= 9999 or (month and not 1 <= month <= 12):
        return None
    try:
        if month and day:
            text = date(year, month, day).isoformat()
        elif month:
            text = f"{year:04d}-{month:02d}"
        else:
            text = f"{year:04d}"
    except ValueError:
        return None
    return {"date": text, "country": clean_text(country) if isinstance(country, str) else None}


def to_count(value: Any) -> int | None:
    """A non-negative whole number from page data (an int, a finite float, digits), else None."""
    number = to_int(value)
    return number if number is not None and number >= 0 else None


def _part(value: Any) -> int | None:
    """A date component as an int (``"03"`` → 3), None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and value.strip().isdigit() and len(value) <= 4:
        return int(value)
    return None


def parse_money(value: Any) -> dict[str, Any] | None:
    """``{"amount": int, "currency": ISO, "estimated": bool}`` from text or ``{amount, currency}``.

    ``"$7,000,000 (estimated)"`` → USD 7000000 estimated; ``"JPY 2,400,000,000"`` → JPY.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        amount = to_count(value.get("amount"))
        if amount is None:
            return None
        currency = clean_text(value.get("currency"))
        return {"amount": amount, "currency": currency, "estimated": value.get("estimated") is True}
    if not isinstance(value, str):
        return None
    text = clean_text(check_text(value, MAX_NUMBER_CHARS, "amount"))
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
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, None) if 1870 <= value <= 2100 else (None, None)
    text = clean_text(check_text(value, MAX_DATE_CHARS, "year") if isinstance(value, str) else None) or ""
    years = re.findall(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", text)
    if not years:
        return None, None
    return int(years[0]), int(years[1]) if len(years) > 1 else None
