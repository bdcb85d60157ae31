"""Distributed mode (``REDIS_URL``): workers on any machines share one frontier in Redis.

A **run group** is the run that workers of one job form together: ``<job>:run``
names it; the first worker to start creates it, later ones join it, and the
last one to finish judges the whole run and deletes the group's keys
(``<job>:<group>:*``). Workers that all died leave the group in place: the
next start joins it and finishes its frontier, as ``JOBDIR`` does for one process.

Per group, Redis holds

* ``…:requests``, the queue (a sorted set, scrapy-redis's ``PriorityQueue``),
  whose entries are JSON (``crawler.runtime.serialization``), never pickles;
* ``…:admitted:<kind>:<chunk>`` and ``…:done:<kind>:<chunk>``, the bitmaps of
  ``crawler.runtime.frontier`` as Redis strings (``SETBIT``), in chunks of 2²³
  ids so that sparse ids never allocate the space below them;
* ``…:count`` (pages admitted: the page budget is one counter for all workers)
  and ``…:finished``;
* ``…:frontier``, a marker: if it disappears while workers run, Redis lost the
  frontier (restarted without persistence) and the run fails ``frontier_lost``.
  Workers look for it after every outage they see and once a second besides:
  a restart quicker than the gap between two calls raises no error at all.

A batch of page requests is admitted and queued by one Lua script, so a page
is never admitted without being queued, nor queued twice. While Redis is
unreachable, a worker keeps what it would have queued in memory, retries every
few seconds, and stays up; after ``REDIS_OUTAGE_TIMEOUT`` seconds it stops
with reason ``redis_unavailable``, counting what it could not queue as lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import redis
from redis.exceptions import RedisError
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy.http import Request
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler as ScrapyRedisScheduler

from crawler.runtime import serialization
from crawler.runtime.config import CrawlConfig, crawl_config
from crawler.runtime.frontier import Frontier, RequestFilter, id_number, is_page
from crawler.runtime.monitors import aggregate, result
from crawler.runtime.run import Run, current_run
from crawler.runtime.signals import finish_pages
from crawler.storage.secrets import redact

logger = logging.getLogger(__name__)

CHUNK_BITS = 23  # 2**23 ids (1 MB of bitmap) per Redis key
RETRY_SECONDS = 2.0  # while Redis is unreachable, how often a worker tries again
CHECK_SECONDS = 1.0  # how often a worker asks whether Redis still holds the run's frontier
BATCH = 200  # page requests admitted and queued per round trip

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
# KEYS: finished. ARGV: per page: admitted key, done key, offset. Pages admitted and newly done are counted.
_FINISH = """
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('GETBIT', ARGV[i], ARGV[i + 2]) == 1 and redis.call('SETBIT', ARGV[i + 1], ARGV[i + 2], 1) == 0 then
    n = n + 1
  end
end
redis.call('INCRBY', KEYS[1], n)
return n
"""
_VERDICTS = {0: "seen", 1: "admitted", 2: "over_budget"}
# Delete the key only if it still names our run (another run may have begun since).
_END = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def connect(url: str) -> redis.Redis:
    """A client that fails fast: an outage is noticed in seconds, and the crawl is never frozen for long."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


# KEYS: the job's run key. ARGV: a new group id, this worker's id, heartbeat ttl, the job. Returns the group id.
_JOIN = """
local group = redis.call('GET', KEYS[1])
if not group then group = ARGV[1]; redis.call('SET', KEYS[1], group) end
local prefix = ARGV[4] .. ':' .. group .. ':'
redis.call('SADD', prefix .. 'workers', ARGV[2])
redis.call('SET', prefix .. 'alive:' .. ARGV[2], 1, 'EX', ARGV[3])
redis.call('SET', prefix .. 'frontier', 1, 'NX')
return group
"""
# ARGV: prefix, this worker's id. Leaves the run; 1 when no other worker is alive and this one is to judge.
_LEAVE = """
redis.call('SREM', ARGV[1] .. 'workers', ARGV[2])
redis.call('DEL', ARGV[1] .. 'alive:' .. ARGV[2])
for _, worker in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'workers')) do
  if redis.call('EXISTS', ARGV[1] .. 'alive:' .. worker) == 1 then return 0 end
  redis.call('SREM', ARGV[1] .. 'workers', worker)
end
if redis.call('SET', ARGV[1] .. 'judge', ARGV[2], 'NX') then return 1 end
return 0
"""


class RunGroup:
    """Join, keep alive, judge and end the distributed run of one job.

    Workers are members of ``…:workers`` with a heartbeat key each
    (``…:alive:<id>``, renewed with the run record, expiring after
    ``heartbeat`` seconds): a killed worker stops counting as alive. Joining
    and leaving are Lua scripts, so a worker joining while the last one leaves
    either is seen by it or joins a new run, never a run being ended.
    """

    def __init__(self, client: redis.Redis, job: str, heartbeat: float = 45.0) -> None:
        self.client = client
        self.job = job
        self.key = f"{job}:run"
        self.heartbeat = max(1, int(heartbeat))
        self.id: str | None = None
        self.worker: str | None = None

    @classmethod
    def for_crawler(cls, crawler: Any) -> RunGroup:
        group = getattr(crawler, "_imdb_group", None)
        if group is None:
            config = crawl_config(crawler)
            heartbeat = max(15.0, 3 * config.record_interval)
            group = cls(connect(config.redis_url), current_run(crawler).job, heartbeat)
            crawler._imdb_group = group
        return group

    def join(self, run: Run) -> str:
        """The id of the job's run in progress, or of a new one; recorded in ``run.group``."""
        if self.id is None:
            value = self.client.eval(_JOIN, 1, self.key, uuid.uuid4().hex, run.id, self.heartbeat, self.job)
            self.id = value.decode() if isinstance(value, bytes) else str(value)
            self.worker = run.id
            run.group = self.id
        return self.id

    @property
    def prefix(self) -> str:
        return f"{self.job}:{self.id}:"

    def frontier_lost(self) -> bool:
        """Whether Redis no longer holds this run's frontier (restarted empty)."""
        return not self.client.exists(self.prefix + "frontier")

    def refresh(self) -> None:
        """This worker is alive (called with every update of its run record)."""
        if self.worker is not None:
            self.client.set(f"{self.prefix}alive:{self.worker}", 1, ex=self.heartbeat)

    def leave(self) -> bool:
        """Leave the run; whether this worker is the last one alive and is to judge it."""
        if self.worker is None:
            return False  # never joined a run
        try:
            return bool(self.client.eval(_LEAVE, 0, self.prefix, self.worker or ""))
        except RedisError as exc:
            logger.warning("Redis unreachable at the end of the run (%s): this worker judges the run", exc)
            return True  # better judged twice than never

    def end(self) -> None:
        """Forget the run and its frontier (called by the worker that judged it)."""
        if self.id is None:
            return
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.unlink(*keys[start : start + 500])
        self.client.eval(_END, 1, self.key, self.id)

    def judge(self, db: Any, document: dict[str, Any], record: Any) -> list[dict[str, Any]]:
        """Record this worker's share; if it is the last worker alive, judge the whole run.

        A worker that was killed stops counting as alive when its heartbeat
        expires; its last recorded counts are part of the run.
        """
        runs = db.crawl_runs
        runs.replace_one({"_id": document["_id"]}, {**document, "monitors": []}, upsert=True)
        if not self.leave():
            message = "other workers run on: the last one to finish judges the run"
            logger.info("Distributed run %s: %s", self.id, message)
            verdicts = [result("run_group", True, message)]
            runs.update_one({"_id": document["_id"]}, {"$set": {"monitors": verdicts}})
            return verdicts
        workers = list(runs.find({"run_group": self.id}, {"monitors": 0, "run_wide": 0}))
        run_wide = aggregate(workers)
        run_wide["finish_reason"] = document["finish_reason"]
        logger.info("Distributed run %s: judging %d workers' %d pages", self.id, len(workers), run_wide["admitted"])
        run_wide["monitors"] = record.check(run_wide)
        runs.update_one({"_id": document["_id"]}, {"$set": {"monitors": run_wide["monitors"], "run_wide": run_wide}})
        try:
            self.end()
        except RedisError as exc:
            logger.warning("Could not delete distributed run %s from Redis: %s", self.id, exc)
        return run_wide["monitors"]


class RedisLedger:
    """The frontier's ledger in Redis: one bitmap, one budget, one queue for every worker of the run."""

    def __init__(self, group: RunGroup, queue: PriorityQueue) -> None:
        self.group = group
        self.client = group.client
        self.queue = queue
        self.admit_script = self.client.register_script(_ADMIT)
        self.finish_script = self.client.register_script(_FINISH)
        self.unsent: list[str] = []  # finished pages not yet recorded (Redis unreachable)

    def bit(self, kind: str, page_id: str) -> tuple[str, int]:
        _, number = id_number(page_id)
        return f"{self.group.prefix}{kind}:{page_id[:2]}:{number >> CHUNK_BITS}", number & ((1 << CHUNK_BITS) - 1)

    def load(self) -> list[tuple[str, int]]:
        return []  # the queue in Redis is the frontier: nothing to reschedule

    def admit(self, requests: list[Request], budget: int | None) -> list[str]:
        """Admit and queue page requests in one step; RedisError leaves nothing half done."""
        return [_VERDICTS[v] for v in self.push(requests, budget, pages=True)]

    def push(self, requests: list[Request], budget: int | None, pages: bool) -> list[int]:
        argv: list[Any] = [-1 if budget is None else budget]
        for request in requests:
            key, offset = self.bit("admitted", request.meta["imdb_id"]) if pages else ("", 0)
            argv += [key, offset, -request.priority, self.queue._encode_request(request)]
        return list(self.admit_script(keys=[self.group.prefix + "count", self.queue.key], args=argv))

    def finish(self, page_ids: list[str]) -> int:
        pending, self.unsent = self.unsent + page_ids, []
        argv: list[Any] = []
        for page_id in pending:
            admitted, offset = self.bit("admitted", page_id)
            argv += [admitted, self.bit("done", page_id)[0], offset]
        try:
            return int(self.finish_script(keys=[self.group.prefix + "finished"], args=argv))
        except RedisError:
            self.unsent = pending  # recorded when Redis answers again
            return 0

    def unfinished(self) -> int | None:
        return None  # only the whole run can say: judged from every worker's counts

    def flush(self) -> int:
        """Record the finished pages Redis could not take earlier; how many were newly finished."""
        return self.finish([]) if self.unsent else 0

    def close(self, reason: str) -> None:
        pass


class RedisScheduler(ScrapyRedisScheduler):
    """scrapy-redis's scheduler, made to admit pages through the frontier and to live through Redis outages."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisScheduler:
        config = crawl_config(crawler)
        scheduler = cls(
            server=connect(config.redis_url),
            persist=True,
            queue_cls="scrapy_redis.queue.PriorityQueue",
            dupefilter=RequestFilter.from_crawler(crawler),
            serializer=serialization,
        )
        scheduler.crawler = crawler
        scheduler.stats = crawler.stats
        scheduler.config = config
        scheduler.backlog = []
        scheduler.down_since = None
        scheduler.next_try = 0.0
        scheduler.unavailable = False
        scheduler.lost = False
        scheduler.next_check = 0.0
        return scheduler

    crawler: Any
    config: CrawlConfig
    backlog: list[Request]
    down_since: float | None
    next_try: float
    unavailable: bool
    lost: bool
    next_check: float

    def open(self, spider: Any) -> Any:
        self.spider = spider
        self.group = RunGroup.for_crawler(self.crawler)
        try:
            group_id = self.group.join(current_run(self.crawler))
        except RedisError as exc:
            # Closed once the spider is open (a scheduler that refuses to open leaves Scrapy half open).
            logger.error("Not crawling: Redis at %s is unreachable: %s", redact(self.config.redis_url), exc)
            self.unavailable = True
            self.stats.set_value("imdb/exit_status", 1)
            self.crawler.signals.connect(self.refuse, signal=signals.spider_opened)
            return None
        self.queue = PriorityQueue(self.server, spider, f"{self.group.prefix}requests", serializer=serialization)
        self.frontier = Frontier(self.crawler, RedisLedger(self.group, self.queue))
        logger.info("Worker of distributed run %s (job %r)", group_id, self.group.job)
        return deferred_from_coro(self.frontier.open(spider))

    def refuse(self, spider: Any) -> None:
        raise CloseSpider("redis_unavailable")

    def close(self, reason: str) -> None:
        if self.unavailable:
            return
        self.flush()
        if self.backlog:
            lost = [r.meta.get("imdb_id", "") for r in self.backlog if is_page(r)]
            logger.error("LOST %d requests that Redis never took (still unreachable)", len(self.backlog))
            finish_pages(self.crawler, lost, "lost/redis_unavailable")
        self.frontier.close(reason)

    # --- the queue --------------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        if self.unavailable:
            return False  # this worker never joined a run: nothing of it was admitted
        if not is_page(request) and not request.dont_filter and self.df.request_seen(request):
            return False
        self.backlog.append(request)
        if len(self.backlog) >= BATCH:
            self.flush()
        return True

    def flush(self) -> None:
        """Admit and queue what waits, in batches; on a Redis error, keep it for later."""
        while self.backlog and self.reachable():
            batch = self.backlog[:BATCH]
            try:
                pages = [r for r in batch if is_page(r) and not r.dont_filter]
                others = [r for r in batch if not (is_page(r) and not r.dont_filter)]
                if pages:
                    self.frontier.admit(pages)
                if others:
                    self.frontier.ledger.push(others, None, pages=False)
            except RedisError as exc:
                self.outage(exc)
                return
            del self.backlog[:BATCH]
            self.recovered()

    def next_request(self) -> Request | None:
        if self.unavailable or self.lost:
            return None
        self.flush()
        if not self.reachable():
            return None
        try:
            if not self.frontier_kept():
                return None
            request = self.queue.pop()
        except RedisError as exc:
            self.outage(exc)
            return None
        except ValueError:  # not JSON, or not a request: never unpickled, never run
            self.stats.inc_value("redis/refused_entries")
            logger.error("Refused an entry of the shared queue that is not a request in JSON (someone else wrote it)")
            return None
        self.recovered()
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.unavailable or self.lost:
            return False
        self.flush()
        if self.backlog or not self.reachable():
            return True  # not idle: what waits here, or what Redis holds, is still to be fetched
        try:
            return self.frontier_kept() and len(self.queue) > 0
        except RedisError as exc:
            self.outage(exc)
            return True

    def __len__(self) -> int:
        if self.unavailable:
            return 0
        try:
            return len(self.queue) + len(self.backlog) if self.reachable() else len(self.backlog)
        except RedisError:
            return len(self.backlog)

    # --- outages ------------------------------------------------------------------

    def reachable(self) -> bool:
        """False while Redis is down, between retries (an attempt costs up to the connect timeout)."""
        if self.down_since is None:
            return True
        if time.monotonic() - self.down_since > self.config.redis_outage_timeout:
            self.give_up()
            return False
        return time.monotonic() >= self.next_try

    def outage(self, exc: Exception) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self.stats.inc_value("redis/outages")
            logger.error(
                "Redis unreachable (%s): keeping %d requests here and retrying every %.0fs for up to %.0fs",
                exc, len(self.backlog), RETRY_SECONDS, self.config.redis_outage_timeout,
            )  # fmt: skip
        self.next_try = now + RETRY_SECONDS

    def recovered(self) -> None:
        if self.down_since is None:
            return
        logger.warning("Redis is back after %.0fs", time.monotonic() - self.down_since)
        self.down_since = None
        self.frontier_kept(now=True)

    def frontier_kept(self, now: bool = False) -> bool:
        """Whether Redis still holds the run's frontier, asked after an outage and at most every CHECK_SECONDS.

        A Redis restarted empty between two calls of this worker raised no error (the client reconnects at
        once): without this question, the worker would crawl on with the queue, the budget and the seen
        pages gone. When it is gone, the run stops ``frontier_lost``. Raises RedisError like any call.
        """
        if self.lost:
            return False
        moment = time.monotonic()
        if not now and moment < self.next_check:
            return True
        self.next_check = moment + CHECK_SECONDS
        if self.group.frontier_lost():
            logger.error("Redis lost the shared frontier of run %s (restarted without its data)", self.group.id)
            self.lost = True
            self.stop("frontier_lost")
        return not self.lost

    def give_up(self) -> None:
        if not getattr(self, "gave_up", False):
            self.gave_up = True
            logger.error("Redis stayed unreachable for %.0fs: stopping", self.config.redis_outage_timeout)
            self.stop("redis_unavailable")

    def stop(self, reason: str) -> None:
        self.stats.set_value("imdb/exit_status", 1)
        self.closing = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason=reason))


class IdleShutdown:
    """Stop a worker only after the shared frontier stayed empty for ``REDIS_IDLE_TIMEOUT`` seconds."""

    def __init__(self, crawler: Any, timeout: float) -> None:
        self.crawler = crawler
        self.timeout = timeout
        self.idle_since: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> IdleShutdown:
        extension = cls(crawler, crawl_config(crawler).redis_idle_timeout)
        crawler.signals.connect(extension.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(extension.busy, signal=signals.request_scheduled)
        crawler.signals.connect(extension.busy, signal=signals.response_received)
        return extension

    def busy(self, *args: Any, **kwargs: Any) -> None:
        self.idle_since = None

    def spider_idle(self, spider: Any) -> None:
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.timeout:
            raise DontCloseSpider
        logger.info("The shared frontier stayed empty for %.0fs: this worker stops", now - self.idle_since)
