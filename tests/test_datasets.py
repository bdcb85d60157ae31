"""IMDb's dataset dumps as seeds and as a refresh signal, and the change log.

The dumps here are written in the published format (tab-separated, ``\\N`` for
null, gzipped) from the fixture pages' own data, plus rows for titles the demo
site does not have.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from crawler.runtime import datasets
from crawler.runtime.config import ConfigError, SpiderArgs
from crawler.runtime.datasets import BATCH, MAX_LINE, DatasetError, Filters, Refresh, changed, seeds
from tests.conftest import FIXTURES, PROJECT, crawl, db_of, extract

BASICS_HEADER = ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear", "endYear",
                 "runtimeMinutes", "genres"]  # fmt: skip
RATINGS_HEADER = ["tconst", "averageRating", "numVotes"]


def write_tsv(path: Path, header: list[str], records: list[list[Any]]) -> Path:
    text = io.StringIO()
    text.write("\t".join(header) + "\n")
    for record in records:
        text.write("\t".join("\\N" if value is None else str(value) for value in record) + "\n")
    path.write_bytes(gzip.compress(text.getvalue().encode("utf-8")))
    return path


def fixture_titles() -> list[dict[str, Any]]:
    """The current-layout title fixtures, as the crawler reads them (the site serves these)."""
    return [extract(path) for path in sorted((FIXTURES / "current").glob("tt*.html"))]


def make_dumps(directory: Path, votes: dict[str, int] | None = None) -> list[dict[str, Any]]:
    titles = fixture_titles()
    basics = [[t["imdb_id"], t["title_type"], t["title"], t["original_title"], 0, t["year"], t["end_year"],
               t["runtime_minutes"], ",".join(t["genres"]) or None] for t in titles]  # fmt: skip
    basics += [["tt9900001", "movie", "Not on the site", "Not on the site", 0, 2001, None, 90, "Drama"],
               ["tt9900002", "tvEpisode", "An episode", "An episode", 0, 2005, None, 44, None]]  # fmt: skip
    ratings = [[t["imdb_id"], t["rating"], (votes or {}).get(t["imdb_id"], t["votes"])] for t in titles if t["votes"]]
    directory.mkdir(parents=True, exist_ok=True)
    write_tsv(directory / "title.basics.tsv.gz", BASICS_HEADER, basics)
    write_tsv(directory / "title.ratings.tsv.gz", RATINGS_HEADER, ratings)
    return titles


def test_seeds_pass_the_filters(tmp_path: Path) -> None:
    titles = make_dumps(tmp_path)
    filters = Filters(frozenset({"movie"}), (1990, 2026), 500_000)
    wanted = [t["imdb_id"] for t in titles if t["title_type"] == "movie" and 1990 <= (t["year"] or 0) <= 2026
              and (t["votes"] or 0) >= 500_000]  # fmt: skip
    assert list(seeds(tmp_path, filters)) == wanted and len(wanted) >= 4
    assert "tt9900001" in list(seeds(tmp_path, Filters(frozenset({"movie"}))))  # no vote filter: all movies
    assert list(seeds(tmp_path, Filters(frozenset({"tvEpisode"}), (2005, 2005)))) == ["tt9900002"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": "datasets:/nowhere"}, "/nowhere: no title.basics.tsv.gz"),
        ({"start": "tt0133093", "title_types": "movie"}, "title_types, years and min_votes filter"),
        ({"start": "tt0133093", "min_change": "5%"}, "min_change goes with -a start=changed:DIR"),
    ],
)
def test_dataset_arguments_are_checked(arguments: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SpiderArgs.parse(arguments)


def test_dataset_arguments_are_parsed(tmp_path: Path) -> None:
    make_dumps(tmp_path)
    args = SpiderArgs.parse({"start": f"datasets:{tmp_path}", "title_types": "movie,tvSeries", "years": "1990-2026",
                             "min_votes": "1000"})  # fmt: skip
    assert (args.dataset, args.title_types, args.years, args.min_votes) == (
        ("datasets", tmp_path), frozenset({"movie", "tvSeries"}), (1990, 2026), 1000)  # fmt: skip
    assert SpiderArgs.parse({"start": f"changed:{tmp_path}", "min_change": "10%"}).min_change == 0.1


@pytest_twisted.ensureDeferred
async def test_a_crawl_seeded_from_datasets_stores_exactly_the_matching_titles(demo_site, mongo_uri, tmp_path):
    titles = make_dumps(tmp_path / "dumps")
    arguments = {"start": f"datasets:{tmp_path / 'dumps'}", "title_types": "movie", "years": "1990-2026",
                 "min_votes": "500000", "depth": 0}  # fmt: skip
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, **arguments)
    wanted = {t["imdb_id"] for t in titles if t["title_type"] == "movie" and 1990 <= (t["year"] or 0) <= 2026
              and (t["votes"] or 0) >= 500_000}  # fmt: skip
    assert crawler.exit_status == 0
    assert set(db_of(mongo_uri).titles.distinct("_id")) == wanted


@pytest_twisted.ensureDeferred
async def test_changed_refreshes_the_titles_whose_figures_moved_and_logs_the_change(demo_site, mongo_uri, tmp_path):
    ids = "tt0133093,tt0172495,tt1375666"
    await crawl(mongo_uri, demo_site.base_url, tmp_path, start=ids, depth=0)
    db = db_of(mongo_uri)
    matrix_votes = db.titles.find_one({"_id": "tt0133093"})["votes"]
    # The dump: The Matrix has 10 % more votes than the crawl saw, the others the same.
    make_dumps(tmp_path / "dumps", votes={"tt0133093": int(matrix_votes * 1.1)})
    picked = changed(tmp_path / "dumps", db, 0.05, 10)
    assert [tconst for tconst, _ in picked] == ["tt0133093"]
    # A run that stores none of the pages (the site is down) records no figures: the title stays picked.
    down = await crawl(mongo_uri, "http://127.0.0.1:9", tmp_path, settings={"RETRY_TIMES": 0},
                       start=f"changed:{tmp_path / 'dumps'}", depth=0)  # fmt: skip
    assert down.exit_status != 0 and down.stats.get_value("pages/failed/DownloadConnectionRefusedError") == 1
    assert db.dataset_figures.count_documents({}) == 0
    assert changed(tmp_path / "dumps", db, 0.05, 10) == picked
    # The site's page says something else than what was stored: a change for the log.
    db.titles.update_one({"_id": "tt0133093"}, {"$set": {"rating": 8.6, "content_hash": "older"}})
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, start=f"changed:{tmp_path / 'dumps'}", depth=0)
    assert crawler.exit_status == 0 and crawler.stats.get_value("pages/changed") == 1
    entries = list(db.changes.find({}, {"_id": 0}))
    assert len(entries) == 1 and entries[0]["imdb_id"] == "tt0133093" and entries[0]["collection"] == "titles"
    assert entries[0]["fields"] == {"rating": [8.6, 8.7]}
    assert entries[0]["time"].tzinfo is not None  # the project's client reads aware UTC datetimes
    assert db.dataset_figures.find_one({"_id": "tt0133093"})["votes"] == int(matrix_votes * 1.1)
    # The same dump again: its figures were used, nothing moved since.
    assert changed(tmp_path / "dumps", db, 0.05, 10) == []


def test_a_refresh_hands_over_the_figures_of_stored_pages_in_batches() -> None:
    picked = [(f"tt{number:07d}", {"votes": number, "rating": 7.0}) for number in range(BATCH + 500)]
    refresh = Refresh(None, picked, Path("dumps"))
    assert not refresh.pages_stored(["tt0000001", "nm0000001", "tt9999999"])  # only picked titles count
    assert refresh.pages_stored([tconst for tconst, _ in picked[:BATCH]])  # tt0000001 again: counted once
    assert refresh.take() == picked[1:2] + picked[:1] + picked[2:BATCH] and refresh.take() == []
    assert len(refresh.waiting) == 500 and not refresh.pages_stored(["tt0000001"])


STREAM = """
import gzip, sys, resource
from pathlib import Path
from crawler.runtime.datasets import Filters, seeds

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

path = Path(sys.argv[1])
with gzip.open(path / "title.basics.tsv.gz", "wt", encoding="utf-8") as out:
    out.write("tconst\\ttitleType\\tprimaryTitle\\toriginalTitle\\tisAdult\\tstartYear\\tendYear\\truntimeMinutes\\tgenres\\n")
    for n in range(1_000_000):
        kind = "movie" if n % 3 else "tvEpisode"
        out.write(f"tt{n:07d}\\t{kind}\\tTitle {n}\\tTitle {n}\\t0\\t{1900 + n % 125}\\t\\\\N\\t90\\tDrama\\n")
before, samples, kept = rss_mib(), [], 0
for n, _ in enumerate(seeds(path, Filters(frozenset({"movie"}), (1990, 2026)))):
    kept += 1
    if n % 50_000 == 0:
        samples.append(rss_mib())
print(kept, before, max(samples))
"""


def test_a_million_rows_are_streamed_in_flat_memory(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", STREAM, str(tmp_path)], cwd=PROJECT, capture_output=True,
                            text=True, timeout=300, check=True)  # fmt: skip
    kept, before, most = result.stdout.split()
    assert int(kept) == sum(1 for n in range(1_000_000) if n % 3 and 1990 <= 1900 + n % 125 <= 2026)
    assert float(most) - float(before) < 8, result.stdout  # MiB: the 1M rows (~60 MB of text) are never held


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not gzip", "unreadable"),
        (gzip.compress(b"tconst\ttitleType\tstartYear\ntt0133093\tmovie\t1999\n"[:30]) + b"\x00garbage", "unreadable"),
        (gzip.compress("\t".join(BASICS_HEADER).encode() + b"\ntt0133093\tmovie\tMatrix \xff\xfe\t"), "not UTF-8"),
        (gzip.compress(b""), "empty"),
        (gzip.compress("\t".join(BASICS_HEADER).encode() + b"\n"), "a header and no rows"),
    ],
    ids=["not_gzip", "corrupt_gzip", "not_utf8", "empty", "header_only"],
)
def test_a_dump_that_is_not_one_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "title.basics.tsv.gz").write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        list(seeds(tmp_path, Filters()))


def test_a_line_too_long_to_be_a_row_is_skipped_in_bounded_memory(tmp_path: Path, caplog) -> None:
    """A 20 MB line (a 300 MB one took the crawler to 1.9 GB) is skipped a bounded piece at a time."""
    header = "\t".join(BASICS_HEADER) + "\n"
    row = "tt{:07d}\tmovie\tA\tA\t0\t1999\t\\N\t90\tDrama\n"
    text = header + row.format(1) + "tt0000002\tmovie\t" + "x" * 20_000_000 + "\n" + row.format(3)
    (tmp_path / "title.basics.tsv").write_text(text)
    lines: list[int] = []
    opened = datasets._open

    class Spy:  # what each readline gave: never the whole line at once
        def __init__(self, path: Path) -> None:
            self.handle = opened(path)

        def readline(self, size: int = -1) -> str:
            line = self.handle.readline(size)
            lines.append(len(line))
            return line

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets, "_open", Spy)
        found = list(seeds(tmp_path, Filters()))
    assert found == ["tt0000001", "tt0000003"]
    assert max(lines) <= MAX_LINE + 1 and len(lines) > 20_000_000 // (MAX_LINE + 1)
    assert "skipped 1 lines longer than" in caplog.text


@pytest.mark.parametrize("dump", ["empty", "header_only", "nothing_passes"])
@pytest_twisted.ensureDeferred
async def test_a_crawl_with_no_seeds_from_its_dump_exits_1(dump, demo_site, mongo_uri, tmp_path, caplog):
    directory = tmp_path / "dumps"
    if dump == "nothing_passes":
        make_dumps(directory)
        arguments = {"title_types": "videoGame"}
    else:
        directory.mkdir()
        header = ("\t".join(BASICS_HEADER) + "\n").encode() if dump == "header_only" else b""
        (directory / "title.basics.tsv.gz").write_bytes(gzip.compress(header))
        arguments = {}
    crawler = await crawl(mongo_uri, demo_site.base_url, tmp_path, start=f"datasets:{directory}", **arguments)
    assert crawler.exit_status == 1 and crawler.stats.get_value("finish_reason") == "start_error"
    assert "Cannot start: " in caplog.text and "Traceback" not in caplog.text
