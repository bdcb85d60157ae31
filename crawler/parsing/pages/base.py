"""Shared pieces of the page parsers: errors, JSON blocks, small getters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

TITLE = "title"
PERSON = "person"


def dig(obj: Any, *path: str | int) -> Any:
    """``obj[p0][p1]…`` with None for any missing step (dicts and lists alike)."""
    for step in path:
        if obj is None:
            return None
        if isinstance(step, int):
            obj = obj[step] if isinstance(obj, list) and -len(obj) <= step < len(obj) else None
        else:
            obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def text(value: Any) -> str | int | float | None:
    """A value that can be text, else None: a fallback chain (``a or b``) must not stop at an object."""
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a list of page data; [] when it is not a list (page data can say anything)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def edges(connection: Any) -> list[dict[str, Any]]:
    """The ``node`` of each edge of a GraphQL connection (``{"edges": [{"node": …}]}``)."""
    return [node for e in dicts(dig(connection, "edges")) if isinstance(node := e.get("node"), dict)]


def as_list(value: Any) -> list[Any]:
    """A list as it is, one value as a one-item list, nothing as []."""
    if isinstance(value, list):
        return value
    return [] if value is None or value == "" else [value]


def script_text(html: str, marker: str, start: int = 0) -> tuple[str | None, int]:
    """Text of the first ``<script …marker…>`` after ``start`` and where it ends.

    A plain string scan: the JSON blocks are the bulk of a current page, and
    finding them does not need the whole DOM.
    """
    at = html.find(marker, start)
    if at < 0:
        return None, -1
    open_end = html.find(">", at)
    close = html.find("</script>", open_end)
    if open_end < 0 or close < 0:
        return None, -1
    return html[open_end + 1 : close], close


def ld_json_blocks(html: str) -> Iterator[dict[str, Any]]:
    """Every parsable ``application/ld+json`` object on the page, in page order, read as they are asked for."""
    pos = 0
    while True:
        text, pos = script_text(html, 'type="application/ld+json"', pos)
        if text is None:
            return
        try:
            data = orjson.loads(text)
        except ValueError:
            continue
        yield from (d for d in (data if isinstance(data, list) else [data]) if isinstance(d, dict))


def ld_main(html: str) -> dict[str, Any]:
    """The first ld+json object that describes the page's subject (Movie, TVSeries, Person…)."""
    for block in ld_json_blocks(html):
        if block.get("@type") not in (None, "Article", "WebPage", "BreadcrumbList"):
            return block
    return {}


def ld_people(value: Any) -> list[dict[str, Any]]:
    """``[{id, name}]`` from ld+json ``director``/``actor``/``creator`` (object or list)."""
    found = []
    for person in dicts(as_list(value)):
        if "/name/" in str(person.get("url", "")):
            found.append({"id": person.get("url"), "name": person.get("name")})
    return found


_KIND_IN_URL = re.compile(r"/(title|name)/(tt|nm)\d+")


def kind_from_url(url: str | None) -> str | None:
    """``title``/``person`` from a page URL, else None."""
    match = _KIND_IN_URL.search(url or "")
    if not match:
        return None
    return TITLE if match.group(1) == "title" else PERSON
