"""The demo site: the project's saved IMDb pages served under IMDb's paths, with what the real site does.

``server`` is the site (``DemoSite``; ``python -m crawler.demo_site``), ``modes``
what it answers in each mode (a challenge, rate limits, CloudFront's 403s,
renamed page data).
"""

from crawler.demo_site.server import DEFAULT_ROOT, LAYOUTS, MODES, DemoSite, SyntheticGraph, index_pages, main

__all__ = ["DEFAULT_ROOT", "LAYOUTS", "MODES", "DemoSite", "SyntheticGraph", "index_pages", "main"]
