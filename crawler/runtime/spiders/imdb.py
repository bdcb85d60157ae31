"""Spider ``imdb``: title and person pages, following recommendations and cast.

    scrapy crawl imdb -a start=tt0133093,tt0095016 [-a depth=2] [-a max_pages=500]
    scrapy crawl imdb -a start_file=ids.txt
    scrapy crawl imdb -a start=sitemap          # every page the site lists in /sitemap.txt
    scrapy crawl imdb -a start=stale -a refresh_after=7d   # refresh the oldest documents

Parsing is done by ``crawler.parsing.pages``/``crawler.parsing.loaders``; this module only
decides what to request next. Every id is turned into its canonical URL on
``IMDB_BASE_URL`` so a page is fetched once however many links point at it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from rbloom import Bloom
from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.parsing.items import SCHEMA_VERSION, PersonItem, TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import PageError, parse_page
from crawler.parsing.processors import imdb_id
from crawler.runtime.dupefilter import new_bloom
from crawler.runtime.frontier import Frontier
from crawler.storage.schema import SCHEMAS
from crawler.storage.store import MongoStore

_SPLIT = re.compile(r"[\s,]+")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` → timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"refresh_after must look like 7d, 12h, 30m or 90s, not {text!r}")
    return timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})


def canonical_url(base_url: str, page_id: str) -> str:
    """``{base}/title/tt…/`` or ``{base}/name/nm…/``."""
    kind = "name" if page_id.startswith("nm") else "title"
    return f"{base_url.rstrip('/')}/{kind}/{page_id}/"


class ImdbSpider(scrapy.Spider):
    """Crawl IMDb title and person pages within a depth and a page budget."""

    name = "imdb"
    frontier: Frontier  # built in from_crawler, from the crawl's settings
    handle_httpstatus_list: ClassVar[list[int]] = [404]

    def __init__(
        self,
        start: str = "",
        start_file: str = "",
        depth: int | str = 2,
        max_pages: int | str = 1000,
        follow_cast: bool | str = True,
        refresh_after: str = "",
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.start_arg = start
        self.start_file = start_file
        self.max_depth = int(depth)
        self.max_pages = int(max_pages)
        self.follow_cast = str(follow_cast).lower() not in ("0", "false", "no")
        if self.max_depth < 0 or self.max_pages < 1:
            raise ValueError("depth must be >= 0 and max_pages >= 1")
        if not start and not start_file:
            raise ValueError("give -a start=tt…,nm… (or start=sitemap) or -a start_file=PATH")
        self.refresh_after = parse_duration(refresh_after) if refresh_after else None
        if self.start_arg.strip().lower() == "stale" and self.refresh_after is None:
            self.refresh_after = timedelta(0)
        self.fresh: set[str] | Bloom = set()

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ImdbSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.frontier = Frontier(
            settings.get("JOBDIR") or None,
            capacity=settings.getint("SEEN_SET_CAPACITY"),
            error_rate=settings.getfloat("SEEN_SET_ERROR_RATE"),
        )
        crawler.signals.connect(spider.frontier.close, signal=signals.spider_closed)
        return spider

    @property
    def base_url(self) -> str:
        return self.settings.get("IMDB_BASE_URL").rstrip("/")

    # --- entry point ------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        pending = self.frontier.pending()
        if pending:
            # Resuming after a crash: what was scheduled but never stored is fetched again.
            self.logger.info("Resuming: %d pages were scheduled but not finished", len(pending))
            for page_id, depth in pending:
                yield self.page_request(page_id, depth, dont_filter=True)
            return
        if len(self.frontier):
            self.logger.info("Resuming: every scheduled page was finished; Scrapy's queue holds the rest")
            return
        if self.start_arg.strip().lower() == "stale":
            # Links found from stale pages are all followed: no fresh-id set to load.
            stale = await asyncio.to_thread(self.stale_ids)
            self.logger.info("Refreshing %d stale documents (oldest first)", len(stale))
            for request in self.page_requests(stale, depth=0):
                yield request
            return
        if self.refresh_after is not None:
            await asyncio.to_thread(self.load_fresh_ids)
        if self.start_arg.strip().lower() == "sitemap":
            yield scrapy.Request(f"{self.base_url}/sitemap.txt", callback=self.parse_sitemap, dont_filter=True)
            return
        for request in self.page_requests(self.seed_ids(), depth=0):
            yield request

    def load_fresh_ids(self) -> None:
        """Ids stored by this schema version more recently than ``refresh_after``: not fetched again.

        Held in a Bloom filter sized from their count (``SEEN_SET_ERROR_RATE``):
        ten million stored documents take ~36 MB instead of ~1 GB of Python
        strings. A false positive only leaves one page for a later refresh.
        """
        assert self.refresh_after is not None
        db = MongoStore.for_crawler(self.crawler).open()
        cutoff = datetime.now(UTC) - self.refresh_after
        query = {"last_seen": {"$gte": cutoff}, "schema_version": {"$gte": SCHEMA_VERSION}}
        expected = sum(db[collection].count_documents(query) for collection in SCHEMAS)
        # Room for documents written by other workers between the count and the read.
        fresh = new_bloom(max(1000, int(expected * 1.1)), self.settings.getfloat("SEEN_SET_ERROR_RATE"))
        loaded = 0
        for collection in SCHEMAS:
            for document in db[collection].find(query, {"_id": 1}).batch_size(10_000):
                fresh.add(document["_id"])
                loaded += 1
        self.fresh = fresh
        self.logger.info(
            "%d documents were seen in the last %s and will not be re-fetched (%.1f MB Bloom filter)",
            loaded,
            self.refresh_after,
            fresh.size_in_bits / 8 / 2**20,
        )

    def stale_ids(self) -> list[str]:
        """Up to ``max_pages`` ids to refresh: documents of an older schema version, then those seen longest ago.

        Documents written by an older ``schema_version`` come first whatever
        their age, so an upgrade is rolled out by the next ``start=stale`` runs.
        """
        assert self.refresh_after is not None
        db = MongoStore.for_crawler(self.crawler).open()
        cutoff = datetime.now(UTC) - self.refresh_after
        found: list[tuple[int, datetime, str]] = []
        for collection in SCHEMAS:
            for rank, query in enumerate(({"schema_version": {"$lt": SCHEMA_VERSION}}, {"last_seen": {"$lt": cutoff}})):
                cursor = db[collection].find(query, {"last_seen": 1}).sort("last_seen", 1).limit(self.max_pages)
                found += [(rank, d["last_seen"], d["_id"]) for d in cursor]
        return list(dict.fromkeys(page_id for _, _, page_id in sorted(found)))[: self.max_pages]

    def seed_ids(self) -> list[str]:
        """Ids from ``-a start`` and ``-a start_file`` (ids or URLs, one per line or comma-separated)."""
        tokens = _SPLIT.split(self.start_arg or "")
        if self.start_file:
            tokens += _SPLIT.split(Path(self.start_file).read_text(encoding="utf-8"))
        ids: list[str] = []
        bad: list[str] = []
        for token in filter(None, tokens):
            found = imdb_id(token)
            (ids if found and found[:2] in ("tt", "nm") else bad).append(found or token)
        if bad:
            self.logger.warning("Ignoring %d seeds that are not title or name ids: %s", len(bad), bad[:5])
        if not ids:
            raise ValueError("no title or name ids among the seeds")
        return ids

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        yield from self.page_requests(response.text.split(), depth=0)

    # --- request builders -------------------------------------------------

    def page_requests(self, ids: Iterable[str | None], depth: int) -> Iterator[scrapy.Request]:
        """One request per id not yet scheduled, within the page budget."""
        for raw in ids:
            page_id = imdb_id(raw)
            if not page_id or page_id in self.frontier or page_id[:2] not in ("tt", "nm"):
                continue
            if page_id in self.fresh:
                self.crawler.stats.inc_value("imdb/skipped_fresh")
                continue
            if len(self.frontier) >= self.max_pages:
                self.crawler.stats.inc_value("imdb/budget_exhausted")
                return
            self.frontier.schedule(page_id, depth)
            yield self.page_request(page_id, depth)

    def page_request(self, page_id: str, depth: int, dont_filter: bool = False) -> scrapy.Request:
        callback = self.parse_person if page_id.startswith("nm") else self.parse_title
        return scrapy.Request(
            canonical_url(self.base_url, page_id),
            callback=callback,
            errback=self.page_failed,
            meta={"depth": depth, "imdb_id": page_id},
            dont_filter=dont_filter,
        )

    # --- callbacks ----------------------------------------------------------

    def parse_title(self, response: Response) -> Iterator[Any]:
        item = self.parse_item(response)
        if isinstance(item, TitleItem):
            yield item
            if self.can_follow(response):
                links = list(item.recommendations)
                if self.follow_cast:
                    links += [member["id"] for member in item.cast]
                yield from self.page_requests(links, response.meta.get("depth", 0) + 1)

    def parse_person(self, response: Response) -> Iterator[Any]:
        item = self.parse_item(response)
        if isinstance(item, PersonItem):
            yield item
            if self.can_follow(response):
                yield from self.page_requests(item.known_for, response.meta.get("depth", 0) + 1)

    def parse_item(self, response: Response) -> TitleItem | PersonItem | None:
        stats = self.crawler.stats
        if response.status == 404:
            self.frontier.finish([response.meta.get("imdb_id", "")])
            stats.inc_value("imdb/not_found")
            self.logger.debug("Not found: %s", response.url)
            return None
        try:
            item = load_item(parse_page(response.text, response.url))
        except (PageError, AttributeError, UnicodeDecodeError) as exc:
            stats.inc_value("imdb/parse_error")
            self.frontier.finish([response.meta.get("imdb_id", "")])
            self.logger.warning("Could not parse %s: %s", response.url, exc)
            return None
        expected = response.meta.get("imdb_id")
        if expected and item.imdb_id != expected:
            # A redirect to another id (merged titles): store under the page's own id.
            self.logger.info("%s answered with %s", expected, item.imdb_id)
        stats.inc_value(f"imdb/parsed/{item.layout}")
        return item

    def can_follow(self, response: Response) -> bool:
        return response.meta.get("depth", 0) < self.max_depth

    def page_failed(self, failure: Any) -> None:
        self.frontier.finish([failure.request.meta.get("imdb_id", "")])
        if failure.check(IgnoreRequest):
            return  # blocked pages are counted and logged by BlockedPageMiddleware
        self.crawler.stats.inc_value("imdb/failed")
        self.logger.error("Failed %s: %s", failure.request.url, failure.getErrorMessage())
