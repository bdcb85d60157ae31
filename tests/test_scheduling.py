"""Scheduled runs: refresh windows, stale-first seeding, the page budget, the run lock, progress lines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_twisted
from scrapy.http import HtmlResponse, Request
from scrapy.utils.defer import deferred_from_coro

from crawler.demo_site import DemoSite
from crawler.parsing.items import SCHEMA_VERSION
from crawler.runtime.extensions.progress import duration, progress_line
from crawler.runtime.frontier import Scheduler
from tests.conftest import FIXTURES, crawl, db_of, make_crawler


@pytest_twisted.ensureDeferred
async def test_refresh_after_skips_fresh_pages_and_stale_seeds_oldest(demo_site, mongo_uri: str, tmp_path: Path):
    first = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", depth=0)
    assert first.stats.get_value("pages/new") == 30
    db = db_of(mongo_uri)
    # Everything was just seen: a refresh run fetches none of it, and that is a success.
    fresh = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", refresh_after="7d")
    stats = fresh.stats.get_stats()
    assert stats["frontier/fresh"] == 30 and stats["frontier/admitted"] == 0 and "item_scraped_count" not in stats
    assert fresh.exit_status == 0 and stats["monitors/failed"] == 0
    # Age three pages: a stale-first run refreshes exactly those, oldest first.
    old = datetime.now(UTC) - timedelta(days=30)
    for n, page_id in enumerate(["tt0133093", "tt0088247", "nm0000138"]):
        db[("people" if page_id.startswith("nm") else "titles")].update_one(
            {"_id": page_id}, {"$set": {"last_seen": old - timedelta(days=n)}}
        )
    stale = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="stale", refresh_after="7d", depth=0)
    assert stale.stats.get_value("item_scraped_count") == 3 and stale.stats.get_value("frontier/admitted") == 3
    assert db.titles.count_documents({"last_seen": {"$lt": datetime.now(UTC) - timedelta(days=7)}}) == 0


@pytest_twisted.ensureDeferred
async def test_documents_of_an_older_schema_version_are_never_fresh_and_refreshed_first(
    demo_site, mongo_uri: str, tmp_path: Path
):
    await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", depth=0)
    db = db_of(mongo_uri)
    # As an older version wrote it: its hash covers its schema_version, so it differs too.
    older = {"schema_version": SCHEMA_VERSION - 1, "filmography.0.category": "Actor", "content_hash": "v1"}
    db.people.update_one({"_id": "nm0000138"}, {"$set": older})
    fresh = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", refresh_after="7d", depth=0)
    assert fresh.stats.get_value("frontier/fresh") == 29 and fresh.stats.get_value("item_scraped_count") == 1
    person = db.people.find_one({"_id": "nm0000138"})
    assert person["schema_version"] == SCHEMA_VERSION and person["filmography"][0]["category"] == "producer"
    # A stale-first run with room for one page takes the older version before the oldest document.
    db.titles.update_one({"_id": "tt0133093"}, {"$set": {"last_seen": datetime.now(UTC) - timedelta(days=30)}})
    db.titles.update_one({"_id": "tt0088247"}, {"$set": {"schema_version": SCHEMA_VERSION - 1, "content_hash": "v1"}})
    stale = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="stale", refresh_after="7d", max_pages=1)
    assert stale.stats.get_value("frontier/admitted") == 1
    assert db.titles.find_one({"_id": "tt0088247"})["schema_version"] == SCHEMA_VERSION
    assert db.titles.count_documents({"_id": "tt0133093", "last_seen": {"$lt": datetime.now(UTC) - timedelta(days=7)}})


@pytest_twisted.ensureDeferred
async def test_seeded_crawl_follows_recommendations_and_cast(demo_site, mongo_uri, tmp_path: Path):
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093,tt0095016,tt0076759")
    assert crawler.exit_status == 0
    db = db_of(mongo_uri)
    # Seeds plus every fixture page reachable from them through recommendation, cast and known-for links
    # (the closure, worked out by hand from the pages).
    assert sorted(db.titles.distinct("_id")) == ["tt0076759", "tt0088247", "tt0095016", "tt0133093", "tt1375666",
                                                 "tt1853728"]  # fmt: skip
    assert db.people.distinct("_id") == ["nm0000138"]
    doc = db.titles.find_one({"_id": "tt0133093"})
    assert doc["rating"] == 8.7 and doc["cast"][0]["characters"] == ["Neo"]
    no_cast = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093", depth=1, follow_cast="off")
    assert no_cast.stats.get_value("frontier/admitted") == 1 + 12  # the page and its 12 recommendations only


@pytest_twisted.ensureDeferred
async def test_depth_zero_and_page_budget(demo_site, mongo_uri, tmp_path: Path):
    alone = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093", depth=0)
    assert alone.stats.get_value("frontier/admitted") == 1 and db_of(mongo_uri).titles.count_documents({}) == 1
    budget = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", max_pages=5)
    stats = budget.stats.get_stats()
    assert stats["frontier/admitted"] == stats["frontier/finished"] == 5 and stats["frontier/over_budget"] > 0
    assert stats["downloader/request_count"] == 5 + 2  # robots.txt + sitemap + 5 pages


@pytest_twisted.ensureDeferred
async def test_second_run_of_a_job_does_not_overlap(demo_site, mongo_uri: str, tmp_path: Path):
    db = db_of(mongo_uri)
    db.locks.insert_one({"_id": "imdb", "owner": "otherhost:123", "heartbeat": datetime.now(UTC)})
    locked = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093", depth=0)
    assert locked.exit_status == 1 and locked.stats.get_value("finish_reason") == "locked"
    assert locked.stats.get_value("monitors/finish_reason") == "failed"
    assert db.titles.count_documents({}) == 0 and "downloader/request_count" not in locked.stats.get_stats()
    # The other run crashed long ago: its lock has expired and is taken over.
    db.locks.update_one({"_id": "imdb"}, {"$set": {"heartbeat": datetime.now(UTC) - timedelta(hours=1)}})
    taken = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093", depth=0)
    assert taken.exit_status == 0
    assert db.titles.count_documents({}) == 1 and db.locks.count_documents({}) == 0  # released at the end
    # A locked run is no "previous run": the next run compares with the last one that stored items.
    previous = db.crawl_runs.find_one({"finish_reason": "locked"})
    assert previous and previous["stored_items"] == 0


def test_progress_line_says_share_of_the_known_work_rate_eta_and_outcomes() -> None:
    stats = {"frontier/finished": 412, "frontier/admitted": 1000, "pages/new": 300, "pages/unchanged": 90,
             "pages/not_found": 40, "pages/blocked/waf_challenge": 12}  # fmt: skip
    line = progress_line(stats, 1000, 2, 180.0, 118)  # the budget is spent: the whole work is known
    assert line == (
        "Progress: 412/1000 pages (41%), 180 pages/min, ETA 3m16s; 390 written to MongoDB, 118 queued, "
        "12 blocked, 40 not found"
    )
    small = {"frontier/finished": 6, "frontier/admitted": 30, "pages/new": 6}  # a 30-page job, budget 1000
    assert progress_line(small, 1000, 2, 36.0, 24).startswith("Progress: 6/30 pages known so far (20%), 36 pages/min;")
    assert progress_line(small, 1000, 0, 36.0, 24).startswith("Progress: 6/30 pages (20%), 36 pages/min, ETA 40s;")
    assert progress_line({}, None, 2, 0.0, "?") == (
        "Progress: 0 pages, 0 pages/min; 0 written to MongoDB, ? queued, 0 blocked, 0 not found"
    )
    assert [duration(s) for s in (45, 196, 7500)] == ["45s", "3m16s", "2h05m"]


@pytest_twisted.ensureDeferred
async def test_progress_is_logged_every_interval(mongo_uri: str, tmp_path: Path, caplog):
    caplog.set_level(logging.INFO)
    with DemoSite(FIXTURES, mode="slow", delay=0.2) as site:
        await crawl(mongo_uri, site.base_url, tmp_path, settings={"PROGRESS_INTERVAL": 0.5, "CONCURRENT_REQUESTS": 2},
                    start="sitemap", depth=0)  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress: ")]
    assert len(lines) >= 3 and all("/30 pages (" in line and "written to MongoDB" in line for line in lines)
    assert not [r for r in caplog.records if r.name == "scrapy.extensions.logstats" and "Crawled" in r.getMessage()]


@pytest_twisted.ensureDeferred
async def test_the_site_never_sees_more_requests_at_once_than_allowed(mongo_uri: str, tmp_path: Path):
    """Scrapy 2.19's own downloader sends a slot's whole queue at once under asyncio (crawler/runtime/downloader.py)."""
    with DemoSite(FIXTURES, mode="slow", delay=0.2) as site:
        settings = {"CONCURRENT_REQUESTS_PER_DOMAIN": 2}
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start="sitemap", depth=0)
    assert crawler.exit_status == 0 and crawler.stats.get_value("pages/new") == 30
    assert site.peak_in_flight == 2


@pytest_twisted.ensureDeferred
async def test_links_to_pages_the_frontier_refuses_never_become_requests():
    # Most links of a page lead to pages already admitted: the spider asks the frontier before it makes each
    # request, and counts the refusal as the scheduler would have.
    crawler = make_crawler(IMDB_BASE_URL="http://imdb.test")
    spider = crawler.spider = crawler._create_spider(start="tt0133093", max_pages=3)
    frontier = Scheduler.from_crawler(crawler).frontier
    await deferred_from_coro(frontier.open(spider))
    frontier.fresh.add("tt0000005")  # stored lately (-a refresh_after)
    assert frontier.admit([spider.page_request("tt0133093", 0)]) == ["admitted"]
    page = "http://imdb.test/title/tt0133093/"
    response = HtmlResponse(page, body=b"", request=Request(page, meta={"imdb_id": "tt0133093", "depth": 0}))
    made = []
    for request in spider.link_requests(["tt0133093", "tt0000005", "tt0000001", "nm0000002", "tt0000001",
                                         "tt0000003", "bogus"], response):  # fmt: skip
        made.append(request.meta["imdb_id"])
        frontier.admit([request])  # as the scheduler does when the request reaches it
    assert made == ["tt0000001", "nm0000002"]
    stats = crawler.stats.get_stats()
    assert (stats["frontier/admitted"], stats["frontier/seen"], stats["frontier/fresh"]) == (3, 2, 1)
    assert stats["frontier/over_budget"] == 1
