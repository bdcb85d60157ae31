"""``scrapy parse`` on this project: Scrapy's own, without the job's side effects (no MongoDB, lock or run record)."""

from scrapy.commands.parse import Command as ScrapyParse

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyParse)):  # type: ignore[misc]
    pass
