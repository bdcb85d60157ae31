"""MongoDB writer: buffered, idempotent bulk upserts that never lose an item.

* one client per crawl, opened in ``open_spider`` and closed in ``close_spider``;
* documents are buffered and written with unordered ``bulk_write`` batches of
  ``UpdateOne(..., upsert=True)`` (``$set`` data, ``$setOnInsert`` ``first_seen``),
  flushed by size, by time and at close, always off the reactor thread;
* a content hash makes re-crawls cheap: an unchanged document only gets its
  ``last_seen`` moved, a changed one also ``last_changed``;
* transient failures (server down, network) send the batch to a local spool
  (``var/spool/``) which is replayed when the server answers again or at the
  next run's start; permanent per-document errors (validation 121, too large)
  are reported per item and not retried;
* one ``crawl_runs`` document records the run, its counts updated every
  ``RUN_RECORD_INTERVAL`` seconds while it runs; the end-of-run monitors judge
  it, or, for the workers of a distributed run, the last worker to finish
  judges them all together (``crawler.runtime.rungroup``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, TEXT, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, CollectionInvalid, ConnectionFailure, OperationFailure, PyMongoError
from redis.exceptions import RedisError
from scrapy import signals
from twisted.internet import task

from crawler.mongo import redact
from crawler.runtime.monitors import MonitorSettings, aggregate, check_run, result
from crawler.runtime.rungroup import RunGroup
from crawler.storage.documents import content_hash, has_value, richness, to_document
from crawler.storage.schema import SCHEMAS
from crawler.storage.spool import Spool
from crawler.storage.store import MongoConfig, MongoStore

logger = logging.getLogger(__name__)

INDEXES: dict[str, list[Any]] = {
    "titles": [
        [("title", TEXT)],
        [("genres", ASCENDING)],
        [("year", ASCENDING)],
        [("rating", ASCENDING)],
        [("cast.id", ASCENDING)],
        [("recommendations", ASCENDING)],
        [("last_seen", ASCENDING)],
        [("schema_version", ASCENDING), ("last_seen", ASCENDING)],
    ],
    "people": [
        [("known_for", ASCENDING)],
        [("name", ASCENDING)],
        [("last_seen", ASCENDING)],
        [("schema_version", ASCENDING), ("last_seen", ASCENDING)],
    ],
}
# Server errors that will not go away by retrying the same document.
PERMANENT_CODES = {121: "validation_failed", 10334: "too_large", 17419: "too_large", 2: "bad_value", 52: "bad_key"}


@dataclass
class RunCounts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    duplicates: int = 0
    spooled: int = 0
    replayed: int = 0
    failed: dict[str, int] = field(default_factory=dict)


class MongoPipeline:
    """Writes title and person items to the ``titles`` and ``people`` collections."""

    def __init__(self, crawler: Any, config: MongoConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.run_id = uuid.uuid4().hex
        self.started = datetime.now(UTC)
        self.counts = RunCounts()
        self.buffer: list[tuple[str, dict[str, Any]]] = []
        # The latest pages of this run (hash, richness): repeats are dropped before
        # they reach the server. Bounded: older repeats are caught by the stored
        # documents' crawl_run_id and richness (see ``upsert``).
        self.run_versions: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self.run_versions_size = max(1, crawler.settings.getint("MONGODB_DEDUPE_CACHE", 100_000))
        self.field_counts: dict[str, Counter[str]] = {"titles": Counter(), "people": Counter()}
        self.item_counts: Counter[str] = Counter()
        self.monitor_settings = MonitorSettings.from_settings(crawler.settings)
        self.spool = Spool(config.spool_dir)
        self.store = MongoStore.for_crawler(crawler)
        self.db: Any = None
        self.last_flush = time.monotonic()
        self.lock = asyncio.Lock()
        self.server_down = False
        self.group: RunGroup | None = None
        self.record_interval = crawler.settings.getfloat("RUN_RECORD_INTERVAL", 15.0)
        self.record_loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoPipeline:
        pipeline = cls(crawler, MongoStore.for_crawler(crawler).config)
        # The run record needs the finish reason, known only once the spider has closed.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    # --- lifecycle ----------------------------------------------------------

    async def open_spider(self) -> None:
        await asyncio.to_thread(self._open)
        if self.group is not None and self.record_interval <= 0:
            # The run's last worker tells live workers from dead ones by these updates.
            logger.warning("RUN_RECORD_INTERVAL must be > 0 in distributed mode: using 15 s")
            self.record_interval = 15.0
        if self.record_interval > 0:
            self.record_loop = task.LoopingCall(self.record_progress)
            self.record_loop.start(self.record_interval, now=False)

    def _open(self) -> None:
        self.db = self.store.open()
        self.uri = self.store.uri
        redis_url = self.crawler.settings.get("REDIS_URL")
        if redis_url:
            group = RunGroup(redis_url, self.job_name, self.crawler.settings.getfloat("RUN_GROUP_TTL", 120.0))
            try:
                group.join()
                self.group = group
                logger.info("Worker %s of distributed run %s (job %r)", self.run_id, group.id, self.job_name)
            except RedisError as exc:
                logger.error("Redis unreachable (%s): this worker's monitors will judge only its own share", exc)
        try:
            self.ensure_schema()
            self.record_run_start()
            self.replay_spool()
        except ConnectionFailure as exc:
            self.server_down = True
            logger.error("MongoDB unreachable at start (%s): items will be spooled to %s", exc, self.spool.directory)

    @property
    def job_name(self) -> str:
        return self.crawler.settings.get("JOB_NAME") or self.crawler.spider.name

    def ensure_schema(self) -> None:
        """Collections with their ``$jsonSchema`` validators and indexes; safe to repeat."""
        existing = set(self.db.list_collection_names())
        for name, schema in SCHEMAS.items():
            if name not in existing:
                try:
                    self.db.create_collection(name, validator={"$jsonSchema": schema}, validationLevel="moderate")
                except (CollectionInvalid, OperationFailure):
                    # Workers starting together race to create it (server code 48,
                    # NamespaceExists): whoever lost finds it there and moves on.
                    if name not in self.db.list_collection_names():
                        raise
                    self.update_validator(name, schema)
            else:
                self.update_validator(name, schema)
            for keys in INDEXES[name]:
                self.db[name].create_index(keys)

    def update_validator(self, name: str, schema: dict[str, Any]) -> None:
        """Bring an existing collection's validator up to the current schema."""
        try:
            self.db.command("collMod", name, validator={"$jsonSchema": schema}, validationLevel="moderate")
        except OperationFailure as exc:
            # Servers without collMod (or a user without the right to run it) keep
            # the validator they have; items are still checked by ValidationPipeline.
            logger.info(
                "Validator of %r left as it is: %s", name, exc.details.get("errmsg", exc) if exc.details else exc
            )

    def record_run_start(self) -> None:
        spider = self.crawler.spider
        settings = self.crawler.settings
        self.db.crawl_runs.insert_one(
            {
                "_id": self.run_id,
                "spider": spider.name,
                "job": self.job_name,
                "run_group": self.group.id if self.group else None,
                "started": self.started,
                "updated": self.started,
                "status": "running",
                "settings": {
                    "IMDB_BASE_URL": settings.get("IMDB_BASE_URL"),
                    "MONGODB_URI": redact(self.uri),
                    "depth": getattr(spider, "max_depth", None),
                    "max_pages": getattr(spider, "max_pages", None),
                    "start": getattr(spider, "start_arg", None),
                    "CONCURRENT_REQUESTS": settings.getint("CONCURRENT_REQUESTS"),
                    "AUTOTHROTTLE_ENABLED": settings.getbool("AUTOTHROTTLE_ENABLED"),
                },
            }
        )

    def record_progress(self) -> Any:
        # Counted here, on the reactor thread that updates the stats; written off it.
        return asyncio.ensure_future(asyncio.to_thread(self._record_progress, self.summary()))

    def _record_progress(self, summary: dict[str, Any]) -> None:
        """The running crawl's counts so far, for whoever watches ``crawl_runs`` (and the run's last worker)."""
        try:
            if self.db is not None and not self.server_down:
                self.db.crawl_runs.update_one({"_id": self.run_id}, {"$set": summary})
            if self.group is not None:
                self.group.refresh()
        except (PyMongoError, RedisError) as exc:
            logger.warning("Could not record the run's progress: %s", exc)

    async def close_spider(self) -> None:
        if self.record_loop is not None and self.record_loop.running:
            self.record_loop.stop()
        async with self.lock:
            batch, self.buffer = self.buffer, []
            await asyncio.to_thread(self._close, batch)

    def _close(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        self.write(batch)
        if not self.server_down:
            try:
                self.replay_spool()
            except ConnectionFailure as exc:
                logger.error("Could not replay the spool at close: %s", exc)
        self.publish_stats()

    async def spider_closed(self, reason: str) -> None:
        await asyncio.to_thread(self._finish, reason)

    def _finish(self, reason: str) -> None:
        try:
            self.record_run_end(reason)
        finally:
            pending = self.spool.pending()
            if pending:
                logger.error(
                    "MongoDB is still unreachable: %s documents are kept in %s and will be written by the next run",
                    sum(pending.values()),
                    self.spool.directory,
                )
            self.store.close()

    def summary(self) -> dict[str, Any]:
        """This process's counts: pages, outcomes, items by fate, coverage of each field."""
        stats = self.crawler.stats.get_stats()
        counts = self.counts
        summary: dict[str, Any] = {
            "updated": datetime.now(UTC),
            "pages": stats.get("response_received_count", 0),
            "not_found": stats.get("imdb/not_found", 0),
            "blocked": stats.get("imdb/blocked", 0),
            "failed_pages": stats.get("imdb/failed", 0) + stats.get("imdb/parse_error", 0),
            "items": {
                "new": counts.new,
                "changed": counts.changed,
                "unchanged": counts.unchanged,
                "duplicates": counts.duplicates,
                "spooled": counts.spooled,
                "write_failed": dict(counts.failed),
                "dropped": {
                    k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith("item_dropped_reasons_count/")
                },
            },
        }
        summary["page_attempts"] = sum(
            stats.get(key, 0)
            for key in ("imdb/parsed/current", "imdb/parsed/legacy", "imdb/not_found", "imdb/blocked", "imdb/failed")
        ) + stats.get("imdb/parse_error", 0)
        summary["item_counts"] = dict(self.item_counts)
        summary["coverage"] = {
            name: {field: round(n / self.item_counts[name], 3) for field, n in counter.items()}
            for name, counter in self.field_counts.items()
            if self.item_counts[name]
        }
        return summary

    def record_run_end(self, reason: str) -> None:
        summary = self.summary()
        summary.update(finished=summary["updated"], status="finished", finish_reason=reason)
        try:
            if self.group is None:
                summary["monitors"] = self.run_monitors(summary)
                self.db.crawl_runs.update_one({"_id": self.run_id}, {"$set": summary}, upsert=True)
            else:
                self.judge_group(summary)
        except PyMongoError as exc:
            logger.error("Could not record the crawl run: %s", exc)

    def judge_group(self, summary: dict[str, Any]) -> None:
        """Distributed run: record this worker's share, then judge the whole run if no other worker runs on.

        This worker's document is marked finished before it looks at the
        others, so of two workers finishing together at least one sees the
        other finished and judges. A worker whose record stopped moving for
        three intervals is taken for dead; its last counts are part of the run.
        """
        assert self.group is not None
        runs = self.db.crawl_runs
        runs.update_one({"_id": self.run_id}, {"$set": summary}, upsert=True)
        alive_since = datetime.now(UTC) - timedelta(seconds=3 * max(self.record_interval, 5.0))
        running = runs.count_documents(
            {
                "run_group": self.group.id,
                "status": "running",
                "_id": {"$ne": self.run_id},
                "updated": {"$gte": alive_since},
            }
        )
        if running:
            message = f"{running} other worker(s) still running: the last one to finish judges the run"
            logger.info("Distributed run %s: %s", self.group.id, message)
            runs.update_one({"_id": self.run_id}, {"$set": {"monitors": [result("run_group", True, message)]}})
            return
        workers = list(runs.find({"run_group": self.group.id}, {"monitors": 0, "run_wide": 0}))
        run_wide = aggregate(workers)
        logger.info(
            "Distributed run %s: judging %d workers' %d pages", self.group.id, len(workers), run_wide["page_attempts"]
        )
        run_wide["monitors"] = self.run_monitors(run_wide)
        runs.update_one({"_id": self.run_id}, {"$set": {"monitors": run_wide["monitors"], "run_wide": run_wide}})
        try:
            self.group.end()
        except RedisError as exc:
            logger.warning("Could not end distributed run %s in Redis (it expires by itself): %s", self.group.id, exc)

    def previous_run(self) -> dict[str, Any] | None:
        """The last run of the same job that had finished before this one began, as a whole.

        Distributed workers of this very run are not "previous"; of an earlier
        distributed run, the record of the worker that judged it stands for it.
        """
        query: dict[str, Any] = {
            "_id": {"$ne": self.run_id},
            "status": "finished",
            "job": self.job_name,
            "finished": {"$lt": self.started},
            "$or": [{"run_group": None}, {"run_wide": {"$exists": True}}],
        }
        if self.group is not None:
            query["run_group"] = {"$ne": self.group.id}
        try:
            previous = self.db.crawl_runs.find_one(query, sort=[("started", -1)])
        except PyMongoError:
            return None
        return (previous.get("run_wide") or previous) if previous else None

    def run_monitors(self, summary: dict[str, Any]) -> list[dict[str, Any]]:
        """End-of-run checks against thresholds and the previous finished run."""
        results = check_run(summary, self.previous_run(), self.monitor_settings)
        for outcome in results:
            if not outcome["ok"]:
                logger.error("Monitor %s failed: %s", outcome["monitor"], outcome["message"])
                self.crawler.stats.inc_value("monitors/failed")
                if self.crawler.settings.getbool("MONITORS_FAIL_EXIT", True):
                    self.crawler.stats.set_value("imdb/exit_status", 1)
        return results

    def publish_stats(self) -> None:
        stats = self.crawler.stats
        for name in ("new", "changed", "unchanged", "duplicates", "spooled", "replayed"):
            stats.set_value(f"mongodb/{name}", getattr(self.counts, name))
        for reason, count in self.counts.failed.items():
            stats.set_value(f"mongodb/write_failed/{reason}", count)
        stats.set_value("mongodb/run_id", self.run_id)

    # --- items --------------------------------------------------------------

    async def process_item(self, item: Any) -> Any:
        collection, document = to_document(item)
        self.item_counts[collection] += 1
        self.field_counts[collection].update(k for k, v in document.items() if has_value(v))
        digest = content_hash(document)
        previous = self.run_versions.get(document["_id"])
        fullness = richness(document)
        if previous and (previous[0] == digest or previous[1] > fullness):
            # Same page again in this run, or a poorer copy: keep what we have.
            self.counts.duplicates += 1
            return item
        self.run_versions[document["_id"]] = (digest, fullness)
        self.run_versions.move_to_end(document["_id"])
        if len(self.run_versions) > self.run_versions_size:
            self.run_versions.popitem(last=False)
        document["content_hash"] = digest
        document["richness"] = fullness
        self.buffer.append((collection, document))
        if (
            len(self.buffer) >= self.config.batch_size
            or time.monotonic() - self.last_flush >= self.config.flush_seconds
        ):
            async with self.lock:
                batch, self.buffer = self.buffer, []
                await asyncio.to_thread(self.write, batch)
        return item

    def write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Write one batch (worker thread); spool it when the server cannot take it."""
        self.last_flush = time.monotonic()
        by_collection: dict[str, dict[str, dict[str, Any]]] = {}
        for collection, document in batch:
            by_collection.setdefault(collection, {})[document["_id"]] = document  # last one wins
        for collection, documents in by_collection.items():
            docs = list(documents.values())
            try:
                self.upsert(collection, docs)
                self.finished(docs)
                if self.server_down:
                    self.server_down = False
                    logger.warning("MongoDB is back: replaying the spool")
                    self.replay_spool()
            except (ConnectionFailure, OperationFailure) as exc:
                if isinstance(exc, OperationFailure) and not _transient(exc):
                    raise
                if not self.server_down:
                    logger.error("MongoDB write failed (%s): spooling to %s and going on", exc, self.spool.directory)
                self.server_down = True
                self.spool.append(collection, docs)
                self.counts.spooled += len(docs)
                self.finished(docs)

    def finished(self, documents: list[dict[str, Any]]) -> None:
        """Tell the spider's crash journal these pages are safely stored (or spooled)."""
        frontier = getattr(self.crawler.spider, "frontier", None)
        if frontier is not None:
            frontier.finish(d["_id"] for d in documents)

    def upsert(self, collection: str, documents: list[dict[str, Any]]) -> None:
        """Unchanged documents only move ``last_seen``; new and changed ones are written whole.

        Documents not yet stored are inserted (cheaper for the server than an
        upsert); one that another worker inserted meanwhile fails with 11000 and
        is written again as an upsert, so the outcome is the same.
        """
        if not documents:
            return
        now = datetime.now(UTC)
        coll = self.db[collection]
        ids = [d["_id"] for d in documents]
        stored = self.stored_versions(coll, ids)
        operations: list[Any] = []
        kinds: list[str] = []
        written: list[dict[str, Any]] = []
        for document in documents:
            seen = {"last_seen": now, "crawl_run_id": self.run_id}
            before = stored.get(document["_id"])
            if (
                before is not None
                and before.get("crawl_run_id") == self.run_id
                and (
                    before.get("content_hash") == document["content_hash"]
                    or (before.get("richness") or 0) > document.get("richness", 0)
                )
            ):
                # Stored earlier in this run, too long ago for run_versions: same rule.
                self.counts.duplicates += 1
                continue
            written.append(document)
            if before is None:
                operations.append(InsertOne({**document, **seen, "last_changed": now, "first_seen": now}))
                kinds.append("new")
            elif before.get("content_hash") == document["content_hash"]:
                operations.append(UpdateOne({"_id": document["_id"]}, {"$set": seen}))
                kinds.append("unchanged")
            else:
                operations.append(self.full_update(document, seen, now))
                kinds.append("changed")
        if not operations:
            return
        failed = self.bulk(coll, collection, written, operations)
        raced = [i for i, reason in failed.items() if reason == "duplicate_key" and kinds[i] == "new"]
        if raced:
            seen = {"last_seen": now, "crawl_run_id": self.run_id}
            retry = [self.full_update(written[i], seen, now) for i in raced]
            again = self.bulk(coll, collection, [written[i] for i in raced], retry)
            for position, index in enumerate(raced):
                if position not in again:
                    del failed[index]
                    kinds[index] = "changed"
        for index, kind in enumerate(kinds):
            if index not in failed:
                setattr(self.counts, kind, getattr(self.counts, kind) + 1)

    @staticmethod
    def stored_versions(coll: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        """``content_hash``, ``richness`` and ``crawl_run_id`` of the documents already stored, by id."""
        fields = {"content_hash": 1, "richness": 1, "crawl_run_id": 1}
        return {d["_id"]: d for d in coll.find({"_id": {"$in": ids}}, fields)}

    @staticmethod
    def full_update(document: dict[str, Any], seen: dict[str, Any], now: datetime) -> UpdateOne:
        update = {"$set": {**document, **seen, "last_changed": now}, "$setOnInsert": {"first_seen": now}}
        return UpdateOne({"_id": document["_id"]}, update, upsert=True)

    def bulk(
        self, coll: Any, collection: str, documents: list[dict[str, Any]], operations: list[Any]
    ) -> dict[int, str]:
        """Run one unordered batch; the failed operations' indexes with their reasons.

        Permanent refusals are counted and logged per document; transient ones
        go to the spool; duplicate keys are left for the caller to retry.
        """
        failed: dict[int, str] = {}
        try:
            coll.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            transient = []
            for error in exc.details.get("writeErrors", []):
                index, code = error["index"], error.get("code")
                if code == 11000:
                    failed[index] = "duplicate_key"
                elif code in PERMANENT_CODES:
                    failed[index] = reason = PERMANENT_CODES[code]
                    self.counts.failed[reason] = self.counts.failed.get(reason, 0) + 1
                    logger.error("MongoDB refused %s (%s): %s", documents[index]["_id"], reason, error.get("errmsg"))
                else:
                    failed[index] = "transient"
                    transient.append(documents[index])
            if transient:
                self.spool.append(collection, transient)
                self.counts.spooled += len(transient)
        return failed

    def replay_spool(self) -> None:
        """Write what earlier failures left in the spool (idempotent upserts)."""
        for collection in list(self.spool.pending()):
            for batch in self.spool.drain(collection):
                self.upsert(collection, batch)
                self.counts.replayed += len(batch)
        if self.counts.replayed:
            logger.info("Replayed %d spooled documents", self.counts.replayed)


def _transient(exc: OperationFailure) -> bool:
    labels: set[str] = getattr(exc, "_error_labels", set()) or set()
    return exc.code in (6, 7, 89, 91, 189, 11600, 11602, 13435, 13436, 10107) or "RetryableWriteError" in labels
