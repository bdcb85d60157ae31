"""The writer and the validation pipeline against a real MongoDB wire server: nothing lost, nothing silent."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from itemadapter import ItemAdapter
from pymongo import InsertOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError
from scrapy import signals
from scrapy.exceptions import DropItem

import crawler.settings as project_settings
from crawler.embedded_mongo import EmbeddedMongo
from crawler.parsing.items import PersonItem, TitleItem
from crawler.runtime.frontier import Frontier, LocalLedger
from crawler.runtime.judging import summarize
from crawler.storage.bulk import BulkWriter
from crawler.storage.connection import INDEXES, MongoStore, ensure_schema
from crawler.storage.documents import content_hash, to_document
from crawler.storage.signals import page_finished
from crawler.storage.validate import ValidationPipeline
from crawler.storage.writer import MongoPipeline
from tests.conftest import FIXTURES, aio, db_of, extract, make_crawler, matrix


def writer_for(uri: str, tmp_path: Path, **settings: Any) -> tuple[MongoPipeline, Counter[str]]:
    """A writer on its own crawler, and the outcomes it announces (``page_finished``), counted."""
    settings = {"MONGODB_BATCH_SIZE": 10, **settings}
    crawler = make_crawler(MONGODB_URI=uri, MONGODB_SPOOL_DIR=str(tmp_path / "spool"), **settings)
    announced: Counter[str] = Counter()

    def count(page_ids: list[str], outcome: str) -> None:
        announced.update({outcome: len(page_ids)})

    crawler.signals.connect(count, signal=page_finished, weak=False)
    return MongoPipeline.from_crawler(crawler), announced


async def write(pipeline: MongoPipeline, items: list[Any]) -> None:
    await aio(pipeline.open_spider())
    for item in items:
        await aio(pipeline.process_item(item))
    await aio(pipeline.close_spider())
    pipeline.store.close()


@pytest_twisted.ensureDeferred
async def test_same_item_many_times_gives_one_document_and_the_richest_copy(mongo_uri: str, tmp_path: Path):
    full = matrix()
    poorer = dataclasses.replace(full, cast=[], recommendations=[], keywords=[])
    pipeline, announced = writer_for(mongo_uri, tmp_path)
    await write(pipeline, [full, full, poorer, full, full])
    db = db_of(mongo_uri)
    assert db.titles.count_documents({}) == 1 and len(db.titles.find_one({"_id": "tt0133093"})["cast"]) == 18
    assert announced == {"new": 1} and pipeline.crawler.stats.get_value("mongodb/duplicate_in_batch") == 4


@pytest_twisted.ensureDeferred
async def test_a_partial_batch_is_written_as_soon_as_the_crawl_is_idle(mongo_uri: str, tmp_path: Path):
    """Nothing fetched or parsed (spider_idle): the batch waits for no flush interval, its pages are finished."""
    pipeline, announced = writer_for(mongo_uri, tmp_path, MONGODB_FLUSH_SECONDS=3600)
    await aio(pipeline.open_spider())
    await aio(pipeline.process_item(matrix()))
    assert announced == {} and db_of(mongo_uri).titles.count_documents({}) == 0  # in the batch
    pipeline.crawler.signals.send_catch_log(signal=signals.spider_idle)
    assert pipeline.idle_flush is not None
    await aio(pipeline.idle_flush)
    assert announced == {"new": 1} and db_of(mongo_uri).titles.count_documents({}) == 1
    await aio(pipeline.close_spider())
    pipeline.store.close()


@pytest_twisted.ensureDeferred
async def test_repeats_in_later_batches_are_judged_against_the_stored_document(mongo_uri: str, tmp_path: Path):
    full = matrix()
    poorer = dataclasses.replace(full, cast=[], recommendations=[], keywords=[])
    other = dataclasses.replace(full, imdb_id="tt0000001")
    pipeline, announced = writer_for(mongo_uri, tmp_path, MONGODB_BATCH_SIZE=1)
    frontier = Frontier(pipeline.crawler, LocalLedger(None))  # counts each page's outcome (pages/<outcome>)
    await write(pipeline, [poorer, other, full, poorer, full])
    doc = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert len(doc["cast"]) == 18 and doc["richness"] > 0  # the richer copy replaced the poorer, never the reverse
    assert announced == {"new": 2, "changed": 1, "duplicate": 2}
    summary = summarize(pipeline.crawler.stats.get_stats(), {}, Counter())
    assert summary["stored_items"] == 5 and summary["items"]["duplicates"] == 2  # each repeat counted once
    assert frontier.stats.get_value("pages/duplicate") == 2


@pytest_twisted.ensureDeferred
async def test_second_identical_run_rewrites_nothing(mongo_uri: str, tmp_path: Path):
    await write(writer_for(mongo_uri, tmp_path)[0], [matrix()])
    first = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    again, announced = writer_for(mongo_uri, tmp_path)
    await write(again, [matrix()])
    second = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert announced == {"unchanged": 1}
    assert second["last_changed"] == first["last_changed"] and second["last_seen"] > first["last_seen"]
    assert second["first_seen"] == first["first_seen"] and second["crawl_run_id"] != first["crawl_run_id"]
    changed, announced = writer_for(mongo_uri, tmp_path)
    await write(changed, [dataclasses.replace(matrix(), votes=2_000_000)])
    third = db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})
    assert announced == {"changed": 1} and third["votes"] == 2_000_000 and third["last_changed"] > first["last_changed"]


@pytest_twisted.ensureDeferred
async def test_one_document_mongodb_cannot_encode_costs_only_itself(mongo_uri: str, tmp_path: Path):
    """Items that skipped validation (or a server stricter than it): the rest of the batch is written."""
    items = [dataclasses.replace(matrix(), imdb_id=f"tt{n:07d}") for n in range(1, 25)]
    items[3] = dataclasses.replace(items[3], popularity_rank=2**70)  # OverflowError in the BSON encoder
    items[7] = dataclasses.replace(items[7], awards_summary={"wins\x00": 1})  # a NUL in a key: InvalidDocument
    pipeline, announced = writer_for(mongo_uri, tmp_path)
    await write(pipeline, items)
    assert announced == {"new": 22, "write_failed/unencodable": 2}
    assert db_of(mongo_uri).titles.count_documents({}) == 22 and not pipeline.spool.files()


@pytest_twisted.ensureDeferred
async def test_server_side_refusal_is_reported_per_item_not_retried(mongo_uri: str, tmp_path: Path):
    bad = TitleItem(imdb_id="tt0000001", title=None)  # skips ValidationPipeline on purpose
    pipeline, announced = writer_for(mongo_uri, tmp_path)
    await write(pipeline, [bad, matrix()])
    assert announced == {"new": 1, "write_failed/validation_failed": 1} and not pipeline.spool.files()


@pytest_twisted.ensureDeferred
async def test_insert_racing_another_worker_becomes_an_update(mongo_uri: str, tmp_path: Path, monkeypatch):
    await write(writer_for(mongo_uri, tmp_path)[0], [matrix()])
    pipeline, announced = writer_for(mongo_uri, tmp_path)
    monkeypatch.setattr(BulkWriter, "stored_versions", staticmethod(lambda coll, ids: {}))  # our read misses it
    await write(pipeline, [dataclasses.replace(matrix(), votes=42)])
    assert announced == {"changed": 1} and db_of(mongo_uri).titles.find_one({"_id": "tt0133093"})["votes"] == 42


def test_indexes_and_validators_exist_and_setting_up_again_is_safe(mongo_uri: str) -> None:
    db = db_of(mongo_uri)
    for _ in range(2):
        ensure_schema(db, project_settings.CHANGES_TTL)
    for name, indexes in INDEXES.items():
        found = list(db[name].list_indexes())
        keys = [list(index["key"].items()) for index in found]
        # A text index, as MongoDB lists it: {"_fts": "text", "_ftsx": 1} and its fields as weights.
        text_fields = [set(index.get("weights", {})) for index in found if "_fts" in index["key"]]
        for wanted in indexes:
            fields = {field for field, kind in wanted if kind == "text"}
            assert [(k, v) for k, v in wanted] in keys or (fields and fields in text_fields), (name, wanted, keys)
    for name in ("titles", "people"):
        options = db.command("listCollections", filter={"name": name})["cursor"]["firstBatch"][0]["options"]
        assert "$jsonSchema" in options["validator"]


def test_workers_racing_to_create_the_collections(mongo_uri: str) -> None:
    """Another worker creates the collections between our listing and our create: not an error."""
    db = db_of(mongo_uri)
    ensure_schema(db, project_settings.CHANGES_TTL)
    real = db.list_collection_names
    calls: list[int] = []

    def list_collection_names() -> list[str]:
        calls.append(1)
        return [] if len(calls) == 1 else real()  # the first listing misses the other worker's

    def create_collection(name: str, **options: Any) -> None:
        raise OperationFailure(f"collection '{name}' already exists", code=48)  # NamespaceExists

    db.list_collection_names, db.create_collection = list_collection_names, create_collection
    ensure_schema(db, project_settings.CHANGES_TTL)
    assert {"titles", "people"} <= set(real())


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (TitleItem(imdb_id="tt0000001"), "invalid_title"),
        (TitleItem(imdb_id="tt0000001", title="X", rating=11.0), "invalid_rating"),
        (TitleItem(imdb_id="tt0000001", title="X", rating=float("nan")), "invalid_rating"),
        (TitleItem(imdb_id="tt0000001", title="X", popularity_rank=2**70), "invalid_popularity_rank"),
        (TitleItem(imdb_id="tt0000001", title="X", awards_summary={"wins": "many"}), "invalid_awards_summary"),
        (TitleItem(imdb_id="tt0000001", title="X", series={"series_id": "tt1", "seasons": 2}), "invalid_series"),
        (PersonItem(imdb_id="nm0000001"), "invalid_name"),
        (TitleItem(imdb_id="tt0000001", title="X", plot="x" * (17 * 1024 * 1024)), "too_large"),
    ],
)
def test_validation_drops_with_a_named_reason_and_finishes_the_page(item: Any, reason: str) -> None:
    crawler = make_crawler()
    announced: list[tuple[list[str], str]] = []
    crawler.signals.connect(lambda page_ids, outcome: announced.append((page_ids, outcome)), page_finished, weak=False)
    with pytest.raises(DropItem, match=reason):
        ValidationPipeline.from_crawler(crawler).process_item(item)
    assert crawler.stats.get_value(f"item_dropped_reasons_count/{reason}") == 1
    assert announced == [([item.imdb_id], f"dropped/{reason}")]


def test_a_document_holds_the_item_fields_and_nothing_else() -> None:
    item = TitleItem(imdb_id="tt0000001", title="X", genres=["Drama"])
    collection, document = to_document(item)
    assert collection == "titles" and document == {"_id": "tt0000001", **ItemAdapter(item).asdict()}
    assert list(document) == ["_id", *ItemAdapter(item).field_names()]
    item.scratch = "not a field"  # type: ignore[attr-defined]
    del item.genres
    assert "scratch" not in to_document(item)[1] and "genres" not in to_document(item)[1]
    document["title"] = "Y"
    assert item.title == "X"


def test_dollar_and_dotted_keys_are_sanitised() -> None:
    crawler = make_crawler()
    item = TitleItem(imdb_id="tt0000001", title="X", companies=[{"id": None, "name": "A"}])
    item.companies[0]["$where"] = 1
    with pytest.raises(DropItem, match="invalid_companies"):  # closed objects: a stray key is refused, sanitised
        ValidationPipeline.from_crawler(crawler).process_item(item)
    assert item.companies == [{"id": None, "name": "A", "_where": 1}]
    assert crawler.stats.get_value("item_sanitised_keys_count") == 1


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
    found = coll.find({"_id": {"$in": ["tt0000002", "tt9999999", "tt0000001", "tt0000002"]}})
    assert sorted(d["_id"] for d in found) == ["tt0000001", "tt0000002"]
    assert coll.count_documents({"_id": {"$in": ["tt0000001"]}, "x": 1}) == 0


def test_embedded_server_checks_every_document_against_the_validator_in_force(any_engine_uri: str) -> None:
    """Validators are compiled once per collection options, not per document: each write is still checked, and a
    collection made again with another validator is checked against the new one."""
    db = db_of(any_engine_uri)
    db.create_collection("checked", validator={"$jsonSchema": {"bsonType": "object", "required": ["title"]}})
    coll = db.checked
    coll.insert_one({"_id": "tt0000001", "title": "A"})
    for _ in range(2):  # the second time from the compiled validator
        with pytest.raises(WriteError) as refused:
            coll.insert_one({"_id": "tt0000002", "year": 1999})
        assert refused.value.code == 121
    coll.drop()  # mongoeco has no collMod: the same collection, made again with another validator
    db.create_collection("checked", validator={"$jsonSchema": {"bsonType": "object", "required": ["year"]}})
    coll.insert_many([{"_id": "tt0000001", "year": 1999}, {"_id": "tt0000002", "year": 1999}])
    with pytest.raises(WriteError):
        coll.insert_one({"_id": "tt0000003", "title": "B"})
    with pytest.raises(WriteError):
        coll.update_one({"_id": "tt0000002"}, {"$unset": {"year": ""}})
    assert sorted(d["_id"] for d in coll.find()) == ["tt0000001", "tt0000002"]


def test_store_says_in_one_line_why_mongodb_cannot_be_used(tmp_path: Path) -> None:
    crawler = make_crawler(MONGODB_URI="mongodb://user:secret@127.0.0.1:9/imdb", MONGODB_SERVER_TIMEOUT_MS=200)
    store = MongoStore.for_crawler(crawler)
    with pytest.raises(Exception, match=r"MongoDB at mongodb://\*\*\*@127.0.0.1:9/imdb is unreachable") as refused:
        store.open()
    assert "secret" not in str(refused.value) and "\n" not in str(refused.value)


def test_content_hashes_are_the_ones_stored_before() -> None:
    """The hash of json.dumps(sort_keys) as always (stored hashes stay comparable), however it is computed."""

    def as_before(document: dict[str, Any]) -> str:
        data = {key: value for key, value in document.items() if key != "fetched_via"}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    documents = [{"_id": page["imdb_id"], **page} for page in map(extract, sorted(FIXTURES.glob("*/*.html")))]
    rnd = random.Random(11)
    for _ in range(20_000):
        number = rnd.choice([rnd.uniform(-1, 1) * 10 ** rnd.randint(-8, 20), round(rnd.uniform(1, 10), 1)])
        text = "".join(rnd.choice('a "\\\n\x01é\u2028😀:,[0e') for _ in range(rnd.randint(0, 8)))
        seen = datetime(2026, 11, 27, tzinfo=UTC)
        big = 2**70 if rnd.random() < 0.01 else 1
        documents.append({"_id": "tt0000001", "rating": number, "title": text, "cast": [{"n": [text, number]}],
                          "big": big, "seen": seen})  # fmt: skip
    assert [content_hash(d) for d in documents] == [as_before(d) for d in documents]
