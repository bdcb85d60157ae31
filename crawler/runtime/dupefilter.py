"""Bounded-memory duplicate filters: a Bloom filter instead of a set of fingerprints.

Scrapy's ``RFPDupeFilter`` keeps every request fingerprint in a Python set,
about 100 bytes per request, so a crawl of tens of millions of pages needs
gigabytes just to remember what it saw. ``BloomDupeFilter`` keeps them in an
rbloom Bloom filter sized up front for ``SEEN_SET_CAPACITY`` keys at
``SEEN_SET_ERROR_RATE`` false positives: 3.6 bytes per key at the default 1e-6.

A false positive makes the crawler believe it already fetched a page it did
not: at 1e-6 that is one page in a million, and a later run (refresh or
``start=stale``) picks it up. Past its capacity the filter still works but its
false-positive rate rises; a warning says so. With ``JOBDIR`` the filter is
saved there on close and loaded on resume.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rbloom import Bloom
from scrapy.dupefilters import BaseDupeFilter
from scrapy.http import Request

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 5_000_000
DEFAULT_ERROR_RATE = 1e-6


def fingerprint_hash(fingerprint: bytes) -> int:
    """rbloom's hash: the first 128 bits of the (SHA-1) fingerprint, stable across processes."""
    return int.from_bytes(fingerprint[:16], "big", signed=True)


def new_bloom(capacity: int, error_rate: float, hash_func: Any = None) -> Bloom:
    if capacity < 1 or not 0 < error_rate < 1:
        raise ValueError("SEEN_SET_CAPACITY must be >= 1 and 0 < SEEN_SET_ERROR_RATE < 1")
    return Bloom(capacity, error_rate, hash_func) if hash_func else Bloom(capacity, error_rate)


class BloomDupeFilter(BaseDupeFilter):
    """``DUPEFILTER_CLASS`` with memory fixed by capacity and error rate, not by crawl size."""

    def __init__(
        self,
        fingerprinter: Any,
        capacity: int = DEFAULT_CAPACITY,
        error_rate: float = DEFAULT_ERROR_RATE,
        path: str | Path | None = None,
        debug: bool = False,
    ) -> None:
        self.fingerprinter = fingerprinter
        self.capacity = capacity
        self.path = Path(path) if path else None
        self.debug = debug
        self.added = 0
        self.warned = False
        if self.path and self.path.exists():
            self.bloom = Bloom.load(str(self.path), fingerprint_hash)
            logger.info("Loaded the seen-set from %s (about %d requests)", self.path, self.bloom.approx_items)
        else:
            self.bloom = new_bloom(capacity, error_rate, fingerprint_hash)

    @classmethod
    def from_crawler(cls, crawler: Any) -> BloomDupeFilter:
        settings = crawler.settings
        jobdir = settings.get("JOBDIR")
        return cls(
            crawler.request_fingerprinter,
            capacity=settings.getint("SEEN_SET_CAPACITY", DEFAULT_CAPACITY),
            error_rate=settings.getfloat("SEEN_SET_ERROR_RATE", DEFAULT_ERROR_RATE),
            path=Path(jobdir) / "seen.bloom" if jobdir else None,
            debug=settings.getbool("DUPEFILTER_DEBUG"),
        )

    def request_seen(self, request: Request) -> bool:
        fingerprint = self.fingerprinter.fingerprint(request)
        if fingerprint in self.bloom:
            return True
        self.bloom.add(fingerprint)
        self.added += 1
        if self.added > self.capacity and not self.warned:
            self.warned = True
            logger.warning(
                "More than SEEN_SET_CAPACITY=%d requests: the seen-set's false-positive rate is rising; "
                "raise SEEN_SET_CAPACITY for crawls this large",
                self.capacity,
            )
        return False

    def close(self, reason: str) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.bloom.save(str(self.path))

    def log(self, request: Request, spider: Any) -> None:
        if self.debug:
            logger.debug("Filtered duplicate request: %(request)s", {"request": request})
