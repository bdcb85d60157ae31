"""``SCHEDULER`` of a distributed run: the shared queue for the engine, leases kept alive, outages lived through.

What the engine schedules goes to a backlog, admitted and queued in Redis
in batches (``SharedQueue``). What it asks for is taken from Redis under
lease. A page this worker holds stays here when it comes back (a retry, the
browser fallback): its lease covers it until it is finished. Pages are
recorded finished only after the links they gave are in the shared queue, so
a worker that dies between the two leaves the page leased, to be fetched again.

Every ``REDIS_CHECK_SECONDS`` (``tick``: a second) the worker renews its
heartbeat when due, asks whether the run's frontier is still in Redis (a Redis restarted empty between
two calls raises no error: the client reconnects), and gives back to the queue
the leases of members whose heartbeat lapsed. A worker with nothing to do
stops after ``REDIS_IDLE_TIMEOUT`` seconds, and only once no other member
holds leased pages: those may come back to the queue if their worker dies.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from redis.exceptions import RedisError
from scrapy import signals
from scrapy.core.scheduler import BaseScheduler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Request
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.runtime.config import CrawlConfig, crawl_config
from crawler.runtime.distributed.group import RunGroup
from crawler.runtime.distributed.leases import FrontierLost
from crawler.runtime.distributed.outages import Outage
from crawler.runtime.distributed.queue import SharedQueue
from crawler.runtime.frontier import Frontier, RequestFilter, is_page, register_scheduler
from crawler.runtime.verdict import fail_and_close, fail_at_start
from crawler.storage.run import current_run
from crawler.storage.secrets import redact
from crawler.storage.signals import finish_pages, page_finished

logger = logging.getLogger(__name__)


class RedisScheduler(BaseScheduler):
    """The engine's scheduler in distributed mode (``REDIS_URL``)."""

    def __init__(self, crawler: Any, config: CrawlConfig, group: RunGroup) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = config
        self.group = group
        self.filter = RequestFilter.from_crawler(crawler)
        self.outage = Outage(config.redis_outage_timeout, config.redis_retry_seconds,
                             lambda: self.stop("redis_unavailable"), crawler.stats)  # fmt: skip
        self.batch = config.redis_batch
        self.backlog: list[Request] = []  # scheduled here, not yet admitted into Redis
        self.local: deque[Request] = deque()  # pages this worker holds, back for another try
        self.queue: SharedQueue | None = None
        self.frontier: Frontier | None = None
        self.unavailable = False  # never joined a run (Redis down at start)
        self.stopped: str | None = None  # the reason this worker stops early
        self.idle_since: float | None = None
        self.waiting = False  # said that other workers' leased pages are waited for
        self.starved = False  # the engine last asked for a request and found the shared queue empty
        self.handed: Request | None = None  # taken from Redis for the engine (wake), on its way back here
        self.loop: task.LoopingCall | None = None
        self.closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisScheduler:
        scheduler = cls(crawler, crawl_config(crawler), RunGroup.for_crawler(crawler))
        register_scheduler(crawler, scheduler)
        crawler.signals.connect(scheduler.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(scheduler.busy, signal=signals.request_scheduled)
        crawler.signals.connect(scheduler.busy, signal=signals.response_received)
        return scheduler

    def open(self, spider: Any) -> Any:
        try:
            group_id = self.group.join(current_run(self.crawler))
        except RedisError as exc:
            logger.error("Not crawling: Redis at %s is unreachable: %s", redact(self.config.redis_url), exc)
            self.unavailable = True
            fail_at_start(self.crawler, "redis_unavailable")
            return None
        self.queue = SharedQueue(self.group.client, self.group.keys, spider, self.config.base_url, self.stats)
        self.frontier = Frontier(self.crawler, self.queue)
        # After the frontier's own handler: the pages it was told of are recorded at once, their links first.
        self.crawler.signals.connect(self.pages_finished, signal=page_finished)
        logger.info("Worker of distributed run %s (job %r)", group_id, self.group.job)
        self.loop = task.LoopingCall(self.check)
        self.loop.start(self.config.redis_check_seconds, now=True)
        return deferred_from_coro(self.frontier.open(spider))

    def close(self, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.unavailable or self.frontier is None:
            return
        self.flush()
        if self.backlog:
            lost = [r.meta.get("imdb_id", "") for r in self.backlog if is_page(r)]
            logger.error("LOST %d requests that Redis never took (still unreachable)", len(self.backlog))
            finish_pages(self.crawler, lost, "lost/redis_unavailable")
        try:
            self.frontier.close(reason)
        except RedisError as exc:
            assert self.queue is not None
            logger.error("Redis unreachable at the end: %d finished pages not recorded as finished (%s); they stay "
                         "leased to this worker and are fetched again", len(self.queue.unsent), exc)  # fmt: skip

    # --- the queue ----------------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        if self.unavailable or self.queue is None:
            return False  # this worker never joined a run: nothing of it was admitted
        if request is self.handed or self.queue.holds(request):
            self.handed = None
            self.local.append(request)  # a retry or a browser fallback of a page leased here
            return True
        if not is_page(request) and not request.dont_filter and self.filter.request_seen(request):
            return False
        self.backlog.append(request)
        if len(self.backlog) >= self.batch:
            self.flush()
        return True

    def flush(self) -> None:
        """Admit and queue what waits, in batches, then record the finished pages; on a Redis error, keep both."""
        assert self.frontier is not None and self.queue is not None
        while self.outage.reachable():
            batch = self.backlog[: self.batch]
            try:
                if batch:
                    admitted = [is_page(r) and not r.dont_filter for r in batch]  # pages the frontier decides on
                    new = [r for r, page in zip(batch, admitted, strict=True) if page]
                    others = [r for r, page in zip(batch, admitted, strict=True) if not page]
                    if new:
                        self.frontier.admit(new)
                    if others:
                        self.queue.push(others)
                    del self.backlog[: self.batch]
                if not self.backlog:
                    self.frontier.flush()  # the links of these pages are in Redis: they may end
            except RedisError as exc:
                self.outage.failed(exc, len(self.backlog))
                return
            if self.outage.answered():
                self.tick()
            if not self.backlog:
                return

    def pages_finished(self, page_ids: list[str], outcome: str) -> None:
        if not self.stopped:
            self.flush()

    def next_request(self) -> Request | None:
        if self.local:
            return self.local.popleft()
        if self.unavailable or self.stopped or self.queue is None:
            return None
        self.flush()
        self.starved = True  # until a page is taken: no work, or Redis unreachable
        if not self.outage.reachable():
            return None
        try:
            request = self.queue.take()
        except RedisError as exc:
            self.outage.failed(exc, len(self.backlog))
            return None
        if self.outage.answered():
            self.tick()
        self.starved = request is None
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.local:
            return True
        if self.unavailable or self.stopped or self.queue is None:
            return False
        self.flush()
        if self.backlog or not self.outage.reachable():
            return True  # not idle: what waits here, or what Redis holds, is still to be fetched
        try:
            return len(self.queue) > 0
        except RedisError as exc:
            self.outage.failed(exc, len(self.backlog))
            return True

    def __len__(self) -> int:
        if self.queue is None:
            return len(self.local)
        try:
            queued = len(self.queue) if self.outage.reachable() else 0
        except RedisError:
            queued = 0
        return queued + len(self.backlog) + len(self.local)

    # --- once a second: heartbeat, frontier, peers, work for an idle engine ------------

    def check(self) -> None:
        """``tick``, then what the engine would otherwise learn only at its own 5-second heartbeat: pages queued
        by other workers since it found the shared queue empty (``wake``), or that an idle worker may stop."""
        self.tick()
        engine = self.crawler.engine
        if self.stopped or self.closing or not self.starved or engine is None or not self.outage.reachable():
            return
        self.wake()
        if self.starved and engine.spider_is_idle() and self.may_stop():
            self.closing = asyncio.ensure_future(engine.close_spider_async(reason="finished"))

    def tick(self) -> None:
        if self.stopped or self.queue is None or not self.outage.reachable():
            return
        try:
            self.group.leases.beat()
            self.group.leases.reclaim()
        except FrontierLost:
            logger.error("Redis lost the shared frontier of run %s (restarted without its data)", self.group.id)
            self.stop("frontier_lost")
        except RedisError as exc:
            self.outage.failed(exc, len(self.backlog))
        else:
            self.outage.answered()

    def wake(self) -> None:
        """Hand the engine a page when it found the shared queue empty and other workers have queued some since.

        The engine asks its scheduler for work when a download of its own ends, and otherwise every 5 seconds:
        a worker whose pages are all done while another worker's links fill the queue would sit idle that long.
        """
        engine = self.crawler.engine
        if engine.needs_backout():
            return
        request = self.handed = self.next_request()
        if request is not None:
            self.stats.inc_value("redis/woken")
            engine.crawl(request)  # scheduled back here, in this worker's hands already, then sent at once

    def spider_idle(self, spider: Any) -> None:
        """Stop after ``REDIS_IDLE_TIMEOUT`` seconds with nothing queued and no page leased to another member."""
        if not self.may_stop():
            raise DontCloseSpider

    def may_stop(self) -> bool:
        """The idle rule, asked when the engine is idle: by the engine (``spider_idle``), and by ``check``."""
        if self.unavailable or self.stopped or self.queue is None:
            return True
        now = asyncio.get_event_loop().time()
        try:
            self.flush()
            self.queue.release_held()  # nothing in progress here: the sitemaps this worker took are read
            waiting = self.group.leases.leased_elsewhere()
        except RedisError as exc:
            self.outage.failed(exc, len(self.backlog))
            return False
        if waiting:
            if not self.waiting:
                logger.info("Nothing queued; %d pages are leased to other workers: waiting for them", waiting)
            self.waiting = True
            self.idle_since = None  # they may give new links, or come back to the queue if their worker dies
            return False
        self.waiting = False
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.config.redis_idle_timeout:
            return False
        logger.info("The shared frontier stayed empty for %.0fs: this worker stops", now - self.idle_since)
        return True

    def busy(self, *args: Any, **kwargs: Any) -> None:
        self.idle_since = None

    def stop(self, reason: str) -> None:
        if self.stopped:
            return
        self.stopped = reason
        self.closing = fail_and_close(self.crawler, reason)
