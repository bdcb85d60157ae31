"""Bounds on what a page may contain, checked before any costly work.

A hostile or broken page must never stall the crawl or escape as an
exception: a 2 MB "date" takes dateparser minutes, an array nested 10 000
deep overflows recursion, a million-entry list takes the writer's memory.
Over a bound, parsing stops with ``OverLimit``, a ``PageError`` whose
``reason`` names the bound (``page_too_large``, ``too_deep``,
``value_too_long``, ``list_too_long``): the page is counted under that reason.
"""

from __future__ import annotations

from typing import Any

MAX_PAGE_CHARS = 16_000_000  # IMDb's largest pages are ~2 MB
# Real values are far shorter (longest on the fixture pages: a date 26, a runtime list 133); a
# 100-character date costs dateparser ~50 ms, a 2 MB one minutes.
MAX_DATE_CHARS = 100
MAX_NUMBER_CHARS = 1_000  # "1,956,171", "163 min | Germany: 189 min (director's cut) | …"
MAX_TEXT_CHARS = 2_000  # sentences parsed with regular expressions ("Won 4 Oscars. Another 33 wins…")
MAX_LIST_ITEMS = 20_000  # a field's entries: the longest filmographies run to a few thousand
MAX_DEPTH = 64  # nesting our own code follows in page data (the JSON decoders stop near 1000)


class PageError(ValueError):
    """The text is not a parsable IMDb title or person page; ``reason`` names why (a stats key)."""

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


class OverLimit(PageError):
    """A page over one of the bounds above."""


def check_text(text: str, limit: int, what: str) -> str:
    """``text`` when it is at most ``limit`` characters; OverLimit otherwise."""
    if len(text) > limit:
        raise OverLimit(f"{what} of {len(text)} characters (limit {limit})", reason="value_too_long")
    return text


def check_list(values: list[Any], what: str) -> list[Any]:
    if len(values) > MAX_LIST_ITEMS:
        raise OverLimit(f"{what} with {len(values)} entries (limit {MAX_LIST_ITEMS})", reason="list_too_long")
    return values
