"""MongoDB connection helpers and the embedded MongoDB-compatible server.

Everything in the project talks to MongoDB through ``MONGODB_URI`` with
pymongo (``crawler.storage.connection``). When no URI is configured, ``EmbeddedMongo`` runs mongoeco's
wire-protocol server (SQLite engine, files under ``var/mongo/``) on a free
local port so the same pymongo code has a real server to talk to.

``python -m crawler.embedded_mongo [--path FILE] [--port N] [--memory]`` runs that
server in the foreground and prints its URI on the first line.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

DEFAULT_DB = "imdb"
DEFAULT_PATH = "var/mongo/imdb.sqlite"


def _has_string_id(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("_id"), str)


def _string_ids_in(plan: Any) -> tuple[str, ...]:
    """The ids of an ``{"_id": {"$in": [...]}}`` query plan when all are strings (repeats dropped), else ()."""
    from mongoeco.core.query_plan import InCondition

    if not (isinstance(plan, InCondition) and plan.field == "_id"):
        return ()
    ids = [value for value in plan.values if isinstance(value, str)]
    return tuple(dict.fromkeys(ids)) if len(ids) == len(plan.values) else ()


def _memory_engine() -> Any:
    """mongoeco's memory engine, without its whole-collection scan on every insert.

    Two of mongoeco 4.11's code paths scan the whole collection where MongoDB
    uses its ``_id`` index, which makes a long crawl O(n²) on this stand-in:

    * each inserted document's ``_id`` is compared with every stored one (for
      numeric ids, where ``1`` and ``1.0`` collide), and its ``insert`` command
      inserts one document at a time — measured here, 590 inserts/s at 1 000
      documents, 32/s at 12 000. String ids' duplicates are already found by
      its id table (still error 11000), so the scan is skipped for them;
    * a query on ``_id`` reads every document when the id is not stored
      (an upsert that inserts) and for ``{"_id": {"$in": [...]}}`` (the
      writer's read of stored hashes): 1 700 ids/s at 2 000 documents, 190/s
      at 20 000. String ids are looked up in the id table instead; the full
      filter is still applied to what is found.

    Only this embedded server is affected: the crawler's queries are the same
    on a real MongoDB, which answers both from its unique ``_id`` index.
    """
    from mongoeco.engines.memory import MemoryEngine

    class StringIdMemoryEngine(MemoryEngine):
        def _ensure_unique_indexes(self, db_name: str, coll_name: str, candidate: Any, **kwargs: Any) -> None:
            if _has_string_id(candidate):
                kwargs["scan_payload_id"] = False
                kwargs["check_id_storage"] = True
            super()._ensure_unique_indexes(db_name, coll_name, candidate, **kwargs)

        def _candidate_items_for_plan_locked(self, coll: Any, query_plan: Any, **kwargs: Any) -> list[tuple[Any, Any]]:
            ids = _string_ids_in(query_plan)
            if not ids and isinstance(single := self._direct_id_lookup_from_plan(query_plan), str):
                ids = (single,)
            if ids:
                keys = (self._storage_key(value) for value in ids)
                return [(key, coll[key]) for key in keys if key in coll]
            return super()._candidate_items_for_plan_locked(coll, query_plan, **kwargs)

    return StringIdMemoryEngine()


def _sqlite_engine(path: str) -> Any:
    """mongoeco's SQLite engine, without its whole-collection scan on every insert.

    As in the memory engine (see ``_memory_engine``), each inserted document's
    ``_id`` was compared with every stored document, decoded from SQLite: 268
    inserts/s at 500 documents, 29/s at 4 000 (now ~620/s, flat). A string
    ``_id``'s duplicate is found by its indexed ``storage_key`` query just
    before (still error 11000). ``_id: {$in: [...]}`` was a ``json_extract`` on
    every row (~30 µs per stored document); string ids now select rows by
    their storage key (3 ms for 100 ids at 1 000 or 6 000 documents).
    """
    from mongoeco.engines.sqlite import SQLiteEngine

    class StringIdSQLiteEngine(SQLiteEngine):
        def _translate_query_plan_with_multikey(self, db_name: str, coll_name: str, plan: Any) -> Any:
            # `_id: {$in: [strings]}` by the documents' primary storage key, not json_extract on every row.
            ids = _string_ids_in(plan)
            if ids:
                keys = [self._storage_key(value) for value in ids]
                return f"documents.storage_key IN ({', '.join('?' for _ in keys)})", keys
            return super()._translate_query_plan_with_multikey(db_name, coll_name, plan)

        def _validate_document_against_unique_indexes(
            self, db_name: str, coll_name: str, document: Any, **kwargs: Any
        ) -> None:
            if _has_string_id(document) and not kwargs.get("skip_id_check"):
                kwargs["scan_payload_id"] = False
            super()._validate_document_against_unique_indexes(db_name, coll_name, document, **kwargs)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return StringIdSQLiteEngine(path)


def _compile_validators_once() -> None:
    """Have mongoeco compile a collection's validator once, not again for every document written.

    mongoeco 4.11 compiles the collection's validator (two deep copies of its
    ``$jsonSchema`` and a check of the whole schema) again for every document it
    inserts or updates: measured here, 15 % of the embedded server's CPU in a
    crawl, which shares the machine's cores with the crawl it serves. MongoDB
    compiles it when the collection's options change. Compiled validators are
    kept by the options they come from (a collection made again with another
    validator has other options, so another validator) and applied to every
    document as before: same checks, same errors (121).
    """
    from mongoeco.engines import semantic_core

    compile_validator = semantic_core.compile_collection_validation_semantics
    if getattr(compile_validator, "compiled_once", False):
        return
    compiled: dict[tuple[str, int], tuple[Any, Any]] = {}  # (options, dialect) → (dialect, its validator)

    def compile_once(options: dict[str, object] | None, *, dialect: Any = None) -> Any:
        if not options or options.get("validator") is None:
            return compile_validator(options, dialect=dialect)
        key = (repr(options), id(dialect))  # the dialect is kept with its validator: its id is not reused
        if key not in compiled:
            if len(compiled) >= 256:
                compiled.clear()
            compiled[key] = (dialect, compile_validator(options, dialect=dialect))
        return compiled[key][1]

    compile_once.compiled_once = True  # type: ignore[attr-defined]
    semantic_core.compile_collection_validation_semantics = compile_once


def _engine(path: str | None, memory: bool) -> Any:
    _compile_validators_once()
    if memory:
        return _memory_engine()
    assert path is not None
    return _sqlite_engine(path)


class DataDirectoryBusy(RuntimeError):
    """Another embedded server serves the same data files: two would corrupt them."""


def hold_data_lock(path: Path) -> IO[str]:
    """Lock ``<path>.lock`` beside the data files for as long as the returned file stays open.

    DataDirectoryBusy, saying which process holds it, when another server has it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path.with_name(path.name + ".lock"), "a+", encoding="utf-8")  # noqa: SIM115 - held while serving
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise DataDirectoryBusy(
            f"{path} is already served by an embedded MongoDB ({holder}): use that server's URI with "
            "MONGODB_URI, stop it, or give another MONGODB_EMBEDDED_PATH"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}, {' '.join(sys.argv)[:200]}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    lock.flush()
    return lock


class EmbeddedMongo:
    """mongoeco's wire server on a background thread, for use without a real MongoDB.

    ``start()`` returns a ``mongodb://`` URI (database ``imdb``); ``stop()``
    closes the server and the engine, flushing the SQLite files.
    """

    def __init__(self, path: str | None = DEFAULT_PATH, *, memory: bool = False, port: int = 0) -> None:
        self.path = path
        self.memory = memory
        self.port = port
        self.uri: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._lock: IO[str] | None = None

    def start(self, timeout: float = 30.0) -> str:
        if self.path and not self.memory:
            self._lock = hold_data_lock(Path(self.path))
        self._thread = threading.Thread(target=self._run, name="embedded-mongo", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("embedded MongoDB server did not start in time")
        if self._error is not None:
            self._release()
            raise RuntimeError(f"embedded MongoDB server failed to start: {self._error}") from self._error
        assert self.uri is not None
        return self.uri

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from mongoeco.wire import AsyncMongoEcoProxyServer

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            server = AsyncMongoEcoProxyServer(engine=_engine(self.path, self.memory), port=self.port)
            address = await server.start()
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self.uri = f"mongodb://{address.host}:{address.port}/{DEFAULT_DB}?directConnection=true"
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await server.close()

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._thread = None
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.embedded_mongo", description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=os.environ.get("MONGODB_EMBEDDED_PATH", DEFAULT_PATH))
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--memory", action="store_true", help="keep data in memory only")
    args = parser.parse_args(argv)
    server = EmbeddedMongo(None if args.memory else args.path, memory=args.memory, port=args.port)
    try:
        uri = server.start()
    except DataDirectoryBusy as exc:
        print(f"python -m crawler.embedded_mongo: {exc}", file=sys.stderr)
        return 1
    print(uri, flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
