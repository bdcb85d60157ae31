"""The browser route: when a page goes through Chromium, and how a browser page is taken.

IMDb answers plain HTTP clients it distrusts with a challenge (202,
``x-amzn-waf-action: challenge``); a browser gets a script that does some
work, sets a token cookie and reloads. The browser here is a visitor like any
other: it runs the site's script; the crawler never solves a challenge itself
and never copies a token out of the browser (Scrapy's own cookie jar never sees
it: the token is set on the reload, inside the browser context).

* ``Router`` decides the route of each new page request. After
  ``BROWSER_SWITCH_AFTER`` plain answers in a row that were challenges or
  blocks, new page requests go straight to the browser, without back-off; every
  ``BROWSER_PROBE_EVERY`` browser pages (or ``BROWSER_PROBE_SECONDS``), one plain
  request probes, and when it passes plain HTTP resumes. Each switch is logged
  once with its reason; stats per route (``route/http``, ``route/browser``).
  The route is taken again when a request is really sent (``BrowserHandler``):
  a page routed plain while the site still answered, then held in the
  downloader's queue by politeness delays, goes to the browser if the switch
  came meanwhile (``route/rerouted``); only probes go plain after a switch.
* ``browser_meta`` is what a browser request carries: wait until the page data
  is there (``__NEXT_DATA__``, the legacy layout's markers, or a final status of
  400 or more), after any challenge and reload, within ``BROWSER_PAGE_TIMEOUT``;
  then read the final navigation's status (the response Scrapy gets is the
  first one, the challenge's).
* ``BrowserHandler`` (scrapy-playwright's download handler) spreads browser pages
  over ``PLAYWRIGHT_MAX_CONTEXTS`` contexts and replaces a context after
  ``BROWSER_CONTEXT_PAGES`` pages, closing the old one once its last page is
  done. A new context's first page goes alone: it passes any challenge, and
  the context's other pages find the token cookie set. A page that served a
  document is kept open and navigated to the context's next page request
  (``BrowserHandler.download_document``): a new browser page costs Chromium a
  tab and a renderer process, more than the document it reads. Failed pages
  are closed at once; kept pages close with their context.

What the crawl process does per browser page is kept to what the page needs:
once a page's document answered with the page (not a challenge), everything
else it asks for is aborted before it runs (``BrowserHandler.document_only``),
and the page is read from that document's response, then stopped and kept
(``BrowserHandler._download_request_with_page``); a challenge page keeps what
it needs, from any host, less images, fonts, media and style sheets. Every
request a page makes is routed through Python, so each costs round trips to
the browser: Chromium runs without Blink's preload scanner
(``crawler.runtime.addons.chromium_args``), so a page asks only for what its
parser reaches before it is stopped, not for every script and image of its
document at once. Only the
page's own request takes Scrapy's headers (``page_headers``); the others keep
the browser's, and the crawl's ``USER_AGENT`` is the context's, so every
request says the same. scrapy-playwright's per-request debug logging (two more
round trips a request) is attached only when the crawl logs at DEBUG.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse
from weakref import WeakKeyDictionary

from playwright.async_api import Error as PlaywrightError
from scrapy.http import Headers, HtmlResponse, Request, Response
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler
from scrapy_playwright.page import PageMethod

from crawler.runtime.config import crawl_config
from crawler.runtime.frontier import is_page

logger = logging.getLogger(__name__)

# The page data: the current layout's __NEXT_DATA__ script, or one of the legacy layout's blocks (ids, a class).
# READY looks for them in the DOM, has_page_data in a document's bytes.
LEGACY_IDS = ("title-overview-widget", "overview-top", "name-overview-widget", "filmography")
LEGACY_CLASS = "title_wrapper"
LEGACY_MARKERS = ", ".join([*(f"#{name}" for name in LEGACY_IDS), f".{LEGACY_CLASS}"])
# True once the page is one to parse, or a final error page, and its HTML is all parsed (a marker near the top
# of a page that is still arriving must not let a half page through): never on a challenge page, even after
# its reload.
READY = (
    "() => document.readyState !== 'loading' && (!!document.getElementById('__NEXT_DATA__') || "
    f"!!document.querySelector('{LEGACY_MARKERS}') || "
    "(performance.getEntriesByType('navigation')[0]?.responseStatus || 0) >= 400)"
)
FINAL_STATUS = "() => performance.getEntriesByType('navigation')[0]?.responseStatus || 0"
# In a document's bytes: the page data READY waits for (a shell that scripts fill has none of it yet). Looked
# for as literals, the current layout's first: a regular expression of these alternatives tried every offset of
# pages of up to 2 MB, whose __NEXT_DATA__ is near the end (4 % of the crawl process's CPU).
PAGE_DATA = tuple(marker.encode() for marker in ('id="__NEXT_DATA__"', *(f'id="{name}"' for name in LEGACY_IDS),
                                                  f'class="{LEGACY_CLASS}"'))  # fmt: skip


def has_page_data(body: bytes) -> bool:
    """Whether a document holds the page data READY waits for (else it is a shell that its scripts fill)."""
    return any(marker in body for marker in PAGE_DATA)


def browser_meta(timeout_seconds: float) -> dict[str, Any]:
    """Meta of a page request through the browser (added just before it is downloaded: not queued as JSON)."""
    return {
        "playwright": True,
        "playwright_page_goto_kwargs": {"wait_until": "commit"},
        "playwright_page_methods": [
            PageMethod("wait_for_function", READY, timeout=timeout_seconds * 1000, polling=100),
            PageMethod("evaluate", FINAL_STATUS),
        ],
    }


def page_headers(*, browser_type_name: str, playwright_request: Any, scrapy_request_data: dict) -> Any:
    """``PLAYWRIGHT_PROCESS_REQUEST_HEADERS``: Scrapy's headers for the page itself, none for what it loads.

    None leaves a sub-request as the browser sends it (scrapy-playwright's
    default asks the browser for every request's headers first: a round trip
    each, dozens a page). Their User-Agent is the crawl's all the same: it is
    the context's (``BrowserHandler``). The page's own request takes what
    scrapy-playwright's ``use_scrapy_headers`` gives it (Scrapy's headers, the
    browser's User-Agent and Referer where Scrapy has none), read from the
    headers the browser announced with the request instead of asked for: one
    round trip a page less.
    """
    if not playwright_request.is_navigation_request():
        return None
    headers = scrapy_request_data["headers"].to_unicode_dict()
    announced = playwright_request.headers
    for name in ("user-agent", "referer"):
        if announced.get(name) and name not in headers:  # Scrapy's Headers: names in any case
            headers[name] = announced[name]
    if browser_type_name == "firefox":  # as use_scrapy_headers: Firefox fails without it (NS_ERROR_NET_RESET)
        headers["host"] = urlparse(playwright_request.url).netloc
    return headers


def final_status(response: Response) -> int:
    """The status of the browser page's last navigation (after a challenge's reload), else the response's."""
    methods = response.meta.get("playwright_page_methods") or []
    status = methods[-1].result if methods and isinstance(methods[-1], PageMethod) else None
    return status if isinstance(status, int) and status > 0 else response.status


def as_final(response: Response) -> Response:
    """A browser response as the final page answered it: its status, without the first answer's challenge header."""
    status = final_status(response)
    if status == response.status:
        return response
    headers = response.headers.copy()
    headers.pop(b"x-amzn-waf-action", None)
    return response.replace(status=status, headers=headers)


def is_the_page(document: Any) -> bool:
    """Whether a browser page's document (a Playwright response) is the page itself: 200, not a challenge."""
    return bool(document.status == 200 and "x-amzn-waf-action" not in document.headers)


def is_final_document(response: Any) -> bool:
    """Whether a Playwright response is a page's final document: its main frame's, the page itself or an error."""
    request = response.request
    return bool(request.is_navigation_request() and response.frame.parent_frame is None
                and (is_the_page(response) or response.status >= 400))  # fmt: skip


_ROUTERS: WeakKeyDictionary[Any, Router] = WeakKeyDictionary()


class Router:
    """Plain HTTP or the browser, for each new page request; switches on evidence, probes to switch back."""

    @classmethod
    def for_crawler(cls, crawler: Any) -> Router:
        """The crawl's one router, for the blocked-page middleware and the download handler."""
        router = _ROUTERS.get(crawler)
        if router is None:
            config = crawl_config(crawler)
            router = _ROUTERS[crawler] = cls(crawler, config.browser_switch_after, config.browser_probe_every,
                                             config.browser_probe_seconds, enabled=config.browser)  # fmt: skip
        return router

    def __init__(self, crawler: Any, switch_after: int, probe_every: int, probe_seconds: float, enabled: bool) -> None:
        self.stats = crawler.stats
        self.enabled = enabled
        self.switch_after = switch_after
        self.probe_every = probe_every
        self.probe_seconds = probe_seconds
        self.browser = False
        self.blocked_in_a_row = 0
        self.since_probe = 0
        self.last_probe = 0.0
        self.probing = False

    def route(self, request: Request) -> str:
        """``browser`` or ``http`` for a new page request (marks the probes)."""
        if not (self.enabled and self.browser):
            return "http"
        due = self.since_probe >= self.probe_every or time.monotonic() - self.last_probe >= self.probe_seconds
        if due and not self.probing:
            self.probing = True
            self.since_probe = 0
            self.last_probe = time.monotonic()
            request.meta["route_probe"] = True
            self.stats.inc_value("route/probes")
            return "http"
        self.since_probe += 1
        return "browser"

    def reroute(self, request: Request) -> bool:
        """At sending time: whether a page routed plain must go to the browser now (the switch came since)."""
        if not (self.enabled and self.browser) or request.meta.get("route_probe") or "playwright" in request.meta:
            return False
        self.since_probe += 1
        self.stats.inc_value("route/http", -1)
        self.stats.inc_value("route/browser")
        self.stats.inc_value("route/rerouted")
        return True

    def plain_passed(self, request: Request) -> None:
        self.blocked_in_a_row = 0
        if request.meta.get("route_probe"):
            self.probing = False
            if self.browser:
                self.browser = False
                self.stats.inc_value("route/switches/http")
                logger.warning("Plain HTTP passes again (a probe got %s): new pages go by plain HTTP", request.url)

    def plain_blocked(self, request: Request, reason: str) -> bool:
        """A plain answer was a challenge or a block; whether the page should go to the browser now."""
        if request.meta.get("route_probe"):
            self.probing = False
        self.blocked_in_a_row += 1
        if self.enabled and not self.browser and self.blocked_in_a_row >= self.switch_after:
            self.browser = True
            self.last_probe = time.monotonic()
            self.since_probe = 0
            self.stats.inc_value("route/switches/browser")
            logger.warning(
                "%d plain answers in a row were blocked (last: %s): new pages go through the browser, "
                "with a plain probe every %d pages or %.0fs",
                self.blocked_in_a_row, reason, self.probe_every, self.probe_seconds,
            )  # fmt: skip
        return self.enabled and self.browser


class BrowserHandler(ScrapyPlaywrightDownloadHandler):
    """scrapy-playwright's handler, with browser pages spread over contexts that are replaced after N pages."""

    abort_request: Callable[[Any], Any] | None  # PLAYWRIGHT_ABORT_REQUEST: document_only, around the setting's rule

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.slots = max(1, settings.getint("PLAYWRIGHT_MAX_CONTEXTS") or 1)
        self.pages_per_context = crawl_config(crawler).browser_context_pages
        self.page_timeout = crawl_config(crawler).browser_page_timeout
        self.document_only_on = crawl_config(crawler).browser_document_only
        self.router = Router.for_crawler(crawler)
        self.assigned = 0
        self.served: dict[str, int] = {}
        self.warm: set[str] = set()
        self.warming: dict[str, asyncio.Lock] = {}
        # context → its pages waiting for a document (None: one more may be opened)
        self.page_slots: dict[str, asyncio.LifoQueue[Any]] = {}
        self.page_requests: WeakKeyDictionary[Any, Request] = WeakKeyDictionary()  # page → the request it serves
        self.context_kwargs = {"user_agent": settings.get("USER_AGENT")}
        # scrapy-playwright logs every request and response of a page at DEBUG, asking the browser for a header
        # of each first: attached whenever its logger lets DEBUG through, which Scrapy's LOG_LEVEL does not stop.
        logging.getLogger("scrapy-playwright").setLevel(settings.get("LOG_LEVEL") or logging.DEBUG)
        # Every request a page makes passes the route hook: counted there (browser/requests/<resource type>),
        # instead of through page events (see _create_page); and decided there (document_only).
        self.configured_rule = self.abort_request
        self.navigations: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()  # page → its main-frame navigation
        self.only_document: WeakKeyDictionary[Any, bool] = WeakKeyDictionary()  # page → decided for that navigation
        self.abort_request = self.document_only

    async def document_only(self, playwright_request: Any) -> bool:
        """``PLAYWRIGHT_ABORT_REQUEST``: whether a request a page makes is aborted.

        A page whose document answered 200 without a challenge needs nothing
        else: its page data is in the document. Its scripts, XHR and fetch
        calls, style sheets, images, fonts and media are aborted before they
        reach the network or run (``browser/aborted_after_document``). A
        challenge page (202, ``x-amzn-waf-action``) keeps everything it asks
        for, from any host: its script and its verify call, wherever they come
        from; after its reload, the page's new document is judged again. A
        token that expires mid-run is so earned again in that context. The
        navigation's answer is asked once a page (one round trip), when its
        first sub-request comes. ``BROWSER_DOCUMENT_ONLY = False`` lets every page
        load what it asks for, less what ``PLAYWRIGHT_ABORT_REQUEST`` aborts (for a
        site whose pages need their scripts to show their data).
        """
        self.stats.inc_value(f"browser/requests/{playwright_request.resource_type}")
        if not self.document_only_on:
            return await self.setting_rule(playwright_request)
        frame = playwright_request.frame
        page = frame.page
        if playwright_request.is_navigation_request():
            if frame.parent_frame is None:  # the page's own document (a reload after a challenge too)
                self.navigations[page] = playwright_request
                self.only_document.pop(page, None)
            return False
        only = self.only_document.get(page)
        if only is None:
            navigation = self.navigations.get(page)
            response = await navigation.response() if navigation is not None else None
            only = self.only_document[page] = response is not None and is_the_page(response)
        if only:
            self.stats.inc_value("browser/aborted_after_document")
            return True
        return await self.setting_rule(playwright_request)

    async def _download_request_with_page(self, request: Request, page: Any, spider: Any) -> Response:
        """A page read from its final document's response (document only).

        scrapy-playwright waits for the page methods (the page data shown), then
        serializes the DOM (``page.content()``): on pages as large as IMDb's, the
        browser's parse and that serialization took half of a page's time. Here
        the page is the first document of its main frame that is the page (200,
        not a challenge) or an error (400 or more): the goto's own, or the one
        after a challenge's reload. Its body is the page, byte for byte as plain
        HTTP gets it: read, and the browser page stopped and kept for the next
        (``download_document``). A document that holds no page data (a shell its
        scripts fill) is let run until READY and taken from the DOM, and its
        page closed. Other requests, and every page when
        ``BROWSER_DOCUMENT_ONLY`` is off, take scrapy-playwright's way.
        """
        if not self.reads_document(request):
            return await super()._download_request_with_page(request, page, spider)
        started = time.monotonic()
        timeout = self.page_timeout * 1000
        reusable = False
        try:
            async with page.expect_event("response", predicate=is_final_document, timeout=timeout) as final:
                await page.goto(request.url, **(request.meta.get("playwright_page_goto_kwargs") or {}))
            document = await final.value
            if is_the_page(document):  # what the page asks for from now on is aborted without a round trip
                self.only_document[page] = True
            body = await document.body()
            headers = Headers(document.headers)  # as the browser got them (cookies aside: the browser keeps them)
            encoding = None
            if document.status == 200 and not has_page_data(body):  # a shell: its scripts make the page
                await page.wait_for_function(READY, polling=100, timeout=timeout)
                body, encoding = (await page.content()).encode("utf-8"), "utf-8"
                self.stats.inc_value("browser/read_from_dom")
            # Requests the page made that still wait for their verdict would be let go when it closes: stopped.
            await page.evaluate("window.stop()")
            reusable = encoding is None  # a page whose scripts ran is not taken again
        finally:
            if not reusable:  # else it is kept (download_document)
                await page.close()
                self.stats.inc_value("playwright/page_count/closed")
        headers.pop("Content-Encoding", None)  # the browser decoded the body
        request.meta["download_latency"] = time.monotonic() - started
        return HtmlResponse(url=document.url, status=document.status, headers=headers, body=body, request=request,
                            encoding=encoding, flags=["playwright"])  # fmt: skip

    async def download_document(self, request: Request) -> Response:
        """A page request, document only, in a page of its context that is kept open for the next one.

        Opening a browser page per request costs Chromium a renderer process and
        a tab each time (more CPU than reading the document); a page that served
        a document is stopped and kept, and the context's next page request
        navigates it (``browser/pages_reused``). Its one route (``route_page``) is
        set when it opens. A page that failed, or whose scripts ran (a shell read
        from the DOM), is closed. The context's pages close with it.
        """
        name = request.meta["playwright_context"]
        slots = self.page_slots.get(name)
        if slots is None:  # PLAYWRIGHT_MAX_PAGES_PER_CONTEXT pages at most: a request waits for one to be free
            slots = self.page_slots[name] = asyncio.LifoQueue()
            for _ in range(self.config.max_pages_per_context):
                slots.put_nowait(None)
        page = await slots.get()  # the page that served last, if any is free: LIFO, no page opened needlessly
        try:
            if page is not None and not page.is_closed():
                self.stats.inc_value("browser/pages_reused")
            else:  # none yet, or it crashed while it waited
                page = await self._create_page(request, self._crawler.spider)
                await page.route("**", self.route_page)
            self.page_requests[page] = request
            return await self._download_request_with_page(request, page, self._crawler.spider)
        finally:
            slots.put_nowait(page if page is not None and not page.is_closed() else None)

    async def route_page(self, route: Any, playwright_request: Any) -> None:
        """The route of a kept page: aborted (``document_only``), or sent; its own document with Scrapy's headers."""
        try:
            if await self.document_only(playwright_request):
                self.stats.inc_value("playwright/request_count/aborted")
                await route.abort()
                return
            frame = playwright_request.frame
            request = self.page_requests.get(frame.page)
            if request is None or not (playwright_request.is_navigation_request() and frame.parent_frame is None):
                await route.continue_()
                return
            headers = None
            if self.process_request_headers is not None:
                headers = self.process_request_headers(
                    browser_type_name=self.config.browser_type_name, playwright_request=playwright_request,
                    scrapy_request_data={"method": request.method, "url": request.url, "headers": request.headers,
                                         "body": request.body, "encoding": request.encoding},
                )  # fmt: skip
                headers = await headers if inspect.isawaitable(headers) else headers
            await route.continue_(headers=headers)
        except PlaywrightError:
            if not playwright_request.frame.page.is_closed():
                raise  # a page closed meanwhile (its context retired) has nothing left to route

    async def setting_rule(self, playwright_request: Any) -> bool:
        """``PLAYWRIGHT_ABORT_REQUEST`` as set (by default: images, fonts, media and style sheets)."""
        if self.configured_rule is None:
            return False
        verdict = self.configured_rule(playwright_request)
        return bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)

    async def _create_page(self, request: Request, spider: Any) -> Any:
        page = await super()._create_page(request, spider)
        # scrapy-playwright counts a page's requests and responses by listening to its events: the driver then
        # sends two more messages for each of the ~60 requests of a page, each handled in this process, whose
        # CPU is taken from Chromium on a small machine. The route hook counts them instead (__init__).
        page.remove_listener("request", self._increment_request_stats)
        page.remove_listener("response", self._increment_response_stats)
        return page

    def context_for_next_page(self) -> str:
        """Round robin over the slots; each slot's context is replaced after ``pages_per_context`` pages."""
        slot = self.assigned % self.slots
        generation = self.assigned // (self.slots * self.pages_per_context)
        self.assigned += 1
        return f"imdb-{slot}-{generation}"

    async def download_request(self, request: Request) -> Response:  # type: ignore[override]
        if is_page(request) and self.router.reroute(request):
            request.meta.update(browser_meta(self.page_timeout))
        if not request.meta.get("playwright"):
            return await super().download_request(request)
        name = request.meta["playwright_context"] = self.context_for_next_page()
        request.meta.setdefault("playwright_context_kwargs", self.context_kwargs)
        try:
            if name not in self.warm:
                # A new context has no token yet: its first page goes alone and passes any challenge for the rest.
                async with self.warming.setdefault(name, asyncio.Lock()):
                    if name not in self.warm:
                        response = await self.download_page(request)
                        if final_status(response) < 400:
                            self.warm.add(name)
                        return response
            return await self.download_page(request)
        finally:
            self.served[name] = self.served.get(name, 0) + 1
            await self.retire(name)

    def reads_document(self, request: Request) -> bool:
        """Whether a browser request is read from its document in a kept page (else: scrapy-playwright's way)."""
        return self.document_only_on and is_page(request) and request.method == "GET"

    async def download_page(self, request: Request) -> Response:
        if self.reads_document(request):
            return await self.download_document(request)
        return await super().download_request(request)

    async def retire(self, name: str) -> None:
        """Close a context once it has served its pages.

        A context is given ``pages_per_context`` requests (``context_for_next_page``)
        and each is counted served when it is done, its page closed or kept: once
        all are, none of its pages is in use.
        """
        wrapper = self.context_wrappers.get(name)
        if wrapper is None or self.served.get(name, 0) < self.pages_per_context:
            return
        self.page_slots.pop(name, None)
        self.served.pop(name, None)
        self.warm.discard(name)
        self.warming.pop(name, None)
        self.count_kept_pages_closed(wrapper)
        await wrapper.context.close()
        self.stats.inc_value("browser/contexts_retired")

    def count_kept_pages_closed(self, wrapper: Any) -> None:
        """The pages a context kept close with it: counted closed, as scrapy-playwright counts the pages it closes."""
        self.stats.inc_value("playwright/page_count/closed", len(wrapper.context.pages))

    async def _close(self) -> None:
        for wrapper in self.context_wrappers.values():  # closed by scrapy-playwright, with the browser
            self.count_kept_pages_closed(wrapper)
        await super()._close()
