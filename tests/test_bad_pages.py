"""Bad page data never escapes as an exception, never stalls the crawl, never stores a wrong type.

Pages are bounded before parsing (size, nesting, the length of dates and
numbers, list sizes): over a bound is a ``PageError`` with a named reason.
A fuzz test mutates and truncates real ``__NEXT_DATA__`` blocks.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import bson
import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.extract import main as extract_main
from crawler.parsing.limits import MAX_LIST_ITEMS, MAX_PAGE_CHARS, PageError
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.parsing.pages.base import script_text
from crawler.storage.documents import to_document
from crawler.storage.validate import problem
from tests.conftest import crawl, page_file, read_page, serving

PAGES = {name: read_page(page_file("current", f"{name}.html")) for name in ("tt0133093", "nm0000138", "tt2016511")}


def next_data(html: str) -> tuple[dict[str, Any], int, int]:
    """The page's ``__NEXT_DATA__`` and where its text starts and ends."""
    marker = html.index('id="__NEXT_DATA__"')
    start = html.index(">", marker) + 1
    end = html.index("</script>", start)
    return json.loads(html[start:end]), start, end


def with_next_data(html: str, text: str) -> str:
    """The page with ``text`` as its ``__NEXT_DATA__`` (``</`` escaped as pages do, so no string ends the script)."""
    _, start, end = next_data(html)
    return html[:start] + text.replace("</", "<\\/") + html[end:]


def mutated(name: str, path: tuple[str, ...], value: Any) -> str:
    """The page with the value at ``path`` (under the main column's Title/Name) replaced."""
    data, _, _ = next_data(PAGES[name])
    node = data["props"]["pageProps"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return with_next_data(PAGES[name], json.dumps(data))


def outcome(html: str) -> tuple[str, Any]:
    """``("stored", document)``, ``("dropped", reason)`` or ``("bad_page", reason)``, as the crawl would decide."""
    try:
        item = load_item(parse_page(html, None))
    except PageError as exc:
        return "bad_page", exc.reason
    collection, document = to_document(item)
    found = problem(collection, document)
    if found:
        return "dropped", found[0]
    bson.encode(document)
    return "stored", document


def test_a_string_where_the_release_date_object_is_expected() -> None:
    kind, document = outcome(mutated("tt0133093", ("mainColumnData", "releaseDate"), "31 March 1999"))
    assert kind == "stored" and document["release_date"] == "1999-03-31"
    kind, document = outcome(mutated("tt0133093", ("aboveTheFoldData", "releaseDate"), {"day": "x", "month": []}))
    assert kind == "stored"


@pytest.mark.parametrize("runtime", [float("nan"), float("inf"), -5, "NaN", {"seconds": "lots"}, [1, 2]])
def test_a_runtime_that_is_not_a_number(runtime: Any) -> None:
    html = PAGES["tt0133093"]
    data, _, _ = next_data(html)
    data["props"]["pageProps"]["aboveTheFoldData"]["runtime"] = runtime
    data["props"]["pageProps"]["mainColumnData"].pop("runtime", None)
    kind, result = outcome(with_next_data(html, json.dumps(data)))  # json writes NaN: not JSON, so not page data
    assert (
        (kind, result) == ("bad_page", "bad_page_data")
        if runtime != runtime or runtime == float("inf")
        else (kind == "stored" and result["runtime_minutes"] in (None, 136))
    )


def test_page_data_nested_ten_thousand_deep() -> None:
    html = mutated("tt0133093", ("aboveTheFoldData", "keywords"), "PLACEHOLDER")
    deep = "[" * 10_000 + "]" * 10_000
    assert outcome(html.replace('"PLACEHOLDER"', deep)) == ("bad_page", "too_deep")


def test_a_two_megabyte_date_never_reaches_dateparser(monkeypatch: pytest.MonkeyPatch) -> None:
    """dateparser takes minutes over a 2 MB "date": the length bound refuses it first (no timing needed)."""
    import dateparser

    asked: list[int] = []
    real = dateparser.parse
    monkeypatch.setattr(
        dateparser, "parse", lambda text, *args, **kwargs: asked.append(len(text)) or real(text, *args, **kwargs)
    )
    html = mutated("nm0000138", ("aboveTheFold", "birthDate"), "1" + "x" * 2_000_000)
    assert outcome(html) == ("bad_page", "value_too_long")
    assert max(asked, default=0) < 1_000


def test_a_million_keywords() -> None:
    edges = [{"node": {"text": f"k{n}"}} for n in range(MAX_LIST_ITEMS + 1)]
    html = mutated("tt0133093", ("mainColumnData", "keywords"), {"edges": edges})
    assert outcome(html) == ("bad_page", "list_too_long")


@pytest.mark.parametrize(
    ("path", "value", "field", "stored"),
    [
        (("aboveTheFoldData", "meterRanking", "currentRank"), 2**70, "popularity_rank", None),
        (("mainColumnData", "wins", "total"), "many", "awards_summary", {"wins": None, "nominations": 52}),
        (("aboveTheFoldData", "titleText", "text"), "The\x00 Matrix\x07", "title", "The Matrix"),
        (("aboveTheFoldData", "titleText"), {"text": {"nested": 1}}, "title", "The Matrix"),  # ld+json fallback
        (("mainColumnData", "series"), {"series": {"id": ["tt1"]}}, "series", None),
    ],
)
def test_wrong_types_are_never_stored(path: tuple[str, ...], value: Any, field: str, stored: Any) -> None:
    kind, document = outcome(mutated("tt0133093", path, value))
    assert kind == "stored"
    got = document[field]
    if isinstance(stored, dict):
        got = {key: got[key] for key in stored}
    assert got == stored


def test_extract_reports_every_bad_page_and_prints_the_good_ones(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.html"
    deep.write_text(with_next_data(PAGES["tt0133093"], "[" * 10_000 + "]" * 10_000))
    good, good2 = page_file("current", "tt0133093.html"), page_file("legacy", "tt0903747.html")
    assert extract_main([str(good), str(deep), str(good2)]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["_id"] for line in out.splitlines()] == ["tt0133093", "tt0903747"]
    assert "deep.html" in err and "too_deep" in err


# --- fuzzing -------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["tt0133093", "nm0000206", "1999-03-31", "PT2H16M", "\x00", "8.7", "1.9M", "2" * 300]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if depth > 7:
        return found
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in list(items)[:30]:
        found += _paths(child, (*prefix, key), depth + 1)
    return found


TREES = {name: next_data(html)[0] for name, html in PAGES.items()}
PATHS = {name: _paths(tree["props"]["pageProps"]) for name, tree in TREES.items()}


@st.composite
def mutated_pages(draw: Any) -> str:
    name = draw(st.sampled_from(sorted(PAGES)))
    data = copy.deepcopy(TREES[name])
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(PATHS[name]))
        parent = data["props"]["pageProps"]
        for key in path[:-1]:
            parent = parent[key] if isinstance(parent, (dict, list)) and _has(parent, key) else None
            if parent is None:
                break
        if parent is None or not _has(parent, path[-1]):
            continue
        action = draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace" or isinstance(parent, list):
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        else:
            parent[draw(st.text(max_size=8))] = parent.pop(path[-1])
    text = json.dumps(data)
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # truncated
    return with_next_data(PAGES[name], text)


def _has(node: Any, key: Any) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and key < len(node)


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_pages())
def test_fuzzed_page_data_never_raises_and_never_stores_a_wrong_type(html: str) -> None:
    kind, result = outcome(html)  # anything but a PageError escaping is a failure
    if kind == "stored":
        document = result
        assert isinstance(document["title" if "title" in document else "name"], str)
        for name in ("year", "votes", "runtime_minutes", "popularity_rank", "metascore"):
            assert document.get(name) is None or type(document[name]) is int
        assert document.get("rating") is None or 1 <= document["rating"] <= 10
        assert all("\x00" not in value for value in document.values() if isinstance(value, str))


def test_truncated_page_data_is_a_named_bad_page() -> None:
    html = PAGES["tt0133093"]
    _, start, end = next_data(html)
    assert outcome(html[:start] + html[start : start + 5000] + html[end:]) == ("bad_page", "bad_page_data")
    assert script_text(html, 'id="__NEXT_DATA__"')[0] is not None


@pytest_twisted.ensureDeferred
async def test_a_page_cut_short_or_too_large_is_a_bad_page_not_a_block(mongo_uri, tmp_path):
    """The site sent these pages: they count as bad pages (and as too large), never in the blocked ratio."""
    legacy = read_page(page_file("legacy", "tt0076759.html"))
    current = read_page(page_file("current", "tt0133093.html"))
    pages = {
        "tt0076759": legacy[: len(legacy) // 2],  # a legacy page cut short: no closing </html>
        "tt0133093": current.replace("</body>", " " * (MAX_PAGE_CHARS + 10) + "</body>"),  # over the bound
        "tt0000001": current.replace("tt0133093", "tt0000001"),  # a good one, to show the run goes on
    }
    root = tmp_path / "www"
    for page_id, text in pages.items():
        (root / "title" / page_id).mkdir(parents=True)
        (root / "title" / page_id / "index.html").write_text(text, encoding="utf-8")
    with serving(root) as base_url:
        crawler = await crawl(mongo_uri, base_url, tmp_path, start=",".join(pages), depth=0,
                              settings={"ROBOTSTXT_OBEY": False})  # fmt: skip
    stats = crawler.stats.get_stats()
    assert stats["pages/bad_page/truncated"] == 1 and stats["pages/bad_page/page_too_large"] == 1
    assert stats["pages/new"] == 1 and not any(key.startswith(("pages/blocked", "imdb/blocked")) for key in stats)
    assert stats["monitors/blocked_ratio"] == "ok"
