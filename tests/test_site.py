"""The demo site: real paths, 404s, robots, sitemap, synthetic graph."""

from __future__ import annotations

from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
from crawler.site import DemoSite
from tests.conftest import FIXTURES


def get(url: str) -> tuple[int, bytes]:
    try:
        with urlopen(url) as response:
            return response.status, response.read()
    except HTTPError as error:
        return error.code, error.read()


def test_serves_fixture_pages_at_imdb_paths(demo_site: DemoSite) -> None:
    status, body = get(f"{demo_site.base_url}/title/tt0133093/")
    assert status == 200 and b"__NEXT_DATA__" in body  # current layout preferred
    assert get(f"{demo_site.base_url}/title/tt0133093/?ref_=tt_ov")[0] == 200
    assert get(f"{demo_site.base_url}/name/nm0000138/")[0] == 200
    assert get(f"{demo_site.base_url}/title/tt9999999/")[0] == 404
    assert get(f"{demo_site.base_url}/name/tt0133093/")[0] == 404
    status, robots = get(f"{demo_site.base_url}/robots.txt")
    assert status == 200 and b"User-agent" in robots
    sitemap = get(f"{demo_site.base_url}/sitemap.txt")[1].decode().split()
    assert len(sitemap) == 30 and f"{demo_site.base_url}/title/tt13396124/" in sitemap


def test_legacy_layout_preference() -> None:
    with DemoSite(FIXTURES, layout="legacy") as site:
        assert b"title_wrapper" in get(f"{site.base_url}/title/tt0133093/")[1]
        assert b"__NEXT_DATA__" in get(f"{site.base_url}/title/tt0095016/")[1]  # only in current/


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        DemoSite(FIXTURES, mode="chaos")


def test_synthetic_graph_pages_link_only_inside_the_graph() -> None:
    with DemoSite(FIXTURES, synthetic=1000) as site:
        seeds = get(f"{site.base_url}/sitemap.txt")[1].decode().split()
        assert len(seeds) == 5
        status, body = get(seeds[0])
        assert status == 200
        item = load_item(parse_page(body.decode(), seeds[0]))
        assert item.imdb_id == "tt200000000"
        linked = item.recommendations + [m["id"] for m in item.cast]
        assert linked and all(int(i[3:]) < (800 if i.startswith("tt") else 200) for i in linked)
        assert get(f"{site.base_url}/title/tt200000800/")[0] == 404  # past the graph's 800 titles
        assert get(f"{site.base_url}/title/tt0133093/")[0] == 404  # fixture ids are not in the graph


def test_only_regular_files_inside_the_root_are_served(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    root = tmp_path / "site"
    (root / "current").mkdir(parents=True)
    (root / "current" / "tt0000001.html").symlink_to(secret)
    (root / "legacy").symlink_to(tmp_path)  # a whole layout folder pointing outside
    (root / "current" / "tt0133093.html").write_bytes((FIXTURES / "current" / "tt0133093.html").read_bytes())
    with DemoSite(root) as site:
        assert get(f"{site.base_url}/title/tt0000001/")[0] == 404
        assert get(f"{site.base_url}/title/tt0133093/")[0] == 200
        assert list(site.pages) == ["tt0133093"]
