"""The one place that decides whether a page is fetched, and that knows whether every page was finished.

IMDb ids are numbers (``tt0133093`` is title 133 093), so "was this page
seen?" is answered exactly by a bitmap indexed by that number, titles and
names apart: a roaring bitmap, about 0.125 bytes per possible id where ids are
dense (4.6 MB for every title id IMDb has issued), less where they are sparse,
no false positives. ``IdSet`` is that bitmap; ``Frontier`` uses it, from
the scheduler (every request passes there on its way to the queue),

* as the request filter of pages: a page request is admitted once, unless its
  page is fresh in the database (``-a refresh_after``, the same kind of
  bitmap) or the page budget (``-a max_pages``) is spent; the few other
  requests (robots.txt, sitemaps) are left to ``RequestFilter``, by fingerprint.
  The spider asks first (``Frontier.refuses``): a link to a page already seen,
  fresh or over the budget makes no request at all (most links of a crawl);
* as the run's ledger: it listens to ``page_finished`` and counts the admitted
  pages that ended; at the end, ``frontier/unfinished`` says how many never
  did (the monitors fail a finished run that left any);
* with ``JOBDIR``, as a crash-safe journal (``imdb-frontier.jsonl``): every
  admitted and every finished page is appended (flushed: a ``kill -9`` loses
  nothing the kernel has). A run that starts on a journal fetches again every
  page that was admitted and not finished, whatever Scrapy's own queue says
  (its read position is only saved on a clean close, so after a crash it would
  replay stale entries and skip new ones: ``Scheduler`` discards it). A run that
  finishes its frontier clears the journal, so the next run on the same
  ``JOBDIR`` (cron) is a new crawl.

In distributed mode ``crawler.runtime.distributed.queue.SharedQueue`` keeps the
same bitmaps and the page budget in Redis, one for all workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from weakref import WeakKeyDictionary

from pyroaring import BitMap
from scrapy.core.scheduler import Scheduler as ScrapyScheduler
from scrapy.dupefilters import BaseDupeFilter
from scrapy.http import Request
from scrapy.utils.defer import deferred_from_coro

from crawler.parsing.items import SCHEMA_VERSION
from crawler.runtime.config import spider_args
from crawler.runtime.verdict import fail_and_close, fail_at_start
from crawler.storage.connection import MongoStore
from crawler.storage.schema import SCHEMAS
from crawler.storage.signals import page_finished, pages_pending

logger = logging.getLogger(__name__)

JOURNAL = "imdb-frontier.jsonl"
SNAPSHOT = "imdb-frontier.done"  # finished ids of earlier sessions of the job (roaring bitmaps)
KINDS = ("tt", "nm")


def id_number(page_id: str) -> tuple[int, int]:
    """``("tt0133093")`` → ``(0, 133093)``: the kind's index and the id's number; ValueError otherwise."""
    kind = KINDS.index(page_id[:2])
    number = int(page_id[2:])
    if not 0 <= number < 2**32:
        raise ValueError(f"id out of range: {page_id}")
    return kind, number


class IdSet:
    """An exact set of title and name ids: one roaring bitmap per kind."""

    def __init__(self) -> None:
        self.bitmaps = [BitMap() for _ in KINDS]

    def add(self, page_id: str) -> bool:
        """Add ``page_id``; True when it was not there yet."""
        kind, number = id_number(page_id)
        bitmap = self.bitmaps[kind]
        if number in bitmap:
            return False
        bitmap.add(number)
        return True

    def __contains__(self, page_id: str) -> bool:
        kind, number = id_number(page_id)
        return number in self.bitmaps[kind]

    def __len__(self) -> int:
        return sum(len(b) for b in self.bitmaps)

    def nbytes(self) -> int:
        """Memory the ids take (their serialized size, which is what roaring holds)."""
        return sum(len(b.serialize()) for b in self.bitmaps)

    def serialize(self) -> bytes:
        parts = [b.serialize() for b in self.bitmaps]
        return b"".join(len(p).to_bytes(8, "big") + p for p in parts)

    @classmethod
    def deserialize(cls, data: bytes) -> IdSet:
        found = cls()
        position = 0
        for kind in range(len(KINDS)):
            size = int.from_bytes(data[position : position + 8], "big")
            found.bitmaps[kind] = BitMap.deserialize(data[position + 8 : position + 8 + size])
            position += 8 + size
        return found


class JournalError(Exception):
    """The frontier journal in JOBDIR cannot be read or written; the message says which file and why."""


class Journal:
    """``JOBDIR/imdb-frontier.jsonl``: admitted and finished pages, appended line by line.

    A line that cannot be read (cut short by a crash, or not ours) is skipped and counted; a
    snapshot or journal that cannot be read at all, or a write that fails (a full disk), is a
    ``JournalError``: one line for the operator, never a traceback on every later run. After a
    failed write nothing more is written, so the journal never says a page finished whose links
    it could not record.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / JOURNAL
        self.snapshot = self.directory / SNAPSHOT
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self.failed = False

    def load(self) -> tuple[IdSet, list[tuple[str, int]]]:
        """``(finished ids, [(id, depth) admitted but never finished])`` of earlier sessions.

        Then compacts: finished ids go to a bitmap snapshot, unfinished ones stay
        in a fresh journal until they are admitted again. A line cut short by a
        crash is skipped.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            done = self._snapshot()
            if not self.path.exists():
                return done, []
            torn = 0
            for entry in self._entries():
                if entry is None:
                    torn += 1
                elif "done" in entry:
                    done.add(entry["done"])
            pending: dict[str, int] = {}
            for entry in self._entries():
                if entry and "id" in entry and entry["id"] not in done:
                    pending.setdefault(entry["id"], entry["depth"])
            if torn:
                logger.warning("Frontier journal %s: skipped %d unreadable line(s) (cut short by a crash, or not "
                               "written by the crawler)", self.path, torn)  # fmt: skip
            _replace(self.snapshot, done.serialize())
            lines = "".join(json.dumps({"id": i, "depth": d}) + "\n" for i, d in pending.items())
            _replace(self.path, lines.encode("utf-8"))
        except OSError as exc:
            raise JournalError(f"the frontier journal in {self.directory} cannot be read or rewritten "
                               f"({exc.strerror or exc})") from None  # fmt: skip
        return done, list(pending.items())

    def _snapshot(self) -> IdSet:
        if not self.snapshot.exists():
            return IdSet()
        try:
            return IdSet.deserialize(self.snapshot.read_bytes())
        except (ValueError, IndexError, OverflowError, MemoryError, SystemError) as exc:
            raise JournalError(
                f"{self.snapshot} is unreadable ({type(exc).__name__}): it says which pages of the job finished. "
                f"Move it away (and {JOURNAL} beside it) to start the job anew"
            ) from None

    def _entries(self) -> Iterable[dict[str, Any] | None]:
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    yield None
                    continue
                yield _entry(entry)

    def write(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append entries (flushed); JournalError once a write fails, and nothing written after that."""
        with self._lock:
            if self.failed:
                return
            try:
                if self._file is None:
                    self._file = self._open_for_append()
                self._file.writelines(json.dumps(e) + "\n" for e in entries)
                self._file.flush()
            except OSError as exc:
                self.failed = True
                raise JournalError(f"cannot write the frontier journal in {self.directory} "
                                   f"({exc.strerror or exc})") from None  # fmt: skip

    def _open_for_append(self) -> IO[str]:
        return open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):  # a full disk: said when the write failed
                    self._file.close()
                self._file = None

    def clear(self) -> None:
        """The job is complete: the next run on this folder starts a new crawl."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.snapshot.unlink(missing_ok=True)


def _entry(entry: Any) -> dict[str, Any] | None:
    """A journal line's entry, checked: ``{"id": page id, "depth": n}`` or ``{"done": page id}``; else None."""
    if not isinstance(entry, dict):
        return None
    page_id = entry.get("id", entry.get("done"))
    if not isinstance(page_id, str):
        return None
    try:
        id_number(page_id)
    except (ValueError, IndexError):
        return None
    if "done" in entry:
        return {"done": page_id}
    depth = entry.get("depth", 0)
    return {"id": page_id, "depth": depth} if isinstance(depth, int) and 0 <= depth < 2**31 else None


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class LocalLedger:
    """Admitted and finished pages of a single-process run (with ``JOBDIR``: of the whole job)."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal
        self.admitted = IdSet()
        self.done = IdSet()
        self.count = 0
        self._lock = threading.Lock()

    def load(self) -> list[tuple[str, int]]:
        """Pages an interrupted run of the job admitted and never finished."""
        if self.journal is None:
            return []
        self.done, pending = self.journal.load()
        self.admitted = IdSet.deserialize(self.done.serialize())
        self.count = len(self.done)
        return pending

    def admit(self, requests: list[Request], budget: int | None) -> list[str]:
        """A verdict per page request: ``admitted``, ``seen`` or ``over_budget``."""
        verdicts = []
        with self._lock:
            for request in requests:
                page_id = request.meta["imdb_id"]
                refusal = self._refusal(page_id, budget)
                if refusal is None:
                    self.admitted.add(page_id)
                    self.count += 1
                verdicts.append(refusal or "admitted")
        if self.journal is not None:
            self.journal.write(
                {"id": r.meta["imdb_id"], "depth": r.meta.get("depth", 0)}
                for r, verdict in zip(requests, verdicts, strict=True)
                if verdict == "admitted"
            )
        return verdicts

    def known(self, page_id: str, budget: int | None) -> str | None:
        """The verdict a request for this page would get for sure (``seen``, ``over_budget``), else None."""
        with self._lock:
            return self._refusal(page_id, budget)

    def _refusal(self, page_id: str, budget: int | None) -> str | None:
        """Why this page would not be admitted now (``seen``, ``over_budget``), else None; under the lock."""
        if page_id in self.admitted:
            return "seen"
        if budget is not None and self.count >= budget:
            return "over_budget"
        return None

    def finish(self, page_ids: list[str]) -> int:
        """Mark pages finished; how many of them were admitted and not finished before."""
        with self._lock:
            newly = [page_id for page_id in page_ids if page_id in self.admitted and self.done.add(page_id)]
        if self.journal is not None and newly:
            self.journal.write({"done": page_id} for page_id in newly)
        return len(newly)

    def unfinished(self) -> int | None:
        return len(self.admitted) - len(self.done)

    def flush(self) -> int:
        return 0  # nothing is ever held back in memory

    def close(self, reason: str) -> None:
        if self.journal is None:
            return
        unfinished = self.unfinished()
        if reason == "finished" and unfinished == 0:
            self.journal.clear()
            logger.info("Every admitted page finished: the job in %s is complete", self.journal.directory)
        else:
            self.journal.close()
            logger.info(
                "%d admitted pages not finished (%s): the same command with JOBDIR=%s fetches them",
                unfinished, reason, self.journal.directory,
            )  # fmt: skip


def is_page(request: Any) -> bool:
    """A request for a title or name page (the spider marks them with ``meta["imdb_id"]``)."""
    return isinstance(request, Request) and "imdb_id" in request.meta


class Frontier:
    """Which pages are fetched: each once, none fresh, within the budget; and which ones finished.

    The policy (fresh pages, budget) is here; the ledger (``LocalLedger``, or
    ``SharedQueue`` shared by the workers of a distributed run) remembers.
    """

    def __init__(self, crawler: Any, ledger: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.ledger = ledger
        self.fresh = IdSet()
        self.budget: int | None = None
        self.stopping = False
        self.closing: asyncio.Future[None] | None = None
        crawler.signals.connect(self.page_finished, signal=page_finished)

    async def open(self, spider: Any) -> None:
        args = spider_args(self.crawler)
        self.budget = args.max_pages
        for key in ("frontier/admitted", "frontier/finished"):
            self.stats.set_value(key, 0)
        try:
            pending = await asyncio.to_thread(self.ledger.load)
        except JournalError as exc:
            logger.error("Cannot resume: %s", exc)
            self.ledger.journal = None  # never written over: the operator decides what to do with it
            fail_at_start(self.crawler, "start_error")
            return
        if pending:
            logger.info("Resuming: %d pages were admitted but not finished; fetching them again", len(pending))
            self.stats.set_value("frontier/resumed", len(pending))
            self.crawler.signals.send_catch_log(signal=pages_pending, pages=pending)
        refresh_after = args.refresh_after
        if refresh_after is not None and args.start != "stale":
            self.fresh = await asyncio.to_thread(self.load_fresh, refresh_after)

    def load_fresh(self, refresh_after: timedelta) -> IdSet:
        """Ids stored by this schema version more recently than ``refresh_after``: not fetched again."""
        db = MongoStore.for_crawler(self.crawler).open()
        cutoff = datetime.now(UTC) - refresh_after
        query = {"last_seen": {"$gte": cutoff}, "schema_version": {"$gte": SCHEMA_VERSION}}
        fresh = IdSet()
        for collection in SCHEMAS:
            for document in db[collection].find(query, {"_id": 1}).batch_size(10_000):
                with contextlib.suppress(ValueError, IndexError):
                    fresh.add(document["_id"])
        logger.info(
            "%d documents were seen in the last %s and will not be fetched again (%.1f kB of bitmap)",
            len(fresh), refresh_after, fresh.nbytes() / 1024,
        )  # fmt: skip
        return fresh

    def admit(self, requests: list[Request]) -> list[str]:
        """A verdict per page request: ``admitted``, or ``seen``, ``fresh``, ``over_budget``, ``invalid_id``."""
        verdicts: list[str | None] = []
        candidates = []
        for request in requests:
            try:
                verdicts.append("fresh" if request.meta["imdb_id"] in self.fresh else None)
            except (ValueError, IndexError):
                verdicts.append("invalid_id")
            if verdicts[-1] is None:
                candidates.append(request)
        try:
            decided = iter(self.ledger.admit(candidates, self.budget) if candidates else [])
        except JournalError as exc:
            self.unwritable(exc)
            decided = iter(["admitted"] * len(candidates))  # in memory already; the crawl is stopping
        final = [verdict or next(decided) for verdict in verdicts]
        for verdict in final:
            self.stats.inc_value(f"frontier/{verdict}")
        return final

    def refuses(self, page_id: str) -> bool:
        """Whether a request for this page is refused whatever it carries (fresh, seen, over budget); counted so.

        Asked by the spider before it builds a link's request: most links of a
        page lead to pages already admitted (8 899 of 9 399 over a crawl of 500
        pages), and each such request went through Scrapy's spider middlewares,
        the engine's signals and the scheduler only to be refused here. Only
        what is certain is answered: a shared ledger (distributed mode) decides
        in Redis, and an invalid id is named by ``admit``.
        """
        try:
            verdict = "fresh" if page_id in self.fresh else self.ledger.known(page_id, self.budget)
        except (ValueError, IndexError):
            return False
        if verdict is None:
            return False
        self.stats.inc_value(f"frontier/{verdict}")
        return True

    def page_finished(self, page_ids: list[str], outcome: str) -> None:
        self.stats.inc_value(f"pages/{outcome}", len(page_ids))
        valid = [page_id for page_id in page_ids if page_id[:2] in KINDS and page_id[2:].isdigit()]
        if valid:
            try:
                finished = self.ledger.finish(valid)
            except JournalError as exc:
                self.unwritable(exc)
                finished = len(valid)
            if finished:
                self.stats.inc_value("frontier/finished", finished)

    def unwritable(self, exc: JournalError) -> None:
        """JOBDIR cannot take the journal (a full disk): stop now, once; the same command resumes later."""
        if self.stopping:
            return
        self.stopping = True
        logger.error("Stopping: %s. Free space and run the same command with the same JOBDIR to resume", exc)
        self.closing = fail_and_close(self.crawler, "jobdir_unwritable")

    def flush(self) -> None:
        """Record the finished pages the ledger holds back (a shared ledger records them in batches)."""
        late = self.ledger.flush()
        if late:
            self.stats.inc_value("frontier/finished", late)

    def close(self, reason: str) -> None:
        self.flush()
        unfinished = self.ledger.unfinished()
        if unfinished is not None:
            self.stats.set_value("frontier/unfinished", unfinished)
        self.ledger.close(reason)


class RequestFilter(BaseDupeFilter):
    """``DUPEFILTER_CLASS`` for the few requests that are not pages (robots.txt, sitemaps): fingerprints in memory.

    Pages pass: the frontier has decided on them already.
    """

    def __init__(self, fingerprinter: Any) -> None:
        self.fingerprinter = fingerprinter
        self.fingerprints: set[bytes] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> RequestFilter:
        return cls(crawler.request_fingerprinter)

    def request_seen(self, request: Request) -> bool:
        if is_page(request):
            return False
        fingerprint = self.fingerprinter.fingerprint(request)
        if fingerprint in self.fingerprints:
            return True
        self.fingerprints.add(fingerprint)
        return False


_SCHEDULERS: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()


def register_scheduler(crawler: Any, scheduler: Any) -> None:
    """The crawl's scheduler (this module's, or the distributed one), for ``queued`` to find."""
    _SCHEDULERS[crawler] = scheduler


def frontier_of(crawler: Any) -> Frontier | None:
    """The crawl's frontier (None before its scheduler exists)."""
    return getattr(_SCHEDULERS.get(crawler), "frontier", None)


def queued(crawler: Any) -> int | None:
    """Requests waiting in the crawl's scheduler (None before it exists)."""
    scheduler = _SCHEDULERS.get(crawler)
    return len(scheduler) if scheduler is not None else None


class Scheduler(ScrapyScheduler):
    """Scrapy's scheduler, with page requests admitted by the frontier on their way in.

    With ``JOBDIR``, a disk queue left by an earlier run is discarded: its read
    position is saved only on a clean close, so after a crash it replays stale
    entries and never reaches new ones. The frontier's journal is the one
    record of what is left to fetch (the spider schedules those pages again);
    the disk queue only keeps this run's queue off the heap.
    """

    frontier: Frontier

    @classmethod
    def from_crawler(cls, crawler: Any) -> Scheduler:
        scheduler = super().from_crawler(crawler)
        jobdir = crawler.settings.get("JOBDIR")
        scheduler.frontier = Frontier(crawler, LocalLedger(Journal(jobdir) if jobdir else None))
        register_scheduler(crawler, scheduler)
        return scheduler

    def open(self, spider: Any) -> Any:
        super().open(spider)
        return deferred_from_coro(self.frontier.open(spider))

    def close(self, reason: str) -> Any:
        self.frontier.close(reason)
        if self.dqdir:  # a run that queued nothing (stopped at its start) never made it; Scrapy writes its state there
            Path(self.dqdir).mkdir(parents=True, exist_ok=True)
        return super().close(reason)

    def enqueue_request(self, request: Request) -> bool:
        if is_page(request) and not request.dont_filter and self.frontier.admit([request])[0] != "admitted":
            return False
        return super().enqueue_request(request)

    def _dq(self) -> Any:
        if self.dqdir and Path(self.dqdir).exists():
            shutil.rmtree(self.dqdir)
        return super()._dq()
