"""The Redis keys of one distributed run, in one place.

``<job>:run`` names the job's run in progress (its group id). Per group, under
``<job>:<group>:``:

* ``requests``: the queue, a sorted set of JSON entries (score: minus the priority);
* ``admitted:<kind>:<chunk>``, ``done:<kind>:<chunk>``: bitmaps of page ids
  (``SETBIT``), in chunks of 2²³ ids so that sparse ids never allocate the space below them;
* ``count`` (pages admitted: the page budget is one counter for all workers) and ``finished``;
* ``frontier``: a marker; if it disappears while workers run, Redis lost the
  run (restarted without persistence) and the run fails ``frontier_lost``;
* ``workers`` (a set) and ``alive:<worker>``, each worker's heartbeat (a key
  that expires after ``REDIS_LEASE_TIMEOUT`` seconds unless renewed);
* ``leases:<worker>``: the page entries a worker took from the queue and has
  not finished (entry → score); ``held:<worker>``: the other entries it took
  (sitemaps), until its crawl has nothing in progress;
* ``dead``: workers whose heartbeat lapsed → the entries given back to the queue;
* ``judge``: the worker that judges the run, once.
"""

from __future__ import annotations

from dataclasses import dataclass

CHUNK_BITS = 23  # 2**23 ids (1 MB of bitmap) per Redis key


@dataclass(frozen=True)
class RunKeys:
    job: str
    group: str
    worker: str

    @property
    def run(self) -> str:
        return f"{self.job}:run"

    @property
    def prefix(self) -> str:
        return f"{self.job}:{self.group}:"

    @property
    def requests(self) -> str:
        return self.prefix + "requests"

    @property
    def count(self) -> str:
        return self.prefix + "count"

    @property
    def finished(self) -> str:
        return self.prefix + "finished"

    @property
    def frontier(self) -> str:
        return self.prefix + "frontier"

    @property
    def workers(self) -> str:
        return self.prefix + "workers"

    @property
    def dead(self) -> str:
        return self.prefix + "dead"

    @property
    def judge(self) -> str:
        return self.prefix + "judge"

    @property
    def alive(self) -> str:
        return self.of("alive", self.worker)

    @property
    def leases(self) -> str:
        return self.of("leases", self.worker)

    @property
    def held(self) -> str:
        return self.of("held", self.worker)

    def of(self, kind: str, worker: str) -> str:
        """A member's own key: ``alive``, ``leases`` or ``held`` of ``worker``."""
        return f"{self.prefix}{kind}:{worker}"

    def bit(self, kind: str, page_id: str, number: int) -> tuple[str, int]:
        """The bitmap key and offset of a page id (``kind``: ``admitted`` or ``done``)."""
        return f"{self.prefix}{kind}:{page_id[:2]}:{number >> CHUNK_BITS}", number & ((1 << CHUNK_BITS) - 1)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
