"""One batch of documents into MongoDB: what each document needs, in one unordered ``bulk_write``.

A document not stored yet is inserted; a changed one is updated field by
field (``$set``, ``first_seen`` kept); an unchanged one (same content hash)
only has ``last_seen`` moved; one this run already stored, as rich or richer,
is a repeat (``supersedes``). Each document's outcome goes to a ``Tally``: a
document the client cannot encode, or the server refuses for good, is set
aside under a named reason and costs the others nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import bson
from bson.errors import InvalidDocument, InvalidStringData
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

from crawler.storage.changes import entry
from crawler.storage.documents import supersedes
from crawler.storage.secrets import redact

logger = logging.getLogger(__name__)

# Server errors that will not go away by retrying the same document.
PERMANENT_CODES = {121: "validation_failed", 10334: "too_large", 17419: "too_large", 2: "bad_value", 52: "bad_key"}
# Server errors that will: the server is stepping down, restarting or unreachable.
TRANSIENT_CODES = {6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436}
# Raised by the client while encoding a document: that document alone is unwritable.
ENCODING_ERRORS = (InvalidDocument, InvalidStringData, OverflowError, ValueError, TypeError)


@dataclass
class Pending:
    """A document waiting to be written, with when and by which run its page was seen."""

    collection: str
    document: dict[str, Any]
    seen_at: datetime
    run_id: str

    def to_spool(self) -> dict[str, Any]:
        return {"collection": self.collection, "document": self.document, "seen_at": self.seen_at, "run": self.run_id}

    @classmethod
    def from_spool(cls, line: dict[str, Any], collection: str, run_id: str) -> Pending:
        if "document" in line:
            seen_at = line.get("seen_at") or datetime.now(UTC)
            seen_at = seen_at if seen_at.tzinfo else seen_at.replace(tzinfo=UTC)
            return cls(line.get("collection", collection), line["document"], seen_at, line.get("run") or run_id)
        return cls(collection, line, datetime.now(UTC), run_id)  # a bare document (spool of an older version)


@dataclass
class Tally:
    """What a write did, page by page: ``{outcome: [ids]}``, plus replay counts."""

    outcomes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    replayed: int = 0
    unreadable: int = 0
    changes: int = 0  # entries written to the change log
    changes_failed: int = 0

    def add(self, outcome: str, ids: list[str]) -> None:
        if ids:
            self.outcomes[outcome].extend(ids)


def transient(exc: PyMongoError) -> bool:
    """An error that will go away: the server is stepping down, restarting or unreachable."""
    if isinstance(exc, ConnectionFailure):
        return True
    labels: set[str] = getattr(exc, "_error_labels", set()) or set()
    return isinstance(exc, OperationFailure) and (exc.code in TRANSIENT_CODES or "RetryableWriteError" in labels)


def by_collection(pendings: list[Pending]) -> dict[str, list[Pending]]:
    groups: dict[str, list[Pending]] = defaultdict(list)
    for pending in pendings:
        groups[pending.collection].append(pending)
    return groups


def unencodable(document: dict[str, Any]) -> str | None:
    """Why BSON cannot encode ``document`` (an int over 8 bytes, a NUL in a key…), or None."""
    try:
        bson.encode(document)
    except ENCODING_ERRORS as exc:
        return str(exc)
    return None


class BulkWriter:
    """Writes batches of one collection; ``keep`` takes the documents the server could not take just now."""

    def __init__(self, db: Any, keep: Callable[[list[Pending], Tally], None], log_changes: bool = True) -> None:
        self.db = db
        self.keep = keep
        self.log_changes = log_changes

    def write(self, collection: str, pendings: list[Pending], tally: Tally) -> None:
        """Write the documents of one collection; outcomes go to ``tally``."""
        if collection == "crawl_runs":  # run records spooled while MongoDB was down: replaced whole
            try:
                self.db.crawl_runs.bulk_write([ReplaceOne({"_id": p.document["_id"]}, p.document, upsert=True)
                                               for p in pendings], ordered=False)  # fmt: skip
            except BulkWriteError as exc:
                logger.error("Could not record %d spooled run records: %s", len(pendings), exc.details)
            return
        self._write(collection, pendings, tally)

    def _write(self, collection: str, pendings: list[Pending], tally: Tally) -> None:
        coll = self.db[collection]
        stored = self.stored_versions(coll, [p.document["_id"] for p in pendings])
        operations: list[tuple[str, Pending, Any]] = []
        for pending in pendings:
            document = pending.document
            before = stored.get(document["_id"])
            seen = {"last_seen": pending.seen_at, "crawl_run_id": pending.run_id}
            if before is None:
                operations.append(("new", pending, InsertOne({**document, **seen, "first_seen": pending.seen_at,
                                                              "last_changed": pending.seen_at})))  # fmt: skip
            elif before.get("crawl_run_id") == pending.run_id and not supersedes(document, before):
                tally.add("duplicate", [document["_id"]])  # this run stored it already, as rich or richer
            elif before.get("content_hash") == document["content_hash"]:
                operations.append(("unchanged", pending, UpdateOne({"_id": document["_id"]}, {"$set": seen})))
            else:
                operations.append(("changed", pending, self.full_update(pending)))
        changed = [pending for kind, pending, _ in operations if kind == "changed"]
        entries = self.change_entries(coll, changed) if self.log_changes and changed else {}
        written_before = len(tally.outcomes.get("changed", []))
        self.bulk(coll, operations, tally)
        written = tally.outcomes.get("changed", [])[written_before:]
        self.record_changes([entries[page_id] for page_id in written if page_id in entries], tally)

    @staticmethod
    def change_entries(coll: Any, changed: list[Pending]) -> dict[str, dict[str, Any]]:
        """The change-log entry of each changed document, from the stored version it replaces."""
        old = {d["_id"]: d for d in coll.find({"_id": {"$in": [p.document["_id"] for p in changed]}})}
        return {
            p.document["_id"]: entry(coll.name, old[p.document["_id"]], p.document, p.seen_at, p.run_id)
            for p in changed
            if p.document["_id"] in old
        }

    def record_changes(self, entries: list[dict[str, Any]], tally: Tally) -> None:
        """Into ``changes``; a failure here costs no document (they are stored), it is counted and logged."""
        entries = [e for e in entries if e["fields"]]
        if not entries:
            return
        try:
            self.db.changes.insert_many(entries, ordered=False)
            tally.changes += len(entries)
        except PyMongoError as exc:
            tally.changes_failed += len(entries)
            logger.error("Could not log %d changes: %s", len(entries), redact(str(exc))[:500])

    @staticmethod
    def stored_versions(coll: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        """``content_hash``, ``richness`` and ``crawl_run_id`` of the documents already stored, by id."""
        fields = {"content_hash": 1, "richness": 1, "crawl_run_id": 1}
        return {d["_id"]: d for d in coll.find({"_id": {"$in": ids}}, fields)}

    @staticmethod
    def full_update(pending: Pending) -> UpdateOne:
        seen = {"last_seen": pending.seen_at, "crawl_run_id": pending.run_id, "last_changed": pending.seen_at}
        update = {"$set": {**pending.document, **seen}, "$setOnInsert": {"first_seen": pending.seen_at}}
        return UpdateOne({"_id": pending.document["_id"]}, update, upsert=True)

    def bulk(self, coll: Any, operations: list[tuple[str, Pending, Any]], tally: Tally) -> None:
        """One unordered batch; each operation's outcome goes to ``tally``.

        A document the client cannot encode is set aside (``unencodable``) and
        the rest written; one inserted by another worker since our read (11000)
        is written again as an update; a permanent refusal is reported under its
        reason; a transient one sends that document to the spool.
        """
        if not operations:
            return
        try:
            coll.bulk_write([op for _, _, op in operations], ordered=False)
        except ENCODING_ERRORS:
            good = []
            for kind, pending, op in operations:
                reason = unencodable(pending.document)
                if reason:
                    logger.error("Cannot store %s: %s", pending.document["_id"], reason)
                    tally.add("write_failed/unencodable", [pending.document["_id"]])
                else:
                    good.append((kind, pending, op))
            if len(good) < len(operations):
                self.bulk(coll, good, tally)
                return
            raise
        except BulkWriteError as exc:
            failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
            raced, transient = [], []
            for index, (kind, pending, _) in enumerate(operations):
                error = failed.get(index)
                page_id = pending.document["_id"]
                if error is None:
                    tally.add(kind, [page_id])
                elif error.get("code") == 11000 and kind == "new":
                    raced.append(("changed", pending, self.full_update(pending)))
                elif error.get("code") in PERMANENT_CODES:
                    reason = PERMANENT_CODES[error["code"]]
                    logger.error("MongoDB refused %s (%s): %s", page_id, reason, error.get("errmsg"))
                    tally.add(f"write_failed/{reason}", [page_id])
                else:
                    transient.append(pending)
            if transient:
                self.keep(transient, tally)
            self.bulk(coll, raced, tally)
            return
        for kind, pending, _ in operations:
            tally.add(kind, [pending.document["_id"]])
