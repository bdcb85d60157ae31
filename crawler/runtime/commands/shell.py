"""``scrapy shell`` on this project: Scrapy's own, without the job's side effects (no MongoDB, lock or run record)."""

from scrapy.commands.shell import Command as ScrapyShell

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyShell)):  # type: ignore[misc]
    pass
