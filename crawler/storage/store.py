"""The crawl's MongoDB connection, shared by the pipeline, the spider and the extensions.

``MongoStore.for_crawler(crawler)`` returns one store per crawl. ``open()``
starts the embedded server when no ``MONGODB_URI`` is set, connects once and
returns the database; ``close()`` (called by the writer pipeline, the last
user) closes the client and stops the embedded server.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from pymongo.write_concern import WriteConcern

from crawler.mongo import EmbeddedMongo, connect, database_name, redact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MongoConfig:
    """The writer's settings, read once and checked at start."""

    uri: str
    embedded_path: str
    batch_size: int
    flush_seconds: float
    write_concern: dict[str, Any]
    spool_dir: str
    server_timeout_ms: int

    @classmethod
    def from_settings(cls, settings: Any) -> MongoConfig:
        config = cls(
            uri=settings.get("MONGODB_URI") or "",
            embedded_path=settings.get("MONGODB_EMBEDDED_PATH"),
            batch_size=settings.getint("MONGODB_BATCH_SIZE", 100),
            flush_seconds=settings.getfloat("MONGODB_FLUSH_SECONDS", 5.0),
            write_concern=settings.getdict("MONGODB_WRITE_CONCERN", {"w": 1}),
            spool_dir=settings.get("MONGODB_SPOOL_DIR", "var/spool"),
            server_timeout_ms=settings.getint("MONGODB_SERVER_TIMEOUT_MS", 5000),
        )
        if config.uri and not config.uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(f"MONGODB_URI must start with mongodb:// or mongodb+srv://, got {redact(config.uri)!r}")
        if config.batch_size < 1 or config.flush_seconds <= 0:
            raise ValueError("MONGODB_BATCH_SIZE must be >= 1 and MONGODB_FLUSH_SECONDS > 0")
        WriteConcern(**config.write_concern)  # raises on a malformed write concern
        return config


class MongoStore:
    """One MongoDB client (and, without a URI, one embedded server) per crawl."""

    def __init__(self, config: MongoConfig) -> None:
        self.config = config
        self.uri = config.uri
        self.embedded: EmbeddedMongo | None = None
        self.client: Any = None
        self.db: Any = None
        self._lock = threading.Lock()

    @classmethod
    def for_crawler(cls, crawler: Any) -> MongoStore:
        store = getattr(crawler, "imdb_store", None)
        if store is None:
            store = cls(MongoConfig.from_settings(crawler.settings))
            crawler.imdb_store = store
        return store

    def open(self) -> Any:
        """The database, connecting on first use (blocking: call it off the reactor thread)."""
        with self._lock:
            if self.db is not None:
                return self.db
            if not self.uri:
                self.embedded = EmbeddedMongo(self.config.embedded_path)
                self.uri = self.embedded.start()
                logger.info(
                    "No MONGODB_URI: started the embedded server (%s) at %s", self.config.embedded_path, self.uri
                )
            self.client = connect(self.uri, serverSelectionTimeoutMS=self.config.server_timeout_ms)
            concern = WriteConcern(**self.config.write_concern)
            self.db = self.client.get_database(database_name(self.uri), write_concern=concern)
            logger.info("Using MongoDB %s, database %r", redact(self.uri), self.db.name)
            return self.db

    def close(self) -> None:
        with self._lock:
            if self.client is not None:
                self.client.close()
            if self.embedded is not None:
                self.embedded.stop()
            self.client = self.db = self.embedded = None
