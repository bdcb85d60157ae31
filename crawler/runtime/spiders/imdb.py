"""Spider ``imdb``: title and person pages, following recommendations and cast.

    scrapy crawl imdb -a start=tt0133093,tt0095016 [-a depth=2] [-a max_pages=500]
    scrapy crawl imdb -a start_file=ids.txt
    scrapy crawl imdb -a start=sitemap          # every page the site lists in /sitemap.txt
    scrapy crawl imdb -a start=stale -a refresh_after=7d   # refresh the oldest documents
    scrapy crawl imdb -a start=datasets:DIR -a title_types=movie -a years=1990-2026 -a min_votes=1000
    scrapy crawl imdb -a start=changed:DIR -a min_change=5%   # titles whose votes or rating moved
    scrapy parse --spider imdb https://www.imdb.com/title/tt0133093/

Parsing is done by ``crawler.parsing``; whether a page is fetched is decided
by the frontier (``crawler.runtime.frontier``). This module only says which
pages to ask for and which parser reads them. Every id becomes its canonical
URL on ``IMDB_BASE_URL``, so a page is fetched once however many links point at it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Response

from crawler.parsing.drift import observe
from crawler.parsing.items import SCHEMA_VERSION, PersonItem, TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import PageError, kind_from_url, parse_page
from crawler.parsing.processors import imdb_id
from crawler.runtime.config import ConfigError, SpiderArgs, crawl_config, register_args
from crawler.runtime.datasets import DatasetError, Filters, Refresh, changed, remember, seeds
from crawler.runtime.frontier import frontier_of
from crawler.runtime.middlewares import PageBlocked
from crawler.runtime.verdict import report_failure
from crawler.storage.connection import MongoStore, StorageUnavailable
from crawler.storage.schema import SCHEMAS
from crawler.storage.signals import STORED, finish_pages, page_finished, pages_pending


def canonical_url(base_url: str, page_id: str) -> str:
    """``{base}/title/tt…/`` or ``{base}/name/nm…/``."""
    kind = "name" if page_id.startswith("nm") else "title"
    return f"{base_url.rstrip('/')}/{kind}/{page_id}/"


class ImdbSpider(scrapy.Spider):
    """Crawl IMDb title and person pages within a depth and a page budget."""

    name = "imdb"
    handle_httpstatus_list: ClassVar[list[int]] = [404]
    # The only methods a queued request (JOBDIR, the shared queue in Redis) may name as its callback or errback.
    queued_callbacks: ClassVar[frozenset[str]] = frozenset(
        {"parse", "parse_title", "parse_person", "parse_sitemap", "page_failed", "sitemap_failed"}
    )
    arguments = SpiderArgs.parse  # the crawl command checks them before starting

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.args = self.arguments(kwargs)
        self.resumed: list[tuple[str, int]] = []
        self.refresh: Refresh | None = None  # start=changed:DIR: figures to record as pages are stored
        self.figures_lock = asyncio.Lock()
        self.recording: set[asyncio.Future[None]] = set()

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ImdbSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        register_args(crawler, spider.args)
        crawler.signals.connect(spider.pages_pending, signal=pages_pending)
        crawler.signals.connect(spider.page_finished, signal=page_finished)
        crawler.signals.connect(spider.record_figures, signal=signals.spider_closed)
        return spider

    @property
    def base_url(self) -> str:
        return crawl_config(self.crawler).base_url

    def pages_pending(self, pages: list[tuple[str, int]]) -> None:
        """Pages an interrupted run of this job admitted and never finished: fetched first."""
        self.resumed = pages

    # --- entry point ------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for page_id, depth in self.resumed:
            yield self.page_request(page_id, depth)
        self.resumed = []
        try:
            if not self.args.has_seeds:
                raise ConfigError(
                    "give -a start=tt…,nm… (or start=sitemap, stale, datasets:DIR, changed:DIR) or -a start_file=PATH"
                )
            if self.args.start == "sitemap":
                yield scrapy.Request(f"{self.base_url}/sitemap.txt", callback=self.parse_sitemap,
                                     errback=self.sitemap_failed, dont_filter=True)  # fmt: skip
            elif self.args.start == "stale":
                stale = await asyncio.to_thread(self.stale_ids)
                self.logger.info("Refreshing %d stale documents (oldest first)", len(stale))
                for page_id in stale:
                    yield self.page_request(page_id, 0)
            elif self.args.dataset is not None:
                async for request in self.dataset_requests(*self.args.dataset):
                    yield request
            for page_id in self.args.seed_ids():
                yield self.page_request(page_id, 0)
        except (ConfigError, StorageUnavailable, DatasetError) as exc:
            self.logger.error("Cannot start: %s", exc)
            report_failure(self.crawler.stats, "start_error")
            raise CloseSpider("start_error") from None

    async def dataset_requests(self, kind: str, directory: Path) -> AsyncIterator[scrapy.Request]:
        """Seeds from IMDb's dataset dumps (``crawler.runtime.datasets``; personal, non-commercial use)."""
        if kind == "datasets":
            filters = Filters(self.args.title_types, self.args.years, self.args.min_votes)
            count = 0
            for page_id in seeds(directory, filters):
                if self.crawler.stats.get_value("frontier/admitted", 0) >= self.args.max_pages:
                    break  # the page budget is spent: the rest of the dump is not read
                count += 1
                yield self.page_request(page_id, 0)
            if not count:
                raise DatasetError(f"no title of {directory} passes the filters: nothing to crawl")
            self.logger.info("%d titles of %s passed the filters and were offered to the frontier", count, directory)
            return
        db = await asyncio.to_thread(MongoStore.for_crawler(self.crawler).open)
        picked = await asyncio.to_thread(changed, directory, db, self.args.min_change, self.args.max_pages)
        self.refresh = Refresh(db, picked, directory)
        self.logger.info("%d stored titles changed by more than %.0f%% in %s: refreshing them, least recently "
                         "seen first", len(picked), 100 * self.args.min_change, directory)  # fmt: skip
        for page_id, _ in picked:
            yield self.page_request(page_id, 0)

    def page_finished(self, page_ids: list[str], outcome: str) -> None:
        if self.refresh is not None and outcome in STORED and self.refresh.pages_stored(page_ids):
            task = asyncio.ensure_future(self.record_figures())
            self.recording.add(task)
            task.add_done_callback(self.recording.discard)

    async def record_figures(self, reason: str | None = None) -> None:
        """Record in ``dataset_figures`` the dump's figures of the refreshed titles stored so far.

        Called for each batch, and once more when the spider closes (``reason``).
        """
        if self.refresh is None:
            return
        if reason is not None and self.refresh.waiting:
            self.logger.info("%d of the changed titles were not stored in this run: the next changed run picks "
                             "them again", len(self.refresh.waiting))  # fmt: skip
        async with self.figures_lock:
            batch = self.refresh.take()
            if not batch:
                return
            try:
                await asyncio.to_thread(remember, self.refresh.db, batch, self.refresh.source)
            except PyMongoError as exc:
                self.crawler.stats.inc_value("datasets/figures_not_recorded", len(batch))
                self.logger.warning("The dump's figures of %d stored titles were not recorded (%s): the next "
                                    "changed run may pick them again", len(batch), exc)  # fmt: skip

    def stale_ids(self) -> list[str]:
        """Up to ``max_pages`` ids to refresh: documents of an older schema version, then those seen longest ago.

        Documents written by an older ``schema_version`` come first whatever
        their age, so an upgrade is rolled out by the next ``start=stale`` runs.
        """
        assert self.args.refresh_after is not None
        db = MongoStore.for_crawler(self.crawler).open()
        cutoff = datetime.now(UTC) - self.args.refresh_after
        limit = self.args.max_pages
        found: list[tuple[int, datetime, str]] = []
        for collection in SCHEMAS:
            for rank, query in enumerate(({"schema_version": {"$lt": SCHEMA_VERSION}}, {"last_seen": {"$lt": cutoff}})):
                cursor = db[collection].find(query, {"last_seen": 1}).sort("last_seen", 1).limit(limit)
                found += [(rank, d["last_seen"], d["_id"]) for d in cursor]
        return list(dict.fromkeys(page_id for _, _, page_id in sorted(found)))[:limit]

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        listed = 0
        if response.status == 200:
            for token in response.text.split():
                page_id = imdb_id(token)
                if page_id and page_id[:2] in ("tt", "nm"):
                    listed += 1
                    yield self.page_request(page_id, 0, depth_reset=True)
        if not listed:
            self.cannot_start(f"the sitemap {response.url} lists no title or name page (HTTP {response.status})")

    def sitemap_failed(self, failure: Any) -> None:
        self.cannot_start(f"the sitemap {failure.request.url} could not be read: {failure.getErrorMessage()}")

    def cannot_start(self, why: str) -> None:
        self.logger.error("Cannot start: %s", why)
        report_failure(self.crawler.stats, "start_error")
        raise CloseSpider("start_error")

    # --- request builders -------------------------------------------------

    def page_request(self, page_id: str, depth: int, depth_reset: bool = False) -> scrapy.Request:
        """The request for one page; the frontier decides whether it is fetched."""
        callback = self.parse_person if page_id.startswith("nm") else self.parse_title
        meta: dict[str, Any] = {"imdb_id": page_id, "depth": depth}
        if depth_reset:
            meta["depth_reset"] = True  # a seed found on a listing page: depth 0 like any seed
        return scrapy.Request(
            canonical_url(self.base_url, page_id), callback=callback, errback=self.page_failed, meta=meta
        )

    def link_requests(self, ids: Iterable[str | None], response: Response) -> Iterator[scrapy.Request]:
        """Requests for a page's links; none for a page the frontier refuses already (``Frontier.refuses``)."""
        if response.meta.get("depth", 0) >= self.args.depth:
            return
        frontier = frontier_of(self.crawler)
        for raw in ids:
            page_id = imdb_id(raw)
            if page_id and page_id[:2] in ("tt", "nm") and not (frontier is not None and frontier.refuses(page_id)):
                yield self.page_request(page_id, response.meta.get("depth", 0) + 1)

    # --- callbacks ----------------------------------------------------------

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """Any title or name page (``scrapy parse URL``): the callback its kind needs."""
        if kind_from_url(response.url) == "person":
            yield from self.parse_person(response)
        else:
            yield from self.parse_title(response)

    def parse_title(self, response: Response) -> Iterator[Any]:
        item = self.parse_item(response)
        if isinstance(item, TitleItem):
            # Links first: once the item is stored the page counts as finished,
            # so its links must already be in the frontier (and its journal).
            links = list(item.recommendations)
            if self.args.follow_cast:
                links += [member["id"] for member in item.cast]
            yield from self.link_requests(links, response)
            yield item

    def parse_person(self, response: Response) -> Iterator[Any]:
        item = self.parse_item(response)
        if isinstance(item, PersonItem):
            yield from self.link_requests(item.known_for, response)
            yield item

    def parse_item(self, response: Response) -> TitleItem | PersonItem | None:
        """The page's item; None (the page finished under a named reason) when it has none."""
        requested = response.meta.get("imdb_id", "")
        stats = self.crawler.stats
        if response.status == 404:
            finish_pages(self.crawler, [requested], "not_found")
            self.logger.debug("Not found: %s", response.url)
            return None
        try:
            page = parse_page(response.text, response.url)
            item = load_item(page)
        except PageError as exc:
            finish_pages(self.crawler, [requested], f"bad_page/{exc.reason}")
            self.logger.warning("Could not parse %s: %s", response.url, exc)
            return None
        except Exception:
            # A bug of ours, not a bad page: counted, logged with its traceback, and the run fails its monitors.
            stats.inc_value("imdb/parser_bug")
            finish_pages(self.crawler, [requested], "parser_bug")
            self.logger.exception("Parser bug on %s", response.url)
            return None
        if requested and item.imdb_id != requested:
            # A redirect to another id (merged titles): stored under the page's own id.
            self.logger.info("%s answered with %s", requested, item.imdb_id)
            finish_pages(self.crawler, [requested], "redirected")
        item.fetched_via = "browser" if "playwright" in response.flags else "http"
        stats.inc_value(f"imdb/parsed/{item.layout}")
        stats.inc_value(f"imdb/fetched_via/{item.fetched_via}")
        group = f"drift/{page.layout}/{page.kind}"
        stats.inc_value(f"{group}/pages")
        for field, verdict in observe(page, item).items():
            stats.inc_value(f"{group}/{field}/{verdict}")
        return item

    def page_failed(self, failure: Any) -> None:
        page_id = failure.request.meta.get("imdb_id", "")
        if failure.check(PageBlocked):
            finish_pages(self.crawler, [page_id], f"blocked/{failure.value.reason}")
            return  # counted and logged by BlockedPageMiddleware
        if failure.check(IgnoreRequest):
            finish_pages(self.crawler, [page_id], "ignored")
            self.logger.info("Not fetched %s: %s", failure.request.url, failure.getErrorMessage())
            return
        finish_pages(self.crawler, [page_id], f"failed/{type(failure.value).__name__}")
        self.logger.error("Failed %s: %s", failure.request.url, failure.getErrorMessage())
