"""``make bench``: every benchmark, side by side in one run, then ONE JSON line.

Runs ``bench/parse.py``, ``bench/pipeline.py``, ``bench/pipeline_cpu.py``,
``bench/crawl.py``, ``bench/seen_set.py`` and ``bench/browser.py`` in turn (each measures its own
baseline in the same run) and prints their outputs, then one JSON line with the
ratios and the goals.
``bench/memory.py`` (a long synthetic crawl) is run separately.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SWEEP = "1x2,1x4,1x6,2x2,2x4,3x2"  # browser contexts x pages at a time in each
RUNS = [
    ("parse.py", ["--rounds", "5"]),
    ("pipeline.py", ["-n", "2000", "--rounds", "2"]),
    ("pipeline_cpu.py", ["--rounds", "20"]),
    ("crawl.py", ["--pages", "3000"]),
    ("seen_set.py", []),
    # Pages as heavy as IMDb's, at the best of a few concurrencies measured first (contexts x pages in each). 1 000
    # pages: at ~650 pages/min, 500 lasted 45 s, two memory samples a fifth (one every 5 s), and no context replaced.
    ("browser.py", ["--pages", "1000", "--heavy", "10", "--burn-ms", "120", "--sweep", SWEEP, "--sweep-pages", "120"]),
]
GOALS = {
    "parse_time_vs_json_limit": "<= 1.0",
    "legacy_parse_vs_lxml": "<= 1.5",
    "parse_speedup_vs_cinemagoerng": ">= 1.5",
    "parse_time_vs_floor": "<= 1.3",
    "crawl_rate_vs_scrapy_bench": ">= 0.4",
    "crawl_rate_vs_fetch_only": ">= 0.9",
    "pipeline_time_vs_raw_pymongo": "<= 1.2",
    "pipeline_cpu_vs_parse_cpu": "<= 0.1",
    "seen_set_bytes_per_key": "<= 32",
    "seen_bytes_per_possible_id": "<= 0.25",
    "browser_pages_per_min": ">= 176 (1.8 x 98, the rate before the document-only route, same weight)",
    "browser_concurrency": "(shown: the best of the sweep)",
    "browser_rss_growth": "within ±0.15",
    "browser_rate_vs_raw_playwright": ">= 0.8",
    "browser_rate_vs_document_playwright": ">= 0.85",
    "browser_document_only_speedup": ">= 1.8",
    "browser_plain_requests_after_switch": "<= browser_plain_requests_allowed (pages in flight + probes)",
    "browser_plain_requests_allowed": "(shown)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", required=True, help="python of bench/.venv-peers (make bench makes it)")
    options = parser.parse_args()
    results: dict[str, float] = {}
    for script, args in RUNS:
        if script == "parse.py":
            args = [*args, "--peers", options.peers]
        print(f"== {script} {' '.join(args)}", flush=True)
        out = subprocess.run(
            [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, check=True
        ).stdout
        print(out.rstrip(), flush=True)
        results.update(json.loads(out.strip().splitlines()[-1]))
    line = {key: results.get(key) for key in GOALS}
    print(json.dumps({**line, "goals": GOALS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
