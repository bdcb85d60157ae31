"""Times cinemagoerng on saved pages; runs in its own environment (``bench/.venv-peers``, see ``make bench``).

    bench/.venv-peers/bin/python bench/peers.py PAGE.html… [--rounds N]

cinemagoerng's ``title_reference`` spec applied to each page's text, then
``deserialize`` into ``model.Title``: what ``cinemagoerng.web.get_title`` does
after fetching. Prints one JSON line: the seconds spent on the pages it can
read (after a warm-up), and why it cannot read the others.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    from cinemagoerng import model, web

    spec = web._spec("title_reference")

    def parse(html: str) -> object:
        return web.deserialize(spec.scrape(html, doctype=spec.doctype), model.Title)

    readable, unreadable = [], {}
    for path in args.pages:
        html = path.read_text(encoding="utf-8")
        try:
            parse(html)
            readable.append(html)
        except Exception as exc:  # its model refuses the page: reported, left out of the timing
            unreadable[path.stem] = f"{type(exc).__name__}: {str(exc)[:80]}"
    start = time.perf_counter()
    for _ in range(args.rounds):
        for html in readable:
            parse(html)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "pages": len(readable), "unreadable": unreadable}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
