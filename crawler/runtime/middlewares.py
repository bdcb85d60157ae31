"""Downloader middleware that keeps blocked and broken pages out of the data, and routes pages.

IMDb answers plain HTTP clients it distrusts with status 202, an empty body and
``x-amzn-waf-action: challenge``; Scrapy would take that 2xx for a page. Every
title or person response is checked before any parsing:

* each new page request takes the route the ``Router`` gives it (plain HTTP, or
  the browser once plain HTTP keeps being challenged: ``crawler.runtime.browser``);
  a browser response is judged as its final page answered (after any challenge);
* 429, and 503 with ``Retry-After``: nothing more is sent to that site before
  the time it asked (capped by ``RETRY_AFTER_MAX``), its concurrency is halved
  and climbs back one step at a time as pages pass, and the page is retried
  (``RATE_LIMIT_RETRY_TIMES``), not lost;
* a WAF challenge goes to the browser at once when the browser is on (plain
  retries cannot pass it); other blocked (403, 503, a captcha page) or broken
  (empty, no IMDb page data, e.g. a page that needs JavaScript) plain responses
  go to the browser at once when the router says so; otherwise they are retried
  with exponential back-off (``BLOCKED_RETRY_TIMES``, ``BLOCKED_BACKOFF_SECONDS``),
  then fetched with the browser when it is on;
* a page the site did send, but cut short (no closing ``</html>``) or too
  large to parse, is not a block: the spider counts it ``bad_page/truncated`` or
  ``bad_page/page_too_large``, and it does not weigh in the blocked ratio;
* what is still blocked is counted as ``imdb/blocked/<reason>`` and its page
  finished as ``blocked/<reason>``. When most pages of a run are blocked the
  crawl is closed with reason ``blocked`` and ``scrapy crawl`` exits with status 1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Never

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response

from crawler.parsing.pages import PageError, detect
from crawler.runtime.browser import Router, as_final, browser_meta
from crawler.runtime.config import crawl_config
from crawler.runtime.frontier import is_page
from crawler.runtime.judging import blocked_share
from crawler.runtime.verdict import fail_and_close

logger = logging.getLogger(__name__)

BLOCKING_STATUSES = {403: "forbidden", 429: "too_many_requests", 503: "unavailable"}


def retry_after(response: Response) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), else None."""
    value = (response.headers.get(b"Retry-After") or b"").decode("latin-1").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None


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
        if exc.reason in ("truncated", "page_too_large"):
            return None  # the site's own page, cut short or too large: a bad page for the spider, not a block
        return "no_page_data"
    except (AttributeError, UnicodeDecodeError):
        return "not_text"
    return None


class BlockedPageMiddleware:
    """Retries, renders in a browser, or counts and drops blocked title/person responses."""

    def __init__(self, crawler: Any) -> None:
        self.config = config = crawl_config(crawler)
        self.crawler = crawler
        self.stats = crawler.stats
        self.close_ratio = config.blocked_close_ratio
        self.close_min = config.blocked_close_min_pages
        self.router = Router.for_crawler(crawler)
        self.full_concurrency: dict[str, int] = {}  # slots whose concurrency was lowered → their concurrency before
        self.passed: dict[str, int] = {}
        self.closing = False
        self.close_task: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> BlockedPageMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        """The route of a new page request (retries and browser fallbacks keep theirs)."""
        if not is_page(request) or "playwright" in request.meta:
            return
        route = self.router.route(request)
        self.stats.inc_value(f"route/{route}")
        if route == "browser":
            request.meta.update(browser_meta(self.config.browser_page_timeout))

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if not is_page(request):
            return response  # robots.txt, sitemap: not pages
        browser = bool(request.meta.get("playwright"))
        if browser:
            response = as_final(response)
        reason = block_reason(response)
        if reason is None:
            if not browser:
                self.router.plain_passed(request)
            if self.full_concurrency:
                self.page_passed(request)
            return response
        self.stats.inc_value(f"imdb/block_seen/{reason}")
        if response.status == 429 or (response.status == 503 and retry_after(response) is not None):
            retry = self.rate_limited(request, response, reason)
            if retry is not None:
                return retry
        elif not browser:
            if self.router.plain_blocked(request, reason) or (reason == "waf_challenge" and self.config.browser):
                return self.to_browser(request, reason)  # a challenge is for browsers: retrying plain is waste
            retries = request.meta.get("retry_times", 0)
            retry = get_retry_request(
                request,
                spider=self.crawler.spider,
                reason=f"blocked:{reason}",
                max_retry_times=self.config.blocked_retry_times,
                stats_base_key="imdb/blocked_retry",
                give_up_log_level=logging.DEBUG,  # the outcome is logged below, once
            )
            if retry is not None:
                delay = min(self.config.blocked_backoff * 2**retries, self.config.blocked_backoff_max)
                if delay > 0:
                    await asyncio.sleep(delay)
                return retry
            if self.config.browser:
                return self.to_browser(request, reason)
        return self.blocked(request, reason)

    def process_exception(self, request: Request, exception: Exception) -> None:
        """A browser page that never became a page to parse (the challenge never passed, or the browser failed)."""
        if is_page(request) and request.meta.get("playwright") and type(exception).__name__ == "TimeoutError":
            self.blocked(request, "browser_timeout")

    def to_browser(self, request: Request, reason: str) -> Request:
        self.stats.inc_value("imdb/browser_fallback")
        self.stats.inc_value("route/browser")
        logger.debug("%s is %s: fetching it with the browser", request.url, reason)
        return request.replace(meta={**request.meta, **browser_meta(self.config.browser_page_timeout)},
                               dont_filter=True)  # fmt: skip

    def blocked(self, request: Request, reason: str) -> Never:
        self.stats.inc_value("imdb/blocked")
        self.stats.inc_value(f"imdb/blocked/{reason}")
        logger.warning("Blocked: %s (%s), not parsed", request.url, reason)
        self.maybe_close()
        raise PageBlocked(reason)

    def rate_limited(self, request: Request, response: Response, reason: str) -> Request | None:
        """Hold the site for as long as it asked, then ask again for this page; None when retries are spent."""
        wait = retry_after(response) or self.config.blocked_backoff or 1.0
        wait = min(wait, self.config.retry_after_max)
        self.pause(request, wait)
        self.stats.inc_value("imdb/rate_limited")
        return get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=f"rate_limited:{reason}",
            max_retry_times=self.config.rate_limit_retry_times,
            stats_base_key="imdb/rate_limited_retry",
            give_up_log_level=logging.DEBUG,
        )

    def slot_of(self, request: Request) -> tuple[str, Any]:
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        return key, downloader.slots.get(key)

    def pause(self, request: Request, wait: float) -> None:
        """Nothing sent through this request's download slot for ``wait`` seconds; its concurrency halved.

        The concurrency then climbs back by one each time as many pages as it
        allows have passed (additive increase, multiplicative decrease: the
        rate a site tolerates is found, not guessed).
        """
        downloader = self.crawler.engine.downloader
        if not hasattr(downloader, "hold"):
            logger.error("DOWNLOADER %s cannot hold a slot: Retry-After not honoured", type(downloader).__name__)
            return
        key, slot = self.slot_of(request)
        if slot is None:
            return
        if time.monotonic() >= downloader.held_until(key):  # a new rate limit, not one more answer of the current one
            self.full_concurrency.setdefault(key, slot.concurrency)
            slot.concurrency = max(1, slot.concurrency // 2)
            self.passed[key] = 0
            logger.warning(
                "%s asked to wait %.0fs (answering %s): holding its requests, then at most %d at a time",
                key, wait, request.url, slot.concurrency,
            )  # fmt: skip
        downloader.hold(request, wait)

    def page_passed(self, request: Request) -> None:
        """One more page the site answered: after a rate limit, the slot's concurrency climbs back step by step."""
        key, slot = self.slot_of(request)
        full = self.full_concurrency.get(key)
        if full is None or slot is None or time.monotonic() < self.crawler.engine.downloader.held_until(key):
            return
        self.passed[key] = self.passed.get(key, 0) + 1
        if self.passed[key] >= slot.concurrency:
            self.passed[key] = 0
            slot.concurrency += 1
            if slot.concurrency >= full:
                slot.concurrency = full
                del self.full_concurrency[key]

    def maybe_close(self) -> None:
        """Stop a run in which most pages are blocked: going on only digs the hole deeper."""
        # Pages are counted blocked here at once (imdb/blocked), and finished (pages/blocked/…) only when their
        # errback runs: those blocked and not finished yet are added to the finished ones.
        stats = self.stats.get_stats()
        blocked = stats.get("imdb/blocked", 0)
        finished_blocked = sum(value for key, value in stats.items() if key.startswith("pages/blocked/"))
        pages = stats.get("frontier/finished", 0) + max(0, blocked - finished_blocked)
        if self.closing or blocked < self.close_min or blocked_share(blocked, pages) < self.close_ratio:
            return
        self.closing = True
        logger.error(
            "%d of %d pages were blocked (%.0f%%): closing the crawl. Slow down (DOWNLOAD_DELAY, AUTOTHROTTLE_*), "
            "enable the browser (-s PLAYWRIGHT_ENABLED=true) or try later.",
            blocked, pages, 100 * blocked / pages,
        )  # fmt: skip
        self.close_task = fail_and_close(self.crawler, "blocked")
