"""Shared fixtures: fixture pages, the demo site, a real MongoDB wire server, a real Redis, in-process crawls.

Crawls run in this process, as Scrapy's own tests do: ``crawl(...)`` builds a
crawler with the project's settings (``get_crawler``), runs it on the asyncio
reactor pytest-twisted drives, and returns it; tests assert on
``crawler.stats`` and on the stored documents. A subprocess is used only where
the process is the point (kill -9, exit status, several workers).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import asdict
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred

import crawler.settings as project_settings
from crawler.demo_site import DemoSite
from crawler.embedded_mongo import EmbeddedMongo
from crawler.parsing.items import TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.runtime.spiders.imdb import ImdbSpider
from crawler.runtime.verdict import exit_status
from crawler.storage.connection import connect, database_name

# The user's shell may point the crawler at their own servers and site (crawler/settings.py reads these from the
# environment): the tests start their own, and must never write into the user's database nor join their Redis.
for _name in ("MONGODB_URI", "REDIS_URL", "IMDB_BASE_URL", "MONGODB_EMBEDDED_PATH", "SCRAPY_SETTINGS_MODULE",
              "SCRAPY_PROJECT", "SCRAPY_JOB", "JOBDIR"):  # fmt: skip
    os.environ.pop(_name, None)
importlib.reload(project_settings)  # its defaults, read again without them
# Hypothesis keeps no example database in the checkout: the suite leaves it as it found it.
hypothesis.settings.register_profile("imdb-crawler", database=None)
hypothesis.settings.load_profile("imdb-crawler")

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT / "imdb_pages"
EXPECTED = sorted((FIXTURES / "expected").glob("*/*.json"))


def page_file(layout: str, name: str) -> Path:
    return FIXTURES / layout / name


def read_page(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")


def extract(path: Path) -> dict[str, Any]:
    """The document the pipeline would store for a saved page."""
    return asdict(load_item(parse_page(read_page(path))))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def db_of(uri: str) -> Any:
    """The database a MongoDB URI names (a new client; tests leave it to the garbage collector).

    Tests look at what a crawl stored while it may keep the embedded server busy on a loaded machine:
    they wait up to 30 s for it to answer (the crawler's own clients keep their short timeouts).
    """
    return connect(uri, serverSelectionTimeoutMS=30_000)[database_name(uri)]


def expected_cases() -> list[Any]:
    cases = []
    for path in EXPECTED:
        data = json.loads(path.read_text())
        cases.append(pytest.param(data, id=f"{data['layout']}/{data['file']}"))
    return cases


def aio(coroutine: Coroutine[Any, Any, Any]) -> Deferred[Any]:
    """An asyncio coroutine (the pipelines', the extensions') as a Deferred a test can await."""
    return deferred_from_coro(coroutine)


def settings_for(**overrides: Any) -> dict[str, Any]:
    """The project's settings (``crawler/settings.py``), without politeness delays, with ``overrides``."""
    settings = {name: getattr(project_settings, name) for name in dir(project_settings) if name.isupper()}
    settings.update(
        AUTOTHROTTLE_ENABLED=False,
        DOWNLOAD_DELAY=0,
        CONCURRENT_REQUESTS_PER_DOMAIN=16,
        PROGRESS_INTERVAL=0,
        LOG_LEVEL="INFO",
    )
    settings.update(overrides)
    return settings


def make_crawler(spidercls: type = ImdbSpider, **settings: Any) -> Any:
    """A crawler with the project's settings applied, not started."""
    return get_crawler(spidercls, settings_for(**settings))


async def crawl(mongo_uri: str, base_url: str, tmp_path: Path, *, settings: dict[str, Any] | None = None,
                **arguments: Any) -> Any:  # fmt: skip
    """Run the ``imdb`` spider in this process; the finished crawler (stats, exit status)."""
    crawler = make_crawler(
        IMDB_BASE_URL=base_url,
        MONGODB_URI=mongo_uri,
        MONGODB_SPOOL_DIR=str(tmp_path / "spool"),
        **(settings or {}),
    )
    await crawler.crawl(**arguments)
    crawler.exit_status = exit_status(crawler)
    return crawler


def run_crawl(base_url: str, mongo_uri: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``scrapy crawl imdb`` in a subprocess (only where the process itself is what is tested)."""
    return subprocess.run(
        crawl_command(base_url, mongo_uri, tmp_path, *args),
        cwd=PROJECT, capture_output=True, text=True, timeout=300, env={**os.environ, **env}, check=False,
    )  # fmt: skip


def crawl_command(base_url: str, mongo_uri: str, tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "scrapy", "crawl", "imdb",
        "-s", f"IMDB_BASE_URL={base_url}",
        "-s", f"MONGODB_URI={mongo_uri}",
        "-s", "AUTOTHROTTLE_ENABLED=False",
        "-s", "DOWNLOAD_DELAY=0",
        "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16",
        "-s", f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}",
        *args,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def mongo_server() -> Any:
    """One mongoeco wire server (memory engine) for the test session."""
    server = EmbeddedMongo(None, memory=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(mongo_server: EmbeddedMongo) -> Any:
    """A URI naming a fresh database on the shared server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    assert mongo_server.uri
    uri = mongo_server.uri.replace("/imdb?", f"/{name}?")
    yield uri
    client = connect(uri)
    client.drop_database(name)
    client.close()


@pytest.fixture(scope="session")
def demo_site() -> Any:
    with DemoSite(FIXTURES) as site:
        yield site


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port)
    return server


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(root: Path) -> Iterator[str]:
    """A plain HTTP server over a folder of files (pages the demo site would not serve); its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture
def redis_url(tmp_path: Path) -> Any:
    """A real redis-server on a free port, for the distributed-mode tests."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


def matrix() -> TitleItem:
    item = load_item(parse_page(read_page(page_file("current", "tt0133093.html"))))
    assert isinstance(item, TitleItem)
    return item
