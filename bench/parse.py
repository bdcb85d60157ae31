"""Parse cost against the true limits, and against a peer parser, side by side.

    python bench/parse.py [--rounds N] [--peers PYTHON]

On the real IMDb pages the project keeps in ``imdb_pages/``:

* **current layout** (all 14 title pages): ours, ``load_item(parse_page(html))``
  (the full typed item), vs the **JSON limit**: slicing ``__NEXT_DATA__`` out
  of the page and ``json.loads`` of it, the least any parser of these pages
  must do. Key ``parse_time_vs_json_limit``.
* **legacy layout** (all 26 pages): ours vs ``lxml.html.fromstring`` alone,
  the DOM any parser of those pages builds. Key ``legacy_parse_vs_lxml``.
* **cinemagoerng** (``--peers``, the interpreter of ``bench/.venv-peers``: it
  pins lxml 5.4, ours uses 6): on the current title pages it can read, its
  ``title_reference`` spec vs ours. Key ``parse_speedup_vs_cinemagoerng``; and
  the older ``parse_time_vs_floor`` (ours vs lxml DOM + ``json.loads``).

Rounds interleave the contestants so machine noise hits them alike; each figure is the median round. Prints a
table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.parsing.pages.base import script_text

BENCH = Path(__file__).resolve().parent
FIXTURES = BENCH.parent / "imdb_pages"


def pages(layout: str, pattern: str = "*.html") -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8-sig") for p in sorted((FIXTURES / layout).glob(pattern))}


def ours(html: str) -> Any:
    return load_item(parse_page(html))


def json_limit(html: str) -> Any:
    text, _ = script_text(html, 'id="__NEXT_DATA__"')
    return json.loads(text or "null")


def lxml_dom(html: str) -> Any:
    return lxml.html.fromstring(html)


def dom_and_json(html: str) -> Any:
    tree = lxml.html.fromstring(html)
    return json.loads(tree.xpath('//script[@id="__NEXT_DATA__"]/text()')[0])


def timed(func: Callable[[str], Any], docs: list[str], clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    for doc in docs:
        func(doc)
    return clock() - start


def interleaved(contestants: dict[str, Callable[[str], Any]], docs: list[str], rounds: int) -> dict[str, float]:
    """CPU seconds per page of each contestant (this process's, ``time.process_time``: what a noisy
    neighbour takes from the machine does not count): the median of its rounds, rounds interleaved."""
    for func in contestants.values():
        timed(func, docs[:2])  # warm up imports and caches
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, func in contestants.items():
            times[name].append(timed(func, docs, time.process_time))
    return {name: statistics.median(seconds) / len(docs) for name, seconds in times.items()}


def cinemagoerng(peers: str, rounds: int) -> dict[str, Any]:
    """cinemagoerng's seconds per readable page (timed in its own interpreter) and ours on the same pages."""
    paths = sorted((FIXTURES / "current").glob("tt*.html"))
    warm = subprocess.run(
        [peers, str(BENCH / "peers.py"), *map(str, paths)], capture_output=True, text=True, check=True
    )
    unreadable = json.loads(warm.stdout)["unreadable"]
    readable = [p for p in paths if p.stem not in unreadable]
    docs = [p.read_text(encoding="utf-8-sig") for p in readable]
    theirs = ours_total = floor_total = 0.0
    for _ in range(rounds):
        out = subprocess.run([peers, str(BENCH / "peers.py"), *map(str, readable)], capture_output=True, text=True,
                             check=True)  # fmt: skip
        theirs += json.loads(out.stdout)["seconds"]
        ours_total += timed(ours, docs)
        floor_total += timed(dom_and_json, docs)
    count = len(docs) * rounds
    return {"pages": len(docs), "unreadable": unreadable, "theirs": theirs / count, "ours": ours_total / count,
            "floor": floor_total / count}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds against cinemagoerng (each in a subprocess)")
    parser.add_argument("--limit-rounds", type=int, default=15, help="rounds against the JSON and lxml limits")
    parser.add_argument("--peers", help="python of bench/.venv-peers (cinemagoerng); left out when not given")
    args = parser.parse_args()
    current = list(pages("current", "tt*.html").values())
    legacy = list(pages("legacy").values())
    on_current = interleaved({"ours": ours, "json_limit": json_limit}, current, args.limit_rounds)
    on_legacy = interleaved({"ours": ours, "lxml": lxml_dom}, legacy, args.limit_rounds)
    result: dict[str, Any] = {
        "parse_time_vs_json_limit": round(on_current["ours"] / on_current["json_limit"], 2),
        "legacy_parse_vs_lxml": round(on_legacy["ours"] / on_legacy["lxml"], 2),
    }
    rounds = args.limit_rounds
    print(f"current layout, {len(current)} title pages × {rounds} rounds: ours {on_current['ours'] * 1e3:.2f} "
          f"ms/page, slice + json.loads {on_current['json_limit'] * 1e3:.2f} ms/page")  # fmt: skip
    print(f"legacy layout, {len(legacy)} pages × {rounds} rounds: ours {on_legacy['ours'] * 1e3:.2f} ms/page, "
          f"lxml.html.fromstring {on_legacy['lxml'] * 1e3:.2f} ms/page")  # fmt: skip
    if args.peers:
        peer = cinemagoerng(args.peers, args.rounds)
        print(f"cinemagoerng, {peer['pages']} pages it can read: {peer['theirs'] * 1e3:.2f} ms/page, ours "
              f"{peer['ours'] * 1e3:.2f}, lxml DOM + json.loads {peer['floor'] * 1e3:.2f}")  # fmt: skip
        for page_id, reason in peer["unreadable"].items():
            print(f"  cinemagoerng cannot read {page_id}: {reason}")
        result["parse_speedup_vs_cinemagoerng"] = round(peer["theirs"] / peer["ours"], 2)
        result["parse_time_vs_floor"] = round(peer["ours"] / peer["floor"], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
