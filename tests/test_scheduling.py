"""Scheduled runs: refresh windows, stale-first seeding, the run lock, crash-safe resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.parsing.items import SCHEMA_VERSION
from crawler.runtime.spiders.imdb import parse_duration
from crawler.site import DemoSite
from tests.conftest import FIXTURES, PROJECT, db_of, run_crawl


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="7d, 12h"):
        parse_duration("a week")


def test_refresh_after_skips_fresh_pages_and_stale_seeds_oldest(demo_site, mongo_uri: str, tmp_path: Path) -> None:
    first = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "depth=0")
    assert first.returncode == 0
    db = db_of(mongo_uri)
    # Everything was just seen: a refresh run fetches none of it.
    fresh = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "refresh_after=7d")
    assert fresh.returncode == 0
    assert "'imdb/skipped_fresh': 30" in fresh.stderr and "item_scraped_count" not in fresh.stderr
    # Age three titles: a stale-first run refreshes exactly those, oldest first.
    old = datetime.now(UTC) - timedelta(days=30)
    for n, page_id in enumerate(["tt0133093", "tt0088247", "nm0000138"]):
        db[("people" if page_id.startswith("nm") else "titles")].update_one(
            {"_id": page_id}, {"$set": {"last_seen": old - timedelta(days=n)}}
        )
    stale = run_crawl(
        demo_site.base_url, mongo_uri, tmp_path, "-a", "start=stale", "-a", "refresh_after=7d", "-a", "depth=0"
    )
    assert stale.returncode == 0, stale.stderr[-2000:]
    assert "Refreshing 3 stale documents" in stale.stderr and "'item_scraped_count': 3" in stale.stderr
    assert db.titles.count_documents({"last_seen": {"$lt": datetime.now(UTC) - timedelta(days=7)}}) == 0


def test_documents_of_an_older_schema_version_are_never_fresh_and_refreshed_first(
    demo_site, mongo_uri: str, tmp_path: Path
) -> None:
    assert run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "depth=0").returncode == 0
    db = db_of(mongo_uri)
    # As an older version wrote it: its hash covers its schema_version, so it differs too.
    older = {"schema_version": SCHEMA_VERSION - 1, "filmography.0.category": "Actor", "content_hash": "v1"}
    db.people.update_one({"_id": "nm0000138"}, {"$set": older})
    # Seen a moment ago, but written by an older version: a refresh run fetches it again.
    fresh = run_crawl(
        demo_site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "refresh_after=7d", "-a", "depth=0"
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert "'imdb/skipped_fresh': 29" in fresh.stderr and "'item_scraped_count': 1" in fresh.stderr
    assert "29 documents were seen in the last 7 days" in fresh.stderr and "MB Bloom filter" in fresh.stderr
    person = db.people.find_one({"_id": "nm0000138"})
    assert person["schema_version"] == SCHEMA_VERSION and person["filmography"][0]["category"] == "producer"
    # A stale-first run with room for one page takes the older version before the oldest document.
    db.titles.update_one({"_id": "tt0133093"}, {"$set": {"last_seen": datetime.now(UTC) - timedelta(days=30)}})
    db.titles.update_one({"_id": "tt0088247"}, {"$set": {"schema_version": SCHEMA_VERSION - 1, "content_hash": "v1"}})
    stale = run_crawl(
        demo_site.base_url, mongo_uri, tmp_path, "-a", "start=stale", "-a", "refresh_after=7d", "-a", "max_pages=1"
    )
    assert stale.returncode == 0, stale.stderr[-2000:]
    assert "Refreshing 1 stale documents" in stale.stderr
    assert db.titles.find_one({"_id": "tt0088247"})["schema_version"] == SCHEMA_VERSION
    assert (
        db.titles.count_documents({"_id": "tt0133093", "last_seen": {"$lt": datetime.now(UTC) - timedelta(days=7)}})
        == 1
    )


def test_second_run_of_a_job_does_not_overlap(demo_site, mongo_uri: str, tmp_path: Path) -> None:
    db = db_of(mongo_uri)
    db.locks.insert_one({"_id": "imdb", "owner": "otherhost:123", "heartbeat": datetime.now(UTC)})
    locked = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0")
    assert locked.returncode == 1
    assert "is already running (otherhost:123" in locked.stderr and "'finish_reason': 'locked'" in locked.stderr
    assert db.titles.count_documents({}) == 0
    # The other run crashed long ago: its lock has expired and is taken over.
    db.locks.update_one({"_id": "imdb"}, {"$set": {"heartbeat": datetime.now(UTC) - timedelta(hours=1)}})
    taken = run_crawl(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0")
    assert taken.returncode == 0 and "Took over the expired lock" in taken.stderr
    assert db.titles.count_documents({}) == 1 and db.locks.count_documents({}) == 0  # released at the end


def test_progress_is_logged(mongo_uri: str, tmp_path: Path) -> None:
    with DemoSite(FIXTURES, mode="slow", delay=0.2) as site:
        result = run_crawl(
            site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "depth=0",
            "-s", "PROGRESS_INTERVAL=1", "-s", "CONCURRENT_REQUESTS=2",
        )  # fmt: skip
    assert result.returncode == 0
    assert "Progress: " in result.stderr and "pages/min" in result.stderr and "requests queued" in result.stderr


def test_jobdir_resume_after_kill_9(mongo_uri: str, tmp_path: Path) -> None:
    """A crawl killed with SIGKILL and restarted stores the same set as an uninterrupted one."""
    with DemoSite(FIXTURES, mode="slow", delay=0.3) as site:
        command = [
            sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap", "-a", "depth=1",
            "-s", f"IMDB_BASE_URL={site.base_url}", "-s", f"MONGODB_URI={mongo_uri}",
            "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "CONCURRENT_REQUESTS=4",
            "-s", f"JOBDIR={tmp_path / 'job'}", "-s", f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}",
            "-s", "RUN_LOCK_TTL=1",  # the killed run never releases its lock
            "-s", "MONGODB_BATCH_SIZE=2",
        ]  # fmt: skip
        db = db_of(mongo_uri)
        with open(tmp_path / "killed.log", "w") as log:
            crawl = subprocess.Popen(command, cwd=PROJECT, stderr=log)
            deadline = time.monotonic() + 60
            while db.titles.count_documents({}) < 8 and time.monotonic() < deadline:
                time.sleep(0.1)
            os.kill(crawl.pid, signal.SIGKILL)
            crawl.wait()
        killed_at = db.titles.count_documents({}) + db.people.count_documents({})
        assert 0 < killed_at < 30
        time.sleep(1.5)  # let the dead run's lock expire
        resumed = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming" in resumed.stderr
    titles, people = db.titles.distinct("_id"), db.people.distinct("_id")
    assert len(titles) == 25 and len(people) == 5
    assert db.titles.count_documents({}) == 25 and db.people.count_documents({}) == 5  # no duplicates
