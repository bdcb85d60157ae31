"""What the database holds: ``python -m crawler.summary [--uri URI]``.

Prints the number of titles and people stored and the counts of the latest
crawl run (new, updated, unchanged, not found, failed).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from crawler.storage.connection import connect, database_name
from crawler.storage.secrets import redact


def summarize(uri: str) -> dict[str, Any]:
    """Counts from the ``titles``, ``people`` and ``crawl_runs`` collections."""
    client = connect(uri)
    try:
        db = client[database_name(uri)]
        last_run = db.crawl_runs.find_one(sort=[("started", -1)]) or {}
        return {
            "database": f"{redact(uri)}",
            "titles": db.titles.count_documents({}),
            "people": db.people.count_documents({}),
            "runs": db.crawl_runs.count_documents({}),
            "last_run": last_run,
        }
    finally:
        client.close()


def render(summary: dict[str, Any]) -> str:
    """What the database holds, and what the last run did: pages stored, not found, not stored, and its verdict."""
    run = summary["last_run"]
    lines = [
        f"Stored in {summary['database']}: {summary['titles']} titles, {summary['people']} people "
        f"({summary['runs']} crawl runs recorded)",
    ]
    if not run:
        return "\n".join(lines)
    items = run.get("items", {})
    stored = sum(items.get(k, 0) for k in ("new", "changed", "unchanged"))
    dropped = sum((items.get("dropped") or {}).values()) + sum((items.get("write_failed") or {}).values())
    lost = sum((items.get("lost") or {}).values())
    failed = [m["monitor"] for m in run.get("monitors", []) if not m["ok"]]
    took = run["finished"] - run["started"] if run.get("finished") and run.get("started") else None
    verdict = ("monitors failed: " + ", ".join(failed)) if failed else "monitors all passed"
    lines += [
        f"Last run {run['_id'][:8]} ({run.get('finish_reason') or run.get('status')}"
        f"{f', {took.total_seconds():.0f} s' if took else ''}; {verdict})",
        f"  pages stored:     {stored} ({items.get('new', 0)} new, {items.get('changed', 0)} updated, "
        f"{items.get('unchanged', 0)} unchanged)",
        f"  pages not found:  {run.get('not_found', 0)}",
        f"  not stored:       {run.get('blocked', 0)} blocked, {run.get('failed_pages', 0)} failed, {dropped} dropped, "
        f"{lost} lost; {items.get('spooled', 0)} waiting in the spool",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.summary", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MONGODB_URI"), help="MongoDB URI (default: $MONGODB_URI)")
    args = parser.parse_args(argv)
    if not args.uri:
        parser.error("no MongoDB URI: pass --uri or set MONGODB_URI")
    print(render(summarize(args.uri)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
