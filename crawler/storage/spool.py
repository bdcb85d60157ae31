"""Where documents wait while MongoDB cannot take them: atomic batch files on local disk.

Each spooled batch is one file, ``<collection>.<time>-<pid>-<n>.jsonl``, written
under a temporary name, fsync'd and renamed: a file is there whole or not at
all, so a crash or a full disk never leaves half a batch. Replay reads a file,
writes its documents (idempotent upserts by ``_id``) and only then removes
it: a replay killed halfway is simply done again. Files from older versions
(one ``<collection>.jsonl`` appended to, or ``.replaying``) are read the same
way; a line that cannot be read (cut by a crash or a full disk) is moved to
``quarantine/``, reported, and never blocks the rest.

Documents are MongoDB Extended JSON (relaxed), so dates come back as dates.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import json_util

_JSON = json_util.RELAXED_JSON_OPTIONS
_SEQUENCE = itertools.count()


class SpoolError(OSError):
    """Documents could not be kept in the spool (full disk, no permission…)."""


@dataclass
class SpoolBatch:
    """One spooled file's documents; ``unreadable`` lines were quarantined."""

    path: Path
    collection: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0


class Spool:
    """Batch files of documents per collection under ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def append(self, collection: str, documents: list[dict[str, Any]]) -> None:
        """Keep ``documents`` on disk, all or none; SpoolError when they could not be kept."""
        if not documents:
            return
        name = f"{collection}.{time.time_ns()}-{os.getpid()}-{next(_SEQUENCE)}.jsonl"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as handle:
                for document in documents:
                    handle.write(json_util.dumps(document, json_options=_JSON) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
            _fsync_directory(self.directory)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            message = f"could not spool {len(documents)} documents to {self.directory}: {exc.strerror or exc}"
            raise SpoolError(exc.errno, message) from None

    def files(self) -> list[Path]:
        """Spooled files, oldest first (temporary files of interrupted writes are not batches)."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.is_file() and p.suffix in (".jsonl", ".replaying")]
        return sorted((p for p in found if not p.name.startswith(".")), key=lambda p: (p.stat().st_mtime_ns, p.name))

    def pending(self) -> dict[str, int]:
        """Documents waiting, per collection (readable lines only)."""
        counts: dict[str, int] = {}
        for path in self.files():
            with open(path, "rb") as handle:
                lines = sum(1 for line in handle if line.strip())
            collection = path.name.split(".", 1)[0]
            counts[collection] = counts.get(collection, 0) + lines
        return {k: v for k, v in counts.items() if v}

    def batches(self) -> Iterator[SpoolBatch]:
        """Every spooled file as a batch; unreadable lines are moved aside to ``quarantine/``."""
        for path in self.files():
            batch = SpoolBatch(path, path.name.split(".", 1)[0])
            bad: list[bytes] = []
            with open(path, "rb") as handle:
                for line in handle:
                    if not line.strip():
                        continue
                    try:
                        batch.documents.append(json_util.loads(line.decode("utf-8"), json_options=_JSON))
                    except (ValueError, UnicodeDecodeError):
                        bad.append(line)
            if bad:
                batch.unreadable = len(bad)
                self._quarantine(path, bad)
            yield batch

    def _quarantine(self, path: Path, lines: list[bytes]) -> None:
        folder = self.directory / "quarantine"
        folder.mkdir(exist_ok=True)
        with open(folder / f"{path.name}.unreadable", "ab") as handle:
            handle.writelines(line if line.endswith(b"\n") else line + b"\n" for line in lines)
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self, batch: SpoolBatch) -> None:
        """Forget a batch once every document of it is written."""
        batch.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` survive a power cut."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
