"""Layout drift of saved pages: ``python -m crawler.drift_report PAGE.html… [--baseline]``.

For each layout and kind of page (current/title, legacy/person…), how many
pages had each field's first source, how many fell back, how many lacked the
field; then what drifted against the fixture pages (a field falling back on
more than ``--max-fallback`` of the pages, a first source that vanished).
Exit status 1 when something drifted. ``--baseline`` prints the tally as JSON
instead: how ``crawler/parsing/drift_baseline.json`` is made from the fixtures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crawler.extract import read_html
from crawler.parsing.drift import observe, problems, tally
from crawler.parsing.limits import PageError
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.drift_report", description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--baseline", action="store_true", help="print the tally as JSON (the committed baseline)")
    parser.add_argument("--max-fallback", type=float, default=0.5, help="share of pages a field may fall back on")
    args = parser.parse_args(argv)
    observations = []
    for path in args.pages:
        try:
            page = parse_page(read_html(path), None)
            observations.append((page.layout, page.kind, observe(page, load_item(page))))
        except (OSError, PageError) as exc:
            print(f"ERROR {path}: {exc}", file=sys.stderr)
    totals = tally(observations)
    if args.baseline:
        print(json.dumps(totals, indent=1, sort_keys=True))
        return 0
    for group, counts in sorted(totals.items()):
        print(f"{group}: {counts['pages']} pages")
        for field, seen in sorted(counts["fields"].items()):
            counts_line = "  ".join(f"{verdict} {seen[verdict]:>4}" for verdict in ("primary", "fallback", "missing"))
            print(f"  {field:<18} {counts_line}")
    drifted = problems(totals, None, args.max_fallback, min_pages=1)
    for problem in drifted:
        print(f"DRIFT {problem}")
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
