"""One running crawl per job: a lock document in MongoDB, kept alive by a heartbeat.

A run takes the lock of its job (``JOB_NAME``, default the spider's name) in
the ``locks`` collection when the spider opens and refreshes it every
``RUN_LOCK_TTL``/4 seconds. A second run of the same job closes at once with
reason ``locked`` (exit status 1) and says who holds the lock; the lock of a
crashed run expires ``RUN_LOCK_TTL`` seconds after its last heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError
from scrapy import signals
from scrapy.exceptions import CloseSpider, NotConfigured
from twisted.internet import task

from crawler.runtime.config import crawl_config
from crawler.runtime.verdict import report_failure
from crawler.storage.connection import MongoStore, StorageUnavailable
from crawler.storage.run import current_run

logger = logging.getLogger(__name__)


class RunLock:
    """Keeps two runs of the same job from overlapping (``RUN_LOCK_ENABLED``)."""

    def __init__(self, crawler: Any) -> None:
        config = crawl_config(crawler)
        if not config.run_lock:
            raise NotConfigured
        self.crawler = crawler
        self.store = MongoStore.for_crawler(crawler)
        self.ttl = config.run_lock_ttl
        self.job = current_run(crawler).job
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
        try:
            acquired, holder = await asyncio.to_thread(self.acquire)
        except StorageUnavailable:
            return  # the writer has already closed the crawl, saying why
        if not acquired:
            report_failure(self.crawler.stats, "locked")
            logger.error(
                "Job %r is already running (%s, last heartbeat %s): not starting a second run. "
                "A crashed run's lock expires %ds after its last heartbeat.",
                self.job, holder.get("owner"), holder.get("heartbeat"), self.ttl,
            )  # fmt: skip
            raise CloseSpider("locked")
        self.heartbeat = task.LoopingCall(self.beat)
        self.heartbeat.start(self.ttl / 4, now=False)

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
        except (PyMongoError, StorageUnavailable) as exc:
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
        except (PyMongoError, StorageUnavailable) as exc:
            logger.warning("Could not release the run lock (it expires by itself): %s", exc)
