"""Blocked and broken responses never become items; the browser renders JavaScript-only pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_twisted
from scrapy.http import HtmlResponse

from crawler.demo_site import DemoSite
from crawler.demo_site.server import JS_SHELL
from crawler.runtime.addons import chromium_path
from crawler.runtime.middlewares import block_reason
from tests.conftest import FIXTURES, crawl, db_of, page_file

URL = "https://www.imdb.com/title/tt0133093/"
GOOD = page_file("current", "tt0133093.html").read_bytes()
FAST_RETRY = ("-s", "BLOCKED_BACKOFF_SECONDS=0", "-a", "depth=0", "-a", "start=sitemap")


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason"),
    [
        (202, {"x-amzn-waf-action": "challenge"}, b"", "waf_challenge"),
        (202, {}, b"", "waf_challenge"),
        (403, {}, b"<html>Forbidden</html>", "forbidden"),
        (429, {}, b"", "too_many_requests"),
        (503, {}, b"<html>down</html>", "unavailable"),
        (502, {}, b"<html>bad gateway</html>", "http_502"),
        (200, {}, b"   ", "empty_body"),
        (200, {}, b"<html><body>Please solve this CAPTCHA</body></html>", "captcha"),
        (200, {}, (JS_SHELL % "AAAA").encode(), "no_page_data"),
        (200, {}, GOOD[:100_000], None),  # cut short: a bad page for the spider to count, not a block
        (200, {}, GOOD[:-10] + b" " * 16_000_000 + b"</html>", None),  # too large: a bad page too
        (200, {}, GOOD, None),
        (404, {}, b"<html>404 Not Found</html>", None),
    ],
)
def test_block_reason(status: int, headers: dict[str, str], body: bytes, reason: str | None) -> None:
    response = HtmlResponse(URL, status=status, headers=headers, body=body, encoding="utf-8")
    assert block_reason(response) == reason


def titles_and_people(uri: str) -> tuple[int, int]:
    db = db_of(uri)
    return len(db.titles.distinct("_id")), len(db.people.distinct("_id"))


FAST_RETRY = {"BLOCKED_BACKOFF_SECONDS": 0}


@pytest.mark.parametrize("mode", ["waf", "flaky"])
@pytest_twisted.ensureDeferred
async def test_first_answer_blocked_then_retried(mode: str, mongo_uri: str, tmp_path: Path):
    with DemoSite(FIXTURES, mode=mode) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=FAST_RETRY, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 0 and titles_and_people(mongo_uri) == (25, 5)
    assert stats["imdb/blocked_retry/count"] == 30 and not [key for key in stats if key.startswith("pages/blocked")]


@pytest_twisted.ensureDeferred
async def test_blocked_site_stores_nothing_and_fails_loudly(mongo_uri: str, tmp_path: Path):
    with DemoSite(FIXTURES, mode="blocked") as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=FAST_RETRY, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 1 and stats["finish_reason"] == "blocked"
    assert titles_and_people(mongo_uri) == (0, 0) and stats["pages/blocked/waf_challenge"] >= 20
    run = db_of(mongo_uri).crawl_runs.find_one()
    assert run["finish_reason"] == "blocked" and run["blocked"] >= 20
    assert {m["monitor"] for m in run["monitors"] if not m["ok"]} >= {"finish_reason", "blocked_ratio"}


@pytest_twisted.ensureDeferred
async def test_javascript_page_without_browser_is_counted_blocked(mongo_uri: str, tmp_path: Path):
    with DemoSite(FIXTURES, mode="js") as site:
        settings = {**FAST_RETRY, "BLOCKED_CLOSE_MIN_PAGES": 1000}
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 1  # the monitors fail the run
    assert stats["monitors/items_stored"] == "failed" and stats["pages/blocked/no_page_data"] == 30
    assert titles_and_people(mongo_uri) == (0, 0)


needs_chromium = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),
    reason="Chromium is not installed (apt-get install chromium; CI installs it)",
)


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_browser_renders_javascript_only_pages(mongo_uri: str, tmp_path: Path):
    settings = {**FAST_RETRY, "BLOCKED_RETRY_TIMES": 0, "PLAYWRIGHT_ENABLED": True}
    with DemoSite(FIXTURES, mode="js") as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start="tt0133093,nm0000138",
                              depth=0)  # fmt: skip
    assert crawler.exit_status == 0 and crawler.stats.get_value("imdb/browser_fallback") == 2
    assert crawler.stats.get_value("browser/read_from_dom") == 2  # a shell's document holds no page data
    assert titles_and_people(mongo_uri) == (1, 1)
    doc = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert doc["rating"] == 8.7 and doc["cast"][0]["characters"] == ["Neo"]
