"""Distributed mode: workers sharing one frontier on a real Redis server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crawler.mongo import connect, database_name
from crawler.site import DemoSite
from tests.conftest import FIXTURES, PROJECT, free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def redis_url(tmp_path: Path) -> Any:
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


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
    # Slow enough that the second worker, however late its process starts, still finds
    # fixture pages in the shared queue (a worker with only 404s stores nothing and fails
    # the items_stored monitor, which is right for a run but not what this test is about).
    with DemoSite(FIXTURES, mode="slow", delay=0.2) as site:
        workers = [worker(site.base_url, mongo_uri, redis_url, tmp_path, f"w{n}") for n in (1, 2)]
        for process in workers:
            assert process.wait(timeout=300) == 0, (tmp_path / "w1.log").read_text()[-3000:]
        hits = dict(site.hits)
    logs = [(tmp_path / f"w{n}.log").read_text() for n in (1, 2)]
    # No page fetched twice, by either worker; both did part of the work.
    assert len(hits) == 30 and max(hits.values()) == 1
    for log in logs:
        assert "scrapy_redis.scheduler.Scheduler" in log or "scrapy_redis" in log
        assert "'item_scraped_count'" in log
        assert "The shared frontier stayed empty" in log
    db = connect(mongo_uri)[database_name(mongo_uri)]
    # The union equals what one process stores from the same seeds.
    assert len(db.titles.distinct("_id")) == 25 and len(db.people.distinct("_id")) == 5
    assert db.titles.count_documents({}) == 25
