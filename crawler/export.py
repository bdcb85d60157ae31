"""Export a collection for other tools: ``python -m crawler.export --collection titles --format csv``.

    python -m crawler.export --collection titles|people|changes --format jsonl|csv
                             [--query JSON] [--uri URI] [--out FILE]

* **jsonl**: one document per line in MongoDB Extended JSON (relaxed): dates
  are ``{"$date": "2026-11-26T18:00:00Z"}``, everything else plain JSON.
* **csv**: stable columns (the collection's schema, in order: the same header
  whatever the documents hold), dates in ISO 8601 UTC, lists and objects as
  JSON text (``["Action", "Sci-Fi"]``), null as an empty cell. A text cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
  leading ``'``: a spreadsheet would run it as a formula (CSV injection), and
  titles are written by strangers. ``--raw-text`` writes them as they are, for
  programs that never open the file in a spreadsheet.

Documents are streamed (constant memory); ``--query`` is a MongoDB filter in
JSON (Extended JSON for dates: ``{"last_seen": {"$gte": {"$date": "…"}}}``).
Without ``--out``, the export goes to standard output. docs/consumers.md
shows how to load either into pandas.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from bson import json_util
from bson.json_util import JSONMode, JSONOptions

from crawler.storage.connection import connect, database_name
from crawler.storage.schema import SCHEMAS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula
RELAXED = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True)
CHANGES_COLUMNS = ["_id", "imdb_id", "collection", "time", "crawl_run_id", "fields"]
COLLECTIONS = ("titles", "people", "changes")


def columns(collection: str) -> list[str]:
    """The CSV header of a collection: its schema's fields in order, then the storage metadata."""
    if collection == "changes":
        return CHANGES_COLUMNS
    fields = list(SCHEMAS[collection]["properties"])
    return fields + [f for f in ("first_seen", "last_seen", "last_changed", "crawl_run_id") if f not in fields]


def cell(value: Any, raw_text: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if raw_text or not value.startswith(FORMULA_STARTS) else "'" + value
    if isinstance(value, datetime):  # BSON dates hold milliseconds: one format for every cell
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=lambda v: cell(v) if isinstance(v, datetime) else str(v))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(documents: Iterator[dict[str, Any]], collection: str, out: TextIO, raw_text: bool = False) -> int:
    header = columns(collection)
    writer = csv.writer(out)
    writer.writerow(header)
    count = 0
    for document in documents:
        writer.writerow([cell(document.get(name), raw_text) for name in header])
        count += 1
    return count


def write_jsonl(documents: Iterator[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for document in documents:
        out.write(json_util.dumps(document, json_options=RELAXED, ensure_ascii=False) + "\n")
        count += 1
    return count


def export(uri: str, collection: str, fmt: str, query: dict[str, Any], out: TextIO, raw_text: bool = False) -> int:
    """Write the matching documents to ``out``; how many were written."""
    client = connect(uri)
    try:
        cursor = client[database_name(uri)][collection].find(query, batch_size=500).sort("_id", 1)
        return write_csv(cursor, collection, out, raw_text) if fmt == "csv" else write_jsonl(cursor, out)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.export", description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=COLLECTIONS, required=True)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--query", default="{}", help="a MongoDB filter, in (Extended) JSON")
    parser.add_argument("--uri", default=os.environ.get("MONGODB_URI", ""), help="default: $MONGODB_URI")
    parser.add_argument("--out", help="a file; default: standard output")
    parser.add_argument("--raw-text", action="store_true", help="csv: text cells as they are (no ' before =, +, -, @)")
    args = parser.parse_args(argv)
    if not args.uri:
        parser.error("no MongoDB URI: give --uri or set MONGODB_URI")
    try:
        query = json_util.loads(args.query, json_options=RELAXED)
    except ValueError as exc:
        parser.error(f"--query is not JSON: {exc}")
    if not isinstance(query, dict):
        parser.error("--query must be a JSON object (a MongoDB filter)")
    if args.out:
        try:
            out = open(args.out, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        except OSError as exc:
            parser.error(f"--out {args.out}: cannot write there ({exc.strerror or exc})")
        with out:
            count = export(args.uri, args.collection, args.format, query, out, args.raw_text)
        print(f"{count} {args.collection} written to {args.out}", file=sys.stderr)
    else:
        export(args.uri, args.collection, args.format, query, sys.stdout, args.raw_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
