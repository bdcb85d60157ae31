"""Shared fixtures: fixture pages, the demo site and a real MongoDB wire server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from crawler.mongo import EmbeddedMongo, connect, database_name
from crawler.parsing.items import TitleItem
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.site import DemoSite
from crawler.storage.writer import MongoPipeline

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT.parent / "shared" / "fixtures" / "imdb"
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
    """The database a MongoDB URI names (a new client; tests leave it to the garbage collector)."""
    return connect(uri)[database_name(uri)]


def expected_cases() -> list[Any]:
    cases = []
    for path in EXPECTED:
        data = json.loads(path.read_text())
        cases.append(pytest.param(data, id=f"{data['layout']}/{data['file']}"))
    return cases


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


def run_crawl(base_url: str, mongo_uri: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``scrapy crawl imdb`` in a subprocess against the given site and MongoDB."""
    command = [
        sys.executable, "-m", "scrapy", "crawl", "imdb",
        "-s", f"IMDB_BASE_URL={base_url}",
        "-s", f"MONGODB_URI={mongo_uri}",
        "-s", "AUTOTHROTTLE_ENABLED=False",
        "-s", "DOWNLOAD_DELAY=0",
        "-s", f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}",
        "-s", "TELNETCONSOLE_ENABLED=False",
        *args,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=300, env={**os.environ, **env}, check=False
    )


def make_crawler(uri: str, tmp_path: Path, **settings: Any) -> Any:
    crawler = get_crawler(
        Spider,
        {"MONGODB_URI": uri, "MONGODB_SPOOL_DIR": str(tmp_path / "spool"), "MONGODB_BATCH_SIZE": 10, **settings},
    )
    crawler.spider = Spider(name="imdb")
    return crawler


async def run_items(pipeline: MongoPipeline, items: list[Any]) -> None:
    await pipeline.open_spider()
    for item in items:
        await pipeline.process_item(item)
    await pipeline.close_spider()
    await pipeline.spider_closed("finished")


@pytest.fixture
def redis_url(tmp_path: Path) -> Any:
    """A real redis-server on a free port, for the distributed-mode tests."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


def matrix() -> TitleItem:
    item = load_item(parse_page(read_page(page_file("current", "tt0133093.html"))))
    assert isinstance(item, TitleItem)
    return item
