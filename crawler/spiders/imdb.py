"""Spider ``imdb``: title and person pages, following recommendations and cast.

    scrapy crawl imdb -a start=tt0133093,tt0095016 [-a depth=2] [-a max_pages=500]
    scrapy crawl imdb -a start_file=ids.txt
    scrapy crawl imdb -a start=sitemap          # every page the site lists in /sitemap.txt

Parsing is done by ``crawler.pages``/``crawler.loaders``; this module only
decides what to request next. Every id is turned into its canonical URL on
``IMDB_BASE_URL`` so a page is fetched once however many links point at it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.items import PersonItem, TitleItem
from crawler.loaders import load_item
from crawler.pages import PageError, parse_page
from crawler.processors import imdb_id

_SPLIT = re.compile(r"[\s,]+")


def canonical_url(base_url: str, page_id: str) -> str:
    """``{base}/title/tt…/`` or ``{base}/name/nm…/``."""
    kind = "name" if page_id.startswith("nm") else "title"
    return f"{base_url.rstrip('/')}/{kind}/{page_id}/"


class ImdbSpider(scrapy.Spider):
    """Crawl IMDb title and person pages within a depth and a page budget."""

    name = "imdb"
    handle_httpstatus_list: ClassVar[list[int]] = [404]

    def __init__(
        self,
        start: str = "",
        start_file: str = "",
        depth: int | str = 2,
        max_pages: int | str = 1000,
        follow_cast: bool | str = True,
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
        self.scheduled: set[str] = set()

    @property
    def base_url(self) -> str:
        return self.settings.get("IMDB_BASE_URL").rstrip("/")

    # --- entry point ------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.start_arg.strip().lower() == "sitemap":
            yield scrapy.Request(f"{self.base_url}/sitemap.txt", callback=self.parse_sitemap, dont_filter=True)
            return
        for request in self.page_requests(self.seed_ids(), depth=0):
            yield request

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
            if not page_id or page_id in self.scheduled or page_id[:2] not in ("tt", "nm"):
                continue
            if len(self.scheduled) >= self.max_pages:
                self.crawler.stats.inc_value("imdb/budget_exhausted")
                return
            self.scheduled.add(page_id)
            yield self.page_request(page_id, depth)

    def page_request(self, page_id: str, depth: int) -> scrapy.Request:
        callback = self.parse_person if page_id.startswith("nm") else self.parse_title
        return scrapy.Request(
            canonical_url(self.base_url, page_id),
            callback=callback,
            errback=self.page_failed,
            meta={"depth": depth, "imdb_id": page_id},
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
            stats.inc_value("imdb/not_found")
            self.logger.debug("Not found: %s", response.url)
            return None
        try:
            item = load_item(parse_page(response.text, response.url))
        except (PageError, AttributeError, UnicodeDecodeError) as exc:
            stats.inc_value("imdb/parse_error")
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
        if failure.check(IgnoreRequest):
            return  # blocked pages are counted and logged by BlockedPageMiddleware
        self.crawler.stats.inc_value("imdb/failed")
        self.logger.error("Failed %s: %s", failure.request.url, failure.getErrorMessage())
