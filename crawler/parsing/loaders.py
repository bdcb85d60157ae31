"""Item loaders: the declared cleaning of every field.

Page objects (``crawler.parsing.pages``) return raw values; these loaders turn them
into the typed fields of ``crawler.parsing.items``. ``load_item(page)`` is the one
entry point used by the spider and by ``python -m crawler.extract``.
"""

from __future__ import annotations

import re
from typing import Any

from itemloaders.processors import Compose, Identity, MapCompose, TakeFirst
from scrapy.loader import ItemLoader

from crawler.parsing.items import PersonItem, TitleItem
from crawler.parsing.pages import Page
from crawler.parsing.processors import (
    clean_text,
    country_name,
    credit_category,
    imdb_id,
    parse_date,
    parse_money,
    parse_year_range,
    to_int,
    to_minutes,
    to_rating,
)


def unique(values: list[Any]) -> list[Any]:
    """Drop Nones and repeats, keep order (a filmography runs to hundreds of dicts: hashed, not compared pairwise)."""
    seen: set[Any] = set()
    kept: list[Any] = []
    for value in values:
        if value is None:
            continue
        key = _hashable(value)
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def credit(value: dict[str, Any]) -> dict[str, Any] | None:
    """A filmography row with its category as an id: ``Archive Footage`` → ``archive_footage``."""
    title_id = imdb_id(value.get("title_id"))
    if not title_id:
        return None
    return {**value, "title_id": title_id, "category": credit_category(value.get("category"))}


def unique_by_id(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first entry per ``id`` (a person credited twice is listed once)."""
    found: dict[Any, dict[str, Any]] = {}
    for value in values:
        found.setdefault(value.get("id") or value.get("title_id") or repr(value), value)
    return list(found.values())


def first_year(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    return parse_year_range(value)[0]


def end_year(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    return parse_year_range(value)[1]


def date_only(value: Any) -> str | None:
    parsed = parse_date(value)
    return parsed["date"] if parsed else None


def date_country(value: Any) -> str | None:
    parsed = parse_date(value)
    return country_name(parsed["country"]) if parsed else None


def original_title(value: Any) -> str | None:
    """Without the quotes and "(original title)" some legacy pages wrap it in."""
    text = clean_text(value)
    if not text:
        return None
    text = re.sub(r"\s*\(original title\)\s*$", "", text)
    return text.strip('"') or None


def person_ref(value: dict[str, Any]) -> dict[str, Any] | None:
    pid = imdb_id(value.get("id"))
    return {"id": pid, "name": clean_text(value.get("name"))} if pid else None


def cast_member(value: dict[str, Any]) -> dict[str, Any] | None:
    ref = person_ref(value)
    if ref is None:
        return None
    characters = [c for c in (clean_text(x) for x in value.get("characters") or []) if c]
    return {**ref, "characters": characters, "order": value.get("order")}


def company_ref(value: dict[str, Any]) -> dict[str, Any] | None:
    name = clean_text(value.get("name"))
    return {"id": imdb_id(value.get("id")), "name": name} if name else None


def gross(value: dict[str, Any]) -> dict[str, Any] | None:
    money = parse_money(value.get("text") if "text" in value else value)
    return {**money, "region": value.get("region")} if money else None


def awards(value: Any) -> dict[str, Any] | None:
    """``{wins, nominations[, prestigious]}`` from the page's JSON or its awards sentence.

    "Won 4 Oscars. Another 33 wins & 44 nominations." → 37 wins (4 Oscars), 44 nominations.
    """
    if isinstance(value, dict):
        return value
    text = clean_text(value)
    if not text:
        return None
    summary: dict[str, Any] = {"wins": 0, "nominations": 0}
    major = re.search(r"(Won|Nominated for)\s+(\d+)\s+([A-Z][\w ]+?)s?\b(?:\.|$)", text)
    if major:
        count, award = int(major.group(2)), major.group(3).strip().rstrip("s")
        key = "wins" if major.group(1) == "Won" else "nominations"
        summary["prestigious"] = {"award": award, "wins": 0, "nominations": 0, key: count}
        summary[key] += count
    wins = re.search(r"(\d+)\s+wins?\b", text)
    nominations = re.search(r"(\d+)\s+nominations?\b", text)
    summary["wins"] += int(wins.group(1)) if wins else 0
    summary["nominations"] += int(nominations.group(1)) if nominations else 0
    return summary


class BaseLoader(ItemLoader):
    """Scalars take the first clean value; lists keep every distinct one."""

    default_input_processor = MapCompose(clean_text)
    default_output_processor = TakeFirst()

    imdb_id_in = MapCompose(imdb_id)
    layout_in = Identity()


def _list_out() -> Compose:
    return Compose(unique)


class TitleLoader(BaseLoader):
    """Cleaning rules of ``TitleItem``."""

    default_item_class = TitleItem

    original_title_in = MapCompose(original_title)
    countries_in = MapCompose(country_name)
    year_in = MapCompose(first_year)
    end_year_in = MapCompose(end_year)
    rating_in = MapCompose(to_rating)
    votes_in = metascore_in = popularity_rank_in = MapCompose(to_int)
    user_reviews_in = critic_reviews_in = MapCompose(to_int)
    runtime_minutes_in = MapCompose(to_minutes)
    release_date_in = MapCompose(date_only)
    release_country_in = MapCompose(date_country)
    directors_in = writers_in = stars_in = MapCompose(person_ref)
    directors_out = writers_out = stars_out = Compose(unique_by_id)
    cast_in = MapCompose(cast_member)
    cast_out = Compose(unique_by_id)
    recommendations_in = MapCompose(imdb_id)
    companies_in = MapCompose(company_ref)
    companies_out = Compose(unique)
    budget_in = MapCompose(parse_money)
    gross_in = MapCompose(gross)
    awards_summary_in = MapCompose(awards)
    series_in = Identity()
    genres_out = keywords_out = taglines_out = countries_out = _list_out()
    languages_out = akas_out = filming_locations_out = _list_out()
    sound_mix_out = color_out = recommendations_out = _list_out()


class PersonLoader(BaseLoader):
    """Cleaning rules of ``PersonItem``."""

    default_item_class = PersonItem

    birth_date_in = death_date_in = MapCompose(date_only)
    known_for_in = MapCompose(imdb_id)
    known_for_out = professions_out = _list_out()
    filmography_in = MapCompose(credit)
    filmography_out = Compose(unique)


# Fields read from another field's raw value (one page method serves both).
DERIVED = {"release_country": "release_date"}
TITLE_FIELDS = [f for f in TitleItem.__dataclass_fields__ if f not in ("layout", "schema_version")]
PERSON_FIELDS = [f for f in PersonItem.__dataclass_fields__ if f not in ("layout", "schema_version")]


def load_item(page: Page) -> TitleItem | PersonItem:
    """The typed item for a parsed page: every field method through its processors."""
    if page.kind == "person":
        loader: ItemLoader = PersonLoader()
        fields = PERSON_FIELDS
    else:
        loader = TitleLoader()
        fields = TITLE_FIELDS
    loader.add_value("layout", page.layout)
    for name in fields:
        loader.add_value(name, getattr(page, DERIVED.get(name, name))())
    return loader.load_item()
