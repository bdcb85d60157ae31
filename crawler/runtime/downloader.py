"""Scrapy's downloader, with each slot's concurrency enforced under the asyncio reactor.

Scrapy 2.19's ``Downloader._process_queue`` hands each queued request to a new
asyncio task, and the request counts as transferring only once that task runs.
The loop that fills a slot's free places runs to its end first, so it empties
the whole queue: under the asyncio reactor (the default, and scrapy-playwright's)
``CONCURRENT_REQUESTS_PER_DOMAIN`` is not honoured, nor AutoThrottle's or a rate
limit's lowered concurrency. Twelve pages that take 0.5 s each, fetched with a
concurrency of 2, take 1.4 s (six or more at a time) instead of 3 s; with
Twisted's own reactor the coroutine starts at once and the limit holds.

Here a request counts as transferring from the moment it leaves the queue
(``tests/test_scheduling.py`` measures the concurrency the site sees), and
``hold`` keeps a slot's queue closed for as long as a site asked.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.http import Request
from scrapy.utils.asyncio import call_later


class Downloader(ScrapyDownloader):
    """``DOWNLOADER``: Scrapy's, with a request taken from a slot's queue counted in the slot at once."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak references)
        self._held: dict[str, float] = {}

    def hold(self, request: Request, seconds: float) -> str | None:
        """Nothing leaves the request's slot for ``seconds`` from now (a site's ``Retry-After``); the slot's key.

        The slot's queue is processed again by a delayed call, the way Scrapy
        spaces requests by ``DOWNLOAD_DELAY``; AutoThrottle, which sets the
        slot's delay after every response, does not shorten the hold.
        """
        key = self.get_slot_key(request)
        slot = self.slots.get(key)
        if slot is None:
            return None
        until = monotonic() + seconds
        if slot.latercall is not None:
            if self._held.get(key, 0.0) >= until:
                return key
            slot.latercall.cancel()
        self._held[key] = until
        slot.latercall = call_later(seconds, self._latercall, slot)
        return key

    def held_until(self, key: str) -> float:
        """When the hold of slot ``key`` ends (``time.monotonic``); in the past when it is not held."""
        return self._held.get(key, 0.0)

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall:
            return  # a delayed call will process the queue
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # the fix: before the task that downloads it starts
            self._tasks.add(task := asyncio.get_event_loop().create_task(self._claimed(slot, request, queue_dfd)))
            task.add_done_callback(self._tasks.discard)
            if delay:  # one request per delay: no burst
                self._process_queue(slot)
                break

    async def _claimed(self, slot: Slot, request: Any, queue_dfd: Any) -> None:
        try:
            await self._wait_for_download(slot, request, queue_dfd)
        finally:
            slot.transferring.discard(request)  # a task cancelled before it started leaves no place taken
