"""Packaging for Scrapyd (``scrapyd-deploy`` builds an egg from this file)."""

from setuptools import find_packages, setup

setup(
    name="imdb-crawler",
    version="0.1.0",
    packages=find_packages(include=["crawler", "crawler.*"]),
    entry_points={"scrapy": ["settings = crawler.settings"]},
)
