"""``scrapy check`` on this project: Scrapy's own, without the job's side effects (no MongoDB, lock or run record)."""

from scrapy.commands.check import Command as ScrapyCheck

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyCheck)):  # type: ignore[misc]
    pass
