"""Heartbeats and leases: a worker that dies gives its pages back to the queue, in the same run.

Every entry a worker takes from the shared queue is leased to it
(``crawler.runtime.distributed.queue``) until the page is finished: stored,
spooled, or counted under a reason. A worker renews its heartbeat
(``alive:<worker>``, a key that expires after ``REDIS_LEASE_TIMEOUT``
seconds) a few times per timeout. Once a second every live worker asks Redis,
in one script, whether the run's frontier is still there and whether any
member's heartbeat lapsed; a lapsed worker's leases go back to the queue,
where any live worker takes them. Only pages that were in flight in the dead
worker (downloading, parsing, or waiting in its writer's batch) are fetched
twice.

A worker paused longer than the timeout (a stopped VM, a frozen process)
counts as dead too: its pages are given to others, and when it wakes up its
heartbeat makes it a member again; the pages it was fetching are then fetched
twice, never lost.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from crawler.runtime.distributed.keys import RunKeys, text

logger = logging.getLogger(__name__)

# KEYS: workers, frontier, queue, dead. ARGV: prefix, now.
# Returns -1 when the frontier is gone, else {worker, pages given back, other entries given back, …}.
_RECLAIM = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local out = {}
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'alive:' .. worker) == 0 then
    local counts = {}
    for _, kind in ipairs({'leases:', 'held:'}) do
      local entries = redis.call('HGETALL', ARGV[1] .. kind .. worker)
      for i = 1, #entries, 2 do redis.call('ZADD', KEYS[3], entries[i + 1], entries[i]) end
      redis.call('DEL', ARGV[1] .. kind .. worker)
      counts[#counts + 1] = #entries / 2
    end
    redis.call('SREM', KEYS[1], worker)
    redis.call('HSET', KEYS[4], worker, cjson.encode({pages = counts[1], others = counts[2], at = ARGV[2]}))
    out[#out + 1] = worker
    out[#out + 1] = counts[1]
    out[#out + 1] = counts[2]
  end
end
return out
"""
# KEYS: queue, leases, held, workers, alive. Gives this worker's leases back and leaves the run; {pages, others}.
_GIVE_BACK = """
local counts = {}
for i = 2, 3 do
  local entries = redis.call('HGETALL', KEYS[i])
  for j = 1, #entries, 2 do redis.call('ZADD', KEYS[1], entries[j + 1], entries[j]) end
  redis.call('DEL', KEYS[i])
  counts[#counts + 1] = #entries / 2
end
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[5])
return counts
"""


class FrontierLost(Exception):
    """Redis no longer holds the run's frontier (restarted without its data)."""


class Leases:
    """This worker's heartbeat, and the leases of workers whose heartbeat lapsed given back to the queue."""

    def __init__(self, client: redis.Redis, keys: RunKeys, timeout: float) -> None:
        self.client = client
        self.keys = keys
        self.timeout = max(1, int(timeout))
        self.every = max(1.0, self.timeout / 3)  # a heartbeat is renewed this often
        self.last_beat = 0.0
        self.reclaim_script = client.register_script(_RECLAIM)
        self.give_back_script = client.register_script(_GIVE_BACK)

    def beat(self, now: float | None = None) -> None:
        """Renew this worker's heartbeat when it is due (and be a member again after a long pause)."""
        moment = time.monotonic() if now is None else now
        if moment - self.last_beat < self.every:
            return
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.alive, int(time.time()), ex=self.timeout)
            pipe.sadd(self.keys.workers, self.keys.worker)
            pipe.execute()
        self.last_beat = moment

    def reclaim(self) -> list[tuple[str, int, int]]:
        """``[(worker, pages, others)]`` given back to the queue for workers whose heartbeat lapsed.

        Raises FrontierLost when Redis no longer holds the run, RedisError like any call.
        """
        keys = self.keys
        found = self.reclaim_script(
            keys=[keys.workers, keys.frontier, keys.requests, keys.dead], args=[keys.prefix, int(time.time())]
        )
        if found == -1:
            raise FrontierLost(keys.group)
        dead = []
        for start in range(0, len(found), 3):
            worker = text(found[start])
            pages, others = int(found[start + 1]), int(found[start + 2])
            dead.append((worker, pages, others))
            logger.warning(
                "Worker %s of run %s stopped answering (no heartbeat for %ds): its %d pages in progress go back "
                "to the queue", worker[:8], keys.group, self.timeout, pages,
            )  # fmt: skip
        return dead

    def leased_elsewhere(self) -> int:
        """Pages leased to the other members of the run (live, or dead and not yet given back)."""
        return sum(self.of_peers("hlen", "leases").values())

    def of_peers(self, command: str, kind: str) -> dict[str, int]:
        """``{member: answer}``: Redis' ``command`` on each other member's ``kind`` key (``alive``, ``leases``)."""
        keys = self.keys
        peers = [text(m) for m in self.client.smembers(keys.workers) if text(m) != keys.worker]
        with self.client.pipeline(transaction=False) as pipe:
            for worker in peers:
                getattr(pipe, command)(keys.of(kind, worker))
            return dict(zip(peers, (int(n) for n in pipe.execute()), strict=True)) if peers else {}

    def give_back(self) -> tuple[int, int]:
        """Leave the run's members, giving back every entry still leased to this worker: ``(pages, others)``."""
        keys = self.keys
        pages, others = self.give_back_script(
            keys=[keys.requests, keys.leases, keys.held, keys.workers, keys.alive], args=[keys.worker]
        )
        return int(pages), int(others)

    def stats(self) -> dict[str, Any]:
        """Exact counts of the run from Redis: admitted, finished, queued, leased."""
        keys = self.keys
        members = [text(m) for m in self.client.smembers(keys.workers)]
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(keys.count)
            pipe.get(keys.finished)
            pipe.zcard(keys.requests)
            for worker in members:
                pipe.hlen(keys.of("leases", worker))
            pipe.hgetall(keys.dead)
            admitted, finished, queued, *leased, dead = pipe.execute()
        return {
            "admitted": int(admitted or 0),
            "finished": int(finished or 0),
            "queued": int(queued),
            "leased": sum(int(n) for n in leased),
            "dead": {k.decode(): json.loads(v) for k, v in dead.items()},
        }
