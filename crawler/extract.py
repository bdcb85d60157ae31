"""Offline extraction: ``python -m crawler.extract PAGE.html [PAGE.html …] [--coverage]``.

Prints, one JSON object per line, exactly the document the pipeline would
store for each page (without crawl metadata). A page that cannot be read
(empty, truncated, not UTF-8, not an IMDb title or name page, over a bound)
gets an ``ERROR`` line on stderr with its reason, a parser bug its traceback,
and the other pages still print; the exit status is 1 when any page failed.
``--coverage`` prints instead, per field, on how many pages it was found.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from crawler.parsing.loaders import load_item
from crawler.parsing.pages import PageError, parse_page
from crawler.storage.documents import has_value, to_document


def read_html(path: Path) -> str:
    """The page's text; UTF-8 only (a byte-order mark is allowed)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PageError(f"not UTF-8 (byte {exc.start})", reason="not_text") from None


def document_for(path: Path) -> dict[str, Any]:
    """The stored document for a saved page."""
    _, document = to_document(load_item(parse_page(read_html(path), None)))
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.extract", description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--coverage", action="store_true", help="print per-field coverage instead of documents")
    args = parser.parse_args(argv)
    failed = 0
    found: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for path in args.pages:
        try:
            document = document_for(path)
        except PageError as exc:
            failed += 1
            print(f"ERROR {path}: {exc} ({exc.reason})", file=sys.stderr, flush=True)
            continue
        except OSError as exc:
            failed += 1
            print(f"ERROR {path}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            continue
        except Exception:  # a bug of ours: say so, with the traceback, and go on with the other pages
            failed += 1
            print(f"ERROR {path}: parser bug\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            continue
        kind = "person" if document["_id"].startswith("nm") else "title"
        if args.coverage:
            totals[kind] += 1
            counter = found.setdefault(kind, Counter())
            counter.update(k for k, v in document.items() if has_value(v))
        else:
            print(json.dumps(document, ensure_ascii=False), flush=True)
    if args.coverage:
        for kind, counter in found.items():
            print(f"{kind} pages: {totals[kind]}")
            for name, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
                print(f"  {name:<20} {count:>4}/{totals[kind]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
