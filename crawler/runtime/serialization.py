"""Requests as JSON, for every queue that leaves the process (JOBDIR on disk, the shared queue in Redis).

Scrapy's and scrapy-redis's defaults pickle requests, and unpickling runs
whatever code the data names: anyone who can write to the queue (a shared
Redis, a JOBDIR folder) could run code on every worker. JSON can only ever
become strings, numbers, lists and dicts. Bytes (bodies, headers) are tagged
``{"$bytes": base64}``; dicts with non-string keys (headers) are tagged
``{"$items": [[key, value], …]}``.

Reading an entry back is ``request_from_entry``, never Scrapy's
``request_from_dict``: that one imports whatever class an entry's ``_class``
names and looks up any attribute of the spider an entry names as its callback.
Ours builds a plain ``Request`` and only with what the project itself writes: a
URL on the crawled site, a callback the spider declares (``queued_callbacks``),
meta without the browser's hooks (``playwright_page_init_callback`` would be
imported and run). Anything else is refused with ``ValueError``.

``JsonFifoDiskQueue`` is a ``SCHEDULER_DISK_QUEUE``; the shared queue of a
distributed run (``crawler.runtime.distributed.queue``) uses the same functions.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Self

from queuelib import queue
from scrapy.http import Request

# The attributes of Request that an entry may carry (``Request.to_dict`` writes these and the callbacks).
_FIELDS = frozenset(Request.attributes) | {"callback", "errback"}
# Meta a queued request never carries: set at download time from settings, and able to run or write things.
_HOOKS = "playwright_"


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


def entry_of(request: Request, spider: Any) -> bytes:
    """The JSON entry of ``request``; ValueError for one that must stay in memory (browser meta, objects)."""
    if any(key.startswith(_HOOKS) for key in request.meta):
        raise ValueError("a request on its way to the browser stays in memory")
    return dumps(request.to_dict(spider=spider))


def request_from_entry(data: bytes | str, spider: Any, base_url: str | None = None) -> Request:
    """The request a queue entry holds; ValueError when it is not one the project wrote.

    ``base_url``, when given, is the only site an entry may point at.
    """
    entry = loads(data)
    if not isinstance(entry, dict):
        raise ValueError(f"not a request (a JSON {type(entry).__name__})")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"not a request of this project (fields {', '.join(sorted(map(str, unknown))[:5])})")
    url = entry.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError("not a request (no URL)")
    if base_url is not None and not (url == base_url or url.startswith(base_url.rstrip("/") + "/")):
        raise ValueError(f"a URL off the crawled site ({url[:80]!r})")
    meta = entry.get("meta") or {}
    if not isinstance(meta, dict) or any(not isinstance(k, str) or k.startswith(_HOOKS) for k in meta):
        raise ValueError("meta this project never queues")
    allowed: frozenset[str] = getattr(spider, "queued_callbacks", frozenset())
    kwargs = {key: value for key, value in entry.items() if key in Request.attributes}
    for name in ("callback", "errback"):
        if entry.get(name) is not None:
            if entry[name] not in allowed:
                raise ValueError(f"{name} {str(entry[name])[:40]!r} is not one of the spider's")
            kwargs[name] = getattr(spider, entry[name])
    try:
        return Request(**kwargs)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a request ({exc})") from None


class JsonFifoDiskQueue(queue.FifoDiskQueue):
    """``SCHEDULER_DISK_QUEUE``: Scrapy's FIFO disk queue with JSON entries instead of pickles."""

    def __init__(self, crawler: Any, key: str) -> None:
        self.spider = crawler.spider
        super().__init__(key)

    @classmethod
    def from_crawler(cls, crawler: Any, key: str, *args: Any, **kwargs: Any) -> Self:
        return cls(crawler, key)

    def push(self, request: Request) -> None:  # type: ignore[override]
        entry = entry_of(request, self.spider)
        try:
            super().push(entry)
        except OSError as exc:  # a full disk: Scrapy keeps the request in memory (ValueError), the journal stops
            raise ValueError(f"the disk queue cannot take it ({exc.strerror or exc})") from None

    def pop(self) -> Request | None:  # type: ignore[override]
        data = super().pop()
        return request_from_entry(data, self.spider) if data else None

    def peek(self) -> Request | None:  # type: ignore[override]
        data = super().peek()
        return request_from_entry(data, self.spider) if data else None
