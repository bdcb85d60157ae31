"""The shared queue and ledger of a distributed run, in Redis: admit, take under lease, finish.

Three Lua scripts, each atomic:

* **admit** a batch of page requests and queue them: a page is never admitted
  without being queued, nor queued twice, nor beyond the page budget;
* **take** the next entry: it leaves the queue and enters this worker's lease
  (``leases:<worker>`` for pages, ``held:<worker>`` for the rest), so that it
  exists in Redis until it is finished, whatever happens to the worker;
* **finish** pages: their ``done`` bits are set, the run's ``finished`` count
  grows by the pages newly finished, and their leases end.

Entries are JSON written by ``crawler.runtime.serialization``; an entry that
is not one of this project's requests is refused (never imported, never run),
counted in ``redis/refused_entries`` and dropped, and the run fails at the end:
someone else writes into the queue.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from scrapy.http import Request

from crawler.runtime.distributed.keys import RunKeys
from crawler.runtime.frontier import id_number, is_page
from crawler.runtime.serialization import entry_of, request_from_entry

logger = logging.getLogger(__name__)

# KEYS: count, queue. ARGV: budget (-1: none), then per request: bitmap key ('' = not a page), offset, score, data.
_ADMIT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local budget = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 4 do
  local verdict = 1
  if ARGV[i] ~= '' then
    if redis.call('GETBIT', ARGV[i], ARGV[i + 1]) == 1 then verdict = 0
    elseif budget >= 0 and count >= budget then verdict = 2
    else redis.call('SETBIT', ARGV[i], ARGV[i + 1], 1); count = count + 1 end
  end
  if verdict == 1 then redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i + 3]) end
  out[#out + 1] = verdict
end
redis.call('SET', KEYS[1], count)
return out
"""
# KEYS: queue, leases, held, workers. ARGV: worker. The first entry, moved into this worker's lease.
# A page's entry is the only kind that holds the key "imdb_id" (JSON escapes quotes inside strings).
_TAKE = """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
redis.call('ZREM', KEYS[1], first[1])
local lease = KEYS[3]
if string.find(first[1], '"imdb_id":', 1, true) then lease = KEYS[2] end
redis.call('HSET', lease, first[1], first[2])
redis.call('SADD', KEYS[4], ARGV[1])
return first[1]
"""
# KEYS: finished, leases. ARGV: per page: admitted key, done key, offset, its entry ('' when not leased here).
_FINISH = """
local n = 0
for i = 1, #ARGV, 4 do
  if redis.call('GETBIT', ARGV[i], ARGV[i + 2]) == 1 and redis.call('SETBIT', ARGV[i + 1], ARGV[i + 2], 1) == 0 then
    n = n + 1
  end
  if ARGV[i + 3] ~= '' then redis.call('HDEL', KEYS[2], ARGV[i + 3]) end
end
redis.call('INCRBY', KEYS[1], n)
return n
"""
_VERDICTS = {0: "seen", 1: "admitted", 2: "over_budget"}
REFUSED_PER_CALL = 100  # foreign entries dropped per call of take() before it returns


class SharedQueue:
    """One queue, one set of bitmaps and one page budget for every worker of the run.

    It is the frontier's ledger (``crawler.runtime.frontier.Frontier``) in
    distributed mode: ``admit``, ``finish``, ``flush``. Redis errors propagate:
    the scheduler lives through outages.
    """

    def __init__(self, client: redis.Redis, keys: RunKeys, spider: Any, base_url: str, stats: Any) -> None:
        self.client = client
        self.keys = keys
        self.spider = spider
        self.base_url = base_url
        self.stats = stats
        self.admit_script = client.register_script(_ADMIT)
        self.take_script = client.register_script(_TAKE)
        self.finish_script = client.register_script(_FINISH)
        self.leased: dict[str, bytes] = {}  # page id → its entry: pages this worker took and has not finished
        self.unsent: list[str] = []  # finished pages not yet recorded in Redis (sent by flush)

    # --- the frontier's ledger --------------------------------------------------

    def load(self) -> list[tuple[str, int]]:
        return []  # the queue in Redis is the frontier: nothing to reschedule

    def admit(self, requests: list[Request], budget: int | None) -> list[str]:
        """Admit and queue page requests in one step; a RedisError leaves nothing half done."""
        return [_VERDICTS[v] for v in self._push(requests, budget, pages=True)]

    def known(self, page_id: str, budget: int | None) -> None:
        """Nothing is certain before Redis answers (another worker, a frontier lost and seeded again): None."""
        return None

    def push(self, requests: list[Request]) -> None:
        """Queue requests that are not pages (sitemaps): no admission, no budget."""
        self._push(requests, None, pages=False)

    def _push(self, requests: list[Request], budget: int | None, pages: bool) -> list[int]:
        argv: list[Any] = [-1 if budget is None else budget]
        for request in requests:
            key, offset = self.bit("admitted", request.meta["imdb_id"]) if pages else ("", 0)
            argv += [key, offset, -request.priority, entry_of(request, self.spider)]
        return list(self.admit_script(keys=[self.keys.count, self.keys.requests], args=argv))

    def bit(self, kind: str, page_id: str) -> tuple[str, int]:
        return self.keys.bit(kind, page_id, id_number(page_id)[1])

    def finish(self, page_ids: list[str]) -> int:
        """Recorded by the next ``flush``: after the links these pages gave are admitted (the scheduler's order)."""
        self.unsent += page_ids
        return 0

    def flush(self) -> int:
        """Record the finished pages not yet recorded and end their leases; how many were newly finished."""
        if not self.unsent:
            return 0
        argv: list[Any] = []
        for page_id in self.unsent:
            admitted, offset = self.bit("admitted", page_id)
            argv += [admitted, self.bit("done", page_id)[0], offset, self.leased.get(page_id, b"")]
        finished = int(self.finish_script(keys=[self.keys.finished, self.keys.leases], args=argv))
        for page_id in self.unsent:
            self.leased.pop(page_id, None)
        self.unsent = []
        return finished

    def unfinished(self) -> int | None:
        return None  # only the whole run can say: judged from Redis' counts by the last worker

    def close(self, reason: str) -> None:
        pass

    # --- the queue ----------------------------------------------------------------

    def take(self) -> Request | None:
        """The next request, leased to this worker; None when the queue is empty."""
        for _ in range(REFUSED_PER_CALL):
            entry = self.take_script(
                keys=[self.keys.requests, self.keys.leases, self.keys.held, self.keys.workers], args=[self.keys.worker]
            )
            if entry is None:
                return None
            try:
                request = request_from_entry(entry, self.spider, self.base_url)
            except ValueError as exc:
                self.refuse(entry, exc)
                continue
            if is_page(request):
                self.leased[request.meta["imdb_id"]] = entry
            return request
        return None

    def refuse(self, entry: bytes, exc: ValueError) -> None:
        """Drop an entry this project never wrote; counted, and said once."""
        self.client.hdel(self.keys.leases, entry)
        self.client.hdel(self.keys.held, entry)
        self.stats.inc_value("redis/refused_entries")
        if self.stats.get_value("redis/refused_entries") == 1:
            logger.error(
                "Refused an entry of the shared queue that is not one of this project's requests (%s): someone "
                "else writes into %s; entries like it are dropped and counted in redis/refused_entries, and the "
                "run will fail", exc, self.keys.requests,
            )  # fmt: skip

    def holds(self, request: Request) -> bool:
        """Whether this is another try of a page leased to this worker (it stays here, under the same lease).

        Retries and the browser fallback come back with ``dont_filter``; a link to the page is a new request,
        for the frontier to judge.
        """
        return request.dont_filter and is_page(request) and request.meta["imdb_id"] in self.leased

    def release_held(self) -> None:
        """The non-page entries this worker took are done with (called when its crawl has nothing in progress)."""
        self.client.delete(self.keys.held)

    def __len__(self) -> int:
        return int(self.client.zcard(self.keys.requests))
