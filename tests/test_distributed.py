"""Distributed mode: workers sharing one frontier on a real Redis server."""

from __future__ import annotations

import json
import pickle
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import redis
from twisted.internet.defer import DeferredList, ensureDeferred

from crawler.demo_site import DemoSite
from crawler.runtime.distributed.group import RunGroup
from crawler.storage.run import Run
from tests.conftest import FIXTURES, PROJECT, crawl, crawl_command, db_of, free_port, start_redis, wait_for_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def worker(base_url: str, mongo_uri: str, redis_url: str, tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    command = crawl_command(base_url, mongo_uri, tmp_path / name, "-a", "start=sitemap", "-a", "depth=1",
                            "-s", f"REDIS_URL={redis_url}", "-s", "JOB_NAME=distributed-test",
                            "-s", "REDIS_IDLE_TIMEOUT=2", "-s", "CONCURRENT_REQUESTS=2", *args)  # fmt: skip
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=PROJECT, stderr=log, stdout=log)


def wait_mid_crawl(site: DemoSite, tmp_path: Path, hits: int, timeout: float = 60) -> None:
    """Until the site has served `hits` pages and both workers are past their start.

    Mid-crawl, whatever is written yet. A worker that starts while Redis is down stops at once, by design
    ("Not crawling"), and a loaded machine can start one worker seconds after the other: an outage test
    that kills Redis before both have joined the run tests the start, not the outage.
    """
    log_files = [tmp_path / f"w{n}.log" for n in (1, 2)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
        sum(site.hits.values()) < hits
        or not all(log.exists() and "Worker of distributed run" in log.read_text() for log in log_files)
    ):
        time.sleep(0.05)


def test_two_workers_share_one_frontier_and_one_budget(mongo_uri: str, redis_url: str, tmp_path: Path) -> None:
    # Slow enough that the second worker finds pages in the shared queue too.
    with DemoSite(FIXTURES, mode="slow", delay=0.05) as site:
        workers = [worker(site.base_url, mongo_uri, redis_url, tmp_path, f"w{n}", "-a", "max_pages=40") for n in (1, 2)]
        for n, process in enumerate(workers, 1):
            assert process.wait(timeout=120) == 0, (tmp_path / f"w{n}.log").read_text()[-3000:]
        hits = dict(site.hits)
    # No page is fetched twice, by either worker (the site counts the pages it has: 30).
    assert len(hits) == 30 and max(hits.values()) == 1
    db = db_of(mongo_uri)
    assert db.titles.count_documents({}) + db.people.count_documents({}) == 30  # every page the site has
    # One run of two workers, judged as a whole by the last one to finish; its keys are gone from Redis.
    runs = list(db.crawl_runs.find({"job": "distributed-test"}))
    assert len(runs) == 2 and len({run["run_group"] for run in runs}) == 1 and all(run["run_group"] for run in runs)
    judged = [run for run in runs if "run_wide" in run]
    assert len(judged) == 1 and judged[0]["run_wide"]["workers"] == 2 and all(m["ok"] for m in judged[0]["monitors"])
    assert judged[0]["run_wide"]["item_counts"] == {"titles": 25, "people": 5}
    # The page budget is one counter for all workers.
    assert judged[0]["run_wide"]["admitted"] == 40 and judged[0]["run_wide"]["unfinished"] == 0
    assert redis.Redis.from_url(redis_url).keys("distributed-test*") == []


@pytest_twisted.ensureDeferred
async def test_the_last_worker_to_finish_judges_the_whole_run(mongo_uri: str, redis_url: str, tmp_path: Path):
    """Two workers in one process: one gets the seeds' pages, the other mostly 404s; the run as a whole is fine."""
    settings = {"REDIS_URL": redis_url, "JOB_NAME": "judged", "REDIS_IDLE_TIMEOUT": 1, "RUN_RECORD_INTERVAL": 1}
    with DemoSite(FIXTURES, mode="slow", delay=0.05) as site:
        first = crawl(mongo_uri, site.base_url, tmp_path / "a", settings=settings, start="tt0133093", depth=1)
        second = crawl(mongo_uri, site.base_url, tmp_path / "b", settings=settings, start="nm0000138", depth=1)
        results = await DeferredList([ensureDeferred(first), ensureDeferred(second)], fireOnOneErrback=True)
    crawlers = [crawler for _, crawler in results]
    assert [c.exit_status for c in crawlers] == [0, 0]
    db = db_of(mongo_uri)
    runs = list(db.crawl_runs.find({"job": "judged"}))
    assert len(runs) == 2 and runs[0]["run_group"] == runs[1]["run_group"]
    judge = next(run for run in runs if "run_wide" in run)
    other = next(run for run in runs if "run_wide" not in run)
    assert [m["monitor"] for m in other["monitors"]] == ["run_group"]
    assert judge["run_wide"]["workers"] == 2 and all(m["ok"] for m in judge["monitors"])
    assert judge["run_wide"]["admitted"] == judge["run_wide"]["finished_pages"]
    assert redis.Redis.from_url(redis_url).get("judged:run") is None  # the next start is a new run


@pytest_twisted.ensureDeferred
async def test_a_worker_with_nothing_to_do_takes_its_peers_links_within_a_check(
    mongo_uri: str, redis_url: str, tmp_path: Path
):
    """A worker whose one seed is a 404 runs dry at once; the engine would ask it for work again only at its
    5-second heartbeat. Its scheduler's check (REDIS_CHECK_SECONDS) hands it the pages its peer queues, then
    stops it once the run is done."""
    settings = {"REDIS_URL": redis_url, "JOB_NAME": "woken", "REDIS_IDLE_TIMEOUT": 1, "REDIS_CHECK_SECONDS": 0.2}
    with DemoSite(FIXTURES, mode="slow", delay=0.2) as site:
        busy = crawl(mongo_uri, site.base_url, tmp_path / "a", settings={**settings, "CONCURRENT_REQUESTS": 1},
                     start="tt0133093", depth=1)  # fmt: skip
        idle = crawl(mongo_uri, site.base_url, tmp_path / "b", settings=settings, start="tt0000001", depth=1)
        results = await DeferredList([ensureDeferred(busy), ensureDeferred(idle)], fireOnOneErrback=True)
    busy_crawler, idle_crawler = (crawler for _, crawler in results)
    assert [busy_crawler.exit_status, idle_crawler.exit_status] == [0, 0]
    stats = idle_crawler.stats.get_stats()
    assert stats["redis/woken"] >= 1 and stats["scheduler/dequeued/redis"] >= 10, stats  # the peer's links
    assert stats["finish_reason"] == "finished"


def test_the_judge_counts_from_redis_and_closes_a_dead_workers_record(mongo_uri: str, redis_url: str) -> None:
    """A killed worker's record is stale (it says 5 admitted, 4 finished): the run is judged from Redis' counts."""
    db = db_of(mongo_uri)
    client = redis.Redis.from_url(redis_url)
    dead, live = RunGroup(client, "with-a-dead-worker", 2), RunGroup(client, "with-a-dead-worker", 2)
    dead_run, run = Run(job="with-a-dead-worker"), Run(job="with-a-dead-worker")
    assert dead.join(dead_run) == live.join(run)
    keys = live.keys
    client.set(keys.count, 10)
    client.set(keys.finished, 10)
    # The dead worker held one page when it was killed; a live worker took it back and finished it since.
    client.hset(keys.of("leases", dead_run.id), b'{"url":"x","meta":{"imdb_id":"tt1"}}', -1)
    client.delete(keys.of("alive", dead_run.id))
    db.crawl_runs.insert_one({"_id": dead_run.id, "run_group": dead.id, "status": "running", "admitted": 5,
                              "finished_pages": 4})  # fmt: skip

    class Record:
        @staticmethod
        def check(summary: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"monitor": "pages_accounted", "ok": summary["unfinished"] == 0, "message": ""}]

    mine = {"_id": run.id, "run_group": live.id, "status": "finished", "finish_reason": "finished", "admitted": 5,
            "finished_pages": 5}  # fmt: skip
    live.leases.reclaim()  # what the live worker's tick did once the dead one's heartbeat lapsed
    client.zpopmin(keys.requests)  # ... and the page was taken again and finished
    verdicts = live.judge(db, mine, Record())
    record = db.crawl_runs.find_one({"_id": run.id})
    run_wide = record["run_wide"]
    assert run_wide["admitted"] == 10 and run_wide["finished_pages"] == 10 and run_wide["unfinished"] == 0
    assert run_wide["counted_from"] == "redis" and run_wide["workers"] == 2 and run_wide["died"] == 1
    assert verdicts == record["monitors"] and all(v["ok"] for v in verdicts)
    died = db.crawl_runs.find_one({"_id": dead_run.id})
    assert died["status"] == "died" and died["died"]["pages_given_back"] == 1 and died["died"]["judged_by"] == run.id
    assert client.keys("with-a-dead-worker*") == []


def test_unfinished_pages_keep_the_run_for_the_next_start(mongo_uri: str, redis_url: str) -> None:
    """The last worker stops (a shutdown) with pages left: judged, and the run stays in Redis to be completed."""
    client = redis.Redis.from_url(redis_url)
    group, run = RunGroup(client, "interrupted", 2), Run(job="interrupted")
    group.join(run)
    client.set(group.keys.count, 3)
    client.set(group.keys.finished, 1)
    client.zadd(group.keys.requests, {b'{"url":"x"}': 0})
    client.hset(group.keys.leases, b'{"url":"y","meta":{"imdb_id":"tt2"}}', 0)  # in progress when it stopped

    class Record:
        @staticmethod
        def check(summary: dict[str, Any]) -> list[dict[str, Any]]:
            return []

    mine = {"_id": run.id, "run_group": group.id, "status": "finished", "finish_reason": "shutdown"}
    group.judge(db_of(mongo_uri), mine, Record())
    run_wide = db_of(mongo_uri).crawl_runs.find_one({"_id": run.id})["run_wide"]
    assert (run_wide["unfinished"], run_wide["queued"], run_wide["leased"]) == (2, 2, 0)  # the lease given back
    assert client.get("interrupted:run") == group.id.encode() and client.zcard(group.keys.requests) == 2
    again = RunGroup(client, "interrupted", 2)
    assert again.join(Run(job="interrupted")) == group.id  # the next start joins it


def test_a_leaving_worker_waits_for_a_silent_member_to_prove_alive_or_lapse(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first, second = RunGroup(client, "two", 3), RunGroup(client, "two", 3)
    first.join(Run(job="two"))
    second.join(Run(job="two"))
    # The second member says nothing (killed): the first leaves once its heartbeat lapses, and judges.
    started = time.monotonic()
    assert first.leave() and 2.0 < time.monotonic() - started < 8
    assert not RunGroup(client, "two", 3).leave()  # never joined: nothing to judge

    third, fourth = RunGroup(client, "alive", 3), RunGroup(client, "alive", 3)
    third.join(Run(job="alive"))
    fourth.join(Run(job="alive"))
    beating = threading.Event()

    def heartbeat() -> None:  # what the fourth member's scheduler does while it crawls
        while not beating.wait(0.5):
            client.set(fourth.keys.alive, 1, ex=3)

    thread = threading.Thread(target=heartbeat)
    thread.start()
    try:
        started = time.monotonic()
        assert not third.leave() and time.monotonic() - started < 2.5  # the fourth proves alive: it will judge
    finally:
        beating.set()
        thread.join()
    assert fourth.leave()


REFUSED = [
    json.dumps({"url": "{base}/title/tt0133093/", "_class": "this.s"}),  # `import this` prints the Zen of Python
    "{}",
    "[1, 2]",
    json.dumps({"url": "{base}/title/tt0133093/", "callback": "close"}),
    json.dumps({"url": "{base}/title/tt0133093/", "meta": {"playwright_page_init_callback": "this.s"}}),
    json.dumps({"url": "http://elsewhere.example/title/tt0000001/", "callback": "parse_title"}),
    "not json",
]


def test_the_shared_queue_refuses_what_this_project_never_wrote(
    mongo_uri: str, redis_url: str, tmp_path: Path, demo_site
) -> None:
    """Anyone who can write to Redis must not run code on the workers: a pickle, a class to import, a stray
    callback or browser hook, another site, not a request at all: refused, counted, said once, and the run fails."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (eval, (f"__import__('pathlib').Path({str(marker)!r}).write_text('x')",))

    client = redis.Redis.from_url(redis_url)
    group_id = "planted"
    client.set("planted-test:run", group_id)
    client.set(f"planted-test:{group_id}:frontier", 1)
    entries = [pickle.dumps(Exploit()), *(e.replace("{base}", demo_site.base_url).encode() for e in REFUSED)]
    client.zadd(f"planted-test:{group_id}:requests", {entry: -100 for entry in entries})
    result = subprocess.run(
        crawl_command(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0",
                      "-s", f"REDIS_URL={redis_url}", "-s", "JOB_NAME=planted-test", "-s", "REDIS_IDLE_TIMEOUT=1"),
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert not marker.exists() and "Beautiful is better than ugly" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("Refused an entry of the shared queue") == 1
    assert result.returncode == 1
    db = db_of(mongo_uri)
    record = db.crawl_runs.find_one({"job": "planted-test"})
    assert record["refused_entries"] == len(entries)
    verdict = next(v for v in record["monitors"] if v["monitor"] == "queue_entries")
    assert not verdict["ok"] and f"{len(entries)} entries" in verdict["message"]
    assert db.titles.count_documents({}) == 1  # the crawl itself went on


@pytest.mark.parametrize("outage", [3.0, 0.0], ids=["down_3s", "restarted_at_once"])
def test_redis_restarted_empty_mid_run_is_never_a_silent_partial_crawl(
    outage: float, mongo_uri: str, tmp_path: Path
) -> None:
    """Redis killed with -9 and restarted empty: the workers say the frontier was lost and exit 1.

    Restarted at once (a supervisor's restart), no call need fail: the next ones reconnect to the empty server.
    """
    port = free_port()
    server = start_redis(port, tmp_path)
    redis_url = f"redis://127.0.0.1:{port}/0"
    with DemoSite(synthetic=200, mode="slow", delay=0.1) as site:
        workers = [worker(site.base_url, mongo_uri, redis_url, tmp_path, f"w{n}", "-a", "depth=50",
                          "-a", "max_pages=200", "-s", "REDIS_OUTAGE_TIMEOUT=30",
                          "-s", "REDIS_IDLE_TIMEOUT=30")  # neither stops on its own before Redis dies
                   for n in (1, 2)]  # fmt: skip
        wait_mid_crawl(site, tmp_path, hits=20)
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(outage)  # 3 s: long enough for busy workers to find it gone, on a loaded machine too
        server = start_redis(port, tmp_path)  # back, but empty: no persistence
        try:
            codes = [process.wait(timeout=120) for process in workers]
        finally:
            server.terminate()
            server.wait()
    logs = [(tmp_path / f"w{n}.log").read_text() for n in (1, 2)]
    assert codes == [1, 1], logs[0][-3000:] + logs[1][-3000:]
    if outage:  # down for a while: at least one worker met the outage before the loss
        assert any("Redis unreachable" in log for log in logs)
    for log in logs:  # restarted at once, no call need fail: the loss is found by asking (once a second)
        assert "Unhandled error in Deferred" not in log and "Traceback" not in log
        assert "Redis lost the shared frontier" in log
    records = list(db_of(mongo_uri).crawl_runs.find({"job": "distributed-test"}))
    assert len(records) == 2 and {record["finish_reason"] for record in records} == {"frontier_lost"}
    judged = [record for record in records if record.get("run_wide")]  # the frontier gone: each worker judges
    assert judged and all(not next(m for m in r["monitors"] if m["monitor"] == "finish_reason")["ok"] for r in judged)


def test_redis_restarting_with_its_data_costs_nothing(mongo_uri: str, tmp_path: Path) -> None:
    """A Redis outage that ends with the data intact (persistence on): the workers wait, then finish the crawl."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
               "--appendfsync", "always", "--dir", str(tmp_path)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    wait_for_port(port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    with DemoSite(synthetic=40, mode="slow", delay=0.25) as site:
        workers = [worker(site.base_url, mongo_uri, redis_url, tmp_path, f"w{n}", "-a", "depth=50",
                          "-a", "max_pages=40", "-s", "REDIS_OUTAGE_TIMEOUT=30", "-s", "REDIS_IDLE_TIMEOUT=3")
                   for n in (1, 2)]  # fmt: skip
        wait_mid_crawl(site, tmp_path, hits=8)
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(2)
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(port)
        try:
            codes = [process.wait(timeout=120) for process in workers]
        finally:
            server.terminate()
            server.wait()
        hits = dict(site.hits)
    logs = [(tmp_path / f"w{n}.log").read_text() for n in (1, 2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert any("Redis is back after" in log for log in logs)
    db = db_of(mongo_uri)
    assert db.titles.count_documents({}) + db.people.count_documents({}) == 40 and max(hits.values()) == 1


def test_redis_down_at_start_is_one_line_and_exit_1(mongo_uri: str, tmp_path: Path, demo_site) -> None:
    result = subprocess.run(
        crawl_command(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093",
                      "-s", f"REDIS_URL=redis://:s3c%23r3t@127.0.0.1:{free_port()}/0"),
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "Not crawling: Redis at redis://***@127.0.0.1" in result.stderr
    assert "s3c" not in result.stderr and "r3t" not in result.stderr and "Traceback" not in result.stderr
    unescaped = subprocess.run(  # the client could not read it: a mistake in the settings, and the secret unsaid
        crawl_command(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093",
                      "-s", "REDIS_URL=redis://:s3c#r3t@127.0.0.1:1/0"),
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unescaped.returncode == 2 and "REDIS_URL=redis://***@127.0.0.1:1/0: the Redis client" in unescaped.stderr
    assert "s3c" not in unescaped.stderr and "r3t" not in unescaped.stderr


def test_a_run_group_is_joined_by_later_workers_and_ended_by_its_judge(redis_url: str) -> None:
    group = RunGroup(redis.Redis.from_url(redis_url), "job")
    run = Run(job="job")
    first = group.join(run)
    again = RunGroup(redis.Redis.from_url(redis_url), "job").join(Run(job="job"))
    assert first == again == run.group and group.client.exists(group.keys.frontier)
    group.end()
    assert not group.client.exists(group.keys.frontier)
    assert RunGroup(redis.Redis.from_url(redis_url), "job").join(Run(job="job")) != first  # the next start: a new run
