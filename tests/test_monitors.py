"""End-of-run monitors and the HTML report."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

import crawler.spidermon_suite
from crawler.demo_site import DemoSite
from crawler.report import as_runs, render
from crawler.report import main as report_main
from crawler.runtime.judging import MonitorSettings, aggregate, check_run
from crawler.runtime.verdict import exit_status
from crawler.storage.connection import connect, database_name
from crawler.summary import main as summary_main
from tests.conftest import FIXTURES, PROJECT, crawl, crawl_command, make_crawler


def config_of(**overrides: Any) -> Any:
    from crawler.runtime.config import CrawlConfig
    from tests.conftest import settings_for

    return CrawlConfig.from_settings(settings_for(**overrides))


SETTINGS = MonitorSettings.from_config(config_of())  # the project's defaults (crawler/settings.py)


def run(**fields: Any) -> dict[str, Any]:
    base = {
        "finish_reason": "finished",
        "admitted": 40,
        "finished_pages": 40,
        "stored_items": 30,
        "blocked": 0,
        "items": {"new": 30, "changed": 0, "unchanged": 0, "duplicates": 0},
        "item_counts": {"titles": 25},
        "coverage": {"titles": {"rating": 0.9, "cast": 0.9}},
    }
    return {**base, **fields}


def drift(pages: int = 20, **fields: tuple[int, int, int]) -> dict[str, Any]:
    """A run's ``drift`` tally of current-layout title pages: ``field=(primary, fallback, missing)``."""
    verdicts = ("primary", "fallback", "missing")
    counts = {field: dict(zip(verdicts, n, strict=True)) for field, n in fields.items()}
    return {"current/title": {"pages": pages, "fields": counts}}


@pytest.mark.parametrize(
    ("current", "previous", "failing"),
    [
        (run(), None, []),
        (run(), run(), []),
        (run(stored_items=0), None, ["items_stored"]),
        (run(finished_pages=0, admitted=0, stored_items=0), None, []),  # nothing to fetch (all fresh) is fine
        (run(blocked=10), None, ["blocked_ratio"]),
        (run(blocked=8), None, []),
        (run(coverage={"titles": {"rating": 0.2, "cast": 0.9}}), run(), ["field_coverage"]),
        (run(coverage={"titles": {"rating": 0.7, "cast": 0.9}}), run(), []),
        (run(coverage={"titles": {"rating": 0.0}}, item_counts={"titles": 12}), run(), []),  # too few to judge
        (run(finish_reason="locked"), None, ["finish_reason"]),
        (run(finish_reason="start_error", admitted=0, finished_pages=0, stored_items=0), None, ["finish_reason"]),
        (run(unfinished=3), None, ["pages_accounted"]),  # finished, yet admitted pages never ended: a loss
        (run(finish_reason="shutdown", unfinished=3), None, ["pages_accounted"]),  # stopped without JOBDIR
        (run(items={"new": 28, "lost": {"spool_failed": 2}}), None, ["pages_accounted"]),
        (run(spool_unreadable=1), None, ["pages_accounted"]),
        (run(parser_bugs=2), None, ["parser_bugs"]),
        (run(refused_entries=1), None, ["queue_entries"]),  # something else writes into the shared queue
        (run(drift=drift(title=(20, 0, 0))), None, []),
        (run(drift=drift(title=(0, 20, 0))), None, ["layout_drift"]),  # falls back everywhere
        (run(drift=drift(title=(10, 10, 0))), None, []),  # half the pages: within the share allowed
        (run(drift=drift(year=(0, 0, 20))), None, ["layout_drift"]),  # on 13 of 14 fixture pages, on none now
        (run(drift=drift(year=(0, 0, 5), pages=5)), None, []),  # too few pages to judge
        (run(drift=drift(year=(0, 0, 20))), run(drift=drift(year=(0, 0, 20))), ["layout_drift"]),  # the fixtures
        (run(drift=drift(metascore=(0, 0, 20))), run(drift=drift(metascore=(20, 0, 0))), ["layout_drift"]),
    ],
)
def test_check_run(current: dict[str, Any], previous: dict[str, Any] | None, failing: list[str]) -> None:
    results = check_run(current, previous, SETTINGS)
    assert [r["monitor"] for r in results if not r["ok"]] == failing
    assert {r["monitor"] for r in results} == {
        "finish_reason", "items_stored", "blocked_ratio", "pages_accounted", "queue_entries", "parser_bugs",
        "field_coverage", "layout_drift",
    }  # fmt: skip


def test_drift_failure_names_the_field_and_the_path() -> None:
    verdict = check_run(run(drift=drift(title=(0, 20, 0), year=(0, 0, 20))), None, SETTINGS)[-1]
    assert verdict == {
        "monitor": "layout_drift",
        "ok": False,
        "message": "current/title title fell back on 20 of 20 pages (titleText.text not found); "
        "current/title year: releaseYear.year vanished (on 13/14 pages before, 0 now)",
    }


def test_a_paused_run_with_jobdir_keeps_its_unfinished_pages() -> None:
    results = check_run(run(finish_reason="shutdown", unfinished=3), None, replace(SETTINGS, jobdir=True))
    accounted = next(r for r in results if r["monitor"] == "pages_accounted")
    assert accounted["ok"] and "3 kept for the next start" in accounted["message"]


@pytest_twisted.ensureDeferred
async def test_runs_record_monitors_in_stats_and_crawl_runs_and_the_report_draws_them(
    demo_site, mongo_uri, tmp_path, capsys
):
    crawlers = [await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", depth=0) for _ in range(2)]
    stats = crawlers[1].stats.get_stats()
    assert stats["coverage/titles/title"] == 1.0 and stats["coverage/people/name"] == 1.0
    assert {key for key in stats if key.startswith("monitors/")} >= {
        "monitors/finish_reason", "monitors/items_stored", "monitors/blocked_ratio", "monitors/pages_accounted",
        "monitors/parser_bugs", "monitors/field_coverage", "monitors/layout_drift", "monitors/failed",
    }  # fmt: skip
    db = connect(mongo_uri)[database_name(mongo_uri)]
    runs = list(db.crawl_runs.find().sort("started", 1))
    assert all(m["ok"] for r in runs for m in r["monitors"])
    assert runs[1]["coverage"]["titles"]["title"] == 1.0 and runs[1]["item_counts"] == {"titles": 25, "people": 5}
    coverage = next(m for m in runs[1]["monitors"] if m["monitor"] == "field_coverage")
    assert coverage["message"] == "no field lost coverage"  # compared with the first run
    assert runs[1]["settings"]["MONGODB_URI"] == mongo_uri and runs[1]["job"] == "imdb"
    out = tmp_path / "report.html"
    assert report_main(["--uri", mongo_uri, "--out", str(out)]) == 0
    page = out.read_text()
    assert "<b>25</b> titles, <b>5</b> people" in page
    assert page.count("<svg") == 9  # coverage ×2, page-data sources ×4 (layouts × kinds), items, pages, decades
    assert "First page-data source found, latest run: current/title (14 pages)" in page
    assert "all passed" in page and "1990s" in page
    capsys.readouterr()
    assert summary_main(["--uri", mongo_uri]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].endswith(": 25 titles, 5 people (2 crawl runs recorded)")
    assert "monitors all passed" in said[1] and said[2].split() == ["pages", "stored:", "30", "(0", "new,", "0",
                                                                    "updated,", "30", "unchanged)"]  # fmt: skip
    assert said[3].split() == ["pages", "not", "found:", "0"]


def test_report_shows_a_distributed_run_as_one_run() -> None:
    day = datetime(2026, 11, 1, tzinfo=UTC)

    def record(minute: int, **fields: Any) -> dict[str, Any]:
        return {"started": day + timedelta(minutes=minute), "finished": day + timedelta(minutes=minute + 5), **fields}

    alone = record(0, pages=10, items={"new": 10}, monitors=[], finish_reason="finished", job="nightly",
                   command="scrapy crawl imdb -a start=stale -s MONGODB_URI=mongodb://***@db/imdb")  # fmt: skip
    worker = record(10, run_group="g1", admitted=4, items={"new": 0}, item_counts={}, finish_reason="finished")
    judged = {"workers": 2, "admitted": 9, "items": {"new": 5}, "monitors": [{"monitor": "items_stored", "ok": True}]}
    judge = record(11, run_group="g1", admitted=5, items={"new": 5}, run_wide=judged, finish_reason="finished")
    running = record(20, run_group="g2", admitted=3, items={"new": 3}, item_counts={"titles": 3}, status="running")
    runs = as_runs([alone, worker, judge, running])  # `alone` is a record of schema 1: `pages`, not `admitted`
    assert [r.get("admitted", r.get("pages")) for r in runs] == [10, 9, 3]
    assert runs[1]["workers"] == 2 and runs[1]["started"] == worker["started"] and runs[1]["monitors"]
    assert runs[2]["finish_reason"] == "running" and runs[2]["items"] == {"new": 3} and runs[2]["monitors"] == []
    page = render({"database": "mongodb://x/imdb", "titles": 1, "people": 0, "runs": runs, "decades": {}})
    assert "finished (2 workers)" in page and page.count("<tr><td>") == 3
    assert "<td title='scrapy crawl imdb -a start=stale -s MONGODB_URI=mongodb://***@db/imdb'>nightly</td>" in page


def test_the_report_escapes_every_value_and_takes_wrong_types_in_its_stride() -> None:
    """crawl_runs can be written by anyone with access to the database: nothing in it runs, nothing crashes."""
    day = datetime(2026, 11, 1, tzinfo=UTC)
    evil = "<script>alert(1)</script>"
    hostile = {
        "started": day, "finish_reason": evil, "pages": "lots", "blocked": None, "items": ["new"],
        "coverage": {evil: {evil: "high", "rating": 0.5}, "people": "all"},
        "drift": {evil: {"pages": "7", "fields": {evil: {"primary": "x"}}}, "current/title": {"pages": 2,
                  "fields": {evil: {"primary": 1}}}},
        "monitors": [{"monitor": evil, "ok": False, "message": evil}, "not a verdict", {"monitor": "layout_drift"}],
    }  # fmt: skip
    worker = {"started": "yesterday", "run_group": "g", "workers": evil, "pages": [1], "coverage": "x", "items": 3}
    judged = {"started": day, "run_group": "g2", "run_wide": {"workers": evil, "pages": 3, "monitors": "ok"}}
    runs = as_runs([hostile, worker, judged])
    page = render({"database": "mongodb://x/imdb", "titles": 1, "people": 0, "runs": runs, "decades": {}})
    assert "<script>" not in page and "&lt;script&gt;" in page and page.count("<tr><td>") == 3


def test_aggregate_adds_up_workers_and_weights_coverage_by_items() -> None:
    workers = [
        {"admitted": 30, "finished_pages": 30, "items": {"new": 30, "dropped": {"invalid_title": 1}},
         "item_counts": {"titles": 30}, "coverage": {"titles": {"rating": 1.0}}},
        {"admitted": 10, "finished_pages": 10, "items": {"new": 10, "dropped": {"invalid_title": 2}},
         "item_counts": {"titles": 10}, "coverage": {"titles": {"rating": 0.0, "votes": 0.5}}},
    ]  # fmt: skip
    total = aggregate(workers)
    assert total["workers"] == 2 and total["admitted"] == 40 and total["item_counts"] == {"titles": 40}
    assert total["unfinished"] == 0
    assert total["items"] == {"new": 40, "dropped": {"invalid_title": 3}}
    assert total["coverage"] == {"titles": {"rating": 0.75, "votes": 0.125}}


def test_the_spidermon_suite_has_a_test_for_every_monitor() -> None:
    judged = {verdict["monitor"] for verdict in check_run({}, None, SETTINGS)}
    assert set(crawler.spidermon_suite.VERDICTS) == judged  # (the module, not the TestCase: pytest would collect it)
    assert all(callable(getattr(crawler.spidermon_suite.RunVerdicts, f"test_{name}", None)) for name in judged)


def test_the_readme_spidermon_recipe_runs_a_spidermon_action_on_a_failing_run(mongo_uri: str, tmp_path: Path):
    """As written in the README (a JSON list given with -s), with Spidermon's own file report (jinja2 templates)."""
    report = tmp_path / "report.html"
    with DemoSite(FIXTURES, mode="js") as site:  # every page needs JavaScript: nothing stored, monitors fail
        command = crawl_command(site.base_url, mongo_uri, tmp_path, "-a", "start=tt0133093", "-a", "depth=0",
                                "-s", "SPIDERMON_ENABLED=true",
                                "-s", 'SPIDERMON_ENGINE_STOP_MONITORS=["tests.spidermon_suites.FileReportSuite"]',
                                "-s", "SPIDERMON_REPORT_TEMPLATE=reports/email/monitors/result.jinja",
                                "-s", f"SPIDERMON_REPORT_FILENAME={report}",
                                "-s", "BLOCKED_BACKOFF_SECONDS=0")  # fmt: skip
        result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "No module named" not in result.stderr, result.stderr[-3000:]
    assert "[Spidermon] 1 action in" in result.stderr  # the failed run's action, Spidermon's own
    page = report.read_text()
    assert "items were stored" in page and "1 pages fetched but no item stored" in page
    assert "few pages were blocked" in page and "1 of 1 pages blocked" in page


@pytest.mark.parametrize(
    ("stats", "fail_exit", "status"),
    [
        ({}, True, 0),
        ({"monitors/failed": 0}, True, 0),
        ({"monitors/failed": 2}, True, 1),
        ({"monitors/failed": 2}, False, 0),  # MONITORS_FAIL_EXIT off: a monitor alone does not fail the run
        ({"failures/documents_lost": 1}, False, 1),  # a loss fails it whatever the monitors say
        ({"failures/locked": 1, "monitors/failed": 0}, True, 1),
    ],
)
def test_the_exit_status_is_decided_in_one_place(stats: dict[str, Any], fail_exit: bool, status: int) -> None:
    crawler = make_crawler(MONITORS_FAIL_EXIT=fail_exit)
    assert exit_status(crawler) == 0  # nothing reported yet
    for key, value in stats.items():
        crawler.stats.set_value(key, value)
    assert exit_status(crawler) == status
