"""Validation pipeline: drop what MongoDB would refuse, with a named reason."""

from __future__ import annotations

import logging
from typing import Any

import bson
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from crawler.storage.documents import to_document
from crawler.storage.schema import first_error

logger = logging.getLogger(__name__)

# MongoDB's limit is 16 MiB; leave room for the metadata the writer adds.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024


def sanitise_keys(value: Any) -> tuple[Any, int]:
    """Copy of ``value`` where dict keys starting with ``$`` or holding dots are made storable.

    Returns the copy and how many keys were changed.
    """
    if isinstance(value, dict):
        clean, changed = {}, 0
        for key, inner in value.items():
            new_key = str(key)
            if new_key.startswith("$") or "." in new_key:
                new_key = "_" + new_key.lstrip("$").replace(".", "_")
                changed += 1
            clean[new_key], inner_changed = sanitise_keys(inner)
            changed += inner_changed
        return clean, changed
    if isinstance(value, list):
        items = [sanitise_keys(v) for v in value]
        return [v for v, _ in items], sum(c for _, c in items)
    return value, 0


class ValidationPipeline:
    """Checks each item against the shared schema and MongoDB's limits.

    Dropped items are counted as ``item_dropped_reasons_count/<reason>`` and
    each reason is logged once with an example id.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.logged_reasons: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidationPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        for name in adapter.field_names():
            value, changed = sanitise_keys(adapter.get(name))
            if changed:
                adapter[name] = value
                self.crawler.stats.inc_value("item_sanitised_keys_count", changed)
        collection, document = to_document(item)
        reason = None
        error = first_error(collection, document)
        if error:
            reason = f"invalid_{error.split(':')[0].split('.')[0]}"
        elif len(repr(document)) > MAX_DOCUMENT_BYTES // 8 and len(bson.encode(document)) > MAX_DOCUMENT_BYTES:
            # BSON is at most a few times larger than repr(); encode only documents that could be too big.
            reason = "too_large"
        if reason:
            self.drop(reason, document.get("_id"), error or "document over 16 MiB")
        return item

    def drop(self, reason: str, example_id: Any, detail: str) -> None:
        self.crawler.stats.inc_value(f"item_dropped_reasons_count/{reason}")
        if reason not in self.logged_reasons:
            self.logged_reasons.add(reason)
            logger.warning("Dropping items: %s (%s), e.g. %s", reason, detail, example_id)
        raise DropItem(reason, log_level="DEBUG")
