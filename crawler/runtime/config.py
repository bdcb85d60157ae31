"""Spider arguments and project settings, validated once at start with clear messages.

``SpiderArgs`` is what ``-a name=value`` may say (unknown names are an error
that lists the valid ones); ``CrawlConfig`` is every project setting a
component reads, typed and checked (ratios in [0, 1], URLs with the right
scheme, a writable spool folder…). Defaults live in two places only: spider
arguments here, settings in ``crawler/settings.py`` (``CrawlConfig`` has none
of its own: it reads them all from the settings).

``crawl_config(crawler)`` validates the crawl's settings the first time a
component asks and hands every later caller the same object.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from redis.connection import parse_url as parse_redis_url

from crawler.parsing.processors import imdb_id
from crawler.storage.settings import ConfigError, NonNegative, Positive, StorageConfig, explain, validated_settings

Ratio = Annotated[float, Field(ge=0, le=1)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SPLIT = re.compile(r"[\s,]+")
# `-a start=` values that are not lists of ids.
START_MODES = ("sitemap", "stale")
MAX_DURATION = timedelta(days=100 * 365)  # longer ago than any page on the site
DATASET_MODES = ("datasets", "changed")  # `-a start=datasets:DIR`, `-a start=changed:DIR`


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` → timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"must look like 7d, 12h, 30m or 90s, not {text!r}")
    try:
        duration = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
    except OverflowError:
        duration = MAX_DURATION * 2
    if duration > MAX_DURATION:
        raise ValueError(f"{text.strip()} is longer than {MAX_DURATION.days // 365} years")
    return duration


def page_ids(tokens: Iterator[str] | list[str], where: str) -> Iterator[str]:
    """Title and name ids from ids or URLs; ConfigError naming the first tokens that are neither."""
    bad: list[str] = []
    for token in tokens:
        found = imdb_id(token)
        if found and found[:2] in ("tt", "nm"):
            yield found
        elif token:
            bad.append(token)
            if len(bad) >= 5:
                break
    if bad:
        shown = ", ".join(repr(b[:60]) for b in bad)
        raise ConfigError(f"{where}: not a title or name id (tt…, nm…) nor an IMDb URL: {shown}")


def seed_file_tokens(path: Path) -> Iterator[str]:
    """Tokens of a seed file: ids or URLs, one per line or separated by commas; ``#`` starts a comment."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for line in handle:
                yield from filter(None, _SPLIT.split(line.split("#", 1)[0]))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"start_file {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"start_file {path}: {exc.strerror or exc}") from None


class SpiderArgs(BaseModel):
    """The spider's ``-a`` arguments (Scrapyd passes them as ``-d name=value``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: str = Field("", description="ids or URLs (comma-separated), sitemap, stale, datasets:DIR or changed:DIR")
    start_file: Path | None = Field(None, description="a file of ids or URLs, one per line")
    depth: int = Field(2, ge=0, description="links followed from the seeds, then from those…")
    max_pages: int = Field(1000, ge=1, description="page budget of the run")
    follow_cast: bool = Field(True, description="follow links to cast members")
    refresh_after: timedelta | None = Field(None, description="skip pages stored more recently (7d, 12h…)")
    job: str | None = Field(None, validation_alias=AliasChoices("_job", "job"), description="Scrapyd's job id")
    title_types: frozenset[str] = Field(frozenset(), description="datasets: IMDb type ids, movie,tvSeries…")
    years: tuple[int, int] | None = Field(None, description="datasets: start years, 1990-2026 or 1999")
    min_votes: int = Field(0, ge=0, description="datasets: votes at least (title.ratings)")
    min_change: float = Field(0.05, ge=0, description="changed: votes or rating moved by more than (5%)")

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in START_MODES:
            return value.lower()
        kind, _, directory = value.partition(":")
        if kind in DATASET_MODES and directory and not directory.startswith("//"):
            from crawler.runtime.datasets import BASICS, RATINGS, DatasetError, dataset_file

            try:
                dataset_file(Path(directory), BASICS if kind == "datasets" else RATINGS)
            except DatasetError as exc:
                raise ConfigError(str(exc)) from None
            return value
        if not value:
            return value
        if not sum(1 for _ in page_ids(filter(None, _SPLIT.split(value)), "start")):
            raise ConfigError("no title or name ids in it (give tt…, nm…, sitemap, stale, datasets:DIR or changed:DIR)")
        return value

    @field_validator("title_types", mode="before")
    @classmethod
    def _title_types(cls, value: Any) -> Any:
        return frozenset(filter(None, _SPLIT.split(value))) if isinstance(value, str) else value

    @field_validator("years", mode="before")
    @classmethod
    def _years(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = re.fullmatch(r"\s*(\d{4})\s*(?:[-–]\s*(\d{4})\s*)?", value)
        if not found:
            raise ValueError("must look like 1990-2026 or 1999")
        first, last = int(found.group(1)), int(found.group(2) or found.group(1))
        if first > last:
            raise ValueError(f"{first} comes after {last}")
        return (first, last)

    @field_validator("min_change", mode="before")
    @classmethod
    def _min_change(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            return float(value.strip()[:-1]) / 100
        return value

    @field_validator("start_file")
    @classmethod
    def _start_file(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.is_file():
            raise ConfigError(f"start_file {value}: no such file")
        if not sum(1 for _ in page_ids(seed_file_tokens(value), f"start_file {value}")):  # reads it all: any bad line
            raise ConfigError(f"start_file {value}: no title or name ids in it")
        return value

    @field_validator("refresh_after", mode="before")
    @classmethod
    def _refresh_after(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _stale_refreshes_everything_by_default(self) -> SpiderArgs:
        if self.start == "stale" and self.refresh_after is None:
            object.__setattr__(self, "refresh_after", timedelta(0))
        return self

    @model_validator(mode="after")
    def _filters_need_their_start(self) -> SpiderArgs:
        kind = self.dataset[0] if self.dataset else None
        if kind != "datasets" and (self.title_types or self.years or self.min_votes):
            raise ConfigError("title_types, years and min_votes filter -a start=datasets:DIR")
        if kind != "changed" and "min_change" in self.model_fields_set:
            raise ConfigError("min_change goes with -a start=changed:DIR")
        if self.dataset and self.min_votes:
            from crawler.runtime.datasets import RATINGS, DatasetError, dataset_file

            try:
                dataset_file(self.dataset[1], RATINGS)
            except DatasetError as exc:
                raise ConfigError(f"min_votes needs title.ratings: {exc}") from None
        return self

    @property
    def dataset(self) -> tuple[str, Path] | None:
        """``("datasets" | "changed", directory)`` when the seeds come from IMDb's dataset dumps."""
        kind, _, directory = self.start.partition(":")
        return (kind, Path(directory)) if kind in DATASET_MODES and directory else None

    @property
    def has_seeds(self) -> bool:
        return bool(self.start or self.start_file)

    def seed_ids(self) -> Iterator[str]:
        """Ids from ``start`` (when it lists ids) and ``start_file``, in order, streamed."""
        if self.start and self.start not in START_MODES and self.dataset is None:
            yield from page_ids(filter(None, _SPLIT.split(self.start)), "start")
        if self.start_file is not None:
            yield from page_ids(seed_file_tokens(self.start_file), f"start_file {self.start_file}")

    @classmethod
    def parse(cls, arguments: dict[str, Any]) -> SpiderArgs:
        """Validated arguments, or ConfigError with one line per problem."""
        try:
            return cls.model_validate(arguments)
        except ValidationError as exc:
            raise ConfigError(explain(exc, cls, "spider argument", "-a")) from None


class CrawlConfig(StorageConfig):
    """Every project setting a component reads, validated. Defaults: ``crawler/settings.py``.

    The storage's own settings (``StorageConfig``) are declared and checked with the storage.
    """

    base_url: str = Field(alias="IMDB_BASE_URL")
    blocked_retry_times: int = Field(alias="BLOCKED_RETRY_TIMES", ge=0)
    blocked_backoff: NonNegative = Field(alias="BLOCKED_BACKOFF_SECONDS")
    blocked_backoff_max: NonNegative = Field(alias="BLOCKED_BACKOFF_MAX")
    blocked_close_ratio: Ratio = Field(alias="BLOCKED_CLOSE_RATIO")
    blocked_close_min_pages: int = Field(alias="BLOCKED_CLOSE_MIN_PAGES", ge=1)
    browser: bool = Field(alias="PLAYWRIGHT_ENABLED")
    drift_max_fallback: Ratio = Field(alias="DRIFT_MAX_FALLBACK_SHARE")
    drift_min_pages: int = Field(alias="DRIFT_MIN_PAGES", ge=1)
    browser_switch_after: int = Field(alias="BROWSER_SWITCH_AFTER", ge=1)
    browser_probe_every: int = Field(alias="BROWSER_PROBE_EVERY", ge=1)
    browser_probe_seconds: Positive = Field(alias="BROWSER_PROBE_SECONDS")
    browser_page_timeout: Positive = Field(alias="BROWSER_PAGE_TIMEOUT")
    browser_context_pages: int = Field(alias="BROWSER_CONTEXT_PAGES", ge=1)
    browser_document_only: bool = Field(alias="BROWSER_DOCUMENT_ONLY")
    retry_after_max: Positive = Field(alias="RETRY_AFTER_MAX")
    rate_limit_retry_times: int = Field(alias="RATE_LIMIT_RETRY_TIMES", ge=0)
    run_lock: bool = Field(alias="RUN_LOCK_ENABLED")
    run_lock_ttl: float = Field(alias="RUN_LOCK_TTL", ge=10, le=7 * 86400)
    run_record: bool = Field(alias="RUN_RECORD_ENABLED")
    record_interval: Positive = Field(alias="RUN_RECORD_INTERVAL")
    progress_interval: NonNegative = Field(alias="PROGRESS_INTERVAL")
    max_blocked_ratio: Ratio = Field(alias="MONITOR_MAX_BLOCKED_RATIO")
    max_coverage_drop: Ratio = Field(alias="MONITOR_MAX_COVERAGE_DROP")
    min_items_for_coverage: int = Field(alias="MONITOR_MIN_ITEMS_FOR_COVERAGE", ge=0)
    monitors_fail_exit: bool = Field(alias="MONITORS_FAIL_EXIT")
    redis_url: str = Field(alias="REDIS_URL")
    redis_idle_timeout: Positive = Field(alias="REDIS_IDLE_TIMEOUT")
    redis_outage_timeout: Positive = Field(alias="REDIS_OUTAGE_TIMEOUT")
    redis_lease_timeout: float = Field(alias="REDIS_LEASE_TIMEOUT", ge=2, le=86400)
    redis_retry_seconds: float = Field(alias="REDIS_RETRY_SECONDS", gt=0, le=600)
    redis_check_seconds: float = Field(alias="REDIS_CHECK_SECONDS", gt=0, le=60)
    redis_batch: int = Field(alias="REDIS_BATCH", ge=1, le=100_000)
    jobdir: str = Field(alias="JOBDIR")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError as exc:
            raise ValueError(f"not a URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://www.imdb.com")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value:
            return value
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        try:
            parse_redis_url(value)  # the client's own parser: what it cannot read, it cannot connect to
        except ValueError:
            # Its message may quote a piece of the password: not shown.
            raise ValueError("the Redis client cannot read it: percent-escape #, ?, / and @ in the password "
                             "(%23, %3F, %2F, %40)") from None  # fmt: skip
        return value

    @field_validator("jobdir", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> Any:
        return "" if value is None else value

    @model_validator(mode="after")
    def _consistent(self) -> CrawlConfig:
        if self.blocked_backoff_max < self.blocked_backoff:
            raise ValueError("BLOCKED_BACKOFF_MAX must be at least BLOCKED_BACKOFF_SECONDS")
        return self


_ARGS: WeakKeyDictionary[Any, SpiderArgs] = WeakKeyDictionary()


def register_args(crawler: Any, args: SpiderArgs) -> None:
    """The crawl's spider arguments, validated once by the spider, for every component to read."""
    _ARGS[crawler] = args


def spider_args(crawler: Any) -> SpiderArgs:
    """The crawl's ``-a`` arguments (their defaults for a spider that takes none: ``scrapy bench``, a test's)."""
    return _ARGS.get(crawler) or SpiderArgs.model_validate({})


def crawl_config(crawler: Any) -> CrawlConfig:
    """The crawl's validated settings: checked on first use, shared by every component after."""
    return validated_settings(crawler, CrawlConfig)
