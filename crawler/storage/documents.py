"""Items as stored documents: the document, its content hash, its richness, and the one rule for repeats."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from typing import Any

import orjson
from itemadapter import ItemAdapter

from crawler.parsing.items import collection_for


def to_document(item: Any) -> tuple[str, dict[str, Any]]:
    """``(collection, document)`` for an item: its fields with ``_id`` = the IMDb id."""
    # A shallow copy: the writer never mutates nested values, and a deep copy
    # of every cast list is the costliest step of a write.
    data = _fields(item)
    return collection_for(item), {"_id": data.get("imdb_id"), **data}


@functools.cache
def _field_names(kind: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(kind))


def _fields(item: Any) -> dict[str, Any]:
    """The item's fields: a dataclass item's own attributes when they are exactly its fields (~40× faster
    than through ItemAdapter, which the writer and the validation pipeline would pay on every item), else
    ItemAdapter's view of any item type."""
    attributes = getattr(item, "__dict__", None)
    if attributes is not None and dataclasses.is_dataclass(item) and attributes.keys() == _field_names(item.__class__):
        return dict(attributes)
    return dict(ItemAdapter(item).items())


# Fields that say how a page was fetched, not what it says: a page fetched another way is unchanged.
NOT_CONTENT = frozenset({"fetched_via"})


# Numbers orjson writes otherwise than Python's repr (1e-07 / 1e-7, 2.5e-05 / 0.000025, 1e+16 / 1e16). A
# string that happens to look like one only sends the document the slower way.
_OTHER_NUMBERS = re.compile(rb"[:,\[]-?(?:0\.0000|\d+(?:\.\d+)?[eE])")


def content_hash(document: dict[str, Any]) -> str:
    """A stable hash of a document's data (key order does not matter; ``NOT_CONTENT`` left out).

    The hash of ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    default=str)``, as stored hashes have always been: orjson writes the same bytes ~10× faster,
    except for numbers in exponent ranges, where (and for what orjson refuses) json writes them.
    """
    data = {key: value for key, value in document.items() if key not in NOT_CONTENT}
    try:
        payload = orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME, default=str)
    except TypeError:  # integers beyond 64 bits, keys that are not text
        payload = b""
    if not payload or _OTHER_NUMBERS.search(payload):
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        payload = text.encode("utf-8")
    return hashlib.sha1(payload).hexdigest()


def has_value(value: Any) -> bool:
    """A field that carries data (not None, empty text, empty list or empty object)."""
    return value not in (None, "", [], {})


def richness(document: dict[str, Any]) -> int:
    """How many fields carry data: a later, poorer copy of a page must not replace a richer one."""
    return sum(1 for key, value in document.items() if key not in NOT_CONTENT and has_value(value))


def supersedes(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether ``new`` should replace ``old``, an earlier copy of the same page from the same run.

    Only a copy that differs and is at least as rich does: the same page twice
    is a repeat, and a poorer copy (a page cut short, a fallback layout) never
    replaces a richer one. Both carry ``content_hash`` and ``richness``.
    """
    return new["content_hash"] != old.get("content_hash") and new["richness"] >= (old.get("richness") or 0)
