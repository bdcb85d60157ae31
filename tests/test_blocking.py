"""Blocked and broken responses never become items; the browser renders JavaScript-only pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse

from crawler.mongo import connect, database_name
from crawler.runtime.addons import chromium_path
from crawler.runtime.middlewares import block_reason
from crawler.site import JS_SHELL, DemoSite
from tests.conftest import FIXTURES, page_file, run_crawl

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
        (200, {}, GOOD[:100_000], "truncated"),
        (200, {}, GOOD, None),
        (404, {}, b"<html>404 Not Found</html>", None),
    ],
)
def test_block_reason(status: int, headers: dict[str, str], body: bytes, reason: str | None) -> None:
    response = HtmlResponse(URL, status=status, headers=headers, body=body, encoding="utf-8")
    assert block_reason(response) == reason


def titles_and_people(uri: str) -> tuple[int, int]:
    db = connect(uri)[database_name(uri)]
    return len(db.titles.distinct("_id")), len(db.people.distinct("_id"))


@pytest.mark.parametrize("mode", ["waf", "flaky"])
def test_first_answer_blocked_then_retried(mode: str, mongo_uri: str, tmp_path: Path) -> None:
    with DemoSite(FIXTURES, mode=mode) as site:
        result = run_crawl(site.base_url, mongo_uri, tmp_path, *FAST_RETRY)
    assert result.returncode == 0, result.stderr[-2000:]
    assert titles_and_people(mongo_uri) == (25, 5)
    assert "imdb/blocked'" not in result.stderr and "imdb/blocked_retry/count': 30" in result.stderr


def test_blocked_site_stores_nothing_and_fails_loudly(mongo_uri: str, tmp_path: Path) -> None:
    with DemoSite(FIXTURES, mode="blocked") as site:
        result = run_crawl(site.base_url, mongo_uri, tmp_path, *FAST_RETRY)
    assert result.returncode == 1
    assert "pages were blocked" in result.stderr and "'finish_reason': 'blocked'" in result.stderr
    assert titles_and_people(mongo_uri) == (0, 0)
    run = connect(mongo_uri)[database_name(mongo_uri)].crawl_runs.find_one()
    assert run["finish_reason"] == "blocked" and run["blocked"] >= 20


def test_javascript_page_without_browser_is_counted_blocked(mongo_uri: str, tmp_path: Path) -> None:
    with DemoSite(FIXTURES, mode="js") as site:
        result = run_crawl(site.base_url, mongo_uri, tmp_path, *FAST_RETRY, "-s", "BLOCKED_CLOSE_MIN_PAGES=1000")
    assert result.returncode == 1  # the monitors fail the run
    assert "Monitor items_stored failed: 30 pages fetched but no item stored" in result.stderr
    assert "'imdb/blocked/no_page_data': 30" in result.stderr
    assert titles_and_people(mongo_uri) == (0, 0)


needs_chromium = pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"),
    reason="Chromium is not installed (apt-get install chromium; CI installs it)",
)


@needs_chromium
def test_browser_renders_javascript_only_pages(mongo_uri: str, tmp_path: Path) -> None:
    with DemoSite(FIXTURES, mode="js") as site:
        result = run_crawl(
            site.base_url, mongo_uri, tmp_path,
            "-a", "start=tt0133093,nm0000138", "-a", "depth=0",
            "-s", "BLOCKED_BACKOFF_SECONDS=0", "-s", "BLOCKED_RETRY_TIMES=0", "-s", "PLAYWRIGHT_ENABLED=true",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'imdb/browser_fallback': 2" in result.stderr
    assert titles_and_people(mongo_uri) == (1, 1)
    doc = connect(mongo_uri)[database_name(mongo_uri)].titles.find_one({"_id": "tt0133093"})
    assert doc["rating"] == 8.7 and doc["cast"][0]["characters"] == ["Neo"]
