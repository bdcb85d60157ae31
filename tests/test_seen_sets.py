"""Bounded-memory seen-sets: the Bloom dupe filter and the frontier journal."""

from __future__ import annotations

from pathlib import Path

from scrapy import Request
from scrapy.utils.request import RequestFingerprinter

from crawler.runtime.dupefilter import BloomDupeFilter
from crawler.runtime.frontier import Frontier


def test_bloom_dupefilter_sees_each_request_once_and_survives_a_pause(tmp_path: Path) -> None:
    path = tmp_path / "seen.bloom"
    first = BloomDupeFilter(RequestFingerprinter(), capacity=10_000, error_rate=1e-6, path=path)
    urls = [f"https://www.imdb.com/title/tt{n:07d}/" for n in range(5000)]
    assert not any(first.request_seen(Request(u)) for u in urls)
    assert all(first.request_seen(Request(u)) for u in urls)
    first.close("shutdown")
    resumed = BloomDupeFilter(RequestFingerprinter(), capacity=10_000, error_rate=1e-6, path=path)
    assert all(resumed.request_seen(Request(u)) for u in urls)
    fresh = [f"https://www.imdb.com/name/nm{n:07d}/" for n in range(5000)]
    assert sum(resumed.request_seen(Request(u)) for u in fresh) <= 1  # false positives: about 0.005 expected


def test_bloom_memory_is_fixed_by_capacity() -> None:
    small = BloomDupeFilter(RequestFingerprinter(), capacity=1_000_000, error_rate=1e-6)
    assert small.bloom.size_in_bits / 8 / 1_000_000 < 4  # bytes per key, whatever is added


def test_frontier_journal_resumes_unfinished_pages(tmp_path: Path) -> None:
    frontier = Frontier(tmp_path, capacity=1000)
    for n, page_id in enumerate(["tt0000001", "tt0000002", "nm0000003"]):
        frontier.schedule(page_id, depth=n)
    frontier.finish(["tt0000001"])
    frontier.close()
    with open(tmp_path / "imdb-frontier.jsonl", "a") as journal:
        journal.write('{"id": "tt00000')  # the line a kill -9 cut short
    resumed = Frontier(tmp_path, capacity=1000)
    assert resumed.pending() == [("tt0000002", 1), ("nm0000003", 2)]
    assert resumed.pending() == []  # handed out once
    assert "tt0000001" in resumed and "tt0000009" not in resumed and len(resumed) == 3
    resumed.close()


def test_frontier_without_jobdir_writes_nothing(tmp_path: Path) -> None:
    frontier = Frontier(None, capacity=100)
    frontier.schedule("tt0000001", 0)
    frontier.finish(["tt0000001"])
    assert "tt0000001" in frontier and list(tmp_path.iterdir()) == []
