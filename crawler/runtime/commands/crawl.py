"""``scrapy crawl`` that checks its arguments first and whose exit status tells a scheduler how the run went.

Scrapy's own command exits 0 whenever the spider started. This one

* checks the spider's arguments and the project's settings before anything
  starts: a mistake is one line on stderr and exit status 2;
* exits 1 when the run did not do its work or lost some (most pages blocked,
  another run holding the job's lock, MongoDB or Redis unreachable, a monitor
  failing: ``crawler.runtime.verdict``), so cron and Scrapyd wrappers notice.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader

from crawler.runtime.config import ConfigError, CrawlConfig
from crawler.runtime.verdict import exit_status


class Command(ScrapyCrawl):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if len(args) != 1:
            raise UsageError("give exactly one spider name")
        assert self.settings is not None
        spidercls = get_spider_loader(self.settings).load(args[0])
        try:
            config = CrawlConfig.from_settings(self.settings)
            config.check_spool_dir()
            arguments = getattr(spidercls, "arguments", None)
            if arguments is not None and not arguments(opts.spargs).has_seeds:
                raise ConfigError("give -a start=tt…,nm… (or start=sitemap, start=stale) or -a start_file=PATH")
        except ConfigError as exc:
            # Before Scrapy starts (and logs its banner): the mistake is the only line.
            print(f"scrapy crawl {args[0]}: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.crawler_process
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        self.exitcode = 1 if self.crawler_process.bootstrap_failed else exit_status(crawler)
