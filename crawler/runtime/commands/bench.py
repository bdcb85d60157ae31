"""``scrapy bench`` on this project: Scrapy's own, with its throughput shown and without the job's side effects."""

import argparse

from scrapy.commands.bench import Command as ScrapyBench

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyBench)):  # type: ignore[misc]
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        # Scrapy's line of pages per minute is the benchmark's whole output; the project turns it off for crawls.
        if (self.settings.getpriority("LOGSTATS_INTERVAL") or 0) < 40:
            self.settings.set(
                "LOGSTATS_INTERVAL", ScrapyBench.default_settings["LOGSTATS_INTERVAL"], priority="cmdline"
            )
