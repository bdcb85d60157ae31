"""The demo site: real paths, 404s, robots, sitemap, synthetic graph, and the modes that answer like IMDb in 2026."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from crawler.demo_site import DemoSite
from crawler.demo_site.modes import TOKEN, SiteModes, drifted
from crawler.parsing.loaders import load_item
from crawler.parsing.pages import parse_page
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


def test_synthetic_graph_of_one_layout() -> None:
    with DemoSite(FIXTURES, synthetic=200, synthetic_layout="current") as site:
        bodies = [get(f"{site.base_url}/title/tt2{n:08d}/")[1] for n in range(0, 160, 7)]
        bodies.append(get(f"{site.base_url}/name/nm200000003/")[1])
    assert all(b"__NEXT_DATA__" in body for body in bodies)
    with DemoSite(FIXTURES, synthetic=200, synthetic_layout="legacy") as site:
        bodies = [get(f"{site.base_url}/title/tt2{n:08d}/")[1] for n in range(0, 160, 7)]
    assert not any(b"__NEXT_DATA__" in body for body in bodies)


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
        # Swapped for a symlink after the site started: refused when served, not only when indexed.
        served = root / "current" / "tt0133093.html"
        served.unlink()
        served.symlink_to(secret)
        status, body = get(f"{site.base_url}/title/tt0133093/")
        assert status == 404 and b"root:x" not in body
        served.unlink()
        (root / "current").rename(root / "real")
        (root / "current").symlink_to(root / "real")  # the folder swapped for a link to a copy
        (root / "real" / "tt0133093.html").write_bytes(b"<html>copy</html>")
        assert get(f"{site.base_url}/title/tt0133093/")[0] == 404


def fetch(url: str, cookie: str = "", data: bytes | None = None, origin: str = "") -> tuple[int, dict[str, str], bytes]:
    headers = {"Cookie": cookie} if cookie else {}
    if origin:
        headers["Origin"] = origin
    try:
        with urlopen(Request(url, data=data, headers=headers)) as response:
            return response.status, dict(response.headers), response.read()
    except HTTPError as error:
        return error.code, dict(error.headers), error.read()


def solve(page: bytes, cost: int) -> dict[str, str]:
    """What the challenge's script computes, done here to check the site's side of it."""
    seed = json.loads(re.search(rb"window.gokuProps = (\{.*?\});", page).group(1))["seed"]
    nonce = next(
        n for n in itertools.count() if hashlib.sha256(f"{seed}{n}".encode()).hexdigest().startswith("0" * cost)
    )
    return {"seed": seed, "nonce": str(nonce)}


def test_challenge_mode_answers_without_a_token_and_the_challenge_host_gives_one_for_a_right_answer() -> None:
    with DemoSite(FIXTURES, mode="challenge", challenge_cost=2, token_lifetime=1) as site:
        url, host = f"{site.base_url}/title/tt0133093/", site.challenge_host.base_url
        assert host.startswith("http://localhost:") and host != site.base_url  # another origin, as AWS WAF's
        status, headers, body = fetch(url)
        assert (status, headers["x-amzn-waf-action"]) == (202, "challenge")
        assert f'<script src="{host}/challenge.js">'.encode() in body  # the script comes from the challenge host
        status, headers, script = fetch(f"{host}/challenge.js")
        assert status == 200 and b"crypto.subtle" in script and f"{host}/verify".encode() in script
        answer = solve(body, 2)
        forged = {**answer, "nonce": answer["nonce"] + "1"}
        assert fetch(f"{host}/verify", data=json.dumps(forged).encode())[0] == 403
        status, headers, verified = fetch(f"{host}/verify", data=json.dumps(answer).encode(), origin=site.base_url)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == site.base_url  # a cross-origin call
        token = f"{TOKEN}={json.loads(verified)['token']}"
        assert fetch(f"{host}/verify", data=json.dumps(answer).encode())[0] == 403  # an answer buys one token
        status, _, body = fetch(url, token)
        assert status == 200 and b"__NEXT_DATA__" in body
        assert fetch(url, f"{TOKEN}=1999999999.000.forged")[0] == 202
        time.sleep(1.1)
        assert fetch(url, token)[0] == 202  # expired
    assert [r["status"] for r in site.modes.requests] == [202, 200, 202, 202]
    assert [(c["call"], c.get("ok")) for c in site.modes.challenge_calls] == [
        ("script", None), ("verify", False), ("verify", True), ("verify", False)]  # fmt: skip


def test_two_challenges_of_the_same_millisecond_are_two_challenges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two browsers challenged at once each buy their own token (a shared seed gave both one answer, used once)."""
    modes = SiteModes(mode="challenge", challenge_cost=2)
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    pages = [modes.gate("/title/tt0133093/", None, browser=True)[0] for _ in range(2)]
    assert all(page is not None and page.status == 202 for page in pages)
    answers = [solve(page.body, 2) for page in pages if page is not None]
    assert answers[0] != answers[1]
    tokens = [modes.verify(answer["seed"], answer["nonce"], origin=None) for answer in answers]
    for token in tokens:
        assert token is not None
        page, _ = modes.gate("/title/tt0133093/", f"{TOKEN}={token['token']}", browser=True)
        assert page is None


def test_ratelimit_mode_asks_to_retry_after() -> None:
    with DemoSite(FIXTURES, mode="ratelimit", rate_limit=2, retry_after=3) as site:
        answers = [fetch(f"{site.base_url}/title/tt0133093/") for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 429, 429]
    assert answers[2][1]["Retry-After"] == "3" and site.modes.requests[3]["retry_after"] == 3.0


def test_cdn403_mode_refuses_a_share_of_requests_like_cloudfront() -> None:
    with DemoSite(FIXTURES, mode="cdn403", cdn403_share=0.5) as site:
        answers = [fetch(f"{site.base_url}/title/tt0133093/") for _ in range(40)]
    refused = [a for a in answers if a[0] == 403]
    assert 8 <= len(refused) <= 32 and b"The request could not be satisfied" in refused[0][2]
    assert refused[0][1]["X-Cache"] == "Error from cloudfront"


def test_drift_mode_renames_page_data_keys() -> None:
    original = (FIXTURES / "current" / "tt0133093.html").read_bytes()
    drifted_page = drifted(original)
    assert b'"titleText"' in original and b'"titleText"' not in drifted_page and b'"primaryTitle"' in drifted_page
    item = load_item(parse_page(drifted_page.decode(), None))
    assert item.title == "The Matrix" and item.year is None  # the title has a fallback; the year has none
    legacy = next((FIXTURES / "legacy").glob("*.html")).read_bytes()
    assert drifted(legacy) == legacy


def test_heavy_pages_carry_imdbs_weight_and_the_site_counts_what_they_cost() -> None:
    with DemoSite(FIXTURES, heavy=3, burn_ms=7) as site:
        status, page = get(f"{site.base_url}/title/tt0133093/")
        scripts = re.findall(rb'<script src="(/_static/chunk-\d+\.js)"></script>', page)
        assert status == 200 and len(scripts) == 3 and b"__NEXT_DATA__" in page
        assert b'href="/_static/site.css"' in page and b'src="/_static/poster.jpg"' in page
        status, script = get(site.base_url + scripts[0].decode())
        assert status == 200 and b"performance.now() + 7;" in script and b'fetch("/_api/page-data"' in script
        assert get(f"{site.base_url}/_api/page-data")[0] == 200 and get(f"{site.base_url}/_static/site.css")[0] == 200
    assert site.assets == {"script": 1, "xhr": 1, "stylesheet": 1}
