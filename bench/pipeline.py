"""Write cost of the pipelines vs a bare pymongo ``bulk_write``, side by side.

    python bench/pipeline.py [-n 2000] [--rounds 2]

Both write the same N real-sized title documents (fixture pages with rewritten
ids) to the same embedded server (mongoeco, memory engine), each into a fresh
database with the same validators and indexes: the baseline as unordered
batches of ``UpdateOne(..., upsert=True)``,
ours through ``ValidationPipeline`` and ``MongoPipeline`` (validation, dedupe,
content hash, change detection, metadata, indexes and validators in place).
Prints both times and ends with one JSON line with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymongo import UpdateOne
from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler

import crawler.settings as project_settings
from crawler.embedded_mongo import EmbeddedMongo
from crawler.parsing.items import TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.runtime.spiders.imdb import ImdbSpider
from crawler.storage.connection import connect, ensure_schema
from crawler.storage.documents import to_document
from crawler.storage.validate import ValidationPipeline
from crawler.storage.writer import MongoPipeline

FIXTURES = Path(__file__).resolve().parent.parent / "imdb_pages"
BATCH = 100


def make_items(count: int) -> list[Any]:
    templates = [load_item(parse_page(p.read_text(encoding="utf-8-sig"))) for p in sorted(FIXTURES.glob("*/tt*.html"))]
    templates = [t for t in templates if isinstance(t, TitleItem) and t.title]
    return [dataclasses.replace(templates[i % len(templates)], imdb_id=f"tt{9_000_000 + i}") for i in range(count)]


def uri_for(base: str) -> str:
    return base.replace("/imdb?", f"/bench_{uuid.uuid4().hex[:8]}?")


def prepared_collection(uri: str) -> None:
    """The same validators and indexes the pipeline creates, so both pay the same server work."""
    client = connect(uri)
    ensure_schema(client.get_default_database(), project_settings.CHANGES_TTL)
    client.close()


def raw(base_uri: str, items: list[Any]) -> float:
    uri = uri_for(base_uri)
    prepared_collection(uri)
    client = connect(uri)
    coll = client.get_default_database().titles
    docs = [to_document(item)[1] for item in items]
    start = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        ops = [UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in docs[i : i + BATCH]]
        coll.bulk_write(ops, ordered=False)
    elapsed = time.perf_counter() - start
    assert coll.count_documents({}) == len(items)
    client.drop_database(coll.database.name)
    client.close()
    return elapsed


def ours(base_uri: str, items: list[Any]) -> float:
    uri = uri_for(base_uri)
    with tempfile.TemporaryDirectory() as spool:
        settings = {name: getattr(project_settings, name) for name in dir(project_settings) if name.isupper()}
        settings.update(MONGODB_URI=uri, MONGODB_BATCH_SIZE=BATCH, MONGODB_SPOOL_DIR=spool, LOG_LEVEL="ERROR")
        crawler = get_crawler(ImdbSpider, settings)
        validation = ValidationPipeline.from_crawler(crawler)
        writer = MongoPipeline.from_crawler(crawler)

        async def run() -> float:
            await writer.open_spider()  # connect, indexes, validators: not timed, once per crawl
            start = time.perf_counter()
            for item in items:
                await writer.process_item(validation.process_item(item))
            await writer.close_spider()
            elapsed = time.perf_counter() - start
            writer.store.close()
            return elapsed

        elapsed = asyncio.run(run())
    client = connect(uri)
    assert client.get_default_database().titles.count_documents({}) == len(items)
    client.drop_database(client.get_default_database().name)
    client.close()
    return elapsed


def main() -> int:
    # The reactor the project asks for, installed before anything imports Twisted's default one: every
    # round builds a crawler, and Scrapy refuses one whose reactor differs from the installed reactor.
    install_reactor(project_settings.TWISTED_REACTOR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    items = make_items(args.n)
    with EmbeddedMongo(None, memory=True) as server:
        assert server.uri
        best = {"raw": float("inf"), "ours": float("inf")}
        for _ in range(args.rounds):
            best["raw"] = min(best["raw"], raw(server.uri, items))
            best["ours"] = min(best["ours"], ours(server.uri, items))
    for name, seconds in best.items():
        print(f"  {name:<5} {seconds:7.2f} s  {args.n / seconds:8.0f} docs/s")
    print(json.dumps({"pipeline_time_vs_raw_pymongo": round(best["ours"] / best["raw"], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
