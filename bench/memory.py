"""Crawler memory on a large crawl: resident memory sampled along a synthetic-graph crawl.

    python bench/memory.py [--pages 200000] [--interval 10] [--synthetic-layout current]

Serves a synthetic graph of ``--pages`` pages (demo site), crawls it with
``scrapy crawl imdb`` (exact seen bitmaps, ``JOBDIR`` so the request queue lives
on disk, writer into an embedded MongoDB in its own process) and samples the
crawler process's RSS. Prints the samples and one JSON line with the RSS after
the first tenth of the crawl, at the end, their ratio, the median of each tenth of
the run and their largest distance from the first tenth's (flat: within ±0.10),
and the largest distance of any single later sample.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.crawl import start_mongo  # noqa: E402
from crawler.demo_site import DemoSite  # noqa: E402


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return None


def summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    """The figures of a run's ``(seconds, MB)`` samples.

    Flat: the median of each later tenth of the run within ±0.10 of the first tenth's
    (``rss_max_distance_of_tenth_medians``). Single samples are shown too: they move with
    what is in flight at that instant (a batch of 1.8 MB pages, responses waiting for a CPU).
    """
    elapsed = samples[-1][0] if samples else 0.0
    if not elapsed:
        return {"seconds": 0}
    early = next((mb for t, mb in samples if t >= elapsed / 10), samples[0][1])
    late = max(mb for _, mb in samples[-3:])
    later = [mb for t, mb in samples if t >= elapsed / 10]
    tenths = [[mb for t, mb in samples if min(9, int(10 * t / elapsed)) == k] for k in range(10)]
    medians = [statistics.median(tenth) if tenth else 0.0 for tenth in tenths]
    return {
        "seconds": round(elapsed),
        "rss_mb_after_first_tenth": round(early, 1),
        "rss_mb_at_end": round(late, 1),
        "rss_growth": round(late / early, 2),
        "rss_median_mb_by_tenth": [round(m) for m in medians],
        "rss_max_distance_of_tenth_medians": round(max(abs(m / medians[0] - 1) for m in medians[1:] if m), 3),
        "rss_max_mb_by_tenth": [round(max(tenth, default=0)) for tenth in tenths],
        "rss_max_distance_after_first_tenth": round(max(abs(mb / early - 1) for mb in later), 3),
    }


def samples_of(log: Path) -> list[tuple[float, float]]:
    """The samples printed by a run (``  1234s   187.2 MB`` lines), e.g. its saved output."""
    found = re.findall(r"^\s*(\d+)s\s+([\d.]+) MB$", log.read_text(), re.M)
    return [(float(t), float(mb)) for t, mb in found]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--synthetic-layout", choices=("current", "legacy"), help="a graph of one layout's pages only")
    parser.add_argument("--from-log", type=Path, help="no crawl: the figures of a run's saved output")
    args = parser.parse_args()
    if args.from_log:
        print(json.dumps({"pages": args.pages, **summary(samples_of(args.from_log))}))
        return 0
    mongo, uri = start_mongo()
    samples: list[tuple[float, float]] = []
    try:
        site = DemoSite(synthetic=args.pages, synthetic_layout=args.synthetic_layout)
        with site, tempfile.TemporaryDirectory() as work:
            crawl = subprocess.Popen(
                [
                    sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap",
                    "-a", "depth=100000", "-a", f"max_pages={args.pages}",
                    "-s", f"IMDB_BASE_URL={site.base_url}", "-s", f"MONGODB_URI={uri}",
                    "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "ROBOTSTXT_OBEY=False",
                    "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16", "-s", f"JOBDIR={work}/job",
                    "-s", f"MONGODB_SPOOL_DIR={work}/spool", "-s", "LOG_LEVEL=WARNING",
                ],
                cwd=PROJECT,
            )  # fmt: skip
            start = time.monotonic()
            while crawl.poll() is None:
                value = rss_mb(crawl.pid)
                if value:
                    samples.append((time.monotonic() - start, value))
                    print(f"  {samples[-1][0]:7.0f}s  {value:7.1f} MB", flush=True)
                time.sleep(args.interval)
            if crawl.returncode != 0:
                raise SystemExit(f"crawl failed with status {crawl.returncode}")
    finally:
        mongo.terminate()
        mongo.wait()
    print(json.dumps({"pages": args.pages, **summary(samples)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
