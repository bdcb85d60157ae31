"""The commands people type: one clear line and a non-zero exit for a mistake; parse/shell/check touch nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.embedded_mongo import EmbeddedMongo
from tests.conftest import PROJECT, crawl_command, db_of


def scrapy(*args: str, cwd: Path = PROJECT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "start=tt0133093", "-a", "deph=1"], "unknown spider argument -a deph: valid ones are depth,"),
        ([], "give -a start=tt…,nm… (or start=sitemap, start=stale) or -a start_file=PATH"),
        (["-a", "start=garbage"], "start: not a title or name id"),
        (["-a", "start=tt0133093", "-s", "IMDB_BASE_URL=ftp://example.com"], "-s IMDB_BASE_URL=ftp://example.com"),
        (["-a", "start=tt0133093", "-s", "BLOCKED_CLOSE_RATIO=8"], "-s BLOCKED_CLOSE_RATIO=8: Input should be less"),
        (["-a", "start=tt0133093", "-s", "RUN_LOCK_TTL=0"], "-s RUN_LOCK_TTL=0"),
        (["-a", "start_file=/nonexistent"], "start_file /nonexistent: no such file"),
        (["-a", "start=,"], "-a start=,: no title or name ids in it"),
        (["-a", "start= , "], "no title or name ids in it"),
        (["-a", "start=tt0133093", "-a", "refresh_after=99999999999d"], "is longer than 100 years"),
        (["-a", "start=tt0133093", "-s", "IMDB_BASE_URL=http://127.0.0.1:99999"], "Port out of range"),
        (["-a", "start=tt0133093", "-s", "RUN_LOCK_TTL=inf"], "-s RUN_LOCK_TTL=inf: Input should be a finite"),
        (["-a", "start=tt0133093", "-s", "CHANGES_TTL=inf"], "-s CHANGES_TTL=inf: Input should be a finite"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = scrapy("crawl", "imdb", "-s", f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}", *args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("scrapy crawl imdb: ") and message in lines[0], result.stderr


def test_a_run_that_does_its_work_exits_0_and_one_that_fails_exits_1(demo_site, mongo_uri: str, tmp_path: Path):
    command = crawl_command(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0")
    ok = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "Run " in ok.stderr and " ok (finished)" in ok.stderr
    # No console into the crawl (both run any code in it), and nothing printed that grants access.
    assert "TelnetConsole" not in ok.stderr and "RemoteControl" not in ok.stderr and "Password" not in ok.stderr
    missing = subprocess.run(crawl_command(demo_site.base_url, mongo_uri, tmp_path, "-a", "start=tt9999999"),
                             cwd=PROJECT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1  # its only page does not exist: nothing stored, and cron hears of it
    assert "Monitor items_stored failed: 1 pages fetched but no item stored" in missing.stderr
    runs = list(db_of(mongo_uri).crawl_runs.find())
    assert len(runs) == 2 and all(run["command"].startswith("scrapy crawl imdb -s IMDB_BASE_URL=") for run in runs)
    assert all(run["job"] == "imdb" for run in runs)  # the report's runs table shows both


@pytest.mark.parametrize(
    "command",
    [
        ["parse", "--spider", "imdb", "{base}/title/tt0133093/"],
        ["parse", "--spider", "imdb", "{base}/name/nm0000138/"],
        ["shell", "{base}/title/tt0133093/", "-c", "response.status"],
        ["check", "imdb"],
        ["fetch", "--nolog", "{base}/title/tt0133093/"],
        ["runspider", "{spider}"],
        ["bench", "-s", "CLOSESPIDER_TIMEOUT=2", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False"],
    ],
    ids=["parse_title", "parse_person", "shell", "check", "fetch", "runspider", "bench"],
)
def test_inspection_commands_work_on_a_bare_url_without_touching_mongodb(demo_site, tmp_path: Path, command):
    """No -a start, no MongoDB started, no lock, no run record: the embedded server's folder is never created."""
    embedded = tmp_path / "mongo" / "imdb.sqlite"
    env = {"MONGODB_URI": "", "MONGODB_EMBEDDED_PATH": str(embedded), "IMDB_BASE_URL": demo_site.base_url}
    spider = tmp_path / "one_page.py"
    spider.write_text(f"import scrapy\n\nclass OnePage(scrapy.Spider):\n    name = 'one'\n"
                      f"    start_urls = ['{demo_site.base_url}/title/tt0133093/']\n\n"
                      "    def parse(self, response):\n        yield {'status': response.status}\n")  # fmt: skip
    result = scrapy(*[part.format(base=demo_site.base_url, spider=spider) for part in command], env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not embedded.parent.exists() and "Traceback" not in result.stderr
    assert "crawl_runs" not in result.stderr and "run lock" not in result.stderr
    if command[0] == "parse":
        assert ("'title': 'The Matrix'" if "title" in command[3] else "'name': 'Leonardo DiCaprio'") in result.stdout
        assert "Scraped Items" in result.stdout
    if command[0] == "shell":
        assert result.stdout.strip() == "200"
    if command[0] == "fetch":
        assert "__NEXT_DATA__" in result.stdout
    if command[0] == "bench":  # its whole output is the throughput line, which the project's crawls turn off
        assert "pages/min" in result.stderr


def test_secrets_in_the_mongodb_uri_appear_nowhere(demo_site, mongo_server, tmp_path: Path) -> None:
    """Not in the log, not in the run record, not in the report (options: see test_config.test_redact)."""
    plain = mongo_server.uri.replace("/imdb?", "/secrets?")
    # A password with "#" (pymongo takes it unescaped): a generic URL parser would show what comes before it.
    secret = plain.replace("mongodb://", "mongodb://user:s3cret#pass@") + "&authSource=admin"
    result = subprocess.run(crawl_command(demo_site.base_url, secret, tmp_path, "-a", "start=tt0133093"),
                            cwd=PROJECT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and "Authentication failed" in result.stderr  # the server refuses the user
    assert "s3cret" not in result.stderr + result.stdout and "pass@" not in result.stderr
    assert "mongodb://***@" in result.stderr
    again = subprocess.run(crawl_command(demo_site.base_url, plain, tmp_path, "-a", "start=tt0133093"),
                           cwd=PROJECT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0  # replays the refused run's record from the spool
    records = list(db_of(plain).crawl_runs.find())
    assert len(records) == 2 and "s3cret" not in repr(records)
    refused = next(r for r in records if r["finish_reason"] == "mongodb_unreachable")
    assert refused["settings"]["MONGODB_URI"].startswith("mongodb://***@")
    report = tmp_path / "report.html"
    assert scrapy_report(plain, report) == 0 and "s3cret" not in report.read_text()


def scrapy_report(uri: str, out: Path) -> int:
    from crawler.report import main as report_main

    return report_main(["--uri", uri, "--out", str(out)])


def test_on_a_terminal_a_progress_bar_runs_under_the_log_lines(tmp_path: Path, mongo_uri: str) -> None:
    """In a pseudo-terminal: the bar (tqdm) redraws on its own line; every log line still arrives whole."""
    from crawler.demo_site import DemoSite
    from tests.conftest import FIXTURES

    master, slave = os.openpty()
    with DemoSite(FIXTURES, mode="slow", delay=0.15) as site:
        command = crawl_command(site.base_url, mongo_uri, tmp_path, "-a", "start=sitemap", "-a", "depth=0",
                                "-s", "PROGRESS_INTERVAL=1", "-s", "CONCURRENT_REQUESTS=2")  # fmt: skip
        process = subprocess.Popen(command, cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        output = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the crawl is over
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=120)
    os.close(master)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0
    assert "30/30" in text and "/1000" not in text and "page/s" in text and "written=30" in text  # the bar, at the end
    lines = [line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n")]
    progress = [line for line in lines if "[crawler.runtime.extensions.progress] INFO: Progress:" in line]
    assert progress and all(line.rstrip().endswith("not found") for line in progress)  # never cut by the bar


def test_one_data_directory_is_never_served_by_two_embedded_servers(demo_site, tmp_path: Path) -> None:
    path = tmp_path / "mongo" / "imdb.sqlite"
    with EmbeddedMongo(str(path)):
        env = {"MONGODB_URI": "", "MONGODB_EMBEDDED_PATH": str(path), "IMDB_BASE_URL": demo_site.base_url}
        spool = f"MONGODB_SPOOL_DIR={tmp_path / 'spool'}"
        crawl = scrapy("crawl", "imdb", "-a", "start=tt0133093", "-s", spool, env=env)
        server = subprocess.run([sys.executable, "-m", "crawler.embedded_mongo", "--path", str(path)],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    holder = f"is already served by an embedded MongoDB (pid {os.getpid()}"
    assert crawl.returncode == 1 and holder in crawl.stderr and "Traceback" not in crawl.stderr
    assert server.returncode == 1 and holder in server.stderr and server.stdout == ""
    with EmbeddedMongo(str(path)) as again:  # released when the first one stopped
        assert again.uri
