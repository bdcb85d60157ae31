"""``scrapy crawl`` with an exit status that tells a scheduler whether the run went well.

Scrapy's own command exits 0 whenever the spider started. This one also exits
1 when the crawl set ``imdb/exit_status`` (most pages blocked, another run
holding the job's lock, monitors failing), so cron and Scrapyd wrappers notice.
"""

from __future__ import annotations

import argparse
import logging

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError

logger = logging.getLogger(__name__)


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name")
        assert self.crawler_process
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        status = crawler.stats.get_value("imdb/exit_status", 0) if crawler.stats else 0
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
        elif status:
            reason = crawler.stats.get_value("finish_reason") if crawler.stats else None
            logger.error("Crawl ended badly (%s): exit status %d", reason, status)
            self.exitcode = int(status)
