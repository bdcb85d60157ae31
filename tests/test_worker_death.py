"""A worker of a distributed run dies (kill -9): its pages come back to the queue, and the run loses nothing.

Every test crawls the same synthetic graph to its end (no budget, no depth
limit), so the set of pages a clean run stores is known: the one a single
worker stores on its own, measured once. A killed worker's pages in progress
(downloading, parsed, or waiting in its writer's batch) are leased to it;
when its heartbeat lapses (``REDIS_LEASE_TIMEOUT``) they go back to the queue
and a live worker, or the next start of the job, fetches them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import pytest
import redis

from crawler.demo_site import DemoSite, SyntheticGraph, index_pages
from crawler.parsing.items import TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.parsing.processors import imdb_id
from tests.conftest import FIXTURES, PROJECT, crawl_command, db_of

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

GRAPH = 100  # pages of the synthetic graph
LEASE = 5  # seconds without a heartbeat before a worker counts as dead (a loaded CI machine: not less)


def stored(uri: str) -> set[str]:
    db = db_of(uri)
    return {d["_id"] for d in db.titles.find({}, {"_id": 1})} | {d["_id"] for d in db.people.find({}, {"_id": 1})}


def start_worker(
    site: DemoSite, mongo_uri: str, redis_url: str, tmp_path: Path, name: str, job: str, concurrency: int = 2
) -> Any:
    command = crawl_command(site.base_url, mongo_uri, tmp_path / name, "-a", "start=sitemap", "-a", "depth=1000",
                            "-a", "max_pages=100000", "-s", f"REDIS_URL={redis_url}", "-s", f"JOB_NAME={job}",
                            "-s", "REDIS_IDLE_TIMEOUT=2", "-s", f"REDIS_LEASE_TIMEOUT={LEASE}",
                            "-s", f"CONCURRENT_REQUESTS={concurrency}", "-s", "RUN_RECORD_INTERVAL=1",
                            "-s", "MONGODB_BATCH_SIZE=10")  # fmt: skip
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=PROJECT, stderr=log, stdout=log)


def joined(tmp_path: Path, *names: str) -> bool:
    logs = [tmp_path / f"{name}.log" for name in names]
    return all(log.exists() and "Worker of distributed run" in log.read_text() for log in logs)


def wait_until(condition: Any, timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def holding(redis_url: str, job: str, workers: int, pages: int = 3) -> bool:
    """Whether `workers` workers of the job's run each hold at least `pages` pages under lease right now."""
    client = redis.Redis.from_url(redis_url)
    held = [client.hlen(key) for key in client.scan_iter(match=f"{job}:*:leases:*")]
    return sum(1 for n in held if n >= pages) >= workers


def two_workers_mid_crawl(site: DemoSite, mongo_uri: str, redis_url: str, tmp_path: Path, job: str) -> list[Any]:
    """Workers w1 and w2 of the job, once a first batch is stored and each holds pages under lease.

    Slow enough (0.2 s a page, 2 at a time a worker: 100 pages take 5 s or more) that the kill lands early in
    the crawl on a loaded machine too.
    """
    workers = [start_worker(site, mongo_uri, redis_url, tmp_path, name, job) for name in ("w1", "w2")]
    wait_until(lambda: joined(tmp_path, "w1", "w2") and holding(redis_url, job, 2, pages=2)
               and len(stored(mongo_uri)) >= 10, what="mid-crawl, both workers with pages in hand")  # fmt: skip
    return workers


def log_of(tmp_path: Path, *names: str) -> str:
    return "\n".join(f"--- {n}\n" + (tmp_path / f"{n}.log").read_text()[-4000:] for n in names)


@pytest.fixture(scope="module")
def clean_set() -> set[str]:
    """What a clean run stores: the pages reachable from the sitemap's seeds by the links the spider follows
    (recommendations and cast, known-for), read with the project's own parser. An oracle, not another crawl."""
    graph = SyntheticGraph(index_pages(FIXTURES), GRAPH)  # the demo site's graph (DemoSite(synthetic=GRAPH))
    found: set[str] = set()
    waiting, seen = deque(graph.seeds()), set()
    while waiting:
        page_id = waiting.popleft()
        page = graph.page(page_id) if page_id not in seen else None
        seen.add(page_id)
        if page is None:
            continue  # seen, or not in the graph: the site answers 404
        item = load_item(parse_page(page.decode("utf-8-sig")))
        found.add(item.imdb_id)
        links = [*item.recommendations, *(member["id"] for member in item.cast)] if isinstance(item, TitleItem) \
            else list(getattr(item, "known_for", []))  # fmt: skip
        waiting.extend(link for link in (imdb_id(raw) for raw in links) if link and link[:2] in ("tt", "nm"))
    assert len(found) > GRAPH // 2  # most of the graph is reachable from the sitemap's seeds
    return found


def the_run(mongo_uri: str, job: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The judged record of the job's one run, and every worker's record."""
    runs = list(db_of(mongo_uri).crawl_runs.find({"job": job}))
    assert len({run["run_group"] for run in runs}) == 1, "one run, whatever workers came and went"
    judged = [run for run in runs if "run_wide" in run]
    assert len(judged) == 1, [(r["_id"][:8], r["status"], r.get("monitors")) for r in runs]
    return judged[0], runs


def twice_only_in_flight(site: DemoSite, runs: list[dict[str, Any]]) -> None:
    """Pages fetched twice are at most the dead workers' pages in progress, each fetched at most twice."""
    given_back = sum(run["died"]["pages_given_back"] for run in runs if run["status"] == "died")
    twice = [page for page, hits in site.hits.items() if hits > 1]
    assert len(twice) <= given_back and max(site.hits.values()) <= 2, (given_back, Counter(site.hits.values()))


def test_the_survivor_fetches_a_killed_workers_pages_in_the_same_run(
    clean_set: set[str], mongo_uri: str, redis_url: str, tmp_path: Path
) -> None:
    with DemoSite(synthetic=GRAPH, mode="slow", delay=0.2) as site:
        w1, w2 = two_workers_mid_crawl(site, mongo_uri, redis_url, tmp_path, "death")
        w1.send_signal(signal.SIGKILL)
        w1.wait()
        code = w2.wait(timeout=180)
        hits = dict(site.hits)
    assert code == 0, log_of(tmp_path, "w2")
    assert stored(mongo_uri) == clean_set and set(hits) == clean_set
    judged, runs = the_run(mongo_uri, "death")
    assert all(v["ok"] for v in judged["monitors"]), judged["monitors"]
    run_wide = judged["run_wide"]
    assert run_wide["counted_from"] == "redis" and run_wide["died"] == 1
    assert run_wide["admitted"] == run_wide["finished_pages"] == len(clean_set) and run_wide["unfinished"] == 0
    dead = next(run for run in runs if run["status"] == "died")
    assert dead["finish_reason"] == "died" and dead["died"]["pages_given_back"] > 0
    twice_only_in_flight(site, runs)
    assert redis.Redis.from_url(redis_url).keys("death*") == []  # judged and ended: the next start is a new run


def test_a_worker_started_after_the_kill_joins_the_run_and_helps(
    clean_set: set[str], mongo_uri: str, redis_url: str, tmp_path: Path
) -> None:
    with DemoSite(synthetic=GRAPH, mode="slow", delay=0.2) as site:
        w1, w2 = two_workers_mid_crawl(site, mongo_uri, redis_url, tmp_path, "third")
        w1.send_signal(signal.SIGKILL)
        w1.wait()
        w3 = start_worker(site, mongo_uri, redis_url, tmp_path, "w3", "third", concurrency=4)
        codes = [w2.wait(timeout=180), w3.wait(timeout=180)]
    assert codes == [0, 0], log_of(tmp_path, "w2", "w3")
    assert stored(mongo_uri) == clean_set
    judged, runs = the_run(mongo_uri, "third")
    assert len(runs) == 3 and all(v["ok"] for v in judged["monitors"]), judged["monitors"]
    assert judged["run_wide"]["admitted"] == judged["run_wide"]["finished_pages"] == len(clean_set)
    assert {run["status"] for run in runs} == {"finished", "died"}
    twice_only_in_flight(site, runs)


def test_the_next_start_after_every_worker_died_completes_the_run(
    clean_set: set[str], mongo_uri: str, redis_url: str, tmp_path: Path
) -> None:
    with DemoSite(synthetic=GRAPH, mode="slow", delay=0.2) as site:
        workers = two_workers_mid_crawl(site, mongo_uri, redis_url, tmp_path, "restart")
        for process in workers:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert len(stored(mongo_uri)) < len(clean_set)
        again = start_worker(site, mongo_uri, redis_url, tmp_path, "again", "restart", concurrency=4)
        code = again.wait(timeout=180)
    assert code == 0, log_of(tmp_path, "again")
    assert stored(mongo_uri) == clean_set
    judged, runs = the_run(mongo_uri, "restart")
    assert all(v["ok"] for v in judged["monitors"]), judged["monitors"]
    assert judged["_id"] not in {run["_id"] for run in runs if run["status"] == "died"}
    assert sorted(run["status"] for run in runs) == ["died", "died", "finished"]
    assert judged["run_wide"]["admitted"] == judged["run_wide"]["finished_pages"] == len(clean_set)
    twice_only_in_flight(site, runs)
