"""Crawl rate against the most this machine can fetch, and against ``scrapy bench``, side by side.

    python bench/crawl.py [--pages 3000]

* **ours**: ``scrapy crawl imdb`` over the demo site's synthetic graph of
  ``--pages`` real-sized pages, with parsing, item loaders, validation and the
  MongoDB writer into an embedded server (memory engine, its own process);
  pages/min from the crawl's own stats.
* **fetch only** (``bench/fetch_only.py``): a Scrapy spider that fetches the
  same synthetic site with the same settings and follows its links, parsing and
  storing nothing: the most a crawl of this site can do here.
* **scrapy bench**: Scrapy's own benchmark (a local server of tiny link pages
  and a spider that only follows links), run from an empty folder, before and after.

Both graphs are measured: ``current`` (current-layout pages only, as IMDb serves
them today: key ``crawl_rate_vs_fetch_only``, from two runs of each side in the
order fetch only, ours, ours, fetch only) and ``mixed`` (every fixture page,
two thirds legacy: ``crawl_rate_vs_fetch_only_mixed_layouts`` and
``crawl_rate_vs_scrapy_bench``). Politeness delays are off everywhere. Ends with
one JSON line. Also prints the rate of a crawl of the fixture site (30 pages plus
their dangling links).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from crawler.demo_site import DemoSite  # noqa: E402


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
        [sys.executable, "-m", "crawler.embedded_mongo", "--memory"], cwd=PROJECT, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


SAME_SETTINGS = [
    "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16",
    "-s", "ROBOTSTXT_OBEY=False", "-s", "LOG_LEVEL=INFO",
    "-s", "TWISTED_REACTOR=twisted.internet.asyncioreactor.AsyncioSelectorReactor",
    "-s", "DOWNLOADER=crawler.runtime.downloader.Downloader",
]  # fmt: skip


def our_crawl(base_url: str, extra: list[str]) -> dict[str, Any]:
    server, uri = start_mongo()
    try:
        with tempfile.TemporaryDirectory() as spool:
            result = subprocess.run(
                [
                    sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap",
                    "-s", f"IMDB_BASE_URL={base_url}", "-s", f"MONGODB_URI={uri}", *SAME_SETTINGS,
                    "-s", f"MONGODB_SPOOL_DIR={spool}", *extra,
                ],
                cwd=PROJECT, capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return rate_of(result.stderr)


def fetch_only(base_url: str, pages: int) -> dict[str, Any]:
    """``bench/fetch_only.py``: the same site, the same settings, fetching only (run outside the project)."""
    with tempfile.TemporaryDirectory() as empty:
        result = subprocess.run(
            [sys.executable, "-m", "scrapy", "runspider", str(PROJECT / "bench" / "fetch_only.py"),
             "-a", f"base={base_url}", "-a", f"pages={pages}", *SAME_SETTINGS],
            cwd=empty, capture_output=True, text=True, timeout=1800, env={**os.environ, "PYTHONPATH": str(PROJECT)},
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return rate_of(result.stderr)


def rate_of(log: str) -> dict[str, Any]:
    pages = int(re.search(r"'response_received_count': (\d+)", log).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"'elapsed_time_seconds': ([\d.]+)", log).group(1))  # type: ignore[union-attr]
    items = re.search(r"'item_scraped_count': (\d+)", log)
    return {"pages": pages, "items": int(items.group(1)) if items else 0, "seconds": seconds,
            "pages_per_min": pages / seconds * 60}  # fmt: skip


def run(pages: int) -> dict[str, Any]:
    baseline = scrapy_bench()
    crawl_args = ["-a", "depth=1000", "-a", f"max_pages={pages}"]
    runs: dict[str, Any] = {}
    for graph, layout in (("current", "current"), ("mixed", None)):
        # Current layout, the key: A B B A (fetch only, ours, ours, fetch only), each side its mean, so that the
        # machine's drift over the minutes of the runs weighs on both alike (one run each moved the ratio by 0.2).
        order = ("fetch_only", "synthetic", "synthetic", "fetch_only") if graph == "current" else \
            ("fetch_only", "synthetic")  # fmt: skip
        measured: dict[str, list[dict[str, Any]]] = {"fetch_only": [], "synthetic": []}
        for kind in order:
            with DemoSite(synthetic=pages, synthetic_layout=layout) as site:
                run_once = fetch_only(site.base_url, pages) if kind == "fetch_only" else \
                    our_crawl(site.base_url, crawl_args)  # fmt: skip
            measured[kind].append(run_once)
        for kind, results in measured.items():
            runs[f"{kind}_{graph}"] = {**results[-1], "pages_per_min": statistics.mean(
                r["pages_per_min"] for r in results), "each": [round(r["pages_per_min"]) for r in results]}  # fmt: skip
    with DemoSite() as site:
        runs["fixture_site"] = our_crawl(site.base_url, ["-a", "depth=1"])
    again = scrapy_bench()  # measured before and after: the machine's noise shows in the spread
    ratio = {graph: runs[f"synthetic_{graph}"]["pages_per_min"] / runs[f"fetch_only_{graph}"]["pages_per_min"]
             for graph in ("current", "mixed")}  # fmt: skip
    return {
        "scrapy_bench_pages_per_min": [round(baseline), round(again)],
        "runs": runs,
        # The site as IMDb serves it today: current-layout pages only.
        "crawl_rate_vs_fetch_only": round(ratio["current"], 2),
        "crawl_rate_vs_fetch_only_mixed_layouts": round(ratio["mixed"], 2),
        "crawl_rate_vs_scrapy_bench": round(
            runs["synthetic_mixed"]["pages_per_min"] / statistics.mean([baseline, again]), 2
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000)
    args = parser.parse_args()
    result = run(args.pages)
    print(f"scrapy bench: {result['scrapy_bench_pages_per_min']} pages/min (before, after)")
    for name, r in result["runs"].items():
        print(
            f"{name}: {r['pages']} pages, {r['items']} items in {r['seconds']:.1f}s "
            f"= {r['pages_per_min']:.0f} pages/min{' (each run: ' + str(r['each']) + ')' if 'each' in r else ''}"
        )
    keys = ("crawl_rate_vs_scrapy_bench", "crawl_rate_vs_fetch_only", "crawl_rate_vs_fetch_only_mixed_layouts")
    print(json.dumps({key: result[key] for key in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
