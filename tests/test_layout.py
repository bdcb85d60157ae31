"""The code's layout keeps its promises: dependencies one way, no private Scrapy attribute, one exit status."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT

CRAWLER = PROJECT / "crawler"


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(("layer", "below"), [("parsing", ("crawler.storage", "crawler.runtime")),
                                               ("storage", ("crawler.runtime",))])  # fmt: skip
def test_dependencies_go_one_way(layer: str, below: tuple[str, ...]) -> None:
    """parsing <- storage <- runtime: a layer never imports one above it."""
    wrong = {
        f"{path.relative_to(PROJECT)} imports {module}"
        for path in (CRAWLER / layer).rglob("*.py")
        for module in imported(path)
        if module.startswith(below)
    }
    assert not wrong


def test_no_private_attribute_of_scrapy_nor_of_the_crawler() -> None:
    pattern = re.compile(r"crawler\._[a-z]|getattr\([a-z_.]*crawler[a-z_.]*, \"_|engine\._|\"_slot\"")
    found = [f"{path.relative_to(PROJECT)}:{n}" for path in CRAWLER.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]  # fmt: skip
    assert not found


def test_the_exit_status_is_written_by_one_module() -> None:
    writers = [path.relative_to(PROJECT) for path in CRAWLER.rglob("*.py") if "exit_status" in path.read_text()]
    assert {str(path) for path in writers} <= {"crawler/runtime/verdict.py", "crawler/runtime/commands/crawl.py"}
