"""``scrapy fetch`` on this project: Scrapy's own, without the job's side effects (no MongoDB, lock or run record)."""

from scrapy.commands.fetch import Command as ScrapyFetch

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyFetch)):  # type: ignore[misc]
    pass
