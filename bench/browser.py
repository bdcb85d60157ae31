"""The browser path through a challenging site: pages per minute, and whether its memory stays flat.

    python bench/browser.py [--pages 500] [--contexts 2] [--per-context 4] [--sweep 1x4,2x4,3x2]
                            [--raw-pages 150] [--heavy 10 --burn-ms 120]

``scrapy crawl imdb`` with ``PLAYWRIGHT_ENABLED`` over the demo site's
synthetic graph of ``--pages`` pages in ``challenge`` mode (every browser
context passes the script challenge; tokens last 5 minutes, as AWS WAF's
default immunity time). ``--heavy N`` makes the pages as heavy as IMDb's (N
scripts a page that burn ``--burn-ms`` of CPU each when they run and call an
API, a style sheet, an image). Chromium resolves no host but the site's and
its challenge host's (``BROWSER_ONLY_HOSTS``): the machine is offline, and the
pages' own scripts would otherwise wait for DNS timeouts. Every Playwright-alone
baseline runs the crawl's Chromium with the crawl's command line
(``chromium_args``: without Blink's preload scanner, as the crawl reads
documents): the same browser doing the same work.

* ``browser_pages_per_min``: pages answered to the browser per minute, from the
  first page to the last (Chromium's start and the crawl's shutdown excluded, as
  in the baseline), counted by the site.
* ``browser_rss_growth``: memory of the crawl and its Chromium processes
  (proportional set size, shared pages split between processes): the highest
  sample over the last two fifths of the pages against the highest over the two
  before them (the first fifth warms up), minus 1. Flat is within ±0.15. The
  memory of a browser crawl is a sawtooth: each renderer (one per kept page)
  climbs ~3.6 MiB a document until Chromium collects its garbage, at ~200 MiB
  each, and all of them drop together (the whole crawl by 700–1 000 MiB, every
  17–33 s at ~650 pages/min); a context replaced (``BROWSER_CONTEXT_PAGES``)
  starts its renderers again from nothing. What a worker must have is the top of
  that sawtooth, and what leaks raises it: the peaks are compared. Until
  2026-12-05 the medians of the second and the last fifth were: a fifth of 1 000
  pages is about one tooth, so they read where in a tooth each fifth fell, not
  growth (−0.15 to −0.19 in three runs; on one crawl sampled every second, −0.18
  where the peaks were 2 121 and 2 142 MiB, +0.01); printed beside it still,
  with the lowest and highest sample after the first fifth. Sampled every
  ``PSS_EVERY`` seconds: reading the processes' ``smaps_rollup`` costs ~70 ms of
  CPU, which twice a second took 15 % of a core from the crawl being measured
  (and none from the baseline). ``make bench`` crawls 1 000 pages, sampled every
  2.5 s (~15 samples in each half, each half 35–40 s: one or two teeth, and a
  context replaced after 500 pages).

Baselines measured in the same run:

* ``browser_rate_vs_raw_playwright``: against Playwright alone driving the same
  Chromium over the same site and the same pages (the first ``--raw-pages``
  pages the crawl's browser fetched, in its order: pages range from 50 kB to
  1.8 MB, and Chromium's work with them), the same contexts and pages at a
  time, each request routed through Python as scrapy-playwright does, the
  page's HTML read back and its links read, with no Scrapy, parsing or
  MongoDB: the true limit of a browser on this machine. Printed beside it: the
  same without routing, to show what routing every request costs.
* ``browser_rate_vs_plain``: the same crawl with plain HTTP (``normal`` mode).
* ``browser_rate_vs_document_playwright``: against Playwright alone reading each
  of the pages the crawl's browser fetched (all of them, in its order) from its
  final document's response (after the challenge), the page's
  other requests aborted once its document is judged (asked once a
  navigation), each visitor keeping one page and navigating it from URL to
  URL (what the crawl does): the true limit of the route.
  Measured A B B A (the crawl, Playwright alone twice, the crawl again), each
  side its mean; ``browser_pages_per_min`` is the crawl's mean.
* ``browser_concurrency``: contexts x pages at a time in each, given or the best
  of ``--sweep`` (each measured on ``--sweep-pages`` pages, in the same run).
* ``browser_plain_requests_after_switch``: plain page requests the site saw after
  the browser's first, against ``browser_plain_requests_allowed``: the pages in
  flight at the switch and the probes (``routes.probes`` of the run record).
* ``browser_document_only_speedup`` (with ``--heavy``): against the same crawl
  letting the pages' scripts run (``BROWSER_DOCUMENT_ONLY=False``), on
  ``--scripts-pages`` pages (its rate, not its memory, is what is compared).
"""

from __future__ import annotations

import argparse
import asyncio
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

from pymongo import MongoClient  # noqa: E402

from bench.crawl import start_mongo  # noqa: E402
from crawler.demo_site import DemoSite  # noqa: E402


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def pss_mib(pid: int) -> float:
    """Proportional set size of a process tree, MiB (each shared page split among its users)."""
    total = 0
    for process in tree(pid):
        try:
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total / 1024


# The hosts Chromium resolves in the crawl and in every baseline: the demo site's and its challenge host's.
ONLY_HOSTS = ("127.0.0.1", "localhost")
PSS_EVERY = 2.5  # seconds between memory samples of a crawl (~70 ms of CPU each: 2.8 % of a core)


def crawl(
    pages: int,
    contexts: int,
    browser: bool,
    weight: dict[str, int],
    *settings: str,
    per_context: int = 4,
    memory: bool = True,
) -> dict[str, Any]:
    server, uri = start_mongo()
    mode = "challenge" if browser else "normal"
    try:
        with DemoSite(synthetic=pages, mode=mode, token_lifetime=300, **weight) as site, \
                tempfile.TemporaryDirectory() as spool:  # fmt: skip
            command = [
                sys.executable, "-m", "scrapy", "crawl", "imdb", "-a", "start=sitemap", "-a", "depth=1000",
                "-a", f"max_pages={pages}", "-s", f"IMDB_BASE_URL={site.base_url}", "-s", f"MONGODB_URI={uri}",
                "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "ROBOTSTXT_OBEY=False",
                "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={per_context * contexts}", "-s", f"MONGODB_SPOOL_DIR={spool}",
                "-s", "LOG_LEVEL=WARNING", "-s", "PROGRESS_INTERVAL=0",
            ]  # fmt: skip
            if browser:
                command += ["-s", "PLAYWRIGHT_ENABLED=True", "-s", f"PLAYWRIGHT_MAX_CONTEXTS={contexts}",
                            "-s", f"PLAYWRIGHT_MAX_PAGES_PER_CONTEXT={per_context}",
                            "-s", f"BROWSER_ONLY_HOSTS={','.join(ONLY_HOSTS)}", *settings]  # fmt: skip
            process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)  # fmt: skip

            def answered_now() -> int:
                return sum(1 for r in site.modes.requests if r["status"] == 200)

            # Reading smaps_rollup of a browser's processes takes ~70 ms of CPU: every PSS_EVERY seconds, not at
            # every poll, or the measurement takes its share of the 2 cores from the crawl it measures.
            pss_every = PSS_EVERY if browser else 0.0
            samples: list[tuple[float, int, float | None]] = []  # (seconds, pages answered, MiB or None)
            started = last_pss = time.monotonic()
            while process.poll() is None:
                now, pss = time.monotonic(), None
                if not samples or now - last_pss >= pss_every:
                    pss, last_pss = pss_mib(process.pid), now
                samples.append((now - started, answered_now(), pss))
                time.sleep(0.5)
            answered = answered_now()
            samples.append((time.monotonic() - started, answered, None))
            stderr = process.stderr.read() if process.stderr else ""
            if process.returncode != 0:
                raise RuntimeError(stderr[-3000:])
            challenges = sum(1 for r in site.modes.requests if r["status"] == 202 and r["browser"])
            visited = list(dict.fromkeys(r["path"] for r in site.modes.requests if r["status"] == 200 and r["browser"]))
            # After the switch (the first page the browser sent), a plain page request is a probe or was in flight.
            switched = min((r["t"] for r in site.modes.requests if r["browser"]), default=None)
            plain_after = sum(1 for r in site.modes.requests if switched and not r["browser"] and r["t"] > switched)
            with MongoClient(uri) as client:
                record = client.get_default_database().crawl_runs.find_one({}, {"routes": 1}) or {}
            probes = (record.get("routes") or {}).get("probes", 0)
    finally:
        server.terminate()
        server.wait()
    first = next(s for s in samples if s[1] >= 1)
    last = next(s for s in samples if s[1] == samples[-1][1])  # when the last page was answered, as the baseline
    measured = [s for s in samples if s[2] is not None and s[0] <= last[0]]  # the crawl's shutdown excluded
    warm = [s[2] for s in measured if answered / 5 <= s[1] < answered * 2 / 5]
    end = [s[2] for s in measured if s[1] >= answered * 4 / 5]
    early = [s[2] for s in measured if answered / 5 <= s[1] < answered * 3 / 5]
    late = [s[2] for s in measured if s[1] >= answered * 3 / 5]
    if not warm or not end:
        if memory:
            raise RuntimeError(f"{len(measured)} memory samples are too few to compare two fifths: more --pages")
        warm = end = early = late = [s[2] for s in measured] or [0.0]
    after_warm = [s[2] for s in measured if s[1] >= answered / 5] or warm
    return {
        "pages": answered,
        "seconds": round(last[0], 1),
        "pages_per_min": round((last[1] - first[1]) / (last[0] - first[0]) * 60, 1),
        "mib_warm": round(statistics.median(warm)),
        "mib_end": round(statistics.median(end)),
        "mib_peak_early": round(max(early)),
        "mib_peak_late": round(max(late)),
        "mib_range": (round(min(after_warm)), round(max(after_warm))),
        "browser_challenges": challenges,
        "plain_after_switch": plain_after,
        "probes": probes,
        "visited": visited,
        "assets": dict(site.assets),
    }


async def raw_playwright(
    graph_pages: int, paths: list[str], contexts: int, route: str, weight: dict[str, int], per_context: int = 4
) -> float:
    """Pages/min of Playwright alone through the challenge site (see the module's docstring).

    It visits ``paths`` of a synthetic graph of ``graph_pages`` pages, in their order: the pages
    the crawl's browser fetched, so that Chromium does the same work in both (pages range from
    50 kB to 1.8 MB). ``route``: ``none`` (no routing), ``heavy`` (images, fonts, media and style
    sheets aborted, every request through Python), ``document`` (a page whose document is not a
    challenge loads nothing else: what the crawl does).
    """
    from playwright.async_api import async_playwright

    from crawler.runtime.addons import ABORTED_RESOURCES, CHROMIUM_ARGS, chromium_args, chromium_path
    from crawler.runtime.browser import READY, is_final_document, is_the_page

    navigations: dict[Any, Any] = {}
    verdicts: dict[Any, bool] = {}  # page → whether its document is the page: asked once a navigation, as the crawl

    async def routed(request_route: Any) -> None:
        request = request_route.request
        if route == "document":
            page = request.frame.page
            if request.is_navigation_request():
                navigations[page] = request
                verdicts.pop(page, None)
                return await request_route.continue_()
            if page not in verdicts:
                answer = await navigations[page].response()
                verdicts[page] = answer is not None and is_the_page(answer)
            if verdicts[page]:
                return await request_route.abort()
        if request.resource_type in ABORTED_RESOURCES:
            await request_route.abort()
        else:
            await request_route.continue_()

    with DemoSite(synthetic=graph_pages, mode="challenge", token_lifetime=300, **weight) as site:
        # The crawl's Chromium and command line (BROWSER_DOCUMENT_ONLY, and BROWSER_ONLY_HOSTS as crawl() sets them).
        args = chromium_args(CHROMIUM_ARGS, document_only=True, only_hosts=list(ONLY_HOSTS))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_path(), args=args)
            queue: asyncio.Queue[str] = asyncio.Queue()  # filled before the visitors start: they stop when it is empty
            for path in paths:
                queue.put_nowait(f"{site.base_url}{path}")
            done, first, last = 0, 0.0, 0.0

            async def one(context: Any, url: str, kept: Any = None) -> None:
                nonlocal done, first, last
                page = kept or await context.new_page()
                if route != "none" and not kept:
                    await page.route("**", routed)
                if route == "document":  # the final document's bytes, as the crawl reads them
                    async with page.expect_event("response", predicate=is_final_document) as final:
                        await page.goto(url, wait_until="commit")
                    html = (await (await final.value).body()).decode()
                    await page.evaluate("window.stop()")
                else:
                    await page.goto(url, wait_until="commit")
                    await page.wait_for_function(READY, polling=100)
                    html = await page.content()
                if not kept:
                    await page.close()
                done += 1
                first, last = first or time.monotonic(), time.monotonic()
                re.findall(r"/(?:title|name)/((?:tt|nm)\d+)/", html)  # its links read, as a crawler does

            async def visit(context: Any) -> None:
                # Take a URL, then open its page: a visitor never holds a page open while it waits for work. Reading
                # documents, a visitor keeps one page and navigates it to each URL in turn, as the crawl does.
                kept = None
                if route == "document":
                    kept = await context.new_page()
                    await kept.route("**", routed)
                while not queue.empty():
                    await one(context, queue.get_nowait(), kept)

            opened = [await browser.new_context() for _ in range(contexts)]
            for context in opened:
                await one(context, queue.get_nowait())  # a context's first page alone: it passes the challenge
            await asyncio.gather(*(visit(context) for context in opened for _ in range(per_context)))
            await browser.close()
    return (done - 1) / (last - first) * 60


def sweep(pages: int, configs: list[tuple[int, int]], weight: dict[str, int]) -> tuple[int, int]:
    """The crawl's browser rate at each (contexts, pages per context); the best of them."""
    rates = {}
    for contexts, per_context in configs:
        result = crawl(pages, contexts, True, weight, per_context=per_context, memory=False)
        rates[contexts, per_context] = result["pages_per_min"]
        print(f"  {contexts} contexts x {per_context} pages: {result['pages_per_min']} pages/min, "
              f"{result['mib_end']} MiB at the end", flush=True)  # fmt: skip
    return max(rates, key=lambda config: rates[config])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--contexts", type=int, default=2)
    parser.add_argument("--per-context", type=int, default=4, help="pages at a time in each context")
    parser.add_argument("--sweep", default="", metavar="CxK,…",
                        help="first measure these contexts x pages per context (e.g. 1x4,2x4,3x2), on --sweep-pages "
                             "pages each, and run the rest at the best")  # fmt: skip
    parser.add_argument("--sweep-pages", type=int, default=120)
    parser.add_argument("--raw-pages", type=int, default=150,
                        help="pages of the Playwright-alone baselines that read the DOM")  # fmt: skip
    parser.add_argument(
        "--scripts-pages",
        type=int,
        default=150,
        help="pages of the crawl with the pages' scripts running (with --heavy)",
    )
    parser.add_argument("--heavy", type=int, default=0, metavar="N", help="scripts a page, as heavy as IMDb's")
    parser.add_argument("--burn-ms", type=int, default=120, help="CPU each --heavy script burns")
    args = parser.parse_args()
    weight = {"heavy": args.heavy, "burn_ms": args.burn_ms}
    contexts, per_context = args.contexts, args.per_context
    if args.sweep:
        print(f"concurrency sweep, {args.sweep_pages} pages each:", flush=True)
        configs = [tuple(int(n) for n in config.split("x")) for config in args.sweep.split(",")]
        contexts, per_context = sweep(args.sweep_pages, configs, weight)  # type: ignore[arg-type]
        print(f"best: {contexts} contexts x {per_context} pages", flush=True)
    plain = crawl(args.pages, contexts, browser=False, weight=weight, per_context=per_context, memory=False)
    # The crawl and its true limit, A B B A: the crawl, Playwright alone twice, the crawl again (each side its
    # mean): one run of each, minutes apart on this shared machine, moved the ratio by 0.1 and more.
    browser = crawl(args.pages, contexts, browser=True, weight=weight, per_context=per_context)
    sample = browser["visited"][: args.raw_pages]  # the first pages the crawl's browser fetched, in its order
    # The route's limit over the very pages the crawl fetched, all of them in its order: the first --raw-pages
    # alone were lighter (607 kB a page against 675 kB for the rest, in one run), an easier job than the crawl's.
    documents = [
        asyncio.run(raw_playwright(args.pages, browser["visited"], contexts, "document", weight, per_context))
        for _ in range(2)
    ]
    again = crawl(args.pages, contexts, browser=True, weight=weight, per_context=per_context, memory=False)
    rates = [browser["pages_per_min"], again["pages_per_min"]]
    browser["pages_per_min"] = round(statistics.mean(rates), 1)
    document = statistics.mean(documents)
    scripts = (
        crawl(args.scripts_pages, contexts, True, weight, "-s", "BROWSER_DOCUMENT_ONLY=False",
              per_context=per_context, memory=False)
        if args.heavy
        else None
    )  # fmt: skip
    raw, unrouted = (
        asyncio.run(raw_playwright(args.pages, sample, contexts, route, weight, per_context))
        for route in ("heavy", "none")
    )
    print(f"browser, each run: {rates} pages/min; Playwright alone reading documents, each run: "
          f"{[round(rate, 1) for rate in documents]} pages/min")  # fmt: skip
    for name, result in (("plain HTTP", plain), ("browser", browser)):
        print(f"{name}: {result['pages']} pages in {result['seconds']}s = {result['pages_per_min']} pages/min; "
              f"memory: highest {result['mib_peak_early']} MiB over the second and third fifths of the pages, "
              f"{result['mib_peak_late']} MiB over the last two; median {result['mib_warm']} MiB over the second "
              f"fifth, {result['mib_end']} MiB over the last ({result['mib_end'] / result['mib_warm'] - 1:+.3f}); "
              f"samples after the first fifth {result['mib_range'][0]}–{result['mib_range'][1]} MiB")  # fmt: skip
    print(f"browser challenges answered: {browser['browser_challenges']} ({contexts} contexts x {per_context} pages); "
          f"plain page requests after the switch: {browser['plain_after_switch']} "
          f"({browser['probes']} probes)")  # fmt: skip
    print(f"Playwright alone ({args.raw_pages} pages): {raw:.1f} pages/min routing every request through Python "
          f"as scrapy-playwright does and reading the DOM, {unrouted:.1f} without routing; {document:.1f} reading "
          f"each final document's bytes (what the crawl does), over the crawl's {len(browser['visited'])} "
          "pages")  # fmt: skip
    print(f"page assets the crawl's pages fetched: {browser['assets'] or 'none'}")
    if scripts:
        print(f"the same crawl with the pages' scripts running (BROWSER_DOCUMENT_ONLY=False): "
              f"{scripts['pages_per_min']} pages/min, assets {scripts['assets']}")  # fmt: skip
    print(json.dumps({
        "browser_pages_per_min": browser["pages_per_min"],
        "browser_concurrency": f"{contexts}x{per_context}",
        "browser_rss_growth": round(browser["mib_peak_late"] / browser["mib_peak_early"] - 1, 3),
        "browser_rate_vs_raw_playwright": round(browser["pages_per_min"] / raw, 2),
        "browser_rate_vs_document_playwright": round(browser["pages_per_min"] / document, 2),
        **({"browser_document_only_speedup": round(browser["pages_per_min"] / scripts["pages_per_min"], 2)}
           if scripts else {}),
        "browser_rate_vs_plain": round(browser["pages_per_min"] / plain["pages_per_min"], 3),
        "browser_plain_requests_after_switch": browser["plain_after_switch"],
        # What may go plain after the switch: the pages in flight when it came, and the probes.
        "browser_plain_requests_allowed": contexts * per_context + browser["probes"],
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
