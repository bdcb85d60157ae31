"""Queue entries (JOBDIR on disk, the shared queue in Redis): our requests go through, nothing else is built."""

from __future__ import annotations

import json
import sys

import pytest
from scrapy.http import Request

from crawler.runtime.serialization import dumps, entry_of, request_from_entry
from crawler.runtime.spiders.imdb import ImdbSpider

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def spider() -> ImdbSpider:
    return ImdbSpider(start="tt0133093")


def test_a_page_request_comes_back_as_it_went(spider: ImdbSpider) -> None:
    request = Request(f"{BASE}/title/tt0133093/", callback=spider.parse_title, errback=spider.page_failed,
                      meta={"imdb_id": "tt0133093", "depth": 2}, headers={"X-Try": b"1"}, priority=-3)  # fmt: skip
    back = request_from_entry(entry_of(request, spider), spider, BASE)
    assert type(back) is Request and back.url == request.url and back.priority == -3
    assert back.callback == spider.parse_title and back.errback == spider.page_failed
    assert back.meta == {"imdb_id": "tt0133093", "depth": 2} and back.headers[b"X-Try"] == b"1"


def test_a_request_on_its_way_to_the_browser_stays_in_memory(spider: ImdbSpider) -> None:
    request = Request(f"{BASE}/title/tt0133093/", meta={"imdb_id": "tt0133093", "playwright_page_methods": []})
    with pytest.raises(ValueError, match="stays in memory"):
        entry_of(request, spider)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ({"url": f"{BASE}/title/tt1/", "_class": "this.s"}, "fields _class"),
        ({"url": f"{BASE}/title/tt1/", "_class": "scrapy.http.request.form.FormRequest"}, "fields _class"),
        ({}, "no URL"),
        ([1, 2], "a JSON list"),
        ("text", "a JSON str"),
        ({"url": f"{BASE}/title/tt1/", "callback": "close"}, "not one of the spider's"),
        ({"url": f"{BASE}/title/tt1/", "errback": "__class__"}, "not one of the spider's"),
        ({"url": f"{BASE}/title/tt1/", "meta": {"playwright_page_init_callback": "this.s"}}, "meta"),
        ({"url": f"{BASE}/title/tt1/", "meta": [1]}, "meta"),
        ({"url": "http://elsewhere.example/title/tt1/", "callback": "parse_title"}, "off the crawled site"),
        ({"url": f"{BASE}.elsewhere.example/title/tt1/"}, "off the crawled site"),
        ({"url": f"{BASE}/title/tt1/", "priority": "high"}, "not a request"),
    ],
)
def test_anything_else_is_refused_and_nothing_is_imported(spider: ImdbSpider, entry: object, why: str) -> None:
    sys.modules.pop("this", None)
    with pytest.raises(ValueError, match=why):
        request_from_entry(json.dumps(entry), spider, BASE)
    assert "this" not in sys.modules


def test_bytes_and_header_keys_survive_json() -> None:
    assert json.loads(dumps({"body": b"\x00\xff", "headers": {b"A": [b"b"]}})) == {
        "body": {"$bytes": "AP8="},
        "headers": {"$items": [[{"$bytes": "QQ=="}, [{"$bytes": "Yg=="}]]]},
    }
