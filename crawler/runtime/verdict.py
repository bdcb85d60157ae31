"""The run's exit status, decided in one place from what the components reported.

A component that meets a failure reports it as a stat, ``failures/<what>``
(``report_failure``; layers below this one, the storage, write the same key):
the crawl could not start (``start_error``), another run holds the job's lock
(``locked``), MongoDB was unreachable at start (``mongodb_unreachable``),
documents were lost (``documents_lost``), most pages were blocked
(``blocked``), Redis was unreachable or lost the run (``redis_unavailable``,
``frontier_lost``), JOBDIR could not take the journal (``jobdir_unwritable``).
The run record publishes the monitors' verdicts (``monitors/failed``). From
those, ``exit_status`` says what ``scrapy crawl`` exits with:

* 1 when anything failed: the run did not do its work, or lost some of it;
* 1 when a monitor failed and ``MONITORS_FAIL_EXIT`` is on (the default);
* else 0.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy import signals
from scrapy.exceptions import CloseSpider

from crawler.runtime.config import crawl_config

FAILURES = "failures/"


def report_failure(stats: Any, what: str) -> None:
    """Record that the run failed in a way a scheduler must hear of (exit status 1)."""
    stats.inc_value(FAILURES + what)


def fail_at_start(crawler: Any, reason: str) -> None:
    """A component that cannot start: the failure reported, and the spider closed with ``reason`` once it is
    open (raised while components open, Scrapy would leave some of them half open)."""
    report_failure(crawler.stats, reason)

    def refuse(spider: Any) -> None:
        raise CloseSpider(reason)

    crawler.signals.connect(refuse, signal=signals.spider_opened, weak=False)


def fail_and_close(crawler: Any, reason: str) -> asyncio.Future[None] | None:
    """A failure that ends a running crawl: reported, and the crawl closed with ``reason``.

    The close is scheduled (components call this from the engine's own callbacks); keep the future.
    """
    report_failure(crawler.stats, reason)
    engine = getattr(crawler, "engine", None)
    return asyncio.ensure_future(engine.close_spider_async(reason=reason)) if engine is not None else None


def failures(stats: dict[str, Any]) -> list[str]:
    """What the components reported as failed, by name."""
    return sorted(key[len(FAILURES) :] for key in stats if key.startswith(FAILURES))


def exit_status(crawler: Any) -> int:
    """``scrapy crawl``'s exit status for a finished crawl (0 when it never started)."""
    try:
        stats = crawler.stats.get_stats()
    except RuntimeError:  # the crawl never started: Scrapy made no stats
        return 0
    if failures(stats):
        return 1
    if stats.get("monitors/failed", 0) and crawl_config(crawler).monitors_fail_exit:
        return 1
    return 0
