"""Whole crawls of the demo site into a real MongoDB wire server, in this process; asserted on stats and documents."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from crawler.demo_site import DemoSite
from crawler.parsing.pages.current import CurrentTitlePage
from crawler.runtime.verdict import exit_status
from tests.conftest import FIXTURES, crawl, db_of, make_crawler, serving

# Every page the demo site serves, by kind (a page saved in both layouts is one page).
SITE_IDS = {kind: sorted({p.stem for p in FIXTURES.glob(f"*/{kind}*.html")}) for kind in ("tt", "nm")}


def stored(uri: str) -> tuple[list[str], list[str]]:
    db = db_of(uri)
    return sorted(db.titles.distinct("_id")), sorted(db.people.distinct("_id"))


@pytest_twisted.ensureDeferred
async def test_sitemap_crawl_stores_every_page_once_and_recrawl_adds_nothing(demo_site, mongo_uri, tmp_path: Path):
    first = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", depth=1, max_pages=120)
    stats = first.stats.get_stats()
    assert first.exit_status == 0 and stats["finish_reason"] == "finished"
    assert stored(mongo_uri) == (SITE_IDS["tt"], SITE_IDS["nm"])
    assert stats["pages/new"] == 30 and stats["pages/not_found"] > 0  # links to pages the site does not have
    assert stats["frontier/admitted"] == stats["frontier/finished"] == 120 == 30 + stats["pages/not_found"]
    assert stats["frontier/unfinished"] == 0 and stats["monitors/failed"] == 0

    db = db_of(mongo_uri)
    before = {d["_id"]: d for d in db.titles.find({}, {"last_changed": 1, "last_seen": 1, "first_seen": 1})}
    second = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", depth=0)
    again = second.stats.get_stats()
    assert second.exit_status == 0
    assert again["pages/unchanged"] == 30 and "pages/new" not in again
    after = {d["_id"]: d for d in db.titles.find({}, {"last_changed": 1, "last_seen": 1, "first_seen": 1})}
    for page_id, doc in after.items():
        assert doc["last_changed"] == before[page_id]["last_changed"]  # not rewritten
        assert doc["first_seen"] == before[page_id]["first_seen"]
        assert doc["last_seen"] > before[page_id]["last_seen"]  # but seen again
    runs = list(db.crawl_runs.find().sort("started", 1))
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[0]["items"]["new"] == 30 and runs[1]["items"]["unchanged"] == 30
    assert runs[1]["finish_reason"] == "finished" and runs[0]["not_found"] > 0


@pytest_twisted.ensureDeferred
async def test_legacy_layout_site(mongo_uri, tmp_path: Path):
    with DemoSite(FIXTURES, layout="legacy") as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, start="tt0133093", depth=0)
    assert crawler.stats.get_value("imdb/parsed/legacy") == 1
    doc = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert doc["layout"] == "legacy" and doc["votes"] == 1186228


@pytest_twisted.ensureDeferred
async def test_a_bug_in_a_page_method_is_not_a_bad_page(demo_site, mongo_uri, tmp_path: Path, monkeypatch, caplog):
    def broken(self):
        return self.d["no such key"]

    monkeypatch.setattr(CurrentTitlePage, "genres", broken)
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093,nm0000138", depth=0)
    stats = crawler.stats.get_stats()
    assert stats["imdb/parser_bug"] == 1 and stats["pages/parser_bug"] == 1 and stats["pages/new"] == 1
    assert stats["monitors/parser_bugs"] == "failed" and crawler.exit_status == 1
    bug = next(r for r in caplog.records if r.getMessage().startswith("Parser bug on"))
    assert bug.exc_info and bug.exc_info[0] is KeyError  # logged with its traceback


@pytest_twisted.ensureDeferred
async def test_bad_page_data_is_counted_under_its_reason(mongo_uri, tmp_path: Path):
    root = tmp_path / "site"
    (root / "current").mkdir(parents=True)
    page = (FIXTURES / "current" / "tt0133093.html").read_text(encoding="utf-8-sig")
    start = page.index(">", page.index('id="__NEXT_DATA__"')) + 1
    deep = page[:start] + "[" * 10_000 + "]" * 10_000 + page[page.index("</script>", start) :]
    (root / "current" / "tt0133093.html").write_text(deep)
    with DemoSite(root) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, start="tt0133093", depth=0)
    stats = crawler.stats.get_stats()
    assert stats["pages/bad_page/too_deep"] == 1 and stats["frontier/unfinished"] == 0
    assert crawler.exit_status == 1 and stats["monitors/items_stored"] == "failed"


@pytest_twisted.ensureDeferred
async def test_a_run_that_starts_nothing_fails(demo_site, mongo_uri, tmp_path: Path):
    nothing = await crawl(mongo_uri, demo_site.base_url, tmp_path)  # no seeds: a script forgot -a start
    assert nothing.stats.get_value("finish_reason") == "start_error" and nothing.exit_status == 1
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("tt0133093\n")
    crawler = make_crawler(IMDB_BASE_URL=demo_site.base_url, MONGODB_URI=mongo_uri,
                           MONGODB_SPOOL_DIR=str(tmp_path / "spool"))  # fmt: skip
    deferred = crawler.crawl(start_file=str(seeds))  # checked when the spider is made…
    seeds.write_bytes(b"\xff\xfe binary now")  # …and changed before the run reads it
    await deferred
    assert crawler.stats.get_value("finish_reason") == "start_error" and exit_status(crawler) == 1


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_another_id_is_stored_under_the_page_s_own_id(mongo_uri, tmp_path: Path):
    root = tmp_path / "site"
    (root / "current").mkdir(parents=True)
    # The site answers tt9999999 with The Matrix's page, as IMDb does for merged titles.
    (root / "current" / "tt9999999.html").write_bytes((FIXTURES / "current" / "tt0133093.html").read_bytes())
    with DemoSite(root) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, start="tt9999999", depth=0)
    stats = crawler.stats.get_stats()
    assert stats["pages/redirected"] == 1 and stats["pages/new"] == 1 and stats["frontier/unfinished"] == 0
    assert stored(mongo_uri) == (["tt0133093"], [])


@pytest.mark.parametrize(("sitemap", "said"), [("", "lists no title or name page (HTTP 200)"),
                                               (None, "lists no title or name page (HTTP 404)")])  # fmt: skip
@pytest_twisted.ensureDeferred
async def test_a_sitemap_missing_or_empty_is_one_line_and_exit_1(sitemap, said, mongo_uri, tmp_path: Path, caplog):
    root = tmp_path / "www"
    root.mkdir()
    if sitemap is not None:
        (root / "sitemap.txt").write_text(sitemap)
    with serving(root) as base_url:
        crawler = await crawl(mongo_uri, base_url, tmp_path, start="sitemap", settings={"ROBOTSTXT_OBEY": False})
    assert crawler.exit_status == 1 and crawler.stats.get_value("finish_reason") == "start_error"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "Cannot start" in r.getMessage()]
    assert len(errors) == 1 and said in errors[0]
