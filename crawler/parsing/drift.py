"""Layout drift: which page-data paths the parsers rely on, and which fields fell back on a page.

IMDb's redesigns rename or move the keys of its page data, and parsers break
silently: a field keeps a value from a fallback (ld+json, the DOM) until that
goes too. For each page this records, per field, whether the field's first
source (``SOURCES``: a path in the current layout's merged Title/Name object,
or a CSS marker on legacy pages) was there (``primary``), the field was filled
anyway (``fallback``) or is empty (``missing``). The run adds these up; the
``layout_drift`` monitor compares them with the previous run and with the
fixture pages (``BASELINE``), and names the field and the path that moved.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from crawler.parsing.pages.base import dig

# (layout, kind) → field → first sources, any of which counts ("a.b" in the page data; "css:…" on the DOM).
SOURCES: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("current", "title"): {
        "title": ("titleText.text",),
        "original_title": ("originalTitleText.text",),
        "title_type": ("titleType.id",),
        "year": ("releaseYear.year",),
        "rating": ("ratingsSummary.aggregateRating",),
        "votes": ("ratingsSummary.voteCount",),
        "runtime_minutes": ("runtime.seconds",),
        "genres": ("genres.genres",),
        "certificate": ("certificate.rating",),
        "plot": ("plot.plotText.plainText", "outlines.edges"),
        "release_date": ("releaseDate",),
        "cast": ("cast.edges", "castV2", "principalCast"),
        "directors": ("principalCredits", "principalCreditsV2", "directors"),
        "recommendations": ("moreLikeThisTitles.edges",),
        "countries": ("countriesDetails.countries", "countriesOfOrigin.countries"),
        "languages": ("spokenLanguages.spokenLanguages",),
        "keywords": ("keywords.edges", "storylineKeywords.edges"),
        "companies": ("production.edges",),
        "metascore": ("metacritic.metascore.score",),
        "popularity_rank": ("meterRanking.currentRank",),
    },
    ("current", "person"): {
        "name": ("nameText.text",),
        "birth_date": ("birthDate",),
        "birth_place": ("birthLocation.text",),
        "professions": ("primaryProfessions",),
        "known_for": ("knownForFeatureV2.credits", "knownForV2.edges", "knownFor.edges"),
        "filmography": ("released.edges",),
        "bio": ("bio.text.plainText",),
    },
    ("legacy", "title"): {
        "title": ("css:.title_wrapper h1, h1.header, h1[itemprop=name]",),
        "rating": ("css:[itemprop=ratingValue], .rating-rating",),
        "cast": ("css:table.cast_list",),
        "genres": ("css:[itemprop=genre], a[href*='/genre/']",),
        "recommendations": ("css:[data-tconst].rec_item, [data-tconst].rec_overview",),
    },
    ("legacy", "person"): {
        "name": ("css:h1.header, #name-overview h1",),
        "filmography": ("css:#filmography",),
        "known_for": ("css:#knownfor, #knownfor-carousel",),
    },
}


def has_source(page: Any, source: str) -> bool:
    """Whether ``page`` holds ``source`` (a page-data path, or a CSS marker of its DOM)."""
    if source.startswith("css:"):
        return bool(page.sel.css(source[4:]))
    value = dig(page.d, *source.split("."))
    return value not in (None, "", [], {})


def observe(page: Any, item: Any) -> dict[str, str]:
    """``{field: primary | fallback | missing}`` for the fields whose sources this page's layout has."""
    sources = SOURCES.get((page.layout, page.kind), {})
    found = {}
    for field, paths in sources.items():
        if any(has_source(page, path) for path in paths):
            found[field] = "primary"
        else:
            value = getattr(item, field, None)
            found[field] = "fallback" if value not in (None, "", [], {}) else "missing"
    return found


def tally(observations: list[tuple[str, str, dict[str, str]]]) -> dict[str, Any]:
    """``{"layout/kind": {"pages": n, "fields": {field: {primary, fallback, missing}}}}`` from observed pages."""
    totals: dict[str, Any] = {}
    for layout, kind, fields in observations:
        group = totals.setdefault(f"{layout}/{kind}", {"pages": 0, "fields": {}})
        group["pages"] += 1
        for field, verdict in fields.items():
            counts = group["fields"].setdefault(field, {"primary": 0, "fallback": 0, "missing": 0})
            counts[verdict] += 1
    return totals


@cache
def baseline() -> dict[str, Any]:
    """The tally of the fixture pages: every source the parsers rely on, as the real pages have them."""
    return json.loads(resources.files("crawler.parsing").joinpath("drift_baseline.json").read_text())


def problems(now: dict[str, Any], before: dict[str, Any] | None, max_fallback: float, min_pages: int) -> list[str]:
    """What drifted: fields falling back on more than ``max_fallback`` of the pages, first sources that vanished."""
    found = []
    for group, current in sorted(now.items()):
        pages = current.get("pages", 0)
        if pages < min_pages:
            continue
        layout, kind = group.split("/")
        references: list[dict[str, Any]] = [ref[group] for ref in (before, baseline()) if ref and ref.get(group)]
        for field, counts in sorted(current["fields"].items()):
            source = " | ".join(SOURCES.get((layout, kind), {}).get(field, ()))
            if counts["fallback"] / pages > max_fallback:
                found.append(f"{group} {field} fell back on {counts['fallback']} of {pages} pages ({source} not found)")
                continue
            for ref in references:
                old = ref["fields"].get(field)
                if old and old["primary"] / max(ref["pages"], 1) >= 0.5 and counts["primary"] == 0:
                    before_share = f"{old['primary']}/{ref['pages']}"
                    found.append(f"{group} {field}: {source} vanished (on {before_share} pages before, 0 now)")
                    break
    return found
