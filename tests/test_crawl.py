"""Whole crawls: the demo site over HTTP into a real MongoDB wire server."""

from __future__ import annotations

from pathlib import Path

from crawler.mongo import connect, database_name
from crawler.site import DemoSite
from tests.conftest import FIXTURES, run_crawl


def stored(uri: str) -> tuple[list[str], list[str]]:
    client = connect(uri)
    db = client[database_name(uri)]
    try:
        return sorted(db.titles.distinct("_id")), sorted(db.people.distinct("_id"))
    finally:
        client.close()


def test_sitemap_crawl_stores_every_page_once_and_recrawl_adds_nothing(demo_site, mongo_uri, tmp_path: Path) -> None:
    first = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap")
    assert first.returncode == 0, first.stderr[-3000:]
    titles, people = stored(mongo_uri)
    assert len(titles) == 25 and len(people) == 5
    assert "'mongodb/new': 30" in first.stderr
    assert "imdb/not_found" in first.stderr  # links to pages the site does not have

    client = connect(mongo_uri)
    db = client[database_name(mongo_uri)]
    before = {d["_id"]: d for d in db.titles.find({}, {"last_changed": 1, "last_seen": 1, "first_seen": 1})}

    second = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "'mongodb/unchanged': 30" in second.stderr and "'mongodb/new': 0" in second.stderr
    assert stored(mongo_uri) == (titles, people)
    after = {d["_id"]: d for d in db.titles.find({}, {"last_changed": 1, "last_seen": 1, "first_seen": 1})}
    for page_id, doc in after.items():
        assert doc["last_changed"] == before[page_id]["last_changed"]  # not rewritten
        assert doc["first_seen"] == before[page_id]["first_seen"]
        assert doc["last_seen"] > before[page_id]["last_seen"]  # but seen again
    runs = list(db.crawl_runs.find().sort("started", 1))
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[0]["items"]["new"] == 30 and runs[1]["items"]["unchanged"] == 30
    assert runs[1]["finish_reason"] == "finished" and runs[1]["not_found"] > 0
    client.close()


def test_seeded_crawl_follows_recommendations_and_cast(demo_site, mongo_uri, tmp_path: Path) -> None:
    result = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093,tt0095016,tt0076759")
    assert result.returncode == 0, result.stderr[-3000:]
    titles, people = stored(mongo_uri)
    # Seeds plus every fixture page reachable from them through recommendation,
    # cast and known-for links (the closure, worked out by hand from the pages).
    assert titles == ["tt0076759", "tt0088247", "tt0095016", "tt0133093", "tt1375666", "tt1853728"]
    assert people == ["nm0000138"]
    doc = connect(mongo_uri)[database_name(mongo_uri)].titles.find_one({"_id": "tt0133093"})
    assert doc["rating"] == 8.7 and doc["cast"][0]["characters"] == ["Neo"]


def test_depth_zero_and_page_budget(demo_site, mongo_uri, tmp_path: Path) -> None:
    result = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0")
    assert result.returncode == 0
    assert stored(mongo_uri) == (["tt0133093"], [])
    budget = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "max_pages=5")
    assert budget.returncode == 0
    assert "'response_received_count': 7" in budget.stderr  # robots.txt + sitemap + 5 pages
    assert "imdb/budget_exhausted" in budget.stderr


def test_legacy_layout_site(mongo_uri, tmp_path: Path) -> None:
    with DemoSite(FIXTURES, layout="legacy") as site:
        result = run_crawl(site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0")
    assert result.returncode == 0
    doc = connect(mongo_uri)[database_name(mongo_uri)].titles.find_one({"_id": "tt0133093"})
    assert doc["layout"] == "legacy" and doc["votes"] == 1186228


def test_bad_arguments_fail_clearly(demo_site, mongo_uri, tmp_path: Path) -> None:
    result = run_crawl(demo_site.base_url, mongo_uri, tmp_path)
    assert result.returncode != 0
    assert "give -a start=" in result.stderr
    bad_uri = run_crawl(demo_site.base_url, "http://nope", tmp_path, "-a", "start=tt0133093")
    assert bad_uri.returncode != 0 and "MONGODB_URI must start with mongodb://" in bad_uri.stderr
