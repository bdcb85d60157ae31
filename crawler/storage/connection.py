"""The crawl's MongoDB connection, and the collections' schema and indexes.

``MongoStore.for_crawler(crawler)`` is the one store of a crawl, shared by the
writer, the run record, the run lock and the spider. ``open()`` (blocking: call
it off the reactor thread) starts the embedded server when no ``MONGODB_URI``
is set, connects, checks that the server answers, and creates the collections'
validators and indexes once; ``StorageUnavailable`` says, in one line, why it
could not. The store closes when the engine has stopped, after its last user.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC
from typing import Any
from weakref import WeakKeyDictionary

from pymongo import ASCENDING, DESCENDING, TEXT, MongoClient
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern
from scrapy import signals

from crawler.storage.schema import SCHEMAS
from crawler.storage.secrets import redact
from crawler.storage.settings import scrapyd_job, storage_config

logger = logging.getLogger(__name__)

DEFAULT_DB = "imdb"
INDEXES: dict[str, list[Any]] = {
    "titles": [
        [("title", TEXT)],
        [("genres", ASCENDING)],
        [("year", ASCENDING)],
        [("rating", ASCENDING)],
        [("cast.id", ASCENDING)],
        [("recommendations", ASCENDING)],
        [("last_seen", ASCENDING)],
        [("schema_version", ASCENDING), ("last_seen", ASCENDING)],
    ],
    "people": [
        [("known_for", ASCENDING)],
        [("name", ASCENDING)],
        [("last_seen", ASCENDING)],
        [("schema_version", ASCENDING), ("last_seen", ASCENDING)],
    ],
    "changes": [  # the change log: the history of one document; what changed lately (see crawler/storage/changes.py)
        [("imdb_id", ASCENDING), ("time", DESCENDING)],
        [("collection", ASCENDING), ("time", DESCENDING)],
    ],
    "crawl_runs": [
        [("job", ASCENDING), ("status", ASCENDING), ("finished", ASCENDING)],
        [("run_group", ASCENDING)],
    ],
}


class StorageUnavailable(RuntimeError):
    """MongoDB cannot be used for this crawl; the message says where and why."""


def database_name(uri: str) -> str:
    """The database named in the URI path, ``imdb`` when none is given."""
    return parse_uri(uri).get("database") or DEFAULT_DB


def connect(uri: str, **kwargs: Any) -> MongoClient:
    """A pymongo client with short, explicit timeouts so outages are noticed quickly, and aware UTC dates."""
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": 5000, "connectTimeoutMS": 5000, "appname": "imdb-crawler",
        "tz_aware": True, "tzinfo": UTC,  # dates come back as aware UTC datetimes, as they were written
    }  # fmt: skip
    options.update(kwargs)
    return MongoClient(uri, **options)


def ensure_schema(db: Any, changes_ttl: float) -> None:
    """Collections with their ``$jsonSchema`` validators, and every index; safe to repeat.

    ``changes`` (the change log) expires after ``changes_ttl`` seconds: a TTL
    index on ``time``, whose expiry is updated in place when the setting changes.
    """
    existing = set(db.list_collection_names())
    for name, schema in SCHEMAS.items():
        if name not in existing:
            try:
                db.create_collection(name, validator={"$jsonSchema": schema}, validationLevel="moderate")
            except (CollectionInvalid, OperationFailure):
                # Workers starting together race to create it (server code 48,
                # NamespaceExists): whoever lost finds it there and moves on.
                if name not in db.list_collection_names():
                    raise
                _update_validator(db, name, schema)
        else:
            _update_validator(db, name, schema)
    for name, indexes in INDEXES.items():
        for keys in indexes:
            db[name].create_index(keys)
    if changes_ttl > 0:
        try:
            db.changes.create_index("time", name="time_ttl", expireAfterSeconds=int(changes_ttl))
        except OperationFailure as exc:
            if exc.code not in (85, 86):  # IndexOptionsConflict, IndexKeySpecsConflict: another expiry before
                raise
            db.command("collMod", "changes", index={"name": "time_ttl", "expireAfterSeconds": int(changes_ttl)})


def _update_validator(db: Any, name: str, schema: dict[str, Any]) -> None:
    """Bring an existing collection's validator up to the current schema."""
    try:
        db.command("collMod", name, validator={"$jsonSchema": schema}, validationLevel="moderate")
    except OperationFailure as exc:
        # Servers without collMod (or a user without the right to run it) keep
        # the validator they have; items are still checked by ValidationPipeline.
        detail = exc.details.get("errmsg", exc) if exc.details else exc
        logger.info("Validator of %r left as it is: %s", name, detail)


_STORES: WeakKeyDictionary[Any, MongoStore] = WeakKeyDictionary()


class MongoStore:
    """One MongoDB client (and, without a URI, one embedded server) per crawl."""

    def __init__(
        self, uri: str, embedded_path: str, server_timeout_ms: int, write_concern: dict[str, Any], crawler: Any,
        changes_ttl: float,
    ) -> None:  # fmt: skip
        self.crawler = crawler
        self.changes_ttl = changes_ttl
        self.uri = uri
        self.embedded_path = embedded_path
        self.server_timeout_ms = server_timeout_ms
        self.write_concern = write_concern
        self.embedded: Any = None
        self.client: MongoClient | None = None
        self.db: Any = None
        self.failure: str | None = None
        self._lock = threading.RLock()  # close() may run inside open() on failure

    @classmethod
    def for_crawler(cls, crawler: Any) -> MongoStore:
        store = _STORES.get(crawler)
        if store is None:
            config = storage_config(crawler)
            store = cls(
                config.mongodb_uri, config.embedded_path, config.server_timeout_ms, config.write_concern, crawler,
                config.changes_ttl,
            )  # fmt: skip
            _STORES[crawler] = store
            crawler.signals.connect(store.close, signal=signals.engine_stopped)
        return store

    @property
    def shown_uri(self) -> str:
        return redact(self.uri) if self.uri else "(embedded server, not started)"

    def open(self) -> Any:
        """The database, ready to use; StorageUnavailable when the server does not answer."""
        with self._lock:
            if self.db is not None:
                return self.db
            if self.failure is not None:
                raise StorageUnavailable(self.failure)
            try:
                self.db = self._connect()
            except StorageUnavailable as exc:
                self.failure = str(exc)
                raise
            return self.db

    def _connect(self) -> Any:
        if not self.uri:
            if scrapyd_job(self.crawler):
                raise StorageUnavailable(
                    "no MONGODB_URI under Scrapyd: the embedded server would write into Scrapyd's working folder "
                    "and stop with the job. Schedule with -d setting=MONGODB_URI=mongodb://…"
                )
            from crawler.embedded_mongo import DataDirectoryBusy, EmbeddedMongo

            self.embedded = EmbeddedMongo(self.embedded_path)
            try:
                self.uri = self.embedded.start()
            except DataDirectoryBusy as exc:
                self.embedded = None
                raise StorageUnavailable(str(exc)) from None
            logger.info("No MONGODB_URI: started the embedded server (%s) at %s", self.embedded_path, self.uri)
        self.client = connect(self.uri, serverSelectionTimeoutMS=self.server_timeout_ms)
        db = self.client.get_database(database_name(self.uri), write_concern=WriteConcern(**self.write_concern))
        try:
            db.command("ping")
            ensure_schema(db, self.changes_ttl)
        except PyMongoError as exc:
            self.close()
            raise StorageUnavailable(f"MongoDB at {redact(self.uri)} is unreachable: {redact(str(exc))}") from None
        logger.info("Using MongoDB %s, database %r", redact(self.uri), db.name)
        return db

    def close(self) -> None:
        with self._lock:
            if self.client is not None:
                self.client.close()
            if self.embedded is not None:
                self.embedded.stop()
            self.client = self.db = self.embedded = None
