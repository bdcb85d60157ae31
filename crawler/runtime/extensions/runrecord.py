"""The run record: one ``crawl_runs`` document per crawl, its live counts, and its verdict.

Driven by signals and stats only, as Scrapy's own LogStats and Spidermon's
extensions are:

* ``spider_opened``: the document is created (job, Scrapyd job id from
  ``SCRAPY_JOB``, the run group of a distributed run, the main settings);
* every ``RUN_RECORD_INTERVAL`` seconds: its counts, read from the stats;
* ``item_scraped``: field coverage is counted per collection;
* ``spider_closed``: the monitors (``crawler.runtime.judging``) judge the run
  (a distributed run as a whole, by its last worker), every verdict and the
  coverage go into the stats (``monitors/<name>``, ``coverage/<collection>/<field>``),
  one line says the outcome, and a failure sets exit status 1.

When MongoDB cannot take the document it goes to the spool with the writer's
documents, and reaches ``crawl_runs`` when the next run replays it.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.parsing.items import collection_for
from crawler.runtime.config import crawl_config, spider_args
from crawler.runtime.judging import MonitorSettings, check_run, summarize
from crawler.storage.connection import MongoStore, StorageUnavailable
from crawler.storage.documents import has_value
from crawler.storage.run import current_run
from crawler.storage.secrets import redact
from crawler.storage.settings import scrapyd_job
from crawler.storage.spool import Spool, SpoolError

logger = logging.getLogger(__name__)


def command_line() -> str:
    """How this process was started, as a person would type it, secrets redacted (``scrapy crawl imdb -a …``)."""
    words = [Path(sys.argv[0]).name if sys.argv else "", *sys.argv[1:]]
    if words[0] in ("__main__.py", "scrapy", "runner.py"):
        # Scrapy takes its command's name out of sys.argv; only `scrapy crawl` records runs.
        words[0:1] = ["scrapy"] if words[1:2] == ["crawl"] else ["scrapy", "crawl"]
    return redact(" ".join(shlex.quote(word) for word in words))[:1000]


class RunRecord:
    """Records and judges the run in ``crawl_runs`` (``RUN_RECORD_ENABLED``)."""

    def __init__(self, crawler: Any) -> None:
        self.config = crawl_config(crawler)
        if not self.config.run_record:
            raise NotConfigured
        self.crawler = crawler
        self.run = current_run(crawler)
        self.store = MongoStore.for_crawler(crawler)
        self.monitor_settings = MonitorSettings.from_config(self.config)
        self.coverage: dict[str, Counter[str]] = {}
        self.items: Counter[str] = Counter()
        self.db: Any = None
        self.group: Any = None
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunRecord:
        record = cls(crawler)
        crawler.signals.connect(record.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(record.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(record.spider_closed, signal=signals.spider_closed)
        return record

    # --- start ----------------------------------------------------------------

    async def spider_opened(self, spider: Any) -> None:
        if self.config.redis_url:
            from crawler.runtime.distributed.group import RunGroup

            group = RunGroup.for_crawler(self.crawler)
            self.group = group if group.id else None  # joined by the scheduler when the spider opened
        try:
            self.db = await asyncio.to_thread(self.store.open)
            await asyncio.to_thread(self.db.crawl_runs.insert_one, self.start_document(spider))
        except (StorageUnavailable, PyMongoError) as exc:
            self.db = None
            logger.debug("Run record not written at start: %s", exc)
        self.loop = task.LoopingCall(self.record_progress)
        self.loop.start(self.config.record_interval, now=False)

    def start_document(self, spider: Any) -> dict[str, Any]:
        args = spider_args(self.crawler)
        settings = self.crawler.settings
        return {
            "_id": self.run.id,
            "spider": spider.name,
            "job": self.run.job,
            "command": command_line(),
            "scrapyd_job": scrapyd_job(self.crawler),
            "run_group": self.run.group,
            "started": self.run.started,
            "updated": self.run.started,
            "status": "running",
            "settings": {
                "IMDB_BASE_URL": self.config.base_url,
                "MONGODB_URI": redact(self.store.uri) if self.store.uri else "(embedded)",
                "JOBDIR": self.config.jobdir or None,
                "depth": args.depth,
                "max_pages": args.max_pages,
                "start": args.start or (str(args.start_file) if args.start_file else None),
                "CONCURRENT_REQUESTS": settings.getint("CONCURRENT_REQUESTS"),
                "AUTOTHROTTLE_ENABLED": settings.getbool("AUTOTHROTTLE_ENABLED"),
            },
        }

    # --- while it runs --------------------------------------------------------

    def item_scraped(self, item: Any) -> None:
        collection = collection_for(item)
        self.items[collection] += 1
        counter = self.coverage.setdefault(collection, Counter())
        counter.update(name for name, value in ItemAdapter(item).items() if has_value(value))

    def summary(self) -> dict[str, Any]:
        return {"updated": datetime.now(UTC), **summarize(self.crawler.stats.get_stats(), self.coverage, self.items)}

    def record_progress(self) -> Any:
        # Counted here, on the reactor thread that updates the stats; written off it.
        return asyncio.ensure_future(asyncio.to_thread(self._record_progress, self.summary()))

    def _record_progress(self, summary: dict[str, Any]) -> None:
        if self.db is None:
            return
        try:
            # Only while it runs: an update computed before the end must never overwrite the final record.
            self.db.crawl_runs.update_one({"_id": self.run.id, "status": "running"}, {"$set": summary})
        except PyMongoError as exc:  # MongoDB down for a moment: the next update will do
            logger.warning("Could not record the run's progress: %s", exc)

    # --- the end --------------------------------------------------------------

    async def spider_closed(self, spider: Any, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        summary = self.summary()
        summary.update(finished=summary["updated"], status="finished", finish_reason=reason)
        document = {**self.start_document(spider), **summary}
        verdicts = await asyncio.to_thread(self.judge, document)
        self.publish(document, verdicts)

    def judge(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        """Monitors on this run (or, for a distributed run's last worker, on the whole run); record it."""
        try:
            if self.db is None:
                raise StorageUnavailable("MongoDB was unreachable during the run")
            if self.group is not None:
                return self.group.judge(self.db, document, self)
            document["monitors"] = self.check(document)
            self.db.crawl_runs.replace_one({"_id": self.run.id}, document, upsert=True)
            return document["monitors"]
        except (StorageUnavailable, PyMongoError) as exc:
            document["monitors"] = self.check(document, previous=None)
            self.keep(document, exc)
            return document["monitors"]

    def check(self, summary: dict[str, Any], previous: Any = False) -> list[dict[str, Any]]:
        if previous is False:
            previous = self.previous_run()
        return check_run(summary, previous, self.monitor_settings)

    def keep(self, document: dict[str, Any], exc: Exception) -> None:
        try:
            Spool(self.config.spool_dir).append("runs", [{"collection": "crawl_runs", "document": document}])
            logger.error("Could not record the run in crawl_runs (%s): kept in the spool for the next run", exc)
        except SpoolError as spool_exc:
            logger.error("Could not record the run in crawl_runs (%s) nor spool it (%s)", exc, spool_exc)

    def previous_run(self) -> dict[str, Any] | None:
        """The job's last finished run that stored items, as a whole (a distributed run's judged total)."""
        query: dict[str, Any] = {
            "_id": {"$ne": self.run.id},
            "job": self.run.job,
            "status": "finished",
            "finished": {"$lt": self.run.started},
            "$or": [{"run_group": None, "stored_items": {"$gt": 0}}, {"run_wide.stored_items": {"$gt": 0}}],
        }
        if self.run.group is not None:
            query["run_group"] = {"$ne": self.run.group}
        try:
            previous = self.db.crawl_runs.find_one(query, sort=[("finished", -1)])
        except PyMongoError:
            return None
        return (previous.get("run_wide") or previous) if previous else None

    def publish(self, document: dict[str, Any], verdicts: list[dict[str, Any]]) -> None:
        """Verdicts and coverage into the stats, one line for people, exit status for schedulers."""
        stats = self.crawler.stats
        for collection, fields in (document.get("coverage") or {}).items():
            for name, share in fields.items():
                stats.set_value(f"coverage/{collection}/{name}", share)
        failed = [v for v in verdicts if not v["ok"]]
        for verdict in verdicts:
            stats.set_value(f"monitors/{verdict['monitor']}", "ok" if verdict["ok"] else "failed")
            if not verdict["ok"]:
                stats.set_value(f"monitors/{verdict['monitor']}/message", verdict["message"])
                logger.error("Monitor %s failed: %s", verdict["monitor"], verdict["message"])
        stats.set_value("monitors/failed", len(failed))  # crawler.runtime.verdict: exit 1 with MONITORS_FAIL_EXIT
        items = document["items"]
        logger.log(
            logging.ERROR if failed else logging.INFO,
            "Run %s %s (%s): %d pages finished%s, %d stored (%d new, %d changed, %d unchanged), %d not found, "
            "%d blocked, %d failed; monitors: %s",
            self.run.id[:8], "FAILED" if failed else "ok", document["finish_reason"], document["finished_pages"],
            self.left(document), document["stored_items"], items["new"], items["changed"], items["unchanged"],
            document["not_found"], document["blocked"], document["failed_pages"],
            ", ".join(f"{v['monitor']} {'ok' if v['ok'] else 'FAILED'}" for v in verdicts),
        )  # fmt: skip

    def left(self, document: dict[str, Any]) -> str:
        """What the run left of the pages it admitted, and why (empty when it left none)."""
        unfinished = document.get("unfinished") or 0
        if not unfinished:
            return ""
        if self.config.redis_url:
            kept = "the run's other workers or its next start fetch them"
        elif self.config.jobdir:
            kept = f"kept in JOBDIR {self.config.jobdir} for the next run"
        else:
            kept = "not kept: no JOBDIR"
        return f" of {document['admitted']} admitted, {unfinished} left ({document['finish_reason']}; {kept})"
