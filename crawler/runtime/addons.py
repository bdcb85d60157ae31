"""Scrapy add-ons: settings that depend on other settings.

``RedisAddon`` switches to a shared frontier when ``REDIS_URL`` is set
(``crawler.runtime.distributed``), so any number of worker processes on any
number of machines crawl one frontier and never fetch a page twice. Without
``REDIS_URL`` nothing changes.

``SpidermonAddon`` adds Spidermon's extension when ``SPIDERMON_ENABLED`` is set.

``PlaywrightAddon`` turns browser rendering on when ``PLAYWRIGHT_ENABLED`` is
true: scrapy-playwright's download handler (used only by requests with
``meta={"playwright": True}``, all others still go through Scrapy's HTTP
client), Debian's Chromium with the flags this kind of machine needs (and, when
pages are read from their documents, without Blink's preload scanner), images,
fonts and media aborted, and bounded contexts and pages.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

HANDLER = "crawler.runtime.browser.BrowserHandler"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ABORTED_RESOURCES = {"image", "font", "media", "stylesheet"}
# Blink's preload scanner reads a document ahead of its parser and asks at once for every script, style sheet and
# image it finds: on IMDb-weight pages ~40 requests a page, each passed to the crawl's route hook (a round trip
# through the Playwright driver) only to be aborted there (BROWSER_DOCUMENT_ONLY). Without it, only what the
# parser reaches before the page is stopped is asked for: ~3 a page, and Playwright alone reads such documents
# 2.1 times as fast (800 against 380 pages/min, docs/benchmarks.md). A page whose scripts run loads them as the
# parser meets them instead of ahead: left on when BROWSER_DOCUMENT_ONLY is off.
PRELOAD_SCANNER = "doHtmlPreloadScanning"


def chromium_args(args: list[str], *, document_only: bool, only_hosts: list[str]) -> list[str]:
    """Chromium's command line: ``args``, then the preload scanner off (documents only) and the hosts it resolves.

    A ``--blink-settings`` already in ``args`` is extended (Chromium keeps only the
    last one given), and left as it is if it sets the preload scanner itself.
    """
    args = list(args)
    if document_only:
        given = next((i for i, arg in enumerate(args) if arg.startswith("--blink-settings=")), None)
        if given is None:
            args.append(f"--blink-settings={PRELOAD_SCANNER}=false")
        elif PRELOAD_SCANNER not in args[given]:
            args[given] = f"{args[given]},{PRELOAD_SCANNER}=false"
    if only_hosts:  # every other host fails at once, instead of after a DNS timeout (offline machines, the demo site)
        args.append("--host-resolver-rules=MAP * ~NOTFOUND, " + ", ".join(f"EXCLUDE {host}" for host in only_hosts))
    return args


def abort_heavy_resources(request: Any) -> bool:
    """scrapy-playwright ``PLAYWRIGHT_ABORT_REQUEST``: skip what parsing never needs."""
    return request.resource_type in ABORTED_RESOURCES


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def completed(settings: BaseSettings, name: str) -> int:
    """The priority to write back a setting the addon completed (given values kept, its own added).

    At least the project's; as high as the one it was given with, or the write
    would be dropped: ``-s PLAYWRIGHT_LAUNCH_OPTIONS='{"args": [...]}'`` (priority
    ``cmdline``) would launch without Chromium's path and the crawl's flags.
    """
    return max(settings.getpriority(name) or 0, SETTINGS_PRIORITIES["project"])


class PlaywrightAddon:
    """Configure scrapy-playwright when ``PLAYWRIGHT_ENABLED`` is set."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.getbool("PLAYWRIGHT_ENABLED"):
            return
        handlers = settings.getdict("DOWNLOAD_HANDLERS")
        handlers.update({"http": HANDLER, "https": HANDLER})
        settings.set("DOWNLOAD_HANDLERS", handlers, priority=completed(settings, "DOWNLOAD_HANDLERS"))
        launch = settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS")
        if "executable_path" not in launch:
            path = chromium_path()
            if path is None:
                raise RuntimeError("PLAYWRIGHT_ENABLED needs Chromium: apt-get install chromium")
            launch["executable_path"] = path
        launch["args"] = chromium_args(launch.get("args", CHROMIUM_ARGS),
                                       document_only=settings.getbool("BROWSER_DOCUMENT_ONLY"),
                                       only_hosts=settings.getlist("BROWSER_ONLY_HOSTS"))  # fmt: skip
        launch.setdefault("headless", True)
        settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", launch, priority=completed(settings, "PLAYWRIGHT_LAUNCH_OPTIONS"))
        settings.set("PLAYWRIGHT_BROWSER_TYPE", "chromium", priority="project")
        settings.setdefault("PLAYWRIGHT_ABORT_REQUEST", abort_heavy_resources)
        settings.setdefault("PLAYWRIGHT_PROCESS_REQUEST_HEADERS", "crawler.runtime.browser.page_headers")
        # Measured best on a 2-core worker (bench/browser.py --sweep, docs/benchmarks.md): one context with 4 pages
        # at a time passes one challenge per token and keeps Chromium busy; more contexts only add processes.
        settings.setdefault("PLAYWRIGHT_MAX_CONTEXTS", 1)
        settings.setdefault("PLAYWRIGHT_MAX_PAGES_PER_CONTEXT", 4)
        settings.setdefault("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", 30_000)


class RedisAddon:
    """Share one frontier between worker processes when ``REDIS_URL`` is set (``crawler.runtime.distributed``)."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.get("REDIS_URL"):
            return
        # "project" priority: these replace the single-process defaults, not -s options.
        settings.set("SCHEDULER", "crawler.runtime.distributed.scheduler.RedisScheduler", priority="project")
        # Workers of one run would lock each other out: the shared frontier is the coordination.
        if (settings.getpriority("RUN_LOCK_ENABLED") or 0) < 40:  # unless given with -s
            settings.set("RUN_LOCK_ENABLED", False, priority="project")


class SpidermonAddon:
    """Add Spidermon's extension when ``SPIDERMON_ENABLED`` is set (``pip install .[spidermon]``).

    The project's EXTENSIONS stay as they are (setting EXTENSIONS with ``-s``
    would replace them, run record and monitors included).
    """

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.getbool("SPIDERMON_ENABLED"):
            return
        try:
            import spidermon  # noqa: F401
        except ImportError:
            raise RuntimeError("SPIDERMON_ENABLED needs Spidermon: pip install .[spidermon]") from None
        extensions = settings.getdict("EXTENSIONS")
        extensions.setdefault("spidermon.contrib.scrapy.extensions.Spidermon", 900)
        settings.set("EXTENSIONS", extensions, priority="project")
        # `-s 'SPIDERMON_ENGINE_STOP_MONITORS=["a.Suite"]'`: Scrapy would split that text on commas and
        # Spidermon import '["a'. A JSON list or object given as text is read as one.
        for name in [n for n in settings if n.startswith("SPIDERMON_")]:
            value = settings.get(name)
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    raise RuntimeError(f"-s {name}: not JSON ({value[:80]})") from None
                settings.set(name, parsed, priority=settings.getpriority(name) or "project")
