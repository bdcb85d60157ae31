"""A crash-safe journal of the crawl frontier, kept in ``JOBDIR``.

Scrapy's ``JOBDIR`` survives a graceful pause (one Ctrl-C) but not a crash:
requests in flight when the process dies are gone from the disk queue while
their fingerprints stay in ``requests.seen``, so they would never be fetched
again. This journal records every page the spider schedules and every page
whose result is safely stored (written to MongoDB or to the spool); on resume
the spider schedules again the pages that were scheduled but not finished.

Lines are written with ``write`` + ``flush``: a killed process loses nothing
the operating system already has. Without ``JOBDIR`` nothing is written.

Membership ("was this id scheduled?") is a Bloom filter, so memory stays fixed
however large the crawl (see ``crawler.runtime.dupefilter``); only a resume holds the
unfinished pages of the interrupted run in memory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from crawler.runtime.dupefilter import DEFAULT_CAPACITY, DEFAULT_ERROR_RATE, new_bloom


class Frontier:
    """Scheduled and finished page ids, optionally journaled to a folder."""

    def __init__(
        self,
        directory: str | Path | None = None,
        capacity: int = DEFAULT_CAPACITY,
        error_rate: float = DEFAULT_ERROR_RATE,
    ) -> None:
        self.seen = new_bloom(capacity, error_rate)
        self.count = 0
        self._pending: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._journal: IO[str] | None = None
        if directory:
            path = Path(directory) / "imdb-frontier.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                self._load(path)
            self._journal = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole crawl

    def _load(self, path: Path) -> None:
        scheduled: dict[str, int] = {}
        finished: set[str] = set()
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if "done" in entry:
                    finished.add(entry["done"])
                elif entry["id"] not in scheduled:
                    scheduled[entry["id"]] = entry.get("depth", 0)
                    self.seen.add(entry["id"])
        self.count = len(scheduled)
        self._pending = [(i, d) for i, d in scheduled.items() if i not in finished]

    def __contains__(self, page_id: str) -> bool:
        return page_id in self.seen

    def __len__(self) -> int:
        return self.count

    def pending(self) -> list[tuple[str, int]]:
        """Pages scheduled by an earlier, interrupted run and not finished (read once)."""
        pending, self._pending = self._pending, []
        return pending

    def schedule(self, page_id: str, depth: int) -> None:
        with self._lock:
            self.seen.add(page_id)
            self.count += 1
            self._write({"id": page_id, "depth": depth})

    def finish(self, page_ids: Iterable[str]) -> None:
        with self._lock:
            for page_id in page_ids:
                self._write({"done": page_id})

    def _write(self, entry: dict[str, object]) -> None:
        if self._journal is not None:
            self._journal.write(json.dumps(entry) + "\n")
            self._journal.flush()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
