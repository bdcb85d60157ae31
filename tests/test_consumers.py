"""Every Python recipe of docs/consumers.md, run in order against a database the crawler filled."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import pytest_twisted

from crawler.export import columns
from crawler.export import main as export_main
from tests.conftest import PROJECT, crawl, db_of

RECIPES = re.findall(r"```python\n(.*?)```", (PROJECT / "docs" / "consumers.md").read_text(), re.S)


def test_the_page_has_recipes() -> None:
    # Each recipe checks what it got (running without an error would prove little): the page's readers see how.
    assert len(RECIPES) >= 7 and all(re.search(r"^\s*assert ", recipe, re.M) for recipe in RECIPES)


@pytest_twisted.ensureDeferred
async def test_every_recipe_runs(demo_site, mongo_uri: str, tmp_path: Path, monkeypatch) -> None:
    await crawl(mongo_uri, demo_site.base_url, tmp_path, start="sitemap", depth=0)
    # A page that changed since the last crawl: the rating and the votes were lower.
    db = db_of(mongo_uri)
    stored = db.titles.find_one({"_id": "tt0133093"})
    db.titles.update_one({"_id": "tt0133093"}, {"$set": {"rating": 8.6, "votes": stored["votes"] - 1000,
                                                         "content_hash": "older"}})  # fmt: skip
    await crawl(mongo_uri, demo_site.base_url, tmp_path, start="tt0133093", depth=0)
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the tools run from another folder: `make` installed them
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, recipe in enumerate(RECIPES, 1):
        try:
            exec(compile(recipe, f"docs/consumers.md recipe {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"recipe {number} of docs/consumers.md failed:\n{recipe}") from exc


def test_export_columns_are_stable_and_errors_are_clear(mongo_uri: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "none.csv"
    assert export_main(["--uri", mongo_uri, "--collection", "people", "--format", "csv", "--out", str(out),
                        "--query", '{"_id": "nm0000000"}']) == 0  # fmt: skip
    assert out.read_text().splitlines() == [",".join(columns("people"))]  # the header, even for no document
    assert columns("people")[:3] == ["_id", "imdb_id", "name"] and "filmography" in columns("people")
    with pytest.raises(SystemExit) as refused:
        export_main(["--uri", mongo_uri, "--collection", "titles", "--query", "{not json"])
    assert refused.value.code == 2 and "--query is not JSON" in capsys.readouterr().err


def test_export_errors_are_one_line(mongo_uri: str, tmp_path: Path, capsys) -> None:
    for out in (tmp_path, tmp_path / "missing" / "titles.csv"):  # a folder, a missing parent
        with pytest.raises(SystemExit) as refused:
            export_main(["--uri", mongo_uri, "--collection", "titles", "--format", "csv", "--out", str(out)])
        err = capsys.readouterr().err
        assert refused.value.code == 2 and f"--out {out}: cannot write there" in err and "Traceback" not in err


def test_csv_cells_never_run_as_spreadsheet_formulas(mongo_uri: str, tmp_path: Path) -> None:
    db_of(mongo_uri).titles.insert_many([
        {"_id": "tt0000001", "title": '=HYPERLINK("http://evil.example","x")', "votes": -1, "genres": ["=1+1"]},
        {"_id": "tt0000002", "title": "+cmd|' /C calc'!A0"}, {"_id": "tt0000003", "title": "-2+3"},
        {"_id": "tt0000004", "title": "@SUM(A1)"}, {"_id": "tt0000005", "title": "\t=1"},
        {"_id": "tt0000006", "title": "The Matrix"},
    ])  # fmt: skip
    out = tmp_path / "titles.csv"
    export_main(["--uri", mongo_uri, "--collection", "titles", "--format", "csv", "--out", str(out)])
    rows = {row["_id"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert [rows[f"tt000000{n}"]["title"][0] for n in range(1, 6)] == ["'"] * 5
    assert rows["tt0000006"]["title"] == "The Matrix" and rows["tt0000001"]["votes"] == "-1"  # numbers as they are
    assert rows["tt0000001"]["genres"] == '["=1+1"]'  # JSON text starts with [
    export_main(["--uri", mongo_uri, "--collection", "titles", "--format", "csv", "--out", str(out), "--raw-text"])
    raw = {row["_id"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert raw["tt0000003"]["title"] == "-2+3"
