"""Requests as JSON, for every queue that leaves the process (JOBDIR on disk, the shared queue in Redis).

Scrapy's and scrapy-redis's defaults pickle requests, and unpickling runs
whatever code the data names: anyone who can write to the queue (a shared
Redis, a JOBDIR folder) could run code on every worker. JSON can only ever
become strings, numbers, lists and dicts. Bytes (bodies, headers) are tagged
``{"$bytes": base64}``; dicts with non-string keys (headers) are tagged
``{"$items": [[key, value], …]}``.

``dumps``/``loads`` are module functions so that this module can be scrapy-redis's
``SCHEDULER_SERIALIZER``; ``JsonFifoDiskQueue`` is a ``SCHEDULER_DISK_QUEUE``.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Self

from queuelib import queue
from scrapy.http import Request
from scrapy.utils.request import request_from_dict


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: _encode(inner) for key, inner in value.items()}
        return {"$items": [[_encode(key), _encode(inner)] for key, inner in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(inner) for inner in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError(f"cannot queue a {type(value).__name__} outside the process (only JSON-like values)")


def _decode(value: dict[str, Any]) -> Any:
    if len(value) == 1:
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
        if "$items" in value:
            return {_freeze(key): inner for key, inner in value["$items"]}
    return value


def _freeze(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def dumps(obj: Any) -> bytes:
    """JSON bytes for a request dict (``Request.to_dict()``); ValueError when a value is not JSON-like."""
    return json.dumps(_encode(obj), separators=(",", ":"), allow_nan=False).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """The value ``dumps`` wrote; ValueError for anything that is not such JSON."""
    return json.loads(data, object_hook=_decode)


class JsonFifoDiskQueue(queue.FifoDiskQueue):
    """``SCHEDULER_DISK_QUEUE``: Scrapy's FIFO disk queue with JSON entries instead of pickles."""

    def __init__(self, crawler: Any, key: str) -> None:
        self.spider = crawler.spider
        super().__init__(key)

    @classmethod
    def from_crawler(cls, crawler: Any, key: str, *args: Any, **kwargs: Any) -> Self:
        return cls(crawler, key)

    def push(self, request: Request) -> None:  # type: ignore[override]
        super().push(dumps(request.to_dict(spider=self.spider)))

    def pop(self) -> Request | None:  # type: ignore[override]
        data = super().pop()
        return request_from_dict(loads(data), spider=self.spider) if data else None

    def peek(self) -> Request | None:  # type: ignore[override]
        data = super().peek()
        return request_from_dict(loads(data), spider=self.spider) if data else None
