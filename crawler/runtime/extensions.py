"""Crawl-level extensions: the run lock and progress reports.

``RunLock`` keeps two scheduled runs of the same job from overlapping: a
document in the ``locks`` collection, refreshed by a heartbeat, so the lock of
a crashed run expires after ``RUN_LOCK_TTL`` seconds. A run that finds the
lock held by a live run closes at once with reason ``locked`` and exit status 1.

``ProgressLog`` logs every ``PROGRESS_INTERVAL`` seconds: pages/min, items
stored, queue size and blocked pages.

``IdleShutdown`` (distributed mode) keeps an idle worker up while another one
may still be adding pages to the shared frontier, and lets it stop once the
frontier has stayed empty for ``REDIS_IDLE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from twisted.internet import task

from crawler.storage.store import MongoStore

logger = logging.getLogger(__name__)


class RunLock:
    """One running crawl per job name (``JOB_NAME``, default: the spider's name)."""

    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        if not settings.getbool("RUN_LOCK_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.store = MongoStore.for_crawler(crawler)
        self.ttl = settings.getfloat("RUN_LOCK_TTL", 120.0)
        self.job = settings.get("JOB_NAME") or ""
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = False
        self.heartbeat: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunLock:
        lock = cls(crawler)
        crawler.signals.connect(lock.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(lock.spider_closed, signal=signals.spider_closed)
        return lock

    async def spider_opened(self, spider: Any) -> None:
        self.job = self.job or spider.name
        acquired, holder = await asyncio.to_thread(self.acquire)
        if not acquired:
            self.crawler.stats.set_value("imdb/exit_status", 1)
            logger.error(
                "Job %r is already running (%s, last heartbeat %s): not starting a second run. "
                "A crashed run's lock expires %ds after its last heartbeat.",
                self.job, holder.get("owner"), holder.get("heartbeat"), self.ttl,
            )  # fmt: skip
            raise CloseSpider("locked")
        self.heartbeat = task.LoopingCall(self.beat)
        self.heartbeat.start(max(self.ttl / 4, 1.0), now=False)

    def acquire(self) -> tuple[bool, dict[str, Any]]:
        db = self.store.open()
        now = datetime.now(UTC)
        document = {"_id": self.job, "owner": self.owner, "heartbeat": now, "acquired": now}
        try:
            db.locks.insert_one(document)
        except DuplicateKeyError:
            expired = now - timedelta(seconds=self.ttl)
            taken = db.locks.find_one_and_update(
                {"_id": self.job, "heartbeat": {"$lt": expired}},
                {"$set": {"owner": self.owner, "heartbeat": now, "acquired": now}},
            )
            if taken is None:
                return False, db.locks.find_one({"_id": self.job}) or {}
            logger.warning("Took over the expired lock of job %r from %s", self.job, taken.get("owner"))
        self.held = True
        logger.info("Holding the run lock of job %r", self.job)
        return True, document

    def beat(self) -> Any:
        return asyncio.ensure_future(asyncio.to_thread(self._beat))

    def _beat(self) -> None:
        try:
            kept = self.store.open().locks.update_one(
                {"_id": self.job, "owner": self.owner}, {"$set": {"heartbeat": datetime.now(UTC)}}
            )
        except PyMongoError as exc:
            logger.warning("Run lock heartbeat failed (%s); retrying in %ds", exc, self.ttl / 4)
            return
        if kept.matched_count == 0:
            logger.error("Lost the run lock of job %r (expired and taken over)", self.job)

    async def spider_closed(self, spider: Any) -> None:
        if self.heartbeat is not None and self.heartbeat.running:
            self.heartbeat.stop()
        if self.held:
            await asyncio.to_thread(self.release)

    def release(self) -> None:
        try:
            self.store.open().locks.delete_one({"_id": self.job, "owner": self.owner})
            self.held = False
        except PyMongoError as exc:
            logger.warning("Could not release the run lock (it expires by itself): %s", exc)


class ProgressLog:
    """A progress line every ``PROGRESS_INTERVAL`` seconds."""

    def __init__(self, crawler: Any, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.loop: task.LoopingCall | None = None
        self.last_pages = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProgressLog:
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL", 60.0)
        if interval <= 0:
            raise NotConfigured
        progress = cls(crawler, interval)
        crawler.signals.connect(progress.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(progress.spider_closed, signal=signals.spider_closed)
        return progress

    def spider_opened(self, spider: Any) -> None:
        self.loop = task.LoopingCall(self.log)
        self.loop.start(self.interval, now=False)

    def log(self) -> None:
        stats = self.crawler.stats
        pages = stats.get_value("response_received_count", 0)
        rate = (pages - self.last_pages) * 60 / self.interval
        self.last_pages = pages
        slot = getattr(self.crawler.engine, "_slot", None)
        queued = len(slot.scheduler) if slot is not None and hasattr(slot.scheduler, "__len__") else "?"
        logger.info(
            "Progress: %d pages (%.0f pages/min), %d items stored, %s requests queued, %d blocked, %d not found",
            pages, rate, stats.get_value("item_scraped_count", 0), queued,
            stats.get_value("imdb/blocked", 0), stats.get_value("imdb/not_found", 0),
        )  # fmt: skip

    def spider_closed(self, spider: Any) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class IdleShutdown:
    """Stop a worker only after the shared frontier stayed empty for a while."""

    def __init__(self, crawler: Any, timeout: float) -> None:
        self.crawler = crawler
        self.timeout = timeout
        self.idle_since: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> IdleShutdown:
        extension = cls(crawler, crawler.settings.getfloat("REDIS_IDLE_TIMEOUT", 15.0))
        crawler.signals.connect(extension.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(extension.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(extension.request_scheduled, signal=signals.response_received)
        return extension

    def request_scheduled(self, *args: Any, **kwargs: Any) -> None:
        self.idle_since = None

    def spider_idle(self, spider: Any) -> None:
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.timeout:
            raise DontCloseSpider
        logger.info("The shared frontier stayed empty for %.0fs: this worker stops", now - self.idle_since)
