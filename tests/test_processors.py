"""Normalisers: raw page text → typed values (table-driven)."""

from __future__ import annotations

import html
import random
import re
from typing import Any

import pytest
from itemloaders.processors import Compose, MapCompose
from scrapy.loader import ItemLoader

from crawler.parsing.loaders import (
    DERIVED,
    NOT_FROM_THE_PAGE,
    PersonLoader,
    TitleLoader,
    _without_set_up,
    date_precision,
    rounded_count,
)
from crawler.parsing.pages import parse_page
from crawler.parsing.processors import (
    clean_text,
    credit_category,
    imdb_id,
    parse_date,
    parse_money,
    parse_year_range,
    to_int,
    to_minutes,
    to_rating,
)
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("raw", "minutes"),
    [
        ("1h 44min", 104),
        ("104 min", 104),
        ("PT104M", 104),
        ("PT1H44M", 104),
        ("2h", 120),
        ({"seconds": 8160}, 136),
        (" 163 min | 140 min (TV) ", 163),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_to_minutes(raw, minutes):
    assert to_minutes(raw) == minutes


@pytest.mark.parametrize(
    ("raw", "rating"),
    [("7,2", 7.2), ("7.2", 7.2), ("7.2/10", 7.2), (8.5, 8.5), ("8,5", 8.5), (None, None), ("-", None), (0, None)],
)
def test_to_rating(raw, rating):
    assert to_rating(raw) == rating


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("144,553", 144553),
        ("1.234.567", 1234567),
        ("(130,397 votes)", 130397),
        ("1.9M", 1_900_000),
        ("12K", 12_000),
        ("203 user", 203),
        (1956171, 1956171),
        ("none", None),
    ],
)
def test_to_int(raw, number):
    assert to_int(raw) == number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1956-3-7", {"date": "1956-03-07", "country": None}),
        ("25 August 1995 (USA)", {"date": "1995-08-25", "country": "USA"}),
        ("November 11, 1974", {"date": "1974-11-11", "country": None}),
        ("March 1999", {"date": "1999-03", "country": None}),
        ("1999", {"date": "1999", "country": None}),
        ("23 December 1977 (Mexico)", {"date": "1977-12-23", "country": "Mexico"}),
        ({"day": 31, "month": 3, "year": 1999}, {"date": "1999-03-31", "country": None}),
        ({"year": 2021}, {"date": "2021", "country": None}),
        ("2019-02-30", None),
        ("", None),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "money"),
    [
        ("$7,000,000 (estimated)", {"amount": 7_000_000, "currency": "USD", "estimated": True}),
        ("JPY 2,400,000,000", {"amount": 2_400_000_000, "currency": "JPY", "estimated": False}),
        ("€1,500,000", {"amount": 1_500_000, "currency": "EUR", "estimated": False}),
        ("INR 250,000,000 (estimated)", {"amount": 250_000_000, "currency": "INR", "estimated": True}),
        ({"amount": 63000000, "currency": "USD"}, {"amount": 63_000_000, "currency": "USD", "estimated": False}),
        ("unknown", None),
    ],
)
def test_parse_money(raw, money):
    assert parse_money(raw) == money


@pytest.mark.parametrize(
    ("raw", "years"),
    [("(1999)", (1999, None)), ("TV Series (1999–2013)", (1999, 2013)), ("2011– ", (2011, None)), ("", (None, None))],
)
def test_parse_year_range(raw, years):
    assert parse_year_range(raw) == years


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("  The&nbsp;Matrix \n", "The Matrix"), ("Nausica&auml;", "Nausicaä"), ("   ", None), (None, None)],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_clean_text_folds_what_the_regular_expressions_fold() -> None:
    """Whitespace is folded by ``str.split`` (the same whitespace as ``\\s``), control characters dropped first."""
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    rnd = random.Random(16)
    alphabet = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u202f\u3000\u200b\x00\x07\x7fa\xe9&;"
    for _ in range(50_000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        unescaped = html.unescape(text).replace("\xa0", " ")
        folded = re.sub(r"\s+", " ", control.sub("", unescaped)).strip()
        assert clean_text(text) == (folded or None), repr(text)


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("/title/tt0133093/?ref_=tt_ov", "tt0133093"),
        ("http://www.imdb.com/name/nm0000206/", "nm0000206"),
        ("tt13396124", "tt13396124"),
        ("/company/co0026840", "co0026840"),
        ("/title/", None),
    ],
)
def test_imdb_id(raw, found):
    assert imdb_id(raw) == found


def test_imdb_id_fast_paths_find_what_the_search_finds() -> None:
    """Links and bare ids skip the regular expression: the answer must not change, whatever the text."""
    search = re.compile(r"\b(tt|nm|co)(\d{7,10})\b")
    rnd = random.Random(15)
    for _ in range(50_000):
        text = rnd.choice(["/title/tt", "/name/nm", "tt", "nm", "co", "/title//tt", ""]) + "".join(
            rnd.choice("t/nmco0123456789?_=\u0660x ") for _ in range(rnd.randint(0, 14))
        )
        match = search.search(text)
        assert imdb_id(text) == (match.group(0) if match else None), text


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        ("Archive Footage", "archive_footage"),  # current layout
        ("archive footage", "archive_footage"),  # 2013 legacy heading
        ("archive_footage", "archive_footage"),  # 2020 legacy data-category
        ("Miscellaneous Crew", "miscellaneous"),
        ("Actor", "actor"),
        ("  ", None),
    ],
)
def test_credit_category(raw, category):
    assert credit_category(raw) == category


def test_unique_keeps_first_of_equal_dicts_in_order():
    from crawler.parsing.loaders import unique

    rows = [{"a": 1, "b": [1, 2]}, None, {"b": [1, 2], "a": 1}, {"a": 2}, "x", "x"]
    assert unique(rows) == [{"a": 1, "b": [1, 2]}, {"a": 2}, "x"]
    credits = [{"title_id": "tt1", "year": 1999}, {"year": 1999, "title_id": "tt1"}, {"title_id": "tt1", "year": None}]
    assert unique(credits) == [credits[0], credits[2]]


@pytest.mark.parametrize(
    ("value", "precision"),
    [("1999-03-31", "day"), ("31 March 1999 (USA)", "day"), ("1999-03", "month"), ("1999", "year"), (None, None)],
)
def test_date_precision(value: str | None, precision: str | None) -> None:
    assert date_precision(value) == precision


@pytest.mark.parametrize(
    ("value", "rounded"), [("1.9M", True), ("45K votes", True), ("1,956,171", False), (1956171, False), (None, False)]
)
def test_rounded_counts_are_marked(value: object, rounded: bool) -> None:
    assert rounded_count(value) is rounded


def outcome(processor: Any, value: Any) -> tuple[str, Any]:
    try:
        return "value", processor(value)
    except Exception as exc:  # the error, as a caller sees it: its type, message and cause
        return "error", (type(exc), str(exc), type(exc.__cause__))


def raw_values(loader: ItemLoader, page: Any) -> dict[str, Any]:
    names = [n for n in type(loader.item).__dataclass_fields__ if n not in NOT_FROM_THE_PAGE]
    return {name: getattr(page, DERIVED.get(name, name))() for name in names}


ODD_VALUES = [None, "", "  ", [None, "", "x"], ["a", ["b", ("c",)]], {"id": "nm1"}, 3, 2.5, True, "1e999", [{}],
              [{"title_id": "tt1", "year": "19x9"}], {"name": 7}, object(), ["nm0000001", "nm0000001"]]  # fmt: skip


def test_the_lean_processors_give_what_itemloaders_processors_give(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaders run MapCompose and Compose without their per-call set-up: same values, same errors, every field."""
    monkeypatch.setattr("dateparser.parse", lambda *_, **__: None)  # both sides call it alike; it takes 0.1 s a call
    pages = [parse_page(path.read_text(encoding="utf-8-sig")) for path in sorted(FIXTURES.glob("*/*.html"))]
    values: dict[tuple[type, str], list[Any]] = {}  # every raw value of the fixture pages, then the odd ones
    for page in pages:
        loader = PersonLoader() if page.kind == "person" else TitleLoader()
        for name, raw in raw_values(loader, page).items():
            values.setdefault((type(loader), name), list(ODD_VALUES)).append(raw)
    compared = 0
    for (loader_class, name), raws in values.items():
        loader = loader_class()
        for way in ("input", "output"):
            lean = getattr(loader, f"get_{way}_processor")(name)
            declared = getattr(ItemLoader, f"get_{way}_processor")(loader, name)
            for raw in raws:
                assert outcome(lean, raw) == outcome(declared, raw), (name, way, raw)
                compared += 1
    assert compared > 4_000
    lean_kinds = {type(p).__name__ for p in TitleLoader._processors.values()}
    assert {"_Mapped", "_Composed"} <= lean_kinds  # the comparison above did compare them


def test_a_processor_that_takes_the_loader_context_is_left_as_declared() -> None:
    def with_context(value: Any, loader_context: dict[str, Any]) -> Any:
        return value

    for processor in (MapCompose(with_context), Compose(with_context), MapCompose(str.strip, greeting="hi")):
        assert _without_set_up(processor) is processor
    assert type(_without_set_up(MapCompose(str.strip))).__name__ == "_Mapped"


def test_lean_map_and_compose_flatten_drop_and_fail_as_itemloaders_does() -> None:
    def twice(value: Any) -> Any:
        return [value, value] if value != "t" else (value,)

    def fails(value: Any) -> Any:
        raise KeyError(value)

    def spread(value: Any) -> Any:
        return iter(value) if isinstance(value, str) else {value}

    cases = [
        MapCompose(twice, str.upper), MapCompose(spread), MapCompose(twice, fails), MapCompose(lambda v: None),
        Compose(twice, len), Compose(lambda v: None, len), Compose(fails), Compose(len, stop_on_none=False),
    ]  # fmt: skip
    for declared in cases:
        lean = _without_set_up(declared)
        assert lean is not declared
        for value in (["a", None, "t"], "ab", None, [], ("x", "y"), 3):
            assert outcome(lean, value) == outcome(declared, value), (declared.functions, value)
