"""The pipelines' own CPU per item against the parse CPU per item, side by side.

    python bench/pipeline_cpu.py [--rounds 20]

On the 41 fixture pages: **parse**, ``load_item(parse_page(html))``, vs
**pipelines**, what the item pipelines do per item before the server sees
anything: ``ValidationPipeline`` (key sanitising, schema validation, BSON size),
the writer's document (``to_document``, content hash, richness, the in-run
repeat rule) and the bulk operations built by ``BulkWriter`` against a stub
collection that answers at once (the server is excluded: a real MongoDB takes
tens of thousands of writes a second, the embedded stand-in ~150). CPU time of
this process (``time.process_time``), rounds interleaved. Ends with one JSON
line: ``pipeline_cpu_vs_parse_cpu`` (all 41 pages, two thirds legacy) and
``pipeline_cpu_vs_parse_cpu_current_layout`` (the 15 current-layout pages, the
layout IMDb serves today, whose parsing is ~5× cheaper).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler

from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.runtime.spiders.imdb import ImdbSpider
from crawler.storage.bulk import BulkWriter, Pending, Tally, by_collection
from crawler.storage.documents import content_hash, richness, supersedes, to_document
from crawler.storage.validate import ValidationPipeline

FIXTURES = Path(__file__).resolve().parent.parent / "imdb_pages"


class StubCollection:
    """Answers at once: no document is stored yet, every write is acknowledged."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def bulk_write(self, operations: list[Any], ordered: bool = True) -> None:
        return None


class StubDatabase:
    def __getitem__(self, name: str) -> StubCollection:
        return StubCollection(name)


def parse_all(htmls: list[str]) -> tuple[float, list[Any]]:
    started = time.process_time()
    items = [load_item(parse_page(html)) for html in htmls]
    return time.process_time() - started, items


def pipelines(items: list[Any], validation: ValidationPipeline, writer: BulkWriter) -> float:
    started = time.process_time()
    buffer: dict[str, Pending] = {}
    now = datetime.now(UTC)
    for item in items:
        validation.process_item(item)
        collection, document = to_document(item)
        document["content_hash"] = content_hash(document)
        document["richness"] = richness(document)
        held = buffer.get(document["_id"])
        if held is None or supersedes(document, held.document):
            buffer[document["_id"]] = Pending(collection, document, now, "bench")
    tally = Tally()
    for collection, pendings in by_collection(list(buffer.values())).items():
        writer.write(collection, pendings, tally)
    assert sum(len(ids) for ids in tally.outcomes.values()) == len(buffer)
    return time.process_time() - started


def measure(htmls: list[str], rounds: int, validation: ValidationPipeline, writer: BulkWriter) -> tuple[float, float]:
    """Median CPU seconds per item of parsing and of the pipelines."""
    parse_times, pipeline_times = [], []
    for _ in range(rounds):
        seconds, items = parse_all(htmls)
        parse_times.append(seconds)
        pipeline_times.append(pipelines(items, validation, writer))
    return statistics.median(parse_times) / len(htmls), statistics.median(pipeline_times) / len(htmls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    crawler = get_crawler(ImdbSpider)
    validation = ValidationPipeline(crawler)
    writer = BulkWriter(StubDatabase(), keep=lambda pendings, tally: None, log_changes=False)
    result = {}
    for name, pattern in (("all 41 fixture pages", "*/*.html"), ("current-layout pages", "current/*.html")):
        htmls = [path.read_text(encoding="utf-8-sig") for path in sorted(FIXTURES.glob(pattern))]
        parse, pipeline = measure(htmls, args.rounds, validation, writer)
        print(f"{name}: parse {parse * 1e3:.2f} ms CPU an item, pipelines {pipeline * 1e3:.3f} ms CPU an item")
        result[name] = round(pipeline / parse, 3)
    print(json.dumps({"pipeline_cpu_vs_parse_cpu": result["all 41 fixture pages"],
                      "pipeline_cpu_vs_parse_cpu_current_layout": result["current-layout pages"]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
