"""The offline demo site: fixture pages served at IMDb's own paths.

``python -m crawler.demo_site [--port N] [--root DIR] [--layout current|legacy] [--mode MODE]``
serves ``/title/tt…/`` and ``/name/nm…/`` from the fixture folders (the
chosen layout first, the other where an id exists only there), ``404`` for
unknown ids, a ``robots.txt``, and ``/sitemap.txt`` listing every page. It
prints its base URL on the first line of output.

Modes reproduce what the real site does to crawlers, for tests and demos:

* ``normal``: every page as saved;
* ``waf``: a page's first request answers like IMDb's bot wall (status 202,
  empty body, ``x-amzn-waf-action: challenge``), later ones get the page;
* ``blocked``: every page answers the WAF challenge;
* ``js``: pages come as a shell whose content only appears once JavaScript runs;
* ``flaky``: a page's first request answers 503;
* ``slow``: every page waits ``--delay`` seconds before answering;
* ``challenge``, ``ratelimit``, ``cdn403``, ``drift``: what IMDb does in 2026,
  see ``crawler.demo_site.modes`` (a script challenge for browsers, 429 with
  ``Retry-After``, CloudFront 403 pages, renamed page-data keys). In
  ``challenge`` mode a second server, the challenge host, serves the
  challenge's script and its verify call from another origin
  (``http://localhost:PORT2`` beside ``http://127.0.0.1:PORT``), as AWS WAF
  serves them from its own domain; its URL is printed on the second line.

``--synthetic N`` serves instead a graph of N pages (80 % titles, 20 %
people) made from the fixture pages with rewritten ids: page ``tt2…`` is a
fixture title page whose own id and every id it links to are replaced,
deterministically, by ids of the synthetic graph. ``/sitemap.txt`` then lists
a few seed pages. For crawls far larger than the fixtures (memory benchmarks).
``--synthetic-layout current`` makes the graph of current-layout pages only, the
layout IMDb serves today (the fixtures' union is two thirds legacy pages).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import stat
import sys
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from crawler.demo_site.modes import SiteModes, drifted

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "imdb_pages"  # the real pages the project keeps
LAYOUTS = ("current", "legacy")
MODES = ("normal", "waf", "blocked", "js", "flaky", "slow", "challenge", "ratelimit", "cdn403", "drift")
JS_SHELL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>IMDb</title></head>
<body><div id="root">Loading…</div><script>
const bytes = Uint8Array.from(atob("%s"), c => c.charCodeAt(0));
document.open(); document.write(new TextDecoder("utf-8").decode(bytes)); document.close();
</script></body></html>"""
_PATH = re.compile(r"^/(title|name)/((?:tt|nm)\d{7,10})/?$")
_PAGE_ID = re.compile(r"(?:tt|nm)\d{7,10}")
ROBOTS = b"User-agent: *\nDisallow: /ap/\nDisallow: /find\nAllow: /\n"


def index_pages(root: Path, layout: str = "current") -> dict[str, Path]:
    """Page file per IMDb id, the preferred layout winning where both exist.

    Only regular files inside ``root`` are served: a symlink (to anywhere) and
    a name that is not an IMDb id are skipped, so the site never reads a file
    outside the folder it was given.
    """
    pages: dict[str, Path] = {}
    base = root.resolve()
    for name in sorted(LAYOUTS, key=lambda n: n != layout):
        folder = root / name
        if not folder.is_dir() or folder.is_symlink() or not folder.resolve().is_relative_to(base):
            continue
        for path in sorted(folder.glob("*.html")):
            if path.is_symlink() or not path.is_file() or not _PAGE_ID.fullmatch(path.stem):
                continue
            pages.setdefault(path.stem, path)
    return pages


def read_served(path: Path) -> bytes | None:
    """A page file's bytes, read now; None when it is no longer a regular file in its folder.

    The index is made at start; a file (or its layout folder) swapped for a
    symlink since is refused when it is served: opened without following a
    link (``O_NOFOLLOW``), checked on the open file itself.
    """
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            handle = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
        finally:
            os.close(folder)
        with os.fdopen(handle, "rb") as page:
            return page.read() if stat.S_ISREG(os.fstat(page.fileno()).st_mode) else None
    except OSError:
        return None


_ANY_ID = re.compile(r"\b(tt|nm)(\d{7,10})\b")
SYNTHETIC_PREFIX = "2"  # synthetic ids are tt2xxxxxxxx / nm2xxxxxxxx (9 digits)


class SyntheticGraph:
    """N pages built from fixture templates, linking only to each other."""

    def __init__(self, pages: dict[str, Path], size: int) -> None:
        if size < 10:
            raise ValueError("a synthetic graph needs at least 10 pages")
        self.titles = max(1, size * 4 // 5)
        self.people = max(1, size - self.titles)
        # Each template pre-split around its ids (text, kind, digits, text, …): a page is one join.
        load = {i: _ANY_ID.split(p.read_text(encoding="utf-8-sig")) for i, p in pages.items()}
        self.title_templates = [(i, t) for i, t in sorted(load.items()) if i.startswith("tt")]
        self.person_templates = [(i, t) for i, t in sorted(load.items()) if i.startswith("nm")]

    @staticmethod
    def synthetic_id(prefix: str, number: int) -> str:
        return f"{prefix}{SYNTHETIC_PREFIX}{number:08d}"

    def seeds(self, count: int = 5) -> list[str]:
        return [self.synthetic_id("tt", n) for n in range(min(count, self.titles))]

    def page(self, page_id: str) -> bytes | None:
        """The page for a synthetic id, or None when the id is not in the graph."""
        prefix, digits = page_id[:2], page_id[2:]
        if len(digits) != 9 or not digits.startswith(SYNTHETIC_PREFIX):
            return None
        number = int(digits[1:])
        limit, templates = (
            (self.titles, self.title_templates) if prefix == "tt" else (self.people, self.person_templates)
        )
        if number >= limit or not templates:
            return None
        own, parts = templates[number % len(templates)]
        out = parts[:]
        for n in range(1, len(parts), 3):
            kind, original = parts[n], parts[n] + parts[n + 1]
            if original == own:
                out[n], out[n + 1] = page_id, ""
            else:
                size = self.titles if kind == "tt" else self.people
                out[n] = self.synthetic_id(kind, zlib.crc32(f"{original}:{number}".encode()) % size)
                out[n + 1] = ""
        return "".join(out).encode("utf-8")


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections a concurrent crawler opens
    # at once; each dropped SYN costs the client a one-second retransmission.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a browser that stops loading a page) is no error of the site's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """What both servers' handlers share: keep-alive (a crawler reuses its connections, as with the real site),
    one way to answer, no log (the crawler logs every request already)."""

    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._write(status, body)

    def _write(self, status: int, body: bytes) -> None:
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


# A script of the kind a real IMDb page loads by the dozen (hydration): it burns CPU when it runs, then calls an API.
HEAVY_SCRIPT = b"""(() => { const end = performance.now() + %(burn)d; while (performance.now() < end) {}
  fetch("/_api/page-data", {cache: "no-store"}); })();"""


def weigh(body: bytes, scripts: int) -> bytes:
    """A page made as heavy as IMDb's: a style sheet, an image and ``scripts`` scripts in its head."""
    extra = b'<link rel="stylesheet" href="/_static/site.css"><img src="/_static/poster.jpg" alt="">' + b"".join(
        b'<script src="/_static/chunk-%d.js"></script>' % n for n in range(scripts)
    )
    head = body.lower().find(b"</head>")
    return body[:head] + extra + body[head:] if head >= 0 else extra + body


class ChallengeHost:
    """The challenge's own host: ``/challenge.js`` and ``POST /verify`` (cross-origin, CORS), for ``SiteModes``."""

    def __init__(self, modes: SiteModes, host: str, name: str = "localhost") -> None:
        self.modes = modes
        self.httpd = _Server((host, 0), self._handler())
        self.httpd.daemon_threads = True
        self.base_url = f"http://{name}:{self.httpd.server_address[1]}"

    def _handler(self) -> type[_Handler]:
        modes = self.modes

        class Handler(_Handler):
            server_version = "demo-challenge-host/1"

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/challenge.js":
                    return self._send(404, b"", "text/plain")
                self._send(200, modes.script(self.headers.get("Referer")), "text/javascript")

            def do_OPTIONS(self) -> None:  # a preflight, should a browser send one
                self._send(204, b"", "text/plain", {"Access-Control-Allow-Methods": "POST",
                                                     "Access-Control-Allow-Headers": "Content-Type"})  # fmt: skip

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 4096)
                try:
                    answer = json.loads(self.rfile.read(length))
                    seed, nonce = str(answer["seed"]), str(answer["nonce"])
                except (ValueError, KeyError, TypeError):
                    return self._send(400, b"{}", "application/json")
                token = modes.verify(seed, nonce, self.headers.get("Origin"))
                if token is None:
                    return self._send(403, b'{"error": "wrong answer"}', "application/json")
                self._send(200, json.dumps(token).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                # The site's pages call it from their own origin, as AWS WAF's verify call is made.
                cors = {"Access-Control-Allow-Origin": self.headers.get("Origin") or "*"}
                super()._send(status, body, content_type, {**cors, **(headers or {})})

        return Handler


def page_path(imdb_id: str) -> str:
    return f"/{'name' if imdb_id.startswith('nm') else 'title'}/{imdb_id}/"


class DemoSite:
    """A threaded HTTP server over the fixture pages; ``start()`` returns its base URL."""

    def __init__(
        self,
        root: Path | str = DEFAULT_ROOT,
        layout: str = "current",
        port: int = 0,
        host: str = "127.0.0.1",
        mode: str = "normal",
        delay: float = 1.0,
        synthetic: int = 0,
        synthetic_layout: str | None = None,
        trickle: float = 0.0,
        heavy: int = 0,
        burn_ms: int = 120,
        **mode_options: Any,
    ):
        self.root = Path(root)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.delay = delay
        self.trickle = trickle  # seconds a page's body stops halfway, as a large page arrives over a real network
        self.heavy = heavy  # IMDb's weight: this many scripts a page (each burns burn_ms of CPU, then calls an API)
        self.burn_ms = burn_ms
        self.assets: Counter[str] = Counter()  # what the pages' scripts, style sheets, images and API calls cost
        self.modes = SiteModes(mode, **mode_options)
        self.challenge_host = ChallengeHost(self.modes, host) if mode == "challenge" else None
        if self.challenge_host is not None:
            self.modes.challenge_host = self.challenge_host.base_url
        self.hits: Counter[str] = Counter()
        self._hits_lock = threading.Lock()
        self.in_flight = self.peak_in_flight = 0  # requests being answered; the most at once
        self.pages = index_pages(self.root, layout)
        if not self.pages:
            raise FileNotFoundError(f"no fixture pages under {self.root}/{{current,legacy}}")
        templates = self.pages
        if synthetic_layout is not None:  # the graph made of one layout's pages only (IMDb serves the current one)
            found = index_pages(self.root, synthetic_layout)
            templates = {i: p for i, p in found.items() if p.parent.name == synthetic_layout}
        self.graph = SyntheticGraph(templates, synthetic) if synthetic else None
        self.httpd = _Server((host, port), self._handler())
        self.httpd.daemon_threads = True

    def count(self, page_id: str) -> int:
        """Count a request for a page; how many it has had."""
        with self._hits_lock:
            self.hits[page_id] += 1
            return self.hits[page_id]

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handler(self) -> type[_Handler]:
        site = self

        class Handler(_Handler):
            server_version = "imdb-demo-site/1"

            def do_GET(self) -> None:
                with site._hits_lock:
                    site.in_flight += 1
                    site.peak_in_flight = max(site.peak_in_flight, site.in_flight)
                try:
                    self._get()
                finally:
                    with site._hits_lock:
                        site.in_flight -= 1

            def _get(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/robots.txt":
                    return self._send(200, ROBOTS, "text/plain")
                if path.startswith(("/_static/", "/_api/")):
                    return self._asset(path)
                if path in ("/sitemap.txt", "/"):
                    ids = site.graph.seeds() if site.graph else list(site.pages)
                    listing = "".join(f"{site.base_url}{page_path(i)}\n" for i in ids)
                    return self._send(200, listing.encode(), "text/plain")
                match = _PATH.match(path)
                if site.graph is not None:
                    page = site.graph.page(match.group(2)) if match else None
                    if page is None:
                        return self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
                    assert match is not None
                    site.count(match.group(2))
                    if site.mode == "slow":
                        time.sleep(site.delay)
                    return self._page(path, page)
                file = site.pages.get(match.group(2)) if match else None
                if file is None or (match and (match.group(1) == "name") != match.group(2).startswith("nm")):
                    return self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
                assert match is not None
                body = read_served(file)
                if body is None:
                    return self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
                first = site.count(match.group(2)) == 1
                if site.mode == "blocked" or (site.mode == "waf" and first):
                    return self._send(202, b"", "text/html", {"x-amzn-waf-action": "challenge"})
                if site.mode == "flaky" and first:
                    return self._send(503, b"<html><body>Service Unavailable</body></html>", "text/html")
                if site.mode == "slow":
                    time.sleep(site.delay)
                if site.mode == "js":
                    body = (JS_SHELL % base64.b64encode(body).decode()).encode()
                return self._page(path, body)

            def _page(self, path: str, body: bytes) -> None:
                """The page, or what the site's mode answers instead (challenge, 429, 403)."""
                browser = "Sec-Fetch-Mode" in self.headers  # sent by browsers, never by Scrapy
                answer, headers = site.modes.gate(
                    path, self.headers.get("Cookie"), browser, self.headers.get("User-Agent")
                )
                if answer is not None:
                    return self._send(answer.status, answer.body, answer.content_type, answer.headers)
                if site.mode == "drift":
                    body = drifted(body)
                if site.heavy:
                    body = weigh(body, site.heavy)
                return self._send(200, body, "text/html; charset=utf-8", headers)

            def _asset(self, path: str) -> None:
                """A page's script, style sheet, image or API call (``heavy``), counted by kind."""
                kind = {".js": "script", ".css": "stylesheet", ".jpg": "image"}.get(path[path.rfind(".") :], "xhr")
                with site._hits_lock:
                    site.assets[kind] += 1
                if kind == "script":
                    return self._send(200, HEAVY_SCRIPT % {b"burn": site.burn_ms}, "text/javascript")
                if kind == "stylesheet":
                    return self._send(200, b"body { font-family: sans-serif }", "text/css")
                if kind == "image":
                    return self._send(200, b"\xff\xd8\xff\xd9", "image/jpeg")
                return self._send(200, b'{"ok": true}', "application/json")

            def _write(self, status: int, body: bytes) -> None:
                if site.trickle and status == 200 and len(body) > 1:
                    half = len(body) // 2
                    self.wfile.write(body[:half])
                    self.wfile.flush()
                    time.sleep(site.trickle)
                    body = body[half:]
                self.wfile.write(body)

        return Handler

    def start(self) -> str:
        for name, server in self._servers():
            threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        for _, server in self._servers():
            server.shutdown()
            server.server_close()

    def _servers(self) -> list[tuple[str, _Server]]:
        hosts = [("demo-challenge-host", self.challenge_host.httpd)] if self.challenge_host is not None else []
        return [("demo-site", self.httpd), *hosts]

    def __enter__(self) -> DemoSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.demo_site", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="fixture folder with current/ and legacy/")
    parser.add_argument("--layout", choices=LAYOUTS, default="current", help="layout served where both exist")
    parser.add_argument("--mode", choices=MODES, default="normal", help="how pages are served (see above)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each page waits in slow mode")
    parser.add_argument("--trickle", type=float, default=0.0, help="seconds each page stops halfway through")
    parser.add_argument("--heavy", type=int, default=0, metavar="N",
                        help="IMDb's weight: N scripts a page (each burns --burn-ms of CPU, then calls an API), "
                             "a style sheet and an image")  # fmt: skip
    parser.add_argument("--burn-ms", type=int, default=120, help="CPU each --heavy script burns when it runs")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="serve a synthetic graph of N pages")
    parser.add_argument(
        "--synthetic-layout", choices=LAYOUTS, help="make the synthetic graph of this layout's pages only"
    )
    parser.add_argument("--challenge-cost", type=int, default=3, help="challenge: zero hex digits of the proof of work")
    parser.add_argument("--token-lifetime", type=float, default=60.0, help="challenge: seconds a token is valid")
    parser.add_argument("--rate-limit", type=int, default=20, help="ratelimit: page requests allowed per second")
    parser.add_argument("--retry-after", type=float, default=2.0, help="ratelimit: seconds asked to wait")
    parser.add_argument("--cdn403-share", type=float, default=0.2, help="cdn403: share of requests refused")
    args = parser.parse_args(argv)
    site = DemoSite(
        args.root, args.layout, args.port, mode=args.mode, delay=args.delay, synthetic=args.synthetic,
        synthetic_layout=args.synthetic_layout, trickle=args.trickle, heavy=args.heavy, burn_ms=args.burn_ms,
        challenge_cost=args.challenge_cost,
        token_lifetime=args.token_lifetime, rate_limit=args.rate_limit, retry_after=args.retry_after,
        cdn403_share=args.cdn403_share,
    )  # fmt: skip
    print(site.base_url, flush=True)
    if site.challenge_host is not None:
        print(site.challenge_host.base_url, flush=True)
    print(f"serving {len(site.pages)} pages from {site.root}", file=sys.stderr, flush=True)
    site.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
