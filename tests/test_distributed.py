"""Distributed mode: workers sharing one frontier on a real Redis server."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from crawler.mongo import connect, database_name
from crawler.site import DemoSite
from crawler.storage.writer import MongoPipeline
from tests.conftest import FIXTURES, PROJECT, db_of, make_crawler, matrix

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def worker(base_url: str, mongo_uri: str, redis_url: str, tmp_path: Path, name: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap", "-a", "depth=1",
        "-s", f"IMDB_BASE_URL={base_url}", "-s", f"MONGODB_URI={mongo_uri}", "-s", f"REDIS_URL={redis_url}",
        "-s", "JOB_NAME=distributed-test", "-s", "REDIS_IDLE_TIMEOUT=3",
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "CONCURRENT_REQUESTS=2",
        "-s", f"MONGODB_SPOOL_DIR={tmp_path / name}",
    ]  # fmt: skip
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=PROJECT, stderr=log, stdout=log)


def test_two_workers_share_one_frontier(mongo_uri: str, redis_url: str, tmp_path: Path) -> None:
    # Slow enough that the second worker usually finds pages in the shared queue too.
    with DemoSite(FIXTURES, mode="slow", delay=0.2) as site:
        workers = [worker(site.base_url, mongo_uri, redis_url, tmp_path, f"w{n}") for n in (1, 2)]
        for process in workers:
            assert process.wait(timeout=300) == 0, (tmp_path / "w1.log").read_text()[-3000:]
        hits = dict(site.hits)
    logs = [(tmp_path / f"w{n}.log").read_text() for n in (1, 2)]
    # No page fetched twice, by either worker; both stopped once the shared frontier stayed empty.
    # (Which worker gets which pages is a race: one that starts late may get only 404s, or none.)
    assert len(hits) == 30 and max(hits.values()) == 1
    for log in logs:
        assert "scrapy_redis.scheduler.Scheduler" in log or "scrapy_redis" in log
        assert "The shared frontier stayed empty" in log
    assert any("'item_scraped_count'" in log for log in logs)
    db = connect(mongo_uri)[database_name(mongo_uri)]
    # The union equals what one process stores from the same seeds.
    assert len(db.titles.distinct("_id")) == 25 and len(db.people.distinct("_id")) == 5
    assert db.titles.count_documents({}) == 25
    # One run of two workers, judged as a whole by the last one to finish.
    runs = list(db.crawl_runs.find({"job": "distributed-test"}))
    assert len(runs) == 2 and len({run["run_group"] for run in runs}) == 1
    judged = [run for run in runs if "run_wide" in run]
    assert judged and judged[0]["run_wide"]["workers"] == 2 and all(m["ok"] for m in judged[0]["monitors"])
    assert judged[0]["run_wide"]["item_counts"] == {"titles": 25, "people": 5}


def test_the_last_worker_to_finish_judges_the_whole_run(mongo_uri: str, redis_url: str, tmp_path: Path) -> None:
    settings = {"REDIS_URL": redis_url, "JOB_NAME": "judged"}

    async def run(first_items: list[Any], second_items: list[Any]) -> tuple[MongoPipeline, MongoPipeline]:
        """Two workers of one run: the first finishes while the second still crawls."""
        first = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path, **settings))
        second = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path, **settings))
        for pipeline, items in ((first, first_items), (second, second_items)):
            await pipeline.open_spider()
            pipeline.crawler.stats.set_value("imdb/not_found", 4)  # each fetched four 404s…
            pipeline.crawler.stats.set_value("imdb/parsed/current", len(items))  # …and these pages
            for item in items:
                await pipeline.process_item(item)
        assert first.group and second.group and first.group.id == second.group.id
        for pipeline in (first, second):
            await pipeline.close_spider()
            await pipeline.spider_closed("finished")
        return first, second

    db = db_of(mongo_uri)
    # The first worker stored nothing, the second one page: the run as a whole is fine.
    first, second = asyncio.run(run([], [matrix()]))
    mine, last = (db.crawl_runs.find_one({"_id": p.run_id}) for p in (first, second))
    assert [m["monitor"] for m in mine["monitors"]] == ["run_group"] and "run_wide" not in mine
    assert last["run_wide"]["workers"] == 2 and last["run_wide"]["page_attempts"] == 9
    assert last["run_wide"]["items"]["new"] == 1 and all(m["ok"] for m in last["monitors"])
    for pipeline in (first, second):
        assert pipeline.crawler.stats.get_value("imdb/exit_status") is None
    assert redis.Redis.from_url(redis_url).get("judged:run") is None  # the next start is a new run

    # A new run where no worker stores anything fails, once, in the worker that judged it.
    first, second = asyncio.run(run([], []))
    assert first.group and first.group.id != db.crawl_runs.find_one({"_id": last["_id"]})["run_group"]
    last = db.crawl_runs.find_one({"_id": second.run_id})
    failed = {m["monitor"]: m["message"] for m in last["monitors"] if not m["ok"]}
    assert failed == {"items_stored": "8 pages fetched but no item stored"}
    assert first.crawler.stats.get_value("imdb/exit_status") is None
    assert second.crawler.stats.get_value("imdb/exit_status") == 1
    # The previous run it compared with is the earlier run as a whole.
    coverage = next(m for m in last["monitors"] if m["monitor"] == "field_coverage")
    assert coverage["message"] != "no previous run to compare with"


def test_a_dead_worker_does_not_keep_the_run_from_being_judged(mongo_uri: str, redis_url: str, tmp_path: Path) -> None:
    settings = {"REDIS_URL": redis_url, "JOB_NAME": "with-a-dead-worker"}

    async def run() -> tuple[MongoPipeline, MongoPipeline]:
        live, dead = (MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path, **settings)) for _ in range(2))
        await dead.open_spider()
        await live.open_spider()
        await live.process_item(matrix())
        # The dead worker was killed: its record stopped moving long ago.
        db_of(mongo_uri).crawl_runs.update_one(
            {"_id": dead.run_id}, {"$set": {"updated": datetime.now(UTC) - timedelta(hours=1), "pages": 7}}
        )
        await live.close_spider()
        await live.spider_closed("finished")
        return live, dead

    live, dead = asyncio.run(run())
    assert db_of(mongo_uri).crawl_runs.find_one({"_id": dead.run_id})["status"] == "running"
    record = db_of(mongo_uri).crawl_runs.find_one({"_id": live.run_id})
    assert record["run_wide"]["workers"] == 2 and record["run_wide"]["pages"] == 7  # the dead one's last counts
    assert all(m["ok"] for m in record["monitors"])
