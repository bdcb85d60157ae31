"""Parsers for the current (Next.js) IMDb layout.

The page data lives in ``__NEXT_DATA__`` in one of three shapes, all merged
into one GraphQL-like ``Title``/``Name`` object:

* ``aboveTheFoldData`` + ``mainColumnData`` with ``cast``/``principalCredits``;
* the same with ``castV2``/``principalCreditsV2``/``crewV2`` (2024–);
* ``urqlState`` (and ``fetchCacheItems``): cached GraphQL answers (2022).

``application/ld+json`` and ``data-testid`` markup fill fields the JSON lacks.
Methods return raw values; the item loaders clean and type them.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

import msgspec
import orjson
from parsel import Selector

from crawler.parsing.limits import MAX_DEPTH, PageError
from crawler.parsing.pages.base import (
    PERSON,
    TITLE,
    as_list,
    dicts,
    dig,
    edges,
    ld_main,
    ld_people,
    script_text,
    text,
)
from crawler.parsing.pages.credits import from_credit

LAYOUT = "current"
_TAGS = re.compile(r"<[^>]+>")


class _PageProps(msgspec.Struct):
    """The blocks of ``props.pageProps`` the parsers read.

    Decoding against this shape builds Python objects for these blocks only: the
    rest of the page data (``translationContext``, ``requestContext``… up to 80 %
    of it) is validated as JSON and skipped.
    """

    aboveTheFoldData: Any = None
    aboveTheFold: Any = None
    mainColumnData: Any = None
    urqlState: Any = None
    tconst: Any = None
    nmconst: Any = None


class _Props(msgspec.Struct):
    pageProps: _PageProps | None = None


class _NextData(msgspec.Struct):
    props: _Props | None = None


_NEXT_DATA = msgspec.json.Decoder(_NextData)
_ENCODE = msgspec.json.Encoder().encode  # what was decoded encodes again: same depth, same values
_PROPS = tuple(_PageProps.__struct_fields__)


def next_data(html: str, named_at: int = 0) -> dict[str, Any]:
    """The blocks of ``props.pageProps`` in ``__NEXT_DATA__`` (see ``_PageProps``); PageError when missing or broken.

    ``named_at``: where the page first names ``__NEXT_DATA__``, when the caller already knows (no second scan).
    """
    text, _ = script_text(html, 'id="__NEXT_DATA__"', max(0, named_at - 4))
    if text is None:
        raise PageError("no __NEXT_DATA__ script", reason="no_page_data")
    try:
        data = _NEXT_DATA.decode(text)
    except (msgspec.DecodeError, RecursionError) as exc:  # not JSON, JSON of another shape, or nested too deep
        raise _unreadable(text, exc) from None
    page_props = data.props.pageProps if data.props is not None else None
    if page_props is None:
        raise PageError("__NEXT_DATA__ has no pageProps", reason="bad_page_data")
    return {name: value for name in _PROPS if (value := getattr(page_props, name)) is not None}


def _unreadable(text: str, exc: BaseException) -> PageError:
    """Why page data that did not decode is unreadable: ``too_deep`` when it nests beyond any JSON
    decoder's limit (the shape check above may stop first), else ``bad_page_data``."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as plain:
        if "depth limit" in str(plain):
            return PageError(f"unreadable __NEXT_DATA__: {plain}", reason="too_deep")
    if isinstance(exc, RecursionError):
        return PageError("unreadable __NEXT_DATA__: nested too deep", reason="too_deep")
    return PageError(f"unreadable __NEXT_DATA__: {exc}", reason="bad_page_data")


def merge_entity(props: dict[str, Any], typename: str) -> dict[str, Any]:
    """One dict of every field the page knows about its Title or Name.

    Later blocks fill or replace null fields of earlier ones: the main column
    carries the full cast where the fold has only the principal credits.
    """
    parts: list[Any] = []
    for key in ("aboveTheFoldData", "aboveTheFold", "mainColumnData"):
        parts.append(props.get(key))
    urql = props.get("urqlState")
    for cached in urql.values() if isinstance(urql, dict) else []:
        data = dig(cached, "data")
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
        parts.append(dig(data, typename.lower()))
    merged: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, dict):
            _merge_into(merged, part, MAX_DEPTH)
    return merged


def _merge_into(into: dict[str, Any], new: dict[str, Any], depth: int) -> None:
    """Deep merge: dicts merge key by key, the fuller list wins, nulls never overwrite.

    Below ``depth`` levels, values are taken whole instead of merged: page data
    nested deeper than any real page is not followed.
    """
    for key, value in new.items():
        old = into.get(key)
        if value is None:
            continue
        if old is None:
            into[key] = value
        elif isinstance(old, dict) and isinstance(value, dict) and depth > 0:
            merged = dict(old)
            _merge_into(merged, value, depth - 1)
            into[key] = merged
        elif isinstance(old, list) and isinstance(value, list) and _longer(value, old):
            into[key] = value


def _longer(new: list[Any], old: list[Any]) -> bool:
    """More items, or as many items with more in them (the main column's full cast): longer as JSON."""
    if len(new) != len(old):
        return len(new) > len(old)
    return len(_ENCODE(new)) > len(_ENCODE(old))


def _credit_person(credit: dict[str, Any]) -> dict[str, Any] | None:
    name = credit.get("name")
    person_id = dig(name, "id")
    if not isinstance(person_id, str):
        return None
    return {"id": person_id, "name": dig(name, "nameText", "text")}


class CurrentPage:
    """Common access to the JSON blocks of a current-layout page."""

    layout = LAYOUT
    kind = ""

    def __init__(self, html: str, url: str | None = None, props: dict[str, Any] | None = None) -> None:
        self.html = html
        self.url = url
        self.props = next_data(html) if props is None else props

    @cached_property
    def ld(self) -> dict[str, Any]:
        return ld_main(self.html)

    @cached_property
    def sel(self) -> Selector:
        """The DOM, parsed only when a markup fallback is needed."""
        return Selector(text=self.html)


class CurrentTitlePage(CurrentPage):
    """A ``/title/tt…/`` page of the current layout."""

    kind = TITLE

    def __init__(self, html: str, url: str | None = None, props: dict[str, Any] | None = None) -> None:
        super().__init__(html, url, props)
        self.d = merge_entity(self.props, "Title")
        if not self.d and not self.props.get("tconst"):
            raise PageError("current-layout page without title data", reason="bad_page_data")

    def imdb_id(self) -> Any:
        return text(self.d.get("id")) or text(self.props.get("tconst")) or text(self.ld.get("url"))

    def title(self) -> Any:
        return (
            text(dig(self.d, "titleText", "text"))
            or text(self.ld.get("name"))
            or self.sel.css(
                '[data-testid="hero__pageTitle"] ::text, [data-testid="hero-title-block__title"]::text'
            ).get()
        )

    def original_title(self) -> Any:
        return dig(self.d, "originalTitleText", "text")

    def title_type(self) -> Any:
        return text(dig(self.d, "titleType", "id")) or text(self.ld.get("@type"))

    def year(self) -> Any:
        return dig(self.d, "releaseYear", "year")

    def end_year(self) -> Any:
        return dig(self.d, "releaseYear", "endYear")

    def rating(self) -> Any:
        summary = self.d.get("ratingsSummary")
        if isinstance(summary, dict):
            return summary.get("aggregateRating")
        return dig(self.ld, "aggregateRating", "ratingValue")

    def votes(self) -> Any:
        summary = self.d.get("ratingsSummary")
        if isinstance(summary, dict):
            return summary.get("voteCount") if summary.get("aggregateRating") is not None else None
        return dig(self.ld, "aggregateRating", "ratingCount")

    def metascore(self) -> Any:
        return dig(self.d, "metacritic", "metascore", "score")

    def popularity_rank(self) -> Any:
        return dig(self.d, "meterRanking", "currentRank")

    def top_rank(self) -> Any:
        ranking = dig(self.d, "ratingsSummary", "topRanking")
        is_top = isinstance(ranking, dict) and str(ranking.get("id", "")).startswith("topRated")
        return ranking.get("rank") if is_top else None

    def poster_url(self) -> Any:
        return dig(self.d, "primaryImage", "url") or self.ld.get("image")

    def user_reviews(self) -> Any:
        return dig(self.d, "reviews", "total")

    def critic_reviews(self) -> Any:
        return dig(self.d, "criticReviewsTotal", "total")

    def certificate(self) -> Any:
        return text(dig(self.d, "certificate", "rating")) or text(self.ld.get("contentRating"))

    def runtime_minutes(self) -> Any:
        return self.d.get("runtime") or self.ld.get("duration")

    def genres(self) -> list[Any]:
        found = [g.get("text") for g in dicts(dig(self.d, "genres", "genres"))]
        return found or as_list(self.ld.get("genre"))

    def release_date(self) -> Any:
        released = self.d.get("releaseDate")
        if isinstance(released, dict):
            return {**released, "country": dig(released, "country", "text")}
        return released or self.ld.get("datePublished")

    def plot(self) -> Any:
        return (
            text(dig(self.d, "plot", "plotText", "plainText"))
            or _strip(dig(edges(self.d.get("outlines")), 0, "plotText", "plaidHtml"))
            or text(self.ld.get("description"))
        )

    def storyline(self) -> Any:
        return _strip(dig(edges(self.d.get("summaries")), 0, "plotText", "plaidHtml"))

    def _principal(self, wanted: tuple[str, ...]) -> list[dict[str, Any]]:
        """People of one principal-credit group (directors, writers, stars), both shapes."""
        for key in ("principalCredits", "principalCreditsV2"):
            for group in dicts(self.d.get(key)):
                label = dig(group, "category", "id") or dig(group, "grouping", "text")
                if isinstance(label, str) and label.lower() in wanted:
                    return [p for c in dicts(group.get("credits")) if (p := _credit_person(c))]
        return []

    def directors(self) -> list[dict[str, Any]]:
        found = self._principal(("director", "directors", "creator", "creators"))
        if not found:
            for group in dicts(self.d.get("directors")):
                found += [p for c in dicts(group.get("credits")) if (p := _credit_person(c))]
        return found or ld_people(self.ld.get("director"))

    def writers(self) -> list[dict[str, Any]]:
        found = self._principal(("writer", "writers"))
        if not found:
            for group in dicts(self.d.get("writers")):
                found += [p for c in dicts(group.get("credits")) if (p := _credit_person(c))]
        return found or ld_people(self.ld.get("creator"))

    def stars(self) -> list[dict[str, Any]]:
        return self._principal(("cast", "stars", "star")) or ld_people(self.ld.get("actor"))

    def cast(self) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        # The 2022 cached answers list the top-billed ("principalCast") apart from the rest.
        principal = [c for group in dicts(self.d.get("principalCast")) for c in dicts(group.get("credits"))]
        for node in principal + edges(self.d.get("cast")):
            person = _credit_person(node)
            if person:
                person["characters"] = [c.get("name") for c in dicts(node.get("characters"))]
                members.append({**person, **from_credit(node.get("attributes"), node.get("episodeCredits"))})
        if not members:
            for group in dicts(self.d.get("castV2")):
                for credit in dicts(group.get("credits")):
                    person = _credit_person(credit)
                    if person:
                        roles = edges(credit.get("creditedRoles"))
                        characters = [ch for role in roles for ch in edges(role.get("characters"))]
                        person["characters"] = [dig(ch, "name") for ch in characters]
                        attributes = [a for role in roles for a in dicts(role.get("attributes"))]
                        members.append({**person, **from_credit(attributes, credit.get("episodeCredits"))})
        for order, member in enumerate(members):
            member["order"] = order
        return members

    def recommendations(self) -> list[Any]:
        return [n.get("id") for n in edges(self.d.get("moreLikeThisTitles"))]

    def keywords(self) -> list[Any]:
        found = [n.get("text") for n in edges(self.d.get("keywords"))]
        found += [n.get("text") for n in edges(self.d.get("storylineKeywords"))]
        keywords = self.ld.get("keywords")
        return found or (keywords.split(",") if isinstance(keywords, str) else [])

    def taglines(self) -> list[Any]:
        return [n.get("text") for n in edges(self.d.get("taglines"))]

    def countries(self) -> list[Any]:
        details = dig(self.d, "countriesDetails", "countries") or dig(self.d, "countriesOfOrigin", "countries")
        return [c.get("text") or c.get("id") for c in dicts(details)]

    def languages(self) -> list[Any]:
        return [lang.get("text") for lang in dicts(dig(self.d, "spokenLanguages", "spokenLanguages"))]

    def akas(self) -> list[Any]:
        return [n.get("text") for n in edges(self.d.get("akas"))]

    def filming_locations(self) -> list[Any]:
        return [n.get("text") for n in edges(self.d.get("filmingLocations"))]

    def budget(self) -> Any:
        return dig(self.d, "productionBudget", "budget")

    def gross(self) -> Any:
        for key, region in (("worldwideGross", "worldwide"), ("lifetimeGross", "domestic")):
            total = dig(self.d, key, "total")
            if isinstance(total, dict) and total:
                return {**total, "region": region}
        return None

    def companies(self) -> list[dict[str, Any]]:
        return [
            {"id": dig(n, "company", "id"), "name": dig(n, "company", "companyText", "text")}
            for n in edges(self.d.get("production"))
        ]

    def _spec(self, key: str, field: str) -> list[Any]:
        return [i.get(field) for i in dicts(dig(self.d, "technicalSpecifications", key, "items"))]

    def sound_mix(self) -> list[Any]:
        return self._spec("soundMixes", "text")

    def color(self) -> list[Any]:
        return self._spec("colorations", "text")

    def aspect_ratio(self) -> Any:
        return next(iter(self._spec("aspectRatios", "aspectRatio")), None)

    def awards_summary(self) -> dict[str, Any] | None:
        wins = dig(self.d, "wins", "total")
        nominations = dig(self.d, "nominationsExcludeWins", "total")
        if nominations is None:
            nominations = dig(self.d, "nominations", "total")
        prestigious = self.d.get("prestigiousAwardSummary")
        prestigious = prestigious if isinstance(prestigious, dict) else None
        if wins is None and nominations is None and not prestigious:
            return None
        summary: dict[str, Any] = {"wins": wins, "nominations": nominations}
        if prestigious:
            summary["prestigious"] = {
                "award": dig(prestigious, "award", "text"),
                "wins": prestigious.get("wins"),
                "nominations": prestigious.get("nominations"),
            }
        return summary

    def series(self) -> dict[str, Any] | None:
        series = self.d.get("series")
        if dig(series, "series", "id"):
            return {
                "series_id": dig(series, "series", "id"),
                "series_title": dig(series, "series", "titleText", "text"),
                "season": dig(series, "episodeNumber", "seasonNumber"),
                "episode": dig(series, "episodeNumber", "episodeNumber"),
                "series_start_year": dig(series, "series", "releaseYear", "year"),
                "series_end_year": dig(series, "series", "releaseYear", "endYear"),
                "previous_episode": dig(series, "previousEpisode", "id"),
                "next_episode": dig(series, "nextEpisode", "id"),
            }
        episodes = self.d.get("episodes")
        if dig(episodes, "episodes", "total") is not None:
            seasons = dig(episodes, "seasons")
            return {
                "episodes": dig(episodes, "episodes", "total"),
                "seasons": len(seasons) if isinstance(seasons, list) else None,
            }
        return None


class CurrentPersonPage(CurrentPage):
    """A ``/name/nm…/`` page of the current layout."""

    kind = PERSON

    def __init__(self, html: str, url: str | None = None, props: dict[str, Any] | None = None) -> None:
        super().__init__(html, url, props)
        self.d = merge_entity(self.props, "Name")
        if not self.d:
            raise PageError("current-layout page without name data", reason="bad_page_data")

    def imdb_id(self) -> Any:
        return text(self.d.get("id")) or text(self.props.get("nmconst")) or text(self.ld.get("url"))

    def name(self) -> Any:
        return text(dig(self.d, "nameText", "text")) or text(self.ld.get("name"))

    def birth_date(self) -> Any:
        born = self.d.get("birthDate")
        return ((born.get("date") or born) if isinstance(born, dict) else born) or self.ld.get("birthDate")

    def birth_place(self) -> Any:
        return dig(self.d, "birthLocation", "text")

    def death_date(self) -> Any:
        died = self.d.get("deathDate")
        return ((died.get("date") or died) if isinstance(died, dict) else died) or self.ld.get("deathDate")

    def death_place(self) -> Any:
        return dig(self.d, "deathLocation", "text")

    def headshot_url(self) -> Any:
        return dig(self.d, "primaryImage", "url") or self.ld.get("image")

    def alternate_names(self) -> list[Any]:
        return [dig(n, "displayableProperty", "value", "plainText") for n in edges(self.d.get("akas"))]

    def professions(self) -> list[Any]:
        return [dig(p, "category", "text") for p in dicts(self.d.get("primaryProfessions"))]

    def known_for(self) -> list[Any]:
        ids = [dig(c, "title", "id") for c in dicts(dig(self.d, "knownForFeatureV2", "credits"))]
        ids += [dig(n, "credit", "title", "id") for n in edges(self.d.get("knownForV2"))]
        ids += [dig(n, "title", "id") for n in edges(self.d.get("knownFor"))]
        return ids

    def filmography(self) -> list[dict[str, Any]]:
        rows = []
        for block in ("released", "unreleased"):
            for group in edges(self.d.get(block)):
                category = dig(group, "grouping", "text")
                for credit in edges(group.get("credits")):
                    title = credit.get("title")
                    if title_id := dig(title, "id"):
                        rows.append(
                            {"title_id": title_id, "category": category, "year": dig(title, "releaseYear", "year")}
                        )
        return rows

    def bio(self) -> Any:
        return text(dig(self.d, "bio", "text", "plainText")) or text(self.ld.get("description"))


def _strip(markup: Any) -> str | None:
    return _TAGS.sub(" ", markup) if isinstance(markup, str) else None
