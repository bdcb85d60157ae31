"""``scrapy runspider`` in this project: Scrapy's own, without the job's side effects (no MongoDB, lock, record)."""

from scrapy.commands.runspider import Command as ScrapyRunspider

from crawler.runtime.commands.inspection import inspecting


class Command(inspecting(ScrapyRunspider)):  # type: ignore[misc]
    pass
