"""The storage's settings, validated once with clear messages; and who runs the crawl.

``StorageConfig`` is every setting the storage reads (MongoDB, the writer's
batches, the spool, the change log), typed and checked; the runtime's
``CrawlConfig`` adds the rest to it. Defaults live in ``crawler/settings.py``
only. ``storage_config(crawler)`` validates them the first time a component
asks and hands every later caller the same object; a setting that cannot work
is a ``ConfigError`` whose message says which and why, in the user's own
words (``-s MONGODB_BATCH_SIZE=0: …``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Self
from weakref import WeakKeyDictionary

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern

from crawler.storage.secrets import redact

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
OPTIONAL = ("JOBDIR", "JOB_NAME")  # settings that may be left unset


class ConfigError(ValueError):
    """Spider arguments or settings that cannot work; the message says which and why."""


def explain(exc: ValidationError, model: type[BaseModel], what: str, flag: str) -> str:
    """One line per problem, in the user's own names (``-a deph=1``, ``-s BLOCKED_CLOSE_RATIO=8``)."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            valid = ", ".join(sorted(option_names(model)))
            lines.append(f"unknown {what} {flag} {name}: valid ones are {valid}")
            continue
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if isinstance(cause, ConfigError) else error["msg"].removeprefix("Value error, ")
        shown = redact(str(error["input"])) if isinstance(error.get("input"), str) else error.get("input")
        lines.append(f"{flag} {name}={shown}: {message}" if name else message)
    return "; ".join(lines)


def option_names(model: type[BaseModel]) -> list[str]:
    """The names a user gives: aliases (``-s MONGODB_URI``, ``-a job``), never private ones."""
    found = []
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        found.append(alias.choices[0] if isinstance(alias, AliasChoices) else (info.alias or name))
    return [str(n) for n in found if not str(n).startswith("_")]


class StorageConfig(BaseModel):
    """The settings the storage reads, validated. Defaults: ``crawler/settings.py``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, allow_inf_nan=False)

    mongodb_uri: str = Field(alias="MONGODB_URI")
    embedded_path: str = Field(alias="MONGODB_EMBEDDED_PATH")
    batch_size: int = Field(alias="MONGODB_BATCH_SIZE", ge=1)
    flush_seconds: Positive = Field(alias="MONGODB_FLUSH_SECONDS")
    server_timeout_ms: int = Field(alias="MONGODB_SERVER_TIMEOUT_MS", ge=100)
    write_concern: dict[str, Any] = Field(alias="MONGODB_WRITE_CONCERN")
    spool_dir: str = Field(alias="MONGODB_SPOOL_DIR", min_length=1)
    changes_ttl: float = Field(alias="CHANGES_TTL", ge=0, le=2**31 - 1)  # MongoDB's TTL index takes an int32
    job_name: str = Field(alias="JOB_NAME")

    @field_validator("mongodb_uri")
    @classmethod
    def _mongodb_uri(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        try:
            parse_uri(value, connect_timeout=1) if value.startswith("mongodb://") else None
        except Exception as exc:  # pymongo raises several kinds: all mean "not a usable URI"
            raise ValueError(f"not a valid MongoDB URI ({redact(str(exc))})") from None
        return value

    @field_validator("write_concern", mode="before")
    @classmethod
    def _write_concern(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('must be a JSON object such as {"w": "majority"}') from None
        if not isinstance(value, dict):
            raise ValueError('must be an object such as {"w": "majority"}')
        try:
            WriteConcern(**value)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("job_name", mode="before")
    @classmethod
    def _job_name(cls, value: Any) -> Any:
        return "" if value is None else value

    def check_spool_dir(self) -> None:
        """The spool must be writable before the crawl starts: it is where documents go when MongoDB is down."""
        path = Path(self.spool_dir)
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"MONGODB_SPOOL_DIR={self.spool_dir} is not writable ({exc.strerror or exc}): documents could not be "
                "kept there while MongoDB is unreachable. Give a writable folder."
            ) from None

    @classmethod
    def from_settings(cls, settings: Any) -> Self:
        values = {info.alias: settings.get(info.alias) for info in cls.model_fields.values() if info.alias}
        missing = [name for name, value in values.items() if value is None and name not in OPTIONAL]
        if missing:
            raise ConfigError(f"settings missing (crawler.settings not loaded?): {', '.join(missing)}")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(explain(exc, cls, "setting", "-s")) from None


_VALIDATED: WeakKeyDictionary[Any, dict[type, Any]] = WeakKeyDictionary()


def validated_settings[Model: StorageConfig](crawler: Any, model: type[Model]) -> Model:
    """The crawl's settings as ``model`` validates them: checked on first use, shared by every component after."""
    found = _VALIDATED.setdefault(crawler, {})
    if model not in found:
        found[model] = model.from_settings(crawler.settings)
    validated: Model = found[model]
    return validated


def storage_config(crawler: Any) -> StorageConfig:
    """The crawl's storage settings."""
    return validated_settings(crawler, StorageConfig)


def job_name(crawler: Any) -> str:
    """``JOB_NAME``, or the spider's name."""
    return storage_config(crawler).job_name or crawler.spidercls.name


def scrapyd_job(crawler: Any = None) -> str | None:
    """The Scrapyd job id when running under Scrapyd, else None.

    Scrapyd passes it as the spider argument ``_job`` (and, before 1.5, as
    ``SCRAPY_JOB`` in the environment).
    """
    args = getattr(getattr(crawler, "spider", None), "args", None)
    return getattr(args, "job", None) or os.environ.get("SCRAPY_JOB") or None
