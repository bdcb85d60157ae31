"""One progress line every ``PROGRESS_INTERVAL`` seconds: where the run stands against the work it knows of.

    Progress: 412/1000 pages (41%), 180 pages/min, ETA 3m16s; 390 written to MongoDB, 118 queued,
    12 blocked, 40 not found
    Progress: 6/30 pages known so far (20%), 36 pages/min; 6 written to MongoDB, 24 queued, …

Pages count once they are finished (stored, or counted under a reason). The
work known is the pages admitted so far (finished, in flight or queued),
capped by the page budget (``-a max_pages``): a 30-page job is not shown
against a budget of 1000. It is the whole of the run's work once no page can
be added: at depth 0 (the seeds), or once the budget is spent; only then is
there an ETA, at the rate of the last interval.
Scrapy's own LogStats line says less and is turned off (``LOGSTATS_INTERVAL = 0``).

When the log goes to a terminal, a live progress bar (tqdm) also shows pages
done of the budget, updated every second; log lines are printed above it, never
through it. Logs to a file or a pipe get the plain lines only.
"""

from __future__ import annotations

import io
import logging
import shutil
import sys
from typing import Any, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from tqdm import tqdm
from twisted.internet import task

from crawler.runtime.config import crawl_config, spider_args
from crawler.runtime.frontier import queued

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


def known_work(stats: dict[str, Any], budget: int | None, depth: int | None) -> tuple[int, bool]:
    """``(pages, final)``: the pages admitted so far, within the budget, and whether no more can come."""
    admitted = stats.get("frontier/admitted", 0)
    known = min(admitted, budget) if budget else admitted
    return known, depth == 0 or (budget is not None and admitted >= budget)


def progress_line(stats: dict[str, Any], budget: int | None, depth: int | None, rate: float, queued: Any) -> str:
    done = stats.get("frontier/finished", 0)
    known, final = known_work(stats, budget, depth)
    blocked = sum(v for k, v in stats.items() if k.startswith("pages/blocked/"))
    if known:
        share = f"/{known} pages ({done / known:.0%})" if final else f"/{known} pages known so far ({done / known:.0%})"
    else:
        share = " pages"
    eta = f", ETA {duration((known - done) / rate * 60)}" if final and rate > 0 and done < known else ""
    return (
        f"Progress: {done}{share}, {rate:.0f} pages/min{eta}; {sum(stats.get(k, 0) for k in WRITTEN)} written to "
        f"MongoDB, {queued} queued, {blocked} blocked, {stats.get('pages/not_found', 0)} not found"
    )


class _AboveTheBar(io.TextIOBase):
    """A stream for log handlers: each line is printed above the progress bar (``tqdm.write``)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def above_the_bar(stream: TextIO) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Point the root logger's handlers that write to ``stream`` above the bar; ``[(handler, old stream)]``."""
    moved = []
    for handler in logging.root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
            moved.append((handler, handler.setStream(_AboveTheBar(stream))))  # level, format, filters: unchanged
    return moved


def to_terminal(stream: TextIO, settings: Any) -> bool:
    """Whether the log is read on a terminal (no LOG_FILE, stderr a TTY)."""
    return not settings.get("LOG_FILE") and hasattr(stream, "isatty") and stream.isatty()


class ProgressLog:
    """Logs ``progress_line`` every ``PROGRESS_INTERVAL`` seconds (0 turns it off); a bar on a terminal."""

    def __init__(self, crawler: Any, interval: float, stream: TextIO | None = None) -> None:
        self.crawler = crawler
        self.interval = interval
        self.stream = stream or sys.stderr
        self.loop: task.LoopingCall | None = None
        self.bar: tqdm | None = None
        self.bar_loop: task.LoopingCall | None = None
        self.redirected: list[tuple[logging.StreamHandler[Any], Any]] = []
        self.last_done = 0
        self.budget: int | None = None
        self.depth: int | None = None

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
        args = spider_args(self.crawler)
        self.budget, self.depth = args.max_pages, args.depth
        self.loop = task.LoopingCall(self.log)
        self.loop.start(self.interval, now=False)
        if to_terminal(self.stream, self.crawler.settings):
            size = shutil.get_terminal_size((100, 24))  # a terminal that says 0 × 0 gets 100 × 24 (tqdm would hide)
            self.bar = tqdm(total=None, unit="page", file=self.stream, ncols=size.columns, nrows=size.lines,
                            leave=True)  # fmt: skip
            self.redirected = above_the_bar(self.stream)
            self.bar_loop = task.LoopingCall(self.update_bar)
            self.bar_loop.start(1.0, now=False)

    def log(self) -> None:
        stats = self.crawler.stats.get_stats()
        done = stats.get("frontier/finished", 0)
        rate = (done - self.last_done) * 60 / self.interval
        self.last_done = done
        waiting = queued(self.crawler)  # the distributed scheduler counts only what it has while Redis is down
        logger.info(progress_line(stats, self.budget, self.depth, rate, "?" if waiting is None else waiting))

    def update_bar(self) -> None:
        assert self.bar is not None
        stats = self.crawler.stats.get_stats()
        self.bar.n = stats.get("frontier/finished", 0)
        self.bar.total = known_work(stats, self.budget, self.depth)[0] or None
        written = sum(stats.get(k, 0) for k in WRITTEN)
        blocked = sum(v for k, v in stats.items() if k.startswith("pages/blocked/"))
        self.bar.set_postfix(written=written, blocked=blocked, refresh=False)
        self.bar.refresh()

    def spider_closed(self, spider: Any) -> None:
        for loop in (self.loop, self.bar_loop):
            if loop is not None and loop.running:
                loop.stop()
        if self.bar is not None:
            self.update_bar()
            self.bar.close()
        for handler, stream in self.redirected:
            handler.setStream(stream)
