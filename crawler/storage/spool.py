"""A local, append-only, fsync'd spool for documents MongoDB could not take yet."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Spool:
    """One JSON line per document, per collection, under ``directory``.

    Writes are appended and fsync'd before the crawl moves on, so a document
    that reached the spool survives a crash. Replaying is idempotent because
    the writer upserts by ``_id``.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, collection: str) -> Path:
        return self.directory / f"{collection}.jsonl"

    def append(self, collection: str, documents: list[dict[str, Any]]) -> None:
        if not documents:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.path(collection), "a", encoding="utf-8") as handle:
            for document in documents:
                handle.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> dict[str, int]:
        """Documents waiting, per collection."""
        counts: dict[str, int] = {}
        if self.directory.is_dir():
            for path in sorted([*self.directory.glob("*.jsonl"), *self.directory.glob("*.replaying")]):
                with open(path, encoding="utf-8") as handle:
                    counts[path.stem] = counts.get(path.stem, 0) + sum(1 for line in handle if line.strip())
        return {k: v for k, v in counts.items() if v}

    def drain(self, collection: str) -> Iterator[list[dict[str, Any]]]:
        """Batches of spooled documents; the file is removed once fully read.

        The file is renamed first, so documents spooled while a replay runs
        land in a new file and are not lost.
        """
        path = self.path(collection)
        if not path.exists():
            return
        replaying = path.with_suffix(".replaying")
        if not replaying.exists():
            path.rename(replaying)
        batch: list[dict[str, Any]] = []
        with open(replaying, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    batch.append(json.loads(line))
                if len(batch) >= 500:
                    yield batch
                    batch = []
        if batch:
            yield batch
        replaying.unlink()
