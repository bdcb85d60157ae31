"""The site as it answers crawlers in 2026: a script challenge, rate limits, CloudFront 403s, layout drift.

The challenge tests run real Chromium through scrapy-playwright against the demo
site's ``challenge`` mode, and check what happened from the site's own request
log as well as from the crawler's stats.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest_twisted
from scrapy.http import Headers, HtmlResponse, Request
from scrapy.settings import Settings
from scrapy.statscollectors import StatsCollector

from crawler.demo_site import DemoSite
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.report import main as report_main
from crawler.runtime.browser import READY, Router, as_final, browser_meta, page_headers
from crawler.runtime.downloader import Downloader
from crawler.settings import USER_AGENT
from tests.conftest import FIXTURES, aio, crawl, db_of, extract, make_crawler
from tests.test_blocking import needs_chromium, titles_and_people

# The machine is offline: the pages' scripts from other hosts fail at once (on the real site they load). The
# challenge host (localhost) is one of the two hosts the browser reaches.
BROWSER = {"PLAYWRIGHT_ENABLED": True, "PLAYWRIGHT_MAX_CONTEXTS": 2, "BLOCKED_BACKOFF_SECONDS": 5,
           "BROWSER_ONLY_HOSTS": ["127.0.0.1", "localhost"]}  # fmt: skip
SWITCH_AFTER = 3
SEEDS = ",".join(sorted(p.stem for p in (FIXTURES / "current").glob("*.html"))[:10])  # ten current-layout pages
TOKEN_LIFETIME = 900  # seconds: longer than any run of the first challenge test, however loaded the machine


def answers(site: DemoSite, **match: Any) -> list[dict[str, Any]]:
    """The site's log of page requests, those matching ``match``."""
    return [r for r in site.modes.requests if all(r[key] == value for key, value in match.items())]


def blocked_keys(stats: dict[str, Any]) -> list[str]:
    return [key for key in stats if key.startswith(("imdb/blocked", "pages/blocked"))]


def challenges(site: DemoSite, browser: bool) -> int:
    return sum(1 for r in site.modes.requests if r["status"] == 202 and r["browser"] == browser)


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_challenge_site_is_crawled_through_the_browser(mongo_uri: str, tmp_path: Path):
    """Pages as heavy as IMDb's (scripts that burn CPU and call an API, a style sheet, an image) behind a challenge
    whose script and verify call come from another host: each context passes the challenge, running what it
    needs from that host; once a page's document is the page, nothing else it asks for is fetched, let alone run.
    """
    # Tokens outlast the run (expiry mid-run is the next test's): a token that expires while several of a
    # context's pages are in flight challenges each of them, which a run slowed past a shorter lifetime could.
    with DemoSite(FIXTURES, mode="challenge", challenge_cost=3, token_lifetime=TOKEN_LIFETIME, heavy=4,
                  burn_ms=50) as site:  # fmt: skip
        started = time.monotonic()
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=BROWSER, start="sitemap", depth=0)
        took = time.monotonic() - started
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 0 and titles_and_people(mongo_uri) == (25, 5)
    docs = [*db_of(mongo_uri).titles.find(), *db_of(mongo_uri).people.find()]
    assert {doc["fetched_via"] for doc in docs} == {"browser"} and stats["imdb/fetched_via/browser"] == 30
    assert not [doc for doc in docs if "Verifying" in (doc.get("title") or doc.get("name") or "")]
    # A challenge is for browsers: no plain retry, no back-off; plain requests were the first ones, sent
    # before any answer came back, and the probes.
    assert not blocked_keys(stats)
    assert challenges(site, browser=False) <= SWITCH_AFTER + 16 + stats.get("route/probes", 0)
    assert stats["route/switches/browser"] == 1
    # One challenge per browser context: the context's other pages carry its token. A context's first page that
    # fails (a timeout on a loaded machine) leaves it without one: its next page goes alone and is challenged
    # again (seen: 15 challenges for 2 contexts and 13 failed first pages, with a challenge too costly for the
    # page timeout).
    contexts, failed = stats["playwright/context_count"], stats.get("downloader/exception_count", 0)
    first = site.modes.requests[0]["t"]
    browser_log = [(round(r["t"] - first, 2), r["path"], r["status"]) for r in site.modes.requests if r["browser"]]
    assert took < TOKEN_LIFETIME and 1 <= challenges(site, browser=True) <= contexts + failed, (stats, browser_log)
    # A page that served a document is kept and navigated to its context's next page: no more pages opened than
    # are in flight at once (and those that failed); every page closed by the end.
    in_flight = crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
    opened, reused = stats["playwright/page_count"], stats.get("browser/pages_reused", 0)
    assert opened <= in_flight + failed and opened + reused >= 30 and reused > 0, stats
    assert stats["playwright/page_count"] == stats["playwright/page_count/closed"]
    # Every request of a page is counted by the route hook, none through page events (a message each).
    assert stats["browser/requests/document"] >= 30 and "playwright/request_count" not in stats
    # The browser says who it is as plain requests do, the challenge's reload included.
    assert {r["agent"] for r in site.modes.requests if r["browser"]} == {USER_AGENT}
    # Each challenge passed through the challenge host: its script loaded by the site's page, its verify call made
    # from the site's origin, one token bought for each browser challenge.
    calls = site.modes.challenge_calls
    assert {c["origin"] for c in calls if c["call"] == "verify"} == {site.base_url}
    assert len([c for c in calls if c["call"] == "verify" and c["ok"]]) == challenges(site, browser=True)
    assert 1 <= len([c for c in calls if c["call"] == "script"]) == challenges(site, browser=True)
    # Document only: no script, API call, style sheet or image of a page (4 scripts, a style sheet, an image each),
    # not even fetched; every page read from its document's bytes, none from the DOM. What the parser reached
    # before the page was stopped was asked for and aborted (without the preload scanner, not all six of a page).
    assert sum(site.assets.values()) == 0 and stats["browser/aborted_after_document"] >= 30, site.assets
    assert "browser/read_from_dom" not in stats


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_a_page_still_arriving_is_not_ready() -> None:
    """A legacy page's markers come long before its end over a real network: READY waits for the whole page.

    Each page stops halfway for a second (``trickle``), as a large page does on a slow link; what the
    browser shows once READY holds must be the whole page, its second half (cast, details) included.
    """
    from playwright.async_api import async_playwright

    from crawler.runtime.addons import CHROMIUM_ARGS, chromium_path

    async def shown_when_ready(site: DemoSite, paths: list[str]) -> list[dict[str, Any]]:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page, shown = await browser.new_page(), []
            for path in paths:
                await page.goto(site.base_url + path, wait_until="commit")
                await page.wait_for_function(READY, polling=100, timeout=30_000)
                shown.append(asdict(load_item(parse_page(await page.content()))))
            await browser.close()
        return shown

    paths = ["/title/tt0133093/", "/name/nm0000217/"]
    with DemoSite(FIXTURES, "legacy", trickle=1.0) as site:
        shown = await aio(shown_when_ready(site, paths))
        assert shown == [extract(site.pages[path.split("/")[2]]) for path in paths]


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_reading_documents_chromium_asks_only_for_what_its_parser_reaches() -> None:
    """With BROWSER_DOCUMENT_ONLY the crawl's Chromium runs without Blink's preload scanner.

    A page whose parser waits on its first script then asks for nothing further: with the scanner, every other
    script and image of the document is asked for at once, each only to be aborted through the route hook
    (~40 a page on IMDb-weight pages). With documents only off (the pages' scripts run) the scanner is left on.
    """
    from playwright.async_api import async_playwright

    from crawler.runtime.addons import PlaywrightAddon

    chunks = "".join(f"<script src='/chunk-{n}.js'></script>" for n in range(5))
    document = f"<html><head><script src='/first.js'></script>{chunks}</head><body><img src='/a.jpg'></body></html>"
    ahead = {f"/chunk-{n}.js" for n in range(5)} | {"/a.jpg"}

    async def asked_for(document_only: bool) -> set[str]:
        settings = Settings({"PLAYWRIGHT_ENABLED": True, "BROWSER_DOCUMENT_ONLY": document_only})
        PlaywrightAddon().update_settings(settings)
        asked: set[str] = set()
        first_asked, held = asyncio.Event(), []

        async def route(route: Any) -> None:
            path = urlsplit(route.request.url).path
            if path == "/page":
                return await route.fulfill(body=document, content_type="text/html")
            asked.add(path)
            if path == "/first.js":  # not answered yet: the parser waits on it
                held.append(route)
                first_asked.set()
                return
            await route.abort()

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(**settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
            page = await browser.new_page()
            await page.route("**", route)
            await page.goto("http://site.test/page", wait_until="commit")
            await asyncio.wait_for(first_asked.wait(), 30)
            # What a scanner asks for comes within milliseconds: a second without it is none; with it, all of it.
            deadline = time.monotonic() + (1 if document_only else 30)
            while time.monotonic() < deadline and not ahead <= asked:
                await asyncio.sleep(0.05)
            seen = set(asked)
            await held[0].abort()  # the rest is asked for now, and aborted
            await page.unroute_all(behavior="wait")
            await browser.close()
        return seen

    assert await aio(asked_for(document_only=True)) == {"/first.js"}
    assert await aio(asked_for(document_only=False)) >= ahead


def test_launch_options_given_on_the_command_line_are_completed_not_dropped() -> None:
    from crawler.runtime.addons import HANDLER, PlaywrightAddon

    settings = Settings({"PLAYWRIGHT_ENABLED": True, "BROWSER_DOCUMENT_ONLY": True})
    settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", '{"args": ["--headless", "--no-sandbox"]}', priority="cmdline")
    settings.set("DOWNLOAD_HANDLERS", '{"ftp": null}', priority="cmdline")
    PlaywrightAddon().update_settings(settings)
    launch = settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS")
    given = ["--headless", "--no-sandbox"]
    assert launch["executable_path"] and launch["args"] == [*given, "--blink-settings=doHtmlPreloadScanning=false"]
    assert settings.getdict("DOWNLOAD_HANDLERS") == {"ftp": None, "http": HANDLER, "https": HANDLER}


def test_chromium_command_line_keeps_given_blink_settings_and_adds_the_hosts_it_resolves() -> None:
    from crawler.runtime.addons import CHROMIUM_ARGS, chromium_args

    args = chromium_args(CHROMIUM_ARGS, document_only=True, only_hosts=["127.0.0.1", "localhost"])
    assert args == [*CHROMIUM_ARGS, "--blink-settings=doHtmlPreloadScanning=false",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]  # fmt: skip
    assert chromium_args(CHROMIUM_ARGS, document_only=False, only_hosts=[]) == CHROMIUM_ARGS
    # Chromium keeps the last --blink-settings only: one given is extended, or left as set.
    given = chromium_args(["--blink-settings=imagesEnabled=false"], document_only=True, only_hosts=[])
    assert given == ["--blink-settings=imagesEnabled=false,doHtmlPreloadScanning=false"]
    mine = ["--blink-settings=doHtmlPreloadScanning=true"]
    assert chromium_args(mine, document_only=True, only_hosts=[]) == mine


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_token_expiry_in_the_middle_of_a_run_loses_nothing(mongo_uri: str, tmp_path: Path):
    """One browser page, kept and navigated from page to page (the other requests in flight wait for it): when its
    token expires, the next page it is sent to is challenged, passes and is read."""
    settings = {**BROWSER, "PLAYWRIGHT_MAX_CONTEXTS": 1, "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": 1}
    with DemoSite(FIXTURES, mode="challenge", challenge_cost=2, token_lifetime=1) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start=SEEDS, depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 0 and stats["imdb/fetched_via/browser"] == len(SEEDS.split(","))
    # The one page was challenged more than once: tokens did expire mid-run, and a kept page earned a new one.
    assert stats["playwright/page_count"] == 1 and challenges(site, browser=True) > 1, stats
    assert stats["browser/pages_reused"] == stats["imdb/fetched_via/browser"] - 1
    assert not blocked_keys(stats)


class SendingLog(Downloader):
    """The crawl's downloader, noting when each request left its slot's queue and when each 429 was read."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.sent: list[tuple[str, float]] = []  # (path, when it left the queue)
        self.held: list[tuple[str, float]] = []  # (path of the 429's request, when the crawler held the site)

    def hold(self, request: Request, seconds: float) -> str | None:
        self.held.append((urlsplit(request.url).path, time.time()))
        return super().hold(request, seconds)

    def _process_queue(self, slot: Any) -> None:
        queued = [request for request, _ in slot.queue]
        super()._process_queue(slot)
        now = time.time()
        self.sent += [(urlsplit(request.url).path, now) for request in queued[: len(queued) - len(slot.queue)]]


def by_rank(log: list[dict[str, Any]], noted: list[tuple[str, float]], status: int | None = None) -> list[float]:
    """For each request of the site's log (those of ``status``), the time the crawler noted for it.

    A page is asked again only once its previous answer came back, so the n-th
    request the site saw for a path is the n-th the crawler noted for that path.
    """
    times: dict[str, list[float]] = {}
    for path, when in noted:
        times.setdefault(path, []).append(when)
    rank: Counter[str] = Counter()
    paired = []
    for entry in log:
        if status is None or entry["status"] == status:
            paired.append(times[entry["path"]][rank[entry["path"]]])
            rank[entry["path"]] += 1
    assert all(len(times[path]) == count for path, count in rank.items()), "the site and the crawler disagree"
    return paired


def early_requests(log: list[dict[str, Any]], sent: list[float], read: list[float]) -> list[tuple[float, float]]:
    """Requests sent after the crawler read a 429 that reached the site before the wait it asked was over.

    ``sent``: when the crawler sent each request of the site's log; ``read``: when
    it read each 429. A request sent before the crawler read the 429 (in flight,
    or sent while the crawler was still busy with other answers) is not early,
    however late the site saw it: no allowance for a loaded machine is needed.
    """
    early = []
    for limited, known in zip((r for r in log if r["status"] == 429), read, strict=True):
        end = limited["t"] + limited["retry_after"] - 0.02
        early += [(limited["t"], r["t"]) for r, left in zip(log, sent, strict=True) if left > known and r["t"] < end]
    return early


@pytest_twisted.ensureDeferred
async def test_retry_after_is_honoured_and_nothing_is_lost(mongo_uri: str, tmp_path: Path):
    settings = {"DOWNLOADER": f"{__name__}.SendingLog"}
    with DemoSite(FIXTURES, mode="ratelimit", rate_limit=4, retry_after=2) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 0 and titles_and_people(mongo_uri) == (25, 5)
    assert stats["imdb/rate_limited"] >= 10 and not [
        key for key in stats if key.startswith(("imdb/blocked", "pages/blocked"))
    ]
    log, downloader = site.modes.requests, crawler.engine.downloader
    sent, read = by_rank(log, downloader.sent), by_rank(log, downloader.held, status=429)
    assert early_requests(log, sent, read) == []
    statuses = Counter(r["status"] for r in site.modes.requests)
    assert statuses[200] == 30 and statuses[429] == stats["imdb/rate_limited"]


def test_early_requests_are_found() -> None:
    log = [{"t": 0.0, "status": 429, "retry_after": 2.0}, {"t": 0.1, "status": 429, "retry_after": 2.0},
           {"t": 1.0, "status": 200, "retry_after": None}, {"t": 1.5, "status": 200, "retry_after": None},
           {"t": 2.2, "status": 200, "retry_after": None}]  # fmt: skip
    # The first 200 was sent before the 429s were read (seen late by the site: not early); the second after.
    sent, read = [0.0, 0.05, 0.08, 0.5, 2.1], [0.3, 0.3]
    assert early_requests(log, sent, read) == [(0.0, 1.5), (0.1, 1.5)]


def test_requests_are_paired_with_their_sending_by_rank() -> None:
    log = [{"path": "/a", "status": 429}, {"path": "/b", "status": 200}, {"path": "/a", "status": 200}]
    noted = [("/a", 1.0), ("/b", 2.0), ("/robots.txt", 0.5), ("/a", 3.0)]
    assert by_rank(log, noted) == [1.0, 2.0, 3.0] and by_rank(log, [("/a", 1.5)], status=429) == [1.5]


@pytest_twisted.ensureDeferred
async def test_cloudfront_403_pages_are_counted_blocked(mongo_uri: str, tmp_path: Path):
    settings = {"BLOCKED_BACKOFF_SECONDS": 0}
    with DemoSite(FIXTURES, mode="cdn403", cdn403_share=1.0) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 1 and stats["finish_reason"] == "blocked"
    assert stats["pages/blocked/forbidden"] >= 20 and titles_and_people(mongo_uri) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_some_cloudfront_403_pages_are_retried_and_stored(mongo_uri: str, tmp_path: Path):
    settings = {"BLOCKED_BACKOFF_SECONDS": 0, "BLOCKED_RETRY_TIMES": 5}
    with DemoSite(FIXTURES, mode="cdn403", cdn403_share=0.3) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 0 and titles_and_people(mongo_uri) == (25, 5)
    assert stats["imdb/block_seen/forbidden"] == stats["imdb/blocked_retry/count"] > 0


@pytest_twisted.ensureDeferred
async def test_layout_drift_fails_the_run_naming_the_field(mongo_uri: str, tmp_path: Path):
    with DemoSite(FIXTURES, mode="drift") as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, start="sitemap", depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 1 and stats["monitors/layout_drift"] == "failed"
    assert titles_and_people(mongo_uri) == (25, 5)  # the fallbacks still found titles: only the sentinel saw it
    run = db_of(mongo_uri).crawl_runs.find_one()
    assert run["drift"]["current/title"]["fields"]["title"] == {"primary": 0, "fallback": 14, "missing": 0}
    verdict = next(m for m in run["monitors"] if m["monitor"] == "layout_drift")
    assert "current/title title fell back on 14 of 14 pages (titleText.text not found)" in verdict["message"]
    assert "current/title year: releaseYear.year vanished" in verdict["message"]
    failing = {m["monitor"] for m in run["monitors"] if not m["ok"]}
    assert failing == {"layout_drift"}  # before coverage collapses
    out = tmp_path / "report.html"
    assert report_main(["--uri", mongo_uri, "--out", str(out)]) == 0
    page = out.read_text()
    assert "Layout drift: " in page and "current/title title fell back on 14 of 14 pages" in page


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_with_document_only_off_a_heavy_pages_scripts_run(mongo_uri: str, tmp_path: Path):
    """BROWSER_DOCUMENT_ONLY = False (a site whose pages need their scripts): the scripts and their API calls
    run, style sheets and images not (PLAYWRIGHT_ABORT_REQUEST)."""
    settings = {**BROWSER, "BROWSER_DOCUMENT_ONLY": False}
    with DemoSite(FIXTURES, mode="challenge", challenge_cost=2, token_lifetime=TOKEN_LIFETIME, heavy=4,
                  burn_ms=50) as site:  # fmt: skip
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start=SEEDS, depth=0)
    stats = crawler.stats.get_stats()
    pages = len(SEEDS.split(","))
    assert crawler.exit_status == 0 and stats["imdb/fetched_via/browser"] == pages
    assert site.assets["script"] >= pages * 4 and site.assets["xhr"] >= pages * 4
    assert not site.assets["stylesheet"] and not site.assets["image"]
    assert "browser/aborted_after_document" not in stats


@needs_chromium
@pytest_twisted.ensureDeferred
async def test_pages_held_by_politeness_go_to_the_browser_once_the_site_challenges(mongo_uri: str, tmp_path: Path):
    """The route is taken again when a page is sent: those routed plain, then held in the downloader's queue by the
    delay between requests, go to the browser once the switch came; after it only probes go plain."""
    settings = {**BROWSER, "DOWNLOAD_DELAY": 0.3, "CONCURRENT_REQUESTS_PER_DOMAIN": 2, "BLOCKED_BACKOFF_SECONDS": 0}
    seeds = ",".join(sorted(p.stem for p in (FIXTURES / "current").glob("*.html"))[:16])
    with DemoSite(FIXTURES, mode="challenge", challenge_cost=2, token_lifetime=TOKEN_LIFETIME) as site:
        crawler = await crawl(mongo_uri, site.base_url, tmp_path, settings=settings, start=seeds, depth=0)
    stats = crawler.stats.get_stats()
    assert crawler.exit_status == 0 and stats["imdb/fetched_via/browser"] == len(seeds.split(","))
    assert stats["route/rerouted"] > 0 and stats["route/switches/browser"] == 1
    plain = challenges(site, browser=False)
    assert plain <= SWITCH_AFTER + 2 + stats.get("route/probes", 0), (plain, stats)  # 2: in flight at the switch


def test_router_switches_after_k_blocked_answers_and_back_when_a_probe_passes(caplog) -> None:
    crawler = make_crawler(PLAYWRIGHT_ENABLED=True)
    crawler.stats = StatsCollector(crawler)
    router = Router(crawler, switch_after=3, probe_every=4, probe_seconds=3600, enabled=True)
    requests = [Request(f"https://www.imdb.com/title/tt{n:07d}/") for n in range(20)]
    assert [router.route(r) for r in requests[:3]] == ["http"] * 3
    assert [router.plain_blocked(r, "waf_challenge") for r in requests[:3]] == [False, False, True]
    routes = [router.route(r) for r in requests[3:9]]
    assert routes == ["browser"] * 4 + ["http", "browser"]  # the fifth is a probe; one probe at a time
    probe = requests[7]
    assert probe.meta["route_probe"] and crawler.stats.get_value("route/probes") == 1
    router.plain_blocked(probe, "waf_challenge")  # the probe was challenged: still the browser
    assert [router.route(r) for r in requests[9:12]] == ["browser"] * 3
    assert router.route(requests[12]) == "http"  # the next probe
    router.plain_passed(requests[12])
    assert router.route(requests[13]) == "http" and crawler.stats.get_value("route/switches/http") == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("new pages go through the browser" in m for m in messages) == 1
    assert sum("Plain HTTP passes again" in m for m in messages) == 1


def test_a_page_routed_plain_before_the_switch_is_rerouted_when_it_is_sent() -> None:
    crawler = make_crawler(PLAYWRIGHT_ENABLED=True)
    crawler.stats = StatsCollector(crawler)
    router = Router(crawler, switch_after=1, probe_every=100, probe_seconds=3600, enabled=True)
    held, blocked = Request("https://www.imdb.com/title/tt0099999/"), Request("https://www.imdb.com/title/tt1/")
    assert router.route(held) == "http" and not router.reroute(held)  # no switch yet: sent plain
    router.plain_blocked(blocked, "waf_challenge")  # the switch, while `held` waited for its turn
    assert router.reroute(held) and crawler.stats.get_value("route/rerouted") == 1
    probe = Request("https://www.imdb.com/title/tt2/", meta={"route_probe": True})
    assert not router.reroute(probe)  # a probe stays plain
    assert not router.reroute(Request("https://www.imdb.com/title/tt3/", meta={"playwright": True}))


def test_router_never_routes_to_a_browser_that_is_off() -> None:
    crawler = make_crawler()
    crawler.stats = StatsCollector(crawler)
    router = Router(crawler, switch_after=1, probe_every=4, probe_seconds=60, enabled=False)
    request = Request("https://www.imdb.com/title/tt0133093/")
    assert router.plain_blocked(request, "forbidden") is False and router.route(request) == "http"


def test_only_the_page_itself_takes_scrapys_headers_without_asking_the_browser_for_its_own() -> None:
    class BrowserRequest:
        url = "https://www.imdb.com/title/tt0133093/"

        def __init__(self, navigation: bool) -> None:
            self.navigation = navigation
            self.headers = {"user-agent": "HeadlessChrome", "accept": "*/*", "referer": "https://www.imdb.com/"}

        def is_navigation_request(self) -> bool:
            return self.navigation

        async def all_headers(self) -> dict[str, str]:
            raise AssertionError("a round trip to the browser for headers it announced already")

    def headers_of(navigation: bool, browser: str = "chromium", **scrapy_headers: str) -> Any:
        scrapy_request = {"headers": Headers({"Accept-Language": "en", **scrapy_headers})}
        return page_headers(browser_type_name=browser, playwright_request=BrowserRequest(navigation),
                            scrapy_request_data=scrapy_request)  # fmt: skip

    assert headers_of(True, **{"User-Agent": USER_AGENT}) == {"User-Agent": USER_AGENT, "Accept-Language": "en",
                                                             "referer": "https://www.imdb.com/"}  # fmt: skip
    assert headers_of(True, Referer="https://www.imdb.com/chart/top/") == {
        "Accept-Language": "en", "Referer": "https://www.imdb.com/chart/top/", "user-agent": "HeadlessChrome"
    }  # Scrapy's own first, the browser's where Scrapy has none  # fmt: skip
    assert headers_of(True, "firefox")["host"] == "www.imdb.com"
    assert headers_of(False) is None  # left as the browser sends them: no round trip to ask for them


def test_a_browser_response_is_judged_by_its_final_status() -> None:
    request = Request("https://www.imdb.com/title/tt0133093/", meta=browser_meta(30))
    request.meta["playwright_page_methods"][-1].result = 200
    challenge = HtmlResponse(request.url, status=202, headers={"x-amzn-waf-action": "challenge"}, body=b"",
                             request=request)  # fmt: skip
    final = as_final(challenge)
    assert final.status == 200 and b"x-amzn-waf-action" not in final.headers
    request.meta["playwright_page_methods"][-1].result = None  # the page never ran its method
    assert as_final(challenge) is challenge
