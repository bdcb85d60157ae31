"""Crawl rate vs ``scrapy bench``, side by side on this machine.

    python bench/crawl.py [--pages 3000]

* **scrapy bench**: Scrapy's own benchmark (a local server of link pages and a
  spider that only follows links), run from an empty folder; its pages/min.
* **ours**: ``scrapy crawl imdb`` over the demo site's synthetic graph of
  ``--pages`` real-sized pages, with parsing, item loaders, validation and the
  MongoDB writer into an embedded server (memory engine, its own process);
  pages/min from the crawl's own stats. Politeness delays are off for both.

Prints both and one JSON line with ``crawl_rate_vs_scrapy_bench``. Also prints
the rate of a crawl of the fixture site (30 pages plus their dangling links).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from crawler.site import DemoSite  # noqa: E402


def scrapy_bench() -> float:
    """Median pages/min that ``scrapy bench`` reports over its 10-second run."""
    with tempfile.TemporaryDirectory() as empty:
        result = subprocess.run(
            [sys.executable, "-m", "scrapy", "bench"], cwd=empty, capture_output=True, text=True, timeout=120
        )
    rates = [float(r) for r in re.findall(r"at (\d+) pages/min", result.stderr)]
    rates = [r for r in rates if r > 0]
    if not rates:
        raise RuntimeError(f"scrapy bench printed no rate:\n{result.stderr[-2000:]}")
    return statistics.median(rates)


def start_mongo() -> tuple[subprocess.Popen, str]:
    """The embedded server (memory engine) in its own process, and its URI."""
    server = subprocess.Popen(
        [sys.executable, "-m", "crawler.mongo", "--memory"], cwd=PROJECT, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def our_crawl(base_url: str, extra: list[str]) -> dict[str, Any]:
    server, uri = start_mongo()
    try:
        with tempfile.TemporaryDirectory() as spool:
            result = subprocess.run(
                [
                    sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap",
                    "-s", f"IMDB_BASE_URL={base_url}", "-s", f"MONGODB_URI={uri}",
                    "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
                    "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16", "-s", "ROBOTSTXT_OBEY=False",
                    "-s", f"MONGODB_SPOOL_DIR={spool}", "-s", "LOG_LEVEL=INFO", *extra,
                ],
                cwd=PROJECT, capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    pages = int(re.search(r"'response_received_count': (\d+)", result.stderr).group(1))  # type: ignore[union-attr]
    items = int(re.search(r"'item_scraped_count': (\d+)", result.stderr).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"'elapsed_time_seconds': ([\d.]+)", result.stderr).group(1))  # type: ignore[union-attr]
    return {"pages": pages, "items": items, "seconds": seconds, "pages_per_min": pages / seconds * 60}


def run(pages: int) -> dict[str, Any]:
    baseline = scrapy_bench()
    with DemoSite(synthetic=pages) as site:
        synthetic = our_crawl(site.base_url, ["-a", "depth=1000", "-a", f"max_pages={pages}"])
    with DemoSite() as site:
        fixtures = our_crawl(site.base_url, ["-a", "depth=2"])
    again = scrapy_bench()  # measured before and after: the machine's noise shows in the spread
    return {
        "scrapy_bench_pages_per_min": [round(baseline), round(again)],
        "synthetic": synthetic,
        "fixture_site": fixtures,
        "crawl_rate_vs_scrapy_bench": round(synthetic["pages_per_min"] / statistics.mean([baseline, again]), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000)
    args = parser.parse_args()
    result = run(args.pages)
    print(f"scrapy bench: {result['scrapy_bench_pages_per_min']} pages/min (before, after)")
    for name in ("synthetic", "fixture_site"):
        r = result[name]
        print(f"imdb crawl ({name}): {r['pages']} pages, {r['items']} items in {r['seconds']:.1f}s "
              f"= {r['pages_per_min']:.0f} pages/min")  # fmt: skip
    print(json.dumps({"crawl_rate_vs_scrapy_bench": result["crawl_rate_vs_scrapy_bench"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
