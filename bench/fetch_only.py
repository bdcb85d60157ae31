"""A Scrapy spider that fetches the demo site's pages and does nothing else: the baseline of ``bench/crawl.py``.

    scrapy runspider bench/fetch_only.py -a base=http://127.0.0.1:PORT -a pages=3000

It starts from the same sitemap as ``scrapy crawl imdb -a start=sitemap``, follows
every title and name link of each page (found with one regular expression over
the raw bytes: no decoding, no DOM, no JSON) and stops after ``pages`` pages. No
parsing, no items, no storage: what is left is Scrapy fetching real-sized pages
from this site with the same settings, the most any crawl of it can do.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.http import Response

LINK = re.compile(rb"/(title|name)/((?:tt|nm)\d{7,10})(?![0-9])")


class FetchOnly(scrapy.Spider):
    name = "fetch_only"

    def __init__(self, base: str, pages: str = "3000", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")
        self.pages = int(pages)
        self.fetched = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(f"{self.base}/sitemap.txt", callback=self.sitemap)

    def sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        for url in response.text.split():
            yield scrapy.Request(url)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        self.fetched += 1
        if self.fetched >= self.pages:
            raise CloseSpider("page_budget")
        for kind, page_id in dict.fromkeys(LINK.findall(response.body)):  # each link once a page
            yield scrapy.Request(f"{self.base}/{kind.decode()}/{page_id.decode()}/")
