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
    "title_wrapper",
    "overview-top",
    "titleDetails",
    "cast_list",
    "name-overview",
    "filmo-head",
    "og:type",
)


def _mentions_imdb(text: str) -> bool:
    # The usual spellings first: lower-casing a 200 kB page costs more than the rest of detect().
    return "IMDb" in text or "imdb" in text or "imdb" in text.lower()


def detect(text: str, url: str | None = None) -> tuple[str, str]:
    """``(kind, layout)`` of an IMDb page; PageError when it is not one."""
    layout, _ = _layout(text)
    kind = kind_from_url(url)
    if kind is None and layout == "current":
        kind = PERSON if '"nmconst"' in text else TITLE
    return kind or _legacy_kind(text[:200_000]), layout


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
    head = text[:200_000]
    if any(marker in head for marker in _LEGACY_MARKERS) and _mentions_imdb(head):
        return "legacy", -1
    raise PageError("not an IMDb title or name page", reason="not_imdb")


def _legacy_kind(head: str) -> str:
    og = head.find("og:type")
    og_window = head[og : og + 80] if og >= 0 else ""
    return PERSON if ("actor" in og_window or "profile" in og_window or "name-overview" in head) else TITLE


def parse_page(text: str, url: str | None = None) -> Page:
    """The page object for ``text``; PageError when it is not a parsable IMDb page."""
    layout, data_at = _layout(text)
    kind = kind_from_url(url)
    if layout == "legacy":
        legacy: type[LegacyTitlePage | LegacyPersonPage]
        legacy = LegacyPersonPage if (kind or _legacy_kind(text[:200_000])) == PERSON else LegacyTitlePage
        return legacy(text, url)
    props = next_data(text, data_at)  # decoded once; without a URL it also tells a person's page from a title's
    current = CurrentPersonPage if (kind or (PERSON if "nmconst" in props else TITLE)) == PERSON else CurrentTitlePage
    return current(text, url, props)
