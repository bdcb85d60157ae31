"""The run group: the workers of one job that crawl one frontier, and the one judgement of their run.

``<job>:run`` names the job's run in progress; the first worker to start
creates it, later ones join it. A worker that dies leaves the group in place
with its pages leased (``crawler.runtime.distributed.leases``): live workers,
or the next start of the job, give them back to the queue and finish the run.

The run is judged once, by the last worker to leave, from Redis' exact counts
(pages admitted, finished, queued, leased), never from the workers' records,
which a killed worker leaves behind stale. A worker that leaves while another
member still holds a heartbeat waits until that one proves alive (its
heartbeat renewed: it will judge), leaves too, or lapses (dead: this worker
gives its pages back and judges). The judge closes every dead worker's
``crawl_runs`` record (``status: died``, with what it gave back), and ends the
group unless admitted pages are left unfinished: those stay in Redis, and the
next start of the job completes the run.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import redis
from redis.exceptions import RedisError

from crawler.runtime.config import crawl_config
from crawler.runtime.distributed.keys import RunKeys
from crawler.runtime.distributed.leases import FrontierLost, Leases
from crawler.runtime.judging import aggregate, result
from crawler.storage.run import Run, current_run

logger = logging.getLogger(__name__)

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
# KEYS: workers, judge. ARGV: prefix, this worker's id. 1 when no member is alive and this worker is to judge.
_CLAIM = """
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if worker ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. worker) == 1 then return 0 end
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX') then return 1 end
return 0
"""
# Delete the key only if it still names our run (another run may have begun since).
_END = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


_GROUPS: WeakKeyDictionary[Any, RunGroup] = WeakKeyDictionary()


def connect(url: str) -> redis.Redis:
    """A client that fails fast: an outage is noticed in seconds, and the crawl is never frozen for long."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


class RunGroup:
    """Join, leave, judge and end the distributed run of one job."""

    def __init__(self, client: redis.Redis, job: str, lease_timeout: float = 30.0) -> None:
        self.client = client
        self.job = job
        self.key = f"{job}:run"
        self.lease_timeout = max(1, int(lease_timeout))
        self.id: str | None = None
        self.worker: str | None = None
        self._leases: Leases | None = None

    @classmethod
    def for_crawler(cls, crawler: Any) -> RunGroup:
        """The crawl's run group, one for the scheduler and the run record."""
        group = _GROUPS.get(crawler)
        if group is None:
            config = crawl_config(crawler)
            group = _GROUPS[crawler] = cls(connect(config.redis_url), current_run(crawler).job,
                                           config.redis_lease_timeout)  # fmt: skip
        return group

    def join(self, run: Run) -> str:
        """The id of the job's run in progress, or of a new one; recorded in ``run.group``."""
        if self.id is None:
            value = self.client.eval(_JOIN, 1, self.key, uuid.uuid4().hex, run.id, self.lease_timeout, self.job)
            self.id = value.decode() if isinstance(value, bytes) else str(value)
            self.worker = run.id
            run.group = self.id
        return self.id

    @property
    def keys(self) -> RunKeys:
        assert self.id is not None and self.worker is not None, "join the run first"
        return RunKeys(self.job, self.id, self.worker)

    @property
    def leases(self) -> Leases:
        if self._leases is None:
            self._leases = Leases(self.client, self.keys, self.lease_timeout)
        return self._leases

    # --- leaving ------------------------------------------------------------------

    def leave(self) -> bool:
        """Give back what this worker still holds and leave; whether it is the one to judge the run."""
        if self.worker is None:
            return False  # never joined a run
        pages, others = self.leases.give_back()
        if pages or others:
            logger.info("Gave %d pages in progress back to the shared queue", pages + others)
        return self.claim() or self.wait_for_judge()

    def claim(self) -> bool:
        """Judge the run if no other member is alive (dead members' leases given back first)."""
        self.leases.reclaim()
        keys = self.keys
        return bool(self.client.eval(_CLAIM, 2, keys.workers, keys.judge, keys.prefix, keys.worker))

    def wait_for_judge(self) -> bool:
        """Until another member proves alive (it will judge), leaves, or lapses; whether this worker judges.

        A member proves alive by renewing its heartbeat: its key's time to live,
        on Redis' own clock, is longer than it would be had it only run down
        since the wait began (at most a third of the lease timeout). A dead one
        lapses within the lease timeout.
        """
        keys = self.keys
        began, started = time.monotonic(), self.leases.of_peers("pttl", "alive")
        deadline = began + self.lease_timeout + 5
        while time.monotonic() < deadline:
            if self.client.exists(keys.judge) or self.client.get(self.key) != self.id.encode():  # type: ignore[union-attr]
                return False  # judged, or being judged, by another worker
            if self.claim():
                return True
            ran_down = 1000 * (time.monotonic() - began) - 100  # ms, less a round trip's worth
            now = self.leases.of_peers("pttl", "alive")
            if all(ttl > started.get(worker, -1) - ran_down for worker, ttl in now.items()):
                logger.info("Distributed run %s: %d other workers are alive; the last to finish judges the run",
                            self.id, len(now))  # fmt: skip
                return False
            time.sleep(0.5)
        return False

    def end(self) -> None:
        """Forget the run and its frontier (called by the worker that judged a complete run)."""
        if self.id is None:
            return
        keys = list(self.client.scan_iter(match=self.keys.prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.unlink(*keys[start : start + 500])
        self.client.eval(_END, 1, self.key, self.id)

    # --- judging ------------------------------------------------------------------

    def judge(self, db: Any, document: dict[str, Any], record: Any) -> list[dict[str, Any]]:
        """Record this worker's share; if it is the one to judge, judge the whole run from Redis' counts."""
        runs = db.crawl_runs
        runs.replace_one({"_id": document["_id"]}, {**document, "monitors": []}, upsert=True)
        exact: dict[str, Any] | None = None
        lost = document["finish_reason"] == "frontier_lost"
        try:
            judging = self.leave()
            exact = None if lost else self.leases.stats()
        except FrontierLost:
            judging, lost = True, True
        except RedisError as exc:
            logger.warning("Redis unreachable at the end of the run (%s): this worker judges the run from the "
                           "workers' records", exc)  # fmt: skip
            judging = True  # better judged twice than never
        if not judging:
            verdicts = [result("run_group", True, "other workers run on: the last one to finish judges the run")]
            runs.update_one({"_id": document["_id"]}, {"$set": {"monitors": verdicts}})
            return verdicts
        if exact is not None:
            self.close_dead(runs, exact["dead"])
        workers = list(runs.find({"run_group": self.id}, {"monitors": 0, "run_wide": 0}))
        run_wide = aggregate(workers)
        if exact is not None:
            run_wide.update(
                admitted=exact["admitted"], finished_pages=exact["finished"], queued=exact["queued"],
                leased=exact["leased"], unfinished=exact["admitted"] - exact["finished"], died=len(exact["dead"]),
            )  # fmt: skip
        run_wide["counted_from"] = "redis" if exact is not None else "worker records"
        run_wide["finish_reason"] = document["finish_reason"]
        logger.info(
            "Distributed run %s: judging %d workers' run: %d pages admitted, %d finished (counted from %s)",
            self.id, len(workers), run_wide["admitted"], run_wide["finished_pages"], run_wide["counted_from"],
        )  # fmt: skip
        run_wide["monitors"] = record.check(run_wide)
        runs.update_one({"_id": document["_id"]}, {"$set": {"monitors": run_wide["monitors"], "run_wide": run_wide}})
        self.conclude(run_wide, exact is not None and not lost)
        return run_wide["monitors"]

    def close_dead(self, runs: Any, dead: dict[str, dict[str, Any]]) -> None:
        """The records of workers that died: their own status, and what was given back for them."""
        for worker, given in dead.items():
            runs.update_one(
                {"_id": worker, "status": "running"},
                {"$set": {
                    "status": "died", "finish_reason": "died", "finished": datetime.now(UTC),
                    "died": {"pages_given_back": given.get("pages", 0), "others_given_back": given.get("others", 0),
                             "noticed": datetime.fromtimestamp(int(given.get("at", 0)), UTC), "judged_by": self.worker},
                }},
            )  # fmt: skip
            logger.warning("Worker %s died during the run: %d pages it held were given back to the queue",
                           worker[:8], given.get("pages", 0))  # fmt: skip

    def conclude(self, run_wide: dict[str, Any], counted: bool) -> None:
        """End the group when every admitted page finished; else keep it for the next start of the job."""
        unfinished = run_wide.get("unfinished", 0)
        try:
            if counted and unfinished:
                logger.warning(
                    "Distributed run %s: %d admitted pages unfinished (%d queued, %d leased) are kept in Redis: "
                    "the next start of job %r completes the run", self.id, unfinished, run_wide.get("queued", 0),
                    run_wide.get("leased", 0), self.job,
                )  # fmt: skip
                self.client.delete(self.keys.judge)
                return
            self.end()
        except RedisError as exc:
            logger.warning("Could not end distributed run %s in Redis: %s", self.id, exc)
