"""Parse throughput: our parser vs cinemagoerng vs the floor, side by side.

    python bench/parse.py [--rounds N]

On the current-layout title pages of ``../shared/fixtures/imdb``:

* **ours**: ``load_item(parse_page(html))``, the full typed item;
* **cinemagoerng**: its ``title_reference`` spec applied to the same text
  (``spec.scrape(document, doctype=…)`` then ``deserialize`` into ``model.Title``),
  the way ``cinemagoerng.web.get_title`` does after fetching;
* **floor**: ``lxml.html.fromstring`` of the page plus ``json.loads`` of
  ``__NEXT_DATA__``, the least any DOM-based parser of these pages does.

Rounds interleave the three so machine noise hits them alike. Prints a table
and ends with one JSON line of ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "imdb"


def pages() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted((FIXTURES / "current").glob("tt*.html"))}


def ours(html: str) -> Any:
    return load_item(parse_page(html))


def floor(html: str) -> Any:
    tree = lxml.html.fromstring(html)
    return json.loads(tree.xpath('//script[@id="__NEXT_DATA__"]/text()')[0])


def cinemagoerng_parser() -> Callable[[str], Any]:
    from cinemagoerng import model, web

    spec = web._spec("title_reference")

    def parse(html: str) -> Any:
        return web.deserialize(spec.scrape(html, doctype=spec.doctype), model.Title)

    return parse


def timed(func: Callable[[str], Any], docs: list[str]) -> float:
    start = time.perf_counter()
    for doc in docs:
        func(doc)
    return time.perf_counter() - start


def run(rounds: int) -> dict[str, Any]:
    texts = pages()
    cng = cinemagoerng_parser()
    readable, unreadable = {}, {}
    for page_id, html in texts.items():
        try:
            cng(html)
            readable[page_id] = html
        except Exception as exc:
            unreadable[page_id] = f"{type(exc).__name__}: {str(exc)[:80]}"
    docs = list(readable.values())
    for func in (ours, floor, cng):  # warm up imports and caches
        timed(func, docs[:2])
    totals = {"ours": 0.0, "cinemagoerng": 0.0, "floor": 0.0}
    for _ in range(rounds):
        totals["ours"] += timed(ours, docs)
        totals["cinemagoerng"] += timed(cng, docs)
        totals["floor"] += timed(floor, docs)
    count = len(docs) * rounds
    rates = {name: count / seconds for name, seconds in totals.items()}
    return {
        "pages": len(docs),
        "rounds": rounds,
        "pages_per_second": {k: round(v, 1) for k, v in rates.items()},
        "cinemagoerng_unreadable": unreadable,
        "parse_speedup_vs_cinemagoerng": round(rates["ours"] / rates["cinemagoerng"], 2),
        "parse_time_vs_floor": round(totals["ours"] / totals["floor"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = run(args.rounds)
    print(f"{result['pages']} current-layout title pages × {result['rounds']} rounds")
    for name, rate in result["pages_per_second"].items():
        print(f"  {name:<14} {rate:>8.1f} pages/s")
    for page_id, reason in result["cinemagoerng_unreadable"].items():
        print(f"  cinemagoerng cannot read {page_id}: {reason}")
    print(json.dumps({k: result[k] for k in ("parse_speedup_vs_cinemagoerng", "parse_time_vs_floor")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
