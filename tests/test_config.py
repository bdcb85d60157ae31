"""Spider arguments and settings are checked once, at start, with messages that say what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.runtime.config import ConfigError, CrawlConfig, SpiderArgs, parse_duration
from crawler.storage.secrets import redact
from tests.conftest import settings_for


class Settings(dict):
    """Enough of Scrapy's Settings for ``CrawlConfig.from_settings``."""


def config(**overrides: Any) -> CrawlConfig:
    return CrawlConfig.from_settings(Settings(settings_for(**overrides)))


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"deph": "1"}, "unknown spider argument -a deph: valid ones are depth, follow_cast, max_pages, min_change"),
        ({"start": "garbage"}, "start: not a title or name id (tt…, nm…) nor an IMDb URL: 'garbage'"),
        ({"start": "tt"}, "not a title or name id"),
        ({"start": "tt0133093,oops"}, "'oops'"),
        ({"depth": "-1"}, "-a depth=-1: Input should be greater than or equal to 0"),
        ({"max_pages": "0"}, "-a max_pages=0"),
        ({"max_pages": "lots"}, "-a max_pages=lots: Input should be a valid integer"),
        ({"follow_cast": "maybe"}, "-a follow_cast=maybe: Input should be a valid boolean"),
        ({"refresh_after": "a week"}, "must look like 7d, 12h, 30m or 90s"),
        ({"start_file": "/nonexistent/seeds.txt"}, "start_file /nonexistent/seeds.txt: no such file"),
        ({"start": ","}, "-a start=,: no title or name ids in it"),
        ({"start": " , "}, "no title or name ids in it"),
        ({"start": "tt0133093", "refresh_after": "99999999999d"}, "is longer than 100 years"),  # OverflowError before
        ({"start": "tt0133093", "refresh_after": "40000d"}, "is longer than 100 years"),  # now - 40000d: year < 1
    ],
)
def test_bad_spider_arguments_are_refused_with_a_clear_message(arguments: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        SpiderArgs.parse(arguments)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("yes", True), ("on", True), ("1", True), ("off", False), ("no", False),
                        ("false", False), ("0", False)],
)  # fmt: skip
def test_booleans_take_every_usual_spelling(text: str, value: bool) -> None:
    assert SpiderArgs.parse({"start": "tt0133093", "follow_cast": text}).follow_cast is value


def test_arguments_defaults_and_seeds() -> None:
    args = SpiderArgs.parse({"start": " tt0133093, https://www.imdb.com/name/nm0000138/ ", "_job": "abc"})
    assert (args.depth, args.max_pages, args.follow_cast, args.refresh_after) == (2, 1000, True, None)
    assert list(args.seed_ids()) == ["tt0133093", "nm0000138"] and args.job == "abc"
    stale = SpiderArgs.parse({"start": "STALE"})
    assert stale.start == "stale" and stale.refresh_after == timedelta(0) and list(stale.seed_ids()) == []
    assert not SpiderArgs.parse({}).has_seeds  # `scrapy parse`, `scrapy shell`: no seeds needed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no title or name ids in it"),
        (b"# only a comment\n\n", "no title or name ids in it"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text"),
        (b"tt0133093\nnot-an-id\n", "'not-an-id'"),
    ],
)
def test_bad_seed_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        SpiderArgs.parse({"start_file": str(seeds)})


def test_seed_file_with_comments_urls_and_commas(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# seeds\ntt0133093, nm0000138\nhttps://www.imdb.com/title/tt0095016/  # Die Hard\n")
    assert list(SpiderArgs.parse({"start_file": str(seeds)}).seed_ids()) == ["tt0133093", "nm0000138", "tt0095016"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BLOCKED_CLOSE_RATIO": "8"}, "-s BLOCKED_CLOSE_RATIO=8: Input should be less than or equal to 1"),
        ({"MONITOR_MAX_BLOCKED_RATIO": "-0.1"}, "MONITOR_MAX_BLOCKED_RATIO"),
        ({"IMDB_BASE_URL": "notaurl"}, "must be an http:// or https:// URL with a host"),
        ({"IMDB_BASE_URL": "ftp://example.com/"}, "-s IMDB_BASE_URL=ftp://example.com/"),
        ({"MONGODB_URI": "http://nope"}, "must start with mongodb:// or mongodb+srv://"),
        ({"MONGODB_URI": "mongodb://"}, "not a valid MongoDB URI"),
        ({"RUN_LOCK_TTL": "0"}, "-s RUN_LOCK_TTL=0: Input should be greater than or equal to 10"),
        ({"MONGODB_BATCH_SIZE": "0"}, "MONGODB_BATCH_SIZE"),
        ({"MONGODB_WRITE_CONCERN": '{"w": "majority", "x": 1}'}, "MONGODB_WRITE_CONCERN"),
        ({"MONGODB_WRITE_CONCERN": "w=2"}, "must be a JSON object"),
        ({"REDIS_URL": "http://redis"}, "must start with redis://"),
        ({"PLAYWRIGHT_ENABLED": "perhaps"}, "PLAYWRIGHT_ENABLED"),
        ({"BLOCKED_BACKOFF_SECONDS": "10", "BLOCKED_BACKOFF_MAX": "5"}, "BLOCKED_BACKOFF_MAX must be at least"),
        ({"IMDB_BASE_URL": "http://127.0.0.1:99999"}, "-s IMDB_BASE_URL=http://127.0.0.1:99999: not a URL (Port out"),
        ({"RUN_LOCK_TTL": "inf"}, "-s RUN_LOCK_TTL=inf: Input should be a finite number"),  # a lock never expiring
        ({"CHANGES_TTL": "inf"}, "-s CHANGES_TTL=inf: Input should be a finite number"),
        ({"CHANGES_TTL": "1e12"}, "-s CHANGES_TTL=1e12: Input should be less than or equal to 2147483647"),
        ({"REDIS_URL": "redis://:s3c#r3t@h:1/0"}, "-s REDIS_URL=redis://***@h:1/0: the Redis client cannot read it"),
        ({"REDIS_LEASE_TIMEOUT": "1"}, "-s REDIS_LEASE_TIMEOUT=1: Input should be greater than or equal to 2"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config(**overrides)
    assert message in str(refused.value)


def test_settings_defaults_come_from_the_settings_module() -> None:
    checked = config(BLOCKED_CLOSE_RATIO="0.5", PLAYWRIGHT_ENABLED="on", MONGODB_WRITE_CONCERN='{"w": "majority"}')
    assert checked.blocked_close_ratio == 0.5 and checked.browser is True
    assert checked.write_concern == {"w": "majority"} and checked.run_lock_ttl == 120 and checked.batch_size == 100


def test_secrets_never_appear_in_messages() -> None:
    with pytest.raises(ConfigError) as refused:
        config(MONGODB_URI="mongodb://user:s3cret@host:notaport/imdb")
    assert "s3cret" not in str(refused.value)


def test_spool_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    occupied = tmp_path / "spool"
    occupied.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"MONGODB_SPOOL_DIR=.* is not writable"):
        config(MONGODB_SPOOL_DIR=str(occupied)).check_spool_dir()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://user:pass@db1,db2/imdb?replicaSet=rs0&w=majority", "mongodb://***@db1,db2/imdb?replicaSet=rs0&w=majority"),
        (
            "mongodb+srv://u:p@c.example.net/imdb?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:abc",
            "mongodb+srv://***@c.example.net/imdb?authMechanism=MONGODB-AWS&authMechanismProperties=***",
        ),
        ("mongodb://h/imdb?tls=true&tlsCertificateKeyFilePassword=hunter2", "mongodb://h/imdb?tls=true&tlsCertificateKeyFilePassword=***"),
        ("mongodb://h:27017/imdb?directConnection=true", "mongodb://h:27017/imdb?directConnection=true"),
        ("redis://:hunter2@redis:6379/0", "redis://***@redis:6379/0"),
        ("redis://redis:6379/0?password=hunter2", "redis://redis:6379/0?password=***"),
        ("mongodb://h/imdb?someNewOption=x", "mongodb://h/imdb?someNewOption=***"),  # unknown: treated as a secret
        ("redis://:sec#ret@h:1/0", "redis://***@h:1/0"),  # a password may hold #, ? or / (pymongo takes #)
        ("redis://:se?c=r&et@h:1/0", "redis://***@h:1/0"),
        ("mongodb://u:s/e?c#r@et@db1:27017/imdb?w=1", "mongodb://***@db1:27017/imdb?w=1"),
        ("Error 111 connecting to redis://:p#w@h:1/0.", "Error 111 connecting to redis://***@h:1/0."),
    ],
)  # fmt: skip
def test_redact(uri: str, shown: str) -> None:
    assert redact(uri) == shown
