"""Item loaders: the declared cleaning of every field.

Page objects (``crawler.parsing.pages``) return raw values; these loaders turn them
into the typed fields of ``crawler.parsing.items``. ``load_item(page)`` is the one
entry point used by the spider and by ``python -m crawler.extract``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from itemloaders.processors import Compose, Identity, MapCompose, TakeFirst
from itemloaders.utils import arg_to_iter, get_func_args
from scrapy.loader import ItemLoader

from crawler.parsing.items import PersonItem, TitleItem
from crawler.parsing.limits import MAX_TEXT_CHARS, PageError, check_list, check_text
from crawler.parsing.pages import Page
from crawler.parsing.pages.base import as_list
from crawler.parsing.processors import (
    clean_text,
    country_name,
    credit_category,
    imdb_id,
    parse_date,
    parse_money,
    parse_year_range,
    to_count,
    to_int,
    to_minutes,
    to_rating,
)

_SCALARS = (str, int, float, type(None))


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
    if type(value) is dict:
        try:  # a credit, a reference: scalar values, the usual case; equal dicts, equal sets of items
            return frozenset(value.items())
        except TypeError:  # a list or a dict among the values
            pass
    if isinstance(value, dict):  # keys are unique: sorting the items never compares their values
        return tuple((k, v if isinstance(v, _SCALARS) else _hashable(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def credit(value: dict[str, Any]) -> dict[str, Any] | None:
    """A filmography row with its category as an id: ``Archive Footage`` → ``archive_footage``."""
    title_id = imdb_id(value.get("title_id"))
    if not title_id:
        return None
    return {
        "title_id": title_id,
        "category": credit_category(value.get("category")),
        "year": first_year(value.get("year")),
    }


def unique_by_id(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first entry per ``id`` (a person credited twice is listed once)."""
    found: dict[Any, dict[str, Any]] = {}
    for value in values:
        found.setdefault(value.get("id") or value.get("title_id") or repr(value), value)
    return list(found.values())


def first_year(value: Any) -> int | None:
    return parse_year_range(value)[0]


def end_year(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_year_range(value)[0]
    return parse_year_range(value)[1]


def date_only(value: Any) -> str | None:
    parsed = parse_date(value)
    return parsed["date"] if parsed else None


PRECISION = {10: "day", 7: "month", 4: "year"}  # "1999-03-31", "1999-03", "1999"


def date_precision(value: Any) -> str | None:
    """How much of a date the page gave: ``day``, ``month`` or ``year`` (the date itself stays ISO text)."""
    date = date_only(value)
    return PRECISION.get(len(date)) if date else None


def rounded_count(value: Any) -> bool:
    """Whether a count was read from a rounded figure ("1.9M", "45K") rather than an exact one."""
    return isinstance(value, str) and re.search(r"\d\s*[KMB]\b", value, re.IGNORECASE) is not None


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
    characters = [c for c in (clean_text(x) for x in as_list(value.get("characters"))) if c]
    years = value.get("years")
    years = years if isinstance(years, dict) else {}
    start, end = to_count(years.get("start")), to_count(years.get("end"))
    return {
        **ref,
        "characters": characters,
        "order": to_count(value.get("order")),
        "as_name": clean_text(value.get("as_name")),
        "uncredited": value.get("uncredited") is True,
        "voice": value.get("voice") is True,
        "episodes": to_count(value.get("episodes")) or None,
        "years": {"start": start, "end": end or start} if start else None,
        "notes": [n for n in (clean_text(x) for x in as_list(value.get("notes"))) if n],
    }


def series_info(value: Any) -> dict[str, Any] | None:
    """An episode's series (id, title, season, episode) or a series' episode and season counts, typed."""
    if not isinstance(value, dict):
        return None
    if "series_id" in value:
        series_id = imdb_id(value.get("series_id"))
        if not series_id or not series_id.startswith("tt"):
            return None
        start = to_count(value.get("series_start_year"))
        return {
            "series_id": series_id,
            "series_title": clean_text(value.get("series_title")),
            "season": to_count(value.get("season")),
            "episode": to_count(value.get("episode")),
            "series_start_year": start,
            "series_end_year": to_count(value.get("series_end_year")) if start else None,
            "previous_episode": _title_id(value.get("previous_episode")),
            "next_episode": _title_id(value.get("next_episode")),
        }
    return {"episodes": to_count(value.get("episodes")), "seasons": to_count(value.get("seasons"))}


def top_250(rank: int) -> int | None:
    """A Top 250 rank; current pages also rank the titles below it ("Top Rated" #1101): not in the Top 250."""
    return rank if 1 <= rank <= 250 else None


def _title_id(value: Any) -> str | None:
    found = imdb_id(value)
    return found if found and found.startswith("tt") else None


_IMAGE_SIZE = re.compile(r"\._V1[._][^/]*?(\.(?:jpe?g|png|webp))$", re.IGNORECASE)
_IMAGE_HOSTS = re.compile(r"^(?:https?:)?//(?:ia\.media-imdb\.com|images-na\.ssl-images-amazon\.com)/")


def image_url(value: Any) -> str | None:
    """An IMDb image at its original size, over https: pages link resized copies (``._V1_UX182_CR0,…_.jpg``).

    ``ia.media-imdb.com`` and ``images-na.ssl-images-amazon.com`` (legacy pages) serve the same images as
    ``m.media-amazon.com`` (current pages).
    """
    url = clean_text(value) if isinstance(value, str) else None
    if not url or not re.match(r"^(?:https?:)?//", url) or "/images/M/" not in url:
        return None  # not a poster or a photo (IMDb's logo stands in for a missing one)
    url = _IMAGE_HOSTS.sub("https://m.media-amazon.com/", url)
    url = re.sub(r"^(?:https?:)?//", "https://", url)
    return _IMAGE_SIZE.sub(r"._V1_\1", url)


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
    summary: dict[str, Any]
    if isinstance(value, dict):
        summary = {"wins": to_count(value.get("wins")), "nominations": to_count(value.get("nominations"))}
        prestigious = value.get("prestigious")
        if isinstance(prestigious, dict):
            summary["prestigious"] = {
                "award": clean_text(prestigious.get("award")),
                "wins": to_count(prestigious.get("wins")),
                "nominations": to_count(prestigious.get("nominations")),
            }
        return summary
    text = clean_text(check_text(value, MAX_TEXT_CHARS, "awards") if isinstance(value, str) else None)
    if not text:
        return None
    wins_total, nominations_total = 0, 0
    summary = {}
    major = re.search(r"(Won|Nominated for)\s+(\d+)\s+([A-Z][\w ]+?)s?\b(?:\.|$)", text)
    if major:
        count, award = int(major.group(2)), major.group(3).strip().rstrip("s")
        won = major.group(1) == "Won"
        summary["prestigious"] = {"award": award, "wins": count if won else 0, "nominations": 0 if won else count}
        wins_total, nominations_total = (count, 0) if won else (0, count)
    wins = re.search(r"(\d+)\s+wins?\b", text)
    nominations = re.search(r"(\d+)\s+nominations?\b", text)
    wins_total += int(wins.group(1)) if wins else 0
    nominations_total += int(nominations.group(1)) if nominations else 0
    return {"wins": wins_total, "nominations": nominations_total, **summary}


class BaseLoader(ItemLoader):
    """Scalars take the first clean value; lists keep every distinct one."""

    default_input_processor = MapCompose(clean_text)
    default_output_processor = TakeFirst()

    imdb_id_in = MapCompose(imdb_id)
    layout_in = Identity()

    # A field's processors depend only on the loader and item classes: looked up once, not on
    # every value (ItemLoader asks the item's field metadata each time, a third of a page's load).
    _processors: ClassVar[dict[tuple[type, type, str, str], Callable[..., Any]]] = {}

    def get_input_processor(self, field_name: str) -> Callable[..., Any]:
        return self._processor(field_name, "in", super().get_input_processor)

    def get_output_processor(self, field_name: str) -> Callable[..., Any]:
        return self._processor(field_name, "out", super().get_output_processor)

    def _processor(self, field_name: str, way: str, look_up: Callable[[str], Callable[..., Any]]) -> Callable[..., Any]:
        key = (type(self), type(self.item), field_name, way)
        found = self._processors.get(key)
        if found is None:
            found = self._processors[key] = _without_set_up(look_up(field_name))
        return found


class _Mapped:
    """What a ``MapCompose`` of functions that take no loader context does, without its set-up on every call.

    ``MapCompose`` looks at each function's signature for a ``loader_context``
    and wraps it, on every call: for a page's hundreds of credits, as long as the
    cleaning itself. Results, and errors (a ``ValueError`` naming the function,
    the value and the error, raised from it), are MapCompose's.
    """

    __slots__ = ("functions",)

    def __init__(self, functions: tuple[Callable[..., Any], ...]) -> None:
        self.functions = functions

    def __call__(self, value: Any) -> Iterable[Any]:
        values = arg_to_iter(value)
        for function in self.functions:
            mapped: list[Any] = []
            for each in values:
                try:
                    result = function(each)
                except Exception as exc:
                    raise ValueError(
                        f"Error in MapCompose with {function!s} value={value!r} error='{type(exc).__name__}: {exc!s}'"
                    ) from exc
                if result is None:
                    continue
                if type(result) in _ONE_VALUE:
                    mapped.append(result)
                else:
                    mapped += arg_to_iter(result)
            values = mapped
        return values


class _Composed:
    """What a ``Compose`` of functions that take no loader context does, without its set-up on every call."""

    __slots__ = ("functions", "stop_on_none")

    def __init__(self, functions: tuple[Callable[..., Any], ...], stop_on_none: bool) -> None:
        self.functions, self.stop_on_none = functions, stop_on_none

    def __call__(self, value: Any) -> Any:
        for function in self.functions:
            if value is None and self.stop_on_none:
                break
            try:
                value = function(value)
            except Exception as exc:
                raise ValueError(
                    f"Error in Compose with {function!s} value={value!r} error='{type(exc).__name__}: {exc!s}'"
                ) from exc
        return value


_ONE_VALUE = frozenset((str, int, float, bool, dict))  # what arg_to_iter makes a one-item list of


def _without_set_up(processor: Callable[..., Any]) -> Callable[..., Any]:
    """``processor``, or its lean equivalent when it is a MapCompose or Compose of context-free functions."""
    context = getattr(processor, "default_loader_context", None)
    functions = getattr(processor, "functions", ())
    if any("loader_context" in get_func_args(function) for function in functions):
        return processor
    if type(processor) is MapCompose and not context:
        return _Mapped(functions)
    if type(processor) is Compose and set(context or {}) <= {"stop_on_none"}:
        return _Composed(functions, processor.stop_on_none)
    return processor


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
    top_rank_in = MapCompose(to_int, top_250)
    poster_url_in = MapCompose(image_url)
    user_reviews_in = critic_reviews_in = MapCompose(to_int)
    runtime_minutes_in = MapCompose(to_minutes)
    release_date_in = MapCompose(date_only)
    release_date_precision_in = MapCompose(date_precision)
    votes_rounded_in = MapCompose(rounded_count)
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
    series_in = MapCompose(series_info)
    genres_out = keywords_out = taglines_out = countries_out = _list_out()
    languages_out = akas_out = filming_locations_out = _list_out()
    sound_mix_out = color_out = recommendations_out = _list_out()


class PersonLoader(BaseLoader):
    """Cleaning rules of ``PersonItem``."""

    default_item_class = PersonItem

    birth_date_in = death_date_in = MapCompose(date_only)
    birth_date_precision_in = death_date_precision_in = MapCompose(date_precision)
    known_for_in = MapCompose(imdb_id)
    known_for_out = professions_out = alternate_names_out = _list_out()
    headshot_url_in = MapCompose(image_url)
    filmography_in = MapCompose(credit)
    filmography_out = Compose(unique)


# Fields read from another field's raw value (one page method serves both).
DERIVED = {
    "release_country": "release_date",
    "release_date_precision": "release_date",
    "birth_date_precision": "birth_date",
    "death_date_precision": "death_date",
    "votes_rounded": "votes",
}
NOT_FROM_THE_PAGE = ("layout", "schema_version", "fetched_via")
TITLE_FIELDS = [f for f in TitleItem.__dataclass_fields__ if f not in NOT_FROM_THE_PAGE]
PERSON_FIELDS = [f for f in PersonItem.__dataclass_fields__ if f not in NOT_FROM_THE_PAGE]
LIST_FIELDS: dict[type[ItemLoader], set[str]] = {
    loader: {name for name, spec in item.__dataclass_fields__.items() if spec.default_factory is list}
    for loader, item in ((TitleLoader, TitleItem), (PersonLoader, PersonItem))
}


def load_item(page: Page) -> TitleItem | PersonItem:
    """The typed item for a parsed page: every field method through the processors its loader declares.

    The loader classes above are the declaration (``<field>_in``/``<field>_out``, defaults, item
    class); values go through the processors ItemLoader would pick, as ItemLoader would apply them
    (each value made a list, empty results dropped, output processors on what was collected),
    without its per-value bookkeeping: a third of a current page's load time. A field whose raw
    value is a list longer than ``MAX_LIST_ITEMS`` stops the page (``OverLimit``) before any
    processor walks it; a processor's PageError (a bound) stops it too.
    """
    loader: ItemLoader = PersonLoader() if page.kind == "person" else TitleLoader()
    fields = PERSON_FIELDS if page.kind == "person" else TITLE_FIELDS
    lists = LIST_FIELDS[type(loader)]
    collected: dict[str, list[Any]] = {}
    raws: dict[str, Any] = {"layout": page.layout}  # a page method read once, though two fields may use it
    for name in ("layout", *fields):
        method = DERIVED.get(name, name)
        raw = raws[method] if method in raws else raws.setdefault(method, getattr(page, method)())
        if isinstance(raw, list):
            # A list where one value is expected is page data of the wrong shape, not a choice of values.
            raw = check_list(raw, name) if name in lists else None
        if raw is None:
            continue
        processed = _run(loader.get_input_processor(name), arg_to_iter(raw))
        if processed:
            collected[name] = list(arg_to_iter(processed))
    item = loader.item
    for name, values in collected.items():
        value = _run(loader.get_output_processor(name), values)
        if value is not None:
            setattr(item, name, value)
    return item


def _run(processor: Callable[..., Any], values: Any) -> Any:
    """A processor's result; the PageError (a bound) it raised, which itemloaders wraps in ValueErrors."""
    try:
        return processor(values)
    except ValueError as exc:
        bound: BaseException | None = exc
        while bound is not None and not isinstance(bound, PageError):
            bound = bound.__cause__
        if bound is None:
            raise
        raise bound from None
