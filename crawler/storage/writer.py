"""The MongoDB writer: validated items in, buffered idempotent bulk upserts out, nothing lost.

* Documents are buffered and written in unordered ``bulk_write`` batches,
  flushed by size, every ``MONGODB_FLUSH_SECONDS`` and at close, always off the
  reactor thread. Documents not stored yet are inserted; a changed one is
  replaced field by field (``$set``, ``first_seen`` kept); an unchanged one
  (same content hash) only has ``last_seen`` moved.
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
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import bson
from bson.errors import InvalidDocument, InvalidStringData
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError
from scrapy.exceptions import CloseSpider
from twisted.internet import task

from crawler.runtime.config import crawl_config
from crawler.runtime.run import current_run
from crawler.runtime.signals import finish_pages
from crawler.storage.connection import MongoStore, StorageUnavailable
from crawler.storage.documents import content_hash, richness, supersedes, to_document
from crawler.storage.spool import Spool, SpoolError

logger = logging.getLogger(__name__)

# Server errors that will not go away by retrying the same document.
PERMANENT_CODES = {121: "validation_failed", 10334: "too_large", 17419: "too_large", 2: "bad_value", 52: "bad_key"}
# Server errors that will: the server is stepping down, restarting or unreachable.
TRANSIENT_CODES = {6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436}
# Raised by the client while encoding a document: that document alone is unwritable.
ENCODING_ERRORS = (InvalidDocument, InvalidStringData, OverflowError, ValueError, TypeError)


@dataclass
class Pending:
    """A document waiting to be written, with when and by which run its page was seen."""

    collection: str
    document: dict[str, Any]
    seen_at: datetime
    run_id: str

    def to_spool(self) -> dict[str, Any]:
        return {"collection": self.collection, "document": self.document, "seen_at": self.seen_at, "run": self.run_id}

    @classmethod
    def from_spool(cls, line: dict[str, Any], collection: str, run_id: str) -> Pending:
        if "document" in line:
            seen_at = line.get("seen_at") or datetime.now(UTC)
            seen_at = seen_at if seen_at.tzinfo else seen_at.replace(tzinfo=UTC)
            return cls(line.get("collection", collection), line["document"], seen_at, line.get("run") or run_id)
        return cls(collection, line, datetime.now(UTC), run_id)  # a bare document (spool of an older version)


@dataclass
class Tally:
    """What a write did, page by page: ``{outcome: [ids]}``, plus replay counts."""

    outcomes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    replayed: int = 0
    unreadable: int = 0

    def add(self, outcome: str, ids: list[str]) -> None:
        if ids:
            self.outcomes[outcome].extend(ids)


def _transient(exc: PyMongoError) -> bool:
    if isinstance(exc, ConnectionFailure):
        return True
    labels: set[str] = getattr(exc, "_error_labels", set()) or set()
    return isinstance(exc, OperationFailure) and (exc.code in TRANSIENT_CODES or "RetryableWriteError" in labels)


def by_collection(pendings: list[Pending]) -> dict[str, list[Pending]]:
    groups: dict[str, list[Pending]] = defaultdict(list)
    for pending in pendings:
        groups[pending.collection].append(pending)
    return groups


def unencodable(document: dict[str, Any]) -> str | None:
    """Why BSON cannot encode ``document`` (an int over 8 bytes, a NUL in a key…), or None."""
    try:
        bson.encode(document)
    except ENCODING_ERRORS as exc:
        return str(exc)
    return None


class MongoPipeline:
    """Writes title and person items to the ``titles`` and ``people`` collections."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.config = crawl_config(crawler)
        self.store = MongoStore.for_crawler(crawler)
        self.run = current_run(crawler)
        self.spool = Spool(self.config.spool_dir)
        self.buffer: dict[str, Pending] = {}
        self.lock = asyncio.Lock()
        self.last_flush = time.monotonic()
        self.server_down = False
        self.flusher: task.LoopingCall | None = None
        self.db: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoPipeline:
        return cls(crawler)

    # --- lifecycle ----------------------------------------------------------

    async def open_spider(self) -> None:
        self.config.check_spool_dir()
        try:
            self.db = await asyncio.to_thread(self.store.open)
        except StorageUnavailable as exc:
            logger.error("Not crawling: %s", exc)
            self.crawler.stats.set_value("imdb/exit_status", 1)
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
            self.crawler.stats.inc_value("mongodb/duplicate")
            return item
        self.buffer[document["_id"]] = Pending(collection, document, datetime.now(UTC), self.run.id)
        if len(self.buffer) >= self.config.batch_size:
            await self.flush()
        return item

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
        if any(outcome.startswith("lost/") for outcome in tally.outcomes):
            stats.set_value("imdb/exit_status", 1)

    # --- writes (worker thread) ---------------------------------------------

    def write(self, batch: list[Pending]) -> Tally:
        """Write one batch; what the server cannot take now is kept in the spool."""
        tally = Tally()
        for collection, pendings in by_collection(batch).items():
            try:
                self.upsert(collection, pendings, tally)
            except PyMongoError as exc:
                if not _transient(exc):
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

    def upsert(self, collection: str, pendings: list[Pending], tally: Tally) -> None:
        """Write the documents of one collection; outcomes go to ``tally``."""
        if collection == "crawl_runs":  # run records spooled while MongoDB was down: replaced whole
            try:
                self.db.crawl_runs.bulk_write([ReplaceOne({"_id": p.document["_id"]}, p.document, upsert=True)
                                               for p in pendings], ordered=False)  # fmt: skip
            except BulkWriteError as exc:
                logger.error("Could not record %d spooled run records: %s", len(pendings), exc.details)
            return
        self._upsert(collection, pendings, tally)

    def _upsert(self, collection: str, pendings: list[Pending], tally: Tally) -> None:
        coll = self.db[collection]
        stored = self.stored_versions(coll, [p.document["_id"] for p in pendings])
        operations: list[tuple[str, Pending, Any]] = []
        for pending in pendings:
            document = pending.document
            before = stored.get(document["_id"])
            seen = {"last_seen": pending.seen_at, "crawl_run_id": pending.run_id}
            if before is None:
                operations.append(("new", pending, InsertOne({**document, **seen, "first_seen": pending.seen_at,
                                                              "last_changed": pending.seen_at})))  # fmt: skip
            elif before.get("crawl_run_id") == pending.run_id and not supersedes(document, before):
                tally.add("duplicate", [document["_id"]])  # this run stored it already, as rich or richer
            elif before.get("content_hash") == document["content_hash"]:
                operations.append(("unchanged", pending, UpdateOne({"_id": document["_id"]}, {"$set": seen})))
            else:
                operations.append(("changed", pending, self.full_update(pending)))
        self.bulk(coll, operations, tally)

    @staticmethod
    def stored_versions(coll: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        """``content_hash``, ``richness`` and ``crawl_run_id`` of the documents already stored, by id."""
        fields = {"content_hash": 1, "richness": 1, "crawl_run_id": 1}
        return {d["_id"]: d for d in coll.find({"_id": {"$in": ids}}, fields)}

    @staticmethod
    def full_update(pending: Pending) -> UpdateOne:
        seen = {"last_seen": pending.seen_at, "crawl_run_id": pending.run_id, "last_changed": pending.seen_at}
        update = {"$set": {**pending.document, **seen}, "$setOnInsert": {"first_seen": pending.seen_at}}
        return UpdateOne({"_id": pending.document["_id"]}, update, upsert=True)

    def bulk(self, coll: Any, operations: list[tuple[str, Pending, Any]], tally: Tally) -> None:
        """One unordered batch; each operation's outcome goes to ``tally``.

        A document the client cannot encode is set aside (``unencodable``) and
        the rest written; one inserted by another worker since our read (11000)
        is written again as an update; a permanent refusal is reported under its
        reason; a transient one sends that document to the spool.
        """
        if not operations:
            return
        try:
            coll.bulk_write([op for _, _, op in operations], ordered=False)
        except ENCODING_ERRORS:
            good = []
            for kind, pending, op in operations:
                reason = unencodable(pending.document)
                if reason:
                    logger.error("Cannot store %s: %s", pending.document["_id"], reason)
                    tally.add("write_failed/unencodable", [pending.document["_id"]])
                else:
                    good.append((kind, pending, op))
            if len(good) < len(operations):
                self.bulk(coll, good, tally)
                return
            raise
        except BulkWriteError as exc:
            failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
            raced, transient = [], []
            for index, (kind, pending, _) in enumerate(operations):
                error = failed.get(index)
                page_id = pending.document["_id"]
                if error is None:
                    tally.add(kind, [page_id])
                elif error.get("code") == 11000 and kind == "new":
                    raced.append(("changed", pending, self.full_update(pending)))
                elif error.get("code") in PERMANENT_CODES:
                    reason = PERMANENT_CODES[error["code"]]
                    logger.error("MongoDB refused %s (%s): %s", page_id, reason, error.get("errmsg"))
                    tally.add(f"write_failed/{reason}", [page_id])
                else:
                    transient.append(pending)
            if transient:
                self.keep(transient, tally)
            self.bulk(coll, raced, tally)
            return
        for kind, pending, _ in operations:
            tally.add(kind, [pending.document["_id"]])

    # --- the spool ------------------------------------------------------------

    def _replay_guarded(self, tally: Tally | None = None) -> Tally:
        tally = tally or Tally()
        try:
            self.replay(tally)
        except PyMongoError as exc:
            if not _transient(exc):
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
                self.upsert(collection, group, replayed)
            tally.replayed += len(pendings)
            # Written now: their pages were announced when they were spooled.
            for outcome, ids in replayed.outcomes.items():
                if outcome.startswith(("write_failed/", "lost/")) or outcome == "spooled":
                    tally.add(outcome, ids)
            self.spool.remove(batch)
        if tally.replayed:
            logger.info("Replayed %d spooled documents", tally.replayed)
