"""Validation pipeline: drop what MongoDB would refuse, with a named reason, before the writer sees it."""

from __future__ import annotations

import logging
import math
from typing import Any

import bson
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from crawler.storage.bulk import ENCODING_ERRORS
from crawler.storage.documents import to_document
from crawler.storage.schema import SCHEMAS, first_error
from crawler.storage.signals import finish_pages

logger = logging.getLogger(__name__)

# MongoDB's limit is 16 MiB; leave room for the metadata the writer adds.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024


def sanitise_keys(value: Any) -> tuple[Any, int]:
    """Copy of ``value`` where dict keys starting with ``$`` or holding dots are made storable.

    Returns the copy and how many keys were changed; with none to change, ``value`` itself (page data
    almost never has such keys, and copying every cast list of every item was most of the pipelines'
    own CPU).
    """
    if not _unstorable_keys(value):
        return value, 0
    return _sanitised(value)


def _unstorable_keys(value: Any) -> int:
    """How many keys of ``value`` (at any depth) MongoDB would refuse; scalars are not visited one by one."""
    if isinstance(value, dict):
        count = 0
        for key, inner in value.items():
            count += _bad_key(key if type(key) is str else str(key))
            if isinstance(inner, (dict, list)):
                count += _unstorable_keys(inner)
        return count
    if isinstance(value, list):
        return sum(_unstorable_keys(v) for v in value if isinstance(v, (dict, list)))
    return 0


def _bad_key(key: str) -> bool:
    return key.startswith("$") or "." in key


def _sanitised(value: Any) -> tuple[Any, int]:
    if isinstance(value, dict):
        clean, changed = {}, 0
        for key, inner in value.items():
            new_key = str(key)
            if _bad_key(new_key):
                new_key = "_" + new_key.lstrip("$").replace(".", "_")
                changed += 1
            clean[new_key], inner_changed = _sanitised(inner)
            changed += inner_changed
        return clean, changed
    if isinstance(value, list):
        items = [_sanitised(v) for v in value]
        return [v for v, _ in items], sum(c for _, c in items)
    return value, 0


def closes_keys(schema: dict[str, Any], top: bool = True) -> bool:
    """Whether ``schema`` refuses, below its top level, every key it does not name, and names only storable keys.

    Then a document it accepts, whose top-level keys are all named, holds no unstorable key at any depth.
    """
    if "anyOf" in schema:
        return all(closes_keys(option, top) for option in schema["anyOf"])
    if "enum" in schema:
        return True
    if "bsonType" not in schema:
        return False  # any value at all, objects with any keys among them
    types = schema["bsonType"] if isinstance(schema["bsonType"], list) else [schema["bsonType"]]
    if "object" in types:
        properties = schema.get("properties", {})
        if (not top and schema.get("additionalProperties") is not False) or any(_bad_key(k) for k in properties):
            return False
        if not all(closes_keys(inner, top=False) for inner in properties.values()):
            return False
    return "array" not in types or ("items" in schema and closes_keys(schema["items"], top=False))


# Per collection, the top-level names when the schema alone proves a valid document's keys storable: checking
# the schema first spares walking every cast list of every item for keys.
NAMED_KEYS = {name: frozenset(schema["properties"]) for name, schema in SCHEMAS.items() if closes_keys(schema)}


def problem(collection: str, document: dict[str, Any]) -> tuple[str, str] | None:
    """``(reason, detail)`` when MongoDB would refuse ``document`` or store a wrong value, else None."""
    error = first_error(collection, document)
    if error:
        return f"invalid_{error.split(':')[0].split('.')[0]}", error
    rating = document.get("rating")
    if isinstance(rating, float) and not math.isfinite(rating):
        return "invalid_rating", f"rating: {rating}"
    try:
        size = len(bson.encode(document))
    except ENCODING_ERRORS as exc:
        return "unencodable", str(exc)
    if size > MAX_DOCUMENT_BYTES:
        return "too_large", f"{size} bytes of BSON, over 16 MiB"
    return None


class ValidationPipeline:
    """Checks each item against the shared schema and MongoDB's limits.

    A dropped item's page is finished as ``dropped/<reason>``; the count is
    ``item_dropped_reasons_count/<reason>`` and each reason is logged once
    with an example id.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.logged_reasons: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidationPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        collection, document = to_document(item)
        found = problem(collection, document)
        named = NAMED_KEYS.get(collection)
        if found is None and named is not None and document.keys() <= named:
            return item  # valid, and so its keys are storable at every depth
        if self.sanitise(item):  # the document changed: judged again as it will be stored
            collection, document = to_document(item)
            found = problem(collection, document)
        if found:
            self.drop(found[0], document.get("_id"), found[1])
        return item

    def sanitise(self, item: Any) -> int:
        """Make the item's unstorable keys storable, in place; how many were changed."""
        adapter, total = ItemAdapter(item), 0
        for name in adapter.field_names():
            value, changed = sanitise_keys(adapter.get(name))
            if changed:
                adapter[name] = value
                total += changed
        if total:
            self.crawler.stats.inc_value("item_sanitised_keys_count", total)
        return total

    def drop(self, reason: str, example_id: Any, detail: str) -> None:
        self.crawler.stats.inc_value(f"item_dropped_reasons_count/{reason}")
        if reason not in self.logged_reasons:
            self.logged_reasons.add(reason)
            logger.warning("Dropping items: %s (%s), e.g. %s", reason, detail, example_id)
        finish_pages(self.crawler, [str(example_id or "")], f"dropped/{reason}")
        raise DropItem(reason, log_level="DEBUG")
