"""Validation and MongoDB pipelines against a real MongoDB wire server."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import InsertOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from scrapy import Spider
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from crawler.mongo import EmbeddedMongo
from crawler.parsing.items import PersonItem, TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.storage.validate import ValidationPipeline
from crawler.storage.writer import INDEXES, MongoPipeline
from tests.conftest import PROJECT, db_of, free_port, make_crawler, matrix, page_file, read_page, run_items


def test_same_item_many_times_gives_one_document(mongo_uri: str, tmp_path: Path) -> None:
    full = matrix()
    poorer = dataclasses.replace(full, cast=[], recommendations=[], keywords=[])
    pipeline = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path))
    asyncio.run(run_items(pipeline, [full, full, poorer, full, full]))
    db = db_of(mongo_uri)
    assert db.titles.count_documents({}) == 1
    doc = db.titles.find_one({"_id": "tt0133093"})
    assert len(doc["cast"]) == 18  # the poorer copy did not replace the richer one
    assert pipeline.counts.new == 1 and pipeline.counts.duplicates == 4


def test_repeats_older_than_the_dedupe_cache_are_caught_by_the_stored_document(mongo_uri: str, tmp_path: Path) -> None:
    """A bounded cache: a repeat it forgot is judged against what this run already stored."""
    full = matrix()
    other = dataclasses.replace(full, imdb_id="tt0000001")
    poorer = dataclasses.replace(full, cast=[], recommendations=[], keywords=[])
    crawler = make_crawler(mongo_uri, tmp_path, MONGODB_BATCH_SIZE=1, MONGODB_DEDUPE_CACHE=1)
    pipeline = MongoPipeline.from_crawler(crawler)
    asyncio.run(run_items(pipeline, [full, other, poorer, full, full]))
    doc = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert len(doc["cast"]) == 18 and doc["richness"] > 0
    assert pipeline.counts.new == 2 and pipeline.counts.duplicates == 3 and pipeline.counts.changed == 0
    assert len(pipeline.run_versions) == 1


def test_richer_later_version_replaces_poorer(mongo_uri: str, tmp_path: Path) -> None:
    full = matrix()
    poorer = dataclasses.replace(full, cast=[], keywords=[])
    pipeline = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path, MONGODB_BATCH_SIZE=1))
    asyncio.run(run_items(pipeline, [poorer, full]))
    assert len(db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})["cast"]) == 18


def test_second_identical_run_rewrites_nothing(mongo_uri: str, tmp_path: Path) -> None:
    asyncio.run(run_items(MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path)), [matrix()]))
    first = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    time.sleep(0.01)
    again = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path))
    asyncio.run(run_items(again, [matrix()]))
    second = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert again.counts.unchanged == 1 and again.counts.new == again.counts.changed == 0
    assert second["last_changed"] == first["last_changed"] and second["last_seen"] > first["last_seen"]
    assert second["first_seen"] == first["first_seen"]
    changed = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path))
    asyncio.run(run_items(changed, [dataclasses.replace(matrix(), votes=2_000_000)]))
    third = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert changed.counts.changed == 1 and third["votes"] == 2_000_000 and third["last_changed"] > first["last_changed"]


def test_indexes_and_validators_exist_and_reopening_is_safe(mongo_uri: str, tmp_path: Path) -> None:
    for _ in range(2):
        asyncio.run(run_items(MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path)), []))
    db = db_of(mongo_uri)
    for name, indexes in INDEXES.items():
        keys = [list(index["key"].items()) for index in db[name].list_indexes()]
        for wanted in indexes:
            assert [(k, v) for k, v in wanted] in keys or any(k[0][1] == "text" for k in keys if wanted[0][1] == "text")
        options = db.command("listCollections", filter={"name": name})["cursor"]["firstBatch"][0]["options"]
        assert "$jsonSchema" in options["validator"]
    runs = list(db.crawl_runs.find())
    assert len(runs) == 2 and all(r["finish_reason"] == "finished" for r in runs)


def test_workers_racing_to_create_the_collections(mongo_uri: str, tmp_path: Path) -> None:
    """Another worker creates the collections between our listing and our create: not an error."""
    asyncio.run(run_items(MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path)), []))
    pipeline = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path))
    pipeline.db = pipeline.store.open()
    real = pipeline.db.list_collection_names
    calls: list[int] = []

    def list_collection_names() -> list[str]:
        calls.append(1)
        return [] if len(calls) == 1 else real()  # the first listing misses the other worker's

    pipeline.db.list_collection_names = list_collection_names

    def create_collection(name: str, **options: Any) -> None:
        raise OperationFailure(f"collection '{name}' already exists", code=48)  # NamespaceExists

    pipeline.db.create_collection = create_collection
    pipeline.ensure_schema()
    pipeline.store.close()
    assert {"titles", "people"} <= set(db_of(mongo_uri).list_collection_names())


def test_server_side_validation_error_is_reported_per_item_not_retried(mongo_uri: str, tmp_path: Path) -> None:
    bad = TitleItem(imdb_id="tt0000001", title=None)  # skips ValidationPipeline on purpose
    pipeline = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path))
    asyncio.run(run_items(pipeline, [bad, matrix()]))
    assert pipeline.counts.failed == {"validation_failed": 1}
    assert pipeline.counts.spooled == 0 and not pipeline.spool.pending()
    assert db_of(mongo_uri).titles.count_documents({}) == 1


def test_insert_racing_another_worker_becomes_an_update(
    mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document inserted by another worker between our read and our write is updated, not lost."""
    asyncio.run(run_items(MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path)), [matrix()]))
    pipeline = MongoPipeline.from_crawler(make_crawler(mongo_uri, tmp_path))
    monkeypatch.setattr(pipeline, "stored_versions", lambda coll, ids: {})  # our read misses it
    asyncio.run(run_items(pipeline, [dataclasses.replace(matrix(), votes=42)]))
    assert pipeline.counts.changed == 1 and pipeline.counts.new == 0 and not pipeline.counts.failed
    doc = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert doc["votes"] == 42


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (TitleItem(imdb_id="tt0000001"), "invalid_title"),
        (TitleItem(imdb_id="tt0000001", title="X", rating=11.0), "invalid_rating"),
        (PersonItem(imdb_id="nm0000001"), "invalid_name"),
        (TitleItem(imdb_id="tt0000001", title="X", plot="x" * (17 * 1024 * 1024)), "too_large"),
    ],
)
def test_validation_drops_with_named_reason(item: Any, reason: str) -> None:
    crawler = get_crawler(Spider)
    pipeline = ValidationPipeline.from_crawler(crawler)
    with pytest.raises(DropItem, match=reason):
        pipeline.process_item(item)
    assert crawler.stats.get_value(f"item_dropped_reasons_count/{reason}") == 1


def test_dollar_and_dotted_keys_are_sanitised() -> None:
    crawler = get_crawler(Spider)
    item = TitleItem(imdb_id="tt0000001", title="X", series={"$where": 1, "a.b": {"$gt": 2}})
    ValidationPipeline.from_crawler(crawler).process_item(item)
    assert item.series == {"_where": 1, "_a_b": {"_gt": 2}}
    assert crawler.stats.get_value("item_sanitised_keys_count") == 3


def start_server(path: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.mongo", "--path", str(path), "--port", str(port)],
        cwd=PROJECT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("mongodb://")
    return process


def test_outage_spools_then_replays(tmp_path: Path) -> None:
    port = free_port()
    uri = f"mongodb://127.0.0.1:{port}/imdb?directConnection=true"
    server = start_server(tmp_path / "db.sqlite", port)
    pipeline = MongoPipeline.from_crawler(make_crawler(uri, tmp_path, MONGODB_BATCH_SIZE=1))
    items = [
        load_item(parse_page(read_page(page_file("legacy", f"{i}.html"))))
        for i in ("tt0133093", "tt0088247", "tt0245429")
    ]

    async def scenario() -> None:
        nonlocal server
        await pipeline.open_spider()
        await pipeline.process_item(items[0])
        server.terminate()
        server.wait()
        await pipeline.process_item(items[1])  # server down: spooled, crawl goes on
        assert pipeline.spool.pending() == {"titles": 1}
        server = start_server(tmp_path / "db.sqlite", port)
        await pipeline.process_item(items[2])  # back: written, and the spool replayed
        await pipeline.close_spider()
        await pipeline.spider_closed("finished")

    try:
        asyncio.run(scenario())
        assert pipeline.counts.spooled == 1 and pipeline.counts.replayed == 1
        assert not pipeline.spool.pending()
        assert sorted(db_of(uri).titles.distinct("_id")) == ["tt0088247", "tt0133093", "tt0245429"]
    finally:
        server.terminate()
        server.wait()


def test_crawl_survives_mongodb_restart(demo_site: Any, tmp_path: Path) -> None:
    """Kill the server mid-crawl, restart it: the stored set equals a clean crawl's, spool empty."""
    port = free_port()
    uri = f"mongodb://127.0.0.1:{port}/imdb?directConnection=true"
    server = start_server(tmp_path / "db.sqlite", port)
    command = [
        sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap", "-a", "depth=0",
        "-s", f"IMDB_BASE_URL={demo_site.base_url}", "-s", f"MONGODB_URI={uri}",
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0.25", "-s", "CONCURRENT_REQUESTS=1",
        "-s", "MONGODB_BATCH_SIZE=1", "-s", f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}",
        "-s", "MONGODB_SERVER_TIMEOUT_MS=500",
    ]  # fmt: skip
    crawl = subprocess.Popen(command, cwd=PROJECT, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
        server.terminate()
        server.wait()
        time.sleep(3)
        server = start_server(tmp_path / "db.sqlite", port)
        _, log = crawl.communicate(timeout=300)
    finally:
        crawl.kill()
    try:
        assert crawl.returncode == 0, log[-3000:]
        assert "spooling" in log and "MongoDB is back" in log
        db = db_of(uri)
        assert len(db.titles.distinct("_id")) == 25 and len(db.people.distinct("_id")) == 5
        assert not list((tmp_path / "spool").glob("*"))
    finally:
        server.terminate()
        server.wait()


@pytest.fixture(params=["memory", "sqlite"])
def any_engine_uri(request: Any, mongo_uri: str, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield mongo_uri
        return
    server = EmbeddedMongo(str(tmp_path / "mongo" / "db.sqlite"))
    yield server.start()
    server.stop()


def test_embedded_server_still_rejects_duplicate_ids(any_engine_uri: str) -> None:
    """The embedded server skips mongoeco's collection scans for string ids: same answers, same errors."""
    coll = db_of(any_engine_uri).dupes
    coll.insert_many([{"_id": "tt0000001"}, {"_id": 1}])
    with pytest.raises(BulkWriteError) as failed:
        coll.bulk_write([InsertOne({"_id": "tt0000002"}), InsertOne({"_id": "tt0000001"})], ordered=False)
    assert [e["code"] for e in failed.value.details["writeErrors"]] == [11000]
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 1.0})  # numeric ids equal in value: still checked by the scan
    assert coll.count_documents({}) == 3
    # `_id: {$in}` is answered from the id table (the writer's read of stored hashes).
    found = coll.find({"_id": {"$in": ["tt0000002", "tt9999999", "tt0000001", "tt0000002"]}})
    assert sorted(d["_id"] for d in found) == ["tt0000001", "tt0000002"]
    assert coll.count_documents({"_id": {"$in": ["tt0000001"]}, "x": 1}) == 0
