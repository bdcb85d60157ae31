"""The schema's two compiled validators: the fast one (jsonschema_rs) may only say yes where fastjsonschema does."""

from __future__ import annotations

import copy
import enum
import math
import random
from typing import Any

import fastjsonschema
import pytest

from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.storage.documents import to_document
from crawler.storage.schema import FAST_VALIDATORS, VALIDATORS, first_error
from tests.conftest import FIXTURES


class Count(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


# Values at and around every bound of the schema, of every type, and of types the fast validator cannot read.
VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 5, 9, 10, 11, 100, 101, 250, 251, 1869, 1870, 2100, 2101, 2**31, 2**63 - 1, 2**63,
    2**64, -(2**63), Count.ONE, 0.0, -0.0, 0.5, 1.0, 5.0, 9.9, 10.0, 10.5, 1870.0, 1e300, math.nan, math.inf,
    "", " ", "x", "tt1", "tt0133093", "tt1\n", "\ntt1", "tt", "tt-1", "ttx", "TT1", "tt\u0661", "nm1", "nm0000206",
    "nm1 ", "co1", "https://m.media-amazon.com/x.jpg", "http://x", "HTTPS://x", "day", "month", "year", "Day",
    "current", "legacy", "http", "browser", "worldwide", "domestic", "\u00e9", "\ud800", Text("tt1"), b"tt1",
    [], [""], ["x"], [None], [1], ["tt1"], ("x",), {"x"}, {}, {"id": "nm1"}, {"id": "tt1"}, {"id": None},
    {"id": "nm1", "name": None}, {"id": "nm1", "extra": 1}, {"amount": 5}, {"amount": -5}, {"amount": 5.0},
    {"amount": 5, "region": "worldwide"}, {"episodes": 3}, {"series_id": "tt1"}, {"title_id": "tt1"},
    {"start": 1999, "end": None}, {"$where": 1}, {"a.b": 1}, {1: "x"}, [{"id": "nm1"}], [{"title_id": "tt1"}],
]  # fmt: skip


def fixture_documents() -> list[tuple[str, dict[str, Any]]]:
    pages = sorted(FIXTURES.glob("*/*.html"))
    return [to_document(load_item(parse_page(page.read_text(encoding="utf-8-sig")))) for page in pages]


def somewhere(document: dict[str, Any], rnd: random.Random) -> tuple[Any, Any]:
    """A random ``(container, key)`` in ``document``: a top-level field as often as anything deeper."""
    parent, key = document, rnd.choice(list(document))
    while isinstance(parent[key], (dict, list)) and parent[key] and rnd.random() < 0.6:
        parent = parent[key]
        key = rnd.choice(list(parent)) if isinstance(parent, dict) else rnd.randrange(len(parent))
    return parent, key


def mutated(document: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """``document`` with one to three values replaced, removed, or keys added, anywhere in it."""
    document = copy.deepcopy(document)
    for _ in range(rnd.randint(1, 3)):
        parent, key = somewhere(document, rnd)
        action = rnd.random()
        if action < 0.8:
            parent[key] = copy.deepcopy(rnd.choice(VALUES))
        elif action < 0.9:
            del parent[key]
        elif isinstance(parent, dict):
            parent[rnd.choice(["extra", "id", "name", "title_id", "year", "$x", "a.b"])] = rnd.choice(VALUES)
    return document


def python_says_valid(collection: str, document: dict[str, Any]) -> bool:
    try:
        VALIDATORS[collection](document)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def rust_says_valid(collection: str, document: dict[str, Any]) -> bool | None:
    try:
        return FAST_VALIDATORS[collection].is_valid(document)
    except ValueError:
        return None


def test_the_fast_validator_never_accepts_what_fastjsonschema_refuses() -> None:
    documents = fixture_documents()
    rnd = random.Random(27)
    seen: dict[tuple[bool | None, bool], int] = {}
    for _ in range(4_000):
        collection, original = rnd.choice(documents)
        document = mutated(original, rnd)
        rust, python = rust_says_valid(collection, document), python_says_valid(collection, document)
        seen[(rust, python)] = seen.get((rust, python), 0) + 1
        assert not (rust and not python), document
        assert (first_error(collection, document) is None) == python, document
    # The mutations reach every case: both agree either way, the fast one cannot read a valid document.
    assert {(True, True), (False, False), (None, False), (None, True)} <= seen.keys(), seen


@pytest.mark.parametrize(
    ("field", "value", "rust"),
    [("rating", math.nan, False), ("plot", Text("a plot"), None), ("votes", Count.ONE, True)],
)
def test_where_the_fast_validator_says_no_or_cannot_read_fastjsonschema_decides(field: str, value: Any, rust: Any):
    document = {"_id": "tt0000001", "imdb_id": "tt0000001", "title": "X", "schema_version": 1, field: value}
    assert rust_says_valid("titles", document) is rust
    assert first_error("titles", document) is None


@pytest.mark.parametrize(("collection", "document"), fixture_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_fixture_document_is_valid_to_both(collection: str, document: dict[str, Any]) -> None:
    assert rust_says_valid(collection, document) is True
    assert python_says_valid(collection, document)
