"""The workers of one distributed run, tied together by an id kept in Redis.

With ``REDIS_URL`` set, any number of worker processes crawl one frontier
(``crawler.runtime.addons.RedisAddon``); each writes its own ``crawl_runs`` document.
The run they form is named by ``<job>:run`` in Redis: the first worker to
start sets it (``SET NX`` with an expiry), later workers read it, and every
worker refreshes its expiry while it crawls, so a run whose workers all died
is forgotten after ``RUN_GROUP_TTL`` seconds and the next start begins a new
one. Each worker records the id as ``run_group`` in its run document.

At the end, the run is judged as a whole by the last worker to finish (see
``MongoPipeline.record_run_end``): a worker's share alone says little (one
may have fetched only 404s while the others stored everything). That worker
deletes the key, so the next scheduled start is a new run.
"""

from __future__ import annotations

import uuid

import redis

# Delete the key only if it still names our run (another run may have begun since).
_END = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RunGroup:
    """Join, keep alive and end the distributed run of one job."""

    def __init__(self, redis_url: str, job: str, ttl: float = 120.0) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.key = f"{job}:run"
        self.ttl = max(1, int(ttl))
        self.id: str | None = None

    def join(self) -> str:
        """The id of the run in progress, or of a new one if none is."""
        self.client.set(self.key, uuid.uuid4().hex, nx=True, ex=self.ttl)
        value = self.client.get(self.key)
        if value is None:  # expired between the two calls: start again
            return self.join()
        self.id = value.decode() if isinstance(value, bytes) else str(value)
        return self.id

    def refresh(self) -> None:
        """Keep the run alive while this worker crawls."""
        if self.id is None:
            return
        # Set it again if it expired while every worker was stalled; else push its expiry.
        if not self.client.set(self.key, self.id, nx=True, ex=self.ttl) and self.client.get(self.key) in (
            self.id,
            self.id.encode(),
        ):
            self.client.expire(self.key, self.ttl)

    def end(self) -> None:
        """Forget the run (called by the worker that judged it)."""
        if self.id is not None:
            self.client.eval(_END, 1, self.key, self.id)
