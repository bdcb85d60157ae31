"""Scrapy settings for imdb-crawler: every default lives here.

Secrets and endpoints come from the environment (``MONGODB_URI``,
``IMDB_BASE_URL``) and any setting can be overridden with ``-s NAME=VALUE``.
"""

from __future__ import annotations

import os

BOT_NAME = "imdb_crawler"
SPIDER_MODULES = ["crawler.runtime.spiders"]
NEWSPIDER_MODULE = "crawler.runtime.spiders"
COMMANDS_MODULE = "crawler.runtime.commands"  # `scrapy crawl` exits 1 when a run fails; parse/shell/check touch nothing

# --- Target site ---------------------------------------------------------
# The same spider crawls the real site or the local demo site (python -m crawler.demo_site).
IMDB_BASE_URL = os.environ.get("IMDB_BASE_URL", "https://www.imdb.com")

# --- MongoDB -------------------------------------------------------------
# Unset: an embedded mongoeco server (SQLite files at MONGODB_EMBEDDED_PATH) is started for the crawl.
MONGODB_URI = os.environ.get("MONGODB_URI", "")
MONGODB_EMBEDDED_PATH = os.environ.get("MONGODB_EMBEDDED_PATH", "var/mongo/imdb.sqlite")
MONGODB_BATCH_SIZE = 100  # documents per bulk_write
MONGODB_FLUSH_SECONDS = 5.0  # flush a partial batch at least this often
MONGODB_SERVER_TIMEOUT_MS = 5000  # how long a write waits for an unreachable server before spooling
MONGODB_WRITE_CONCERN = {"w": 1}  # e.g. {"w": "majority", "j": True} on a replica set
CHANGES_TTL = 90 * 86400  # seconds the change log (collection `changes`) keeps an entry; 0: no change log

# --- Politeness (defaults for the real site; the demo overrides them) -----
USER_AGENT = "imdb-crawler/0.1 (+https://github.com/imdb-crawler/imdb-crawler; open-source research crawler)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
HTTPCACHE_ENABLED = False

# --- Blocked pages and browser rendering --------------------------------
DOWNLOADER_MIDDLEWARES = {
    # Between HttpCompression (590) and Retry (550): sees decoded bodies first.
    "crawler.runtime.middlewares.BlockedPageMiddleware": 560,
}
BLOCKED_RETRY_TIMES = 2  # retries of a blocked page before the browser or giving up
BLOCKED_BACKOFF_SECONDS = 5.0  # first retry waits this long, then twice as long each time
BLOCKED_BACKOFF_MAX = 60.0
BLOCKED_CLOSE_RATIO = 0.8  # close the crawl when this share of pages is blocked…
BLOCKED_CLOSE_MIN_PAGES = 20  # …once at least this many were
RETRY_AFTER_MAX = 600  # seconds: a 429/503 asking to wait longer than this is waited this long
RATE_LIMIT_RETRY_TIMES = 10  # retries of a rate-limited page (each after the wait the site asked)
PLAYWRIGHT_ENABLED = False  # true: blocked or JavaScript-only pages are fetched with Chromium
BROWSER_SWITCH_AFTER = 3  # plain answers blocked in a row before new pages go straight to the browser
BROWSER_PROBE_EVERY = 20  # …then one plain request probes every this many browser pages…
BROWSER_PROBE_SECONDS = 60  # …or this often, and plain HTTP resumes when a probe passes
BROWSER_PAGE_TIMEOUT = 30  # seconds a browser page has to show its page data (after any challenge)
# Pages per browser context before a fresh one replaces it (and passes a challenge again). 500 against 100, over
# 2 000 IMDb-weight pages at 1x6 (pages kept and navigated): 4 challenges instead of 20, 319 against 302 pages/min,
# memory as flat (+0.058 against +0.065) at a higher level (medians 1 707-1 806 MiB against 1 324-1 410).
BROWSER_CONTEXT_PAGES = 500
# A page's document is all it loads once it is not a challenge, and Chromium runs without Blink's preload scanner
# (crawler.runtime.addons.chromium_args); False: the pages' scripts run, the scanner on.
BROWSER_DOCUMENT_ONLY = True
BROWSER_ONLY_HOSTS: list[str] = []  # set: Chromium resolves only these hosts (offline machines, the demo site)
ADDONS = {
    "crawler.runtime.addons.PlaywrightAddon": 0,
    "crawler.runtime.addons.RedisAddon": 0,
    "crawler.runtime.addons.SpidermonAddon": 0,  # SPIDERMON_ENABLED: notifications (crawler/spidermon_suite.py)
}

# --- Scheduled runs ------------------------------------------------------
EXTENSIONS = {
    "crawler.runtime.extensions.runlock.RunLock": 100,
    "crawler.runtime.extensions.runrecord.RunRecord": 110,
    "crawler.runtime.extensions.progress.ProgressLog": 500,
    "scrapy.extensions.spiderstate.SpiderState": None,  # pickles spider.state into JOBDIR; nothing here uses it
}
JOB_NAME = ""  # run-lock name; default: the spider's name
RUN_LOCK_ENABLED = True
RUN_LOCK_TTL = 120  # seconds without a heartbeat before a crashed run's lock expires (at least 10)
RUN_RECORD_ENABLED = True  # one crawl_runs document per run, judged by the monitors at the end
RUN_RECORD_INTERVAL = 15  # seconds between updates of a running crawl's counts in crawl_runs
PROGRESS_INTERVAL = 10  # seconds between progress lines; 0 turns them off
LOGSTATS_INTERVAL = 0  # Scrapy's own progress line: the one above says more
# No console into a running crawl: both run any code inside it. Scrapy's telnet console prints its
# password in the log (and Scrapyd serves job logs over HTTP); Scrapy 2.19's RemoteControl listens
# on HTTP. Opt in for one run, on a trusted machine: -s TELNETCONSOLE_ENABLED=True (and
# TELNETCONSOLE_PASSWORD), -s REMOTE_CONTROL_ENABLED=True.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
# End-of-run monitors (crawler/spidermon_suite.py): failures are logged, recorded in crawl_runs, exit status 1.
MONITOR_MAX_BLOCKED_RATIO = 0.2
MONITOR_MAX_COVERAGE_DROP = 0.25  # a field found on 25 points fewer items than last run
MONITOR_MIN_ITEMS_FOR_COVERAGE = 20  # fewer items than this in either run: coverage is not compared
DRIFT_MAX_FALLBACK_SHARE = 0.5  # a field read from a fallback on more than this share of a layout's pages: drift
DRIFT_MIN_PAGES = 10  # pages of a layout and kind before its drift is judged
MONITORS_FAIL_EXIT = True

# --- Pipelines -----------------------------------------------------------
ITEM_PIPELINES = {
    "crawler.storage.validate.ValidationPipeline": 300,
    "crawler.storage.writer.MongoPipeline": 800,
}
MONGODB_SPOOL_DIR = "var/spool"  # where items wait while MongoDB is unreachable

# --- Distributed mode ----------------------------------------------------
# Set REDIS_URL (env or -s) to share one frontier between workers; unset: one process.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_IDLE_TIMEOUT = 15  # seconds a worker waits on an empty shared frontier before stopping
REDIS_OUTAGE_TIMEOUT = 300  # seconds a worker waits for an unreachable Redis before stopping (exit 1)
REDIS_LEASE_TIMEOUT = 30  # seconds without a worker's heartbeat before the pages it holds go back to the queue
REDIS_RETRY_SECONDS = 2.0  # while Redis is unreachable, how often a worker tries again
REDIS_CHECK_SECONDS = 1.0  # how often a worker asks whether the run is still in Redis and its peers alive
REDIS_BATCH = 200  # requests admitted and queued per round trip

# --- The frontier: which pages are fetched (crawler/runtime/frontier.py) -------
SCHEDULER = "crawler.runtime.frontier.Scheduler"  # admits each page once, within the budget
DUPEFILTER_CLASS = "crawler.runtime.frontier.RequestFilter"  # the other requests (robots.txt, sitemaps)
SCHEDULER_DISK_QUEUE = "crawler.runtime.serialization.JsonFifoDiskQueue"  # with JOBDIR: JSON, never pickles
JOBDIR = ""  # a folder: pausable, crash-safe runs (see README)

# --- Engine --------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
DOWNLOADER = "crawler.runtime.downloader.Downloader"  # per-domain concurrency honoured under asyncio (see there)
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
# Breadth-first: a depth budget should cover every page at depth 1 before any at depth 2.
DEPTH_PRIORITY = 1
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"
