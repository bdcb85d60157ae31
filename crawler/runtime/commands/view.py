"""``scrapy view`` on this project: Scrapy's own, without the job's side effects (no MongoDB, lock or run record)."""

from scrapy.commands.view import Command as ScrapyView

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyView)):  # type: ignore[misc]
    pass
