"""Downloader middleware that keeps blocked and broken pages out of the data.

IMDb answers plain HTTP clients it distrusts with status 202, an empty body and
``x-amzn-waf-action: challenge``; Scrapy would take that 2xx for a page. Every
title or person response is checked before any parsing:

* blocked (WAF challenge, 403, 429, 503, a captcha page) or broken (empty,
  truncated, no IMDb page data, e.g. a page that needs JavaScript) responses
  are retried with exponential back-off (``BLOCKED_RETRY_TIMES``,
  ``BLOCKED_BACKOFF_SECONDS``);
* when retries are spent and ``PLAYWRIGHT_ENABLED`` is on, the page is fetched
  once more through the browser (scrapy-playwright);
* otherwise it is counted as ``imdb/blocked`` (and ``imdb/blocked/<reason>``)
  and dropped. When most pages of a run are blocked the crawl is closed with
  reason ``blocked`` and ``scrapy crawl`` exits with status 1.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response

from crawler.parsing.pages import PageError, detect
from crawler.runtime.config import crawl_config

logger = logging.getLogger(__name__)

BLOCKING_STATUSES = {403: "forbidden", 429: "too_many_requests", 503: "unavailable"}


class PageBlocked(IgnoreRequest):
    """A page the site would not give us (after retries and the browser); ``reason`` says how it refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"blocked: {reason}")
        self.reason = reason


def block_reason(response: Response) -> str | None:
    """Why a title/person response cannot be parsed as a page, or None when it can."""
    if response.headers.get(b"x-amzn-waf-action"):
        return "waf_challenge"
    if response.status in BLOCKING_STATUSES:
        return BLOCKING_STATUSES[response.status]
    if response.status >= 500:
        return f"http_{response.status}"
    if response.status == 404:
        return None  # a real "not found": the spider counts it
    body = response.body
    if not body.strip():
        return "waf_challenge" if response.status == 202 else "empty_body"
    if len(body) < 50_000 and b"captcha" in body[:50_000].lower():
        return "captcha"
    try:
        detect(response.text, response.url)
    except PageError as exc:
        return "truncated" if exc.reason == "truncated" else "no_page_data"
    except (AttributeError, UnicodeDecodeError):
        return "not_text"
    return None


class BlockedPageMiddleware:
    """Retries, renders in a browser, or counts and drops blocked title/person responses."""

    def __init__(self, crawler: Any) -> None:
        config = crawl_config(crawler)
        self.crawler = crawler
        self.stats = crawler.stats
        self.retry_times = config.blocked_retry_times
        self.backoff = config.blocked_backoff
        self.backoff_max = config.blocked_backoff_max
        self.browser = config.browser
        self.close_ratio = config.blocked_close_ratio
        self.close_min = config.blocked_close_min_pages
        self.closing = False
        self.close_task: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> BlockedPageMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if "imdb_id" not in request.meta:
            return response  # robots.txt, sitemap: not pages
        reason = block_reason(response)
        if reason is None:
            return response
        self.stats.inc_value(f"imdb/block_seen/{reason}")
        retries = request.meta.get("retry_times", 0)
        if not request.meta.get("playwright"):
            retry = get_retry_request(
                request,
                spider=self.crawler.spider,
                reason=f"blocked:{reason}",
                max_retry_times=self.retry_times,
                stats_base_key="imdb/blocked_retry",
                give_up_log_level=logging.DEBUG,  # the outcome is logged below, once
            )
            if retry is not None:
                delay = min(self.backoff * 2**retries, self.backoff_max)
                if delay > 0:
                    await asyncio.sleep(delay)
                return retry
            if self.browser:
                self.stats.inc_value("imdb/browser_fallback")
                logger.info("%s is %s: fetching it with the browser", request.url, reason)
                return request.replace(meta={**request.meta, "playwright": True}, dont_filter=True)
        self.stats.inc_value("imdb/blocked")
        self.stats.inc_value(f"imdb/blocked/{reason}")
        logger.warning("Blocked: %s (%s), not parsed", request.url, reason)
        self.maybe_close()
        raise PageBlocked(reason)

    def maybe_close(self) -> None:
        """Stop a run in which most pages are blocked: going on only digs the hole deeper."""
        blocked = self.stats.get_value("imdb/blocked", 0)
        pages = (
            blocked
            + sum(self.stats.get_value(f"imdb/parsed/{layout}", 0) for layout in ("current", "legacy"))
            + self.stats.get_value("pages/not_found", 0)
        )
        if self.closing or blocked < self.close_min or blocked / pages < self.close_ratio:
            return
        self.closing = True
        self.stats.set_value("imdb/exit_status", 1)
        logger.error(
            "%d of %d pages were blocked (%.0f%%): closing the crawl. Slow down (DOWNLOAD_DELAY, AUTOTHROTTLE_*), "
            "enable the browser (-s PLAYWRIGHT_ENABLED=true) or try later.",
            blocked, pages, 100 * blocked / pages,
        )  # fmt: skip
        self.close_task = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason="blocked"))
