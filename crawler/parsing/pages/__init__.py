"""Page parsers: turn a saved or fetched IMDb page into raw field values.

``parse_page(text, url)`` picks the parser for the page's kind and layout. Page
objects have one method per item field and no Scrapy dependency.
"""

from __future__ import annotations

from crawler.parsing.limits import MAX_PAGE_CHARS, OverLimit, PageError
from crawler.parsing.pages.base import PERSON, TITLE, kind_from_url
from crawler.parsing.pages.current import CurrentPersonPage, CurrentTitlePage, next_data
from crawler.parsing.pages.legacy import LegacyPersonPage, LegacyTitlePage

Page = CurrentTitlePage | CurrentPersonPage | LegacyTitlePage | LegacyPersonPage

__all__ = ["PERSON", "TITLE", "Page", "PageError", "detect", "kind_from_url", "parse_page"]

_LEGACY_MARKERS = (
    "og:type",  # first: in the <head> of nearly every page, so the search stops a few kB in
    "title_wrapper",
    "overview-top",
    "titleDetails",
    "cast_list",
    "name-overview",
    "filmo-head",
)
_HEAD = 200_000  # where the markers are looked for (searched in place: a copy of a page's head costs more)


def _mentions_imdb(text: str) -> bool:
    # The usual spellings first: lower-casing a 200 kB page costs more than the rest of detect().
    return text.find("IMDb", 0, _HEAD) >= 0 or text.find("imdb", 0, _HEAD) >= 0 or "imdb" in text[:_HEAD].lower()


def detect(text: str, url: str | None = None) -> tuple[str, str]:
    """``(kind, layout)`` of an IMDb page; PageError when it is not one."""
    layout, _ = _layout(text)
    kind = kind_from_url(url)
    if kind is None and layout == "current":
        kind = PERSON if '"nmconst"' in text else TITLE
    return kind or _legacy_kind(text), layout


def _layout(text: str) -> tuple[str, int]:
    """The page's layout, and where its page data is named (current layout; -1 for the legacy one)."""
    if len(text) > MAX_PAGE_CHARS:
        raise OverLimit(f"page of {len(text)} characters (limit {MAX_PAGE_CHARS})", reason="page_too_large")
    if not text or text.isspace():
        raise PageError("empty page", reason="empty")
    if "</html>" not in text[-2048:].lower():
        raise PageError("truncated page (no closing </html>)", reason="truncated")
    at = text.find("__NEXT_DATA__")
    if at >= 0:
        return "current", at
    if any(text.find(marker, 0, _HEAD) >= 0 for marker in _LEGACY_MARKERS) and _mentions_imdb(text):
        return "legacy", -1
    raise PageError("not an IMDb title or name page", reason="not_imdb")


def _legacy_kind(text: str) -> str:
    og = text.find("og:type", 0, _HEAD)
    og_window = text[og : min(og + 80, _HEAD)] if og >= 0 else ""
    person = "actor" in og_window or "profile" in og_window or text.find("name-overview", 0, _HEAD) >= 0
    return PERSON if person else TITLE


def parse_page(text: str, url: str | None = None) -> Page:
    """The page object for ``text``; PageError when it is not a parsable IMDb page."""
    layout, data_at = _layout(text)
    kind = kind_from_url(url)
    if layout == "legacy":
        legacy: type[LegacyTitlePage | LegacyPersonPage]
        legacy = LegacyPersonPage if (kind or _legacy_kind(text)) == PERSON else LegacyTitlePage
        return legacy(text, url)
    props = next_data(text, data_at)  # decoded once; without a URL it also tells a person's page from a title's
    current = CurrentPersonPage if (kind or (PERSON if "nmconst" in props else TITLE)) == PERSON else CurrentTitlePage
    return current(text, url, props)
