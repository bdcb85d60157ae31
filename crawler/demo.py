"""The demo job: crawl the local fixture site into MongoDB and print what was stored.

``python -m crawler.demo [--layout current|legacy] [--depth N]`` starts the
demo site and, unless ``MONGODB_URI`` is set, the embedded MongoDB server
(SQLite files under ``var/mongo/``); runs ``scrapy crawl imdb`` seeded from the
site's own page list, following recommendations and cast; prints a summary;
stops what it started. Run twice, the second run adds no documents.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from crawler.demo_site import DEFAULT_ROOT, LAYOUTS, DemoSite
from crawler.embedded_mongo import DataDirectoryBusy, EmbeddedMongo
from crawler.report import collect
from crawler.report import render as render_report
from crawler.storage.secrets import redact
from crawler.summary import render, summarize

PROJECT = Path(__file__).resolve().parent.parent


def crawl_command(base_url: str, uri: str, depth: int, extra: list[str]) -> list[str]:
    """``scrapy crawl imdb`` against the local site, without real-site politeness delays."""
    return [
        sys.executable, "-m", "scrapy", "crawl", "imdb",
        "-a", "start=sitemap", "-a", f"depth={depth}",
        "-s", f"IMDB_BASE_URL={base_url}",
        "-s", f"MONGODB_URI={uri}",
        "-s", "AUTOTHROTTLE_ENABLED=False",
        "-s", "DOWNLOAD_DELAY=0",
        "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
        "-s", "LOG_LEVEL=INFO",
        *extra,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=LAYOUTS, default="current")
    parser.add_argument("--root", default=str(DEFAULT_ROOT))
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--log", default="var/demo-crawl.log", help="where the crawl's log goes")
    parser.add_argument("scrapy_args", nargs="*", help="extra arguments for scrapy crawl (after --)")
    args = parser.parse_args(argv)

    uri = os.environ.get("MONGODB_URI", "")
    embedded = None
    with DemoSite(args.root, args.layout) as site:
        if not uri:
            embedded = EmbeddedMongo(os.environ.get("MONGODB_EMBEDDED_PATH", "var/mongo/imdb.sqlite"))
            try:
                uri = embedded.start()
            except DataDirectoryBusy as exc:
                print(f"python -m crawler.demo: {exc}", file=sys.stderr)
                return 1
        try:
            print(f"Demo site {site.base_url} ({len(site.pages)} pages); MongoDB {redact(uri)}", flush=True)
            Path(args.log).parent.mkdir(parents=True, exist_ok=True)
            with open(args.log, "w", encoding="utf-8") as log:
                result = subprocess.run(
                    crawl_command(site.base_url, uri, args.depth, args.scrapy_args),
                    cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
            print(f"Crawl finished with exit status {result.returncode} (log: {args.log})")
            summary = summarize(uri)
            print(render(summary))
            missing = summary["last_run"].get("not_found", 0)
            if missing:
                print(f"  (the demo site serves {len(site.pages)} saved pages: the {missing} links to other titles and "
                      "people lead to pages it does not have, counted as not found, not as errors)")  # fmt: skip
            report = Path("var/report.html")
            report.write_text(render_report(collect(uri)), encoding="utf-8")
            print(f"Report with charts: {report}")
            return result.returncode
        finally:
            if embedded:
                embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
