"""Redis outages as one worker lives them: noticed once, retried every few seconds, given up after a bound.

While Redis is unreachable a worker keeps what it would have queued and what
it finished in memory (``crawler.runtime.distributed.scheduler``) and calls
Redis again only every ``REDIS_RETRY_SECONDS``: an attempt costs up to the client's
connect timeout, and the crawl must not freeze on it. After
``REDIS_OUTAGE_TIMEOUT`` seconds without an answer the worker stops
(``redis_unavailable``, exit status 1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Outage:
    """Whether Redis answers, as far as this worker knows; ``give_up`` is called once the outage is too long."""

    def __init__(self, timeout: float, retry: float, give_up: Callable[[], None], stats: Any) -> None:
        self.timeout = timeout
        self.retry = retry
        self.give_up = give_up
        self.stats = stats
        self.down_since: float | None = None
        self.next_try = 0.0
        self.gave_up = False

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def reachable(self) -> bool:
        """False while Redis is down, between retries."""
        if self.down_since is None:
            return True
        if time.monotonic() - self.down_since > self.timeout:
            if not self.gave_up:
                self.gave_up = True
                logger.error("Redis stayed unreachable for %.0fs: stopping", self.timeout)
                self.give_up()
            return False
        return time.monotonic() >= self.next_try

    def failed(self, exc: Exception, kept: int) -> None:
        """A call failed: the outage starts (one line), or goes on."""
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self.stats.inc_value("redis/outages")
            logger.error(
                "Redis unreachable (%s): keeping %d requests here and retrying every %.0fs for up to %.0fs",
                exc, kept, self.retry, self.timeout,
            )  # fmt: skip
        self.next_try = now + self.retry

    def answered(self) -> bool:
        """A call went through; True when it ends an outage."""
        if self.down_since is None:
            return False
        logger.warning("Redis is back after %.0fs", time.monotonic() - self.down_since)
        self.down_since = None
        return True
