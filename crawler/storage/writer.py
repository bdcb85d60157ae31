"""The MongoDB writer: validated items in, buffered idempotent bulk writes out, nothing lost.

* Documents are buffered and written in batches (``crawler.storage.bulk``),
  flushed by size, every ``MONGODB_FLUSH_SECONDS`` and at close, always off the
  reactor thread.
* A page stored twice in one run keeps its richer copy (``supersedes``).
* One document the server or the BSON encoder refuses never costs the rest of
  its batch: it is reported under a named reason (``write_failed/<reason>``).
* When the server is unreachable, batches go to the spool (``crawler.storage.spool``)
  and are replayed once it answers again, or by the next run. A batch that
  cannot even be spooled (full disk) is counted ``lost/spool_failed`` and the
  run exits non-zero.

Every page's outcome is announced with ``page_finished`` once it is written
or kept; counts go to the stats as ``mongodb/<outcome>``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.exceptions import CloseSpider
from twisted.internet import task

from crawler.storage.bulk import BulkWriter, Pending, Tally, by_collection, transient
from crawler.storage.connection import MongoStore, StorageUnavailable
from crawler.storage.documents import content_hash, richness, supersedes, to_document
from crawler.storage.run import current_run
from crawler.storage.settings import storage_config
from crawler.storage.signals import finish_pages
from crawler.storage.spool import Spool, SpoolError

logger = logging.getLogger(__name__)


class MongoPipeline:
    """Writes title and person items to the ``titles`` and ``people`` collections."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.config = storage_config(crawler)
        self.store = MongoStore.for_crawler(crawler)
        self.run = current_run(crawler)
        self.spool = Spool(self.config.spool_dir)
        self.buffer: dict[str, Pending] = {}
        self.lock = asyncio.Lock()
        self.last_flush = time.monotonic()
        self.server_down = False
        self.flusher: task.LoopingCall | None = None
        self.idle_flush: asyncio.Future[None] | None = None
        self.db: Any = None
        self.bulk: BulkWriter  # once MongoDB answers (open_spider)

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoPipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.spider_idle, signal=signals.spider_idle)
        return pipeline

    # --- lifecycle ----------------------------------------------------------

    async def open_spider(self) -> None:
        self.config.check_spool_dir()
        try:
            self.db = await asyncio.to_thread(self.store.open)
            self.bulk = BulkWriter(self.db, self.keep, log_changes=self.config.changes_ttl > 0)
        except StorageUnavailable as exc:
            logger.error("Not crawling: %s", exc)
            self.crawler.stats.inc_value("failures/mongodb_unreachable")  # crawler.runtime.verdict: exit 1
            raise CloseSpider("mongodb_unreachable") from None
        if self.spool.files():
            self.report(await asyncio.to_thread(self._replay_guarded))
        self.flusher = task.LoopingCall(self._flush_if_due)
        self.flusher.start(self.config.flush_seconds, now=False)

    async def close_spider(self) -> None:
        if self.flusher is not None and self.flusher.running:
            self.flusher.stop()
        await self.flush()
        if self.db is not None and self.spool.files():  # the server may be back since the last write failed
            self.report(await asyncio.to_thread(self._replay_guarded))
        pending = self.spool.pending()
        if pending:
            logger.error(
                "MongoDB is still unreachable: %d documents are kept in %s and will be written by the next run",
                sum(pending.values()),
                self.spool.directory,
            )
        self.crawler.stats.set_value("mongodb/spool_pending", sum(pending.values()))

    # --- items --------------------------------------------------------------

    async def process_item(self, item: Any) -> Any:
        collection, document = to_document(item)
        document["content_hash"] = content_hash(document)
        document["richness"] = richness(document)
        held = self.buffer.get(document["_id"])
        if held is not None and not supersedes(document, held.document):
            # The same page again before its first copy was written: that copy stays.
            self.crawler.stats.inc_value("mongodb/duplicate_in_batch")
            return item
        self.buffer[document["_id"]] = Pending(collection, document, datetime.now(UTC), self.run.id)
        if len(self.buffer) >= self.config.batch_size:
            await self.flush()
        return item

    def spider_idle(self) -> None:
        """Nothing is being fetched or parsed: what waits in the batch is written now, not at the next flush.

        Its pages are then finished: in a distributed run, the pages a paused worker holds are the ones its
        peers wait for before they may stop.
        """
        if self.buffer:
            self.idle_flush = asyncio.ensure_future(self.flush())

    def _flush_if_due(self) -> Any:
        if self.buffer and time.monotonic() - self.last_flush >= self.config.flush_seconds:
            return asyncio.ensure_future(self.flush())
        return None

    async def flush(self) -> None:
        """Write what is buffered (one writer at a time), then report each page's outcome."""
        async with self.lock:
            batch, self.buffer = list(self.buffer.values()), {}
            self.last_flush = time.monotonic()
            if batch:
                self.report(await asyncio.to_thread(self.write, batch))

    def report(self, tally: Tally) -> None:
        """Stats and ``page_finished`` for what a write did (on the reactor thread)."""
        stats = self.crawler.stats
        for outcome, ids in tally.outcomes.items():
            stats.inc_value(f"mongodb/{outcome}", len(ids))
            finish_pages(self.crawler, ids, outcome)
        if tally.replayed:
            stats.inc_value("mongodb/replayed", tally.replayed)
        if tally.unreadable:
            stats.inc_value("mongodb/spool_unreadable", tally.unreadable)
        if tally.changes:
            stats.inc_value("mongodb/changes_logged", tally.changes)
        if tally.changes_failed:
            stats.inc_value("mongodb/changes_not_logged", tally.changes_failed)
        if any(outcome.startswith("lost/") for outcome in tally.outcomes):
            stats.inc_value("failures/documents_lost")  # crawler.runtime.verdict: exit 1

    # --- writes (worker thread) ---------------------------------------------

    def write(self, batch: list[Pending]) -> Tally:
        """Write one batch; what the server cannot take now is kept in the spool."""
        tally = Tally()
        for collection, pendings in by_collection(batch).items():
            try:
                self.bulk.write(collection, pendings, tally)
            except PyMongoError as exc:
                if not transient(exc):
                    raise
                if not self.server_down:
                    logger.error("MongoDB write failed (%s): spooling to %s and going on", exc, self.spool.directory)
                self.server_down = True
                self.keep(pendings, tally)
                continue
            if self.server_down:
                self._replay_guarded(tally)  # it answers again: what waits in the spool goes first
        return tally

    def keep(self, pending: list[Pending], tally: Tally, outcome: str = "spooled") -> None:
        """Spool documents; when even that fails, count them lost (and say so)."""
        ids = [p.document["_id"] for p in pending]
        try:
            self.spool.append("batch", [p.to_spool() for p in pending])
        except SpoolError as exc:
            logger.error("LOST %d documents: MongoDB could not take them and %s", len(ids), exc)
            tally.add("lost/spool_failed", ids)
            return
        tally.add(outcome, ids)

    # --- the spool ------------------------------------------------------------

    def _replay_guarded(self, tally: Tally | None = None) -> Tally:
        tally = tally or Tally()
        try:
            self.replay(tally)
        except PyMongoError as exc:
            if not transient(exc):
                raise
            self.server_down = True
            logger.error("Could not replay the spool, MongoDB is unreachable: %s", exc)
            return tally
        if self.server_down:
            self.server_down = False
            logger.warning("MongoDB is back: the spool is replayed")
        return tally

    def replay(self, tally: Tally) -> None:
        """Write what earlier failures left in the spool, file by file (idempotent upserts)."""
        for batch in self.spool.batches():
            if batch.unreadable:
                tally.unreadable += batch.unreadable
                logger.error(
                    "%d unreadable lines in the spool file %s (cut by a crash or a full disk): moved to %s",
                    batch.unreadable, batch.path.name, self.spool.directory / "quarantine",
                )  # fmt: skip
            pendings = [Pending.from_spool(line, batch.collection, self.run.id) for line in batch.documents]
            replayed = Tally()
            for collection, group in by_collection(pendings).items():
                self.bulk.write(collection, group, replayed)
            tally.replayed += len(pendings)
            tally.changes += replayed.changes
            tally.changes_failed += replayed.changes_failed
            # Written now: their pages were announced when they were spooled.
            for outcome, ids in replayed.outcomes.items():
                if outcome.startswith(("write_failed/", "lost/")) or outcome == "spooled":
                    tally.add(outcome, ids)
            self.spool.remove(batch)
        if tally.replayed:
            logger.info("Replayed %d spooled documents", tally.replayed)
