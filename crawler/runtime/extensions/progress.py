"""One progress line every ``PROGRESS_INTERVAL`` seconds: where the run stands against its budget.

    Progress: 412/1000 pages (41%), 180 pages/min, ETA 3m16s; 390 written to MongoDB, 118 queued,
    12 blocked, 40 not found

Pages count once they are finished (stored, or counted under a reason); the
ETA is to the page budget (``-a max_pages``) at the rate of the last interval.
Scrapy's own LogStats line says less and is turned off (``LOGSTATS_INTERVAL = 0``).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.runtime.config import crawl_config

logger = logging.getLogger(__name__)

WRITTEN = ("pages/new", "pages/changed", "pages/unchanged")


def duration(seconds: float) -> str:
    """``3m16s``, ``2h05m``, ``45s``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def progress_line(stats: dict[str, Any], budget: int | None, rate: float, queued: Any) -> str:
    done = stats.get("frontier/finished", 0)
    blocked = sum(v for k, v in stats.items() if k.startswith("pages/blocked/"))
    share = f"/{budget} pages ({done / budget:.0%})" if budget else " pages"
    eta = f", ETA {duration((budget - done) / rate * 60)}" if budget and rate > 0 and done < budget else ""
    return (
        f"Progress: {done}{share}, {rate:.0f} pages/min{eta}; {sum(stats.get(k, 0) for k in WRITTEN)} written to "
        f"MongoDB, {queued} queued, {blocked} blocked, {stats.get('pages/not_found', 0)} not found"
    )


class ProgressLog:
    """Logs ``progress_line`` every ``PROGRESS_INTERVAL`` seconds (0 turns it off)."""

    def __init__(self, crawler: Any, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.loop: task.LoopingCall | None = None
        self.last_done = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProgressLog:
        interval = crawl_config(crawler).progress_interval
        if interval <= 0:
            raise NotConfigured
        progress = cls(crawler, interval)
        crawler.signals.connect(progress.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(progress.spider_closed, signal=signals.spider_closed)
        return progress

    def spider_opened(self, spider: Any) -> None:
        self.budget = getattr(getattr(spider, "args", None), "max_pages", None)
        self.loop = task.LoopingCall(self.log)
        self.loop.start(self.interval, now=False)

    def log(self) -> None:
        stats = self.crawler.stats.get_stats()
        done = stats.get("frontier/finished", 0)
        rate = (done - self.last_done) * 60 / self.interval
        self.last_done = done
        slot = getattr(self.crawler.engine, "_slot", None)
        scheduler = getattr(slot, "scheduler", None)
        queued = len(scheduler) if scheduler is not None and hasattr(scheduler, "__len__") else "?"
        logger.info(progress_line(stats, self.budget, rate, queued))

    def spider_closed(self, spider: Any) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
