"""IMDb's dataset dumps as seeds (``start=datasets:DIR``) and as a refresh signal (``start=changed:DIR``).

IMDb publishes daily TSV dumps at https://datasets.imdbws.com/ **for personal
and non-commercial use** (see https://developer.imdb.com/non-commercial-datasets/;
the licence is IMDb's, not ours). Two of them are read, gzipped or not, as
published: ``title.basics.tsv.gz`` (tconst, titleType, primaryTitle,
originalTitle, isAdult, startYear, endYear, runtimeMinutes, genres) and
``title.ratings.tsv.gz`` (tconst, averageRating, numVotes); ``\\N`` is null.

Both are streamed row by row: memory does not grow with the file (one million
rows are read in a test with RSS measured). The only structure kept is a
bitmap of the titles with enough votes (``min_votes``), 1 bit per possible id.

* ``seeds``: title ids of ``title.basics`` that pass the filters (``title_types``,
  ``years``, ``min_votes`` from ``title.ratings``), in file order.
* ``changed``: titles stored in the database whose votes or rating in
  ``title.ratings`` differ by more than ``min_change`` from the figures a
  previous ``changed`` run used (``dataset_figures``), or else from what the
  crawl stored, the least recently seen first, at most ``limit``.
"""

from __future__ import annotations

import gzip
import heapq
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pyroaring import BitMap

BASICS = "title.basics.tsv"
RATINGS = "title.ratings.tsv"
BATCH = 1000  # ids looked up in MongoDB at a time
MAX_LINE = 64 * 1024  # characters: IMDb's rows are a few hundred; a longer line is not a row

logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A datasets directory or file that cannot be used; the message says which and why."""


def dataset_file(directory: Path, name: str) -> Path:
    """``name`` or ``name.gz`` in ``directory``; DatasetError when neither is there."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{directory}: no {name}.gz (nor {name}); download it from https://datasets.imdbws.com/")


def _open(path: Path) -> TextIO:
    # errors="strict": a dump that is not UTF-8 is refused, not read as something else.
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _lines(handle: TextIO, path: Path) -> Iterator[str]:
    """The lines of a dump, each at most ``MAX_LINE`` characters: longer ones are skipped whole, and counted."""
    skipped = 0
    while True:
        line = handle.readline(MAX_LINE + 1)
        if not line:
            break
        if len(line) > MAX_LINE and not line.endswith("\n"):
            skipped += 1
            while line and not line.endswith("\n"):  # the rest of it, a bounded piece at a time
                line = handle.readline(MAX_LINE + 1)
            continue
        yield line.rstrip("\r\n")
    if skipped:
        logger.warning("%s: skipped %d lines longer than %d characters (no IMDb row is)", path, skipped, MAX_LINE)


def rows(path: Path, needed: tuple[str, ...]) -> Iterator[dict[str, str | None]]:
    """The rows of a dump as ``{column: value or None}`` (``\\N`` is None), one at a time.

    DatasetError for a file that is not a dump: not gzip (a ``.gz``), not UTF-8, empty, without the
    columns needed, or with a header and no row.
    """
    try:
        with _open(path) as handle:
            lines = _lines(handle, path)
            header_line = next(lines, None)
            if header_line is None:
                raise DatasetError(f"{path}: empty (no header, no rows)")
            header = header_line.split("\t")
            missing = [column for column in needed if column not in header]
            if missing:
                raise DatasetError(f"{path}: no column {', '.join(missing)} (columns: {', '.join(header)[:200]})")
            index = {column: header.index(column) for column in needed}
            count = 0
            for line in lines:
                row = line.split("\t")
                if len(row) < len(header):
                    continue  # a truncated last line
                count += 1
                yield {column: (None if row[i] == "\\N" else row[i]) for column, i in index.items()}
            if not count:
                raise DatasetError(f"{path}: a header and no rows")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start} of a block)") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: unreadable ({exc})") from None


def _number(tconst: str | None) -> int | None:
    if tconst and tconst.startswith("tt") and tconst[2:].isdigit():
        return int(tconst[2:])
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Filters:
    """Which titles of ``title.basics`` seed a crawl."""

    title_types: frozenset[str] = frozenset()
    years: tuple[int, int] | None = None
    min_votes: int = 0

    def keeps(self, row: dict[str, str | None]) -> bool:
        if self.title_types and row["titleType"] not in self.title_types:
            return False
        if self.years is not None:
            year = _int(row["startYear"])
            if year is None or not self.years[0] <= year <= self.years[1]:
                return False
        return True


def voted(directory: Path, min_votes: int) -> BitMap:
    """Title numbers with at least ``min_votes`` votes in ``title.ratings`` (a bitmap: ~1 bit per possible id)."""
    found = BitMap()
    for row in rows(dataset_file(directory, RATINGS), ("tconst", "numVotes")):
        number = _number(row["tconst"])
        votes = _int(row["numVotes"])
        if number is not None and votes is not None and votes >= min_votes:
            found.add(number)
    return found


def seeds(directory: Path, filters: Filters) -> Iterator[str]:
    """Title ids of ``title.basics`` that pass ``filters``, streamed in file order."""
    enough = voted(directory, filters.min_votes) if filters.min_votes else None
    for row in rows(dataset_file(directory, BASICS), ("tconst", "titleType", "startYear")):
        number = _number(row["tconst"])
        if number is None or not filters.keeps(row):
            continue
        if enough is not None and number not in enough:
            continue
        yield f"tt{number:07d}"


def _differs(old: float | None, new: float | None, share: float) -> bool:
    if old is None or new is None:
        return old != new and new is not None
    if old == 0:
        return new != 0
    return abs(new - old) / abs(old) > share


def changed(directory: Path, db: Any, min_change: float, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Stored titles whose figures in ``title.ratings`` moved by more than ``min_change``, least recently seen first.

    Each comes with the dump's figures, which the caller records in
    ``dataset_figures`` once it has stored their pages (``Refresh``, ``remember``): the next dump is
    compared with these, like with like, rather than with what a page showed
    on another day.
    """
    best: list[tuple[float, str, dict[str, Any]]] = []  # a heap of the `limit` least recently seen
    batch: list[tuple[str, dict[str, Any]]] = []

    def check(batch: list[tuple[str, dict[str, Any]]]) -> None:
        ids = [tconst for tconst, _ in batch]
        previous = {d["_id"]: d for d in db.dataset_figures.find({"_id": {"$in": ids}})}
        stored = {d["_id"]: d for d in db.titles.find({"_id": {"$in": ids}}, {"votes": 1, "rating": 1, "last_seen": 1})}
        for tconst, figures in batch:
            title = stored.get(tconst)
            if title is None:
                continue  # not in the database: a refresh signal only (seed new titles with datasets:)
            before = previous.get(tconst) or title
            moved = _differs(before.get("votes"), figures["votes"], min_change) or _differs(
                before.get("rating"), figures["rating"], min_change
            )
            if not moved:
                continue
            seen = title.get("last_seen")
            age = -(seen.timestamp() if isinstance(seen, datetime) else 0.0)  # older: larger
            entry = (age, tconst, figures)
            if len(best) < limit:
                heapq.heappush(best, entry)
            elif entry > best[0]:
                heapq.heapreplace(best, entry)

    for row in rows(dataset_file(directory, RATINGS), ("tconst", "averageRating", "numVotes")):
        number = _number(row["tconst"])
        if number is None:
            continue
        batch.append((f"tt{number:07d}", {"votes": _int(row["numVotes"]), "rating": _float(row["averageRating"])}))
        if len(batch) >= BATCH:
            check(batch)
            batch = []
    if batch:
        check(batch)
    return [(tconst, figures) for _, tconst, figures in sorted(best, reverse=True)]


class Refresh:
    """The titles a ``changed`` run asked for, with the dump's figures, until their pages are stored.

    A title's figures are recorded (``remember``) only once its page is in the
    database: a title whose page was blocked, failed or never fetched (a run
    stopped early) keeps being picked by the next ``changed`` run.
    """

    def __init__(self, db: Any, picked: list[tuple[str, dict[str, Any]]], source: Path) -> None:
        self.db = db
        self.source = source
        self.waiting = dict(picked)
        self.stored: list[tuple[str, dict[str, Any]]] = []

    def pages_stored(self, page_ids: list[str]) -> bool:
        """Note the stored pages; True once a batch of figures is ready to record."""
        for page_id in page_ids:
            figures = self.waiting.pop(page_id, None)
            if figures is not None:
                self.stored.append((page_id, figures))
        return len(self.stored) >= BATCH

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        batch, self.stored = self.stored, []
        return batch


def remember(db: Any, figures: list[tuple[str, dict[str, Any]]], source: Path) -> None:
    """Record the dump's figures of titles a ``changed`` run stored (``dataset_figures``)."""
    from pymongo import UpdateOne

    now = datetime.now(UTC)
    operations = [
        UpdateOne({"_id": tconst}, {"$set": {**values, "used": now, "source": str(source)}}, upsert=True)
        for tconst, values in figures
    ]
    for start in range(0, len(operations), BATCH):
        db.dataset_figures.bulk_write(operations[start : start + BATCH], ordered=False)
