"""Fault tests with real processes and real servers: every page ends stored, spooled or counted, and a run
that lost or could not do work exits non-zero.

kill -9 with JOBDIR, MongoDB killed and restarted, MongoDB down at start, a spool that cannot be written
(full disk), a replay killed halfway, a spool file cut by a crash. Each is bounded in time.
"""

from __future__ import annotations

import json
import logging
import re
import resource
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_twisted
from scrapy import signals
from twisted.internet import reactor

from crawler.demo_site import DemoSite, SyntheticGraph, index_pages
from crawler.runtime.frontier import Journal
from crawler.storage.bulk import Pending
from crawler.storage.spool import Spool
from tests.conftest import (
    FIXTURES,
    PROJECT,
    aio,
    crawl,
    crawl_command,
    db_of,
    free_port,
    make_crawler,
    matrix,
    run_crawl,
)


def start_server(path: Path | None, port: int) -> subprocess.Popen:
    """The embedded MongoDB server in its own process: SQLite files at ``path`` (they outlive it), or memory."""
    storage = ["--path", str(path)] if path else ["--memory"]
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.embedded_mongo", *storage, "--port", str(port)], cwd=PROJECT,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("mongodb://")
    return process


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    process.wait(timeout=30)


def uri_on(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/imdb?directConnection=true"


def wait_for_documents(uri: str, count: int, timeout: float = 60) -> None:
    """Until ``count`` documents are stored (the crawl is writing), or fail."""
    deadline = time.monotonic() + timeout
    while len(stored_ids(uri)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} documents stored after {timeout}s"
        time.sleep(0.05)


def stored_ids(uri: str) -> set[str]:
    db = db_of(uri)
    return set(db.titles.distinct("_id")) | set(db.people.distinct("_id"))


def wait_for_run_lock(uri: str, ttl: float, timeout: float = 60) -> None:
    """Until no run lock is held: released by its run, or ``ttl`` seconds past its last heartbeat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        expired = datetime.now(UTC) - timedelta(seconds=ttl + 1)
        if not db_of(uri).locks.count_documents({"heartbeat": {"$gte": expired}}):
            return
        time.sleep(0.5)
    raise AssertionError(f"a run lock was still held after {timeout} s")


def test_crawl_survives_mongodb_restart(demo_site: DemoSite, tmp_path: Path) -> None:
    """Kill the server mid-crawl, restart it: the stored set equals a clean crawl's, the spool is empty."""
    port = free_port()
    server = start_server(tmp_path / "db.sqlite", port)
    seeds = "start=tt0133093,tt0088247,tt0095016,tt0076759,tt1375666,tt2294629,nm0000138,tt0172495,tt0245429"
    command = crawl_command(demo_site.base_url, uri_on(port), tmp_path, "-a", seeds, "-a", "depth=0",
                            "-s", "DOWNLOAD_DELAY=0.4", "-s", "CONCURRENT_REQUESTS=1", "-s", "MONGODB_BATCH_SIZE=1",
                            "-s", "MONGODB_SERVER_TIMEOUT_MS=300", "-s", "RUN_LOCK_TTL=10")  # fmt: skip
    log_file = tmp_path / "crawl.log"
    with open(log_file, "w") as log_handle:
        crawl_process = subprocess.Popen(command, cwd=PROJECT, stderr=log_handle)
        try:
            wait_for_documents(uri_on(port), 2)
            stop(server)
            deadline = time.monotonic() + 60  # down until the crawl has had to spool
            while "spooling" not in log_file.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            server = start_server(tmp_path / "db.sqlite", port)
            crawl_process.wait(timeout=300)
        finally:
            crawl_process.kill()
    log = log_file.read_text()
    try:
        said = "\n".join(line for line in log.splitlines() if "crawler." in line)
        assert crawl_process.returncode == 0 and "spooling" in log, said
        pending = Spool(tmp_path / "spool").pending()
        kept = sum(pending.values())
        if kept:  # the crawl ended before the server was back (a loaded machine): the next run writes them
            # The writer counts its documents when it closes; the run record is spooled after it ("runs").
            assert f"{kept - pending.get('runs', 0)} documents are kept in" in log, said
            wait_for_run_lock(uri_on(port), ttl=10)  # released, or (not releasable then) expired
            again = run_crawl(
                demo_site.base_url,
                uri_on(port),
                tmp_path,
                "-a",
                "start=tt0133093",
                "-a",
                "depth=0",
                "-s",
                "RUN_LOCK_TTL=10",
            )  # the job's settings: its lock expires as the first run's
            assert again.returncode == 0 and f"Replayed {kept} spooled documents" in again.stderr
        else:
            assert "MongoDB is back" in log, said
        assert len(stored_ids(uri_on(port))) == 9 and not Spool(tmp_path / "spool").files()
        # The run's record says it spooled pages (written when MongoDB came back, or replayed by the next run).
        first = db_of(uri_on(port)).crawl_runs.find_one({"settings.start": seeds.removeprefix("start=")})
        assert first["status"] == "finished" and first["items"]["spooled"] > 0, first
    finally:
        stop(server)


def test_mongodb_down_at_start_is_one_line_exit_1_and_the_run_is_recorded_later(demo_site, tmp_path: Path) -> None:
    port = free_port()
    result = run_crawl(demo_site.base_url, uri_on(port), tmp_path, "-a", "start=tt0133093", "-a", "depth=0",
                       "-s", "MONGODB_SERVER_TIMEOUT_MS=300")  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"Not crawling: MongoDB at {uri_on(port)} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    server = start_server(tmp_path / "db.sqlite", port)  # MongoDB back: the next run records the failed one
    try:
        again = run_crawl(demo_site.base_url, uri_on(port), tmp_path, "-a", "start=tt0133093", "-a", "depth=0")
        assert again.returncode == 0, again.stderr[-3000:]
        runs = {r["finish_reason"]: r for r in db_of(uri_on(port)).crawl_runs.find()}
        assert set(runs) == {"mongodb_unreachable", "finished"}
        refused = runs["mongodb_unreachable"]
        assert not refused["monitors"][0]["ok"] and refused["responses"] == 0 and refused["admitted"] == 0
    finally:
        stop(server)


def limit_file_size() -> None:
    """The child writes at most 2 kB per file: every spool write fails like on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


def test_documents_that_can_be_neither_written_nor_spooled_are_counted_lost_and_fail_the_run(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path / "db.sqlite", port)
    with DemoSite(FIXTURES, mode="slow", delay=0.5) as site:
        seeds = "start=tt0133093,tt0088247,tt0095016,tt0076759,tt1375666,tt2294629,nm0000138,tt0172495,tt0245429"
        command = crawl_command(site.base_url, uri_on(port), tmp_path, "-a", seeds, "-a", "depth=0",
                                "-s", "CONCURRENT_REQUESTS=2", "-s", "MONGODB_BATCH_SIZE=1",
                                "-s", "MONGODB_SERVER_TIMEOUT_MS=150", "-s", "RUN_LOCK_ENABLED=False")  # fmt: skip
        process = subprocess.Popen(command, cwd=PROJECT, stderr=subprocess.PIPE, text=True, preexec_fn=limit_file_size)
        wait_for_documents(uri_on(port), 2)
        stop(server)  # MongoDB gone, and the disk is "full": the rest of the run cannot be kept
        _, log = process.communicate(timeout=300)
    assert process.returncode == 1, log[-3000:]
    assert "LOST" in log and "could not spool" in log
    assert "Monitor pages_accounted failed" in log and "documents lost" in log
    kept = re.search(r"(\d+) documents are kept in", log)
    # It never claims to keep what it could not: the small pages that fitted are there, and only those.
    assert (int(kept.group(1)) if kept else 0) == sum(Spool(tmp_path / "spool").pending().values())


def test_a_replay_killed_halfway_is_finished_by_the_next_run(demo_site, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    item = matrix()
    for batch in range(6):  # 300 documents spooled by earlier outages, in 6 files
        documents = []
        for n in range(50):
            document = {**item.__dict__, "_id": f"tt{batch * 50 + n + 1:07d}", "imdb_id": f"tt{batch * 50 + n + 1:07d}"}
            documents.append(Pending("titles", {**document, "content_hash": str(n), "richness": 30}, None, "x"))
        spool.append("batch", [{**p.to_spool(), "seen_at": None} for p in documents])
    port = free_port()
    server = start_server(None, port)
    arguments = ("-a", "start=tt0133093", "-a", "depth=0", "-s", "RUN_LOCK_ENABLED=False")
    try:
        process = subprocess.Popen(crawl_command(demo_site.base_url, uri_on(port), tmp_path, *arguments), cwd=PROJECT,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while db_of(uri_on(port)).titles.count_documents({}) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop(process, signal.SIGKILL)
        halfway = db_of(uri_on(port)).titles.count_documents({})
        assert 0 < halfway < 300 and spool.files()
        again = run_crawl(demo_site.base_url, uri_on(port), tmp_path, *arguments)
        assert again.returncode == 0, again.stderr[-3000:]
        assert db_of(uri_on(port)).titles.count_documents({}) == 301 and not spool.files()
        assert "are kept in" not in again.stderr and re.search(r"Replayed \d+ spooled documents", again.stderr)
    finally:
        stop(server)


def test_a_spool_line_cut_by_a_crash_is_quarantined_and_reported(tmp_path: Path, mongo_uri: str, demo_site) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    good = {**matrix().__dict__, "_id": "tt0133093", "content_hash": "x", "richness": 30}
    # A spool file of an older version, appended to, whose last line a full disk cut short.
    (spool / "titles.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "_id": "tt0000002"})[:80])
    result = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=nm0000138", "-a", "depth=0")
    assert result.returncode == 1  # a document was lost before this run: said, not hidden
    assert "1 unreadable lines in the spool file titles.jsonl" in result.stderr
    assert db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})["title"] == "The Matrix"
    assert not Spool(spool).files() and (spool / "quarantine" / "titles.jsonl.unreadable").exists()
    again = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=nm0000138", "-a", "depth=0")
    assert again.returncode == 0, again.stderr[-2000:]  # reported once, never blocks later runs


def journal_state(jobdir: Path) -> tuple[set[str], set[str]]:
    """``(admitted, finished)`` ids in a frontier journal."""
    admitted, done = set(), set()
    for line in (jobdir / "imdb-frontier.jsonl").read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        (done.add(entry["done"]) if "done" in entry else admitted.add(entry["id"]))
    return admitted, done


def test_kill_9_with_jobdir_then_resume_loses_nothing_and_refetches_only_unfinished_pages(tmp_path: Path) -> None:
    arguments = ("-a", "start=sitemap", "-a", "depth=50", "-a", "max_pages=100")
    graph = SyntheticGraph(index_pages(FIXTURES), 100)
    # Every page of this 100-page graph is reachable from its seeds (an uninterrupted crawl stores all 100).
    expected = {graph.synthetic_id("tt", n) for n in range(graph.titles)} | {
        graph.synthetic_id("nm", n) for n in range(graph.people)
    }
    port = free_port()
    server = start_server(None, port)
    jobdir = tmp_path / "job"
    try:
        with DemoSite(synthetic=100, mode="slow", delay=0.03) as site:
            command = crawl_command(site.base_url, uri_on(port), tmp_path, *arguments, "-s", f"JOBDIR={jobdir}",
                                    "-s", "RUN_LOCK_ENABLED=False", "-s", "MONGODB_BATCH_SIZE=20")  # fmt: skip
            process = subprocess.Popen(command, cwd=PROJECT, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while len(stored_ids(uri_on(port))) < len(expected) // 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            stop(process, signal.SIGKILL)
            admitted, done = journal_state(jobdir)
            unfinished_at_kill = admitted - done
            fetched_before = set(site.hits)
            assert 0 < len(stored_ids(uri_on(port))) < len(expected)
            site.hits.clear()
            resumed = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"Resuming: {len(unfinished_at_kill)} pages were admitted but not finished" in resumed.stderr
        assert stored_ids(uri_on(port)) == expected  # nothing lost
        fetched_twice = fetched_before & set(site.hits)
        assert fetched_twice <= unfinished_at_kill  # only pages that were in flight when it died
        assert max(site.hits.values()) == 1
        assert not (jobdir / "imdb-frontier.jsonl").exists()  # the job is complete
    finally:
        stop(server)


@pytest_twisted.ensureDeferred
async def test_cron_with_a_fixed_jobdir_crawls_again_every_run(demo_site, mongo_uri: str, tmp_path: Path):
    jobdir = str(tmp_path / "nightly")
    seeds = "tt0133093,tt0088247,nm0000138"
    for run in range(2):
        crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, settings={"JOBDIR": jobdir}, start=seeds,
                              depth=0)  # fmt: skip
        stats = crawler.stats.get_stats()
        assert crawler.exit_status == 0
        assert stats["frontier/admitted"] == 3 and stats["pages/new" if run == 0 else "pages/unchanged"] == 3
    again = await crawl(mongo_uri, demo_site.base_url, tmp_path, settings={"JOBDIR": jobdir}, start="stale",
                        refresh_after="0s", depth=0)  # fmt: skip
    assert again.stats.get_value("pages/unchanged") == 3  # "stale" seeds too, on the same JOBDIR


@pytest_twisted.ensureDeferred
async def test_a_paused_run_resumes_what_it_had_left(demo_site, mongo_uri: str, tmp_path: Path, caplog):
    """Ctrl-C with JOBDIR: the run stops with reason shutdown; the same command fetches the rest, once each."""
    caplog.set_level(logging.INFO)
    jobdir = str(tmp_path / "job")
    with DemoSite(FIXTURES, mode="slow", delay=0.1) as site:
        crawler = make_crawler(IMDB_BASE_URL=site.base_url, MONGODB_URI=mongo_uri, JOBDIR=jobdir,
                               MONGODB_SPOOL_DIR=str(tmp_path / "spool"), CONCURRENT_REQUESTS=2)  # fmt: skip
        stopping: list[Any] = []

        def shutdown() -> None:
            aio(crawler.engine.close_spider_async(reason="shutdown"))

        def stop_after_the_first_page(**_: Any) -> None:  # however long the crawl took to start
            if not stopping:
                stopping.append(reactor.callLater(0.2, shutdown))

        crawler.signals.connect(stop_after_the_first_page, signal=signals.item_scraped)
        await crawler.crawl(start="sitemap", depth=0)
        paused = crawler.stats.get_stats()
        assert paused["finish_reason"] == "shutdown" and 0 < paused.get("pages/new", 0) < 30
        assert paused["monitors/pages_accounted"] == "ok"  # kept in JOBDIR: not lost
        last = next(r.getMessage() for r in reversed(caplog.records) if r.getMessage().startswith("Run "))
        left = paused["frontier/admitted"] - paused["frontier/finished"]
        assert f"(shutdown): {paused['frontier/finished']} pages finished of {paused['frontier/admitted']} " in last
        assert f"admitted, {left} left (shutdown; kept in JOBDIR {jobdir} for the next run)" in last
        admitted, done = journal_state(Path(jobdir))
        first = set(site.hits)
        site.hits.clear()
        resumed = await crawl(mongo_uri, site.base_url, tmp_path, settings={"JOBDIR": jobdir}, start="sitemap", depth=0)
    assert resumed.exit_status == 0 and len(stored_ids(mongo_uri)) == 30
    assert first & set(site.hits) <= admitted - done and max(site.hits.values()) == 1


@pytest_twisted.ensureDeferred
async def test_an_unreadable_jobdir_snapshot_is_one_line_and_exit_1(demo_site, mongo_uri: str, tmp_path: Path, caplog):
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    (jobdir / "imdb-frontier.done").write_bytes(b"\x00\x00\x00\x00\x00\x00\x00\x09not a bitmap")
    for _ in range(2):  # the same line on every later run, never a traceback
        caplog.clear()
        crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, settings={"JOBDIR": str(jobdir)},
                              start="tt0133093", depth=0)  # fmt: skip
        assert crawler.exit_status == 1 and crawler.stats.get_value("finish_reason") == "start_error"
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert "Cannot resume: " in errors[0].getMessage() and "imdb-frontier.done is unreadable" in caplog.text
        assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text
    assert db_of(mongo_uri).titles.count_documents({}) == 0


@pytest_twisted.ensureDeferred
async def test_lines_of_the_journal_that_are_not_ours_are_skipped_and_counted(demo_site, mongo_uri, tmp_path, caplog):
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    lines = ['{"id": "tt0133093", "depth": 0}', '{"done": "xx1"}', '{"id": "tt1", "depth": "deep"}', "[1, 2]",
             '{"id": "tt0095016", "depth": -3}', '{"done": 5}', "junk", '{"id": "nm0000138", "depth": 0}']  # fmt: skip
    (jobdir / "imdb-frontier.jsonl").write_text("\n".join(lines) + "\n")
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, settings={"JOBDIR": str(jobdir)},
                          start="tt0133093", depth=0)  # fmt: skip
    assert crawler.exit_status == 0 and crawler.stats.get_value("frontier/resumed") == 2
    assert "skipped 6 unreadable line(s)" in caplog.text and "Traceback" not in caplog.text
    assert set(stored_ids(mongo_uri)) == {"tt0133093", "nm0000138"}


@pytest_twisted.ensureDeferred
async def test_a_full_disk_under_jobdir_stops_the_run_with_one_line(
    demo_site, mongo_uri, tmp_path, caplog, monkeypatch
):
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    monkeypatch.setattr(Journal, "_open_for_append", lambda self: open("/dev/full", "a", encoding="utf-8"))  # noqa: SIM115
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, settings={"JOBDIR": str(tmp_path / "job")},
                          start="sitemap", depth=1)  # fmt: skip
    assert crawler.exit_status == 1 and crawler.stats.get_value("finish_reason") == "jobdir_unwritable"
    said = [r.getMessage() for r in caplog.records if "No space left on device" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("Stopping: cannot write the frontier journal in ")
    assert "Task exception was never retrieved" not in caplog.text and "Traceback" not in caplog.text
